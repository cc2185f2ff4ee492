"""The machinery shared by the cutout services: validation, retries, the checked cache, the result table.

`CutoutService` is an `astroquery.query.BaseQuery`; its subclasses
(`~astro_semsearch.cutouts.LegacySurvey`,
`~astro_semsearch.cutouts.Hips2FitsCutouts`) only say which endpoint to call
with which parameters. See `astro_semsearch.cutouts` for the behaviour.
"""
from __future__ import annotations

import contextlib
import email.utils
import io
import logging
import re
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
import requests
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astroquery.query import BaseQuery

from .._io import progress as _progress
from .._validate import check_int
from ..catalog import as_skycoord
from ..config import conf
from ..exceptions import CutoutError, InvalidInputError, InvalidTypeError
from ..images import is_blank
from ._cache import cached_path, drop_from_cache, store_in_cache

__all__ = ["CutoutService", "MAX_SIZE"]

log = logging.getLogger(__name__)

MAX_SIZE = 3000
"""Largest cutout (pixels a side) the Legacy Survey viewer serves; it silently clamps larger requests."""

_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 600.0  # never sleep longer than this for one Retry-After


def _check_size_pixscale(size, pixscale) -> tuple[int, float]:
    size = check_int(size, "size")
    if size > MAX_SIZE:
        raise InvalidInputError(
            f"size must be between 1 and {MAX_SIZE} pixels, got {size} "
            f"(the Legacy Survey viewer would silently clamp it at {MAX_SIZE})"
        )
    try:
        pixscale = float(u.Quantity(pixscale, u.arcsec).to_value(u.arcsec))
    except (TypeError, ValueError, u.UnitsError):
        raise InvalidTypeError(f"pixscale must be a number (arcsec/pixel) or an angle, got {pixscale!r}") from None
    if not np.isfinite(pixscale) or pixscale <= 0:
        raise InvalidInputError(f"pixscale must be a positive number of arcsec/pixel, got {pixscale}")
    return int(size), pixscale


def _check_pixscales(pixscale, n: int) -> np.ndarray:
    """One pixel scale per position (arcsec/pixel), each positive and finite."""
    try:
        values = np.asarray(u.Quantity(pixscale, u.arcsec).to_value(u.arcsec), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, u.UnitsError):
        raise InvalidTypeError("pixscale must be numbers (arcsec/pixel) or angles, one per position") from None
    if values.shape != (n,):
        raise InvalidInputError(f"pixscale has {values.size} values but there are {n} positions; give one "
                                "number, or one per position")
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        raise InvalidInputError(f"pixscale must be positive numbers of arcsec/pixel; bad rows {bad[:5].tolist()}")
    return values


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


class CutoutService(BaseQuery):
    """Fetching, retrying, caching and validation shared by the cutout services.

    Subclasses say where a cutout is requested (`_endpoint`) and with which
    parameters (`_payload`); everything else (validation, concurrency,
    retries, the checked cache, the result table) is here.
    """

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
            raise InvalidInputError(f"format must be 'fits' or 'jpeg', got {format!r}")
        format = "jpeg" if format.lower() in ("jpeg", "jpg") else "fits"
        if not isinstance(layer, str) or not re.fullmatch(r"[A-Za-z0-9_./+-]+", layer):
            raise InvalidInputError(f"layer must be a survey layer name such as 'ls-dr10', got {layer!r}")
        if not isinstance(bands, str) or not bands or not re.fullmatch(r"[A-Za-z0-9]+", bands):
            raise InvalidInputError(f"bands must be a string of band letters such as 'grz', got {bands!r}")
        return layer, bands, format

    # -- parsing and validation
    def _parse(self, body: bytes, *, size: int, bands: str, format: str):
        """Parse a cutout body; raise ValueError when it is truncated or not what was asked for."""
        if format == "fits":
            if len(body) == 0 or len(body) % 2880:
                raise InvalidInputError(f"truncated FITS file ({len(body)} bytes is not a multiple of 2880)")
            if not body.startswith(b"SIMPLE  ="):
                raise InvalidInputError("not a FITS file (no SIMPLE card)")
            hdul = fits.HDUList.fromstring(body)
            data = hdul[0].data
            if data is None:
                raise InvalidInputError("FITS file has no data in its primary HDU")
            nch = self._expected_channels(bands, format)
            shape = tuple(data.shape)
            ok2d = shape == (size, size) and nch in (None, 1)
            ok3d = len(shape) == 3 and shape[1:] == (size, size) and nch in (None, shape[0])
            if not (ok2d or ok3d):
                raise InvalidInputError(f"FITS data has shape {shape}, expected ({nch or 'n'}, {size}, {size})")
            return hdul
        from PIL import Image

        if not body.rstrip(b"\0").endswith(b"\xff\xd9"):
            raise InvalidInputError("truncated JPEG (no end-of-image marker)")
        with Image.open(io.BytesIO(body)) as im:
            im.load()  # raises on a truncated/corrupt stream
            arr = np.asarray(im.convert("RGB"))
        if arr.shape != (size, size, 3):
            raise InvalidInputError(f"JPEG is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
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
            path = cached_path(key)
            if path is not None:
                try:
                    with open(path, "rb") as f:
                        return self._parse(f.read(), size=size, bands=bands, format=format)
                except Exception as exc:
                    log.warning("cached cutout for %s is corrupt (%s); fetching it again", coord_label, exc)
                    drop_from_cache(key)
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
                                store_in_cache(key, resp.content)
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
        c = as_skycoord(coordinate)
        if len(c) != 1:
            raise InvalidInputError(f"get_cutout takes one position, got {len(c)}; use get_cutouts")
        size, pixscale = _check_size_pixscale(size, pixscale)
        layer, bands, format = self._check_strings(layer or self._default_layer, bands, format)
        params = self._payload(float(c.ra.deg[0]), float(c.dec.deg[0]), size=size, pixscale=pixscale,
                               layer=layer, bands=bands, format=format)
        if get_query_payload:
            return params
        return self._request("GET", self._endpoint(format), params=params, timeout=conf.timeout, cache=False)

    def cache_key(self, coordinate, *, size: int = 256, pixscale=0.262, layer: str | None = None,
                  bands: str = "grz", format: str = "fits") -> str:
        """The URL a cutout is requested at, which is also its key in astropy's download cache."""
        params = self.get_cutout_async(coordinate, size=size, pixscale=pixscale, layer=layer, bands=bands,
                                       format=format, get_query_payload=True)
        format = "jpeg" if str(format).lower() in ("jpeg", "jpg") else "fits"
        return self._endpoint(format) + "?" + urllib.parse.urlencode(params)

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
        c = as_skycoord(coordinate)
        if len(c) != 1:
            raise InvalidInputError(f"get_cutout takes one position, got {len(c)}; use get_cutouts")
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
        pixscale : float, angle, or array of them
            Arcsec per pixel (0.262 is the survey's native scale); one value,
            or one per position (each galaxy framed by its size, see
            `astro_semsearch.cutouts.framing`).
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
            raise InvalidInputError(f"errors must be 'raise' or 'flag', got {errors!r}")
        c = as_skycoord(coordinates)
        pixscales = _check_pixscales(pixscale, len(c)) if np.ndim(pixscale) > 0 else None
        size, pixscale = _check_size_pixscale(size, 0.262 if pixscales is not None else pixscale)
        layer, bands, format = self._check_strings(layer or self._default_layer, bands, format)
        ra, dec = c.ra.deg.astype(float), c.dec.deg.astype(float)
        url = self._endpoint(format)
        # Read the configuration once, at call time (conf.set_temp works).
        opts = dict(size=size, bands=bands, format=format, cache=cache, timeout=float(conf.timeout),
                    max_retries=int(conf.max_retries), backoff=float(conf.backoff))

        def one(i: int):
            pix = pixscale if pixscales is None else float(pixscales[i])
            params = self._payload(float(ra[i]), float(dec[i]), size=size, pixscale=pix, layer=layer,
                                   bands=bands, format=format)
            label = f"RA={ra[i]:.6f} Dec={dec[i]:+.6f} (row {i})"
            try:
                return self._as_array(self._fetch(label, url, params, **opts), format), None
            except CutoutError as exc:
                if errors == "raise":
                    raise
                return None, str(exc)

        show = conf.show_progress if progress is None else bool(progress)
        arrays, errs = _run_parallel(one, len(c), show)
        t = self._result_table(arrays, errs, ra, dec, size=size, bands=bands, format=format)
        t.meta["astro_semsearch"] = {
            "service": type(self).__name__, "url": url, "size": size,
            "pixscale": pixscale if pixscales is None else "per-row",
            "layer": layer, "bands": bands, "format": format,
        }
        return t

    def _result_table(self, arrays: list, errs: list[str], ra, dec, *, size, bands, format) -> Table:
        """The ``get_cutouts`` table: one row per position, images stacked, blank ones flagged."""
        n = len(arrays)
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
            in_fp[i] = not is_blank(a)
            arrays[i] = None  # free as we go: cutouts can be large
        t = Table()
        t["index"] = np.arange(n)
        t["ra"] = ra * u.deg
        t["dec"] = dec * u.deg
        t["ok"] = ok
        t["in_footprint"] = in_fp
        t["error"] = np.array(errs, dtype=str) if n else np.array([], dtype="U1")
        t["image"] = images
        return t


def _run_parallel(one, n: int, show_progress: bool) -> tuple[list, list[str]]:
    """Call ``one(i)`` for ``i < n`` on ``conf.max_concurrency`` threads; results in input order.

    ``one`` returns ``(array or None, error text or None)``. A raised error
    cancels the requests not yet started and is re-raised.
    """
    arrays: list = [None] * n
    errs = [""] * n
    workers = max(1, int(conf.max_concurrency))
    bar = _progress(total=n, desc="cutouts", unit="img", disable=not show_progress)
    try:
        with ThreadPoolExecutor(max_workers=min(workers, max(n, 1))) as pool:
            futures = {pool.submit(one, i): i for i in range(n)}
            try:
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
    return arrays, errs
