"""Load-time checks of a saved index: manifest fields, ``shards.json`` entries and the contents themselves.

Every check raises `~astro_semsearch.exceptions.IndexIntegrityError`
naming the file and the field, the row or the object, so that a damaged or
hand-edited index is refused with a message instead of a ``TypeError`` /
``KeyError`` traceback, or wrong answers.

What is checked when an index is opened (`check_manifest`, `check_contents`):

* every manifest field has its type (a size is an integer, every file has a
  64-hex ``sha256``, ``files`` is an object, knobs are known integers ...);
* the catalogue has ``object_id``, ``ra`` and ``dec``; coordinates are finite
  and in range; object ids are unique (indexes of up to
  `FULL_CHECK_ROWS` rows at load; larger ones when ids are first looked up);
* vectors are finite and of unit length (all of them up to
  `FULL_CHECK_ROWS` rows, a fixed sample of `SAMPLE_ROWS` above);
* the content sample the manifest records at save (a few rows: their
  ``object_id`` and the sha256 of their vector's bytes) still matches, and
  the FAISS index (of the exact kinds, flat and HNSW) returns the same
  vectors for them, so rows permuted in one file, with checksums
  recomputed, are caught.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..exceptions import IndexIntegrityError

__all__ = ["check_manifest", "check_shards_manifest", "check_contents", "content_sample", "check_unique_sorted",
           "FULL_CHECK_ROWS", "SAMPLE_ROWS", "CONTENT_ROWS"]

#: Up to this many rows every vector, coordinate and id is checked at load; above, a sample.
FULL_CHECK_ROWS = 200_000
#: Rows checked above `FULL_CHECK_ROWS` (a fixed, seeded sample).
SAMPLE_ROWS = 20_000
#: Rows whose object id and vector digest a manifest records (``content``).
CONTENT_ROWS = 16
#: Index kinds whose FAISS structure stores the vectors exactly (checked against ``vectors.npy``).
EXACT_KINDS = ("flat", "hnsw")
#: Largest deviation of a stored vector's length from 1.
NORM_TOLERANCE = 1e-3

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def _fail(where: Path, msg: str) -> IndexIntegrityError:
    return IndexIntegrityError(f"{where}: {msg}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(where: Path, obj: dict, key: str, *, minimum: int | None = 0, optional: bool = False,
         label: str | None = None) -> int | None:
    label = label or key
    value = obj.get(key)
    if value is None and optional:
        return None
    if not _is_int(value):
        raise _fail(where, f"{label} must be an integer, got {value!r} ({_kind(value)})")
    if minimum is not None and value < minimum:
        raise _fail(where, f"{label} must be >= {minimum}, got {value}")
    return value


def _typed(where: Path, obj: dict, key: str, kind: type, what: str, optional: bool, label: str | None):
    """``obj[key]`` if it is a ``kind`` (or absent and ``optional``), else an error naming the field."""
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind):
        shown = f"{value!r:.80} ({_kind(value)})" if kind is str else _kind(value)
        raise _fail(where, f"{label or key} must be {what}, got {shown}")
    return value


def _str(where: Path, obj: dict, key: str, *, optional: bool = True, label: str | None = None) -> str | None:
    return _typed(where, obj, key, str, "a string", optional, label)


def _obj(where: Path, obj: dict, key: str, *, optional: bool = True, label: str | None = None) -> dict | None:
    return _typed(where, obj, key, dict, "a JSON object", optional, label)


def _sha(where: Path, obj: dict, key: str, label: str, *, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _HEX64.match(value):
        raise _fail(where, f"{label} must be a sha256 (64 lower-case hex digits), got {value!r:.80}")
    return value


def _model(where: Path, manifest: dict) -> None:
    model = _obj(where, manifest, "model")
    if model is None:
        return
    _str(where, model, "name", label="model.name")
    fp = model.get("fingerprint")
    if fp is not None and (not isinstance(fp, str) or not fp):
        raise _fail(where, f"model.fingerprint must be a string, got {fp!r:.80}")
    _int(where, model, "dim", minimum=1, optional=True, label="model.dim")
    _obj(where, model, "preprocessing", label="model.preprocessing")


def check_manifest(manifest: dict, where: Path, data_files: tuple[str, ...]) -> None:
    """Type-check every field of an index ``manifest.json`` (``where``: its path)."""
    from .kinds import KNOBS

    _int(where, manifest, "format_version", minimum=None)
    for key in ("name", "survey", "package_version", "created"):
        _str(where, manifest, key)
    for key in ("kind", "factory"):
        if not _str(where, manifest, key, optional=False):
            raise _fail(where, f"{key} must not be empty")
    if manifest.get("metric", "ip") not in ("ip", "cosine"):
        raise _fail(where, f"metric must be 'ip', got {manifest.get('metric')!r:.80}")
    _int(where, manifest, "dim", minimum=1)
    _int(where, manifest, "count", minimum=0)
    _model(where, manifest)
    knobs = _obj(where, manifest, "knobs") or {}
    for key, value in knobs.items():
        if key not in KNOBS:
            raise _fail(where, f"knobs.{key} is not an index knob (known: {', '.join(KNOBS)})")
        if value is not None:
            _int(where, knobs, key, minimum=1, label=f"knobs.{key}")
    files = _obj(where, manifest, "files", optional=False)
    for fn in data_files:
        info = files.get(fn)
        if info is None:
            raise _fail(where, f"files lists no checksum for {fn}")
        if not isinstance(info, dict):
            raise _fail(where, f"files.{fn} must be a JSON object with sha256 and bytes, got {_kind(info)}")
        _sha(where, info, "sha256", f"files.{fn}.sha256")
        _int(where, info, "bytes", label=f"files.{fn}.bytes")
    _obj(where, manifest, "build")
    _check_content_record(where, manifest)


def _check_content_record(where: Path, manifest: dict) -> None:
    content = _obj(where, manifest, "content")
    if content is None:
        return
    rows, ids, digests = content.get("rows"), content.get("object_ids"), content.get("vector_sha256")
    if not (isinstance(rows, list) and isinstance(ids, list) and isinstance(digests, list)
            and len(rows) == len(ids) == len(digests)):
        raise _fail(where, "content must hold lists rows, object_ids and vector_sha256 of one length")
    for r, i, d in zip(rows, ids, digests):
        if not _is_int(r) or r < 0:
            raise _fail(where, f"content.rows holds {r!r:.40}, not a row number")
        if not isinstance(i, str) or not isinstance(d, str) or not _HEX64.match(d):
            raise _fail(where, f"content entry for row {r} must be an object_id string and a sha256")


def plain_name(value: Any) -> bool:
    """True for one plain path component (no separator, not hidden, not ``..``): a name inside a directory."""
    return isinstance(value, str) and bool(_NAME.match(value)) and PurePosixPath(value).name == value \
        and "\\" not in value


def check_shards_manifest(manifest: dict, where: Path, version: int) -> None:
    """Type-check ``shards.json``; every shard directory must be a plain name inside the index."""
    _int(where, manifest, "format_version", minimum=None)
    for key in ("format", "name", "survey", "package_version", "created"):
        _str(where, manifest, key)
    by = manifest.get("by")
    if by not in ("rows", "healpix"):
        raise _fail(where, f"by must be 'rows' or 'healpix', got {by!r:.80}")
    order = _int(where, manifest, "healpix_order", optional=by != "healpix")
    if order is not None and order > 29:
        raise _fail(where, f"healpix_order must be <= 29, got {order}")
    _int(where, manifest, "dim", minimum=1, optional=True)
    _int(where, manifest, "count", optional=True)
    _model(where, manifest)
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise _fail(where, f"shards must be a list, got {_kind(shards)}")
    seen: set[str] = set()
    for i, rec in enumerate(shards):
        label = f"shards[{i}]"
        if not isinstance(rec, dict):
            raise _fail(where, f"{label} must be a JSON object, got {_kind(rec)}")
        name = rec.get("directory")
        if not plain_name(name):
            raise _fail(where, f"{label}.directory must be a plain directory name inside the index "
                               f"(no '/', '\\' or '..'), got {name!r:.80}")
        if name in seen:
            raise _fail(where, f"{label}.directory {name!r} is listed twice")
        seen.add(name)
        _int(where, rec, "count", label=f"{label}.count")
        _str(where, rec, "kind", label=f"{label}.kind")
        _sha(where, rec, "manifest_sha256", f"{label}.manifest_sha256")
        _int(where, rec, "healpix_pixel", optional=by != "healpix", label=f"{label}.healpix_pixel")


# --------------------------------------------------------------------------- contents
def _vector_digest(vector: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(vector, dtype=np.float32).tobytes()).hexdigest()


def _content_rows(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, CONTENT_ROWS)).round().astype(np.int64)) if n else np.zeros(0, int)


def content_sample(vector_parts, object_ids_of) -> dict:
    """What a manifest records of a few rows: ``{"rows", "object_ids", "vector_sha256"}``.

    ``vector_parts`` are the row blocks written to ``vectors.npy``;
    ``object_ids_of(rows)`` gives the ids of those rows.
    """
    lengths = [len(p) for p in vector_parts]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    rows = _content_rows(int(offsets[-1]))
    digests = []
    for r in rows:
        part = int(np.searchsorted(offsets, r, side="right") - 1)
        digests.append(_vector_digest(np.asarray(vector_parts[part][r - offsets[part]])))
    return {"rows": rows.tolist(), "object_ids": [str(i) for i in object_ids_of(rows)], "vector_sha256": digests}


def _check_rows(n: int) -> np.ndarray | slice:
    if n <= FULL_CHECK_ROWS:
        return slice(None)
    return np.sort(np.random.default_rng(0).choice(n, size=SAMPLE_ROWS, replace=False))


def _decoded(values) -> np.ndarray:
    arr = np.asarray(values)
    return np.char.decode(arr, "utf-8") if arr.dtype.kind == "S" else arr.astype(str)


def check_unique_sorted(sorted_ids: np.ndarray, where: str) -> None:
    """Raise if sorted ids hold a repeat (the cheap duplicate check on a sorted copy)."""
    if len(sorted_ids) > 1:
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if dup.size:
            raise IndexIntegrityError(f"{where}: duplicate object_id values in the catalogue, e.g. "
                                      f"{_decoded(sorted_ids[dup[:3]]).tolist()}")


def _check_catalog(directory: Path, table, n: int) -> None:
    missing = [c for c in ("object_id", "ra", "dec") if c not in table.colnames]
    if missing:
        raise IndexIntegrityError(f"{directory / 'catalog.fits'}: required column(s) {missing} missing "
                                  f"(it has {table.colnames})")
    rows = _check_rows(n)
    for name, low, high in (("ra", 0.0, 360.0), ("dec", -90.0, 90.0)):
        try:
            values = np.asarray(table[name][rows], dtype=np.float64)
        except (TypeError, ValueError):
            raise IndexIntegrityError(f"{directory / 'catalog.fits'}: column {name!r} is not numeric") from None
        bad = ~np.isfinite(values) | (values < low) | (values > high)
        if bad.any():
            at = np.flatnonzero(bad)[0]
            row = int(at if isinstance(rows, slice) else rows[at])
            raise IndexIntegrityError(f"{directory / 'catalog.fits'}: row {row} has {name} = {float(values[at])!r}, "
                                      f"not a finite angle in [{low:g}, {high:g}] deg")
    if n <= FULL_CHECK_ROWS:
        ids = np.asarray(table["object_id"])
        check_unique_sorted(np.sort(ids), str(directory / "catalog.fits"))


def _check_vectors(directory: Path, vectors: np.ndarray, n: int) -> None:
    rows = _check_rows(n)
    step = 1 << 16
    idx = np.arange(n) if isinstance(rows, slice) else rows
    for s in range(0, len(idx), step):
        chunk = idx[s:s + step]
        block = np.asarray(vectors[chunk[0]:chunk[-1] + 1] if isinstance(rows, slice) else vectors[chunk],
                           dtype=np.float64)
        finite = np.isfinite(block).all(axis=1)
        norms = np.linalg.norm(np.where(np.isfinite(block), block, 0.0), axis=1)
        bad = ~finite | (np.abs(norms - 1.0) > NORM_TOLERANCE)
        if bad.any():
            at = np.flatnonzero(bad)[0]
            what = "non-finite values" if not finite[at] else f"length {norms[at]:.6g}, not a unit vector"
            raise IndexIntegrityError(f"{directory / 'vectors.npy'}: row {int(chunk[at])} has {what}")


def _check_content(directory: Path, faiss_index, vectors: np.ndarray, table, manifest: dict) -> None:
    content = manifest.get("content")
    if not content:
        return  # indexes saved before content samples were recorded
    rows = np.asarray(content["rows"], dtype=np.int64)
    if rows.size and rows.max() >= len(vectors):
        raise IndexIntegrityError(f"{directory / 'manifest.json'}: content.rows holds row {int(rows.max())}, "
                                  f"past the {len(vectors)} rows of the index")
    ids = _decoded(table["object_id"][rows]).tolist() if rows.size else []
    for r, want, got in zip(rows, content["object_ids"], ids):
        if want != got:
            raise IndexIntegrityError(f"{directory / 'catalog.fits'}: row {int(r)} holds object {got!r}, the "
                                      f"manifest recorded {want!r} (rows reordered or replaced)")
    for k, (r, want) in enumerate(zip(rows, content["vector_sha256"])):
        if _vector_digest(np.asarray(vectors[int(r)], dtype=np.float32)) != want:
            raise IndexIntegrityError(f"{directory / 'vectors.npy'}: row {int(r)} is not the vector saved for "
                                      f"object {ids[k]!r} (rows reordered or replaced)")
    if manifest.get("kind") not in EXACT_KINDS:
        return  # compressed or expert kinds give no vector back, or only an approximate one
    for k, r in enumerate(rows):
        try:
            stored = faiss_index.reconstruct(int(r))
        except RuntimeError:
            return
        if not np.allclose(stored, np.asarray(vectors[int(r)], dtype=np.float32), atol=1e-5):
            raise IndexIntegrityError(f"{directory / 'index.faiss'}: row {int(r)} does not hold the vector of "
                                      f"object {ids[k]!r} (rows reordered or replaced)")


def check_contents(directory: Path, faiss_index, vectors: np.ndarray, table, manifest: dict) -> None:
    """Catalogue columns and values, vectors, and the recorded content sample (see the module docstring)."""
    n = len(vectors)
    _check_catalog(directory, table, n)
    _check_vectors(directory, vectors, n)
    _check_content(directory, faiss_index, vectors, table, manifest)
