"""The memory-mapped files of an index: how the kernel is told they are read, and a guard against truncation.

Access advice
-------------
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

Truncation
----------
Reading a page past the end of a file that was truncated in place after it
was mapped kills the process with ``SIGBUS``. Saves by this package never
truncate in place (they write a new directory and rename it over the old
one, so a mapped file stays a valid, unlinked inode), but another program
might: `MappedFiles._guard` (mixed into `~astro_semsearch.index.GalaxyIndex`)
compares the file with what was mapped, one ``stat`` per read, and raises
`~astro_semsearch.exceptions.IndexIntegrityError` instead.
"""
from __future__ import annotations

import contextlib
import mmap
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..exceptions import IndexIntegrityError

__all__ = ["open_vectors", "advise", "sequential_reads", "MappedFiles"]
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


class MappedFiles:
    """The files an index memory-maps, with the identity and size they had when it was opened."""

    _mapped: list[tuple[Path, int, int, int]]  # (file, st_dev, st_ino, size)

    def _watch_mapped_files(self, paths) -> None:
        """Remember the memory-mapped files (vectors, a large catalogue) that `_guard` checks."""
        self._mapped = []
        for path in map(Path, paths):
            st = path.stat()
            self._mapped.append((path, st.st_dev, st.st_ino, st.st_size))

    def _guard(self) -> None:
        """Refuse to read a memory-mapped file truncated in place since it was opened (a read would ``SIGBUS``).

        One ``stat`` per read. A file replaced by rename (as every save here
        does) is another inode: the mapping of the old one stays valid.
        """
        for path, dev, ino, size in self._mapped:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # unlinked: the mapped inode lives on
            if (st.st_dev, st.st_ino) == (dev, ino) and st.st_size < size:
                raise IndexIntegrityError(
                    f"{path} was truncated on disk ({st.st_size} bytes, {size} when index "
                    f"{getattr(self, 'name', None)!r} was opened) while it was memory-mapped; reading it would "
                    "crash. Reopen or rebuild the index.")
