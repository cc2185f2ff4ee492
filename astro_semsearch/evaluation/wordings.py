"""Wording robustness: many ways of asking for the same class, negated ones against the opposite answer.

The wording set (``astro_semsearch/data/eval_wordings.toml``) was written
apart from the training captions: for every class a one-word, short, long,
Hubble-type and synonym wording, and negated wordings ("unbarred spiral",
"not smooth") measured against the Galaxy Zoo answer they ask for (e.g.
``Class3.2``, no bar) and compared with a positive wording of that answer.
It also holds off-topic phrases (see `astro_semsearch.search.scores`).

Every wording is searched as `~astro_semsearch.semantic_search` would search
it (`~astro_semsearch.search.Query`, negation parsed) over the same pools and
relevances as `~astro_semsearch.evaluation.evaluate`.
"""
from __future__ import annotations

import os
import time
import tomllib
from pathlib import Path

import numpy as np

from ..exceptions import InvalidInputError
from ..search import Query
from .metrics import ndcg_at_k
from .pools import class_pools
from .protocol import CLASSES, EvalClass

__all__ = ["DEFAULT_WORDINGS", "THIRD_WORDINGS", "load_wordings", "evaluate_wordings", "flag_rates"]

#: The wording set shipped with the package.
DEFAULT_WORDINGS = Path(__file__).resolve().parent.parent / "data" / "eval_wordings.toml"
#: A third author's wordings (7 per class, visual analogies and casual ones too), written after the
#: first set had been measured and before the stage-3 vocabulary was trained: nobody tuned for them.
THIRD_WORDINGS = DEFAULT_WORDINGS.with_name("eval_wordings_third.toml")

# Galaxy Zoo questions answered only in the full decision tree (37-column rows).
_FULL_TREE_QUESTIONS = {"3", "4", "5", "9", "10", "11"}

# Rows that ask for the same thing as another row share its wordings: the
# independently simulated lenses are asked for as the training-simulator ones.
_SAME_WORDINGS = {"injected_lens_independent": "injected_lens"}


def _wording_class(class_id: str) -> str:
    return _SAME_WORDINGS.get(class_id, class_id)


def load_wordings(path: str | os.PathLike | None = None) -> dict:
    """The wording set: ``{"query": [{class, kind, text, ...}], "off_topic": [...], "on_topic_generic": [...]}``."""
    path = Path(path) if path is not None else DEFAULT_WORDINGS
    if not path.is_file():
        raise FileNotFoundError(f"wording set {path} not found")
    with open(path, "rb") as f:
        data = tomllib.load(f)
    known = {c.id for c in CLASSES}
    queries = data.get("query") or []
    for q in queries:
        if q.get("class") not in known or not str(q.get("text", "")).strip():
            raise InvalidInputError(f"{path}: a [[query]] entry needs a class in {sorted(known)} and a text: {q}")
        if q.get("kind") == "negated" and not str(q.get("relevance", "")).startswith("Class"):
            raise InvalidInputError(f"{path}: negated wording {q['text']!r} needs relevance = 'ClassN.M'")
    return {"query": queries, "off_topic": list((data.get("off_topic") or {}).get("phrases", [])),
            "on_topic_generic": list((data.get("on_topic_generic") or {}).get("phrases", []))}


def _opposite_class(column: str) -> EvalClass:
    question = column.removeprefix("Class").split(".")[0]
    return EvalClass(f"answer {column}", f"answer {column}", "gz2", column, needs_37=question in _FULL_TREE_QUESTIONS)


def _ndcg(pool, vector: np.ndarray) -> float:
    order = np.argsort(-(pool.emb @ vector), kind="stable")
    return ndcg_at_k(pool.rel[order], pool.rel, 10)


def evaluate_wordings(model=None, *, wordings=None, gz2_root=None, decals_root=None, split: str = "val",
                      seed: int = 0, classes=None, batch_size: int = 256, progress: bool = False,
                      negation: bool = True):
    """nDCG@10 of every wording, and per class its mean, worst and best, and the negated ratio.

    Parameters
    ----------
    model : GalaxyModel, name or path, optional
        Default: the shipped default model.
    wordings : path, optional
        A wording set (default: the shipped one).
    gz2_root, decals_root, split, seed, batch_size, progress
        As in `~astro_semsearch.evaluation.evaluate`.
    classes : sequence of str, optional
        Only these class ids.
    negation : bool
        Parse negations as the search does (False searches the raw text, to
        measure what parsing brings).

    Returns
    -------
    `~astropy.table.Table`
        One row per class: ``class, n_wordings, mean, worst, best,
        worst_over_best, worst_wording, negated, opposite_positive,
        negated_ratio`` (the last three for classes with negated wordings:
        mean nDCG@10 of the negated wordings against their own relevance,
        of the positive wordings of the same answers, and their ratio).
        ``meta["per_wording"]`` lists every wording with its kind and nDCG@10.
    """
    from astropy.table import Table

    from .evaluate import _check

    t0 = time.perf_counter()
    data = load_wordings(wordings)
    wanted = _check(split, 0.01, classes, {}, 1, 1)
    if model is None or isinstance(model, (str, os.PathLike)):
        from ..model import load_model

        model = load_model(model)
    asked = {_wording_class(c) for c in wanted}
    entries = [q for q in data["query"] if q["class"] in asked]
    negated = [q for q in entries if q.get("kind") == "negated"]
    extra = {q["relevance"]: _opposite_class(q["relevance"]) for q in negated}
    if decals_root is None:
        from ..config import conf

        decals_root = conf.decals_root or None

    def vec(text: str) -> np.ndarray:
        return Query.from_text(model, text, negation=negation).vector

    per, rows = [], []
    pools = {}
    for pool in class_pools(model, wanted, gz2_root=gz2_root, decals_root=decals_root, split=split, seed=seed,
                            lens_fraction=0.01, batch_size=batch_size, progress=progress,
                            rng=np.random.default_rng(seed), extra=list(extra.values())):
        pools[pool.cls.id] = pool
    for c in CLASSES:
        mine = [q for q in entries if q["class"] == _wording_class(c.id)]
        if c.id not in pools or not mine:
            continue
        scores = []
        for q in mine:
            target = pools.get(extra[q["relevance"]].id) if q.get("kind") == "negated" else pools[c.id]
            if target is None:
                continue
            value = _ndcg(target, vec(q["text"]))
            record = {"class": c.id, "kind": q.get("kind", ""), "text": q["text"], "ndcg10": value}
            if q.get("kind") == "negated":
                record["opposite_positive"] = q.get("opposite_positive")
                record["set"] = q.get("set", "first")
                record["ndcg10_opposite_positive"] = (_ndcg(target, vec(q["opposite_positive"]))
                                                      if q.get("opposite_positive") else None)
            else:
                scores.append((value, q["text"]))
            per.append(record)
        if not scores:
            continue
        values = np.array([v for v, _ in scores])
        neg = [r for r in per if r["class"] == c.id and r["kind"] == "negated"]
        neg_mean = float(np.mean([r["ndcg10"] for r in neg])) if neg else float("nan")
        opp = [r["ndcg10_opposite_positive"] for r in neg if r.get("ndcg10_opposite_positive") is not None]
        opp_mean = float(np.mean(opp)) if opp else float("nan")
        rows.append([c.name, len(scores), float(values.mean()), float(values.min()), float(values.max()),
                     float(values.min() / values.max()) if values.max() > 0 else float("nan"),
                     scores[int(values.argmin())][1], neg_mean, opp_mean,
                     neg_mean / opp_mean if opp_mean > 0 else float("nan")])
    names = ["class", "n_wordings", "mean", "worst", "best", "worst_over_best", "worst_wording", "negated",
             "opposite_positive", "negated_ratio"]
    dtype = [str, int, float, float, float, float, str, float, float, float]
    table = Table(rows=rows, names=names, dtype=dtype) if rows else Table(names=names, dtype=dtype)
    for name in ("mean", "worst", "best", "worst_over_best", "negated", "opposite_positive", "negated_ratio"):
        table[name].format = ".3f"
    for r in per:  # the meta carries 4 decimals
        for key in ("ndcg10", "ndcg10_opposite_positive"):
            if r.get(key) is not None:
                r[key] = round(float(r[key]), 4)
    table.meta.update({"model": getattr(model, "name", ""), "model_sha256": getattr(model, "fingerprint", ""),
                       "split": split, "negation": bool(negation), "per_wording": per,
                       "wordings": str(wordings or DEFAULT_WORDINGS.name),
                       "run_time_s": round(time.perf_counter() - t0, 1)})
    return table


def flag_rates(model=None, *, wordings=None, index=None) -> dict:
    """How often the match verdict flags the wording set's off-topic and on-topic phrases.

    On-topic: every non-negated wording and the generic galaxy phrases. With
    ``index`` the whole verdict of `~astro_semsearch.semantic_search` is used
    (text and best-hit excess), else its text test alone.

    Returns
    -------
    dict
        ``off_topic_flagged``, ``on_topic_flagged`` (fractions), their counts,
        and the phrases of each kind that were misjudged.
    """
    import warnings

    from ..exceptions import NoGoodMatchWarning
    from ..search.scores import match_verdict

    data = load_wordings(wordings)
    if model is None or isinstance(model, (str, os.PathLike)):
        from ..model import load_model

        model = load_model(model)
    on = [q["text"] for q in data["query"] if q.get("kind") != "negated"] + data["on_topic_generic"]
    off = data["off_topic"]

    def flagged(text: str) -> bool:
        if index is None:
            return not match_verdict(model, [text], None)["good"]
        from ..search import semantic_search

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoGoodMatchWarning)
            hits = semantic_search(text, k=10, index=index, model=model)
        return not hits.meta["astro_semsearch"]["match"]["good"]

    on_f = [t for t in on if flagged(t)]
    off_f = [t for t in off if flagged(t)]
    return {"off_topic_flagged": len(off_f) / max(len(off), 1), "on_topic_flagged": len(on_f) / max(len(on), 1),
            "n_off_topic": len(off), "n_on_topic": len(on), "on_topic_flagged_phrases": on_f,
            "off_topic_missed_phrases": [t for t in off if t not in off_f]}
