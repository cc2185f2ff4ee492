"""The probe: how well a linear read-out of the image embeddings ranks each class, the ceiling of text search.

A text query ranks galaxies by ``emb @ q``. The best any single direction
``q`` can do is bounded by the best *linear* read-out of the embeddings: a
ridge regression from the image embedding to the class's relevance. The
probe is that regression, fitted on galaxies of the *other* split (``train``
when ``val`` is evaluated) chosen by the same pool rule
(`~astro_semsearch.evaluation.protocol.gz2_pool`), then used to rank the
evaluated pool exactly as a text query does. The gap between the *text* and
*probe* columns is what better text alignment can still win; the gap
between the probe and 1 is the image encoder's.

* Galaxy Zoo rows: relevance = the class's vote fraction.
* DECaLS ring: the Galaxy Zoo ring probe (``Class8.1``), unchanged: a transfer.
* Injected-lens rows: injected (1) or not (0) on ``lens_hosts`` lens hosts of
  the other split, ``lens_fraction`` of them with arcs from the row's own
  simulator under seeds that neither training nor the evaluated pools use.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 3))
>>> w, b, alpha = ridge_fit(x, x @ [1.0, -2.0, 0.5] + 3.0)
>>> np.round(w, 2).tolist(), round(b, 2)
([1.0, -2.0, 0.5], 3.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..datasets import load_gz2, load_images, split_of
from ..exceptions import InvalidInputError
from .protocol import CLASSES, gz2_pool

__all__ = ["PROBE_ALPHAS", "Probe", "ridge_fit", "fit_probes"]

#: Ridge penalties tried by the probe's internal cross-validation (the embeddings are unit vectors).
PROBE_ALPHAS = (1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)

# Seeds of the probes' own arcs: away from training's ([train] seed) and the evaluated pools' (10,000 / 20,000).
_PROBE_SEEDS = {"ArcInjector": 30_000, "RayTracedLensSimulator": 40_000}


@dataclass
class Probe:
    """A fitted linear read-out: ``score = emb @ w + b``, penalty ``alpha``, fitted on ``n`` galaxies."""

    w: np.ndarray
    b: float
    alpha: float
    n: int


def ridge_fit(x, y, alphas: Sequence[float] = PROBE_ALPHAS, n_folds: int = 5,
              seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Ridge regression ``y ~ x @ w + b`` with the penalty chosen by k-fold cross-validation.

    Closed form (one SVD per fold, NumPy only). The penalty with the lowest
    held-out mean squared error over ``n_folds`` random folds is used to refit
    on all rows; the intercept is not penalised.

    Parameters
    ----------
    x : array-like, shape (n, d)
    y : array-like, shape (n,)
    alphas : sequence of float
        Candidate penalties.
    n_folds : int
        Folds of the internal cross-validation (fewer when ``n`` is small).
    seed : int
        Seeds the fold assignment.

    Returns
    -------
    w : numpy.ndarray, shape (d,)
    b : float
    alpha : float
        The chosen penalty.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != (len(x),):
        raise InvalidInputError(f"ridge_fit needs (n, d) features and n targets, got shapes {x.shape} and {y.shape}")
    if len(x) < 2:
        raise InvalidInputError(f"ridge_fit needs at least 2 rows, got {len(x)}")
    alphas = [float(a) for a in alphas]

    def solve(xa, ya):
        mx, my = xa.mean(0), ya.mean()
        u, sv, vt = np.linalg.svd(xa - mx, full_matrices=False)
        return mx, my, sv, vt, u.T @ (ya - my)

    def coef(parts, a):
        mx, my, sv, vt, uty = parts
        w = vt.T @ (sv / (sv ** 2 + a) * uty)
        return w, my - mx @ w

    k = int(min(n_folds, len(x)))
    alpha = alphas[0]
    if len(alphas) > 1 and k >= 2:
        fold = np.random.default_rng(seed).permutation(len(x)) % k
        err = np.zeros(len(alphas))
        for f in range(k):
            tr, te = fold != f, fold == f
            if tr.sum() < 2:
                continue
            parts = solve(x[tr], y[tr])
            for j, a in enumerate(alphas):
                w, b = coef(parts, a)
                err[j] += float(((x[te] @ w + b - y[te]) ** 2).sum())
        alpha = alphas[int(np.argmin(err))]
    w, b = coef(solve(x, y), alpha)
    return w, float(b), alpha


def fit_probes(model, wanted: set[str], *, gz2_root, split: str, seed: int, embed: Callable[[np.ndarray], np.ndarray],
               size: int, progress: bool = False, lens_hosts: int = 1500,
               lens_fraction: float = 0.2) -> dict[str, Probe]:
    """One `Probe` per wanted class (``"ring"``'s also serves the DECaLS ring row), fitted on the other split.

    ``embed`` maps an ``(N, size, size, 3)`` uint8 stack to ``(N, dim)``
    embeddings; images are decoded at ``size`` pixels, as the pools are.
    """
    gz2 = load_gz2(gz2_root)
    other = "train" if split == "val" else "val"
    in_other = np.array([split_of(g) == other for g in gz2["galaxy_id"]], dtype=bool)
    ids = {c.id for c in CLASSES if c.source == "gz2" and c.id in wanted}
    if "decals_ring" in wanted:
        ids.add("ring")
    pools = {c.id: gz2_pool(gz2, c, in_other) for c in CLASSES if c.id in ids}
    need = sorted({int(r) for rows, _ in pools.values() for r in rows})
    emb = {}
    if need:
        emb = dict(zip(need, embed(load_images(list(gz2["path"][need]), size=size, progress=progress))))
    out: dict[str, Probe] = {}
    for cid, (rows, rel) in pools.items():
        if len(rows) >= 2 and np.ptp(rel) > 0:
            w, b, alpha = ridge_fit(np.array([emb[int(r)] for r in rows]), rel, seed=seed)
            out[cid] = Probe(w, b, alpha, len(rows))
    lens_classes = [c for c in CLASSES if c.source == "injected" and c.id in wanted]
    if lens_classes:
        out.update(_lens_probes(gz2, in_other, lens_classes, embed, size, seed, progress, lens_hosts, lens_fraction))
    return out


def _lens_probes(gz2, in_other, classes, embed, size, seed, progress, lens_hosts, lens_fraction) -> dict[str, Probe]:
    """Injected (1) vs not (0) on lens hosts of the other split, with each class's own simulator."""
    from ..lensing import lens_host_mask
    from .pools import simulator

    hosts = np.flatnonzero(in_other & lens_host_mask(gz2))
    rng = np.random.default_rng([seed, 7])
    if len(hosts) > lens_hosts:
        hosts = np.sort(rng.choice(hosts, lens_hosts, replace=False))
    n_inj = int(round(lens_fraction * len(hosts)))
    if len(hosts) < 2 or not 1 <= n_inj < len(hosts):
        return {}
    images = load_images(list(gz2["path"][hosts]), size=size, progress=progress)
    plain = embed(images)
    chosen = rng.choice(len(hosts), size=n_inj, replace=False)
    y = np.zeros(len(hosts))
    y[chosen] = 1.0
    out = {}
    for c in classes:
        sim = simulator(c, _PROBE_SEEDS[c.simulator] + seed, size)
        x = plain.copy()
        x[chosen] = embed(sim.inject(images[chosen], sim.arcs(n_inj)))
        w, b, alpha = ridge_fit(x, y, seed=seed)
        out[c.id] = Probe(w, b, alpha, len(hosts))
    return out
