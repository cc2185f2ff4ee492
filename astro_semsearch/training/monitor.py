"""The training monitor: GalaxIDNet's "mini-search loose accuracy" on a fixed validation gallery."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ..datasets import load_gz2, split_of
from ..exceptions import InvalidInputError
from .augment import center_crop
from .symbols import gz2_label

__all__ = ["mini_search_loose_accuracy", "Monitor", "make_monitor"]


def mini_search_loose_accuracy(embeddings, labels, k: int = 3) -> dict:
    """GalaxIDNet's "mini-search loose accuracy" of a small labelled gallery.

    Every gallery member is used as a query against all the others (itself
    excluded, as GalaxIDNet's search skips the query image); the query counts
    as correct when **any** of its ``k`` most similar members (dot product)
    has the same label.

    What it measures: whether same-class neighbours exist near the top of an
    image-similarity search. What it does not: ranking quality within the
    top ``k`` (a hit at rank 1 or rank ``k`` counts the same), how many of
    the ``k`` are right, text search, or anything below rank ``k``. The
    overall value is dominated by the common classes (a gallery that is 25%
    round smooth galaxies gives a random ranking a high score), so the
    per-class mean (``macro``) and the exact expectation for a random
    ranking (``chance``) are returned alongside.

    Parameters
    ----------
    embeddings : array-like, shape (n, dim)
        Unit vectors of the gallery.
    labels : array-like, shape (n,)
        One class label per member.
    k : int
        Number of results inspected per query (GalaxIDNet's search returns 3).

    Returns
    -------
    dict
        ``loose_accuracy`` (fraction of queries with a hit), ``macro`` (mean
        over the classes with at least 2 members of their own fraction; a
        class with one member can never be found), ``chance`` (expected
        ``loose_accuracy`` of a uniformly random ranking), ``per_class``
        ({label: fraction}), ``k`` and ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    >>> r = mini_search_loose_accuracy(emb, ["a", "a", "b", "b"], k=1)
    >>> r["loose_accuracy"], r["macro"]
    (1.0, 1.0)
    >>> round(r["chance"], 4)   # one of the 3 others shares the label
    0.3333
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels)
    if emb.ndim != 2 or len(emb) != len(lab):
        raise InvalidInputError(f"need (n, dim) embeddings and n labels, got shapes {emb.shape} and {lab.shape}")
    n = len(emb)
    if n < 2:
        raise InvalidInputError(f"the gallery needs at least 2 members, got {n}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
    k = int(min(k, n - 1))
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    hit = (lab[top] == lab[:, None]).any(axis=1)
    classes, inverse, counts = np.unique(lab, return_inverse=True, return_counts=True)
    per_class = {str(c): float(hit[inverse == i].mean()) for i, c in enumerate(classes)}
    # A class with one member can never be found again: it is left out of the class mean.
    findable = [per_class[str(c)] for c, m in zip(classes, counts) if m > 1]
    # Random top k (k of the n-1 others): P(no same-label member) = C(n-m, k) / C(n-1, k)
    # for a query whose class has m members (m-1 of them among the others).
    m = counts[inverse]
    miss = np.array([math.comb(n - int(mi), k) / math.comb(n - 1, k) for mi in m])
    return {"loose_accuracy": float(hit.mean()), "macro": float(np.mean(findable)) if findable else float("nan"),
            "chance": float(np.mean(1.0 - miss)), "per_class": per_class, "k": k, "n": n}


class Monitor:
    """A fixed mini gallery of labelled validation galaxies, searched after every epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, k: int, image_size: int, crop_fraction: float):
        self.x = center_crop(torch.from_numpy(images), image_size, crop_fraction)
        self.labels = labels
        self.k = k

    @torch.no_grad()
    def __call__(self, model, device) -> dict:
        was = model.training
        model.eval()
        try:
            emb = torch.cat([model.encode_image_tensor(self.x[s:s + 256].to(device)).cpu()
                             for s in range(0, len(self.x), 256)]).numpy()
        finally:
            model.train(was)
        return mini_search_loose_accuracy(emb, self.labels, self.k)


def make_monitor(cfg: dict, out: Path, model) -> Monitor | None:
    """The monitor's gallery: a seeded random subset of the labelled validation split."""
    m = cfg.get("monitor", {})
    if not m.get("enabled", True) or int(m.get("n_gallery", 0)) < 2:
        return None
    table = load_gz2(cfg["data"]["gz2_root"])
    val = np.flatnonzero([split_of(g) == "val" for g in table["galaxy_id"]])
    labels = np.array([gz2_label({c: table[c][i] for c in table.colnames}) or "" for i in val], dtype=object)
    val, labels = val[labels != ""], labels[labels != ""]
    if len(val) < 2:
        warnings.warn(f"the mini-search monitor needs at least 2 labelled validation galaxies, found {len(val)}; "
                      "it is off for this run", stacklevel=2)
        return None
    rng = np.random.default_rng(int(m.get("seed", 0)))
    pick = np.sort(rng.choice(len(val), min(int(m["n_gallery"]), len(val)), replace=False))
    from .data import preload

    images = preload(table[val[pick]], cfg, out)
    return Monitor(images, labels[pick].astype(str), int(m.get("k", 3)), model.image_size,
                    float(model.config["crop_fraction"]))
