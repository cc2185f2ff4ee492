"""Image cutouts from the DESI Legacy Imaging Surveys, the astroquery way.

Two services share one interface:

`LegacySurvey`
    The Legacy Survey viewer's ``fits-cutout`` and ``jpeg-cutout`` endpoints
    (``conf.legacysurvey_url``, by default https://www.legacysurvey.org/viewer).
    FITS cutouts hold calibrated fluxes (nanomaggies) in one plane per band.
`Hips2FitsCutouts`
    The CDS hips2fits service (``conf.hips2fits_url``) resampling the DR10
    HiPS, a second source for when the viewer is slow or down.

Both are `astroquery.query.BaseQuery` subclasses with the usual
``get_cutout_async`` (raw response) / ``get_cutout`` (parsed) pair, and a
``get_cutouts`` for many positions at once that

* validates the request on our side first (the viewer silently clamps
  ``size`` at 3000 pixels: we refuse instead),
* runs ``conf.max_concurrency`` requests at a time with a progress bar,
* retries on HTTP 429 (waiting at least the server's ``Retry-After``), 5xx,
  connection errors, time-outs and corrupt bodies, with exponential back-off
  (``conf.backoff * 2**attempt`` seconds), up to ``conf.max_retries`` times,
* keeps every cutout in astropy's download cache keyed by its URL, and
  checks a cached file before using it (a truncated or corrupt file is
  deleted and fetched again, never returned),
* flags blank cutouts (outside the survey footprint the viewer returns an
  all-zero image) in an ``in_footprint`` column.

Configuration is read from `astro_semsearch.conf` at call time, so
``with conf.set_temp("legacysurvey_url", "http://127.0.0.1:8000"): ...``
redirects every request.

Examples
--------
>>> from astropy.coordinates import SkyCoord
>>> from astro_semsearch.cutouts import LegacySurvey
>>> ls = LegacySurvey()
>>> ls.get_cutout_async(SkyCoord(150.1, 2.2, unit="deg"), size=64,
...                     get_query_payload=True)   # what would be sent
{'ra': 150.1, 'dec': 2.2, 'layer': 'ls-dr10', 'pixscale': 0.262, 'size': 64, 'bands': 'grz'}
>>> cut = ls.get_cutout(SkyCoord(150.1, 2.2, unit="deg"), size=64)  # doctest: +REMOTE_DATA
>>> cut[0].data.shape                                                # doctest: +REMOTE_DATA
(3, 64, 64)
"""
from __future__ import annotations

import contextlib
import email.utils
import io
import logging
import os
import re
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astroquery.query import BaseQuery

from ._utils import progress as _progress
from .config import conf
from .exceptions import CutoutError, TargetNotFoundError

__all__ = ["LegacySurvey", "Hips2FitsCutouts", "get_cutouts", "fetch_and_embed", "MAX_SIZE"]

log = logging.getLogger(__name__)

MAX_SIZE = 3000
"""Largest cutout (pixels a side) the Legacy Survey viewer serves; it silently clamps larger requests."""

DR10_HIPS = "CDS/P/DESI-Legacy-Surveys/DR10/color"
"""The CDS HiPS of the Legacy Surveys DR10 colour images, used by `Hips2FitsCutouts`."""

_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 600.0  # never sleep longer than this for one Retry-After


# --------------------------------------------------------------------------- helpers
def _is_blank(image: np.ndarray) -> bool:
    """True for an image with no signal (all zero, constant or all NaN).

    Outside the survey footprint the viewer returns exactly such images.
    Uses `astro_semsearch.images.is_blank` when available.
    """
    try:
        from .images import is_blank
    except ImportError:  # pragma: no cover - images.py is written by another stage
        is_blank = None
    if is_blank is not None:
        return bool(is_blank(image))
    a = np.asarray(image, dtype=np.float64)
    finite = a[np.isfinite(a)]
    return finite.size == 0 or float(finite.max() - finite.min()) == 0.0


def _as_coords(coordinates) -> SkyCoord:
    """Return ICRS coordinates (always an array) from a SkyCoord or ``(ra, dec)`` in degrees."""
    if isinstance(coordinates, SkyCoord):
        c = coordinates.icrs
    else:
        pair = isinstance(coordinates, (tuple, list)) and len(coordinates) == 2
        if pair and not isinstance(coordinates[0], SkyCoord):
            ra, dec = coordinates
        else:
            raise TypeError(
                "coordinates must be an astropy SkyCoord (scalar or array) or a pair (ra, dec) "
                f"in degrees, got {type(coordinates).__name__}"
            )
        ra = np.atleast_1d(u.Quantity(ra, u.deg).to_value(u.deg)).astype(float)
        dec = np.atleast_1d(u.Quantity(dec, u.deg).to_value(u.deg)).astype(float)
        if ra.shape != dec.shape:
            raise ValueError(f"ra and dec have different lengths: {ra.shape} vs {dec.shape}")
        if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
            raise ValueError("ra/dec contain NaN or infinite values")
        bad = (ra < 0) | (ra >= 360)
        if bad.any():
            raise ValueError(f"RA must be in [0, 360) deg; got {ra[bad][:3].tolist()}")
        bad = (dec < -90) | (dec > 90)
        if bad.any():
            raise ValueError(f"Dec must be in [-90, 90] deg; got {dec[bad][:3].tolist()}")
        c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    if c.isscalar:
        c = c.reshape((1,))
    return c.ravel()


def _check_size_pixscale(size, pixscale) -> tuple[int, float]:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an integer number of pixels, got {size!r}")
    if not 1 <= int(size) <= MAX_SIZE:
        raise ValueError(
            f"size must be between 1 and {MAX_SIZE} pixels, got {size} "
            f"(the Legacy Survey viewer would silently clamp it at {MAX_SIZE})"
        )
    try:
        pixscale = float(u.Quantity(pixscale, u.arcsec).to_value(u.arcsec))
    except (TypeError, ValueError, u.UnitsError):
        raise TypeError(f"pixscale must be a number (arcsec/pixel) or an angle, got {pixscale!r}") from None
    if not np.isfinite(pixscale) or pixscale <= 0:
        raise ValueError(f"pixscale must be a positive number of arcsec/pixel, got {pixscale}")
    return int(size), pixscale


def _retry_after(response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(Exception):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def _cached_path(url: str) -> str | None:
    from astropy.utils.data import download_file, is_url_in_cache

    try:
        cached = is_url_in_cache(url, on_missing="ignore")
    except TypeError:  # astropy < 8 has no on_missing
        cached = is_url_in_cache(url)
    if not cached:
        return None
    # A cached URL is returned straight from the cache, without a request.
    with contextlib.suppress(Exception):
        return download_file(url, cache=True)
    return None


def _store_in_cache(url: str, body: bytes) -> None:
    from astropy.utils.data import import_file_to_cache

    fd, tmp = tempfile.mkstemp(prefix="astro_semsearch-cutout-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        import_file_to_cache(url, tmp, remove_original=True)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _drop_from_cache(url: str) -> None:
    from astropy.utils.data import clear_download_cache

    with contextlib.suppress(Exception):
        clear_download_cache(url)


# --------------------------------------------------------------------------- base service
class _CutoutService(BaseQuery):
    """Fetching, retrying, caching and validation shared by the cutout services."""

    _default_layer: str = ""

    def __init__(self):
        super().__init__()
        self._local = threading.local()

    # requests.Session is not documented as thread-safe: one per worker thread,
    # all with astroquery's User-Agent.
    def _thread_session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers.update(self._session.headers)
            self._local.session = s
        return s

    # -- to be provided by subclasses
    def _endpoint(self, format: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _payload(self, ra: float, dec: float, *, size, pixscale, layer, bands, format) -> dict:  # pragma: no cover
        raise NotImplementedError

    def _expected_channels(self, bands: str, format: str) -> int | None:
        return None

    def _check_strings(self, layer: str, bands: str, format: str) -> tuple[str, str, str]:
        if not isinstance(format, str) or format.lower() not in ("fits", "jpeg", "jpg"):
            raise ValueError(f"format must be 'fits' or 'jpeg', got {format!r}")
        format = "jpeg" if format.lower() in ("jpeg", "jpg") else "fits"
        if not isinstance(layer, str) or not re.fullmatch(r"[A-Za-z0-9_./+-]+", layer):
            raise ValueError(f"layer must be a survey layer name such as 'ls-dr10', got {layer!r}")
        if not isinstance(bands, str) or not bands or not re.fullmatch(r"[A-Za-z0-9]+", bands):
            raise ValueError(f"bands must be a string of band letters such as 'grz', got {bands!r}")
        return layer, bands, format

    # -- parsing and validation
    def _parse(self, body: bytes, *, size: int, bands: str, format: str):
        """Parse a cutout body; raise ValueError when it is truncated or not what was asked for."""
        if format == "fits":
            if len(body) == 0 or len(body) % 2880:
                raise ValueError(f"truncated FITS file ({len(body)} bytes is not a multiple of 2880)")
            if not body.startswith(b"SIMPLE  ="):
                raise ValueError("not a FITS file (no SIMPLE card)")
            hdul = fits.HDUList.fromstring(body)
            data = hdul[0].data
            if data is None:
                raise ValueError("FITS file has no data in its primary HDU")
            nch = self._expected_channels(bands, format)
            shape = tuple(data.shape)
            ok2d = shape == (size, size) and nch in (None, 1)
            ok3d = len(shape) == 3 and shape[1:] == (size, size) and nch in (None, shape[0])
            if not (ok2d or ok3d):
                raise ValueError(f"FITS data has shape {shape}, expected ({nch or 'n'}, {size}, {size})")
            return hdul
        from PIL import Image

        if not body.rstrip(b"\0").endswith(b"\xff\xd9"):
            raise ValueError("truncated JPEG (no end-of-image marker)")
        with Image.open(io.BytesIO(body)) as im:
            im.load()  # raises on a truncated/corrupt stream
            arr = np.asarray(im.convert("RGB"))
        if arr.shape != (size, size, 3):
            raise ValueError(f"JPEG is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
        return arr

    @staticmethod
    def _as_array(parsed, format: str) -> np.ndarray:
        if format == "jpeg":
            return parsed
        data = np.asarray(parsed[0].data, dtype=np.float32)
        return data[None] if data.ndim == 2 else data

    # -- one cutout: cache, request, retries
    def _fetch(self, coord_label: str, url: str, params: dict, *, size, bands, format, cache, timeout,
               max_retries, backoff):
        key = url + "?" + urllib.parse.urlencode(params)
        if cache:
            path = _cached_path(key)
            if path is not None:
                try:
                    with open(path, "rb") as f:
                        return self._parse(f.read(), size=size, bands=bands, format=format)
                except Exception as exc:
                    log.warning("cached cutout for %s is corrupt (%s); fetching it again", coord_label, exc)
                    _drop_from_cache(key)
        session = self._thread_session()
        last = "no attempt made"
        for attempt in range(max_retries + 1):
            wait = backoff * 2**attempt
            try:
                resp = session.get(url, params=params, timeout=timeout)
            except requests.Timeout:
                last = f"timed out after {timeout:g} s"
            except requests.RequestException as exc:
                last = f"connection error: {exc.__class__.__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    try:
                        parsed = self._parse(resp.content, size=size, bands=bands, format=format)
                    except Exception as exc:
                        last = f"corrupt {format.upper()} body: {exc}"
                    else:
                        if cache:
                            try:
                                _store_in_cache(key, resp.content)
                            except OSError as exc:  # a full disk must not lose the cutout
                                log.warning("could not cache cutout for %s: %s", coord_label, exc)
                        return parsed
                else:
                    text = resp.text[:200].strip().replace("\n", " ")
                    last = f"HTTP {resp.status_code} {resp.reason}" + (f": {text}" if text else "")
                    if resp.status_code not in _RETRY_STATUS:
                        # 4xx: our request is wrong; asking again will not help.
                        raise CutoutError(f"cutout at {coord_label} failed: {last} (URL {resp.url})")
                    ra_s = _retry_after(resp)
                    if ra_s is not None:
                        wait = max(wait, min(ra_s, _MAX_RETRY_AFTER))
            if attempt < max_retries:
                log.info("cutout at %s: %s; retrying in %.2f s", coord_label, last, wait)
                time.sleep(wait)
        raise CutoutError(f"cutout at {coord_label} failed after {max_retries + 1} attempt(s): {last}")

    # -- public interface
    def get_cutout_async(self, coordinate, *, size: int = 256, pixscale=0.262, layer: str | None = None,
                         bands: str = "grz", format: str = "fits", get_query_payload: bool = False):
        """Send one cutout request and return the raw `requests.Response` (no cache, no retries).

        With ``get_query_payload=True`` return the query parameters instead.
        Use `get_cutout` for a validated, cached, retried result.
        """
        c = _as_coords(coordinate)
        if len(c) != 1:
            raise ValueError(f"get_cutout takes one position, got {len(c)}; use get_cutouts")
        size, pixscale = _check_size_pixscale(size, pixscale)
        layer, bands, format = self._check_strings(layer or self._default_layer, bands, format)
        params = self._payload(float(c.ra.deg[0]), float(c.dec.deg[0]), size=size, pixscale=pixscale,
                               layer=layer, bands=bands, format=format)
        if get_query_payload:
            return params
        return self._request("GET", self._endpoint(format), params=params, timeout=conf.timeout, cache=False)

    def get_cutout(self, coordinate, *, size: int = 256, pixscale=0.262, layer: str | None = None,
                   bands: str = "grz", format: str = "fits", cache: bool = True):
        """Fetch one validated cutout.

        Returns
        -------
        `~astropy.io.fits.HDUList` (``format="fits"``; the primary HDU holds
        the bands, with the service's WCS header) or an ``(size, size, 3)``
        uint8 array (``format="jpeg"``).

        Raises
        ------
        CutoutError
            When the cutout still fails after ``conf.max_retries`` retries.
        """
        c = _as_coords(coordinate)
        if len(c) != 1:
            raise ValueError(f"get_cutout takes one position, got {len(c)}; use get_cutouts")
        size, pixscale = _check_size_pixscale(size, pixscale)
        layer, bands, format = self._check_strings(layer or self._default_layer, bands, format)
        ra, dec = float(c.ra.deg[0]), float(c.dec.deg[0])
        params = self._payload(ra, dec, size=size, pixscale=pixscale, layer=layer, bands=bands, format=format)
        return self._fetch(f"RA={ra:.6f} Dec={dec:+.6f}", self._endpoint(format), params, size=size, bands=bands,
                           format=format, cache=cache, timeout=float(conf.timeout),
                           max_retries=int(conf.max_retries), backoff=float(conf.backoff))

    def get_cutouts(self, coordinates, *, size: int = 256, pixscale=0.262, layer: str | None = None,
                    bands: str = "grz", format: str = "fits", cache: bool = True, errors: str = "raise",
                    progress: bool | None = None) -> Table:
        """Fetch cutouts for many positions, in parallel, returned in input order.

        Parameters
        ----------
        coordinates : `~astropy.coordinates.SkyCoord` or (ra, dec)
            Positions (any frame; converted to ICRS), or two arrays in degrees.
        size : int
            Pixels a side, 1 to 3000.
        pixscale : float or angle
            Arcsec per pixel (0.262 is the survey's native scale).
        layer : str
            The survey layer, e.g. ``"ls-dr10"``, ``"ls-dr9"``.
        bands : str
            Bands of a FITS cutout, one plane each (``"grz"``).
        format : {"fits", "jpeg"}
        cache : bool
            Use astropy's download cache (checked before use).
        errors : {"raise", "flag"}
            On a cutout that still fails after the retries: raise `CutoutError`
            (naming the position), or set ``ok=False`` and the ``error`` text
            in that row and go on.
        progress : bool, optional
            Show a progress bar (default ``conf.show_progress``).

        Returns
        -------
        `~astropy.table.Table`
            One row per input position, in input order: ``index``, ``ra``,
            ``dec`` (deg), ``ok``, ``in_footprint``, ``error`` and ``image``:
            ``(n_bands, size, size)`` float32 fluxes for FITS (NaN where
            ``ok`` is False) or ``(size, size, 3)`` uint8 for JPEG. Blank
            cutouts (outside the survey) have ``in_footprint=False``: never
            treat them as galaxies. ``meta`` records the request.
        """
        if errors not in ("raise", "flag"):
            raise ValueError(f"errors must be 'raise' or 'flag', got {errors!r}")
        c = _as_coords(coordinates)
        size, pixscale = _check_size_pixscale(size, pixscale)
        layer, bands, format = self._check_strings(layer or self._default_layer, bands, format)
        ra, dec = c.ra.deg.astype(float), c.dec.deg.astype(float)
        n = len(c)
        url = self._endpoint(format)
        # Read the configuration once, at call time (conf.set_temp works).
        opts = dict(size=size, bands=bands, format=format, cache=cache, timeout=float(conf.timeout),
                    max_retries=int(conf.max_retries), backoff=float(conf.backoff))
        workers = max(1, int(conf.max_concurrency))

        def one(i: int):
            params = self._payload(float(ra[i]), float(dec[i]), size=size, pixscale=pixscale, layer=layer,
                                   bands=bands, format=format)
            label = f"RA={ra[i]:.6f} Dec={dec[i]:+.6f} (row {i})"
            try:
                return self._as_array(self._fetch(label, url, params, **opts), format), None
            except CutoutError as exc:
                if errors == "raise":
                    raise
                return None, str(exc)

        arrays: list = [None] * n
        errs = [""] * n
        show = conf.show_progress if progress is None else bool(progress)
        bar = _progress(total=n, desc="cutouts", unit="img", disable=not show)
        try:
            with ThreadPoolExecutor(max_workers=min(workers, max(n, 1))) as pool:
                futures = {pool.submit(one, i): i for i in range(n)}
                try:
                    from concurrent.futures import as_completed

                    for fut in as_completed(futures):
                        i = futures[fut]
                        arrays[i], err = fut.result()  # re-raises CutoutError with errors="raise"
                        errs[i] = err or ""
                        bar.update(1)
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        finally:
            bar.close()

        ok = np.array([a is not None for a in arrays], dtype=bool)
        shape = next((a.shape for a in arrays if a is not None), None)
        if shape is None:
            nch = self._expected_channels(bands, format) or 1
            shape = (size, size, 3) if format == "jpeg" else (nch, size, size)
        dtype = np.uint8 if format == "jpeg" else np.float32
        images = np.zeros((n, *shape), dtype=dtype) if format == "jpeg" else np.full((n, *shape), np.nan, dtype)
        in_fp = np.zeros(n, dtype=bool)
        for i, a in enumerate(arrays):
            if a is None:
                continue
            if a.shape != shape:  # e.g. a HiPS answering with another number of planes
                ok[i] = False
                errs[i] = f"cutout has shape {a.shape}, the others {shape}"
                continue
            images[i] = a
            in_fp[i] = not _is_blank(a)
            arrays[i] = None  # free as we go: cutouts can be large
        t = Table()
        t["index"] = np.arange(n)
        t["ra"] = ra * u.deg
        t["dec"] = dec * u.deg
        t["ok"] = ok
        t["in_footprint"] = in_fp
        t["error"] = np.array(errs, dtype=str) if n else np.array([], dtype="U1")
        t["image"] = images
        t.meta["astro_semsearch"] = {
            "service": type(self).__name__, "url": url, "size": size, "pixscale": pixscale,
            "layer": layer, "bands": bands, "format": format,
        }
        return t


# --------------------------------------------------------------------------- services
class LegacySurvey(_CutoutService):
    """Cutouts from the DESI Legacy Imaging Surveys viewer (``conf.legacysurvey_url``).

    Endpoints: ``{url}/fits-cutout`` and ``{url}/jpeg-cutout`` with parameters
    ``ra, dec, layer, pixscale, size, bands``. A FITS cutout's primary HDU has
    shape ``(len(bands), size, size)`` (nanomaggies) and a TAN WCS.

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astro_semsearch.cutouts import LegacySurvey
    >>> coords = SkyCoord([150.1, 150.2], [2.2, 2.3], unit="deg")
    >>> t = LegacySurvey().get_cutouts(coords, size=64, format="jpeg")  # doctest: +REMOTE_DATA
    >>> t["image"].shape                                               # doctest: +REMOTE_DATA
    (2, 64, 64, 3)
    """

    _default_layer = "ls-dr10"

    def _endpoint(self, format: str) -> str:
        base = str(conf.legacysurvey_url).rstrip("/")
        return f"{base}/{'jpeg' if format == 'jpeg' else 'fits'}-cutout"

    def _payload(self, ra, dec, *, size, pixscale, layer, bands, format) -> dict:
        params = {"ra": round(ra, 7), "dec": round(dec, 7), "layer": layer, "pixscale": pixscale, "size": size}
        if format == "fits":
            params["bands"] = bands
        else:
            params["bands"] = bands  # the viewer ignores it for JPEG; kept so the URL names what was asked
        return params

    def _expected_channels(self, bands: str, format: str) -> int | None:
        return len(bands) if format == "fits" else 3


class Hips2FitsCutouts(_CutoutService):
    """Cutouts resampled by CDS hips2fits from a HiPS (default: Legacy Surveys DR10 colour).

    The same interface as `LegacySurvey`; ``layer`` is the HiPS identifier and
    ``bands`` is ignored (the HiPS decides the planes). The query parameters
    are made by `astroquery.hips2fits` (TAN projection centred on the
    position, field of view ``size * pixscale``).

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astro_semsearch.cutouts import Hips2FitsCutouts
    >>> p = Hips2FitsCutouts().get_cutout_async(SkyCoord(150.1, 2.2, unit="deg"), size=64,
    ...                                         format="jpeg", get_query_payload=True)
    >>> p["hips"], p["width"], p["projection"], p["format"]
    ('CDS/P/DESI-Legacy-Surveys/DR10/color', 64, 'TAN', 'jpg')
    """

    _default_layer = DR10_HIPS

    def __init__(self, hips: str = DR10_HIPS):
        super().__init__()
        self._default_layer = hips

    def _endpoint(self, format: str) -> str:
        return str(conf.hips2fits_url)

    def _payload(self, ra, dec, *, size, pixscale, layer, bands, format) -> dict:
        from astropy.coordinates import Angle, Latitude, Longitude
        from astroquery.hips2fits import hips2fits

        p = hips2fits.query(
            hips=layer, width=size, height=size, projection="TAN", ra=Longitude(ra * u.deg),
            dec=Latitude(dec * u.deg), fov=Angle(size * pixscale * u.arcsec),
            format="jpg" if format == "jpeg" else "fits", get_query_payload=True,
        )
        # Plain Python numbers so the URL (our cache key) is stable.
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in p.items()}

    def _check_strings(self, layer, bands, format):
        if not isinstance(layer, str) or not layer.strip():
            raise ValueError(f"layer must be a HiPS identifier such as {DR10_HIPS!r}, got {layer!r}")
        # Only the format is checked by the shared rules; bands do not apply to a HiPS.
        _, _, format = super()._check_strings("ls-dr10", "grz", format)
        return layer, str(bands or ""), format


# --------------------------------------------------------------------------- module-level helpers
def get_cutouts(coordinates, *, source: str | _CutoutService | None = None, **kwargs) -> Table:
    """Fetch cutouts with `LegacySurvey` (default) or `Hips2FitsCutouts` (``source="hips2fits"``).

    See `LegacySurvey.get_cutouts` for the parameters and the returned table.
    """
    return _resolve_source(source).get_cutouts(coordinates, **kwargs)


def _resolve_source(source) -> _CutoutService:
    if source is None or (isinstance(source, str) and source.lower() in ("legacysurvey", "legacy", "ls")):
        return LegacySurvey()
    if isinstance(source, str) and source.lower() == "hips2fits":
        return Hips2FitsCutouts()
    if isinstance(source, _CutoutService):
        return source
    raise ValueError(f"source must be 'legacysurvey', 'hips2fits' or a LegacySurvey/Hips2FitsCutouts, got {source!r}")


def fetch_and_embed(coord, model, *, source=None, size: int = 256, pixscale=0.262, layer: str | None = None,
                    bands: str = "grz", format: str = "fits", cache: bool = True) -> np.ndarray:
    """Fetch the cutout at one position and embed it with ``model``.

    Used by `~astro_semsearch.similar_to` for a position that is not in the
    index.

    Returns
    -------
    numpy.ndarray, shape (1, model.dim)

    Raises
    ------
    TargetNotFoundError
        When the position is outside the survey footprint (blank cutout).
    CutoutError
        When the cutout cannot be fetched.
    """
    t = _resolve_source(source).get_cutouts(coord, size=size, pixscale=pixscale, layer=layer, bands=bands,
                                            format=format, cache=cache, errors="raise", progress=False)
    if len(t) != 1:
        raise ValueError(f"fetch_and_embed takes one position, got {len(t)}")
    if not t["in_footprint"][0]:
        raise TargetNotFoundError(
            f"RA={t['ra'][0]:.6f} Dec={t['dec'][0]:+.6f} is outside the survey footprint "
            f"(the {t.meta['astro_semsearch']['layer']} cutout is blank); nothing to embed"
        )
    return np.asarray(model.embed_images(np.asarray(t["image"][0])), dtype=np.float32).reshape(1, -1)
