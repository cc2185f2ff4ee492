"""The search engine: a query vector in, a ranked, de-duplicated result table out.

`ranked` searches an index (optionally inside a region), drops the excluded
row and near-duplicates on the sky, and over-fetches until ``k`` rows
remain; `result_table` turns rows and scores into the result table with its
provenance in ``meta``. `resolve_model` gives the model an index was built
with, so that nobody searches an index with another model's vectors.
"""
from __future__ import annotations

import datetime as _dt
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, UnitSphericalRepresentation, search_around_sky
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from .._validate import check_angle
from ..cutouts import viewer_urls
from ..exceptions import InvalidInputError, InvalidTypeError
from .results import Results, as_results
from .scores import background_scores, hit_statistics

if TYPE_CHECKING:  # annotations only
    from ..index import GalaxyIndex

__all__ = ["ranked", "result_table", "region_rows", "resolve_model", "recorded_model", "LazyModel", "dedup",
           "close_pairs", "index_provenance", "model_provenance"]


def resolve_model(model, index: GalaxyIndex, *, text_only: bool = False):
    """The index's own model when None (so nobody mixes models); else check it.

    With ``text_only`` (the caller only embeds text) and the ONNX text
    backend, a model given by name is opened as a
    `~astro_semsearch.model.textmodel.TextModel`: the text side in numpy,
    which needs neither torch nor transformers.
    """
    if model is None or isinstance(model, (str, os.PathLike)):
        if model is None:
            model = recorded_model(index)
        from .. import model as models  # torch is imported only when the whole model is needed

        if text_only and models.text_backend() == "onnx":
            model = models.load_text_model(model)
        else:
            model = models.load_model(model)
    index.check_model(model)
    return model


def recorded_model(index) -> str:
    """The model an index's manifest names, as `load_model` takes it, confined to the index.

    A bare name (``"galclip-v1"``) is a model name, looked up as always; a
    name with a path in it is only followed inside the index directory, so
    an index (say, one downloaded from a URL) can never make us load a model
    from elsewhere on the disk.
    """
    recorded = (index.manifest.get("model") or {}).get("name")
    if not recorded or not isinstance(recorded, str):
        raise InvalidInputError(f"index {index.name!r} records no model; pass model=... (the model that embedded it)")
    if "/" not in recorded and "\\" not in recorded and recorded not in (".", ".."):
        return recorded
    root = getattr(index, "path", None)
    target = (Path(root) / recorded).resolve() if root is not None else None
    if target is None or Path(recorded).is_absolute() or Path(root).resolve() not in target.parents:
        raise InvalidInputError(f"index {index.name!r} names its model by the path {recorded!r}, which is outside the "
                                "index directory; refused. Pass model=... (a model name or directory you trust)")
    return str(target)


class LazyModel:
    """The model of an index, loaded only when a step calls for it (an indexed target needs none)."""

    def __init__(self, model, index):
        self._model, self._index, self._resolved = model, index, None

    def __call__(self):
        if self._resolved is None:
            self._resolved = resolve_model(self._model, self._index)
        return self._resolved

    @property
    def loaded(self):
        return self._resolved


def cone_rows(index: GalaxyIndex, centre: SkyCoord, radius: u.Quantity, chunk: int = 1 << 20) -> np.ndarray:
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


def region_rows(index: GalaxyIndex, region) -> np.ndarray | None:
    """Rows inside a region: (SkyCoord centre, radius) cone or a boolean mask."""
    if region is None:
        return None
    if isinstance(region, tuple) and len(region) == 2 and isinstance(region[0], SkyCoord):
        centre, radius = region
        if not centre.isscalar:
            raise InvalidInputError("region centre must be a single SkyCoord")
        radius = check_angle(radius, "region radius", allow_none=False)
        return cone_rows(index, centre, radius)
    mask = np.asarray(region)
    if mask.dtype != bool or mask.shape != (index.ntotal,):
        raise InvalidTypeError(
            "region must be (SkyCoord centre, angular radius) or a boolean mask with one entry per indexed "
            f"galaxy ({index.ntotal}), e.g. index.table['mag'] < 18"
        )
    return np.flatnonzero(mask)


#: Up to this many hits, `close_pairs` compares every pair directly (a few MB at most).
PAIRWISE_LIMIT = 512


def close_pairs(coords: SkyCoord, limit: u.Quantity) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)``: every ordered pair of positions at most ``limit`` apart (``i == j`` included).

    The pairs `~astropy.coordinates.search_around_sky` finds, with the same
    test (the chord between unit vectors against ``2 sin(limit / 2)``). A
    result list is short, so up to `PAIRWISE_LIMIT` positions every pair is
    compared in numpy; that skips building two KD-trees (and importing
    scipy.spatial in a new process) for each query.
    """
    if len(coords) > PAIRWISE_LIMIT:
        i, j, _, _ = search_around_sky(coords, coords, limit)
        return i, j
    sph = coords.data.represent_as(UnitSphericalRepresentation)
    lon, lat = sph.lon.to_value(u.rad).ravel(), sph.lat.to_value(u.rad).ravel()
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    chord = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(axis=-1))
    return np.nonzero(chord <= 2 * np.sin(0.5 * limit.to_value(u.rad)))


def dedup(coords: SkyCoord, min_sep: u.Quantity | None, anchor: SkyCoord | None) -> np.ndarray:
    """Boolean keep-mask: drop a hit within min_sep of a better-ranked kept hit (or the anchor)."""
    n = len(coords)
    keep = np.ones(n, dtype=bool)
    if min_sep is None or min_sep.value == 0 or n == 0:
        return keep
    if anchor is not None:
        keep &= coords.separation(anchor) >= min_sep
    if n < 2:
        return keep
    i, j = close_pairs(coords, min_sep * (1 - 1e-9))
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


def ranked(index: GalaxyIndex, qvec: np.ndarray, k: int, *, min_sep, exclude_row=None, anchor=None, region_rows=None,
           stacklevel: int = 3):
    """Search, drop excluded and near-duplicate rows, over-fetching until k remain.

    ``stacklevel`` makes a warning point at the user's call (the caller's caller by default).
    """
    available = index.ntotal if region_rows is None else len(region_rows)
    if exclude_row is not None and (region_rows is None or bool(np.isin(exclude_row, region_rows))):
        available -= 1
    if k > available:
        warnings.warn(
            f"k={k} is larger than the {available} galaxies that can be returned; returning all of them",
            AstropyUserWarning,
            stacklevel=stacklevel,
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
        keep = dedup(index.coords(rows), min_sep, anchor) if min_sep is not None else np.ones(len(rows), bool)
        if keep.sum() >= k or fetch >= limit:
            sel = np.flatnonzero(keep)[:k]
            return scores[sel], rows[sel]
        fetch = min(limit, fetch * 4)


def index_provenance(index: GalaxyIndex) -> dict:
    info = (index.manifest.get("files") or {}).get("index.faiss") or {}
    return {
        "name": index.name,
        "sha256": info.get("sha256"),
        "bytes": info.get("bytes"),
        "count": int(index.ntotal),
        "kind": getattr(index, "kind", None) or index.manifest.get("kind"),
        "path": None if getattr(index, "path", None) is None else str(index.path),
    }


def model_provenance(index: GalaxyIndex, model) -> dict:
    if model is not None:
        return {"name": getattr(model, "name", None), "sha256": getattr(model, "fingerprint", None)}
    recorded = index.manifest.get("model") or {}
    return {"name": recorded.get("name"), "sha256": recorded.get("fingerprint")}


def result_table(index: GalaxyIndex, scores, rows, meta: dict, qvec: np.ndarray | None = None) -> Table:
    """The result table: rank, object_id, ra, dec, score (and, with ``qvec``, percentile and excess against
    the index's background, `astro_semsearch.search.scores`), the catalogue columns, viewer_url."""
    from .. import __version__

    cat = index.catalog(rows)
    ra = np.asarray(cat["ra"], dtype=np.float64)
    dec = np.asarray(cat["dec"], dtype=np.float64)
    score = np.asarray(scores, dtype=np.float64)
    Column = Table.Column
    cols = [
        Column(np.arange(1, len(rows) + 1, dtype=np.int64), name="rank"),
        Column(np.asarray(cat["object_id"]).astype(str), name="object_id"),
        Column(ra, name="ra", unit=u.deg, format=".6f"),
        Column(dec, name="dec", unit=u.deg, format=".6f"),
        Column(score, name="score", format=".3f", description="cosine similarity to the query (1 = identical direction)"),
    ]
    if qvec is not None:
        background = background_scores(index, qvec)
        percentile, excess = hit_statistics(background, score)
        cols += [Column(percentile, name="percentile", format=".1f",
                        description="% of the index's galaxies that score lower for this query"),
                 Column(excess, name="excess", format=".3f",
                        description="score minus the median score of the index's galaxies")]
        meta = {**meta, "background": {"n": int(background.size), "median": round(float(np.median(background)), 6)
                                       if background.size else None}}
    names = [c.name for c in cols]
    for name in cat.colnames:
        if name not in ("object_id", "ra", "dec", "viewer_url", "percentile", "excess"):
            cols.append(cat[name])
            names.append(name)
    cols.append(Column(viewer_urls(ra, dec), name="viewer_url",
                       description="Legacy Survey sky viewer centred on the galaxy"))
    names.append("viewer_url")
    # One table from all the columns, as the result class, without copies (the catalogue rows are a copy already).
    out = Results(cols, names=names, copy=False)
    meta = dict(meta)
    meta.update(
        {
            "package_version": __version__,
            "time": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "survey": index.manifest.get("survey"),
        }
    )
    out.meta["astro_semsearch"] = meta
    return as_results(out)
