"""Scores that mean the same for every query: each hit against the index's background, and a verdict.

A cosine similarity depends on the query: some phrasings sit close to every
galaxy, so 0.8 can be a poor match for one query and 0.6 a perfect one for
another. Each hit therefore also gets

``percentile``
    the percentage of the index's galaxies (a fixed random sample of up to
    4096, `~astro_semsearch.index.sampling.BackgroundSample`) that score lower
    for the same query: 99.9 means "better than almost every galaxy";
``excess``
    its score minus the median score of that background: how much more the
    query points at this galaxy than at a typical one.

Both can be compared between queries and between indexes.

`match_verdict` then says whether anything matched at all: the query text is
compared with the phrases the model was trained on (its text bank,
`~astro_semsearch.model.GalaxyModel.text_similarity`), and the best hit's
excess with the model's calibrated threshold. A query that fails either
test gets a `~astro_semsearch.exceptions.NoGoodMatchWarning` and the verdict
in ``meta["astro_semsearch"]["match"]``. The thresholds live in the model's
``config.json`` (``score_calibration``), set by the calibration recipe
(``data/recipes/calibrate_scores.py``) on queries and off-topic phrases that
are not the evaluation's. The shipped models set no ``min_excess``: measured
against reference galaxies of each class, the best hits of a pool without
the class score about as high as those of a pool with it
(``data/recipes/try_absence_test.py``), so only the text test is used.
"""
from __future__ import annotations

import numpy as np

__all__ = ["background_scores", "hit_statistics", "match_verdict"]


def background_scores(index, qvec: np.ndarray) -> np.ndarray:
    """The query's scores for the index's background sample, sorted."""
    # einsum, not matmul: one query's 4096 dot products are too small a job for BLAS's thread pool,
    # which on busy cores costs milliseconds to wake.
    return np.sort(np.einsum("nd,d->n", index.background_sample(), np.asarray(qvec, dtype=np.float32)))


#: Scores closer than this count as equal. A hit is often in the background sample itself, and FAISS and
#: NumPy compute its score with different float32 kernels: without it a hit could score "below itself".
SCORE_TOLERANCE = 1e-5


def hit_statistics(background: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(percentile, excess)`` of each hit's score against the background scores.

    The percentile is the share of background scores lower than the hit's
    by more than `SCORE_TOLERANCE`, so a hit never outranks its own copy in
    the background:

    >>> p, e = hit_statistics(np.array([0.1, 0.2, 0.5]), np.array([0.5 + 1e-7, 0.5 - 1e-7]))
    >>> [round(float(v), 2) for v in p]
    [66.67, 66.67]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if background.size == 0:
        return np.full(scores.shape, np.nan), np.full(scores.shape, np.nan)
    below = np.searchsorted(background, scores - SCORE_TOLERANCE, side="left")
    percentile = 100.0 * below / background.size
    return percentile, scores - float(np.median(background))


def match_verdict(model, texts, best_excess: float | None) -> dict:
    """Whether the query found anything that matches, and why not.

    Returns a JSON-able dict: ``good`` (bool), ``reasons`` (list of str),
    ``text_similarity`` (or None without a text bank), ``best_excess`` and
    the thresholds used.
    """
    cal = (getattr(model, "config", None) or {}).get("score_calibration") or {}
    reasons = []
    sim = None
    if texts and cal.get("min_text_similarity") is not None and getattr(model, "text_bank", None) is not None:
        sim = float(np.max(model.text_similarity(list(texts))))
        if sim < float(cal["min_text_similarity"]):
            reasons.append(f"the query is unlike anything the model was trained on (text similarity {sim:.2f} < "
                           f"{float(cal['min_text_similarity']):.2f})")
    if best_excess is not None and cal.get("min_excess") is not None and best_excess < float(cal["min_excess"]):
        reasons.append(f"no galaxy matches better than the index's background (best excess {best_excess:.3f} < "
                       f"{float(cal['min_excess']):.3f})")
    return {"good": not reasons, "reasons": reasons, "text_similarity": None if sim is None else round(sim, 4),
            "best_excess": None if best_excess is None else round(float(best_excess), 4),
            "thresholds": {k: cal.get(k) for k in ("min_text_similarity", "min_excess")}}
