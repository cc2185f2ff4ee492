"""The search steps of a `~astro_semsearch.index.GalaxyIndex` besides FAISS itself (not public API).

Exact search over a subset of rows, re-scoring of candidates with the exact
vectors (refinement), and the FAISS search parameters that restrict a search
to a subset.
"""
from __future__ import annotations

import numpy as np

from ._checks import gather_rows
from .kinds import faiss

__all__ = ["exact_search", "refine", "search_params"]


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, rows_subset: np.ndarray):
    """The ``k`` best of ``rows_subset`` for each query, by numpy on those rows: ``(scores, rows)``."""
    vec = gather_rows(vectors, rows_subset)
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


def refine(vectors: np.ndarray, queries: np.ndarray, cand: np.ndarray, k: int):
    """Re-score candidates with the exact (memory-mapped) vectors; keep the top k."""
    scores = np.empty((len(queries), k), np.float32)
    rows = np.empty((len(queries), k), np.int64)
    # Chunks of queries keep the gathered candidate vectors to ~64k rows.
    step = max(1, 65536 // max(cand.shape[1], 1))
    for s in range(0, len(queries), step):
        c = cand[s : s + step]
        valid = c >= 0
        vec = gather_rows(vectors, np.where(valid, c, 0))
        sims = np.where(valid, np.einsum("nkd,nd->nk", vec, queries[s : s + step]), -np.inf)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        scores[s : s + step] = np.take_along_axis(sims, order, axis=1)
        rows[s : s + step] = np.take_along_axis(c, order, axis=1)
    return scores, rows


def search_params(kind: str, knobs: dict, ntotal: int, rows_subset: np.ndarray):
    """FAISS SearchParameters restricting the search to rows_subset, or None for kinds that cannot."""
    mask = np.zeros(ntotal, dtype=bool)
    mask[rows_subset] = True
    bitmap = np.packbits(mask, bitorder="little")
    sel = faiss().IDSelectorBitmap(ntotal, faiss().swig_ptr(bitmap))
    sel._bitmap = bitmap  # keep the buffer alive as long as the selector
    if kind == "hnsw":
        params = faiss().SearchParametersHNSW(sel=sel, efSearch=int(knobs.get("ef_search", 128)))
    elif kind == "ivfpq":
        params = faiss().SearchParametersIVF(sel=sel, nprobe=int(knobs.get("nprobe", 32)))
    elif kind == "flat":
        params = faiss().SearchParameters(sel=sel)
    else:
        return None
    params._sel = sel
    return params
