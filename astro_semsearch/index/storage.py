"""An index on disk: the four files of an index directory, written atomically and checked on load.

Files on disk (one directory)
-----------------------------
``index.faiss`` (FAISS), ``vectors.npy`` (float32, N x dim), ``catalog.fits``
(the catalogue, units kept) and ``manifest.json``: format version, name,
survey, kind, factory string, metric, dimension, count, the model (name,
sha256 fingerprint, dim), the knobs, the package version, the creation time,
the size and sha256 of every file and a content sample (a few rows' object
ids and vector digests). `GalaxyIndex.load` checks all of them
(`astro_semsearch.index.integrity`).

Writes never use memory maps (a full disk is an `OSError`, never a
``SIGBUS``), are atomic (`astro_semsearch._io.atomic_directory`) and hold
the output's lock (`astro_semsearch._io.output_lock`).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Table

from .._io import atomic_directory, check_free_space, output_lock, read_json, recover_directory, sha256_file, write_npy
from ..exceptions import IndexIntegrityError
from .integrity import check_contents, check_manifest, content_sample
from .kinds import faiss, set_search_knobs
from .mapped import open_vectors, sequential_reads

__all__ = ["FORMAT_VERSION", "MANIFEST_FILE", "write_index", "read_index", "read_manifest", "decode_bytes_columns",
           "new_manifest", "model_record"]

#: Version of the on-disk layout written by `write_index`.
FORMAT_VERSION = 1

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
CATALOG_FILE = "catalog.fits"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (INDEX_FILE, VECTORS_FILE, CATALOG_FILE)

#: Catalogues larger than this keep their text columns as memory-mapped bytes on load.
CATALOG_DECODE_LIMIT = 1_000_000


def package_version() -> str:
    """The installed version of this package (recorded in every manifest)."""
    from .. import __version__

    return __version__


def utcnow() -> str:
    """The time now, UTC, to the second, ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def model_record(model, dim: int) -> dict | None:
    """What an index manifest records about the model that made its vectors."""
    if model is None:
        return None
    record = {"name": getattr(model, "name", None), "fingerprint": getattr(model, "fingerprint", None), "dim": int(dim)}
    pre = getattr(model, "preprocessing", None)
    if isinstance(pre, dict):
        record["preprocessing"] = dict(pre)  # provenance: what entered the fingerprint besides the weights
    return record


def new_manifest(*, kind: str, factory: str, dim: int, count: int, knobs: dict, model: dict | None,
                 name: str | None, survey: str | None) -> dict:
    """The manifest of a new index (``files`` is filled in when it is saved)."""
    return {
        "format_version": FORMAT_VERSION, "name": name, "survey": survey, "kind": kind, "factory": factory,
        "metric": "ip", "dim": int(dim), "count": int(count), "model": model, "knobs": knobs,
        "package_version": package_version(), "created": utcnow(), "files": {},
    }


def _read_catalog(path: Path, mmap: bool) -> Table:
    """Read ``catalog.fits``; memory-mapped (nothing resident) when ``mmap``.

    Catalogues of at most `CATALOG_DECODE_LIMIT` rows are copied into RAM
    (text decoded to ``str``); larger ones stay memory-mapped, text as bytes.
    `GalaxyIndex.catalog` always returns decoded rows.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)
            table = Table.read(path, format="fits", memmap=mmap, character_as_bytes=True)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexIntegrityError(f"cannot read the catalogue {path}: {exc}") from None
    table.meta.clear()
    if mmap and len(table) <= CATALOG_DECODE_LIMIT:
        table = Table(table, copy=True)  # small: in RAM, nothing left mapped to the file
    if not mmap or len(table) <= CATALOG_DECODE_LIMIT:
        decode_bytes_columns(table)
    return table


def decode_bytes_columns(table: Table) -> Table:
    for name in table.colnames:
        col = table[name]
        if getattr(col, "dtype", None) is not None and col.dtype.kind == "S":
            table.replace_column(name, Table.Column(np.char.decode(np.asarray(col), "utf-8"), name=name,
                                                    unit=col.unit, description=col.description))
    return table


def _write_faiss(faiss_index, path: Path) -> None:
    try:
        faiss().write_index(faiss_index, str(path))
    except RuntimeError as exc:  # FAISS reports a failed fwrite (full disk) as a RuntimeError
        raise OSError(f"cannot write {path}: {str(exc).strip().splitlines()[-1]}") from None


def _table_bytes(table: Table) -> int:
    return int(sum(getattr(table[c], "nbytes", 0) for c in table.colnames))


def write_index(directory: str | os.PathLike, faiss_index, vector_parts, table: Table, manifest: dict, *,
                overwrite: bool = False) -> dict:
    """Write an index directory atomically (all files or nothing); return the manifest as written.

    ``vector_parts`` is a list of ``(n_i, dim)`` arrays (in memory or
    memory-mapped) written one after the other into ``vectors.npy``, in
    blocks, with ordinary writes (`~astro_semsearch._io.write_npy`), so no
    second copy of them is made in RAM and a full disk is an `OSError`.
    The free space is checked before the vectors and the catalogue are
    written. The manifest gets the row count, the size and sha256 of every
    file and a content sample (`~astro_semsearch.index.integrity.content_sample`).
    One writer at a time: ``<directory>.lock`` is held throughout.

    Raises
    ------
    LockedError
        Another process or thread is writing to ``directory``.
    FileExistsError
        ``directory`` exists and ``overwrite`` is False.
    OSError
        Not enough free space, or a write failed (nothing is left behind).
    """
    directory = Path(directory)
    ntotal, dim = int(faiss_index.ntotal), int(faiss_index.d)
    vector_parts = list(vector_parts)
    with output_lock(directory), atomic_directory(directory, overwrite=overwrite) as tmp:
        _write_faiss(faiss_index, tmp / INDEX_FILE)
        check_free_space(tmp, ntotal * dim * 4 + 2 * _table_bytes(table) + (1 << 20), f"index {directory}")
        with sequential_reads(*vector_parts):  # one pass over all rows: let the kernel read ahead
            write_npy(tmp / VECTORS_FILE, vector_parts, (ntotal, dim))
        table = table.copy(copy_data=False)
        table.meta.clear()
        table.write(tmp / CATALOG_FILE, format="fits")
        manifest = dict(manifest)
        manifest["count"] = ntotal
        manifest["content"] = content_sample(vector_parts, lambda rows: _ids(table, rows))
        manifest["files"] = {
            fn: {"sha256": sha256_file(tmp / fn), "bytes": (tmp / fn).stat().st_size} for fn in DATA_FILES
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return manifest


def _ids(table: Table, rows) -> list[str]:
    ids = np.asarray(table["object_id"][rows])
    return (np.char.decode(ids, "utf-8") if ids.dtype.kind == "S" else ids.astype(str)).tolist()


def _check_files(directory: Path, manifest: dict, verify: bool) -> None:
    """Every data file present, of the recorded size and (with ``verify``) sha256 (types already checked)."""
    files = manifest["files"]
    for fn in DATA_FILES:
        path = directory / fn
        info = files[fn]
        if not path.is_file():
            raise IndexIntegrityError(f"index file {fn} is missing from {directory}")
        size = path.stat().st_size
        if size < info["bytes"]:
            raise IndexIntegrityError(f"index file {fn} is truncated: {size} bytes, expected {info['bytes']}")
        if size != info["bytes"]:
            raise IndexIntegrityError(f"index file {fn} has {size} bytes, expected {info['bytes']} (altered)")
        if verify and sha256_file(path) != info["sha256"]:
            raise IndexIntegrityError(f"index file {fn} fails its sha256 check (tampered or corrupted): {path}")


def read_manifest(directory: str | os.PathLike, name: str = MANIFEST_FILE, version: int = FORMAT_VERSION,
                  what: str = "index") -> dict:
    """The JSON manifest ``name`` of an index directory, with its format version checked."""
    directory = Path(directory)
    manifest_path = directory / name
    if not manifest_path.is_file():
        raise IndexIntegrityError(f"{directory} is not an astro_semsearch {what}: {name} is missing")
    manifest = read_json(manifest_path, IndexIntegrityError)
    found = manifest.get("format_version")
    if isinstance(found, bool) or found != version:
        raise IndexIntegrityError(
            f"{manifest_path}: {what} format version {found!r:.40} is not supported "
            f"(this package reads version {version})"
        )
    return manifest


def read_index(directory: str | os.PathLike, *, mmap: bool = True, verify: bool = True):
    """``(faiss index, vectors, catalogue, manifest)`` of an index directory, every part checked.

    A directory missing because a save was killed while it swapped
    directories is first restored from its hidden copy
    (`~astro_semsearch._io.recover_directory`, with a warning). The manifest
    is type-checked (`~astro_semsearch.index.integrity.check_manifest`), every
    file's size and (with ``verify``) sha256 compared with it, and the
    contents checked (`~astro_semsearch.index.integrity.check_contents`).

    Raises
    ------
    IndexIntegrityError
        A file is missing, truncated or altered, a field has the wrong type,
        or the parts disagree.
    """
    directory = Path(directory)
    if not directory.exists():
        recover_directory(directory)
    if not directory.is_dir():
        raise IndexIntegrityError(f"index directory {directory} does not exist (or is not a directory)")
    manifest = read_manifest(directory)
    check_manifest(manifest, directory / MANIFEST_FILE, DATA_FILES)
    _check_files(directory, manifest, verify)
    try:
        index = faiss().read_index(str(directory / INDEX_FILE))
    except RuntimeError as exc:
        raise IndexIntegrityError(f"FAISS cannot read {directory / INDEX_FILE}: {str(exc).strip()}") from None
    try:
        # Memory-mapped for random access (see astro_semsearch.index.mapped): searches read scattered rows.
        vectors = (open_vectors(directory / VECTORS_FILE) if mmap
                   else np.load(directory / VECTORS_FILE, allow_pickle=False))
    except (ValueError, OSError) as exc:
        raise IndexIntegrityError(f"cannot read {directory / VECTORS_FILE}: {exc}") from None
    table = _read_catalog(directory / CATALOG_FILE, mmap)
    count, dim = manifest["count"], manifest["dim"]
    if not (index.ntotal == len(vectors) == len(table) == count):
        raise IndexIntegrityError(
            f"{directory}: inconsistent counts (FAISS {index.ntotal}, vectors {len(vectors)}, "
            f"catalogue {len(table)}, manifest {count})"
        )
    if vectors.ndim != 2 or vectors.dtype != np.float32 or not (index.d == vectors.shape[1] == dim):
        raise IndexIntegrityError(
            f"{directory}: inconsistent dimensions (FAISS {index.d}, vectors {vectors.shape}/{vectors.dtype}, "
            f"manifest {dim})"
        )
    check_contents(directory, index, vectors, table, manifest)
    set_search_knobs(index, manifest.get("knobs") or {})
    return index, vectors, table, manifest
