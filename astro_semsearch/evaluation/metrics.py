"""Ranking metrics: nDCG@k with graded relevance, recall@k, and their exact expectation for a random ranking.

Examples
--------
>>> from astro_semsearch.evaluation.metrics import ndcg_at_k
>>> ndcg_at_k([1.0, 0.0], [0.0, 1.0], k=2)
1.0
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..exceptions import InvalidInputError

__all__ = ["RELEVANT", "ndcg_at_k", "recall_at_k", "expected_random", "rank_metrics"]

#: Objects with ``rel`` above this count as relevant for recall and ``n_rel``.
RELEVANT = 0.5


def _gains(rel) -> np.ndarray:
    return np.exp2(np.clip(np.asarray(rel, dtype=float), 0.0, None)) - 1.0


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2))


def ndcg_at_k(rel_in_ranked_order: Sequence[float], all_rel: Sequence[float], k: int = 10) -> float:
    """Normalised discounted cumulative gain at rank ``k``.

    ``DCG@k = sum_{i=1..k} (2**rel_i - 1) / log2(i + 1)`` over the ranking,
    divided by the same sum for the ideal ordering of *all* pool relevances
    (so a ranking that never shows the best objects is penalised even when
    its own top ``k`` looks fine).

    Parameters
    ----------
    rel_in_ranked_order : sequence of float
        Relevance of the returned objects, best-ranked first (at least the
        first ``k``; more are ignored).
    all_rel : sequence of float
        Relevance of every object in the pool (defines the ideal DCG).
    k : int
        Cut-off rank.

    Returns
    -------
    float
        In [0, 1]; NaN when no object in the pool is relevant (ideal DCG 0).

    Examples
    --------
    >>> ndcg_at_k([1, 0, 0], [0, 0, 1], k=3)
    1.0
    >>> round(ndcg_at_k([0, 1], [1, 0], k=2), 4)  # 1/log2(3)
    0.6309
    """
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")
    ranked = np.asarray(rel_in_ranked_order, dtype=float)[:k]
    ideal = np.sort(np.asarray(all_rel, dtype=float))[::-1][:k]
    idcg = float((_gains(ideal) * _discounts(len(ideal))).sum())
    if idcg <= 0:
        return float("nan")
    dcg = float((_gains(ranked) * _discounts(len(ranked))).sum())
    return dcg / idcg


def recall_at_k(rel_in_ranked_order: Sequence[float], all_rel: Sequence[float], k: int = 100,
                threshold: float = RELEVANT) -> float:
    """Fraction of the relevant objects (``rel > threshold``) found in the top ``k``.

    Examples
    --------
    >>> recall_at_k([1, 0, 1], [1, 0, 1, 1], k=2)
    0.3333333333333333
    """
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")
    n_rel = int((np.asarray(all_rel, dtype=float) > threshold).sum())
    if n_rel == 0:
        return float("nan")
    found = int((np.asarray(rel_in_ranked_order, dtype=float)[:k] > threshold).sum())
    return found / n_rel


def expected_random(all_rel: Sequence[float], k_ndcg: int = 10, k_recall: int = 100,
                    threshold: float = RELEVANT) -> tuple[float, float]:
    """Exact expected nDCG@k and recall@k of a uniformly random ranking.

    Every rank holds, on average, the mean gain of the pool, and a random
    top ``k`` holds a fraction ``k / N`` of the relevant objects.

    Examples
    --------
    >>> nd, rc = expected_random([1, 0, 0, 0], k_ndcg=1, k_recall=2)
    >>> nd, rc
    (0.25, 0.5)
    """
    rel = np.asarray(all_rel, dtype=float)
    n = len(rel)
    if n == 0:
        return float("nan"), float("nan")
    ideal = np.sort(rel)[::-1][:k_ndcg]
    idcg = float((_gains(ideal) * _discounts(len(ideal))).sum())
    edcg = float(_gains(rel).mean() * _discounts(min(k_ndcg, n)).sum())
    nd = edcg / idcg if idcg > 0 else float("nan")
    n_rel = int((rel > threshold).sum())
    rc = min(k_recall, n) / n if n_rel else float("nan")
    return nd, rc


def rank_metrics(scores: np.ndarray, rel: np.ndarray, k_ndcg: int = 10, k_recall: int = 100) -> tuple[float, float]:
    """``(nDCG@k_ndcg, recall@k_recall)`` of the ranking by ``scores`` (highest first, ties stable)."""
    order = np.argsort(-scores, kind="stable")
    ranked = rel[order]
    return ndcg_at_k(ranked, rel, k_ndcg), recall_at_k(ranked, rel, k_recall)
