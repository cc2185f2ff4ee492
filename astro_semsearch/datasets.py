"""The labelled data sets that training and evaluation read, and the fixed train/val split.

Two data sets are used (docs/training.rst says how to obtain them; their
directories are arguments, or ``conf.gz2_root`` / ``conf.decals_root``):

* ``gz2``: 30,505 SDSS gri composites with Galaxy Zoo 2 vote fractions
  (Willett et al. 2013), used for training (the "train" split only) and for
  validation (the "val" split, never seen by training).
* ``decals_rings``: 236 DECaLS DR5 galaxies tagged ring / not ring, used only
  as an independent transfer test, never for training.

The split is a pure function of the galaxy id (`split_of`), so every stage of
the pipeline (training, evaluation, a user's re-run) agrees on it without a
split file.

Examples
--------
>>> from astro_semsearch.datasets import split_of
>>> split_of(100008) in ("train", "val")
True
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.table import MaskedColumn, Table

from .exceptions import InvalidInputError

__all__ = ["GZ2_COLUMNS", "VAL_PERCENT", "load_gz2", "load_decals", "split_of", "load_images", "data_root"]

#: The 37 Galaxy Zoo 2 weighted vote-fraction columns, in file order.
GZ2_COLUMNS: tuple[str, ...] = tuple(
    f"Class{q}.{a}"
    for q, n in ((1, 3), (2, 2), (3, 2), (4, 2), (5, 4), (6, 2), (7, 3), (8, 7), (9, 3), (10, 3), (11, 6))
    for a in range(1, n + 1)
)

#: Percentage of galaxy ids that fall in the validation split.
VAL_PERCENT = 15


def split_of(galaxy_id) -> str:
    """Return ``"val"`` or ``"train"`` for a galaxy id.

    ``"val"`` iff the first 8 hex digits of ``sha256(str(galaxy_id))`` modulo
    100 are below `VAL_PERCENT` (15). The id is hashed as text, so ``100008``
    and ``"100008"`` land in the same split.

    Examples
    --------
    >>> split_of("100008") == split_of(100008)
    True
    """
    h = int(hashlib.sha256(str(galaxy_id).encode()).hexdigest()[:8], 16)
    return "val" if h % 100 < VAL_PERCENT else "train"


def _fill(table: Table) -> Table:
    """Replace masked entries: NaN for numbers, "" for text (plain columns are easier to use)."""
    for name in table.colnames:
        col = table[name]
        if isinstance(col, MaskedColumn):
            if col.dtype.kind in "fiu":
                table[name] = np.asarray(col.astype(float).filled(np.nan))
            else:
                table[name] = np.asarray(col.filled(""))
    return table


def data_root(root: str | os.PathLike | None, item: str, what: str) -> Path:
    """``root``, or the directory configured as ``conf.<item>``; a clear error when neither is set."""
    from .config import conf

    if root is None or str(root) == "":
        root = getattr(conf, item)
    if not str(root):
        raise InvalidInputError(f"no {what} directory given: pass it, or set astro_semsearch.conf.{item} "
                                "(see the Training page of the documentation for how to obtain the data)")
    return Path(root)


def load_gz2(root: str | os.PathLike | None = None) -> Table:
    """Load the Galaxy Zoo 2 label table with an absolute image ``path`` column.

    Parameters
    ----------
    root : path-like, optional
        Directory that holds ``labels.csv`` and ``images/`` (default
        ``conf.gz2_root``).

    Returns
    -------
    `~astropy.table.Table`
        Columns ``file, galaxy_id, coarse_label, n_vote_columns`` and the 37
        `GZ2_COLUMNS` (float, NaN where no vote is known), plus ``path``.
        ``coarse_label`` is ``""`` where unknown.
    """
    root = data_root(root, "gz2_root", "Galaxy Zoo 2")
    labels = root / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"no labels.csv in {root} (expected the Galaxy Zoo 2 data set: labels.csv and "
                                "images/; see the Training page of the documentation)")
    table = _fill(Table.read(labels, format="ascii.csv", guess=False))
    for name in GZ2_COLUMNS:
        if name not in table.colnames:  # a column of all-missing votes
            table[name] = np.full(len(table), np.nan)
        table[name] = np.asarray(table[name], dtype=float)
    table["coarse_label"] = np.asarray(table["coarse_label"], dtype=str) if len(table) else np.array([], dtype="U1")
    table["path"] = [str((root / f).resolve()) for f in table["file"]]
    return table


def load_decals(root: str | os.PathLike | None = None) -> Table:
    """Load the DECaLS ring test set (``iauname, ra, dec, ring, ...``) with a ``path`` column.

    This set is for transfer evaluation only; training never reads it.
    """
    root = data_root(root, "decals_root", "DECaLS ring set")
    labels = root / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"no labels.csv in {root} (expected the DECaLS ring set)")
    table = _fill(Table.read(labels, format="ascii.csv", guess=False))
    table["ra"].unit = "deg"
    table["dec"].unit = "deg"
    table["path"] = [str((root / f).resolve()) for f in table["file"]]
    return table


def _load_one(path: str, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            # LANCZOS with reducing_gap: an area-like, alias-free downsampling.
            im = im.resize((size, size), Image.LANCZOS, reducing_gap=2.0)
        return np.asarray(im, dtype=np.uint8)


def load_images(paths: Sequence[str | os.PathLike], size: int = 80, threads: int = 2, progress: bool = False) -> np.ndarray:
    """Decode images and resize each whole image to ``size x size``.

    Parameters
    ----------
    paths : sequence of path-like
        Image files readable by Pillow (JPEG, PNG).
    size : int
        Output side in pixels. The whole field is kept (no crop): the model's
        own centre crop is applied later (`astro_semsearch.images.preprocess`).
    threads : int
        Decoding threads (Pillow releases the GIL while decoding).

    Returns
    -------
    numpy.ndarray
        ``(N, size, size, 3)`` uint8.
    """
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def work(i):
        out[i] = _load_one(str(paths[i]), size)

    from ._io import progress as _progress

    with ThreadPoolExecutor(max(1, threads)) as pool:
        for _ in _progress(pool.map(work, range(len(paths))), total=len(paths), desc="decode images",
                           disable=not progress):
            pass
    return out
