"""Training of the aligned image-text model (``astro-semsearch train``).

Modules
-------
train
    `~astro_semsearch.training.train.train`: SimCLR pretraining, then alignment, stage by stage.
config
    The configuration (``default_config.toml`` and overrides).
data
    The train split, decoded images, captions and their features, arc banks.
captions
    Captions from Galaxy Zoo votes; pluggable `~astro_semsearch.training.captions.Captioner`.
augment
    Galaxy-safe batched augmentations (rotation, flips, shifts, scale, PSF, noise).
stages, losses
    One epoch of each stage; the contrastive losses.
readout
    Stage 4: each concept's wordings to the image embeddings' linear read-out of that concept.
symbols
    Galaxy Zoo records as coarse labels and schematic symbols.
monitor, checkpoints, card
    The per-epoch monitor, resumable checkpoints, the model card.

The data sets are read by `astro_semsearch.datasets`, the simulated lenses
come from `astro_semsearch.lensing`.

Examples
--------
.. code-block:: bash

    astro-semsearch train --config astro_semsearch/training/default_config.toml --out runs/galclip-v2
"""
