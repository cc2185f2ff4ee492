"""`evaluate`: nDCG@10 and recall@100 of text, image-similarity and re-ranked search, per class.

The protocol follows AION-Search (Koblischke et al. 2025) so numbers can be
compared with theirs:

* **Pool.** For the Galaxy Zoo 2 (GZ2) classes, the galaxies of the
  validation split (``split_of(id) == "val"``, never seen in training) whose
  votes for the class are known (37-column rows for spiral and bar, 17- or
  37-column rows otherwise). For the DECaLS rings, all 236 DECaLS galaxies
  (never used in training: a transfer test on another survey). For
  the two injected-lens classes, the smooth galaxies of the *validation*
  split (whatever ``split``), with simulated arcs injected into a random
  ``lens_fraction`` (1 %) of them, the same galaxies for both: "injected
  lens (synthetic)" with the training simulator
  (`~astro_semsearch.lensing.ArcInjector`, a seed different from
  training's), "injected lens (independent sim)" with
  `~astro_semsearch.lensing.RayTracedLensSimulator`, written independently
  (other mass model, source, PSF, colours and noise). Both are synthetic:
  the first measures whether the model learned the *simulated* arcs, the
  second whether that carries over to arcs it was never trained on.
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
  ``rerank_top_n`` hits are re-ranked with `astro_semsearch.search.rerank`
  and measured again (columns ``ndcg10_<name>``, ``recall100_<name>``). The
  relevance-feedback re-ranker is driven by a simulated *oracle user* who
  marks the first ``feedback_marks`` hits good (``rel > 0.5``) or bad; the
  marked hits then move by construction, so the ``*_residual`` columns also
  measure both rankings with the marked hits removed (from the ranking and
  from the ideal DCG).

Examples
--------
>>> from astro_semsearch.evaluation import evaluate
>>> table = evaluate(gz2_root="data/gz2")     # doctest: +SKIP
"""
from __future__ import annotations

import datetime
import os
import time
from typing import Mapping, Sequence

import numpy as np

from .._validate import check_int
from ..exceptions import InvalidInputError, InvalidTypeError
from .metrics import RELEVANT, expected_random, ndcg_at_k, rank_metrics, recall_at_k
from .pools import Pool, class_pools
from .protocol import CLASSES, load_queries, parse_reranker

__all__ = ["evaluate", "evaluate_vlm"]

_COLUMNS = ["class", "n_pool", "n_rel", "ndcg10_text", "ndcg10_image", "ndcg10_random",
            "recall100_text", "recall100_image", "recall100_random"]


def _mean(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def _class_metrics(pool: Pool, text_vecs: np.ndarray | None, n_image_queries: int, k_recall: int,
                   rng: np.random.Generator) -> dict:
    """Text, image-similarity and random metrics of one class."""
    emb, rel = pool.emb, pool.rel
    row = {"n_pool": len(rel), "n_rel": int((rel > RELEVANT).sum())}
    # Text: mean over phrasings.
    if text_vecs is not None and len(text_vecs):
        res = np.array([rank_metrics(emb @ q, rel, 10, k_recall) for q in text_vecs])
        row["per_query_ndcg10"] = [round(float(v), 4) for v in res[:, 0]]
        row["ndcg10_text"], row["recall100_text"] = _mean(res[:, 0]), _mean(res[:, 1])
        row["top10_rel_text"] = _mean([(rel[np.argsort(-(emb @ q), kind="stable")[:10]] > RELEVANT).sum()
                                       for q in text_vecs])
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
        res.append(rank_metrics(emb[keep] @ emb[q], rel[keep], 10, k_recall))
    res = np.array(res, dtype=float).reshape(-1, 2)
    row["ndcg10_image"], row["recall100_image"] = _mean(res[:, 0]), _mean(res[:, 1])
    row["ndcg10_random"], row["recall100_random"] = expected_random(rel, 10, k_recall)
    return row


def _feedback_user(spec: dict, emb: np.ndarray, rel: np.ndarray, marked: np.ndarray):
    """The simulated oracle user: marks the first hits good (rel > 0.5) or bad, by their label."""
    from ..rerank import FeedbackReranker

    good, bad = marked[rel[marked] > RELEVANT], marked[rel[marked] <= RELEVANT]
    return FeedbackReranker(good=emb[good] if len(good) else None, bad=emb[bad] if len(bad) else None, **spec)


def _rerank_metrics(pool: Pool, text_vecs: np.ndarray | None, texts: Sequence[str], rerankers: Mapping[str, object],
                    top_n: int, k_recall: int, feedback_marks: int, image_size: int, cost: dict) -> dict:
    """nDCG@10 / recall / relevant-in-top-10 of the text rankings after each re-ranker (mean over phrasings).

    A re-ranker that looks at pixels is shown the candidates' images
    (``image_size`` pixels); its time and candidates are added to ``cost``.
    """
    from astropy.table import Table

    from ..search import Query, rerank

    emb, rel = pool.emb, pool.rel
    cols: dict[str, list[float]] = {}
    if text_vecs is None or not len(text_vecs) or len(rel) == 0:
        return {}
    cache: dict[int, np.ndarray] = {}
    for q, text in zip(text_vecs, texts):
        order = np.argsort(-(emb @ q), kind="stable")  # the same ranking as the text columns
        cand, rest = order[:top_n], order[top_n:]
        table = Table({"rank": np.arange(1, len(cand) + 1), "object_id": cand.astype(str)})
        marked = order[:feedback_marks]
        for label, rr in rerankers.items():
            feedback = isinstance(rr, dict)
            rr = _feedback_user(rr, emb, rel, marked) if feedback else rr
            images = None
            if getattr(rr, "needs_images", False):
                todo = [int(i) for i in cand if int(i) not in cache]
                cache.update(zip(todo, pool.image(np.asarray(todo, dtype=np.int64), image_size)) if todo else [])
                images = [cache[int(i)] for i in cand]
            t0 = time.perf_counter()
            out = rerank(table, rr, query=Query([text], q), vectors=emb[cand], images=images)
            cost[label] = {"seconds": cost.get(label, {}).get("seconds", 0.0) + time.perf_counter() - t0,
                           "candidates": cost.get(label, {}).get("candidates", 0) + len(cand)}
            new = np.concatenate([np.asarray(out["object_id"]).astype(np.int64), rest])
            for name, value in ((f"ndcg10_{label}", ndcg_at_k(rel[new], rel, 10)),
                                (f"recall100_{label}", recall_at_k(rel[new], rel, k_recall)),
                                (f"top10_rel_{label}", float((rel[new[:10]] > RELEVANT).sum()))):
                cols.setdefault(name, []).append(value)
            cols.setdefault(f"per_query_{label}", []).append(round(float(ndcg_at_k(rel[new], rel, 10)), 4))
            if feedback:
                # Residual collection: the hits the user did not mark, in both rankings.
                left = ~np.isin(np.arange(len(rel)), marked)
                cols.setdefault("ndcg10_text_residual", []).append(
                    ndcg_at_k(rel[order[~np.isin(order, marked)]], rel[left], 10))
                cols.setdefault(f"ndcg10_{label}_residual", []).append(
                    ndcg_at_k(rel[new[~np.isin(new, marked)]], rel[left], 10))
    return {name: (list(v) if name.startswith("per_query_") else _mean(v)) for name, v in cols.items()}


def _check(split: str, lens_fraction: float, classes, rerankers: dict, rerank_top_n, feedback_marks) -> set[str]:
    if split not in ("val", "train"):
        raise InvalidInputError(f"split must be 'val' or 'train', got {split!r}")
    if not 0 < lens_fraction < 1:
        raise InvalidInputError(f"lens_fraction must be in (0, 1), got {lens_fraction}")
    wanted = {c.id for c in CLASSES} if classes is None else set([classes] if isinstance(classes, str) else classes)
    unknown = wanted - {c.id for c in CLASSES}
    if unknown:
        raise InvalidInputError(f"unknown class ids {sorted(unknown)}; known: {[c.id for c in CLASSES]}")
    if rerankers:
        check_int(rerank_top_n, "rerank_top_n")
        check_int(feedback_marks, "feedback_marks")
    return wanted


def _run(model, *, gz2_root, decals_root, split, queries, k_recall, seed, classes, lens_fraction, n_image_queries,
         batch_size, progress, rerank, rerank_top_n, feedback_marks, image_size, probe=False, transform=None):
    """The evaluation loop shared by `evaluate` and `evaluate_vlm`: one result dict per class."""
    rerankers = dict(parse_reranker(spec) for spec in (rerank or []))
    wanted = _check(split, lens_fraction, classes, rerankers, rerank_top_n, feedback_marks)
    qmap = load_queries(queries)
    if model is None or isinstance(model, (str, os.PathLike)):
        from ..model import load_model

        model = load_model(model)
    rng = np.random.default_rng(seed)
    # Text queries: embed every phrasing once.
    all_q = sorted({q for c in CLASSES if c.id in wanted for q in qmap.get(c.id, [])})
    qvec = _query_vectors(model, all_q)
    results, cost = [], {}
    probes = _probes(model, wanted, gz2_root, split, seed, batch_size, progress) if probe else None
    for pool in class_pools(model, wanted, gz2_root=gz2_root, decals_root=decals_root, split=split, seed=seed,
                            lens_fraction=lens_fraction, batch_size=batch_size, progress=progress, rng=rng,
                            transform=transform):
        texts = qmap.get(pool.cls.id, [])
        text_vecs = np.array([qvec[q] for q in texts]) if texts else None
        row = _class_metrics(pool, text_vecs, n_image_queries, k_recall, rng)
        if probes is not None:
            pr = probes.get("ring" if pool.cls.source == "decals" else pool.cls.id)
            row["n_probe_train"] = pr.n if pr is not None else 0
            if pr is not None:
                row["ndcg10_probe"], row["recall100_probe"] = rank_metrics(pool.emb @ pr.w, pool.rel, 10, k_recall)
                row["probe_alpha"] = pr.alpha
        if rerankers:
            row.update(_rerank_metrics(pool, text_vecs, texts, rerankers, int(rerank_top_n), k_recall,
                                       int(feedback_marks), int(image_size), cost))
        row["class"], row["texts"] = pool.cls.name, list(texts)
        results.append(row)
    return model, wanted, rerankers, results, cost


def _probes(model, wanted, gz2_root, split, seed, batch_size, progress) -> dict:
    """The linear probes of `~astro_semsearch.evaluation.probe`, fitted on the other split's untransformed images."""
    from .pools import _embed, preload_size
    from .probe import fit_probes

    return fit_probes(model, wanted, gz2_root=gz2_root, split=split, seed=seed, size=preload_size(model),
                      embed=lambda images: _embed(model, images, batch_size, progress), progress=progress)


def _query_vectors(model, texts: list[str]) -> dict[str, np.ndarray]:
    """Each phrasing's query vector, built as `~astro_semsearch.semantic_search` builds it (negation parsed)."""
    from ..search import Query
    from ..search.negation import split_negation

    plain = [t for t in texts if not split_negation(t)[1]]
    out = dict(zip(plain, model.embed_text(plain))) if plain else {}  # one batch for the usual case
    out.update({t: Query.from_text(model, t).vector for t in texts if t not in out})
    return out


def _table(results: list[dict], columns: list[str]):
    from astropy.table import Table

    ints = ("n_pool", "n_rel", "n_probe_train")
    dtype = [str if k == "class" else int if k in ints else float for k in columns]
    table = (Table(rows=[[r.get(k, 0 if k in ints else float("nan")) for k in columns] for r in results],
                   names=columns, dtype=dtype) if results else Table(names=columns, dtype=dtype))
    for name in columns:
        if name != "class" and name not in ints:
            table[name].format = ".3f"
    return table


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def evaluate(model=None, *, gz2_root: str | os.PathLike | None = None,
             decals_root: str | os.PathLike | None = None, split: str = "val",
             queries: str | os.PathLike | Mapping[str, Sequence[str]] | None = None, k_recall: int = 100,
             seed: int = 0, classes: Sequence[str] | None = None, lens_fraction: float = 0.01,
             n_image_queries: int = 5, batch_size: int = 256, progress: bool = False,
             rerank: Sequence | None = None, rerank_top_n: int = 100, feedback_marks: int = 10,
             image_size: int = 256, probe: bool = True, transform=None):
    """Evaluate text and image-similarity search on a labelled split.

    Parameters
    ----------
    model : GalaxyModel, str or path, optional
        A model object, or a name/directory for `~astro_semsearch.load_model`
        (default: the shipped default model).
    gz2_root : path-like, optional
        Galaxy Zoo 2 data directory (``labels.csv`` + ``images/``); default
        ``conf.gz2_root``.
    decals_root : path-like or None
        DECaLS ring set (default ``conf.decals_root``); a missing directory
        skips that class.
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
        Fraction of the validation smooth galaxies that receive injected arcs
        in the two injected-lens rows: their prevalence. Default 0.01 (1 %,
        about 22 lenses among the 2,203 validation smooth galaxies; it was
        0.03 before the independent-simulator row was added).
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
    image_size : int
        Side in pixels of the images shown to a re-ranker that looks at them
        (e.g. `~astro_semsearch.rerank.VLMReranker`).
    probe : bool
        Also measure the *probe* (`astro_semsearch.evaluation.probe`): per
        class a ridge regression from the image embeddings to the relevance,
        fitted on the other split, ranking the pool as a text query does; the
        ceiling of text search with these image embeddings. Columns
        ``n_probe_train, ndcg10_probe, recall100_probe``.
    transform : callable, optional
        Applied to every evaluated ``(N, S, S, 3)`` uint8 image stack before it
        is embedded (after arcs are injected), e.g.
        ``lambda x: reframe(x, 0.5)`` (`astro_semsearch.training.augment.reframe`)
        to measure framing robustness. The probes are fitted on
        untransformed images.

    Returns
    -------
    `~astropy.table.Table`
        One row per class with columns ``class, n_pool, n_rel, ndcg10_text,
        ndcg10_image, ndcg10_random, recall100_text, recall100_image,
        recall100_random`` (and the probe's); ``meta`` holds the model name and fingerprint,
        the split, the date, the seed, the lens fraction, the run time and
        the text nDCG@10 of each query phrasing (``text_ndcg10_per_query``).

    Examples
    --------
    .. code-block:: python

        from astro_semsearch.evaluation import evaluate
        table = evaluate(gz2_root="data/gz2", decals_root="data/decals_rings")
        table.pprint_all()
    """
    t_start = time.perf_counter()
    if decals_root is None:
        from ..config import conf

        decals_root = conf.decals_root or None
    model, wanted, rerankers, results, _ = _run(
        model, gz2_root=gz2_root, decals_root=decals_root, split=split, queries=queries, k_recall=k_recall,
        seed=seed, classes=classes, lens_fraction=lens_fraction, n_image_queries=n_image_queries,
        batch_size=batch_size, progress=progress, rerank=rerank, rerank_top_n=rerank_top_n,
        feedback_marks=feedback_marks, image_size=image_size, probe=probe, transform=transform)
    columns = list(_COLUMNS) + (["n_probe_train", "ndcg10_probe", "recall100_probe"] if probe else [])
    for label, rr in rerankers.items():
        columns += [f"ndcg10_{label}", f"recall100_{label}"]
        if isinstance(rr, dict):
            columns += ["ndcg10_text_residual", f"ndcg10_{label}_residual"]
    table = _table(results, list(dict.fromkeys(columns)))
    if k_recall != 100:
        table.meta["note"] = f"recall columns are recall@{k_recall}"
    table.meta.update({
        "model": getattr(model, "name", type(model).__name__),
        "model_sha256": getattr(model, "fingerprint", ""),
        "split": split,
        "date": _now(),
        "seed": seed,
        "k_recall": k_recall,
        "lens_fraction": lens_fraction,
        "relevance": {c.name: (c.column if c.source != "injected"
                               else f"injected arcs (0/1) from astro_semsearch.lensing.{c.simulator}")
                      for c in CLASSES if c.id in wanted},
        "protocol": "nDCG@10: gain 2**rel-1, log2(rank+1) discount, ideal DCG over the whole pool; "
                    f"recall@{k_recall}: rel > {RELEVANT}; text = mean over query phrasings; image = mean over the "
                    f"{n_image_queries} most confident members (self excluded); random = exact expectation. "
                    f"The injected-lens rows are synthetic: arcs in {100 * lens_fraction:g}% of the validation smooth "
                    "galaxies (the same galaxies in both rows), 'injected lens (synthetic)' from the training "
                    "simulator ArcInjector (lenstronomy SIE + shear, Sersic source, Gaussian PSF; another seed), "
                    "'injected lens (independent sim)' from RayTracedLensSimulator (EPL + shear + satellite, "
                    "clumpy SED source, Moffat PSF, Poisson noise; never used in training).",
        "text_ndcg10_per_query": {r["class"]: dict(zip(r["texts"], r.get("per_query_ndcg10", [])))
                                  for r in results},
        **({"probe": {"fitted_on": "train" if split == "val" else "val",
                      "alpha": {r["class"]: r["probe_alpha"] for r in results if "probe_alpha" in r}}}
           if probe else {}),
        **({"transform": getattr(transform, "__name__", repr(transform))} if transform is not None else {}),
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


def evaluate_vlm(
    vlm,
    model=None,
    *,
    gz2_root: str | os.PathLike | None = None,
    decals_root: str | os.PathLike | None = None,
    classes: Sequence[str] = ("ring", "lens", "merger", "decals_ring"),
    top_n: int = 100,
    k_recall: int = 100,
    split: str = "val",
    queries=None,
    image_size: int = 256,
    batch_size: int = 256,
    progress: bool = False,
):
    """Measure VLM re-ranking: `evaluate` with the VLM as its re-ranker, in the VLM's own columns.

    It is the ordinary evaluation loop: the pool, the relevance and the query
    phrasings are exactly those of ``astro-semsearch evaluate`` (so
    ``ndcg10_text`` here equals that command's column of the same name); the
    first ``top_n`` galaxies of each text ranking are shown to the VLM (the
    whole Galaxy Zoo image, resized to ``image_size`` pixels) and re-ordered
    by its score.

    Parameters
    ----------
    vlm : `~astro_semsearch.rerank.VLMReranker`
    model : GalaxyModel, str or path, optional
        The search model (default: the shipped one).
    gz2_root, decals_root : path-like
        The Galaxy Zoo 2 data (``labels.csv`` + ``images/``) and the DECaLS
        ring set (``None`` or a missing directory skips ``"decals_ring"``).
    classes : sequence of str
        Class ids of `astro_semsearch.evaluation.CLASSES`; the synthetic
        ``"injected_lens"`` and ``"injected_lens_independent"`` classes are
        not supported.
    top_n : int
        Candidates per query shown to the VLM (the cost: classes x phrasings
        x ``top_n`` forward passes).
    k_recall : int
        Cut-off of the recall columns. They can only change if
        ``top_n > k_recall`` (otherwise the same galaxies stay in the top).
    split, queries, batch_size, progress
        As in `~astro_semsearch.evaluation.evaluate`.
    image_size : int
        Side of the image shown to the VLM.

    Returns
    -------
    `~astropy.table.Table`
        One row per class: ``class, n_pool, n_rel, ndcg10_text, ndcg10_vlm,
        recall<k>_text, recall<k>_vlm, top10_rel_text, top10_rel_vlm`` (the
        last two: mean number of relevant galaxies, ``rel > 0.5``, in the first
        10), means over the phrasings. ``meta`` records the VLM's
        `~VLMReranker.describe`, the total seconds and candidates per second,
        and every phrasing's nDCG@10 before and after.

    Examples
    --------
    .. code-block:: python

        from astro_semsearch.evaluation import evaluate_vlm
        from astro_semsearch.rerank import VLMReranker
        table = evaluate_vlm(VLMReranker("SmolVLM-256M-Instruct"), classes=["ring", "lens"])
        table.pprint_all()
    """
    from ..rerank import VLMReranker

    if not isinstance(vlm, VLMReranker):
        raise InvalidTypeError(f"vlm must be a VLMReranker, got {type(vlm).__name__}")
    classes = [classes] if isinstance(classes, str) else list(classes)
    known = {c.id: c for c in CLASSES}
    bad = [c for c in classes if c not in known or known[c].source == "injected"]
    if bad:
        usable = [c.id for c in CLASSES if c.source != "injected"]
        raise InvalidInputError(f"cannot evaluate the VLM on classes {bad}; use some of {usable}")
    for name, value in (("top_n", top_n), ("k_recall", k_recall), ("image_size", image_size)):
        check_int(value, name)
    t_start = time.perf_counter()
    model, _, _, results, cost = _run(
        model, gz2_root=gz2_root, decals_root=decals_root, split=split, queries=queries, k_recall=k_recall,
        seed=0, classes=classes, lens_fraction=0.01, n_image_queries=5, batch_size=batch_size, progress=progress,
        rerank=[vlm], rerank_top_n=top_n, feedback_marks=10, image_size=image_size)
    label = vlm.name
    rows = [{"class": r["class"], "n_pool": r["n_pool"], "n_rel": r["n_rel"], "ndcg10_text": r["ndcg10_text"],
             "ndcg10_vlm": r.get(f"ndcg10_{label}"), f"recall{k_recall}_text": r["recall100_text"],
             f"recall{k_recall}_vlm": r.get(f"recall100_{label}"), "top10_rel_text": r.get("top10_rel_text"),
             "top10_rel_vlm": r.get(f"top10_rel_{label}")} for r in results if r["texts"]]
    names = ["class", "n_pool", "n_rel", "ndcg10_text", "ndcg10_vlm", f"recall{k_recall}_text",
             f"recall{k_recall}_vlm", "top10_rel_text", "top10_rel_vlm"]
    table = _table(rows, names)
    spent = cost.get(label, {"seconds": 0.0, "candidates": 0})
    table.meta.update({
        "vlm": vlm.describe(),
        "model": getattr(model, "name", type(model).__name__),
        "model_sha256": getattr(model, "fingerprint", ""),
        "split": split,
        "top_n": int(top_n),
        "image_size": int(image_size),
        "vlm_seconds": round(spent["seconds"], 2),
        "vlm_candidates": spent["candidates"],
        "vlm_candidates_per_second": (round(spent["candidates"] / spent["seconds"], 3) if spent["seconds"] > 0
                                      else None),
        "per_query": {r["class"]: {t: {"ndcg10_text": a, "ndcg10_vlm": b}
                                   for t, a, b in zip(r["texts"], r.get("per_query_ndcg10", []),
                                                      r.get(f"per_query_{label}", []))}
                      for r in results if r["texts"]},
        "date": _now(),
        "run_time_s": round(time.perf_counter() - t_start, 1),
        "protocol": "pool, relevance and query phrasings of astro-semsearch evaluate; the first top_n hits of "
                    "each text ranking re-ordered by the VLM's P(yes); means over the phrasings",
    })
    return table
