"""Re-ranking: the interface every re-ranker implements, the registry of their names, and `rerank`.

A search ranks the whole index by one cosine similarity. A *re-ranker* looks
again at the first ``top_n`` hits only and gives each a new score; `rerank`
re-orders those rows by it. The result table keeps the search's ``score``,
adds ``rerank_score`` (masked where a row was not re-ranked) and
``search_rank`` (the rank the search gave), renumbers ``rank``, and records in
``meta["astro_semsearch"]["rerank"]`` which re-ranker ran, with which
parameters, on how many rows and how long it took.

Re-rankers are objects: pass an instance wherever one is accepted
(``semantic_search(..., rerank=ExpansionReranker(n=5))``). A name is looked
up in the registry, the ``astro_semsearch.rerankers`` entry-point group
(the package's own: ``feedback``, ``expansion``, ``galaxidnet``, ``vlm``;
another package can add its own re-rankers under that group). The built-in
re-rankers live in `astro_semsearch.rerank`.

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
from importlib.metadata import entry_points

import numpy as np
from astropy.table import MaskedColumn, Table
from astropy.utils.exceptions import AstropyUserWarning

from .._meta import meta_section
from .._validate import check_int, check_matrix
from ..exceptions import InvalidInputError, InvalidTypeError
from .engine import resolve_model
from .query import Query

__all__ = ["Reranker", "rerank", "get_reranker", "reranker_names", "ENTRY_POINT_GROUP"]

#: The entry-point group that maps re-ranker names to their classes.
ENTRY_POINT_GROUP = "astro_semsearch.rerankers"


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
    needs_index : bool
        If True, `rerank` opens the index the results came from even when the
        caller gave the candidates' vectors (e.g. to look up marked galaxies).
    """

    name: str = "reranker"
    needs_images: bool = False
    needs_index: bool = False

    def describe(self) -> dict:
        """JSON-able parameters of this re-ranker (recorded in the result's meta)."""
        return {}

    def prepare(self, results: Table, index) -> None:
        """Optional hook, called by `rerank` once before ``__call__``.

        ``results`` is the whole table given to `rerank` and ``index`` the
        index it came from (or None); the feedback re-ranker uses it to turn
        marked rows and object ids into embeddings. The default does nothing.
        """

    def __call__(self, query: Query, candidates: Table, *, vectors: np.ndarray,
                 images: list | None = None) -> np.ndarray:
        """New scores for the candidates, shape ``(len(candidates),)``, higher is better.

        Parameters
        ----------
        query : `~astro_semsearch.search.Query`
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


def _registry() -> dict:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def reranker_names() -> tuple[str, ...]:
    """The names `get_reranker` knows (the ``astro_semsearch.rerankers`` entry points)."""
    return tuple(sorted(_registry()))


def get_reranker(reranker: Reranker | str, **options) -> Reranker:
    """A re-ranker from its name (``"feedback"``, ``"expansion"``, ``"galaxidnet"``, ``"vlm"``, ...).

    ``options`` go to the re-ranker's constructor. A `Reranker` instance is
    returned as is (options are then not allowed).

    Examples
    --------
    >>> get_reranker("expansion", n=5)
    ExpansionReranker(n=5, weight=0.5)
    """
    if isinstance(reranker, Reranker):
        if options:
            raise InvalidTypeError(f"options {sorted(options)} can only be given with a re-ranker name, not an "
                                   f"instance of {type(reranker).__name__}; set them when you create it")
        return reranker
    names = reranker_names()
    if not isinstance(reranker, str):
        raise InvalidTypeError(f"reranker must be a Reranker or one of {names}, got {type(reranker).__name__}")
    entry = _registry().get(reranker.strip().lower())
    if entry is None:
        raise InvalidInputError(f"unknown re-ranker {reranker!r}; known: {', '.join(names)} "
                                "(or pass a Reranker instance)")
    return entry.load()(**options)


# --------------------------------------------------------------------------
# rerank(): the plumbing shared by every re-ranker
# --------------------------------------------------------------------------
def results_meta(results: Table) -> dict:
    """``results.meta["astro_semsearch"]``, nested or as the JSON text a FITS file keeps."""
    return meta_section(results)


def results_index(results: Table, index=None):
    """The index results came from: ``index`` if given, else the one named in their meta."""
    from ..index import open_index

    if index is not None:
        return open_index(index)
    info = results_meta(results).get("index") or {}
    path, name = info.get("path"), info.get("name")
    if path and os.path.isdir(path):
        return open_index(path)
    if name:
        try:
            return open_index(name)
        except Exception as exc:  # noqa: BLE001 - explained in the message
            raise InvalidInputError(f"could not open index {name!r} named in the results' meta ({exc}); "
                                    "pass index=... (the index the results came from)") from exc
    raise InvalidInputError("the results do not say which index they came from; pass index=... "
                            "(or vectors=... with one embedding per re-ranked row)")


def results_query(query, results: Table, index, model) -> Query:
    """The `Query` to re-rank against: the argument, or the one the results' meta records."""
    if isinstance(query, Query):
        return query
    if isinstance(query, np.ndarray) or (isinstance(query, (list, tuple)) and query
                                         and all(isinstance(v, (int, float, np.number)) for v in query)):
        return Query(None, np.asarray(query, dtype=np.float64))
    if isinstance(query, (str, list, tuple)):
        if index is None:
            raise InvalidInputError("a text query needs the index (for its model); pass index=...")
        return Query.from_text(resolve_model(model, index), query)
    if query is not None:
        raise InvalidTypeError(f"query must be a string, a list of strings, a vector or a Query, "
                               f"got {type(query).__name__}")
    meta = results_meta(results)
    if meta.get("function") not in ("semantic_search", "similar_to"):
        raise InvalidInputError("the results' meta does not say how they were searched (not a semantic_search/"
                                "similar_to table); pass query=... (text, vector or Query)")
    text_query = meta.get("function") != "similar_to" and meta.get("query")
    return Query.from_meta(meta, resolve_model(model, index) if text_query else None, index)


def _candidate_images(reranker: Reranker, cand: Table, n: int, images, index) -> list | None:
    """One image per candidate for re-rankers that look at pixels."""
    if not reranker.needs_images:
        return None
    top_n = len(cand)
    if isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.dtype == object):
        if len(images) not in (n, top_n):
            raise InvalidInputError(f"images has {len(images)} entries; give one per row of results ({n}) "
                                    f"or per re-ranked row ({top_n})")
        return list(images[:top_n])
    from ..thumbnails import result_images

    return result_images(cand, index=index, images=images)


def _score(reranker: Reranker, query: Query, cand: Table, vectors, images) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    scores = reranker(query, cand, vectors=vectors, images=images)
    seconds = time.perf_counter() - t0
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape != (len(cand),):
        raise InvalidInputError(f"re-ranker {reranker.name!r} returned {scores.size} scores for {len(cand)} "
                                "candidates")
    if np.isnan(scores).any():
        warnings.warn(f"re-ranker {reranker.name!r} could not score {int(np.isnan(scores).sum())} of {len(cand)} "
                      "candidates; they are placed after the scored ones", AstropyUserWarning, stacklevel=3)
    return scores, seconds


def _reordered(results: Table, reranker: Reranker, scores: np.ndarray, top_n: int, seconds: float) -> Table:
    """The results re-ordered by the new scores, with rerank_score, search_rank and the meta record."""
    n = len(results)
    # Stable sort: ties keep the search order; NaN (unscored) last.
    order = np.argsort(np.where(np.isnan(scores), np.inf, -scores), kind="stable")
    full = np.concatenate([order, np.arange(top_n, n)])
    out = results[full]
    out.meta = copy.deepcopy(results.meta)
    search_rank = (np.asarray(results["search_rank"]) if "search_rank" in results.colnames
                   else np.asarray(results["rank"]) if "rank" in results.colnames else np.arange(1, n + 1))
    new_scores = np.concatenate([scores[order], np.full(n - top_n, np.nan)])
    rerank_col = MaskedColumn(new_scores, name="rerank_score", mask=np.isnan(new_scores), format=".4f",
                              description=f"score given by the {reranker.name} re-ranker (higher is better); "
                                          "masked for rows it did not re-rank")
    rank_col = Table.Column(np.asarray(search_rank)[full].astype(np.int64), name="search_rank",
                            description="rank before re-ranking")
    for col in (rerank_col, rank_col):
        if col.name in out.colnames:
            out.remove_column(col.name)
    pos = out.colnames.index("score") + 1 if "score" in out.colnames else len(out.colnames)
    out.add_column(rerank_col, index=pos)
    out.add_column(rank_col, index=pos + 1)
    if "rank" in out.colnames:
        out["rank"] = np.arange(1, n + 1, dtype=np.int64)
    else:
        out.add_column(np.arange(1, n + 1, dtype=np.int64), name="rank", index=0)
    meta = out.meta["astro_semsearch"] = meta_section(out)  # a FITS file's JSON text becomes a dict again
    record = {"name": reranker.name, "parameters": reranker.describe(), "top_n": int(top_n),
              "seconds": round(seconds, 4),
              "candidates_per_second": round(top_n / seconds, 1) if seconds > 0 else None}
    if "rerank" in meta:  # chained re-rankers: keep the earlier record
        record["previous"] = meta["rerank"]
    meta["rerank"] = record
    return out


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
    query : str, list of str, vector or `~astro_semsearch.search.Query`, optional
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
        raise InvalidTypeError(f"results must be an astropy Table (a search result), got {type(results).__name__}")
    if len(results) == 0:
        raise InvalidInputError("results is empty: there is nothing to re-rank")
    if "object_id" not in results.colnames:
        raise InvalidInputError(f"results need an object_id column to re-rank; they have {results.colnames}")
    reranker = get_reranker(reranker, **options)
    n = len(results)
    top_n = n if top_n is None else min(check_int(top_n, "top_n"), n)
    cand = results[:top_n]
    # The index gives the candidates' embeddings, the model to embed a text query, and the marked galaxies
    # of feedback; a caller who passes vectors and a vector query needs none.
    text_query = isinstance(query, str) or (isinstance(query, (list, tuple)) and any(isinstance(q, str)
                                                                                      for q in query))
    need_index = index is not None or vectors is None or query is None or text_query or reranker.needs_index
    idx = results_index(results, index) if need_index else None
    rq = results_query(query, results, idx, model)
    if vectors is None:
        rows = np.asarray(idx.rows_of(np.asarray(cand["object_id"]).astype(str)))
        if (rows < 0).any():
            missing = [str(o) for o in np.asarray(cand["object_id"])[rows < 0][:5]]
            raise InvalidInputError(f"{int((rows < 0).sum())} of the re-ranked rows are not in index "
                                    f"{idx.name!r} (e.g. {missing}); pass the index the results came from")
        vectors = idx.vectors(rows)
    vectors = check_matrix(vectors, rq.vector.shape[0], top_n, "vectors of the re-ranked rows")
    reranker.prepare(results, idx)
    imgs = _candidate_images(reranker, cand, n, images, idx)
    scores, seconds = _score(reranker, rq, cand, vectors, imgs)
    return _reordered(results, reranker, scores, top_n, seconds)
