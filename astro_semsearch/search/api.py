"""Search an index by text (`semantic_search`) or by example (`similar_to`).

Both functions return an `astropy.table.Table`, best match first, with the
columns ``rank`` (1..k), ``object_id``, ``ra``, ``dec`` (deg), ``score``
(cosine similarity, higher is more similar), the catalogue columns stored in
the index, and ``viewer_url`` (a link to the galaxy in the Legacy Survey sky
viewer, see `~astro_semsearch.cutouts.viewer_urls`). ``Table.meta["astro_semsearch"]`` records how the table
was made (query, k, model and its sha256, index and the sha256 of its FAISS
file, package version, UTC time, survey), so a saved ECSV file documents
itself.

Combining text and an example image
-----------------------------------
The text and image encoders share one embedding space, so a query can mix
them: ``semantic_search("ring galaxy", like=some_galaxy, like_weight=0.3)``
searches with ``normalise((1 - 0.3) * text + 0.3 * image)``. ``like`` takes
everything `similar_to` takes (a result row, an object id, a SkyCoord, an
image array, a FITS file or HDU). ``negative`` then moves the query away from
a description: ``q - negative_weight * text(negative)``, renormalised.

Near-duplicates
---------------
A hit closer on the sky than ``min_separation`` to a better-ranked hit that
was kept is dropped (the same galaxy indexed twice, a galaxy and its shreds).
The search over-fetches and retries, so ``k`` rows still come back when the
index holds enough distinct galaxies.

Examples
--------
>>> from astro_semsearch import semantic_search, similar_to
>>> hits = semantic_search("ring galaxy", k=10)          # doctest: +SKIP
>>> twins = similar_to(hits[0], k=5)                     # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

from astropy import units as u
from astropy.table import Table

from .._validate import check_angle, check_bool, check_int, check_number, check_texts
from ..exceptions import InvalidInputError, NoGoodMatchWarning
from ..index import open_index
from ..model.text import one_text_backend
from .engine import LazyModel, index_provenance, model_provenance, ranked, region_rows, resolve_model, result_table
from .query import Query
from .reranking import get_reranker
from .reranking import rerank as _rerank
from .scores import match_verdict
from .targets import resolve_target

__all__ = ["semantic_search", "similar_to"]


@one_text_backend()  # the query, its negatives and the meta: one text backend, looked up once
def semantic_search(
    query: str | Sequence[str],
    k: int | None = None,
    *,
    index=None,
    model=None,
    negative: str | Sequence[str] | None = None,
    negative_weight: float = 0.5,
    like: Any = None,
    like_weight: float = 0.5,
    like_r90: u.Quantity | None = None,
    min_separation: u.Quantity | None = 5 * u.arcsec,
    region=None,
    rerank=None,
    rerank_top_n: int = 100,
    negation: bool = True,
) -> Table:
    """Find the galaxies whose images best match a description.

    Parameters
    ----------
    query : str or list of str
        What you are looking for, e.g. ``"ring galaxy"``. Several phrases
        are embedded separately and averaged.
    k : int, optional
        Number of galaxies to return (clipped, with a warning, to the index
        size); default ``conf.default_k`` (20).
    index : `~astro_semsearch.index.GalaxyIndex`, name or directory, optional
        Default: the index shipped with the package (``conf.default_index``).
    model : `~astro_semsearch.GalaxyModel` or name, optional
        Default: the model the index was built with (recorded in its
        manifest). A different model raises `ModelMismatchError`.
    negative : str or list of str, optional
        Descriptions to steer away from (``q - negative_weight * n``).
    negative_weight : float
        Strength of the negative term (>= 0).
    like : optional
        An example galaxy (anything `similar_to` accepts) mixed into the
        query: ``(1 - like_weight) * text + like_weight * image``.
    like_weight : float
        In [0, 1]; 1 searches with the example alone.
    like_r90 : angle, optional
        When ``like`` is a `~astropy.coordinates.SkyCoord`: the galaxy's R90
        (e.g. ``12 * u.arcsec``; about 2.5 x a Tractor ``shape_r``), to frame
        the cutout fetched for a position that is not indexed as the model was
        trained, exactly as ``r90`` of `similar_to`. Unused when the position
        is an indexed galaxy; refused for any other kind of ``like``.
    min_separation : `~astropy.units.Quantity` (angle) or None
        Hits closer than this to a better hit are dropped (near-duplicates).
    region : (SkyCoord, angle) or boolean mask, optional
        Only search inside a cone, or among rows where the mask is True
        (e.g. ``index.table["mag"] < 18``).
    rerank : `~astro_semsearch.rerank.Reranker` or str, optional
        Re-rank the first ``rerank_top_n`` hits before cutting to ``k``: a
        re-ranker instance or a name (``"expansion"``, ``"galaxidnet"``,
        ``"vlm"``; ``"feedback"`` needs marks, so give a
        `~astro_semsearch.rerank.FeedbackReranker` instance). See
        `astro_semsearch.search.rerank`.
    rerank_top_n : int
        How many hits the re-ranker sees (at least ``k`` are fetched).
    negation : bool
        Understand negations in ``query``: "galaxy without a ring",
        "unbarred spiral", "not edge-on", "non-elliptical" search for what is
        left, away from the negated feature (as ``negative=`` would, with
        ``negative_weight``); see `astro_semsearch.search.negation`. A
        negated answer of a Galaxy Zoo yes/no question ("no spiral arms",
        "not edge-on") searches for the other answer instead. The parsed
        negatives are recorded in ``meta`` (``parsed_negative``, and
        ``opposite_answers``).

    Returns
    -------
    `~astropy.table.Table`
        ``rank, object_id, ra, dec`` (deg), ``score`` (cosine similarity),
        ``percentile`` and ``excess`` (against the index's background, the
        same for every query: `astro_semsearch.search.scores`), the index's
        catalogue columns and ``viewer_url``; with ``rerank`` also
        ``rerank_score`` and ``search_rank`` after ``score``, and
        ``meta["astro_semsearch"]["rerank"]``. ``meta["astro_semsearch"]``
        records the query, model, index and the match verdict
        (``"match"``).

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=5)              # doctest: +SKIP
    >>> hits = semantic_search(["spiral arms", "bar"], negative="edge-on", k=5)  # doctest: +SKIP
    >>> hits = semantic_search("ring galaxy", k=10, rerank="expansion", rerank_top_n=100)  # doctest: +SKIP
    """
    # Everything the caller gave is checked before the index and the model are loaded.
    check_texts(query, "query")
    if negative is not None:
        check_texts(negative, "negative")
    check_number(negative_weight, "negative_weight", 0.0)
    check_number(like_weight, "like_weight", 0.0, 1.0)
    like_r90 = check_angle(like_r90, "like_r90", positive=True)
    if like_r90 is not None and like is None:
        raise InvalidInputError("like_r90= frames the cutout of a like= position; give like= as well")
    k = check_int(_default_k() if k is None else k, "k")
    min_sep = check_angle(min_separation, "min_separation")
    reranker = None
    if rerank is not None:
        reranker = get_reranker(rerank)  # fail on a bad name before any work
        rerank_top_n = check_int(rerank_top_n, "rerank_top_n")
    index = open_index(index)
    rows_in = region_rows(index, region)
    # A text-only query needs only the model's text side (no torch with the ONNX text backend).
    model = resolve_model(model, index, text_only=like is None and reranker is None)
    like_vec = like_desc = like_id = None
    if like is not None:
        target = resolve_target(like, index, lambda: model, 1 * u.arcsec, like_r90,
                                where="semantic_search(like=)")
        like_vec, like_desc = target.vector, target.description
        like_id = None if target.row is None else str(index.object_ids([target.row])[0])
    q = Query.from_text(model, query, negative=negative, negative_weight=negative_weight, like_vector=like_vec,
                        like=like_desc, like_weight=like_weight, example_object_id=like_id,
                        negation=check_bool(negation, "negation"))
    fetch = k
    if reranker is not None:
        # Over-fetch so the re-ranker sees rerank_top_n candidates (no more than the index can give).
        available = index.ntotal if rows_in is None else len(rows_in)
        fetch = max(k, min(rerank_top_n, available))
    # stacklevel 4: past this function and the one_text_backend wrapper, to the user's call
    scores, rows = ranked(index, q.vector, fetch, min_sep=min_sep, region_rows=rows_in, stacklevel=4)
    meta = {"function": "semantic_search", **q.to_meta(), "k": k,
            "min_separation_arcsec": None if min_sep is None else float(min_sep.value),
            "model": model_provenance(index, model), "index": index_provenance(index)}
    backend = getattr(model, "text_backend", None)  # what ran MiniLM for this query: "torch" or "onnx"
    if backend:
        meta["model"]["text_backend"] = backend
    table = result_table(index, scores, rows, meta, q.vector)
    _match(table, model, q)
    if reranker is not None and len(table):
        table = _rerank(table, reranker, top_n=rerank_top_n, query=q, index=index, model=model)[: min(k, len(table))]
    return table


def similar_to(
    target: Any,
    k: int | None = None,
    *,
    index=None,
    model=None,
    exclude_self: bool = True,
    min_separation: u.Quantity | None = 5 * u.arcsec,
    max_distance: u.Quantity = 1 * u.arcsec,
    region=None,
    r90: u.Quantity | None = None,
) -> Table:
    """Find the galaxies that look most like an example.

    Parameters
    ----------
    target
        * a row of a result table (its ``object_id`` is used),
        * an ``object_id`` string from the index,
        * a `~astropy.coordinates.SkyCoord`: the nearest indexed galaxy within
          ``max_distance``; if there is none, an image of that position is
          fetched from the Legacy Survey and embedded,
        * an image: an ``HxWx3`` uint8 RGB array or ``CxHxW`` float band array,
          a FITS/JPEG/PNG file path, or a FITS HDU/HDUList,
        * a 1-D embedding vector of the index's dimension.
    k : int, optional
        Number of galaxies to return (default ``conf.default_k``, 20).
    index, model
        As in `semantic_search`. An indexed target needs no model at all.
    exclude_self : bool
        Leave the target itself (and, with ``min_separation``, its close
        neighbours on the sky) out of the results.
    min_separation : angle or None
        Near-duplicate suppression, as in `semantic_search`.
    max_distance : angle
        How far a SkyCoord target may be from an indexed galaxy.
    region : optional
        As in `semantic_search`.
    r90 : angle, optional
        For a SkyCoord target that is not indexed: the galaxy's R90 (the
        radius holding 90% of its Petrosian light; about 2.5 x a Tractor
        ``shape_r``). The fetched cutout then spans the model's ``frame_r90``
        (6.4) x R90, as the model was trained, within the framing rule's
        limits (never finer than the native 0.262"/px, so below about 10"
        the fixed request; at most a 30' field; the result's meta says when a
        limit applied: `astro_semsearch.cutouts.framing`); without it the
        fixed 256 px at 0.262"/px is fetched and an `AstropyUserWarning` says
        so. Unused when the position is an indexed galaxy (its stored
        embedding is searched); refused for any other kind of target.

    Returns
    -------
    `~astropy.table.Table`
        The columns of `semantic_search` (``score`` is the cosine
        similarity to the target's embedding); ``meta["astro_semsearch"]``
        records the target, model and index.

    Examples
    --------
    >>> twins = similar_to("J000411.19+020924.0", k=5)          # doctest: +SKIP
    """
    k = check_int(_default_k() if k is None else k, "k")
    min_sep = check_angle(min_separation, "min_separation")
    max_dist = check_angle(max_distance, "max_distance", allow_none=False)
    exclude_self = check_bool(exclude_self, "exclude_self")
    r90 = check_angle(r90, "r90", positive=True)
    index = open_index(index)
    rows_in = region_rows(index, region)
    lazy = LazyModel(model, index)
    if model is not None:
        lazy()  # an explicit model is always checked against the index
    target = resolve_target(target, index, lazy, max_dist, r90)
    oid = None if target.row is None else str(index.object_ids([target.row])[0])
    q = Query.from_example(target.vector, target.description, oid)
    scores, rows = ranked(index, q.vector, k, min_sep=min_sep, exclude_row=target.row if exclude_self else None,
                          anchor=target.coord if exclude_self else None, region_rows=rows_in)
    meta = {"function": "similar_to", "query": target.description, "target_object_id": oid, "k": k,
            "exclude_self": bool(exclude_self),
            "min_separation_arcsec": None if min_sep is None else float(min_sep.value),
            "model": model_provenance(index, lazy.loaded), "index": index_provenance(index)}
    if oid is None:  # not in the index: keep the vector so the search can be re-ranked or repeated
        meta["vector"] = q.to_meta()["vector"]
    return result_table(index, scores, rows, meta, q.vector)


def _default_k() -> int:
    from ..config import conf

    return int(conf.default_k)


def _match(table: Table, model, q: Query) -> None:
    """Record whether anything matched (meta["match"]) and warn when nothing did."""
    verdict = match_verdict(model, q.text, float(table["excess"][0]) if len(table) else None)
    table.meta["astro_semsearch"]["match"] = verdict
    if not verdict["good"]:
        warnings.warn(f"no good match for {q.text!r}: " + "; ".join(verdict["reasons"])
                      + " (the hits are returned anyway; see meta['astro_semsearch']['match'])",
                      NoGoodMatchWarning, stacklevel=4)  # past semantic_search and its one_text_backend wrapper
