"""Relevance feedback (Rocchio): you mark hits good or bad, the query moves toward the good ones.

`FeedbackReranker` re-scores the hits already found; `feedback_search`
searches the whole index again with the moved query.
"""
from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Row, Table

from .._validate import check_int, check_matrix, check_number, unit_rows, unit_vector
from ..exceptions import InvalidInputError, InvalidTypeError
from ..search import Query, Reranker, similar_to
from ..search.reranking import results_index, results_meta, results_query

__all__ = ["FeedbackReranker", "feedback_search", "rocchio"]


def rocchio(query: np.ndarray, good: np.ndarray | None = None, bad: np.ndarray | None = None, *,
            alpha: float = 1.0, beta: float = 0.75, gamma: float = 0.25) -> np.ndarray:
    """The Rocchio-moved query ``unit(alpha q + beta mean(good) - gamma mean(bad))``.

    Each marked embedding is normalised first; an empty group contributes
    nothing.

    Examples
    --------
    >>> rocchio(np.array([1.0, 0.0]), good=np.array([[0.0, 1.0]]), beta=1.0).round(4).tolist()
    [0.7071, 0.7071]
    """
    q = unit_vector(query).astype(np.float64)
    moved = alpha * q
    if good is not None and len(good):
        moved = moved + beta * unit_rows(check_matrix(good, q.size, what="good embeddings")).mean(axis=0)
    if bad is not None and len(bad):
        moved = moved - gamma * unit_rows(check_matrix(bad, q.size, what="bad embeddings")).mean(axis=0)
    return unit_vector(moved, "moved query (the feedback cancels the query out)")


def _as_marks(value, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, Row, int, np.integer)):
        return [value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return [np.atleast_2d(value)]  # embeddings: one block
    if isinstance(value, Table):
        return [value[i] for i in range(len(value))]
    try:
        return list(value)
    except TypeError:
        raise InvalidTypeError(f"{name} must be object ids, result rows, row numbers or embeddings, "
                        f"got {type(value).__name__}") from None


class FeedbackReranker(Reranker):
    """Relevance feedback: move the query toward good hits and away from bad ones (Rocchio).

    The moved query is ``unit(alpha q + beta mean(good) - gamma mean(bad))``
    and every candidate is re-scored by its cosine similarity with it. Marked
    good hits rise and bad hits sink, and so do the galaxies that look like
    them -- the point of feedback.

    Parameters
    ----------
    good, bad : sequence, optional
        The hits you marked. Each entry may be an ``object_id`` string (any
        galaxy of the index, not only a hit), a row of the results table,
        a row number of the results table given to `rerank` (0-based:
        ``results[i]``), or a float array of embeddings (``(dim,)`` or
        ``(n, dim)``). At least one mark is required.
    alpha, beta, gamma : float
        Weights of the original query, the good mean and the bad mean
        (the textbook 1, 0.75, 0.25).

    Notes
    -----
    Feedback is an *oracle* signal: the hits you mark move by construction.
    Its value is how it re-orders the hits you did *not* look at; the
    evaluation reports that separately (``residual``). `feedback_search`
    applies the same moved query to the whole index, which also finds good
    galaxies the first search ranked below ``top_n``.

    Examples
    --------
    >>> fb = FeedbackReranker(good=[np.array([0.0, 1.0])], beta=1.0)
    >>> q = Query(None, [1.0, 0.0])
    >>> fb(q, Table({"object_id": ["x", "y"]}), vectors=np.array([[1.0, 0.0], [0.6, 0.8]])).round(3).tolist()
    [0.707, 0.99]
    """

    name = "feedback"

    def __init__(self, good=None, bad=None, *, alpha: float = 1.0, beta: float = 0.75, gamma: float = 0.25):
        self.good = _as_marks(good, "good")
        self.bad = _as_marks(bad, "bad")
        if not self.good and not self.bad:
            raise InvalidInputError("relevance feedback needs at least one hit marked good or bad (good=..., bad=...)")
        self.alpha = check_number(alpha, "alpha", 0.0)
        self.beta = check_number(beta, "beta", 0.0)
        self.gamma = check_number(gamma, "gamma", 0.0)
        self._good_vecs: np.ndarray | None = None
        self._bad_vecs: np.ndarray | None = None
        self._labels: dict[str, list[str]] = {"good": [], "bad": []}
        # Marks that are embeddings or object ids need no table: resolve what we can now.
        if not self._needs_table():
            self._resolve(None, None)

    @property
    def needs_index(self) -> bool:
        """True when marks are object ids, rows or row numbers: they are looked up in the index."""
        return self._needs_table()

    def _needs_table(self) -> bool:
        return any(isinstance(m, (str, Row, int, np.integer)) for m in self.good + self.bad)

    def describe(self) -> dict:
        return {"good": self._labels["good"] or len(self.good), "bad": self._labels["bad"] or len(self.bad),
                "alpha": self.alpha, "beta": self.beta, "gamma": self.gamma}

    def _resolve(self, results: Table | None, index) -> None:
        blocks: dict[str, list[np.ndarray]] = {"good": [], "bad": []}
        labels: dict[str, list[str]] = {"good": [], "bad": []}
        for kind, marks in (("good", self.good), ("bad", self.bad)):
            ids = []
            for m in marks:
                if isinstance(m, np.ndarray) and m.dtype.kind == "f":
                    blocks[kind].append(np.atleast_2d(np.asarray(m, dtype=np.float32)))
                    labels[kind].extend(["<embedding>"] * len(np.atleast_2d(m)))
                elif isinstance(m, Row):
                    if "object_id" not in m.colnames:
                        raise InvalidInputError(f"a {kind} row has no object_id column")
                    ids.append(str(m["object_id"]))
                elif isinstance(m, (int, np.integer)) and not isinstance(m, bool):
                    if results is None:
                        raise InvalidInputError(f"{kind} row number {int(m)} needs the results table: use rerank(results, "
                                         "...) or give object ids")
                    if not -len(results) <= int(m) < len(results):
                        raise InvalidInputError(f"{kind} row number {int(m)} is outside the results table "
                                         f"({len(results)} rows; row numbers are 0-based: results[i])")
                    ids.append(str(results["object_id"][int(m)]))
                elif isinstance(m, str):
                    if not m.strip():
                        raise InvalidInputError(f"{kind} contains an empty object id")
                    ids.append(m.strip())
                else:
                    raise InvalidTypeError(f"{kind} entries must be object ids, result rows, row numbers or float "
                                    f"embeddings, got {m!r} ({type(m).__name__})")
            if ids:
                if index is None:
                    raise InvalidInputError(f"{kind} object ids {ids[:3]} need the index to look up their embeddings; "
                                     "pass index=... to rerank")
                rows = np.asarray(index.rows_of(ids))
                if (rows < 0).any():
                    missing = [i for i, r in zip(ids, rows) if r < 0]
                    raise InvalidInputError(f"{kind} object ids not in index {index.name!r}: {missing[:5]}")
                blocks[kind].append(index.vectors(rows))
                labels[kind].extend(ids)
        self._good_vecs = np.vstack(blocks["good"]) if blocks["good"] else None
        self._bad_vecs = np.vstack(blocks["bad"]) if blocks["bad"] else None
        self._labels = labels

    def prepare(self, results: Table, index) -> None:
        self._resolve(results, index)

    def moved_query(self, query: Query | np.ndarray) -> np.ndarray:
        """The Rocchio-moved unit query vector (marks must be resolved: see `prepare`)."""
        if self._good_vecs is None and self._bad_vecs is None:
            raise InvalidInputError("the marked hits have not been turned into embeddings yet; use rerank(results, "
                             "FeedbackReranker(...)) or feedback_search")
        vec = query.vector if isinstance(query, Query) else query
        return rocchio(vec, self._good_vecs, self._bad_vecs, alpha=self.alpha, beta=self.beta, gamma=self.gamma)

    def __call__(self, query, candidates, *, vectors, images=None):
        moved = self.moved_query(query)
        vectors = check_matrix(vectors, moved.size, len(candidates))
        return unit_rows(vectors) @ moved.astype(np.float64)


def feedback_search(results: Table, good=None, bad=None, k: int | None = None, *, alpha: float = 1.0,
                    beta: float = 0.75, gamma: float = 0.25, query=None, index=None, model=None,
                    min_separation=None, region=None) -> Table:
    """Search the whole index again with the query moved by your feedback.

    `rerank` with `FeedbackReranker` only re-orders hits already found;
    this runs the moved query (see `FeedbackReranker`) over the whole index,
    so galaxies like your good hits that the first search ranked low come up
    too. Use it for a second round; mark hits again and repeat.

    Parameters
    ----------
    results : `~astropy.table.Table`
        The table you marked (its meta names the query and the index).
    good, bad
        As in `FeedbackReranker`.
    k : int, optional
        Number of galaxies to return (default ``len(results)``).
    min_separation : angle, optional
        Near-duplicate suppression (default: what the first search used).
    query, index, model, region
        As in `rerank` / `~astro_semsearch.semantic_search`.

    Returns
    -------
    `~astropy.table.Table`
        A search result (as `~astro_semsearch.similar_to` returns for a
        vector) whose meta records ``function = "feedback_search"``, the
        original query and the ``feedback`` (marks and weights).

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=20)                          # doctest: +SKIP
    >>> again = feedback_search(hits, good=[hits[2], hits[5]], bad=[hits[0]])  # doctest: +SKIP
    """
    if not isinstance(results, Table) or len(results) == 0:
        raise InvalidInputError("feedback_search needs the (non-empty) results table you marked")
    fb = FeedbackReranker(good, bad, alpha=alpha, beta=beta, gamma=gamma)
    idx = results_index(results, index)
    rq = results_query(query, results, idx, model)
    fb.prepare(results, idx)
    moved = fb.moved_query(rq)
    meta = results_meta(results)
    if min_separation is None and meta.get("min_separation_arcsec") is not None:
        min_separation = float(meta["min_separation_arcsec"]) * u.arcsec
    k = len(results) if k is None else check_int(k, "k")
    out = similar_to(moved, k, index=idx, model=model, exclude_self=False, min_separation=min_separation,
                     region=region)
    new = out.meta["astro_semsearch"]
    new.update({"function": "feedback_search", "query": meta.get("query", rq.text),
                "feedback": fb.describe()})
    new.pop("target_object_id", None)
    new.pop("exclude_self", None)
    return out
