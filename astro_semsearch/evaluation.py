"""Measure search quality: nDCG@10 and recall@100 per morphology class.

The protocol follows AION-Search (Koblischke et al. 2025) so numbers can be
compared with theirs:

* **Pool.** For the Galaxy Zoo 2 (GZ2) classes, the galaxies of the
  validation split (``split_of(id) == "val"``, never seen in training) whose
  votes for the class are known (37-column rows for spiral and bar, 17- or
  37-column rows otherwise). For the DECaLS rings, all 236 DECaLS galaxies
  (never used in training: a transfer test on another survey). For
  "injected lens", the validation smooth galaxies, with simulated arcs
  (`~astro_semsearch.training.lensing.ArcInjector`, a seed different from
  training's) injected into a random 3 % of them. That class is synthetic:
  it measures whether the model learned the *simulated* arcs.
* **Relevance.** ``rel`` in [0, 1] is the Galaxy Zoo weighted vote fraction
  of the class's answer (e.g. ``Class4.1`` for spiral); 0/1 for the DECaLS
  ring tags and for the injected lenses.
* **nDCG@10.** Gain ``2**rel - 1``, discount ``log2(rank + 1)``, normalised
  by the ideal DCG@10 of the *whole pool* (`ndcg_at_k`).
* **recall@100.** Fraction of the relevant objects (``rel > 0.5``; their
  number is ``n_rel``) that appear in the top 100 (`recall_at_k`).
* **Methods.** *text*: rank the pool by cosine similarity to the embedded
  query; the score is the mean over several phrasings per class
  (``astro_semsearch/data/eval_queries.toml``, written independently of the training
  captions). *image*: rank by similarity to the image of one of the 5 most
  confident members (each excluded from its own ranking and from its own
  ideal DCG), mean over the 5. *random*: the exact expected value for a
  uniformly random ranking.
* **Re-rankers** (``rerank=[...]``, ``--rerank``): each text ranking's first
  ``rerank_top_n`` hits are re-ranked with `astro_semsearch.rerank.rerank`
  and measured again (columns ``ndcg10_<name>``, ``recall100_<name>``). The
  relevance-feedback re-ranker is driven by a simulated *oracle user* who
  marks the first ``feedback_marks`` hits good (``rel > 0.5``) or bad; the
  marked hits then move by construction, so the ``*_residual`` columns also
  measure both rankings with the marked hits removed (from the ranking and
  from the ideal DCG).

Examples
--------
>>> from astro_semsearch.evaluation import ndcg_at_k
>>> ndcg_at_k([1.0, 0.0], [0.0, 1.0], k=2)
1.0
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["CLASSES", "EvalClass", "ndcg_at_k", "recall_at_k", "expected_random", "load_queries", "gz2_pool", "evaluate",
           "parse_reranker", "to_markdown", "to_rst", "add_cli"]

#: Objects with ``rel`` above this count as relevant for recall and ``n_rel``.
RELEVANT = 0.5

#: Default location of the evaluation queries (in the source tree).
DEFAULT_QUERIES = Path(__file__).resolve().parent / "data" / "eval_queries.toml"


@dataclass(frozen=True)
class EvalClass:
    """One query class: its id, display name and where its relevance comes from."""

    id: str
    name: str
    source: str          # "gz2", "decals" or "injected"
    column: str | None   # the GZ2 vote-fraction column (or DECaLS column)
    needs_37: bool = False


#: The query classes, in table order.
CLASSES: tuple[EvalClass, ...] = (
    EvalClass("spiral", "spiral", "gz2", "Class4.1", needs_37=True),
    EvalClass("edge_on", "edge-on", "gz2", "Class2.1"),
    EvalClass("bar", "bar", "gz2", "Class3.1", needs_37=True),
    EvalClass("smooth", "round/smooth", "gz2", "Class1.1"),
    EvalClass("merger", "merger", "gz2", "Class8.6"),
    EvalClass("ring", "ring", "gz2", "Class8.1"),
    EvalClass("irregular", "irregular", "gz2", "Class8.4"),
    EvalClass("disturbed", "disturbed", "gz2", "Class8.3"),
    EvalClass("lens", "lens/arc", "gz2", "Class8.2"),
    EvalClass("dust_lane", "dust lane", "gz2", "Class8.7"),
    EvalClass("decals_ring", "DECaLS ring", "decals", "ring"),
    EvalClass("injected_lens", "injected lens (synthetic)", "injected", None),
)

_COLUMNS = ["class", "n_pool", "n_rel", "ndcg10_text", "ndcg10_image", "ndcg10_random",
            "recall100_text", "recall100_image", "recall100_random"]


# ---------------------------------------------------------------------------
# Pure metrics

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
        raise ValueError(f"k must be >= 1, got {k}")
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
        raise ValueError(f"k must be >= 1, got {k}")
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


# ---------------------------------------------------------------------------
# Queries

def load_queries(queries: str | os.PathLike | Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Read the per-class query phrasings (a TOML file ``class_id = [...]`` or a mapping)."""
    if queries is None:
        queries = DEFAULT_QUERIES
    if isinstance(queries, Mapping):
        data = dict(queries)
    else:
        path = Path(queries)
        if not path.is_file():
            raise FileNotFoundError(f"query file {path} not found (pass queries= / --queries with a TOML file "
                                    "mapping class ids to lists of phrasings)")
        with open(path, "rb") as f:
            data = tomllib.load(f)
    out = {}
    for key, value in data.items():
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError(f"queries for class {key!r} must be a non-empty list of strings")
        out[str(key)] = list(value)
    return out


# ---------------------------------------------------------------------------
# Evaluation

def gz2_pool(gz2, c: EvalClass, in_split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Galaxy Zoo 2 galaxies ranked for class ``c``, and their relevance.

    The pool is every galaxy of the split with votes and a finite vote
    fraction in ``c.column`` (for classes asked only in the full decision
    tree, ``c.needs_37``, those with all 37 vote columns); the relevance is
    that vote fraction, clipped to [0, 1]. Shared by `evaluate`,
    `astro_semsearch.vlm.evaluate_vlm` and the symbols comparison recipe, so
    that every number is computed on the same galaxies.

    Returns
    -------
    rows : ndarray of int
        Row numbers into ``gz2``.
    rel : ndarray of float
    """
    n_cols = np.asarray(gz2["n_vote_columns"])
    frac = np.asarray(gz2[c.column], dtype=float)
    sel = np.asarray(in_split, dtype=bool) & (n_cols > 0) & np.isfinite(frac)
    if c.needs_37:
        sel &= n_cols == 37
    rows = np.flatnonzero(sel)
    return rows, np.clip(frac[rows], 0, 1)


def _rank_metrics(scores: np.ndarray, rel: np.ndarray, k_ndcg: int, k_recall: int) -> tuple[float, float]:
    order = np.argsort(-scores, kind="stable")
    ranked = rel[order]
    return ndcg_at_k(ranked, rel, k_ndcg), recall_at_k(ranked, rel, k_recall)


def _class_metrics(emb: np.ndarray, rel: np.ndarray, text_vecs: np.ndarray | None, n_image_queries: int,
                   k_recall: int, rng: np.random.Generator) -> dict:
    """Metrics of one class given the pool embeddings and relevances."""
    row = {"n_pool": len(rel), "n_rel": int((rel > RELEVANT).sum())}
    # Text: mean over phrasings.
    if text_vecs is not None and len(text_vecs):
        res = np.array([_rank_metrics(emb @ q, rel, 10, k_recall) for q in text_vecs])
        row["per_query_ndcg10"] = [round(float(v), 4) for v in res[:, 0]]
        row["ndcg10_text"], row["recall100_text"] = (float(np.nanmean(res[:, i])) if np.isfinite(res[:, i]).any()
                                                     else float("nan") for i in range(2))
    else:
        row["ndcg10_text"] = row["recall100_text"] = float("nan")
    # Image: the most confident members, random tie-break, each excluded from its own ranking.
    tie = rng.random(len(rel))
    top = np.lexsort((tie, -rel))[:n_image_queries]
    top = top[rel[top] > 0]
    res = []
    for q in top:
        keep = np.ones(len(rel), dtype=bool)
        keep[q] = False
        res.append(_rank_metrics(emb[keep] @ emb[q], rel[keep], 10, k_recall))
    res = np.array(res, dtype=float).reshape(-1, 2)
    for i, name in enumerate(("ndcg10_image", "recall100_image")):
        row[name] = float(np.nanmean(res[:, i])) if np.isfinite(res[:, i]).any() else float("nan")
    row["ndcg10_random"], row["recall100_random"] = expected_random(rel, 10, k_recall)
    return row


def parse_reranker(spec) -> tuple[str, object]:
    """``(label, reranker)`` from a command-line spec ``NAME[:key=value,...]`` or a `Reranker`.

    ``"feedback..."`` gives ``(label, dict_of_options)``: the simulated user
    builds one `~astro_semsearch.rerank.FeedbackReranker` per query.

    Examples
    --------
    >>> parse_reranker("expansion:n=5,weight=0.3")
    ('expansion:n=5,weight=0.3', ExpansionReranker(n=5, weight=0.3))
    >>> parse_reranker("galaxidnet:weights=(0,0,1)")[1]
    GalaxIDNetReranker(weights=[0.0, 0.0, 1.0])
    """
    import ast

    from .rerank import Reranker, get_reranker

    if isinstance(spec, Reranker):
        if spec.name == "feedback":
            raise ValueError("evaluate simulates the feedback user itself; pass 'feedback' (with options) by name")
        return spec.name, spec
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"a re-ranker spec must be a name like 'expansion:n=5' or a Reranker, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    options = {}
    if rest.strip():
        try:
            call = ast.parse(f"f({rest})", mode="eval").body
            if call.args:
                raise ValueError("positional values")
            options = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as exc:
            raise ValueError(f"cannot read the options of re-ranker spec {spec!r}: write NAME:key=value,... "
                             f"({exc})") from None
    if name == "vlm":
        raise ValueError("the VLM re-ranker needs a vision-language model and images; it is not part of "
                         "`evaluate` (see the VLM re-ranking docs)")
    if name == "feedback":
        from .rerank import FeedbackReranker

        # Validate the options now (a dummy mark), build the real re-ranker per query later.
        FeedbackReranker(good=np.ones((1, 2), np.float32), **options)
        return spec.strip(), options
    return spec.strip(), get_reranker(name, **options)


def _rerank_metrics(emb: np.ndarray, rel: np.ndarray, text_vecs: np.ndarray | None, texts: Sequence[str],
                    rerankers: Mapping[str, object], top_n: int, k_recall: int, feedback_marks: int) -> dict:
    """nDCG@10 / recall of the text rankings after each re-ranker (mean over the phrasings)."""
    from astropy.table import Table

    from .rerank import FeedbackReranker, RerankQuery, rerank

    cols: dict[str, list[float]] = {}

    def put(name, value):
        cols.setdefault(name, []).append(value)

    if text_vecs is None or not len(text_vecs) or len(rel) == 0:
        return {}
    for q, text in zip(text_vecs, texts):
        order = np.argsort(-(emb @ q), kind="stable")  # the same ranking as the text columns
        cand, rest = order[:top_n], order[top_n:]
        table = Table({"rank": np.arange(1, len(cand) + 1), "object_id": cand.astype(str)})
        query = RerankQuery([text], q)
        marked = order[:feedback_marks]
        for label, rr in rerankers.items():
            if isinstance(rr, dict):  # simulated oracle user: mark the first hits by their label
                good, bad = marked[rel[marked] > RELEVANT], marked[rel[marked] <= RELEVANT]
                rr = FeedbackReranker(good=emb[good] if len(good) else None, bad=emb[bad] if len(bad) else None,
                                      **rr)
            out = rerank(table, rr, query=query, vectors=emb[cand])
            new = np.concatenate([np.asarray(out["object_id"]).astype(np.int64), rest])
            put(f"ndcg10_{label}", ndcg_at_k(rel[new], rel, 10))
            put(f"recall100_{label}", recall_at_k(rel[new], rel, k_recall))
            if isinstance(rerankers[label], dict):
                # Residual collection: the hits the user did not mark, in both rankings.
                left = ~np.isin(np.arange(len(rel)), marked)
                put("ndcg10_text_residual", ndcg_at_k(rel[order[~np.isin(order, marked)]], rel[left], 10))
                put(f"ndcg10_{label}_residual", ndcg_at_k(rel[new[~np.isin(new, marked)]], rel[left], 10))
    return {name: (float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"))
            for name, v in ((n, np.asarray(v, dtype=float)) for n, v in cols.items())}


def _embed(model, images: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
    if len(images) == 0:
        return np.zeros((0, model.dim), dtype=np.float32)
    return np.asarray(model.embed_images(images, batch_size=batch_size, progress=progress), dtype=np.float32)


def evaluate(model=None, *, gz2_root: str | os.PathLike = "../shared/data/gz2",
             decals_root: str | os.PathLike | None = "../shared/data/decals_rings", split: str = "val",
             queries: str | os.PathLike | Mapping[str, Sequence[str]] | None = None, k_recall: int = 100,
             seed: int = 0, classes: Sequence[str] | None = None, lens_fraction: float = 0.03,
             n_image_queries: int = 5, batch_size: int = 256, progress: bool = False,
             rerank: Sequence | None = None, rerank_top_n: int = 100, feedback_marks: int = 10):
    """Evaluate text and image-similarity search on a labelled split.

    Parameters
    ----------
    model : GalaxyModel, str or path, optional
        A model object, or a name/directory for `~astro_semsearch.load_model`
        (default: the shipped default model).
    gz2_root : path-like
        Galaxy Zoo 2 data directory (``labels.csv`` + ``images/``).
    decals_root : path-like or None
        DECaLS ring set; None or a missing directory skips that class.
    split : {"val", "train"}
        Which split of GZ2 to evaluate on. Use "val": training never sees it.
    queries : path-like or mapping, optional
        Query phrasings per class id (default ``astro_semsearch/data/eval_queries.toml``).
    k_recall : int
        Cut-off of the recall column (100 by default).
    seed : int
        Seeds the injected-lens subset/arcs and the image-query tie-breaks.
    classes : sequence of str, optional
        Restrict to these class ids (see `CLASSES`).
    lens_fraction : float
        Fraction of the smooth pool that receives injected arcs.
    n_image_queries : int
        Number of most-confident members used as image queries.
    rerank : sequence of str or Reranker, optional
        Re-rankers to measure on the text rankings: names or specs
        ``NAME[:key=value,...]`` (``"expansion"``, ``"galaxidnet:weights=(0,0,1)"``,
        ``"feedback"``) or `~astro_semsearch.rerank.Reranker` instances (see
        `parse_reranker`). Adds the columns ``ndcg10_<label>`` and
        ``recall100_<label>``; ``feedback`` also adds ``ndcg10_text_residual``
        and ``ndcg10_feedback_residual`` (marked hits removed).
    rerank_top_n : int
        How many text hits each re-ranker sees (as ``semantic_search``'s
        ``rerank_top_n``). With ``rerank_top_n <= k_recall`` the recall
        columns cannot change (the same hits stay in the top ``k_recall``).
    feedback_marks : int
        How many of the first hits the simulated feedback user marks.

    Returns
    -------
    `~astropy.table.Table`
        One row per class with columns ``class, n_pool, n_rel, ndcg10_text,
        ndcg10_image, ndcg10_random, recall100_text, recall100_image,
        recall100_random``; ``meta`` holds the model name and fingerprint,
        the split, the date, the seed, the run time and the text nDCG@10 of
        each query phrasing (``text_ndcg10_per_query``).

    Examples
    --------
    .. code-block:: python

        from astro_semsearch.evaluation import evaluate
        table = evaluate(gz2_root="../shared/data/gz2", decals_root="../shared/data/decals_rings")
        table.pprint_all()
    """
    from astropy.table import Table

    from .training.data import load_decals, load_gz2, load_images, split_of

    t_start = time.perf_counter()
    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    if not 0 < lens_fraction < 1:
        raise ValueError(f"lens_fraction must be in (0, 1), got {lens_fraction}")
    wanted = {c.id for c in CLASSES} if classes is None else set(classes)
    unknown = wanted - {c.id for c in CLASSES}
    if unknown:
        raise ValueError(f"unknown class ids {sorted(unknown)}; known: {[c.id for c in CLASSES]}")
    qmap = load_queries(queries)
    rerankers = dict(parse_reranker(spec) for spec in (rerank or []))
    if rerankers:
        if isinstance(rerank_top_n, bool) or not isinstance(rerank_top_n, (int, np.integer)) or rerank_top_n < 1:
            raise ValueError(f"rerank_top_n must be a positive integer, got {rerank_top_n!r}")
        if isinstance(feedback_marks, bool) or not isinstance(feedback_marks, (int, np.integer)) \
                or feedback_marks < 1:
            raise ValueError(f"feedback_marks must be a positive integer, got {feedback_marks!r}")
    if model is None or isinstance(model, (str, os.PathLike)):
        from .model import load_model

        model = load_model(model)
    size = 80  # the preloaded training resolution; the model crops the central 80 % itself
    rng = np.random.default_rng(seed)

    gz2 = load_gz2(gz2_root)
    in_split = np.array([split_of(g) == split for g in gz2["galaxy_id"]], dtype=bool)
    voted = np.asarray(gz2["n_vote_columns"]) > 0
    want_gz2 = any(c.source == "gz2" and c.id in wanted for c in CLASSES)
    want_lens = "injected_lens" in wanted
    if want_lens:
        try:
            import lenstronomy  # noqa: F401
        except ImportError:
            import warnings

            # lenstronomy is an optional dependency (the "train" extra).
            warnings.warn("lenstronomy is not installed: skipping the 'injected lens' class "
                          "(pip install 'astro_semsearch[train]')", stacklevel=2)
            want_lens = False
            wanted.discard("injected_lens")
    host = np.zeros(len(gz2), dtype=bool)
    if want_lens:
        from .training.lensing import is_lens_host

        cols = ["Class1.1", "coarse_label"]
        host = np.array([is_lens_host({c: gz2[c][i] for c in cols}) for i in range(len(gz2))], dtype=bool)
    need = in_split & ((voted & want_gz2) | host)
    rows = np.flatnonzero(need)
    images = load_images(list(gz2["path"][rows]), size=size, progress=progress) if len(rows) else \
        np.zeros((0, size, size, 3), np.uint8)
    emb_all = _embed(model, images, batch_size, progress)
    pos = {r: i for i, r in enumerate(rows)}  # table row -> embedding row

    # Text queries: embed every phrasing once.
    all_q = sorted({q for c in CLASSES if c.id in wanted for q in qmap.get(c.id, [])})
    qvec = dict(zip(all_q, model.embed_text(all_q))) if all_q else {}

    results = []
    per_query: dict[str, dict[str, float]] = {}
    for c in CLASSES:
        if c.id not in wanted:
            continue
        text_vecs = np.array([qvec[q] for q in qmap.get(c.id, [])]) if qmap.get(c.id) else None
        if c.source == "gz2":
            idx, rel = gz2_pool(gz2, c, in_split)
            emb = emb_all[[pos[i] for i in idx]] if len(idx) else np.zeros((0, model.dim), np.float32)
        elif c.source == "decals":
            if decals_root is None or not (Path(decals_root) / "labels.csv").is_file():
                import warnings

                warnings.warn(f"DECaLS ring set not found at {decals_root}; skipping that class", stacklevel=2)
                continue
            dec = load_decals(decals_root)
            emb = _embed(model, load_images(list(dec["path"]), size=size), batch_size, False)
            rel = np.asarray(dec[c.column], dtype=float)
        else:  # injected lenses
            from .training.lensing import ArcInjector

            idx = np.flatnonzero(in_split & host)
            if len(idx) == 0:
                continue
            emb = emb_all[[pos[i] for i in idx]].copy()
            n_inj = max(1, int(round(lens_fraction * len(idx))))
            chosen = rng.choice(len(idx), size=n_inj, replace=False)
            # A seed far from training's, so these arcs are not the training arcs.
            injector = ArcInjector(seed=10_000 + seed, size=size)
            lensed = injector.inject(images[[pos[idx[j]] for j in chosen]], injector.arcs(n_inj))
            emb[chosen] = _embed(model, lensed, batch_size, False)
            rel = np.zeros(len(idx))
            rel[chosen] = 1.0
        if len(rel) == 0:
            continue
        row = _class_metrics(emb, rel, text_vecs, n_image_queries, k_recall, rng)
        if rerankers:
            row.update(_rerank_metrics(emb, rel, text_vecs, qmap.get(c.id, []), rerankers, int(rerank_top_n),
                                       k_recall, int(feedback_marks)))
        row["class"] = c.name
        per_query[c.name] = dict(zip(qmap.get(c.id, []), row.pop("per_query_ndcg10", [])))
        results.append(row)

    columns = list(_COLUMNS)
    for label, rr in rerankers.items():
        columns += [f"ndcg10_{label}", f"recall100_{label}"]
        if isinstance(rr, dict):
            columns += ["ndcg10_text_residual", f"ndcg10_{label}_residual"]
    columns = list(dict.fromkeys(columns))
    dtype = [str, int, int] + [float] * (len(columns) - 3)
    table = Table(rows=[[r.get(k, float("nan")) for k in columns] for r in results], names=columns,
                  dtype=dtype) if results else Table(names=columns, dtype=dtype)
    for name in columns[3:]:
        table[name].format = ".3f"
    if k_recall != 100:
        table.meta["note"] = f"recall columns are recall@{k_recall}"
    table.meta.update({
        "model": getattr(model, "name", type(model).__name__),
        "model_sha256": getattr(model, "fingerprint", ""),
        "split": split,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "k_recall": k_recall,
        "relevance": {c.name: (c.column if c.source != "injected" else "injected arcs (0/1)")
                      for c in CLASSES if c.id in wanted},
        "protocol": "nDCG@10: gain 2**rel-1, log2(rank+1) discount, ideal DCG over the whole pool; "
                    f"recall@{k_recall}: rel > {RELEVANT}; text = mean over query phrasings; image = mean over the "
                    f"{n_image_queries} most confident members (self excluded); random = exact expectation. "
                    "'injected lens' is synthetic (simulated arcs).",
        "text_ndcg10_per_query": per_query,
        **({"rerank": {"rerankers": {label: (dict(rr, marks=int(feedback_marks)) if isinstance(rr, dict)
                                             else {"name": rr.name, **rr.describe()})
                                     for label, rr in rerankers.items()},
                       "top_n": int(rerank_top_n),
                       "feedback": f"oracle user: the first {feedback_marks} text hits marked good "
                                   f"(rel > {RELEVANT}) or bad; *_residual columns leave the marked hits out "
                                   "of the ranking and the ideal DCG"}} if rerankers else {}),
        "run_time_s": round(time.perf_counter() - t_start, 1),
    })
    return table


# ---------------------------------------------------------------------------
# Rendering

def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "—" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def to_markdown(table) -> str:
    """The evaluation table as a GitHub-flavoured Markdown table."""
    names = table.colnames
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    for row in table:
        lines.append("| " + " | ".join(_fmt(row[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def to_rst(table) -> str:
    """The evaluation table as an RST ``list-table`` (for the docs)."""
    names = table.colnames
    out = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [names] + [[_fmt(row[n]) for n in names] for row in table]:
        out.append("   * - " + cells[0])
        out.extend("     - " + c for c in cells[1:])
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Command line

def _run(args: argparse.Namespace) -> int:
    decals = args.decals
    if decals is None:
        guess = Path(args.data).parent / "decals_rings"
        decals = guess if (guess / "labels.csv").is_file() else None
    table = evaluate(args.model, gz2_root=args.data, decals_root=decals, split=args.split, queries=args.queries,
                     seed=args.seed, classes=args.classes, progress=not args.quiet,
                     rerank=args.rerank, rerank_top_n=args.rerank_top_n, feedback_marks=args.feedback_marks)
    table.pprint_all()
    if args.per_query:
        for cls, scores in table.meta["text_ndcg10_per_query"].items():
            for query, v in scores.items():
                print(f"  {cls:>26s}  {_fmt(v):>6s}  {query}")
    print(f"model {table.meta['model']} ({table.meta['model_sha256'][:12]}), split {table.meta['split']}, "
          f"{table.meta['run_time_s']} s")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.write(out, format="ascii.ecsv", overwrite=True)
        out.with_suffix(".md").write_text(to_markdown(table))
        out.with_suffix(".rst").write_text(to_rst(table))
        print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.rst')}", file=sys.stderr)
    return 0


def add_cli(subparsers) -> None:
    """Register ``astro-semsearch evaluate``."""
    p = subparsers.add_parser(
        "evaluate", help="measure nDCG@10 / recall@100 of text and image search on a labelled split",
        description="Evaluate a model on the Galaxy Zoo 2 validation split (and the DECaLS ring set): "
                    "nDCG@10 and recall@100 for text search, image-similarity search and a random ranking.")
    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/), "
                                                 "e.g. ../shared/data/gz2")
    p.add_argument("--model", default=None, help="model name or directory (default: the shipped model)")
    p.add_argument("--out", default=None, help="write the table here as ECSV (plus .md and .rst beside it)")
    p.add_argument("--decals", default=None, help="DECaLS ring directory (default: decals_rings beside --data)")
    p.add_argument("--queries", default=None, help="TOML file of query phrasings per class")
    p.add_argument("--split", default="val", choices=["val", "train"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classes", nargs="+", default=None, metavar="ID",
                   help=f"only these class ids ({', '.join(c.id for c in CLASSES)})")
    p.add_argument("--per-query", action="store_true", help="also print the text nDCG@10 of every query phrasing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--rerank", nargs="+", default=None, metavar="NAME[:k=v,...]",
                   help="also measure text search re-ranked by these (expansion, galaxidnet, feedback; "
                        "options e.g. expansion:n=5,weight=0.3)")
    p.add_argument("--rerank-top-n", type=int, default=100, metavar="N",
                   help="how many text hits a re-ranker sees (default 100)")
    p.add_argument("--feedback-marks", type=int, default=10, metavar="M",
                   help="the simulated feedback user marks the first M hits (default 10)")
    p.set_defaults(func=_run)
