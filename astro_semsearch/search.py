"""Search an index by text (`semantic_search`) or by example (`similar_to`).

Both functions return an `astropy.table.Table`, best match first, with the
columns ``rank`` (1..k), ``object_id``, ``ra``, ``dec`` (deg), ``score``
(cosine similarity, higher is more similar), the catalogue columns stored in
the index, and ``viewer_url`` (a link to the galaxy in the Legacy Survey sky
viewer, see `viewer_urls`). ``Table.meta["astro_semsearch"]`` records how the table
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

import datetime as _dt
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky
from astropy.io import fits
from astropy.table import Row, Table
from astropy.utils.exceptions import AstropyUserWarning

from .exceptions import TargetNotFoundError
from .index import GalaxyIndex, load_index

__all__ = ["semantic_search", "similar_to", "viewer_urls"]


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------
def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be a positive integer, got {k!r} ({type(k).__name__})")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def _check_angle(value, name: str, allow_none: bool = True) -> u.Quantity | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, u.Quantity):
        raise TypeError(f"{name} must be an angle with units, e.g. 5 * u.arcsec, got {value!r}")
    if not value.unit.is_equivalent(u.deg):
        raise u.UnitTypeError(f"{name} must be an angle, got unit {value.unit}")
    if not value.isscalar:
        raise ValueError(f"{name} must be a single angle, got shape {value.shape}")
    if not np.isfinite(value.value) or value.value < 0:
        raise ValueError(f"{name} must be a finite angle >= 0, got {value}")
    return value.to(u.arcsec)


def _texts(value, name: str) -> list[str]:
    """A non-empty str or a non-empty list of non-empty strs -> list of str."""
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise ValueError(f"{name} is an empty list; give at least one description")
    else:
        raise TypeError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain only strings, got {item!r} ({type(item).__name__})")
        if not item.strip():
            raise ValueError(f"{name} contains an empty or whitespace-only string")
    return [s.strip() for s in items]


def _check_weight(value, name: str, upper: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (upper is not None and value > upper):
        raise ValueError(f"{name} must be in [0, {upper if upper is not None else 'inf'}], got {value}")
    return value


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("the query vector has no direction (zero length); the query and negative cancel out")
    return (v / norm).astype(np.float32)


# --------------------------------------------------------------------------
# index / model resolution
# --------------------------------------------------------------------------
def _resolve_index(index) -> GalaxyIndex:
    if index is None or isinstance(index, (str, os.PathLike)):
        # A directory with shards.json is a sharded index (astro_semsearch.shards).
        if index is not None and (Path(index).expanduser() / "shards.json").is_file():
            from .shards import load_sharded_index

            return load_sharded_index(index)
        return load_index(index)
    if isinstance(index, GalaxyIndex):
        return index
    # Duck typing: anything with the GalaxyIndex search surface (e.g. a ShardedIndex).
    if all(hasattr(index, a) for a in ("search", "vectors", "rows_of", "table", "manifest", "check_model", "ntotal")):
        return index
    raise TypeError(f"index must be a GalaxyIndex, a name, a directory or None, got {type(index).__name__}")


def _resolve_model(model, index: GalaxyIndex):
    """The index's own model when None (so nobody mixes models); else check it."""
    if model is None or isinstance(model, (str, os.PathLike)):
        from .model import load_model

        if model is None:
            recorded = (index.manifest.get("model") or {}).get("name")
            if not recorded:
                raise ValueError(
                    f"index {index.name!r} records no model; pass model=... (the model that embedded it)"
                )
            model = recorded
        model = load_model(model)
    index.check_model(model)
    return model


class _Lazy:
    """Load the model only if a step needs it (object-id targets do not)."""

    def __init__(self, model, index):
        self._model, self._index, self._resolved = model, index, None

    def __call__(self):
        if self._resolved is None:
            self._resolved = _resolve_model(self._model, self._index)
        return self._resolved

    @property
    def loaded(self):
        return self._resolved


def _index_coords(index: GalaxyIndex) -> SkyCoord:
    """All positions of the index, cached (only for matching a SkyCoord target)."""
    cached = getattr(index, "_skycoord", None)
    if cached is None or len(cached) != index.ntotal:
        cached = index.coords()
        index._skycoord = cached
    return cached


def _cone_rows(index: GalaxyIndex, centre: SkyCoord, radius: u.Quantity, chunk: int = 1 << 20) -> np.ndarray:
    """Rows within ``radius`` of ``centre``, scanning RA/Dec in chunks (no all-sky SkyCoord in RAM)."""
    from astropy.coordinates import angular_separation

    c = centre.icrs
    lon0, lat0, rad = c.ra.rad, c.dec.rad, radius.to_value(u.rad)
    ra, dec = index.table["ra"], index.table["dec"]
    found = []
    for s in range(0, index.ntotal, chunk):
        sep = angular_separation(np.deg2rad(np.asarray(ra[s:s + chunk], float)),
                                 np.deg2rad(np.asarray(dec[s:s + chunk], float)), lon0, lat0)
        found.append(np.flatnonzero(sep <= rad) + s)
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _region_rows(index: GalaxyIndex, region) -> np.ndarray | None:
    """Rows inside a region: (SkyCoord centre, radius) cone or a boolean mask."""
    if region is None:
        return None
    if isinstance(region, tuple) and len(region) == 2 and isinstance(region[0], SkyCoord):
        centre, radius = region
        if not centre.isscalar:
            raise ValueError("region centre must be a single SkyCoord")
        radius = _check_angle(radius, "region radius", allow_none=False)
        return _cone_rows(index, centre, radius)
    mask = np.asarray(region)
    if mask.dtype != bool or mask.shape != (index.ntotal,):
        raise TypeError(
            "region must be (SkyCoord centre, angular radius) or a boolean mask with one entry per indexed "
            f"galaxy ({index.ntotal}), e.g. index.table['mag'] < 18"
        )
    return np.flatnonzero(mask)


# --------------------------------------------------------------------------
# targets: anything similar_to accepts -> (vector, row or None, SkyCoord or None, description)
# --------------------------------------------------------------------------
_IMAGE_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fz", ".jpg", ".jpeg", ".png")


def _row_target(index: GalaxyIndex, object_id: str, description: str | None = None):
    row = int(index.rows_of([object_id])[0])
    if row < 0:
        raise TargetNotFoundError(
            f"object_id {object_id!r} is not in index {index.name!r} ({index.ntotal} galaxies). "
            "Give a SkyCoord, an image or a FITS file to search around something not indexed."
        )
    coord = index.coords([row])[0]
    return index.vectors([row])[0], row, coord, description or str(object_id)


def _resolve_target(target, index: GalaxyIndex, model: _Lazy, max_distance: u.Quantity):
    if isinstance(target, Row):
        cols = target.colnames
        if "object_id" in cols:
            return _row_target(index, str(target["object_id"]))
        if "ra" in cols and "dec" in cols:
            ra, dec = target["ra"], target["dec"]
            target = SkyCoord(ra if isinstance(ra, u.Quantity) else ra * u.deg,
                              dec if isinstance(dec, u.Quantity) else dec * u.deg)
        else:
            raise ValueError(f"a table row target needs an object_id column or ra/dec columns; it has {cols}")
    if isinstance(target, SkyCoord):
        if not target.isscalar:
            raise ValueError(f"give one position, got a SkyCoord of shape {target.shape}")
        coords = _index_coords(index)
        idx, sep, _ = match_coordinates_sky(target, coords)
        if sep <= max_distance:
            return _row_target(index, str(index.object_ids([int(idx)])[0]), target.to_string("decimal", precision=6))
        fetch = None
        try:
            from . import cutouts

            fetch = getattr(cutouts, "fetch_and_embed", None)
        except ImportError:
            pass
        if fetch is None:
            nearest = sep.reshape(-1)[0]
            nearest_txt = (f"{nearest.to_value(u.arcsec):.2f} arcsec" if nearest < 1 * u.deg
                           else f"{nearest.deg:.3f} deg")
            raise TargetNotFoundError(
                f"no indexed galaxy within {max_distance.to_value(u.arcsec):g} arcsec of "
                f"{target.to_string('decimal', precision=6)} (nearest is {nearest_txt} away); increase max_distance, "
                "or use a version of astro_semsearch with astro_semsearch.cutouts.fetch_and_embed to fetch and "
                "embed an image of that position"
            )
        vec = np.asarray(fetch(target, model()), dtype=np.float32).reshape(-1)
        return vec, None, target, f"cutout at {target.to_string('decimal', precision=6)}"
    if isinstance(target, (fits.HDUList, fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return model().embed_images(target)[0], None, None, f"{type(target).__name__} image"
    if isinstance(target, os.PathLike) or (isinstance(target, str) and target.lower().endswith(_IMAGE_SUFFIXES)):
        path = Path(target)
        if not path.is_file():
            raise TargetNotFoundError(f"image file {path} does not exist")
        return model().embed_images(str(path))[0], None, None, path.name
    if isinstance(target, str):
        if not target.strip():
            raise ValueError("target is an empty string; give an object_id, a SkyCoord, an image or a file")
        if Path(target).is_file():
            return model().embed_images(target)[0], None, None, Path(target).name
        return _row_target(index, target.strip())
    if isinstance(target, np.ndarray):
        arr = target
        if arr.ndim == 1:
            # An embedding computed elsewhere (same model): searched as is.
            if arr.shape[0] != index.dim:
                raise ValueError(
                    f"a 1-D target is taken as an embedding and needs {index.dim} values, got {arr.shape[0]}"
                )
            return np.asarray(arr, np.float32), None, None, "embedding vector"
        if arr.ndim != 3 or not (arr.shape[-1] in (3, 4) or arr.shape[0] <= 16):
            raise ValueError(
                f"an image target must be HxWx3 RGB or CxHxW bands (one image), got shape {arr.shape}"
            )
        if not np.isfinite(np.asarray(arr, dtype=float)).any():
            raise ValueError("the image target has no finite pixel values")
        return model().embed_images(arr)[0], None, None, f"image array {arr.shape}"
    raise TypeError(
        "target must be a result row, an object_id string, a SkyCoord, an image array, a FITS/JPEG/PNG file "
        f"path or a FITS HDU, got {type(target).__name__}"
    )


# --------------------------------------------------------------------------
# the shared engine: vector -> ranked, de-duplicated Table
# --------------------------------------------------------------------------
def _dedup(coords: SkyCoord, min_sep: u.Quantity | None, anchor: SkyCoord | None) -> np.ndarray:
    """Boolean keep-mask: drop a hit within min_sep of a better-ranked kept hit (or the anchor)."""
    n = len(coords)
    keep = np.ones(n, dtype=bool)
    if min_sep is None or min_sep.value == 0 or n == 0:
        return keep
    if anchor is not None:
        keep &= coords.separation(anchor) >= min_sep
    if n < 2:
        return keep
    # Only the close pairs matter; search_around_sky finds them in one vectorised call.
    i, j, _, _ = search_around_sky(coords, coords, min_sep * (1 - 1e-9))
    pair = i < j  # i is better ranked than j
    i, j = i[pair], j[pair]
    if i.size == 0:
        return keep
    order = np.lexsort((i, j))
    i, j = i[order], j[order]
    starts = np.searchsorted(j, np.arange(n))
    ends = np.searchsorted(j, np.arange(n), side="right")
    for b in np.unique(j):  # greedy in rank order, only over hits with a close neighbour
        if keep[b] and keep[i[starts[b] : ends[b]]].any():
            keep[b] = False
    return keep


def _ranked(index: GalaxyIndex, qvec: np.ndarray, k: int, *, min_sep, exclude_row=None, anchor=None, region_rows=None):
    """Search, drop excluded and near-duplicate rows, over-fetching until k remain."""
    available = index.ntotal if region_rows is None else len(region_rows)
    if exclude_row is not None and (region_rows is None or bool(np.isin(exclude_row, region_rows))):
        available -= 1
    if k > available:
        warnings.warn(
            f"k={k} is larger than the {available} galaxies that can be returned; returning all of them",
            AstropyUserWarning,
            stacklevel=3,
        )
        k = available
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    limit = index.ntotal if region_rows is None else len(region_rows)
    fetch = min(limit, 2 * k + 8)
    while True:
        scores, rows = index.search(qvec[None, :], fetch, subset=region_rows)
        scores, rows = scores[0], rows[0]
        ok = rows >= 0
        if exclude_row is not None:
            ok &= rows != exclude_row
        scores, rows = scores[ok], rows[ok]
        keep = _dedup(index.coords(rows), min_sep, anchor) if min_sep is not None else np.ones(len(rows), bool)
        if keep.sum() >= k or fetch >= limit:
            sel = np.flatnonzero(keep)[:k]
            return scores[sel], rows[sel]
        fetch = min(limit, fetch * 4)


def viewer_urls(ra, dec, layer: str | None = None, zoom: int = 16) -> np.ndarray:
    """Links that open each position in the Legacy Survey sky viewer.

    Parameters
    ----------
    ra, dec : array-like (deg)
    layer : str, optional
        Viewer layer (default ``conf.viewer_layer``, e.g. ``"ls-dr10"``).
    zoom : int
        Viewer zoom level (16 shows a galaxy-sized field).

    Examples
    --------
    >>> str(viewer_urls([150.1], [2.2], layer="ls-dr10")[0])
    'https://www.legacysurvey.org/viewer?ra=150.100000&dec=2.200000&layer=ls-dr10&zoom=16'
    """
    from .config import conf

    layer = layer or conf.viewer_layer
    base = str(conf.legacysurvey_url).rstrip("/")
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    return np.array([f"{base}?ra={r:.6f}&dec={d:.6f}&layer={layer}&zoom={int(zoom)}" for r, d in zip(ra, dec)],
                    dtype=str)


def _index_provenance(index: GalaxyIndex) -> dict:
    info = (index.manifest.get("files") or {}).get("index.faiss") or {}
    return {
        "name": index.name,
        "sha256": info.get("sha256"),
        "bytes": info.get("bytes"),
        "count": int(index.ntotal),
        "kind": getattr(index, "kind", None) or index.manifest.get("kind"),
        "path": None if getattr(index, "path", None) is None else str(index.path),
    }


def _model_provenance(index: GalaxyIndex, model) -> dict:
    if model is not None:
        return {"name": getattr(model, "name", None), "sha256": getattr(model, "fingerprint", None)}
    recorded = index.manifest.get("model") or {}
    return {"name": recorded.get("name"), "sha256": recorded.get("fingerprint")}


def _table(index: GalaxyIndex, scores, rows, meta: dict) -> Table:
    from . import __version__

    cat = index.catalog(rows)
    out = Table()
    out["rank"] = np.arange(1, len(rows) + 1, dtype=np.int64)
    out["object_id"] = np.asarray(cat["object_id"]).astype(str)
    out["ra"] = Table.Column(np.asarray(cat["ra"], dtype=np.float64), unit=u.deg, format=".6f")
    out["dec"] = Table.Column(np.asarray(cat["dec"], dtype=np.float64), unit=u.deg, format=".6f")
    out["score"] = Table.Column(np.asarray(scores, dtype=np.float64), format=".4f",
                                description="cosine similarity to the query (1 = identical direction)")
    for name in cat.colnames:
        if name not in ("object_id", "ra", "dec", "viewer_url"):
            out[name] = cat[name]
    out["viewer_url"] = Table.Column(viewer_urls(out["ra"], out["dec"]),
                                     description="Legacy Survey sky viewer centred on the galaxy")
    meta = dict(meta)
    meta.update(
        {
            "package_version": __version__,
            "time": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "survey": index.manifest.get("survey"),
        }
    )
    out.meta["astro_semsearch"] = meta
    return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def semantic_search(
    query: str | Sequence[str],
    k: int = 50,
    *,
    index: GalaxyIndex | str | os.PathLike | None = None,
    model=None,
    negative: str | Sequence[str] | None = None,
    negative_weight: float = 0.5,
    like: Any = None,
    like_weight: float = 0.5,
    min_separation: u.Quantity | None = 5 * u.arcsec,
    region=None,
    rerank=None,
    rerank_top_n: int = 100,
) -> Table:
    """Find the galaxies whose images best match a description.

    Parameters
    ----------
    query : str or list of str
        What you are looking for, e.g. ``"ring galaxy"``. Several phrases
        are embedded separately and averaged.
    k : int
        Number of galaxies to return (clipped, with a warning, to the index size).
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
        `astro_semsearch.rerank.rerank`.
    rerank_top_n : int
        How many hits the re-ranker sees (at least ``k`` are fetched).

    Returns
    -------
    `~astropy.table.Table`
        ``rank, object_id, ra, dec, score`` + the index's catalogue columns;
        with ``rerank`` also ``rerank_score`` and ``search_rank`` after
        ``score``, and ``meta["astro_semsearch"]["rerank"]``.

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=5)              # doctest: +SKIP
    >>> hits = semantic_search(["spiral arms", "bar"], negative="edge-on", k=5)  # doctest: +SKIP
    >>> hits = semantic_search("ring galaxy", k=10, rerank="expansion", rerank_top_n=100)  # doctest: +SKIP
    """
    queries = _texts(query, "query")
    negatives = _texts(negative, "negative") if negative is not None else []
    k = _check_k(k)
    negative_weight = _check_weight(negative_weight, "negative_weight", None)
    like_weight = _check_weight(like_weight, "like_weight", 1.0)
    min_sep = _check_angle(min_separation, "min_separation")
    reranker = None
    if rerank is not None:
        from .rerank import get_reranker

        reranker = get_reranker(rerank)  # fail on a bad name before any work
        if isinstance(rerank_top_n, bool) or not isinstance(rerank_top_n, (int, np.integer)) or rerank_top_n < 1:
            raise ValueError(f"rerank_top_n must be a positive integer, got {rerank_top_n!r}")
    index = _resolve_index(index)
    region_rows = _region_rows(index, region)
    model = _resolve_model(model, index)

    q = _unit(np.asarray(model.embed_text(queries), dtype=np.float32).mean(axis=0))
    like_desc = None
    if like is not None:
        lazy = _Lazy(model, index)
        lazy._resolved = model
        vec, _, _, like_desc = _resolve_target(like, index, lazy, 1 * u.arcsec)
        q = _unit((1 - like_weight) * q + like_weight * _unit(vec))
    if negatives:
        nvec = _unit(np.asarray(model.embed_text(negatives), dtype=np.float32).mean(axis=0))
        q = _unit(q - negative_weight * nvec)

    fetch = k
    if reranker is not None:
        # Over-fetch so the re-ranker sees rerank_top_n candidates (no more than the index can give).
        available = index.ntotal if region_rows is None else len(region_rows)
        fetch = max(k, min(int(rerank_top_n), available))
    scores, rows = _ranked(index, q, fetch, min_sep=min_sep, region_rows=region_rows)
    meta = {
        "function": "semantic_search",
        "query": queries[0] if isinstance(query, str) else queries,
        "negative": None if negative is None else (negatives[0] if isinstance(negative, str) else negatives),
        "negative_weight": negative_weight if negatives else None,
        "like": like_desc,
        "like_weight": like_weight if like_desc else None,
        "k": k,
        "min_separation_arcsec": None if min_sep is None else float(min_sep.value),
        "model": _model_provenance(index, model),
        "index": _index_provenance(index),
    }
    table = _table(index, scores, rows, meta)
    if reranker is not None and len(table):
        from .rerank import RerankQuery
        from .rerank import rerank as _rerank

        table = _rerank(table, reranker, top_n=int(rerank_top_n), query=RerankQuery(queries, q), index=index,
                        model=model)[: min(k, len(table))]
    return table


def similar_to(
    target: Any,
    k: int = 50,
    *,
    index: GalaxyIndex | str | os.PathLike | None = None,
    model=None,
    exclude_self: bool = True,
    min_separation: u.Quantity | None = 5 * u.arcsec,
    max_distance: u.Quantity = 1 * u.arcsec,
    region=None,
) -> Table:
    """Find the galaxies that look most like an example.

    Parameters
    ----------
    target
        * a row of a result table (its ``object_id`` is used),
        * an ``object_id`` string from the index,
        * a `~astropy.coordinates.SkyCoord`: the nearest indexed galaxy within
          ``max_distance``; if there is none, an image of that position is
          fetched and embedded when `astro_semsearch.cutouts` provides
          ``fetch_and_embed`` (otherwise `TargetNotFoundError`),
        * an image: an ``HxWx3`` uint8 RGB array or ``CxHxW`` float band array,
          a FITS/JPEG/PNG file path, or a FITS HDU/HDUList,
        * a 1-D embedding vector of the index's dimension.
    k : int
        Number of galaxies to return.
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

    Returns
    -------
    `~astropy.table.Table`

    Examples
    --------
    >>> twins = similar_to("J000411.19+020924.0", k=5)          # doctest: +SKIP
    """
    k = _check_k(k)
    min_sep = _check_angle(min_separation, "min_separation")
    max_dist = _check_angle(max_distance, "max_distance", allow_none=False)
    if not isinstance(exclude_self, (bool, np.bool_)):
        raise TypeError(f"exclude_self must be True or False, got {exclude_self!r}")
    index = _resolve_index(index)
    region_rows = _region_rows(index, region)
    lazy = _Lazy(model, index)
    if model is not None:
        lazy()  # an explicit model is always checked against the index
    vec, row, coord, desc = _resolve_target(target, index, lazy, max_dist)
    q = _unit(vec)
    scores, rows = _ranked(
        index,
        q,
        k,
        min_sep=min_sep,
        exclude_row=row if exclude_self else None,
        anchor=coord if exclude_self else None,
        region_rows=region_rows,
    )
    meta = {
        "function": "similar_to",
        "query": desc,
        "target_object_id": None if row is None else str(index.object_ids([row])[0]),
        "k": k,
        "exclude_self": bool(exclude_self),
        "min_separation_arcsec": None if min_sep is None else float(min_sep.value),
        "model": _model_provenance(index, lazy.loaded),
        "index": _index_provenance(index),
    }
    return _table(index, scores, rows, meta)


# --------------------------------------------------------------------------
# command line: ``search`` and ``similar``
# --------------------------------------------------------------------------
def _parse_target(words: list[str]):
    """'RA DEC' in degrees (one or two words), an existing image path, or an object id."""
    parts = " ".join(words).replace(",", " ").split()
    if len(parts) == 2:
        try:
            ra, dec = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            if not (0 <= ra <= 360) or not (-90 <= dec <= 90):
                raise ValueError(f"RA/Dec out of range: RA {ra} must be in [0, 360], Dec {dec} in [-90, 90] deg")
            return SkyCoord(ra * u.deg, dec * u.deg)
    if len(words) != 1:
        raise ValueError(f"give one target: an object id, 'RA DEC' in degrees, or an image file; got {words}")
    return words[0]


def _emit(table: Table, args) -> int:
    from ._utils import emit_table

    html = getattr(args, "html", None)
    if html and Path(html).exists() and not args.overwrite:
        # Checked before anything is written, so a refused run leaves no half of its outputs.
        raise FileExistsError(f"{html} already exists (add --overwrite to replace it)")
    status = emit_table(table, args.output, args.overwrite)
    if html:
        from .report import write_html

        write_html(table, html, images=getattr(args, "images", None), overwrite=args.overwrite)
        print(f"wrote an HTML report of {len(table)} hits to {html}")
    return status


def _cli_reranker(args):
    """The re-ranker asked for on the command line (None without --rerank)."""
    name = getattr(args, "rerank", None)
    if (getattr(args, "good", None) or getattr(args, "bad", None)) and name != "feedback":
        raise ValueError("--good/--bad mark hits for relevance feedback; add --rerank feedback")
    if name is None:
        return None
    from .rerank import get_reranker

    if name == "feedback":
        return get_reranker("feedback", good=args.good or None, bad=args.bad or None)
    if name == "vlm" and getattr(args, "vlm_model", None):
        return get_reranker("vlm", model=args.vlm_model)
    return get_reranker(name)


def _cli_search(args) -> int:
    hits = semantic_search(
        args.query if len(args.query) > 1 else args.query[0],
        k=args.k,
        index=args.index,
        model=args.model,
        negative=(args.negative if len(args.negative) > 1 else args.negative[0]) if args.negative else None,
        negative_weight=args.negative_weight,
        min_separation=args.min_separation * u.arcsec,
        rerank=_cli_reranker(args),
        rerank_top_n=args.rerank_top_n,
    )
    return _emit(hits, args)


def _cli_similar(args) -> int:
    hits = similar_to(
        _parse_target(args.target),
        k=args.k,
        index=args.index,
        model=args.model,
        min_separation=args.min_separation * u.arcsec,
        max_distance=args.max_distance * u.arcsec,
    )
    return _emit(hits, args)


def _common(p) -> None:
    p.add_argument("-k", type=int, default=20, help="number of galaxies to return (default 20)")
    p.add_argument("--index", default=None,
                   help="index name, directory, or archive URL#sha256=HEX (default: the shipped index)")
    p.add_argument("--model", default=None, help="model name or directory (default: the index's own model)")
    p.add_argument("--min-separation", type=float, default=5.0, metavar="ARCSEC",
                   help="drop hits closer than this to a better hit (arcsec, default 5; 0 keeps all)")
    p.add_argument("-o", "--output", default=None,
                   help="write the table here (format from the extension: .ecsv, .fits, .csv, .vot ...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--html", default=None, metavar="FILE",
                   help="also write a self-contained HTML report with thumbnails and sky-viewer links")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="for --html: local images named <object_id>.jpg/.png/.fits (default: the index's own "
                        "images, else Legacy Survey cutouts)")


def add_cli(subparsers) -> None:
    """Register the ``search`` and ``similar`` subcommands."""
    p = subparsers.add_parser("search", help="find galaxies matching a description")
    p.add_argument("query", nargs="+", help="description(s), e.g. \"ring galaxy\"; several are averaged")
    p.add_argument("--negative", action="append", default=[], metavar="TEXT", help="steer away from TEXT (repeatable)")
    p.add_argument("--negative-weight", type=float, default=0.5, help="strength of --negative (default 0.5)")
    p.add_argument("--rerank", default=None, choices=["feedback", "expansion", "galaxidnet", "vlm"],
                   help="re-rank the first --rerank-top-n hits (see the Re-ranking docs for which help)")
    p.add_argument("--rerank-top-n", type=int, default=100, metavar="N",
                   help="how many hits the re-ranker sees (default 100)")
    p.add_argument("--good", action="append", default=[], metavar="ID",
                   help="with --rerank feedback: an object id you judge a good hit (repeatable)")
    p.add_argument("--bad", action="append", default=[], metavar="ID",
                   help="with --rerank feedback: an object id you judge a bad hit (repeatable)")
    p.add_argument("--vlm-model", default=None, metavar="NAME_OR_PATH",
                   help="with --rerank vlm: the local vision-language model (transformers name or directory)")
    _common(p)
    p.set_defaults(func=_cli_search)

    p = subparsers.add_parser("similar", help="find galaxies that look like an example")
    p.add_argument("target", nargs="+", help="an object id, \"RA DEC\" in degrees, or an image file (FITS/JPEG/PNG)")
    p.add_argument("--max-distance", type=float, default=1.0, metavar="ARCSEC",
                   help="for RA DEC: how far the nearest indexed galaxy may be (arcsec, default 1)")
    _common(p)
    p.set_defaults(func=_cli_similar)
