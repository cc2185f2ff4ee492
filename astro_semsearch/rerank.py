"""Re-rank the top of a search result with a second, more careful score.

A search ranks the whole index by one cosine similarity. A *re-ranker* looks
again at the first ``top_n`` hits only and gives each a new score; `rerank`
re-orders those rows by it. The result table keeps the search's ``score``,
adds ``rerank_score`` (masked where a row was not re-ranked) and
``search_rank`` (the rank the search gave), renumbers ``rank``, and records in
``meta["astro_semsearch"]["rerank"]`` which re-ranker ran, with which
parameters, on how many rows and how long it took.

Re-rankers
----------
``"feedback"`` -- `FeedbackReranker`
    Relevance feedback (Rocchio): you mark some hits good or bad; the query
    vector moves toward the good hits and away from the bad ones, and the
    candidates are re-scored by cosine similarity with the moved query.
    `feedback_search` searches the *whole index* with the moved query instead.
``"expansion"`` -- `ExpansionReranker`
    Pseudo-relevance feedback: the query is mixed with the mean image
    embedding of its own top ``n`` hits (no user input needed).
``"galaxidnet"`` -- `GalaxIDNetReranker`
    GalaxIDNet's similarity score: weighted cosine + 1/(1 + L2) + 1/(1 + L3)
    (`galaxidnet_similarity`).
``"vlm"`` -- `astro_semsearch.vlm.VLMReranker`
    Asks a local vision-language model a yes/no question about each
    candidate's image (imported lazily; needs ``transformers`` and a model).

Which of these actually help is measured on the Galaxy Zoo 2 validation split
(``astro-semsearch evaluate --rerank ...``); see the *Re-ranking* page of the
documentation for the numbers.

Writing your own
----------------
Subclass `Reranker` and implement ``__call__(query, candidates, *, vectors,
images=None)`` returning one float per candidate (higher is better). Set
``needs_images = True`` to receive one RGB thumbnail (or None) per candidate.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> class Brightest(Reranker):
...     name = "brightest"
...     def __call__(self, query, candidates, *, vectors, images=None):
...         return -np.asarray(candidates["mag"], dtype=float)
>>> hits = Table({"rank": [1, 2, 3], "object_id": ["a", "b", "c"],
...               "score": [0.9, 0.8, 0.7], "mag": [18.0, 15.0, 17.0]})
>>> out = rerank(hits, Brightest(), query=np.ones(2), vectors=np.eye(3, 2))
>>> out["object_id"].tolist(), out["search_rank"].tolist()
(['b', 'c', 'a'], [2, 3, 1])
"""
from __future__ import annotations

import copy
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from astropy.table import MaskedColumn, Row, Table
from astropy.utils.exceptions import AstropyUserWarning

from ._utils import check_int as _check_int

__all__ = [
    "RerankQuery",
    "Reranker",
    "rerank",
    "get_reranker",
    "FeedbackReranker",
    "ExpansionReranker",
    "GalaxIDNetReranker",
    "galaxidnet_similarity",
    "feedback_search",
    "RERANKERS",
]

#: Names accepted wherever a re-ranker may be given as a string.
RERANKERS = ("feedback", "expansion", "galaxidnet", "vlm")


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def _unit_vector(v, what: str = "query vector") -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"the {what} must be 1-D (one embedding), got shape {v.shape}")
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError(f"the {what} has no direction (zero length or non-finite values)")
    return v / norm


def _unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


def _check_matrix(vectors, dim: int, n: int | None = None, what: str = "vectors") -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"{what} must have shape (n, {dim}) to match the query, got {vectors.shape}")
    if n is not None and vectors.shape[0] != n:
        raise ValueError(f"{what} has {vectors.shape[0]} rows but there are {n} candidates")
    if not np.isfinite(vectors).all():
        raise ValueError(f"{what} contain non-finite values")
    return vectors


def _check_number(value, name: str, low: float | None = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be a finite number in [{low}, {high if high is not None else 'inf'}], "
                         f"got {value}")
    return value




# --------------------------------------------------------------------------
# the interface
# --------------------------------------------------------------------------
@dataclass
class RerankQuery:
    """What a re-ranker knows about the query.

    Attributes
    ----------
    text : list of str or None
        The text phrasings of the query (None for an example-image search).
    vector : numpy.ndarray
        The ``(dim,)`` unit query vector that produced the search ``score``
        (normalised on creation).

    Examples
    --------
    >>> q = RerankQuery("ring galaxy", [3.0, 4.0])
    >>> q.text, q.vector.tolist()
    (['ring galaxy'], [0.6, 0.8])
    """

    text: list[str] | None
    vector: np.ndarray = field(repr=False)

    def __post_init__(self):
        if isinstance(self.text, str):
            self.text = [self.text]
        elif self.text is not None:
            self.text = [str(t) for t in self.text]
        self.vector = _unit_vector(self.vector)


class Reranker:
    """Base class of the re-rankers: subclass it and implement ``__call__``.

    Attributes
    ----------
    name : str
        Short name recorded in the result's meta.
    needs_images : bool
        If True, `rerank` passes one thumbnail (``HxWx3`` uint8 RGB, or None
        where no image could be had) per candidate, from
        `astro_semsearch.thumbnails.result_images` unless the caller gives
        ``images=``.
    """

    name: str = "reranker"
    needs_images: bool = False

    def describe(self) -> dict:
        """JSON-able parameters of this re-ranker (recorded in the result's meta)."""
        return {}

    def prepare(self, results: Table, index) -> None:
        """Optional hook, called by `rerank` once before ``__call__``.

        ``results`` is the whole table given to `rerank` and ``index`` the
        index it came from (or None); `FeedbackReranker` uses it to turn
        marked rows and object ids into embeddings. The default does nothing.
        """

    def __call__(self, query: RerankQuery, candidates: Table, *, vectors: np.ndarray,
                 images: list | None = None) -> np.ndarray:
        """New scores for the candidates, shape ``(len(candidates),)``, higher is better.

        Parameters
        ----------
        query : RerankQuery
        candidates : `~astropy.table.Table`
            The rows to re-score, in search order.
        vectors : numpy.ndarray
            ``(len(candidates), dim)`` full-precision unit embeddings of them.
        images : list or None
            One thumbnail (or None) per candidate when ``needs_images``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"{type(self).__name__}({params})"


def get_reranker(reranker: Reranker | str, **options) -> Reranker:
    """A re-ranker from its name (``"feedback"``, ``"expansion"``, ``"galaxidnet"``, ``"vlm"``).

    ``options`` go to the re-ranker's constructor. A `Reranker` instance is
    returned as is (options are then not allowed).

    Examples
    --------
    >>> get_reranker("expansion", n=5)
    ExpansionReranker(n=5, weight=0.5)
    """
    if isinstance(reranker, Reranker):
        if options:
            raise TypeError(f"options {sorted(options)} can only be given with a re-ranker name, not an instance "
                            f"of {type(reranker).__name__}; set them when you create it")
        return reranker
    if not isinstance(reranker, str):
        raise TypeError(f"reranker must be a Reranker or one of {RERANKERS}, got {type(reranker).__name__}")
    key = reranker.strip().lower()
    if key == "feedback":
        return FeedbackReranker(**options)
    if key == "expansion":
        return ExpansionReranker(**options)
    if key == "galaxidnet":
        return GalaxIDNetReranker(**options)
    if key == "vlm":
        from .vlm import VLMReranker  # needs transformers and a local model; imported only when asked for

        if "vlm_model" in options:  # rerank(hits, "vlm", vlm_model=PATH): rerank()'s own model= is the search model
            options["model"] = options.pop("vlm_model")
        return VLMReranker(**options)
    raise ValueError(f"unknown re-ranker {reranker!r}; known: {', '.join(RERANKERS)} (or pass a Reranker instance)")


# --------------------------------------------------------------------------
# rerank(): the plumbing shared by every re-ranker
# --------------------------------------------------------------------------
def _meta(results: Table) -> dict:
    meta = results.meta.get("astro_semsearch")
    return meta if isinstance(meta, dict) else {}


def _index_of(results: Table, index):
    """The index the results came from: the argument, or the one named in the meta."""
    from .search import _resolve_index

    if index is not None:
        return _resolve_index(index)
    info = _meta(results).get("index") or {}
    path, name = info.get("path"), info.get("name")
    if path and os.path.isdir(path):
        return _resolve_index(path)
    if name:
        try:
            return _resolve_index(name)
        except Exception as exc:  # noqa: BLE001 - explained in the message
            raise ValueError(f"could not load index {name!r} named in the results' meta ({exc}); "
                             "pass index=... (the index the results came from)") from exc
    raise ValueError("the results do not say which index they came from; pass index=... "
                     "(or vectors=... with one embedding per re-ranked row)")


def _query_of(query, results: Table, index, model) -> RerankQuery:
    """RerankQuery from the argument, or rebuilt from the results' meta."""
    from .search import _resolve_model

    if isinstance(query, RerankQuery):
        return query
    if isinstance(query, np.ndarray) or (isinstance(query, (list, tuple)) and query
                                         and all(isinstance(v, (int, float, np.number)) for v in query)):
        return RerankQuery(None, np.asarray(query, dtype=np.float64))
    if isinstance(query, (str, list, tuple)):
        texts = [query] if isinstance(query, str) else list(query)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError("query must be a non-empty string, a list of non-empty strings, a vector "
                             "or a RerankQuery")
        if index is None:
            raise ValueError("a text query needs the index (for its model); pass index=...")
        model = _resolve_model(model, index)
        return RerankQuery(texts, np.asarray(model.embed_text(texts), dtype=np.float64).mean(axis=0))
    if query is not None:
        raise TypeError(f"query must be a string, a list of strings, a vector or a RerankQuery, "
                        f"got {type(query).__name__}")
    # Rebuild the query the search used from its meta.
    meta = _meta(results)
    function = meta.get("function")
    if function == "semantic_search":
        if meta.get("like"):
            raise ValueError("these results mixed an example image into the query (like=...), which the meta "
                             "cannot reproduce; pass query=RerankQuery(text, vector) or the query vector")
        texts = meta.get("query")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        if not texts:
            raise ValueError("the results' meta records no query text; pass query=...")
        model = _resolve_model(model, index)
        q = _unit_vector(np.asarray(model.embed_text(texts), dtype=np.float64).mean(axis=0))
        negative = meta.get("negative")
        if negative:
            negative = [negative] if isinstance(negative, str) else list(negative)
            nvec = _unit_vector(np.asarray(model.embed_text(negative), dtype=np.float64).mean(axis=0))
            q = _unit_vector(q - float(meta.get("negative_weight") or 0.5) * nvec)
        return RerankQuery(texts, q)
    if function == "similar_to":
        target = meta.get("target_object_id")
        if not target:
            raise ValueError("the similar_to target was not an indexed galaxy, so the meta cannot reproduce its "
                             "vector; pass query=<its embedding>")
        row = int(index.rows_of([target])[0])
        if row < 0:
            raise ValueError(f"the similar_to target {target!r} is not in index {index.name!r}; pass query=...")
        return RerankQuery(None, index.vectors([row])[0])
    raise ValueError("the results' meta does not say how they were searched (not a semantic_search/similar_to "
                     "table); pass query=... (text, vector or RerankQuery)")


def rerank(results: Table, reranker: Reranker | str, *, top_n: int | None = None, query=None, index=None,
           model=None, images=None, vectors: np.ndarray | None = None, **options) -> Table:
    """Re-order the first ``top_n`` rows of a search result with a re-ranker.

    Parameters
    ----------
    results : `~astropy.table.Table`
        A `~astro_semsearch.semantic_search` / `~astro_semsearch.similar_to`
        result (or any table with ``object_id`` and, ideally, ``rank`` and
        ``score``), best first.
    reranker : `Reranker` or str
        An instance, or a name: ``"feedback"``, ``"expansion"``,
        ``"galaxidnet"``, ``"vlm"`` (``options`` go to its constructor).
    top_n : int, optional
        Re-rank only the first ``top_n`` rows (default: all). The rows after
        keep their order, below the re-ranked ones, with a masked
        ``rerank_score``.
    query : str, list of str, vector or `RerankQuery`, optional
        Default: rebuilt from ``results.meta`` (text queries are re-embedded
        with the index's model; a ``similar_to`` target's stored vector).
    index : `~astro_semsearch.GalaxyIndex`, name or directory, optional
        Where the candidates' embeddings come from. Default: the index named
        in ``results.meta``.
    model : GalaxyModel or name, optional
        Only needed to embed a text query (default: the index's model).
    images : list, directory or mapping, optional
        For re-rankers that look at images: one image per row of ``results``
        (or per re-ranked row), or what
        `astro_semsearch.thumbnails.result_images` takes as ``images=``.
    vectors : numpy.ndarray, optional
        ``(top_n, dim)`` embeddings of the re-ranked rows, instead of reading
        them from the index (then no index is needed).

    Returns
    -------
    `~astropy.table.Table`
        A new table: same rows, re-ordered; ``rank`` renumbered 1..N;
        ``score`` unchanged; ``rerank_score`` and ``search_rank`` inserted
        after ``score``; ``meta["astro_semsearch"]["rerank"]`` records
        ``name``, ``parameters``, ``top_n``, ``seconds`` and
        ``candidates_per_second``. Ties keep the search order; a candidate the
        re-ranker could not score (NaN) goes after the scored ones.

    Raises
    ------
    ValueError
        Empty results, ``top_n < 1``, an unknown re-ranker name, candidates
        missing from the index, a re-ranker returning the wrong number of
        scores.

    Examples
    --------
    >>> from astro_semsearch import semantic_search                   # doctest: +SKIP
    >>> hits = semantic_search("ring galaxy", k=100)                   # doctest: +SKIP
    >>> better = rerank(hits, "expansion", top_n=100)                  # doctest: +SKIP
    >>> better = rerank(hits, "feedback", good=[hits[0], hits[4]], bad=[hits[1]])  # doctest: +SKIP
    """
    if not isinstance(results, Table):
        raise TypeError(f"results must be an astropy Table (a search result), got {type(results).__name__}")
    if len(results) == 0:
        raise ValueError("results is empty: there is nothing to re-rank")
    if "object_id" not in results.colnames:
        raise ValueError(f"results need an object_id column to re-rank; they have {results.colnames}")
    reranker = get_reranker(reranker, **options)
    n = len(results)
    top_n = n if top_n is None else min(_check_int(top_n, "top_n"), n)
    cand = results[:top_n]

    # The index is needed for the candidates' embeddings, to rebuild or embed the query, and to look up
    # feedback marks given as object ids or rows; a caller who passes vectors and a vector query needs none.
    text_query = isinstance(query, str) or (isinstance(query, (list, tuple)) and any(isinstance(q, str)
                                                                                      for q in query))
    marks_need_index = isinstance(reranker, FeedbackReranker) and reranker._needs_table()
    need_index = index is not None or vectors is None or query is None or text_query or marks_need_index
    idx = _index_of(results, index) if need_index else None
    rq = _query_of(query, results, idx, model)
    if vectors is None:
        rows = np.asarray(idx.rows_of(np.asarray(cand["object_id"]).astype(str)))
        if (rows < 0).any():
            missing = [str(o) for o in np.asarray(cand["object_id"])[rows < 0][:5]]
            raise ValueError(f"{int((rows < 0).sum())} of the re-ranked rows are not in index {idx.name!r} "
                             f"(e.g. {missing}); pass the index the results came from")
        vectors = idx.vectors(rows)
    vectors = _check_matrix(vectors, rq.vector.shape[0], top_n, "vectors of the re-ranked rows")

    reranker.prepare(results, idx)
    imgs = None
    if getattr(reranker, "needs_images", False):
        if isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.dtype == object):
            if len(images) not in (n, top_n):
                raise ValueError(f"images has {len(images)} entries; give one per row of results ({n}) "
                                 f"or per re-ranked row ({top_n})")
            imgs = list(images[:top_n])
        else:
            from .thumbnails import result_images

            imgs = result_images(cand, index=idx, images=images)

    t0 = time.perf_counter()
    scores = reranker(rq, cand, vectors=vectors, images=imgs)
    seconds = time.perf_counter() - t0
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape != (top_n,):
        raise ValueError(f"re-ranker {reranker.name!r} returned {scores.size} scores for {top_n} candidates")
    if np.isnan(scores).any():
        warnings.warn(f"re-ranker {reranker.name!r} could not score {int(np.isnan(scores).sum())} of {top_n} "
                      "candidates; they are placed after the scored ones", AstropyUserWarning, stacklevel=2)

    # Stable sort: ties keep the search order; NaN (unscored) last.
    key = np.where(np.isnan(scores), np.inf, -scores)
    order = np.argsort(key, kind="stable")
    full = np.concatenate([order, np.arange(top_n, n)])
    out = results[full]
    out.meta = copy.deepcopy(results.meta)

    search_rank = (np.asarray(results["search_rank"]) if "search_rank" in results.colnames
                   else np.asarray(results["rank"]) if "rank" in results.colnames else np.arange(1, n + 1))
    new_scores = np.concatenate([scores[order], np.full(n - top_n, np.nan)])
    rerank_col = MaskedColumn(new_scores, name="rerank_score", mask=np.isnan(new_scores), format=".4f",
                              description=f"score given by the {reranker.name} re-ranker (higher is better); "
                                          "masked for rows it did not re-rank")
    rank_col = MaskedColumn(np.asarray(search_rank)[full].astype(np.int64), name="search_rank",
                            description="rank before re-ranking")
    for col in (rerank_col, rank_col):
        if col.name in out.colnames:
            out.remove_column(col.name)
    pos = out.colnames.index("score") + 1 if "score" in out.colnames else len(out.colnames)
    out.add_column(rerank_col, index=pos)
    out.add_column(Table.Column(np.asarray(rank_col), name="search_rank", description=rank_col.description),
                   index=pos + 1)
    if "rank" in out.colnames:
        out["rank"] = np.arange(1, n + 1, dtype=np.int64)
    else:
        out.add_column(np.arange(1, n + 1, dtype=np.int64), name="rank", index=0)

    meta = out.meta.setdefault("astro_semsearch", {})
    if not isinstance(meta, dict):
        meta = out.meta["astro_semsearch"] = {}
    record = {
        "name": reranker.name,
        "parameters": reranker.describe(),
        "top_n": int(top_n),
        "seconds": round(seconds, 4),
        "candidates_per_second": round(top_n / seconds, 1) if seconds > 0 else None,
    }
    if "rerank" in meta:  # chained re-rankers: keep the earlier record
        record["previous"] = meta["rerank"]
    meta["rerank"] = record
    return out


# --------------------------------------------------------------------------
# relevance feedback (Rocchio)
# --------------------------------------------------------------------------
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
    q = _unit_vector(query).astype(np.float64)
    moved = alpha * q
    if good is not None and len(good):
        moved = moved + beta * _unit_rows(_check_matrix(good, q.size, what="good embeddings")).mean(axis=0)
    if bad is not None and len(bad):
        moved = moved - gamma * _unit_rows(_check_matrix(bad, q.size, what="bad embeddings")).mean(axis=0)
    return _unit_vector(moved, "moved query (the feedback cancels the query out)")


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
        raise TypeError(f"{name} must be object ids, result rows, row numbers or embeddings, "
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
    >>> q = RerankQuery(None, [1.0, 0.0])
    >>> fb(q, Table({"object_id": ["x", "y"]}), vectors=np.array([[1.0, 0.0], [0.6, 0.8]])).round(3).tolist()
    [0.707, 0.99]
    """

    name = "feedback"

    def __init__(self, good=None, bad=None, *, alpha: float = 1.0, beta: float = 0.75, gamma: float = 0.25):
        self.good = _as_marks(good, "good")
        self.bad = _as_marks(bad, "bad")
        if not self.good and not self.bad:
            raise ValueError("relevance feedback needs at least one hit marked good or bad (good=..., bad=...)")
        self.alpha = _check_number(alpha, "alpha")
        self.beta = _check_number(beta, "beta")
        self.gamma = _check_number(gamma, "gamma")
        self._good_vecs: np.ndarray | None = None
        self._bad_vecs: np.ndarray | None = None
        self._labels: dict[str, list[str]] = {"good": [], "bad": []}
        # Marks that are embeddings or object ids need no table: resolve what we can now.
        if not self._needs_table():
            self._resolve(None, None)

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
                        raise ValueError(f"a {kind} row has no object_id column")
                    ids.append(str(m["object_id"]))
                elif isinstance(m, (int, np.integer)) and not isinstance(m, bool):
                    if results is None:
                        raise ValueError(f"{kind} row number {int(m)} needs the results table: use rerank(results, "
                                         "...) or give object ids")
                    if not -len(results) <= int(m) < len(results):
                        raise ValueError(f"{kind} row number {int(m)} is outside the results table "
                                         f"({len(results)} rows; row numbers are 0-based: results[i])")
                    ids.append(str(results["object_id"][int(m)]))
                elif isinstance(m, str):
                    if not m.strip():
                        raise ValueError(f"{kind} contains an empty object id")
                    ids.append(m.strip())
                else:
                    raise TypeError(f"{kind} entries must be object ids, result rows, row numbers or float "
                                    f"embeddings, got {m!r} ({type(m).__name__})")
            if ids:
                if index is None:
                    raise ValueError(f"{kind} object ids {ids[:3]} need the index to look up their embeddings; "
                                     "pass index=... to rerank")
                rows = np.asarray(index.rows_of(ids))
                if (rows < 0).any():
                    missing = [i for i, r in zip(ids, rows) if r < 0]
                    raise ValueError(f"{kind} object ids not in index {index.name!r}: {missing[:5]}")
                blocks[kind].append(index.vectors(rows))
                labels[kind].extend(ids)
        self._good_vecs = np.vstack(blocks["good"]) if blocks["good"] else None
        self._bad_vecs = np.vstack(blocks["bad"]) if blocks["bad"] else None
        self._labels = labels

    def prepare(self, results: Table, index) -> None:
        self._resolve(results, index)

    def moved_query(self, query: RerankQuery | np.ndarray) -> np.ndarray:
        """The Rocchio-moved unit query vector (marks must be resolved: see `prepare`)."""
        if self._good_vecs is None and self._bad_vecs is None:
            raise ValueError("the marked hits have not been turned into embeddings yet; use rerank(results, "
                             "FeedbackReranker(...)) or feedback_search")
        vec = query.vector if isinstance(query, RerankQuery) else query
        return rocchio(vec, self._good_vecs, self._bad_vecs, alpha=self.alpha, beta=self.beta, gamma=self.gamma)

    def __call__(self, query, candidates, *, vectors, images=None):
        moved = self.moved_query(query)
        vectors = _check_matrix(vectors, moved.size, len(candidates))
        return _unit_rows(vectors) @ moved.astype(np.float64)


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
    from astropy import units as u

    from .search import similar_to

    if not isinstance(results, Table) or len(results) == 0:
        raise ValueError("feedback_search needs the (non-empty) results table you marked")
    fb = FeedbackReranker(good, bad, alpha=alpha, beta=beta, gamma=gamma)
    idx = _index_of(results, index)
    rq = _query_of(query, results, idx, model)
    fb.prepare(results, idx)
    moved = fb.moved_query(rq)
    meta = _meta(results)
    if min_separation is None and meta.get("min_separation_arcsec") is not None:
        min_separation = float(meta["min_separation_arcsec"]) * u.arcsec
    k = len(results) if k is None else _check_int(k, "k")
    out = similar_to(moved, k, index=idx, model=model, exclude_self=False, min_separation=min_separation,
                     region=region)
    new = out.meta["astro_semsearch"]
    new.update({"function": "feedback_search", "query": meta.get("query", rq.text),
                "feedback": fb.describe()})
    new.pop("target_object_id", None)
    new.pop("exclude_self", None)
    return out


# --------------------------------------------------------------------------
# pseudo-relevance query expansion
# --------------------------------------------------------------------------
def expand_query(query: np.ndarray, top_vectors: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """``unit((1 - weight) q + weight unit(mean(top_vectors)))``.

    Examples
    --------
    >>> expand_query(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [0.0, 1.0]]), 0.5).round(4).tolist()
    [0.7071, 0.7071]
    """
    q = _unit_vector(query).astype(np.float64)
    top = _unit_rows(_check_matrix(top_vectors, q.size, what="top-hit embeddings"))
    centroid = _unit_vector(top.mean(axis=0), "mean of the top hits")
    return _unit_vector((1.0 - weight) * q + weight * centroid, "expanded query")


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
    >>> ex = ExpansionReranker(n=1, weight=0.5)
    >>> q = RerankQuery("bar", [1.0, 0.0])
    >>> ex(q, Table({"object_id": ["a", "b"]}), vectors=np.array([[0.0, 1.0], [1.0, 0.0]])).round(4).tolist()
    [0.7071, 0.7071]
    """

    name = "expansion"

    def __init__(self, n: int = 10, weight: float = 0.5):
        self.n = _check_int(n, "n")
        self.weight = _check_number(weight, "weight", 0.0, 1.0)

    def describe(self) -> dict:
        return {"n": self.n, "weight": self.weight}

    def __call__(self, query, candidates, *, vectors, images=None):
        vectors = _check_matrix(vectors, query.vector.size, len(candidates))
        moved = expand_query(query.vector, vectors[: self.n], self.weight)
        return _unit_rows(vectors) @ moved


# --------------------------------------------------------------------------
# GalaxIDNet's similarity score
# --------------------------------------------------------------------------
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
        raise ValueError(f"weights must be three non-negative numbers (w_cos, w_l2, w_l3), not all zero, "
                         f"got {weights!r}")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b must be embeddings of the same dimension, got shapes {a.shape} and {b.shape}")
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("galaxidnet_similarity: a zero-length embedding has no direction")
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
        vectors = _check_matrix(vectors, query.vector.size, len(candidates))
        return np.asarray(galaxidnet_similarity(query.vector[None, :], vectors, self.weights)).reshape(-1)
