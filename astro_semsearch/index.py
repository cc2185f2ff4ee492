"""A FAISS vector index of galaxy embeddings with its catalogue, on disk and in memory.

A `GalaxyIndex` holds three things that always stay row-aligned:

* a FAISS index over the L2-normalised embeddings (inner product on unit
  vectors is the cosine similarity),
* the full-precision vectors, ``vectors.npy`` (memory-mapped on load, so an
  index larger than RAM still opens instantly; used by `similar_to` to look up
  an object's own vector and by the refinement stage of compressed indexes),
* an `astropy.table.Table` catalogue with at least ``object_id``, ``ra`` and
  ``dec`` (degrees) plus any columns you chose to keep.

Index kinds
-----------
``"flat"``
    Exact search (``IndexFlatIP``). The default below one million vectors:
    on two cores it answers a query over 10^5 vectors in about a millisecond.
``"hnsw"``
    A graph index (``IndexHNSWFlat``); approximate, very fast, but it keeps
    the full vectors plus the graph in RAM (~``4*dim + 8*M`` bytes a vector).
    Knobs: ``M`` (graph degree, 32), ``ef_construction`` (80), ``ef_search`` (128).
``"ivfpq"``
    Inverted lists of product-quantised codes (``IVF{nlist},PQ{m}``): only
    ``m`` bytes (+8 for the id) per vector stay in RAM. Compression alone
    loses the true neighbours, so the top ``k * refine_factor`` candidates are
    re-scored with the exact vectors read from the memory-mapped
    ``vectors.npy``. Knobs: ``nlist`` (~4 sqrt(n), a power of two), ``m``
    (largest divisor of ``dim`` that is at most 48 bytes), ``nbits`` (8),
    ``nprobe`` (32), ``refine_factor`` (10).
``"auto"``
    ``"flat"`` below 1,000,000 vectors, ``"ivfpq"`` above.
any other string
    A FAISS `index_factory <https://github.com/facebookresearch/faiss/wiki/The-index-factory>`_
    string for experts, e.g. ``"OPQ32,IVF4096,PQ32"``. Set ``refine_factor``
    (> 1) to re-score with the exact vectors.

Files on disk (one directory)
-----------------------------
``index.faiss`` (FAISS), ``vectors.npy`` (float32, N x dim), ``catalog.fits``
(the catalogue, units kept) and ``manifest.json``: format version, name,
survey, kind, factory string, metric, dimension, count, the model (name,
sha256 fingerprint, dim), the knobs, the package version, the creation time
and the size and sha256 of every file. `GalaxyIndex.load` checks all of them.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from astro_semsearch.index import GalaxyIndex
>>> rng = np.random.default_rng(0)
>>> vectors = rng.normal(size=(100, 16)).astype("float32")
>>> table = Table({"object_id": [f"G{i}" for i in range(100)],
...                "ra": rng.uniform(0, 360, 100), "dec": rng.uniform(-60, 60, 100)})
>>> index = GalaxyIndex.build(vectors, table, name="toy")
>>> index.kind, index.ntotal, index.dim
('flat', 100, 16)
>>> scores, rows = index.search(vectors[:1], k=3)
>>> int(rows[0, 0])                  # a vector's nearest neighbour is itself
0
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import tarfile
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from astropy.utils.exceptions import AstropyUserWarning

from ._utils import atomic_directory, check_int as _check_int, read_json, sha256_file
from .exceptions import IndexIntegrityError, ModelMismatchError

__all__ = ["GalaxyIndex", "load_index", "FORMAT_VERSION"]

#: Version of the on-disk layout written by `GalaxyIndex.save`.
FORMAT_VERSION = 1

INDEX_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
CATALOG_FILE = "catalog.fits"
MANIFEST_FILE = "manifest.json"
_DATA_FILES = (INDEX_FILE, VECTORS_FILE, CATALOG_FILE)

#: Above this many vectors ``kind="auto"`` switches from exact to IVF-PQ + refinement.
AUTO_EXACT_LIMIT = 1_000_000
#: Catalogues larger than this keep their text columns as memory-mapped bytes on load.
CATALOG_DECODE_LIMIT = 1_000_000
#: Largest default number of IVF lists below 30 million vectors (see `_default_nlist`).
IVF_NLIST_CAP = 4096
#: Default k-means training points per IVF list (FAISS itself samples at most 256).
TRAIN_POINTS_PER_LIST = 64
#: A filtered search over at most this many rows is done exactly with numpy
#: on those rows (faster and exact, whatever the index kind).
EXACT_SUBSET_LIMIT = 50_000

_DEFAULT_KNOBS = {
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 128},
    "ivfpq": {"nprobe": 32, "refine_factor": 10, "nbits": 8},
}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _faiss():
    # Imported lazily: ``import astro_semsearch`` must stay light.
    import faiss

    return faiss


def _package_version() -> str:
    from . import __version__

    return __version__


def _utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _default_nlist(n: int) -> int:
    """~4 sqrt(n) rounded to a power of two, with >= 39 training points per list.

    Capped at `IVF_NLIST_CAP` (4096) below 30 million vectors: k-means with
    more lists, and assigning every vector to its nearest centroid, cost
    O(n * nlist) and dominate the build on a laptop (at 10^7 vectors on two
    cores, 4096 lists build in minutes, 16384 in hours), while the refinement
    stage keeps the recall. Above 30 million the cap is 16384.
    """
    target = 4.0 * math.sqrt(max(n, 1))
    nlist = 2 ** max(0, round(math.log2(target)))
    nlist = min(nlist, IVF_NLIST_CAP if n < 30_000_000 else 4 * IVF_NLIST_CAP)
    while nlist > 1 and nlist * 39 > n:
        nlist //= 2
    return int(nlist)


def _training_sample(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A reproducible random subset of rows (sorted, so a memmap is read in order)."""
    n = len(vectors)
    if size >= n:
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def _default_pq_m(dim: int) -> int:
    """The largest divisor of ``dim`` giving codes of at most 48 bytes (and m <= dim/2)."""
    limit = max(1, min(48, dim // 2))
    return max(m for m in range(1, limit + 1) if dim % m == 0)




def _as_matrix(vectors, dim: int | None, what: str = "embeddings") -> np.ndarray:
    """Validate and L2-normalise vectors into a C-contiguous float32 (n, dim) array.

    Everything FAISS could choke on is caught here with a clear message, so a
    wrong shape or dtype never reaches the C++ code (where it could crash).
    """
    try:
        arr = np.asarray(vectors)
    except Exception as exc:  # ragged lists etc.
        raise TypeError(f"{what} must be a numeric array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{what} must be a numeric (float) array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, dim), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (0 vectors)")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} have dimension {arr.shape[1]} but the index has dimension {dim}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{what} contain non-finite values (NaN/inf) in {bad.size} row(s), first rows: {bad[:5].tolist()}"
        )
    norms = np.linalg.norm(arr, axis=1)
    if (norms == 0).any():
        bad = np.flatnonzero(norms == 0)
        raise ValueError(f"{what} contain all-zero vector(s) (no direction) at rows {bad[:5].tolist()}")
    # Cosine similarity = inner product of unit vectors.
    return np.ascontiguousarray(arr / norms[:, None], dtype=np.float32)


def _normalise_table(table, n: int) -> Table:
    """Check the catalogue and return a copy with object_id (str), ra, dec (float64 deg)."""
    if not isinstance(table, Table):
        try:
            table = Table(table)
        except Exception as exc:
            raise TypeError(f"table must be an astropy Table (or convertible to one): {exc}") from None
    missing = [c for c in ("object_id", "ra", "dec") if c not in table.colnames]
    if missing:
        raise ValueError(
            f"the catalogue table needs columns object_id, ra and dec (degrees); missing: {missing}. "
            f"It has: {table.colnames}"
        )
    if len(table) != n:
        raise ValueError(f"the table has {len(table)} rows but there are {n} embeddings; they must match row by row")
    out = Table(table, copy=True)  # a QTable becomes a Table with units on its columns
    out.meta.clear()
    for name in ("ra", "dec"):
        col = out[name]
        if np.any(getattr(col, "mask", False)):
            raise ValueError(f"column {name!r} has missing (masked) values")
        unit = getattr(col, "unit", None)
        values = np.asarray(getattr(col, "value", col))
        if unit is not None:
            try:
                values = (np.asarray(values, dtype=float) * u.Unit(unit)).to_value(u.deg)
            except u.UnitConversionError:
                raise ValueError(f"column {name!r} has unit {unit}, which is not an angle") from None
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"column {name!r} must hold numbers (degrees), got dtype {np.asarray(col).dtype}") from None
        if not np.isfinite(values).all():
            raise ValueError(f"column {name!r} has missing or non-finite values")
        out.replace_column(name, Table.Column(values, name=name, unit=u.deg))
    ra, dec = np.asarray(out["ra"]), np.asarray(out["dec"])
    if ((ra < 0) | (ra > 360)).any():
        bad = ra[(ra < 0) | (ra > 360)][:3]
        raise ValueError(f"RA out of range [0, 360] deg: {bad.tolist()}")
    if ((dec < -90) | (dec > 90)).any():
        bad = dec[(dec < -90) | (dec > 90)][:3]
        raise ValueError(f"Dec out of range [-90, 90] deg: {bad.tolist()}")
    ids = np.asarray(out["object_id"]).astype(str)
    if (np.char.strip(ids) == "").any():
        raise ValueError("object_id values must be non-empty strings")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"duplicate object_id values in the table: {uniq[counts > 1][:5].tolist()}")
    out.replace_column("object_id", Table.Column(ids, name="object_id"))
    # Canonical order: object_id, ra, dec first, the kept columns after.
    rest = [c for c in out.colnames if c not in ("object_id", "ra", "dec")]
    return out[["object_id", "ra", "dec", *rest]]


def _resolve_kind(kind: str, n: int, dim: int, knobs: dict) -> tuple[str, str, dict]:
    """Return (kind, factory string, knobs with defaults filled in)."""
    if not isinstance(kind, str) or not kind.strip():
        raise TypeError(
            f"kind must be a string ('auto', 'flat', 'hnsw', 'ivfpq' or a FAISS factory string), got {kind!r}"
        )
    if kind == "auto":
        kind = "flat" if n < AUTO_EXACT_LIMIT else "ivfpq"
    out = dict(_DEFAULT_KNOBS.get(kind, {}))
    out.update({k: v for k, v in knobs.items() if v is not None})
    for key, value in out.items():
        if key in ("M", "ef_construction", "ef_search", "nlist", "nprobe", "refine_factor", "m", "nbits",
                   "train_size"):
            _check_int(value, key)
    if kind == "flat":
        return kind, "Flat", out
    if kind == "hnsw":
        return kind, f"HNSW{out['M']}", out
    if kind == "ivfpq":
        out.setdefault("nlist", _default_nlist(n))
        out.setdefault("m", _default_pq_m(dim))
        if dim % out["m"]:
            raise ValueError(f"PQ m={out['m']} must divide the dimension {dim}")
        nbits = out["nbits"]
        factory = f"IVF{out['nlist']},PQ{out['m']}" + (f"x{nbits}" if nbits != 8 else "")
        return kind, factory, out
    # An expert's factory string: validated by FAISS itself.
    out.setdefault("refine_factor", 1)
    return "factory", kind, out


def _set_search_knobs(index, knobs: dict) -> None:
    """Apply nprobe / efSearch through faiss.ParameterSpace (works through wrappers)."""
    faiss = _faiss()
    ps = faiss.ParameterSpace()
    for knob, param in (("nprobe", "nprobe"), ("ef_search", "efSearch")):
        if knobs.get(knob) is not None:
            try:
                ps.set_index_parameter(index, param, int(knobs[knob]))
            except RuntimeError:
                pass  # this index kind has no such knob


def _disable_polysemous(index) -> None:
    """Skip FAISS's polysemous PQ training (on by default, ~100x slower, unused here)."""
    faiss = _faiss()
    try:
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    except (RuntimeError, TypeError, AttributeError):
        return
    if hasattr(ivf, "do_polysemous_training"):
        ivf.do_polysemous_training = False


def _read_catalog(path: Path, mmap: bool) -> Table:
    """Read ``catalog.fits``; memory-mapped (nothing resident) when ``mmap``.

    Text columns are decoded to ``str`` (which copies them into RAM) only for
    catalogues of at most `CATALOG_DECODE_LIMIT` rows; larger ones keep them
    as memory-mapped bytes. `GalaxyIndex.catalog` always returns decoded rows.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", u.UnitsWarning)
            table = Table.read(path, format="fits", memmap=mmap, character_as_bytes=True)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexIntegrityError(f"cannot read the catalogue {path}: {exc}") from None
    table.meta.clear()
    if not mmap or len(table) <= CATALOG_DECODE_LIMIT:
        _decode_bytes_columns(table)
    return table


def _decode_bytes_columns(table: Table) -> Table:
    for name in table.colnames:
        col = table[name]
        if getattr(col, "dtype", None) is not None and col.dtype.kind == "S":
            table.replace_column(name, Table.Column(np.char.decode(np.asarray(col), "utf-8"), name=name,
                                                    unit=col.unit, description=col.description))
    return table


def _train_size(index, knobs: dict, n: int, need: int) -> int:
    """Vectors the IVF/PQ training sees: ``train_size`` or ``64 * nlist`` (at least 65,536)."""
    need = max(need, _ivf_nlist(index))
    given = knobs.get("train_size")
    if given is not None and given < need:
        raise ValueError(f"train_size={given} is too small: this index needs at least {need} training vectors "
                         f"(one per IVF list and 2**nbits for PQ)")
    return int(given or max(need, TRAIN_POINTS_PER_LIST * _ivf_nlist(index), 65536))


def _ivf_nlist(index) -> int:
    """Number of inverted lists of an IVF index (1 for other kinds)."""
    faiss = _faiss()
    try:
        return int(faiss.extract_index_ivf(index).nlist)
    except (RuntimeError, TypeError, AttributeError):
        return 1


def _gather_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Read rows of a (memory-mapped) matrix in sorted order (sequential disk reads)."""
    rows = np.asarray(rows, dtype=np.int64)
    uniq, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(vectors[uniq], dtype=np.float32)[inverse.reshape(rows.shape)]


# --------------------------------------------------------------------------
# the index
# --------------------------------------------------------------------------
class GalaxyIndex:
    """Embeddings of galaxies, searchable by cosine similarity, with their catalogue.

    Build one with `GalaxyIndex.build` (or `astro_semsearch.build_index`,
    which makes the embeddings from images), open one with `GalaxyIndex.load`
    or `load_index`. Rows are numbered 0..ntotal-1 in insertion order; row
    ``i`` of `table` is the galaxy whose vector is row ``i``.

    Attributes
    ----------
    table : `~astropy.table.Table`
        The catalogue: ``object_id``, ``ra``, ``dec`` (deg) and kept columns.
    manifest : dict
        Provenance and integrity information (see the module docstring).
    path : `pathlib.Path` or None
        The directory this index was loaded from or last saved to.
    """

    def __init__(self, faiss_index, vectors: np.ndarray, table: Table, manifest: dict, path: Path | None = None):
        self._index = faiss_index
        self._parts = [vectors]  # full-precision vectors, possibly several add() batches
        self.table = table
        self.manifest = manifest
        self.path = path
        self._id_order: np.ndarray | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        embeddings,
        table,
        *,
        kind: str = "auto",
        model=None,
        name: str | None = None,
        survey: str | None = None,
        metric: str = "ip",
        **knobs: Any,
    ) -> "GalaxyIndex":
        """Build an index from embeddings and their catalogue.

        Parameters
        ----------
        embeddings : array-like, shape (n, dim)
            One vector per galaxy (normalised here to unit length).
        table : `~astropy.table.Table`
            ``n`` rows with ``object_id`` (unique), ``ra`` and ``dec``
            (degrees, or angle Quantities); other columns are kept.
        kind : str
            ``"auto"``, ``"flat"``, ``"hnsw"``, ``"ivfpq"`` or a FAISS factory
            string (see the module docstring).
        model : `~astro_semsearch.GalaxyModel`, optional
            The model that made the embeddings: its name, fingerprint and
            dimension are recorded so that searches use the same model.
        name, survey : str, optional
            Recorded in the manifest (``survey`` selects the survey paper in
            `~astro_semsearch.cite`), e.g. ``"DESI Legacy Imaging Surveys DR5"``.
        metric : {"ip"}
            Only inner product on unit vectors (cosine) is supported.
        **knobs
            ``nlist``, ``m``, ``nbits``, ``nprobe``, ``M``, ``ef_construction``,
            ``ef_search``, ``refine_factor``, ``train_size`` (vectors the IVF
            k-means is trained on; default ``64 * nlist``, a random subset).

        Returns
        -------
        GalaxyIndex
        """
        faiss = _faiss()
        if metric not in ("ip", "cosine"):
            raise ValueError(f"metric must be 'ip' (cosine on unit vectors), got {metric!r}")
        model_dim = getattr(model, "dim", None) if model is not None else None
        vectors = _as_matrix(embeddings, model_dim)
        n, dim = vectors.shape
        cat = _normalise_table(table, n)
        unknown = set(knobs) - {"nlist", "m", "nbits", "nprobe", "M", "ef_construction", "ef_search", "refine_factor",
                                "train_size"}
        if unknown:
            raise TypeError(f"unknown index knob(s): {sorted(unknown)}")
        kind, factory, knobs = _resolve_kind(kind, n, dim, knobs)
        try:
            index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(f"FAISS cannot build index {factory!r}: {str(exc).strip().splitlines()[-1]}") from None
        if kind == "hnsw":
            index.hnsw.efConstruction = int(knobs["ef_construction"])
        if not index.is_trained:
            # IVF / PQ need k-means training: once, on this first batch.
            need = max(knobs.get("nlist", 1), 2 ** knobs.get("nbits", 8) if "PQ" in factory else 1)
            if n < need:
                raise ValueError(
                    f"index {factory!r} needs at least {need} vectors to train, got {n}; "
                    "use kind='flat' (exact) for small collections or lower nlist/nbits"
                )
            _disable_polysemous(index)
            # k-means on a random subset: its cost is O(train_size * nlist), and
            # FAISS subsamples to 256 points a list anyway.
            train_size = _train_size(index, knobs, n, need)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                index.train(_training_sample(vectors, int(train_size)))
        _set_search_knobs(index, knobs)
        index.add(vectors)
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "survey": survey,
            "kind": kind,
            "factory": factory,
            "metric": "ip",
            "dim": int(dim),
            "count": int(n),
            "model": None if model is None else {
                "name": getattr(model, "name", None),
                "fingerprint": getattr(model, "fingerprint", None),
                "dim": int(dim),
            },
            "knobs": knobs,
            "package_version": _package_version(),
            "created": _utcnow(),
            "files": {},
        }
        return cls(index, vectors, cat, manifest)

    @classmethod
    def merge(
        cls,
        parts,
        out: str | os.PathLike,
        *,
        kind: str = "auto",
        model=None,
        name: str | None = None,
        survey: str | None = None,
        overwrite: bool = False,
        manifest_extra: dict | None = None,
        chunk: int = 1 << 18,
        **knobs: Any,
    ) -> "GalaxyIndex":
        """Write several indexes (shards, Dask partitions) as one saved index, streaming.

        Rows keep the order of ``parts``. Unlike ``build(np.concatenate(...))``
        the full-precision vectors never sit in RAM together: the IVF
        quantiser is trained on a random sample of rows, then each part's
        memory-mapped vectors are added and written to ``out/vectors.npy``
        ``chunk`` rows at a time. Only the catalogue (tens of bytes a row) is
        gathered in memory.

        Parameters
        ----------
        parts : sequence of `GalaxyIndex`
            Same dimension, same catalogue columns, no shared ``object_id``.
        out : path
            Directory of the merged index (written atomically).
        kind, **knobs
            As in `build` (``kind="auto"`` picks by the total size).
        model : optional
            Recorded in the manifest (default: the first part's model record).
        name, survey, overwrite, manifest_extra
            Manifest name/survey, replace an existing ``out``, extra manifest entries.

        Returns
        -------
        GalaxyIndex
            The merged index, loaded from ``out`` (vectors memory-mapped).
        """
        faiss = _faiss()
        parts = list(parts)
        if not parts:
            raise ValueError("nothing to merge: no parts given")
        dim = parts[0].dim
        for p in parts[1:]:
            if p.dim != dim:
                raise ValueError(f"cannot merge indexes of dimension {dim} and {p.dim}")
            if list(p.table.colnames) != list(parts[0].table.colnames):
                raise ValueError(f"cannot merge catalogues with columns {parts[0].table.colnames} and "
                                 f"{p.table.colnames}")
        unknown = set(knobs) - {"nlist", "m", "nbits", "nprobe", "M", "ef_construction", "ef_search", "refine_factor",
                                "train_size"}
        if unknown:
            raise TypeError(f"unknown index knob(s): {sorted(unknown)}")
        table = vstack([p.catalog() for p in parts], join_type="exact", metadata_conflicts="silent")
        n = len(table)
        ids = np.asarray(table["object_id"])
        if len(np.unique(ids)) != n:
            uniq, counts = np.unique(ids, return_counts=True)
            raise ValueError(f"duplicate object_id values across the parts: {uniq[counts > 1][:5].tolist()}")
        kind, factory, knobs = _resolve_kind(kind, n, dim, knobs)
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        if kind == "hnsw":
            index.hnsw.efConstruction = int(knobs["ef_construction"])
        offsets = np.cumsum([0] + [p.ntotal for p in parts])
        if not index.is_trained:
            _disable_polysemous(index)
            size = min(n, _train_size(index, knobs, n, 2 ** knobs.get("nbits", 8) if "PQ" in factory else 1))
            rows = np.sort(np.random.default_rng(0).choice(n, size=size, replace=False))
            which = np.searchsorted(offsets, rows, side="right") - 1
            sample = np.concatenate([parts[i].vectors(rows[which == i] - offsets[i]) for i in np.unique(which)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                index.train(sample)
            del sample
        _set_search_knobs(index, knobs)
        for p in parts:
            vec = p._all_vectors()
            for s in range(0, p.ntotal, chunk):
                index.add(np.ascontiguousarray(vec[s:s + chunk], dtype=np.float32))
        if model is None:
            model_rec = parts[0].manifest.get("model")
        else:
            model_rec = {"name": getattr(model, "name", None), "fingerprint": getattr(model, "fingerprint", None),
                         "dim": int(dim)}
        manifest = {
            "format_version": FORMAT_VERSION, "name": name, "survey": survey, "kind": kind, "factory": factory,
            "metric": "ip", "dim": int(dim), "count": int(n), "model": model_rec, "knobs": knobs,
            "package_version": _package_version(), "created": _utcnow(), "files": {},
        }
        manifest.update(manifest_extra or {})
        merged = cls(index, parts[0]._all_vectors(), table, manifest)
        merged._parts = [p._all_vectors() for p in parts]  # save() streams them into one vectors.npy
        merged.save(out, overwrite=overwrite)
        del merged
        return cls.load(out, verify=False)

    def add(self, embeddings, table) -> None:
        """Append galaxies (the IVF quantiser trained at build time is reused).

        Parameters
        ----------
        embeddings : array-like, shape (n, dim)
        table : `~astropy.table.Table`
            Same required columns as in `build`; ``object_id`` values must be
            new, and the kept columns must match the existing catalogue.

        Notes
        -----
        The new vectors stay in memory until `save`; the first search that
        needs full-precision vectors afterwards concatenates them with the
        memory-mapped ones (in RAM). For very large collections use shards
        (`astro_semsearch.shards.ShardedIndex`).
        """
        vectors = _as_matrix(embeddings, self.dim)
        cat = _normalise_table(table, len(vectors))
        if set(cat.colnames) != set(self.table.colnames):
            raise ValueError(
                f"the new table's columns {cat.colnames} differ from the index catalogue's {self.table.colnames}"
            )
        clash = self.rows_of(np.asarray(cat["object_id"])) >= 0
        if clash.any():
            raise ValueError(f"object_id(s) already in the index: {np.asarray(cat['object_id'])[clash][:5].tolist()}")
        with self._lock:
            self._index.add(vectors)
            self._parts.append(vectors)
            old = self.catalog() if any(self.table[c].dtype.kind == "S" for c in self.table.colnames) else self.table
            self.table = vstack([old, cat[old.colnames]], join_type="exact", metadata_conflicts="silent")
            self._id_order = None
            self.manifest["count"] = int(self._index.ntotal)
            self.manifest["files"] = {}  # no longer describes a saved state

    # ------------------------------------------------------------- accessors
    @property
    def ntotal(self) -> int:
        """Number of indexed galaxies."""
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self._index.d)

    @property
    def name(self) -> str | None:
        """The index name from the manifest."""
        return self.manifest.get("name")

    @property
    def kind(self) -> str:
        """``"flat"``, ``"hnsw"``, ``"ivfpq"`` or ``"factory"``."""
        return self.manifest["kind"]

    @property
    def knobs(self) -> dict:
        """The index's build and search parameters."""
        return self.manifest.setdefault("knobs", {})

    def _all_vectors(self) -> np.ndarray:
        if len(self._parts) > 1:
            with self._lock:
                if len(self._parts) > 1:
                    self._parts = [np.concatenate([np.asarray(p) for p in self._parts])]
        return self._parts[0]

    def vectors(self, rows=None) -> np.ndarray:
        """Full-precision unit vectors of the given rows (all rows if None), float32."""
        vec = self._all_vectors()
        if rows is None:
            return np.asarray(vec, dtype=np.float32)
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= self.ntotal):
            raise IndexError(f"row numbers must be in [0, {self.ntotal}), got {rows.min()}..{rows.max()}")
        return _gather_rows(vec, rows)

    def _rows(self, rows) -> np.ndarray | slice:
        if rows is None:
            return slice(None)
        rows = np.asarray(rows)
        if rows.dtype == bool:
            return np.flatnonzero(rows)
        rows = np.atleast_1d(rows).astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= self.ntotal):
            raise IndexError(f"row numbers must be in [0, {self.ntotal}), got {rows.min()}..{rows.max()}")
        return rows

    def catalog(self, rows=None) -> Table:
        """Catalogue rows as an in-memory `~astropy.table.Table` with text as ``str``.

        `table` of a large loaded index is memory-mapped (text kept as bytes);
        this reads just the requested rows.
        """
        sel = self._rows(rows)
        return _decode_bytes_columns(Table(self.table[sel], copy=True))

    def object_ids(self, rows=None) -> np.ndarray:
        """``object_id`` of the given rows (all if None) as a ``str`` array."""
        ids = np.asarray(self.table["object_id"][self._rows(rows)])
        return np.char.decode(ids, "utf-8") if ids.dtype.kind == "S" else ids.astype(str)

    def coords(self, rows=None) -> SkyCoord:
        """Sky positions of the given rows (all if None)."""
        sel = self._rows(rows)
        return SkyCoord(np.asarray(self.table["ra"][sel], dtype=np.float64) * u.deg,
                        np.asarray(self.table["dec"][sel], dtype=np.float64) * u.deg)

    def rows_of(self, object_ids) -> np.ndarray:
        """Row numbers of the given object ids; -1 where an id is not in the index."""
        ids = np.atleast_1d(np.asarray(object_ids).astype(str))
        all_ids = np.asarray(self.table["object_id"])
        if all_ids.dtype.kind == "S":  # memory-mapped bytes: compare as bytes, decode nothing
            ids = np.char.encode(ids, "utf-8")
        if self._id_order is None:
            self._id_order = np.argsort(all_ids, kind="stable")
        sorted_ids = all_ids[self._id_order]
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(sorted_ids) - 1, 0))
        found = sorted_ids[pos] == ids
        return np.where(found, self._id_order[pos], -1).astype(np.int64)

    def set_knobs(
        self, *, nprobe: int | None = None, ef_search: int | None = None, refine_factor: int | None = None
    ) -> None:
        """Change the search-time knobs (speed/recall trade-off) of a loaded index."""
        given = dict(nprobe=nprobe, ef_search=ef_search, refine_factor=refine_factor)
        new = {k: v for k, v in given.items() if v is not None}
        for key, value in new.items():
            _check_int(value, key)
        self.knobs.update(new)
        _set_search_knobs(self._index, self.knobs)

    # ---------------------------------------------------------------- search
    def search(self, vectors, k: int, *, subset=None) -> tuple[np.ndarray, np.ndarray]:
        """Find the ``k`` most similar indexed vectors to each query vector.

        Parameters
        ----------
        vectors : array-like, shape (n, dim) or (dim,)
            Query vectors (normalised here).
        k : int
            Neighbours per query. Above the index size (or the subset size) it
            is clipped, with an `~astropy.utils.exceptions.AstropyUserWarning`.
        subset : array-like of bool (ntotal,) or of row numbers, optional
            Search only these rows (e.g. a sky region). Small subsets are
            searched exactly with numpy; large ones through a FAISS
            ``IDSelector`` inside the index, so results are never scanned.

        Returns
        -------
        scores : ndarray, shape (n, k)
            Cosine similarities, best first (``-inf`` where no row was found).
        rows : ndarray, shape (n, k)
            Row numbers into `table`; ``-1`` past the end of the results.
        """
        k = _check_int(k, "k")
        queries = _as_matrix(vectors, self.dim, what="query vectors")
        rows_subset = None
        if subset is not None:
            rows_subset = np.asarray(subset)
            if rows_subset.dtype == bool:
                if rows_subset.shape != (self.ntotal,):
                    raise ValueError(
                        f"a boolean subset needs one entry per indexed row ({self.ntotal}), got {rows_subset.shape}"
                    )
                rows_subset = np.flatnonzero(rows_subset)
            else:
                rows_subset = np.unique(rows_subset.astype(np.int64))
                if rows_subset.size and (rows_subset[0] < 0 or rows_subset[-1] >= self.ntotal):
                    raise ValueError(f"subset row numbers must be in [0, {self.ntotal})")
        available = self.ntotal if rows_subset is None else rows_subset.size
        if available == 0:
            return np.full((len(queries), 0), -np.inf, np.float32), np.full((len(queries), 0), -1, np.int64)
        if k > available:
            warnings.warn(
                f"k={k} is larger than the {available} searchable galaxies; returning all of them",
                AstropyUserWarning,
                stacklevel=2,
            )
            k = available
        if rows_subset is not None and rows_subset.size <= EXACT_SUBSET_LIMIT:
            return self._exact_search(queries, k, rows_subset)
        refine = int(self.knobs.get("refine_factor") or 1)
        k_index = min(k * refine, available) if refine > 1 else k
        params = self._search_params(rows_subset) if rows_subset is not None else None
        if params is None and rows_subset is not None:
            return self._exact_search(queries, k, rows_subset)  # this index kind cannot filter
        with self._lock:  # the index is not thread-safe while add() runs
            if params is not None:
                scores, rows = self._index.search(queries, k_index, params=params)
            else:
                scores, rows = self._index.search(queries, k_index)
        rows = rows.astype(np.int64)
        if refine > 1:
            scores, rows = self._refine(queries, rows, k)
        scores = np.where(rows < 0, -np.inf, scores).astype(np.float32)
        return scores, rows

    def _exact_search(self, queries: np.ndarray, k: int, rows_subset: np.ndarray):
        vec = _gather_rows(self._all_vectors(), rows_subset)
        sims = queries @ vec.T
        if k < sims.shape[1]:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(sims.shape[1]), (len(sims), 1))
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return (
            np.take_along_axis(top_scores, order, axis=1).astype(np.float32),
            rows_subset[np.take_along_axis(top, order, axis=1)],
        )

    def _refine(self, queries: np.ndarray, cand: np.ndarray, k: int):
        """Re-score candidates with the exact (memory-mapped) vectors; keep the top k."""
        all_vectors = self._all_vectors()
        scores = np.empty((len(queries), k), np.float32)
        rows = np.empty((len(queries), k), np.int64)
        # Chunks of queries keep the gathered candidate vectors to ~64k rows.
        step = max(1, 65536 // max(cand.shape[1], 1))
        for s in range(0, len(queries), step):
            c = cand[s : s + step]
            valid = c >= 0
            vec = _gather_rows(all_vectors, np.where(valid, c, 0))
            sims = np.where(valid, np.einsum("nkd,nd->nk", vec, queries[s : s + step]), -np.inf)
            order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
            scores[s : s + step] = np.take_along_axis(sims, order, axis=1)
            rows[s : s + step] = np.take_along_axis(c, order, axis=1)
        return scores, rows

    def _search_params(self, rows_subset: np.ndarray):
        """FAISS SearchParameters restricting the search to rows_subset, or None."""
        faiss = _faiss()
        mask = np.zeros(self.ntotal, dtype=bool)
        mask[rows_subset] = True
        bitmap = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(bitmap))
        sel._bitmap = bitmap  # keep the buffer alive as long as the selector
        kind = self.kind
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=int(self.knobs.get("ef_search", 128)))
        elif kind == "ivfpq":
            params = faiss.SearchParametersIVF(sel=sel, nprobe=int(self.knobs.get("nprobe", 32)))
        elif kind == "flat":
            params = faiss.SearchParameters(sel=sel)
        else:
            return None
        params._sel = sel
        return params

    # ------------------------------------------------------------ model check
    def check_model(self, model) -> None:
        """Raise `ModelMismatchError` unless ``model`` made this index's embeddings.

        The dimension must match; the fingerprint (sha256 of the weights) must
        match when the index recorded one.
        """
        dim = getattr(model, "dim", None)
        recorded = self.manifest.get("model") or {}
        name = recorded.get("name")
        fp = recorded.get("fingerprint")
        mfp = getattr(model, "fingerprint", None)
        if dim is not None and int(dim) != self.dim:
            raise ModelMismatchError(
                f"index {self.name!r} holds {self.dim}-d vectors (model {name!r}) but model "
                f"{getattr(model, 'name', None)!r} makes {dim}-d embeddings"
            )
        if fp and mfp and fp != mfp:
            raise ModelMismatchError(
                f"index {self.name!r} was built by model {name!r} (sha256 {fp[:12]}...), you are using "
                f"{getattr(model, 'name', None)!r} (sha256 {mfp[:12]}...); their embeddings are not comparable. "
                "Use the index's own model (model=None) or rebuild the index with yours."
            )

    # ------------------------------------------------------------- save/load
    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the index to ``directory`` atomically (all files or nothing).

        Returns the directory. The manifest records the size and sha256 of
        every file so `load` can detect a truncated or altered copy.
        """
        faiss = _faiss()
        directory = Path(directory)
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            faiss.write_index(self._index, str(tmp / INDEX_FILE))
            # Written in chunks through a memmap: no second copy in RAM.
            out = np.lib.format.open_memmap(
                tmp / VECTORS_FILE, mode="w+", dtype=np.float32, shape=(self.ntotal, self.dim)
            )
            start = 0
            for part in self._parts:
                for s in range(0, len(part), 1 << 18):
                    block = np.asarray(part[s : s + (1 << 18)], dtype=np.float32)
                    out[start : start + len(block)] = block
                    start += len(block)
            out.flush()
            del out
            table = self.table.copy(copy_data=False)
            table.meta.clear()
            table.write(tmp / CATALOG_FILE, format="fits")
            manifest = dict(self.manifest)
            manifest["count"] = self.ntotal
            manifest["files"] = {
                fn: {"sha256": sha256_file(tmp / fn), "bytes": (tmp / fn).stat().st_size} for fn in _DATA_FILES
            }
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        self.manifest = manifest
        self.path = directory
        return directory

    @classmethod
    def load(
        cls, dir_or_url: str | os.PathLike, mmap: bool = True, sha256: str | None = None, verify: bool = True
    ) -> "GalaxyIndex":
        """Open a saved index, checking its integrity.

        Parameters
        ----------
        dir_or_url : str or path
            An index directory, or the URL of a ``.tar.gz``/``.tgz``/``.zip``
            archive of one (fetched once into the astropy download cache).
        mmap : bool
            Memory-map ``vectors.npy`` instead of reading it into RAM.
        sha256 : str, optional
            Expected sha256 of the archive; required for a URL.
        verify : bool
            Check the sha256 of every file (``False`` checks sizes only, for
            very large indexes you trust).

        Raises
        ------
        IndexIntegrityError
            A file is missing, truncated or altered, or the parts disagree.
        """
        faiss = _faiss()
        source = str(dir_or_url)
        if "://" in source:
            directory = _fetch_archive(source, sha256)
        else:
            directory = Path(dir_or_url).expanduser()
            if not directory.is_dir():
                raise IndexIntegrityError(f"index directory {directory} does not exist (or is not a directory)")
            if sha256 is not None:
                raise ValueError("sha256= is for URLs; a directory is checked against its own manifest")
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file():
            raise IndexIntegrityError(f"{directory} is not an astro_semsearch index: {MANIFEST_FILE} is missing")
        manifest = read_json(manifest_path, IndexIntegrityError)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexIntegrityError(
                f"{directory}: index format version {manifest.get('format_version')!r} is not supported "
                f"(this package reads version {FORMAT_VERSION})"
            )
        files = manifest.get("files") or {}
        for fn in _DATA_FILES:
            path = directory / fn
            info = files.get(fn)
            if info is None:
                raise IndexIntegrityError(f"{manifest_path} lists no checksum for {fn}")
            if not path.is_file():
                raise IndexIntegrityError(f"index file {fn} is missing from {directory}")
            size = path.stat().st_size
            if size < info["bytes"]:
                raise IndexIntegrityError(f"index file {fn} is truncated: {size} bytes, expected {info['bytes']}")
            if size != info["bytes"]:
                raise IndexIntegrityError(f"index file {fn} has {size} bytes, expected {info['bytes']} (altered)")
            if verify and sha256_file(path) != info["sha256"]:
                raise IndexIntegrityError(f"index file {fn} fails its sha256 check (tampered or corrupted): {path}")
        try:
            index = faiss.read_index(str(directory / INDEX_FILE))
        except RuntimeError as exc:
            raise IndexIntegrityError(f"FAISS cannot read {directory / INDEX_FILE}: {str(exc).strip()}") from None
        try:
            vectors = np.load(directory / VECTORS_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise IndexIntegrityError(f"cannot read {directory / VECTORS_FILE}: {exc}") from None
        table = _read_catalog(directory / CATALOG_FILE, mmap)
        count, dim = manifest.get("count"), manifest.get("dim")
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
        _set_search_knobs(index, manifest.get("knobs") or {})
        return cls(index, vectors, table, manifest, path=directory)

    def __repr__(self) -> str:
        model = (self.manifest.get("model") or {}).get("name")
        return (
            f"<GalaxyIndex {self.name!r}: {self.ntotal} galaxies, dim {self.dim}, "
            f"kind {self.kind} ({self.manifest.get('factory')}), model {model!r}>"
        )

    def __len__(self) -> int:
        return self.ntotal


# --------------------------------------------------------------------------
# URLs, names, caching
# --------------------------------------------------------------------------
def _safe_extract(archive: Path, dest: Path) -> None:
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


def _fetch_archive(url: str, sha256: str | None) -> Path:
    """Download (astropy cache) and extract an index archive; return the index directory."""
    from astropy.config.paths import get_cache_dir_path
    from astropy.utils.data import clear_download_cache, download_file

    if not sha256:
        raise ValueError(f"loading an index from a URL needs its sha256 (GalaxyIndex.load({url!r}, sha256=...))")
    sha256 = sha256.lower()
    from .config import conf

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
            _safe_extract(local, tmp)
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


_CACHE: dict[str, GalaxyIndex] = {}
_CACHE_LOCK = threading.Lock()


def _builtin_index_dir(name: str) -> Path:
    from importlib import resources

    return Path(str(resources.files("astro_semsearch") / "data" / "indexes" / name))


def load_index(name_or_path: str | os.PathLike | None = None, *, sha256: str | None = None) -> GalaxyIndex:
    """Open an index by name, directory or URL, cached per resolved location.

    Parameters
    ----------
    name_or_path : str or path, optional
        ``None`` -> ``conf.default_index``; a bare name -> the index shipped in
        ``astro_semsearch/data/indexes/<name>/``; otherwise a directory or a
        URL of an archive (then ``sha256`` is required; it can also be
        appended to the URL as ``URL#sha256=<hex>``).

    Examples
    --------
    >>> from astro_semsearch.index import load_index
    >>> index = load_index()          # doctest: +SKIP
    """
    from .config import conf

    target = str(name_or_path if name_or_path is not None else conf.default_index)
    if "://" in target:
        # "URL#sha256=<hex>" carries the checksum in one string (handy on the command line).
        if "#sha256=" in target:
            target, _, sha256 = target.partition("#sha256=")
        key = target
    else:
        path = Path(target).expanduser()
        if not path.exists() and os.sep not in target and "/" not in target:
            builtin = _builtin_index_dir(target)
            if not builtin.is_dir():
                raise IndexIntegrityError(
                    f"no index named {target!r}: neither a directory nor a shipped index "
                    f"(astro_semsearch/data/indexes/{target}/)"
                )
            path = builtin
        key = str(path.resolve())
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = GalaxyIndex.load(key if "://" in key else Path(key), sha256=sha256)
        return _CACHE[key]


# --------------------------------------------------------------------------
# command line: ``astro-semsearch index info``
# --------------------------------------------------------------------------
def _format_manifest(index: GalaxyIndex) -> str:
    m = index.manifest
    model = m.get("model") or {}
    lines = [
        f"index        {m.get('name')}",
        f"location     {index.path}",
        f"survey       {m.get('survey')}",
        f"galaxies     {m.get('count')}",
        f"dimension    {m.get('dim')}",
        f"kind         {m.get('kind')} ({m.get('factory')}, metric {m.get('metric')})",
        f"knobs        {json.dumps(m.get('knobs') or {})}",
        f"model        {model.get('name')} (sha256 {model.get('fingerprint')})",
        f"created      {m.get('created')} with astro_semsearch {m.get('package_version')}",
        f"columns      {', '.join(index.table.colnames)}",
        "files",
    ]
    for fn, info in (m.get("files") or {}).items():
        lines.append(f"  {fn:<12} {info['bytes']:>12,d} bytes  sha256 {info['sha256']}")
    return "\n".join(lines)


def _cli_info(args) -> int:
    index = load_index(args.index)
    if args.json:
        print(json.dumps(index.manifest, indent=2))
    else:
        print(_format_manifest(index))
    return 0


def add_cli(subparsers) -> None:
    """Register ``index info [DIR]``."""
    p = subparsers.add_parser("index", help="inspect an index")
    sub = p.add_subparsers(dest="index_command", metavar="{info}")
    sub.required = True
    info = sub.add_parser("info", help="print an index's manifest (default: the shipped index)")
    info.add_argument("index", nargs="?", default=None,
                      help="index name, directory or URL#sha256=HEX (default: conf.default_index)")
    info.add_argument("--json", action="store_true", help="print the raw manifest as JSON")
    info.set_defaults(func=_cli_info)
