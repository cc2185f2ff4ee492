"""The cutout cache: astropy's download cache, keyed by the request URL (not public API)."""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading

__all__ = ["cached_path", "store_in_cache", "drop_from_cache"]

# astropy's download cache is safe between processes but not between threads of one process that create
# it at the same moment (a fresh cache seen as "exists but is not a directory"): one lock serialises our
# calls into it (they are short; the downloads themselves run outside it).
_LOCK = threading.Lock()


def cached_path(url: str) -> str | None:
    from astropy.utils.data import download_file, is_url_in_cache

    with _LOCK:
        try:
            cached = is_url_in_cache(url, on_missing="ignore")
        except TypeError:  # astropy < 8 has no on_missing
            cached = is_url_in_cache(url)
        except OSError:  # the cache directory is being made by another process: treat as not cached
            return None
        if not cached:
            return None
        # A cached URL is returned straight from the cache, without a request.
        with contextlib.suppress(Exception):
            return download_file(url, cache=True)
    return None


def store_in_cache(url: str, body: bytes) -> None:
    from astropy.utils.data import import_file_to_cache

    fd, tmp = tempfile.mkstemp(prefix="astro_semsearch-cutout-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        with _LOCK:
            import_file_to_cache(url, tmp, remove_original=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def drop_from_cache(url: str) -> None:
    from astropy.utils.data import clear_download_cache

    with _LOCK, contextlib.suppress(Exception):
        clear_download_cache(url)
