"""Query expansion from the top hits (pseudo-relevance feedback): no user input needed."""
from __future__ import annotations

import numpy as np

from .._validate import check_int, check_matrix, check_number, unit_rows, unit_vector
from ..search import Reranker

__all__ = ["ExpansionReranker", "expand_query"]


def expand_query(query: np.ndarray, top_vectors: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """``unit((1 - weight) q + weight unit(mean(top_vectors)))``.

    Examples
    --------
    >>> expand_query(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [0.0, 1.0]]), 0.5).round(4).tolist()
    [0.7071, 0.7071]
    """
    q = unit_vector(query).astype(np.float64)
    top = unit_rows(check_matrix(top_vectors, q.size, what="top-hit embeddings"))
    centroid = unit_vector(top.mean(axis=0), "mean of the top hits")
    return unit_vector((1.0 - weight) * q + weight * centroid, "expanded query")


class ExpansionReranker(Reranker):
    """Query expansion from the top hits (pseudo-relevance feedback).

    The query is mixed with the mean embedding of its own first ``n`` hits,
    ``q' = unit((1 - weight) q + weight unit(mean(v_1..v_n)))``, and every
    candidate is re-scored by cosine similarity with ``q'``. For a text query
    this pulls the query from the text side of the shared embedding space
    toward the *image* side, where the hits live; it helps when the top hits
    are mostly right and hurts when they are mostly wrong (query drift).

    Parameters
    ----------
    n : int
        Number of top hits (in search order) averaged; all candidates if fewer.
    weight : float
        In [0, 1]: 0 keeps the original ranking, 1 ranks by the centroid alone.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> from astro_semsearch.rerank import ExpansionReranker
    >>> from astro_semsearch.search import Query
    >>> ex = ExpansionReranker(n=1, weight=0.5)
    >>> q = Query("bar", [1.0, 0.0])
    >>> ex(q, Table({"object_id": ["a", "b"]}), vectors=np.array([[0.0, 1.0], [1.0, 0.0]])).round(4).tolist()
    [0.7071, 0.7071]
    """

    name = "expansion"

    def __init__(self, n: int = 10, weight: float = 0.5):
        self.n = check_int(n, "n")
        self.weight = check_number(weight, "weight", 0.0, 1.0)

    def describe(self) -> dict:
        return {"n": self.n, "weight": self.weight}

    def __call__(self, query, candidates, *, vectors, images=None):
        vectors = check_matrix(vectors, query.vector.size, len(candidates))
        moved = expand_query(query.vector, vectors[: self.n], self.weight)
        return unit_rows(vectors) @ moved
