"""One way to open an index: by name, directory (single or sharded) or URL, cached per location.

`open_index` is what every stage uses (search, re-ranking, thumbnails, the
command line), so that ``index=`` means the same everywhere: ``None`` (the
default index, ``conf.default_index``), the name of an index shipped in
``astro_semsearch/data/indexes/``, an index directory, a sharded-index
directory (holding ``shards.json``), an archive URL (``URL#sha256=<hex>`` or
``sha256=``), or an index object, returned as it is.

Examples
--------
>>> from astro_semsearch.index import open_index
>>> index = open_index()          # doctest: +SKIP
"""
from __future__ import annotations

import os
import threading
from importlib import resources
from pathlib import Path

from .._io import recover_directory, sha256_file
from ..exceptions import IndexIntegrityError, InvalidTypeError
from .galaxy_index import GalaxyIndex
from .sharded import ShardedIndex
from .sharding import SHARDS_FILE

__all__ = ["open_index", "load_index", "load_sharded_index", "is_index", "builtin_index_dir"]

_CACHE: dict[str, GalaxyIndex] = {}
_SHARDED: dict[tuple[str, str], ShardedIndex] = {}
_LOCK = threading.Lock()

# What search and re-ranking use of an index (GalaxyIndex and ShardedIndex both have it).
_INDEX_SURFACE = ("search", "vectors", "rows_of", "table", "manifest", "check_model", "ntotal", "catalog", "coords")


def is_index(obj) -> bool:
    """True for an index object (anything with the search surface of `GalaxyIndex`)."""
    return isinstance(obj, (GalaxyIndex, ShardedIndex)) or all(hasattr(obj, a) for a in _INDEX_SURFACE)


def builtin_index_dir(name: str) -> Path:
    """Where the index shipped under ``name`` lives (it may not exist)."""
    return Path(str(resources.files("astro_semsearch") / "data" / "indexes" / name))


def load_sharded_index(directory: str | os.PathLike) -> ShardedIndex:
    """Open a sharded index, cached per directory and ``shards.json`` content.

    The cache entry is refreshed when ``shards.json`` changes (a shard was
    added by another process).
    """
    path = Path(directory).expanduser().resolve()
    mpath = path / SHARDS_FILE
    if not mpath.is_file():
        raise IndexIntegrityError(f"{path} is not a sharded index: {SHARDS_FILE} is missing")
    key = (str(path), sha256_file(mpath))
    with _LOCK:
        if key not in _SHARDED:
            for old in [k for k in _SHARDED if k[0] == key[0]]:
                del _SHARDED[old]
            _SHARDED[key] = ShardedIndex.load(path)
        return _SHARDED[key]


def open_index(index=None, *, sha256: str | None = None):
    """The index named by ``index`` (see the module docstring), opened once per location.

    Parameters
    ----------
    index : str, path, index object or None
        ``None`` -> ``conf.default_index``; a bare name -> a shipped index;
        a directory (single or sharded); a URL of an archive (``sha256``
        required, or appended as ``URL#sha256=<hex>``); an index object.
    sha256 : str, optional
        Expected sha256 of an archive URL.

    Returns
    -------
    `GalaxyIndex` or `ShardedIndex`

    Raises
    ------
    IndexIntegrityError
        Nothing is at that location, or what is there fails its checks.

    Examples
    --------
    >>> index = open_index()               # the default index shipped with the package
    >>> len(index) > 0 and index.coords().frame.name == "icrs"
    True
    >>> mine = open_index("my_index")     # doctest: +SKIP
    """
    from ..config import conf

    if index is not None and not isinstance(index, (str, os.PathLike)):
        if is_index(index):
            return index
        raise InvalidTypeError(f"index must be an index object, a name, a directory, a URL or None, "
                               f"got {type(index).__name__}")
    target = str(index if index is not None else conf.default_index)
    if "://" in target:
        # "URL#sha256=<hex>" carries the checksum in one string (handy on the command line).
        if "#sha256=" in target:
            target, _, sha256 = target.partition("#sha256=")
        # Cached by URL and sha256: another sha256 for the same URL never gets this index.
        key = f"{target}#sha256={str(sha256 or '').strip().lower()}"
    else:
        path = Path(target).expanduser()
        if not path.exists():
            recover_directory(path)  # a save killed between its two renames left it hidden
        if (path / SHARDS_FILE).is_file():
            return load_sharded_index(path)
        if not path.exists() and os.sep not in target and "/" not in target:
            builtin = builtin_index_dir(target)
            if not builtin.is_dir():
                raise IndexIntegrityError(
                    f"no index named {target!r}: neither a directory nor a shipped index "
                    f"(astro_semsearch/data/indexes/{target}/)"
                )
            path = builtin
        key = str(path.resolve())
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = GalaxyIndex.load(target, sha256=sha256) if "://" in target else GalaxyIndex.load(Path(key))
        return _CACHE[key]


def load_index(name_or_path: str | os.PathLike | None = None, *, sha256: str | None = None):
    """Open an index by name, directory or URL: the same as `open_index` (kept for existing scripts)."""
    return open_index(name_or_path, sha256=sha256)
