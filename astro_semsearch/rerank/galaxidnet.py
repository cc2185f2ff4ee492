"""GalaxIDNet's similarity score (weighted cosine + 1/(1 + L2) + 1/(1 + L3)) as a re-ranker."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .._validate import check_matrix
from ..exceptions import InvalidInputError
from ..search import Reranker

__all__ = ["GalaxIDNetReranker", "galaxidnet_similarity"]


def galaxidnet_similarity(a, b, weights: Sequence[float] = (1.0, 1.0, 1.0)) -> np.ndarray | float:
    """GalaxIDNet's similarity: ``w_cos cos(a, b) + w_l2 / (1 + |a-b|_2) + w_l3 / (1 + |a-b|_3)``.

    ``|x|_p = (sum |x_i|**p)**(1/p)`` is the Minkowski distance. The third
    term is the true p = 3 distance: GalaxIDNet's published code computed the
    L2 distance twice, so its "L3" term was a second copy of L2.

    What it measures, and what not: on unit vectors (everything in an
    index) ``|a-b|_2 = sqrt(2 - 2 cos)`` is a monotone function of the cosine,
    so the first two terms rank candidates identically and add nothing but a
    different scale. Only the L3 term can change an order: it weights large
    single-coordinate differences more than many small ones. The score is not
    calibrated (no probability, no threshold) and is not bounded by 1: with
    the default weights it runs from about 0.2 (opposite) to 3 (identical).

    Parameters
    ----------
    a, b : array-like, shape ``(..., dim)``
        Embeddings; broadcast against each other.
    weights : (w_cos, w_l2, w_l3)
        Non-negative weights, not all zero.

    Returns
    -------
    float or numpy.ndarray
        Shape of the broadcast leading dimensions.

    Examples
    --------
    >>> round(float(galaxidnet_similarity([1.0, 0.0], [1.0, 0.0])), 6)
    3.0
    >>> round(float(galaxidnet_similarity([1.0, 0.0], [0.0, 1.0], weights=(0, 0, 1))), 6)  # 1/(1+2**(1/3))
    0.442493
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (3,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() == 0:
        raise InvalidInputError(f"weights must be three non-negative numbers (w_cos, w_l2, w_l3), not all zero, "
                         f"got {weights!r}")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1]:
        raise InvalidInputError(f"a and b must be embeddings of the same dimension, got shapes {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    if (na == 0).any() or (nb == 0).any():
        raise InvalidInputError("galaxidnet_similarity: a zero-length embedding has no direction")
    cos = (a * b).sum(axis=-1) / (na * nb)
    diff = np.abs(a - b)
    l2 = np.sqrt((diff**2).sum(axis=-1))
    l3 = np.cbrt((diff**3).sum(axis=-1))
    out = w[0] * cos + w[1] / (1.0 + l2) + w[2] / (1.0 + l3)
    return float(out) if np.ndim(out) == 0 else out


class GalaxIDNetReranker(Reranker):
    """Re-score candidates with GalaxIDNet's similarity to the query vector.

    See `galaxidnet_similarity` for the formula and for what it does and
    does not measure. With the index's unit vectors the cosine and L2 terms
    agree with the search's own ranking, so this re-ranker can only change
    the order through the L3 (Minkowski p = 3) term; ``weights=(0, 0, 1)``
    isolates that effect.

    Parameters
    ----------
    weights : (w_cos, w_l2, w_l3)
        Default ``(1, 1, 1)``, the unweighted sum (the issue that asked for
        this score gives its form, not GalaxIDNet's tuned weights).
    """

    name = "galaxidnet"

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0)):
        galaxidnet_similarity([1.0], [1.0], weights)  # validates the weights
        self.weights = tuple(float(w) for w in weights)

    def describe(self) -> dict:
        return {"weights": list(self.weights)}

    def __call__(self, query, candidates, *, vectors, images=None):
        vectors = check_matrix(vectors, query.vector.size, len(candidates))
        return np.asarray(galaxidnet_similarity(query.vector[None, :], vectors, self.weights)).reshape(-1)
