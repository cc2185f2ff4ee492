"""The cutout cache: astropy's download cache, keyed by the request URL (not public API)."""
from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["cached_path", "store_in_cache", "drop_from_cache"]


def cached_path(url: str) -> str | None:
    from astropy.utils.data import download_file, is_url_in_cache

    try:
        cached = is_url_in_cache(url, on_missing="ignore")
    except TypeError:  # astropy < 8 has no on_missing
        cached = is_url_in_cache(url)
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
        import_file_to_cache(url, tmp, remove_original=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def drop_from_cache(url: str) -> None:
    from astropy.utils.data import clear_download_cache

    with contextlib.suppress(Exception):
        clear_download_cache(url)
