"""The memory-mapped ``vectors.npy`` of an index, with the kernel told how it is read.

A loaded index reads its full-precision vectors a few rows at a time: the
refinement stage of IVF-PQ re-scores ``k * refine_factor`` scattered
candidates, the background sample and `~astro_semsearch.similar_to` look up
single rows. Left to itself the kernel reads ahead around every page fault
(typically 128 kB for a 512-byte row), which on a cold cache costs reads
and evicts useful pages. `open_vectors` therefore maps the file with
``MADV_RANDOM``; the few bulk passes over all rows (saving, merging) switch
to ``MADV_SEQUENTIAL`` for their duration (`sequential_reads`). Where the
platform has no ``madvise`` (Windows) nothing is advised and nothing else
changes.
"""
from __future__ import annotations

import contextlib
import mmap
import os
from typing import Iterator

import numpy as np

__all__ = ["open_vectors", "advise", "sequential_reads"]

_ADVICE = {"random": "MADV_RANDOM", "sequential": "MADV_SEQUENTIAL", "normal": "MADV_NORMAL"}


def open_vectors(path: str | os.PathLike, advice: str = "random") -> np.memmap:
    """``numpy.load(path, mmap_mode="r")``, with the mapping advised for ``advice`` access.

    Raises
    ------
    ValueError, OSError
        The file is not a ``.npy`` array, or cannot be read.
    """
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    advise(array, advice)
    return array


def _mapping(array: np.ndarray) -> mmap.mmap | None:
    """The `mmap.mmap` an array views (through its chain of bases), or None."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):  # also the base of a numpy.memmap
            return base
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return None


def advise(array: np.ndarray, advice: str) -> bool:
    """Tell the kernel how the mapping under ``array`` will be read: ``"random"``, ``"sequential"`` or ``"normal"``.

    Returns True if advice was given (False for an array in RAM, or a
    platform without ``madvise``).
    """
    flag = getattr(mmap, _ADVICE[advice], None)
    mapping = _mapping(array)
    if flag is None or mapping is None or not hasattr(mapping, "madvise"):
        return False
    try:
        mapping.madvise(flag)
    except (OSError, ValueError):  # e.g. a closed or zero-length mapping
        return False
    return True


@contextlib.contextmanager
def sequential_reads(*arrays: np.ndarray) -> Iterator[None]:
    """Advise sequential reads of memory-mapped arrays for a bulk pass, and random reads again after."""
    advised = [a for a in arrays if advise(a, "sequential")]
    try:
        yield
    finally:
        for a in advised:
            advise(a, "random")
