"""Memory-mapped index files watched against truncation (mixed into `~astro_semsearch.index.GalaxyIndex`).

A loaded index memory-maps ``vectors.npy`` (and the catalogue of a large
index). Reading a page past the end of a file that was truncated in place
after it was mapped kills the process with ``SIGBUS``. Saves by this
package never truncate in place (they write a new directory and rename it
over the old one, so a mapped file stays a valid, unlinked inode), but
another program might: `MappedFiles._guard` compares the file with what was
mapped, one ``stat`` per read, and raises
`~astro_semsearch.exceptions.IndexIntegrityError` instead.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import IndexIntegrityError
from .storage import CATALOG_FILE, VECTORS_FILE

__all__ = ["MappedFiles"]


class MappedFiles:
    """The files an index memory-maps, with the identity and size they had when it was opened."""

    _mapped: list[tuple[Path, int, int, int]]  # (file, st_dev, st_ino, size)

    def _watch_mapped_files(self, directory: Path, catalog_mapped: bool) -> None:
        """Remember the memory-mapped files (vectors, a large catalogue) that `_guard` checks."""
        self._mapped = []
        for fn in (VECTORS_FILE, CATALOG_FILE) if catalog_mapped else (VECTORS_FILE,):
            st = (directory / fn).stat()
            self._mapped.append((directory / fn, st.st_dev, st.st_ino, st.st_size))

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
