"""The cutout cache: astropy's download cache, keyed by the request URL, each file checked (not public API).

Every cached answer has its sha256 cached beside it (under the key
``<url>#sha256``); a hit is served only when the file still has that
checksum, so a file damaged in the cache (a bit flip, a truncation) is
dropped and fetched again instead of being served. Files cached before the
checksums existed are checked the same way: without a recorded checksum a
hit is not trusted.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading

__all__ = ["cached_path", "drop_from_cache", "store_in_cache"]

# astropy's download cache is safe between processes but not between threads of one process that create
# it at the same moment (a fresh cache seen as "exists but is not a directory"): one lock serialises our
# calls into it (they are short; the downloads themselves run outside it).
_LOCK = threading.Lock()
_SUM = "#sha256"


def _in_cache(url: str) -> str | None:
    """The cached file of ``url`` (no request, no check), or None; called under `_LOCK`."""
    from astropy.utils.data import download_file, is_url_in_cache

    try:
        cached = is_url_in_cache(url, on_missing="ignore")
    except TypeError:  # astropy < 8 has no on_missing
        cached = is_url_in_cache(url)
    except OSError:  # the cache directory is being made by another process: treat as not cached
        return None
    if not cached:
        return None
    with contextlib.suppress(Exception):  # a cached URL is returned straight from the cache
        return download_file(url, cache=True)
    return None


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def cached_path(url: str) -> str | None:
    """The cached file of ``url`` if it is there and has its recorded checksum, else None (damaged: dropped)."""
    with _LOCK:
        path, recorded = _in_cache(url), _in_cache(url + _SUM)
        if path is None:
            return None
        try:
            with open(recorded, encoding="ascii") as f:  # type: ignore[arg-type]
                expected = f.read().strip()
            ok = _sha256(path) == expected
        except (OSError, TypeError, UnicodeDecodeError):  # no checksum recorded, or unreadable
            ok = False
    if ok:
        return path
    drop_from_cache(url)
    return None


def _import(url: str, data: bytes) -> None:
    from astropy.utils.data import import_file_to_cache

    fd, tmp = tempfile.mkstemp(prefix="astro_semsearch-cutout-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        with _LOCK:
            import_file_to_cache(url, tmp, remove_original=True, replace=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def store_in_cache(url: str, body: bytes) -> None:
    """Cache ``body`` as the answer of ``url``, with its checksum (the checksum last: a half store is a miss)."""
    _import(url, body)
    _import(url + _SUM, hashlib.sha256(body).hexdigest().encode("ascii"))


def drop_from_cache(url: str) -> None:
    """Forget the cached answer of ``url`` and its checksum."""
    from astropy.utils.data import clear_download_cache

    with _LOCK:
        for key in (url, url + _SUM):
            with contextlib.suppress(Exception):
                clear_download_cache(key)
