"""Training pipeline of the aligned image-text model.

Modules
-------
data
    Read the Galaxy Zoo 2 and DECaLS data sets; the fixed train/val split.
augment
    Galaxy-safe batched augmentations (rotation, flips, shifts, scale, PSF, noise).
captions
    Captions from Galaxy Zoo votes; pluggable `~astro_semsearch.training.captions.Captioner`.
lensing
    Simulated strong-lensing arcs injected into real galaxy images.
train
    The ``astro-semsearch train`` command: SimCLR pretraining, then alignment.

Examples
--------
.. code-block:: bash

    astro-semsearch train --config astro_semsearch/training/default_config.toml --out runs/galclip-v1
"""
from __future__ import annotations

__all__ = ["add_cli"]


def add_cli(subparsers) -> None:
    """Register the ``train`` subcommand of ``astro-semsearch``.

    The training function itself is `astro_semsearch.training.train.train`
    (imported on demand: it needs torch).
    """
    from .train import add_cli as _add_cli

    _add_cli(subparsers)
