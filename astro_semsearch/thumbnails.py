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
   the index directory, inside it and in the current directory (the manifest
   records only the directory's *name*; pass ``images=`` if it lives
   elsewhere).
3. A JPEG cutout of the row's position from the DESI Legacy Imaging Surveys
   viewer (`~astro_semsearch.cutouts.get_cutouts`, ``format="jpeg"``), or
   hips2fits for an index built from it. Cutouts are kept in astropy's
   download cache, so calling again sends no request. The field of view is
   the one the index was built with (``size * pixscale`` in its manifest),
   else 256 pixels of 0.262 arcsec (67 arcsec).

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

# Imported here, not on first use: importing astroquery turns on astropy's warning logging, and doing that
# in the middle of a call would change how that call's warnings are shown (and break warnings.catch_warnings).
from . import cutouts as _cutouts  # noqa: F401

__all__ = ["result_images"]

log = logging.getLogger(__name__)

#: File name endings tried for ``<object_id><ending>`` in an image directory.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".fits", ".fits.gz", ".fit", ".fit.gz", ".fits.fz")
# Column names that hold a row's image file (the same list build_index looks for).
_FILE_COLUMNS = ("file", "filename", "file_name", "path", "image", "image_path")
# Field of view of a cutout when the index records none: the build_index default request.
_DEFAULT_FOV = 256 * 0.262 * u.arcsec


# --------------------------------------------------------------------------- image conversion
def _as_thumbnail(image, size: int | None) -> np.ndarray:
    """Any image `load_image` reads (or an array) -> square ``size x size x 3`` uint8 RGB."""
    from .images import load_image, to_rgb

    arr = load_image(image) if not isinstance(image, np.ndarray) else image
    arr = np.asarray(arr)
    if arr.ndim == 2:  # a single grey plane
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"an image must be HxWx3 RGB or CxHxW bands, got shape {arr.shape}")
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
        raise ValueError(f"cannot make an RGB thumbnail from an image of shape {arr.shape}")
    h, w = rgb.shape[:2]
    if h != w:  # centre square crop: thumbnails sit in square panels
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        rgb = rgb[y0 : y0 + s, x0 : x0 + s]
    if size is not None and rgb.shape[0] != size:
        from PIL import Image

        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").resize((size, size), Image.LANCZOS))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _file_in(directory: Path, name: str) -> Path | None:
    """``directory/name`` if it is a file inside ``directory`` (no ``../`` escapes)."""
    if not name or name in (".", "..") or Path(name).is_absolute() or ".." in Path(name).parts:
        return None
    path = directory / name
    return path if path.is_file() else None


def _find_in_directory(directory: Path, object_id: str | None, filename: str | None) -> Path | None:
    if filename:
        found = _file_in(directory, filename)
        if found is not None:
            return found
    if object_id and "/" not in object_id and "\\" not in object_id:
        for suffix in IMAGE_SUFFIXES:
            found = _file_in(directory, object_id + suffix)
            if found is not None:
                return found
    return None


def _file_column(table: Table) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for name in _FILE_COLUMNS:
        col = lower.get(name)
        if col is not None and np.asarray(table[col]).dtype.kind in "US":
            return col
    return None


# --------------------------------------------------------------------------- the index's own source
def _resolve_index(index, results: Table):
    """The index to consult: the one given, else the one named in the results' meta if it loads."""
    if index is not None and not isinstance(index, (str, os.PathLike)):
        return index
    if index is None:
        info = (results.meta.get("astro_semsearch") or {}).get("index") or {}
        if not isinstance(info, Mapping):
            return None
        candidates = [info.get("path"), info.get("name")]
    else:
        candidates = [index]
    from .index import load_index

    for cand in candidates:
        if not cand:
            continue
        try:
            if (Path(str(cand)).expanduser() / "shards.json").is_file():
                from .shards import load_sharded_index

                return load_sharded_index(cand)
            return load_index(cand)
        except Exception as exc:  # not loadable here: the thumbnails come from elsewhere
            if index is not None:
                raise
            log.debug("cannot load index %r named in the results' meta: %s", cand, exc)
    return None


def _index_request(index) -> dict:
    if index is None:
        return {}
    build = (getattr(index, "manifest", None) or {}).get("build") or {}
    req = build.get("request") or {}
    return dict(req) if isinstance(req, Mapping) else {}


def _index_image_dir(index, req: dict) -> tuple[Path | None, str | None]:
    """(directory, None) for a locally built index whose image directory is found, else (None, reason)."""
    src = str(req.get("source") or "")
    if not src.startswith("local:"):
        return None, None
    name = src[len("local:") :]
    places = []
    recorded = ((getattr(index, "manifest", None) or {}).get("build") or {}).get("images") or {}
    if recorded.get("directory"):
        places.append(Path(recorded["directory"]))  # recorded by build_index (newer indexes)
    ipath = getattr(index, "path", None)
    if ipath is not None and "://" not in str(ipath):
        ipath = Path(ipath)
        places += [ipath.parent / name, ipath / name, ipath / "images"]
    places.append(Path.cwd() / name)
    for place in places:
        if place.is_dir():
            return place, None
    return None, (f"index {getattr(index, 'name', '')!r} was built from local images in a directory named "
                  f"{name!r}, not found beside the index or in the current directory (pass images=DIR)")


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
        Field of view of fetched cutouts (default: the index's build request,
        else 67 arcsec).

    Returns
    -------
    list of numpy.ndarray or None
        ``size x size x 3`` uint8 RGB per row, in row order; ``None`` where no
        image could be had (one `AstropyUserWarning` lists those objects).

    Examples
    --------
    >>> thumbs = result_images(semantic_search("ring galaxy", k=10))  # doctest: +SKIP
    >>> thumbs = result_images(hits, images="cutouts/")                # doctest: +SKIP
    """
    if isinstance(results, Row):
        results = results.table[results.index : results.index + 1]
    if not isinstance(results, Table):
        raise TypeError(f"results must be an astropy Table (e.g. from semantic_search), got {type(results).__name__}")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"size must be an integer number of pixels or None, got {size!r}")
        if not 4 <= int(size) <= 3000:
            raise ValueError(f"size must be between 4 and 3000 pixels, got {size}")
        size = int(size)
    if not (source is None or source is False or isinstance(source, str) or hasattr(source, "get_cutouts")):
        raise TypeError(f"source must be 'legacysurvey', 'hips2fits', a cutout service or False, got {source!r}")
    n = len(results)
    if n == 0:
        return []

    ids: list[str | None] = ([str(v) for v in results["object_id"]] if "object_id" in results.colnames
                             else [None] * n)
    labels = [oid if oid is not None else f"row {i}" for i, oid in enumerate(ids)]
    out: list[np.ndarray | None] = [None] * n
    why: list[str] = [""] * n

    def _take(i: int, image, origin: str) -> bool:
        try:
            out[i] = _as_thumbnail(image, size)
        except Exception as exc:  # unreadable file, odd shape: report it, try the next source
            why[i] = f"{origin}: {exc}"
            return False
        why[i] = ""
        return True

    # ---- 1. images= given by the caller
    if images is not None:
        if isinstance(images, (str, os.PathLike)):
            directory = Path(images).expanduser()
            if not directory.is_dir():
                raise FileNotFoundError(f"images directory {directory} does not exist")
            fcol = _file_column(results)
            for i in range(n):
                fname = str(results[fcol][i]) if fcol else None
                path = _find_in_directory(directory, ids[i], fname)
                if path is None:
                    why[i] = "not in images="
                else:
                    _take(i, path, str(path.name))
        elif isinstance(images, Mapping):
            for i in range(n):
                value = images.get(ids[i]) if ids[i] is not None else None
                if value is None:
                    why[i] = "not in images="
                else:
                    _take(i, value, "images=")
        elif isinstance(images, Sequence) and not isinstance(images, (str, bytes)) or isinstance(images, np.ndarray):
            if len(images) != n:
                raise ValueError(f"images= has {len(images)} entries but the table has {n} rows")
            for i, value in enumerate(images):
                if value is None:
                    why[i] = "None in images="
                else:
                    _take(i, value, "images=")
        else:
            raise TypeError("images must be a directory, a mapping object_id -> image, or one image per row; "
                            f"got {type(images).__name__}")

    todo = [i for i in range(n) if out[i] is None]
    # ---- 2. the index's own local images
    idx = _resolve_index(index, results) if todo else None
    req = _index_request(idx)
    if todo and idx is not None:
        directory, problem = _index_image_dir(idx, req)
        if problem:
            for i in todo:
                why[i] = (why[i] + "; " if why[i] else "") + "index image directory not found"
            warnings.warn(problem, AstropyUserWarning, stacklevel=2)
        elif directory is not None:
            fcol = _file_column(idx.table)
            rows = (np.asarray(idx.rows_of([ids[i] or "" for i in todo])) if fcol and hasattr(idx, "rows_of")
                    else np.full(len(todo), -1))
            for i, row in zip(todo, rows):
                fname = str(idx.table[fcol][int(row)]) if row >= 0 else None
                path = _find_in_directory(directory, ids[i], fname)
                if path is not None:
                    _take(i, path, str(path.name))
                else:
                    why[i] = (why[i] + "; " if why[i] else "") + f"no file in {directory.name}/"

    # ---- 3. cutouts from a survey service
    todo = [i for i in range(n) if out[i] is None]
    if todo and source is False:
        for i in todo:
            why[i] = (why[i] + ", and " if why[i] else "") + "fetching is off (source=False)"
    elif todo:
        _fetch(results, todo, out, why, size=size, source=source, req=req, fov=fov, progress=progress)

    missing = [i for i in range(n) if out[i] is None]
    if missing:
        shown = ", ".join(f"{labels[i]} ({why[i] or 'no image'})" for i in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        warnings.warn(f"no image for {len(missing)} of {n} rows: {shown}{more}", AstropyUserWarning, stacklevel=2)
    return out


def _fetch(results: Table, todo: list[int], out: list, why: list[str], *, size, source, req, fov, progress) -> None:
    """Fill ``out[i]`` for rows ``todo`` with JPEG cutouts (errors flagged, never raised)."""
    from ._utils import column_degrees
    from .cutouts import Hips2FitsCutouts, LegacySurvey, get_cutouts

    if "ra" not in results.colnames or "dec" not in results.colnames:
        for i in todo:
            why[i] = (why[i] + ", and " if why[i] else "") + "no ra/dec to fetch a cutout"
        return
    ra = column_degrees(results["ra"], "ra", "results")[todo]
    dec = column_degrees(results["dec"], "dec", "results")[todo]

    recorded = str(req.get("source") or "")
    if source is None:
        source = "hips2fits" if recorded == "Hips2FitsCutouts" else "legacysurvey"
    service = source if hasattr(source, "get_cutouts") else None
    from .cutouts import _resolve_source

    service = service or _resolve_source(source)
    # Same field of view as the images the index was built from (a fair picture of what was embedded).
    if fov is None:
        try:
            fov = float(req["size"]) * float(req["pixscale"]) * u.arcsec
        except (KeyError, TypeError, ValueError):
            fov = _DEFAULT_FOV
    fov = u.Quantity(fov, u.arcsec)
    npix = size or 256
    pixscale = round(float(fov.to_value(u.arcsec)) / npix, 6)
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
            why[i] = (why[i] + "; " if why[i] else "") + f"cutout request failed: {exc}"
        return
    for i, ok, in_fp, err, img in zip(todo, t["ok"], t["in_footprint"], t["error"], t["image"]):
        if not ok:
            why[i] = (why[i] + "; " if why[i] else "") + f"cutout failed: {err}"
        elif not in_fp:
            why[i] = (why[i] + "; " if why[i] else "") + "outside the survey footprint (blank cutout)"
        else:
            out[i] = _as_thumbnail(np.asarray(img), size)
            why[i] = ""
