"""FAISS index kinds: which FAISS structure an index uses, its knobs, and how it is trained.

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
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._validate import check_int
from ..exceptions import InvalidInputError, InvalidTypeError

__all__ = ["resolve_kind", "new_faiss_index", "set_search_knobs", "KNOBS", "AUTO_EXACT_LIMIT", "IVF_NLIST_CAP",
           "TRAIN_POINTS_PER_LIST", "default_nlist", "default_pq_m"]

#: Above this many vectors ``kind="auto"`` switches from exact to IVF-PQ + refinement.
AUTO_EXACT_LIMIT = 1_000_000
#: Largest default number of IVF lists below 30 million vectors (see `default_nlist`).
IVF_NLIST_CAP = 4096
#: Default k-means training points per IVF list (FAISS itself samples at most 256).
TRAIN_POINTS_PER_LIST = 64
#: Every knob an index accepts (build and search parameters).
KNOBS = ("nlist", "m", "nbits", "nprobe", "M", "ef_construction", "ef_search", "refine_factor", "train_size")

_DEFAULT_KNOBS = {
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 128},
    "ivfpq": {"nprobe": 32, "refine_factor": 10, "nbits": 8},
}


def faiss():
    """The faiss module, imported on first use (``import astro_semsearch`` must stay light)."""
    import faiss as _faiss

    return _faiss


def default_nlist(n: int) -> int:
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


def training_sample(vectors: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A reproducible random subset of rows (sorted, so a memmap is read in order)."""
    n = len(vectors)
    if size >= n:
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    return np.ascontiguousarray(vectors[rows], dtype=np.float32)


def default_pq_m(dim: int) -> int:
    """The largest divisor of ``dim`` giving codes of at most 48 bytes (and m <= dim/2)."""
    limit = max(1, min(48, dim // 2))
    return max(m for m in range(1, limit + 1) if dim % m == 0)


def resolve_kind(kind: str, n: int, dim: int, knobs: dict) -> tuple[str, str, dict]:
    """Return (kind, factory string, knobs with defaults filled in)."""
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidTypeError(
            f"kind must be a string ('auto', 'flat', 'hnsw', 'ivfpq' or a FAISS factory string), got {kind!r}"
        )
    if kind == "auto":
        kind = "flat" if n < AUTO_EXACT_LIMIT else "ivfpq"
    out = dict(_DEFAULT_KNOBS.get(kind, {}))
    out.update({k: v for k, v in knobs.items() if v is not None})
    for key, value in out.items():
        if key in ("M", "ef_construction", "ef_search", "nlist", "nprobe", "refine_factor", "m", "nbits",
                   "train_size"):
            check_int(value, key)
    if kind == "flat":
        return kind, "Flat", out
    if kind == "hnsw":
        return kind, f"HNSW{out['M']}", out
    if kind == "ivfpq":
        out.setdefault("nlist", default_nlist(n))
        out.setdefault("m", default_pq_m(dim))
        if dim % out["m"]:
            raise InvalidInputError(f"PQ m={out['m']} must divide the dimension {dim}")
        nbits = out["nbits"]
        factory = f"IVF{out['nlist']},PQ{out['m']}" + (f"x{nbits}" if nbits != 8 else "")
        return kind, factory, out
    # An expert's factory string: validated by FAISS itself.
    out.setdefault("refine_factor", 1)
    return "factory", kind, out


def set_search_knobs(index, knobs: dict) -> None:
    """Apply nprobe / efSearch through faiss.ParameterSpace (works through wrappers)."""
    ps = faiss().ParameterSpace()
    for knob, param in (("nprobe", "nprobe"), ("ef_search", "efSearch")):
        if knobs.get(knob) is not None:
            try:
                ps.set_index_parameter(index, param, int(knobs[knob]))
            except RuntimeError:
                pass  # this index kind has no such knob


def _disable_polysemous(index) -> None:
    """Skip FAISS's polysemous PQ training (on by default, ~100x slower, unused here)."""
    try:
        ivf = faiss().downcast_index(faiss().extract_index_ivf(index))
    except (RuntimeError, TypeError, AttributeError):
        return
    if hasattr(ivf, "do_polysemous_training"):
        ivf.do_polysemous_training = False


def _train_size(index, knobs: dict, n: int, need: int) -> int:
    """Vectors the IVF/PQ training sees: ``train_size`` or ``64 * nlist`` (at least 65,536)."""
    need = max(need, _ivf_nlist(index))
    given = knobs.get("train_size")
    if given is not None and given < need:
        raise InvalidInputError(f"train_size={given} is too small: this index needs at least {need} training vectors "
                         f"(one per IVF list and 2**nbits for PQ)")
    return int(given or max(need, TRAIN_POINTS_PER_LIST * _ivf_nlist(index), 65536))


def _ivf_nlist(index) -> int:
    """Number of inverted lists of an IVF index (1 for other kinds)."""
    try:
        return int(faiss().extract_index_ivf(index).nlist)
    except (RuntimeError, TypeError, AttributeError):
        return 1


def check_knobs(knobs: dict) -> None:
    """Refuse knobs an index does not have."""
    unknown = set(knobs) - set(KNOBS)
    if unknown:
        raise InvalidTypeError(f"unknown index knob(s): {sorted(unknown)}; known: {list(KNOBS)}")


def new_faiss_index(kind: str, n: int, dim: int, knobs: dict):
    """``(faiss index, kind, factory, knobs)`` for ``n`` vectors of dimension ``dim``, not yet trained."""
    check_knobs(knobs)
    kind, factory, knobs = resolve_kind(kind, n, dim, knobs)
    try:
        index = faiss().index_factory(dim, factory, faiss().METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise InvalidInputError(f"FAISS cannot build index {factory!r}: {str(exc).strip().splitlines()[-1]}") from None
    if kind == "hnsw":
        index.hnsw.efConstruction = int(knobs["ef_construction"])
    return index, kind, factory, knobs


def pq_training_need(factory: str, knobs: dict) -> int:
    """Fewest training vectors the IVF/PQ quantisers need (one per list, 2**nbits for PQ)."""
    return max(knobs.get("nlist", 1), 2 ** knobs.get("nbits", 8) if "PQ" in factory else 1)


def train(index, knobs: dict, n: int, need: int, sample) -> None:
    """Train an IVF / PQ index once, on a random subset of the vectors.

    ``sample(size)`` returns that many vectors. k-means costs
    O(train_size * nlist) and FAISS subsamples to 256 points a list anyway,
    so a sample of ``train_size`` vectors is enough.
    """
    _disable_polysemous(index)
    size = min(n, _train_size(index, knobs, n, need))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index.train(np.ascontiguousarray(sample(int(size)), dtype=np.float32))
