"""Indexes published as archives: fetched once through astropy's download cache, checked, extracted safely."""
from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from .._io import sha256_file
from ..exceptions import IndexIntegrityError, InvalidInputError
from .storage import MANIFEST_FILE

__all__ = ["fetch_archive", "safe_extract"]


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar/zip archive refusing absolute paths and '..' (path traversal)."""
    dest = dest.resolve()

    def _check(name: str) -> None:
        target = (dest / name).resolve()
        if target != dest and dest not in target.parents:
            raise IndexIntegrityError(f"archive member {name!r} would be written outside the extraction directory")

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                _check(member)
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _check(member.name)
                if not (member.isfile() or member.isdir()):
                    raise IndexIntegrityError(f"archive member {member.name!r} is not a plain file")
            tf.extractall(dest, filter="data")
    else:
        raise IndexIntegrityError(f"{archive} is neither a .tar(.gz) nor a .zip archive")


def fetch_archive(url: str, sha256: str | None) -> Path:
    """Download (astropy cache) and extract an index archive; return the index directory."""
    from astropy.config.paths import get_cache_dir_path
    from astropy.utils.data import clear_download_cache, download_file

    if not sha256:
        raise InvalidInputError(f"loading an index from a URL needs its sha256 (GalaxyIndex.load({url!r}, sha256=...))")
    sha256 = sha256.lower()
    from ..config import conf

    local = Path(download_file(url, cache=True, show_progress=False, timeout=conf.timeout))
    actual = sha256_file(local)
    if actual != sha256:
        clear_download_cache(url)
        raise IndexIntegrityError(
            f"the archive at {url} has sha256 {actual}, expected {sha256}; the download was discarded"
        )
    dest = get_cache_dir_path() / "astro_semsearch" / "indexes" / sha256
    if not (dest / ".complete").exists():
        tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            safe_extract(local, tmp)
            (tmp / ".complete").write_text("ok")
            shutil.rmtree(dest, ignore_errors=True)
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    found = sorted(p.parent for p in dest.rglob(MANIFEST_FILE))
    if not found:
        raise IndexIntegrityError(f"the archive at {url} contains no {MANIFEST_FILE}")
    return found[0]
