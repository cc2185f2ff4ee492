"""Thumbnails of search results: one small RGB image per hit.

`result_images` finds an image for every row of a result table (or any table
with ``object_id`` and ``ra``/``dec``) and returns it as an ``HxWx3`` uint8
RGB array, ready for `~matplotlib.axes.Axes.imshow`, an HTML report or a
re-ranker that looks at pixels. It is what `~astro_semsearch.plotting.plot_results`
and `~astro_semsearch.report.write_html` use.

Where the images come from, tried in this order for each row:

1. ``images=``: a directory of files named after the ``object_id``
   (``<object_id>.jpg``, ``.jpeg``, ``.png``, ``.fits``, ``.fits.gz``), or
   named by the table's file column (``file``/``filename``/``path``...); or a
   mapping ``object_id -> array or path``; or a list with one array/path/None
   per row (e.g. the output of an earlier call).
2. The index's own local images: an index built with
   ``build_index(..., images=DIR)`` records ``"local:<directory name>"`` as
   its source and keeps the file column. The directory is looked for beside
   the index directory, inside it and in the current directory, by its
   *name*; a directory path the manifest records is followed only when it
   lies inside the index directory (pass ``images=`` if it lives elsewhere).
3. A JPEG cutout of the row's position from the DESI Legacy Imaging Surveys
   viewer (`~astro_semsearch.cutouts.get_cutouts`, ``format="jpeg"``), or
   hips2fits for an index built from it. Cutouts are kept in astropy's
   download cache, so calling again sends no request. The field of view is
   the one the index was built with: each row's own (its ``pixscale``
   column times the build's ``size``) for an index framed by galaxy size
   (``build_index(size_column=...)``), else ``size * pixscale`` of its
   manifest, else 256 pixels of 0.262 arcsec (67 arcsec).

A row with no image gets ``None``, and one `~astropy.utils.exceptions.AstropyUserWarning`
names every such object and why.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from astro_semsearch.thumbnails import result_images
>>> hits = Table({"object_id": ["a", "b"], "ra": [150.1, 150.2], "dec": [2.2, 2.3]})
>>> red = np.zeros((40, 60, 3), np.uint8); red[..., 0] = 255
>>> thumbs = result_images(hits, images={"a": red, "b": red}, size=32)
>>> [t.shape for t in thumbs]
[(32, 32, 3), (32, 32, 3)]
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     thumbs = result_images(hits, images={"a": red}, size=32, source=False)
>>> thumbs[1] is None
True
>>> print(caught[0].message)
no image for 1 of 2 rows: b (not in images=, and fetching is off (source=False))
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.table import Row, Table
from astropy.utils.exceptions import AstropyUserWarning

from ._meta import meta_section
from ._validate import check_int
from .catalog import FILE_NAMES, column_degrees
from .cutouts import Hips2FitsCutouts, LegacySurvey, get_cutouts, resolve_source
from .exceptions import InvalidInputError, InvalidTypeError
from .images import find_image, load_image, to_rgb
from .index import open_index

__all__ = ["result_images"]

log = logging.getLogger(__name__)

# Field of view of a cutout when the index records none: the build_index default request.
_DEFAULT_FOV = 256 * 0.262 * u.arcsec


# --------------------------------------------------------------------------- image conversion
def _as_thumbnail(image, size: int | None) -> np.ndarray:
    """Any image `load_image` reads (or an array) -> square ``size x size x 3`` uint8 RGB."""
    arr = load_image(image) if not isinstance(image, np.ndarray) else image
    arr = np.asarray(arr)
    if arr.ndim == 2:  # a single grey plane
        arr = arr[None]
    if arr.ndim != 3:
        raise InvalidInputError(f"an image must be HxWx3 RGB or CxHxW bands, got shape {arr.shape}")
    if arr.shape[-1] in (3, 4) and arr.shape[0] > 4:  # HxWx3 RGB (or RGBA)
        rgb = arr[..., :3]
        if rgb.dtype != np.uint8:  # float RGB: to_rgb knows 0-1 from 0-255
            rgb = np.clip(np.rint(to_rgb(rgb) * 255), 0, 255).astype(np.uint8)
    elif arr.shape[0] == 3:  # g, r, z fluxes: the Legacy Survey viewer's colours
        rgb = np.clip(np.rint(to_rgb(arr, bands="grz") * 255), 0, 255).astype(np.uint8)
    elif arr.shape[0] in (1, 2):  # one or two bands: grey, with the same asinh stretch
        plane = np.nan_to_num(np.nanmean(np.asarray(arr, np.float32), axis=0))
        grey = np.arcsinh(20.0 * np.maximum(0.0, plane * 3.4 + 0.03)) / np.sqrt(20.0)  # the r-band stretch
        rgb = np.repeat(np.clip(np.rint(grey * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    else:
        raise InvalidInputError(f"cannot make an RGB thumbnail from an image of shape {arr.shape}")
    h, w = rgb.shape[:2]
    if h != w:  # centre square crop: thumbnails sit in square panels
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        rgb = rgb[y0 : y0 + s, x0 : x0 + s]
    if size is not None and rgb.shape[0] != size:
        from PIL import Image

        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").resize((size, size), Image.LANCZOS))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


# --------------------------------------------------------------------------- the index's own source
def _index_request(index) -> dict:
    if index is None:
        return {}
    build = (getattr(index, "manifest", None) or {}).get("build") or {}
    req = build.get("request") or {}
    return dict(req) if isinstance(req, Mapping) else {}


def _inside(path: Path, root: Path) -> bool:
    root = root.resolve()
    target = path.resolve()
    return target == root or root in target.parents


def _index_image_dir(index, req: dict) -> tuple[Path | None, str | None]:
    """(directory, None) for a locally built index whose image directory is found, else (None, reason).

    Paths from the manifest are confined: the recorded directory is used only
    when it lies inside the index directory, and the recorded *name* (one plain
    path component) is looked for beside the index, inside it and in the
    current directory. An index (say, one from a URL) can never make us read
    images from elsewhere; pass ``images=`` for a directory outside.
    """
    src = str(req.get("source") or "")
    if not src.startswith("local:"):
        return None, None
    name = src[len("local:") :]
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        return None, f"index {getattr(index, 'name', '')!r} names its image directory {name!r}, not a plain name; " \
                     "pass images=DIR"
    places = []
    recorded = ((getattr(index, "manifest", None) or {}).get("build") or {}).get("images") or {}
    ipath = getattr(index, "path", None)
    ipath = Path(ipath) if ipath is not None and "://" not in str(ipath) else None
    outside = None
    if isinstance(recorded, Mapping) and isinstance(recorded.get("directory"), str) and recorded["directory"]:
        rec = Path(recorded["directory"])
        if ipath is not None and _inside(ipath / rec, ipath):
            places.append(ipath / rec)  # recorded by build_index, inside the index
        else:
            outside = rec
    if ipath is not None:
        places += [ipath.parent / name, ipath / name, ipath / "images"]
    places.append(Path.cwd() / name)
    for place in places:
        if place.is_dir():
            return place, None
    hint = (f"; the manifest names {outside}, outside the index directory, which is not followed (pass "
            f"images={str(outside)!r} if you trust it)" if outside is not None else "")
    return None, (f"index {getattr(index, 'name', '')!r} was built from local images in a directory named "
                  f"{name!r}, not found beside the index or in the current directory (pass images=DIR){hint}")


# --------------------------------------------------------------------------- public
def result_images(
    results: Table,
    *,
    index=None,
    size: int | None = 128,
    source=None,
    images=None,
    progress: bool | None = None,
    fov: u.Quantity | None = None,
) -> list[np.ndarray | None]:
    """One RGB thumbnail per row of a result table.

    Parameters
    ----------
    results : `~astropy.table.Table` or `~astropy.table.Row`
        Search results, or any table with ``object_id`` and/or ``ra``/``dec``
        (degrees or angle columns).
    index : `~astro_semsearch.index.GalaxyIndex`, name or directory, optional
        The index the results came from (default: the one named in
        ``results.meta["astro_semsearch"]["index"]``, if it can be loaded).
        Used for its local image directory and its cutout request.
    size : int or None
        Side of the square thumbnails in pixels (default 128); ``None`` keeps
        the native size (centre-cropped to a square).
    source : {"legacysurvey", "hips2fits"}, cutout service, or False, optional
        Where to fetch rows that have no local image (default: the service
        the index was built from, else the Legacy Survey viewer). ``False``
        never fetches anything.
    images : directory, mapping or sequence, optional
        Local images tried first: a directory of files named
        ``<object_id>.jpg`` (``.png``, ``.fits`` ...) or by the table's file
        column; a mapping ``object_id -> array or path``; or a sequence with
        one array/path/None per row.
    progress : bool, optional
        Progress bar while fetching cutouts (default ``conf.show_progress``).
    fov : angle, optional
        Field of view of fetched cutouts (default: each row's field in an
        index framed by size, else the index's build request, else 67 arcsec).

    Returns
    -------
    list of numpy.ndarray or None
        ``size x size x 3`` uint8 RGB per row, in row order; ``None`` where no
        image could be had (one `AstropyUserWarning` lists those objects).

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=10)                    # doctest: +SKIP
    >>> thumbs = result_images(hits)                                   # doctest: +SKIP
    >>> thumbs = result_images(hits, images="cutouts/")                # doctest: +SKIP
    """
    results = _as_table(results)
    size = _check_thumb_size(size)
    if not (source is None or source is False or isinstance(source, str) or hasattr(source, "get_cutouts")):
        raise InvalidTypeError(f"source must be 'legacysurvey', 'hips2fits', a cutout service or False, "
                               f"got {source!r}")
    n = len(results)
    if n == 0:
        return []
    ids: list[str | None] = ([str(v) for v in results["object_id"]] if "object_id" in results.colnames
                             else [None] * n)
    found = _Found(n, size)
    if images is not None:  # 1. the caller's images
        _from_caller(found, results, ids, images)
    todo = found.missing()
    idx = _index_of(index, results) if todo else None
    req = _index_request(idx)
    if todo and idx is not None:  # 2. the index's own local images
        _from_index_directory(found, idx, req, ids, todo)
    todo = found.missing()
    if todo and source is False:  # 3. cutouts from a survey service
        for i in todo:
            found.note(i, "fetching is off (source=False)", sep=", and ")
    elif todo:
        _fetch(results, todo, found, size=size, source=source, req=req, fov=fov, progress=progress,
               row_fov=None if fov is not None else _row_fields(results, idx, req, ids))
    missing = found.missing()
    if missing:
        labels = [oid if oid is not None else f"row {i}" for i, oid in enumerate(ids)]
        shown = ", ".join(f"{labels[i]} ({found.why[i] or 'no image'})" for i in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        warnings.warn(f"no image for {len(missing)} of {n} rows: {shown}{more}", AstropyUserWarning, stacklevel=2)
    return found.out


class _Found:
    """The thumbnails found so far, and why the others are missing."""

    def __init__(self, n: int, size: int | None):
        self.out: list[np.ndarray | None] = [None] * n
        self.why: list[str] = [""] * n
        self.size = size

    def missing(self) -> list[int]:
        return [i for i, t in enumerate(self.out) if t is None]

    def note(self, i: int, reason: str, sep: str = "; ") -> None:
        self.why[i] = (self.why[i] + sep if self.why[i] else "") + reason

    def take(self, i: int, image, origin: str) -> bool:
        try:
            self.out[i] = _as_thumbnail(image, self.size)
        except Exception as exc:  # unreadable file, odd shape: report it, try the next source
            self.why[i] = f"{origin}: {exc}"
            return False
        self.why[i] = ""
        return True


def _as_table(results) -> Table:
    if isinstance(results, Row):
        results = results.table[results.index : results.index + 1]
    if not isinstance(results, Table):
        raise InvalidTypeError(f"results must be an astropy Table (e.g. from semantic_search), "
                               f"got {type(results).__name__}")
    return results


def _check_thumb_size(size) -> int | None:
    return None if size is None else check_int(size, "size", minimum=4, maximum=3000)


def _file_column(table: Table) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for name in FILE_NAMES:
        col = lower.get(name)
        if col is not None and np.asarray(table[col]).dtype.kind in "US":
            return col
    return None


def _from_caller(found: _Found, results: Table, ids, images) -> None:
    """Step 1: ``images=`` as a directory, a mapping ``object_id -> image`` or one image per row."""
    n = len(results)
    if isinstance(images, (str, os.PathLike)):
        directory = Path(images).expanduser()
        if not directory.is_dir():
            raise FileNotFoundError(f"images directory {directory} does not exist")
        fcol = _file_column(results)
        for i in range(n):
            path = find_image(directory, ids[i], str(results[fcol][i]) if fcol else None)
            if path is None:
                found.why[i] = "not in images="
            else:
                found.take(i, path, str(path.name))
    elif isinstance(images, Mapping):
        for i in range(n):
            value = images.get(ids[i]) if ids[i] is not None else None
            if value is None:
                found.why[i] = "not in images="
            else:
                found.take(i, value, "images=")
    elif isinstance(images, Sequence) and not isinstance(images, (str, bytes)) or isinstance(images, np.ndarray):
        if len(images) != n:
            raise InvalidInputError(f"images= has {len(images)} entries but the table has {n} rows")
        for i, value in enumerate(images):
            if value is None:
                found.why[i] = "None in images="
            else:
                found.take(i, value, "images=")
    else:
        raise InvalidTypeError("images must be a directory, a mapping object_id -> image, or one image per row; "
                               f"got {type(images).__name__}")


def _index_of(index, results: Table):
    """The index to consult: the one given, else the one named in the results' meta if it opens here."""
    if index is not None:
        return open_index(index)
    info = meta_section(results).get("index") or {}
    if not isinstance(info, Mapping):
        return None
    for cand in (info.get("path"), info.get("name")):
        if not cand:
            continue
        try:
            return open_index(cand)
        except Exception as exc:  # not loadable here: the thumbnails come from elsewhere
            log.debug("cannot open index %r named in the results' meta: %s", cand, exc)
    return None


def _from_index_directory(found: _Found, idx, req: dict, ids, todo: list[int]) -> None:
    """Step 2: the images an index was built from, if their directory is found."""
    directory, problem = _index_image_dir(idx, req)
    if problem:
        for i in todo:
            found.note(i, "index image directory not found")
        warnings.warn(problem, AstropyUserWarning, stacklevel=3)
        return
    if directory is None:
        return
    fcol = _file_column(idx.table)
    rows = np.asarray(idx.rows_of([ids[i] or "" for i in todo])) if fcol else np.full(len(todo), -1)
    for i, row in zip(todo, rows):
        fname = str(idx.table[fcol][int(row)]) if row >= 0 else None
        path = find_image(directory, ids[i], fname)
        if path is not None:
            found.take(i, path, str(path.name))
        else:
            found.note(i, f"no file in {directory.name}/")


def _row_fields(results: Table, idx, req: dict, ids) -> np.ndarray | None:
    """Each row's field of view (arcsec) in an index framed by size: its ``pixscale`` times the build ``size``."""
    if not req.get("framing") or not req.get("size"):
        return None
    if "pixscale" in results.colnames:
        pix = np.asarray(u.Quantity(results["pixscale"]).value, dtype=np.float64)
    elif idx is not None and "pixscale" in idx.table.colnames:
        rows = np.asarray(idx.rows_of([i or "" for i in ids]))
        col = np.asarray(u.Quantity(idx.table["pixscale"]).value, dtype=np.float64)
        pix = np.where(rows >= 0, col[np.maximum(rows, 0)], np.nan)
    else:
        return None
    fields = pix * float(req["size"])
    # A row without a known scale (not in the index) gets the build's fallback request.
    return np.where(np.isfinite(fields) & (fields > 0), fields, float(req["size"]) * float(req.get("pixscale", 0.262)))


def _fetch(results: Table, todo: list[int], found: _Found, *, size, source, req, fov, progress,
           row_fov=None) -> None:
    """Step 3: JPEG cutouts of the rows ``todo`` (errors noted, never raised)."""
    if "ra" not in results.colnames or "dec" not in results.colnames:
        for i in todo:
            found.note(i, "no ra/dec to fetch a cutout", sep=", and ")
        return
    ra = column_degrees(results["ra"], "ra", "results")[todo]
    dec = column_degrees(results["dec"], "dec", "results")[todo]

    recorded = str(req.get("source") or "")
    if source is None:
        source = "hips2fits" if recorded == "Hips2FitsCutouts" else "legacysurvey"
    service = source if hasattr(source, "get_cutouts") else resolve_source(source)
    # Same field of view as the images the index was built from (a fair picture of what was embedded).
    if fov is None:
        try:
            fov = float(req["size"]) * float(req["pixscale"]) * u.arcsec
        except (KeyError, TypeError, ValueError):
            fov = _DEFAULT_FOV
    fov = u.Quantity(fov, u.arcsec)
    npix = size or 256
    pixscale = round(float(fov.to_value(u.arcsec)) / npix, 6)
    if row_fov is not None:  # each galaxy framed as it was embedded
        pixscale = np.round(np.asarray(row_fov, dtype=np.float64)[todo] / npix, 6)
    layer = None
    same_service = ((isinstance(service, Hips2FitsCutouts) and recorded == "Hips2FitsCutouts")
                    or (isinstance(service, LegacySurvey) and recorded == "LegacySurvey"))
    if same_service and req.get("layer"):
        layer = str(req["layer"])
    try:
        t = get_cutouts((ra, dec), source=service, size=npix, pixscale=pixscale, layer=layer, format="jpeg",
                        errors="flag", progress=progress)
    except Exception as exc:  # a bad request: no thumbnails, but the caller still gets its list
        for i in todo:
            found.note(i, f"cutout request failed: {exc}")
        return
    for i, ok, in_fp, err, img in zip(todo, t["ok"], t["in_footprint"], t["error"], t["image"]):
        if not ok:
            found.note(i, f"cutout failed: {err}")
        elif not in_fp:
            found.note(i, "outside the survey footprint (blank cutout)")
        else:
            found.take(i, np.asarray(img), "cutout")
