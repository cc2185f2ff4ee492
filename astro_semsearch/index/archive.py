"""Indexes published as archives: fetched once through astropy's download cache, checked, extracted safely.

Trust boundary
--------------
An archive URL is trusted only through the sha256 the caller gives:

* the downloaded archive must have that sha256 (a cached download of an
  older file at the URL is fetched once more, then refused);
* it is extracted once into ``<astropy cache>/astro_semsearch/indexes/<sha256>``
  (keyed by the sha256, so a URL with another sha256 never gets this copy),
  refusing absolute paths, ``..``, links, more than
  ``conf.max_archive_members`` members, more than ``conf.max_archive_bytes``
  bytes once extracted, and archives that expand more than
  ``conf.max_archive_ratio`` times (compression bombs);
* on every load the extracted ``manifest.json`` is compared with the
  archive's own and every file is checked against the manifest's sha256; a
  cached copy that fails (edited in the cache) is extracted again from the
  verified archive, with a warning.
"""
from __future__ import annotations

import re
import tarfile
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from astropy.utils.exceptions import AstropyUserWarning

from .._io import atomic_directory, sha256_file
from ..exceptions import IndexIntegrityError, InvalidInputError
from .storage import MANIFEST_FILE, read_index

__all__ = ["fetch_archive", "safe_extract", "load_archive_index"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Archives smaller than this once extracted are never refused for their compression ratio.
_RATIO_FLOOR = 1 << 20


def _limits(archive: Path, sizes: list[int]) -> None:
    """Refuse archives with too many members, too many bytes, or too high a compression ratio."""
    from ..config import conf

    total, count = sum(sizes), len(sizes)
    if count > int(conf.max_archive_members):
        raise IndexIntegrityError(f"archive {archive.name} has {count} members, more than "
                                  f"conf.max_archive_members = {conf.max_archive_members}; refused")
    if total > int(conf.max_archive_bytes):
        raise IndexIntegrityError(f"archive {archive.name} expands to {total:,} bytes, more than "
                                  f"conf.max_archive_bytes = {int(conf.max_archive_bytes):,}; refused")
    ratio = total / max(archive.stat().st_size, 1)
    if total > _RATIO_FLOOR and ratio > float(conf.max_archive_ratio):
        raise IndexIntegrityError(f"archive {archive.name} expands {ratio:,.0f} times ({total:,} bytes), more "
                                  f"than conf.max_archive_ratio = {conf.max_archive_ratio:g} (a compression bomb?); "
                                  "refused")


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar/zip archive refusing absolute paths, '..', links and archives over the limits."""
    dest = dest.resolve()

    def _check(name: str) -> None:
        target = (dest / name).resolve()
        if target != dest and dest not in target.parents:
            raise IndexIntegrityError(f"archive member {name!r} would be written outside the extraction directory")

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check(info.filename)
            _limits(archive, [i.file_size for i in infos])
            zf.extractall(dest)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check(member.name)
                if not (member.isfile() or member.isdir()):
                    raise IndexIntegrityError(f"archive member {member.name!r} is not a plain file")
            _limits(archive, [m.size for m in members])
            tf.extractall(dest, filter="data")
    else:
        raise IndexIntegrityError(f"{archive} is neither a .tar(.gz) nor a .zip archive")


def _member_bytes(archive: Path, relpath: PurePosixPath) -> bytes | None:
    """The content of one member of the archive (by normalised path), or None if it has none."""
    def same(name: str) -> bool:
        return PurePosixPath(*[p for p in PurePosixPath(name).parts if p not in (".", "")]) == relpath

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if same(info.filename):
                    return zf.read(info)
        return None
    with tarfile.open(archive) as tf:
        for member in tf:
            if member.isfile() and same(member.name):
                return tf.extractfile(member).read()
    return None


def _download(url: str, sha256: str) -> Path:
    """The archive at ``url`` from astropy's download cache, with the given sha256 (fetched again once if not)."""
    from astropy.utils.data import clear_download_cache, download_file

    from ..config import conf

    local = Path(download_file(url, cache=True, show_progress=False, timeout=conf.timeout))
    if sha256_file(local) == sha256:
        return local
    # The cache may hold an older file from that URL: fetch it once more before refusing.
    local = Path(download_file(url, cache="update", show_progress=False, timeout=conf.timeout))
    actual = sha256_file(local)
    if actual != sha256:
        clear_download_cache(url)
        raise IndexIntegrityError(
            f"the archive at {url} has sha256 {actual}, expected {sha256}; the download was discarded"
        )
    return local


def _extract(url: str, sha256: str | None, fresh: bool) -> tuple[Path, Path, Path, bool]:
    """``(archive, extraction, index directory, extracted now)``; errors here are the archive's own."""
    from astropy.config.paths import get_cache_dir_path

    if not sha256:
        raise InvalidInputError(f"loading an index from a URL needs its sha256 (GalaxyIndex.load({url!r}, sha256=...))")
    sha256 = str(sha256).strip().lower()
    if not _HEX64.match(sha256):
        raise InvalidInputError(f"sha256 must be 64 hex digits, got {sha256!r:.80}")
    local = _download(url, sha256)
    dest = get_cache_dir_path() / "astro_semsearch" / "indexes" / sha256
    new = fresh or not (dest / ".complete").exists()
    if new:
        with atomic_directory(dest, overwrite=True) as tmp:
            safe_extract(local, tmp)
            (tmp / ".complete").write_text("ok")
    found = sorted(p.parent for p in dest.rglob(MANIFEST_FILE))
    if not found:
        raise IndexIntegrityError(f"the archive at {url} contains no {MANIFEST_FILE}")
    return local, dest, found[0], new


def _check_manifest_copy(url: str, local: Path, dest: Path, directory: Path) -> None:
    """The extracted manifest must be byte for byte the archive's (the files are checked against it)."""
    manifest = directory / MANIFEST_FILE
    original = _member_bytes(local, PurePosixPath(manifest.relative_to(dest).as_posix()))
    if original is None or original != manifest.read_bytes():
        raise IndexIntegrityError(f"{manifest} differs from the {MANIFEST_FILE} of the archive at {url} "
                                  "(edited in the cache)")


def fetch_archive(url: str, sha256: str | None, *, fresh: bool = False) -> Path:
    """Download (astropy cache) and extract an index archive; return the index directory.

    The extraction lives under the archive's sha256, and its
    ``manifest.json`` must equal the archive's own (an edited manifest in the
    cache raises `IndexIntegrityError`); ``fresh=True`` extracts again first.
    """
    local, dest, directory, _new = _extract(url, sha256, fresh)
    _check_manifest_copy(url, local, dest, directory)
    return directory


def load_archive_index(url: str, sha256: str | None, *, mmap: bool = True):
    """``(directory, read_index(...))`` of an archive URL; every file is verified on every load.

    A cached extraction that fails a check (edited in the cache) is
    extracted again from the sha256-verified archive, with an
    `~astropy.utils.exceptions.AstropyUserWarning`; a fresh extraction that
    fails is the archive's own fault and raises.
    """
    local, dest, directory, new = _extract(url, sha256, fresh=False)
    try:
        _check_manifest_copy(url, local, dest, directory)
        return directory, read_index(directory, mmap=mmap, verify=True)
    except IndexIntegrityError as exc:
        if new:
            raise
        warnings.warn(f"the cached copy of {url} failed its checks ({exc}); extracted it again from the archive",
                      AstropyUserWarning, stacklevel=3)
    local, dest, directory, _new = _extract(url, sha256, fresh=True)
    _check_manifest_copy(url, local, dest, directory)
    return directory, read_index(directory, mmap=mmap, verify=True)
