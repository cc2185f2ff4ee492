"""The machinery shared by the cutout services: validation, the checked cache, concurrency, the result table.

`CutoutService` is an `astroquery.query.BaseQuery`; its subclasses
(`~astro_semsearch.cutouts.LegacySurvey`,
`~astro_semsearch.cutouts.Hips2FitsCutouts`) only say which endpoint to call
with which parameters. One request, its limits and its retries are
`astro_semsearch.cutouts.http`. See `astro_semsearch.cutouts` for the
behaviour.
"""
from __future__ import annotations

import io
import logging
import re
import threading
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
from ..exceptions import CutoutError, InvalidInputError, InvalidTypeError, ServiceUnreachableError
from ..images import is_blank
from ._cache import cached_path, drop_from_cache, store_in_cache
from .http import Limits, fetch

__all__ = ["CutoutService", "MAX_SIZE"]

log = logging.getLogger(__name__)

MAX_SIZE = 3000
"""Largest cutout (pixels a side) the Legacy Survey viewer serves; it silently clamps larger requests."""


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


class CutoutService(BaseQuery):
    """Fetching, retrying, caching and validation shared by the cutout services.

    Subclasses say where a cutout is requested (`_endpoint`) and with which
    parameters (`_payload`); everything else (validation, concurrency,
    retries, the checked cache, the result table) is here.
    """

    _default_layer: str = ""
    _url_conf: str = "legacysurvey_url"  # the conf item naming the service's URL (for error messages)

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

    # -- one cutout: cache, then the request with its limits and retries (cutouts.http)
    def _fetch(self, coord_label: str, url: str, params: dict, *, size, bands, format, cache, limits: Limits):
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
        parsed, body = fetch(self._thread_session(), url, params, label=coord_label, limits=limits,
                             parse=lambda b: self._parse(b, size=size, bands=bands, format=format),
                             hint=f"check conf.{self._url_conf} and the network")
        # A blank answer (outside the footprint, or a server's hiccup) is not kept: asked again next time.
        if cache and not is_blank(self._as_array(parsed, format)):
            try:
                store_in_cache(key, body)
            except OSError as exc:  # a full disk must not lose the cutout
                log.warning("could not cache cutout for %s: %s", coord_label, exc)
        return parsed

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
            When the cutout still fails after its retries (``conf.max_retries``,
            ``conf.max_retry_time``); a `ServiceUnreachableError` when the
            service cannot be connected to (after one quick retry).
        """
        c = as_skycoord(coordinate)
        if len(c) != 1:
            raise InvalidInputError(f"get_cutout takes one position, got {len(c)}; use get_cutouts")
        size, pixscale = _check_size_pixscale(size, pixscale)
        layer, bands, format = self._check_strings(layer or self._default_layer, bands, format)
        ra, dec = float(c.ra.deg[0]), float(c.dec.deg[0])
        params = self._payload(ra, dec, size=size, pixscale=pixscale, layer=layer, bands=bands, format=format)
        return self._fetch(f"RA={ra:.6f} Dec={dec:+.6f}", self._endpoint(format), params, size=size, bands=bands,
                           format=format, cache=cache, limits=Limits.from_conf())

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
            in that row and go on. Either way a service that is down stops
            the call with one `ServiceUnreachableError` naming its URL: when
            ``conf.unreachable_after`` cutouts in a row fail for network
            reasons, or every position (fewer than that) fails to connect.
        progress : bool, optional
            Show a progress bar (default ``conf.show_progress``).

        Returns
        -------
        `~astropy.table.Table`
            One row per input position, in input order: ``index``, ``ra``,
            ``dec`` (deg), ``ok``, ``in_footprint``, ``error``, ``error_kind``
            (``""``, or the failure's `CutoutError.kind`: ``"unreachable"``
            and ``"network"`` may work later, ``"permanent"`` will not) and ``image``:
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
        opts = dict(size=size, bands=bands, format=format, cache=cache, limits=Limits.from_conf())
        health = _FailureRun(len(c), url, f"conf.{self._url_conf}")

        def one(i: int):
            pix = pixscale if pixscales is None else float(pixscales[i])
            params = self._payload(float(ra[i]), float(dec[i]), size=size, pixscale=pix, layer=layer,
                                   bands=bands, format=format)
            # A flagged row's error is read beside its own index, ra and dec: no position number in it.
            label = f"RA={ra[i]:.6f} Dec={dec[i]:+.6f}" + (f" (position {i})" if errors == "raise" and len(c) > 1
                                                            else "")
            try:
                return self._as_array(self._fetch(label, url, params, **opts), format), None
            except CutoutError as exc:
                if errors == "raise":
                    raise
                return None, exc

        show = conf.show_progress if progress is None else bool(progress)
        arrays, errs, kinds = _run_parallel(one, len(c), show, health)
        t = self._result_table(arrays, errs, ra, dec, size=size, bands=bands, format=format)
        kinds = [k or ("" if good else "permanent") for k, good in zip(kinds, t["ok"])]  # a shape mismatch
        t.add_column(np.array(kinds, dtype="U11"), name="error_kind", index=t.colnames.index("error") + 1)
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


class _FailureRun:
    """Cutouts failed in a row for network reasons (completion order): past a threshold the service is down.

    `record` raises `ServiceUnreachableError` when ``conf.unreachable_after``
    cutouts in a row failed for network reasons (time-outs and 5xx after
    their retries included), or when all ``n`` positions of a call smaller
    than that failed to connect. A success, or a permanent failure (the
    service answered), resets the count.
    """

    def __init__(self, n: int, url: str, setting: str):
        self.n, self.url, self.setting = n, url, setting
        self.threshold = check_int(conf.unreachable_after, "conf.unreachable_after", 0)
        self.run = self.unreachable = 0

    def record(self, exc: CutoutError | None) -> None:
        kind = "" if exc is None else exc.kind
        # What failed, without the position (the one that raised the error is named by its __cause__).
        error = str(exc.__cause__ if isinstance(getattr(exc, "__cause__", None), CutoutError) else exc)
        if kind in ("unreachable", "network"):
            self.run += 1
            self.unreachable = self.unreachable + 1 if kind == "unreachable" else 0
        else:
            self.run = self.unreachable = 0
        if not self.threshold:
            return
        if self.unreachable >= min(self.threshold, self.n):
            raise ServiceUnreachableError(
                f"cannot reach {self.url}: {error} ({self.unreachable} request(s) in a row failed to connect); check "
                f"{self.setting} and the network", url=self.url)
        if self.run >= self.threshold:
            raise ServiceUnreachableError(
                f"{self.url} is failing: {self.run} cutouts in a row failed for network reasons after their "
                f"retries (the last: {exc}); the service may be down or overloaded, or check {self.setting} and "
                "the network", kind="network", url=self.url)


def _run_parallel(one, n: int, show_progress: bool, health: _FailureRun) -> tuple[list, list[str], list[str]]:
    """Call ``one(i)`` for ``i < n`` on ``conf.max_concurrency`` threads; results in input order.

    ``one`` returns ``(array or None, CutoutError or None)``; the errors
    come back as texts and kinds. A raised error (a `CutoutError` with
    ``errors="raise"``, or the `ServiceUnreachableError` of ``health``)
    stops the call: no request starts after it, the ones in flight finish,
    and the first such error is re-raised.
    """
    arrays: list = [None] * n
    errs, kinds = [""] * n, [""] * n
    workers = max(1, int(conf.max_concurrency))
    # The failure run is counted in the worker, the moment its request ends, and a stop flag is read before
    # each request starts: a call to a dead service then sends at most threshold + workers - 1 requests,
    # however slowly the main thread collects results (counting there let finished-but-unread requests pile up).
    lock, stop, first_error = threading.Lock(), threading.Event(), []

    def failed(exc: BaseException) -> None:  # called with the lock held
        first_error.append(exc)
        stop.set()

    def task(i: int):
        if stop.is_set():
            return None
        try:
            result = one(i)
        except BaseException as exc:
            with lock:
                failed(exc)
            raise
        # Counting, keeping the first error and stopping are one step: no other worker's failure comes between.
        with lock:
            try:
                health.record(result[1])
            except BaseException as exc:
                failed(exc)
                raise
        return result

    bar = _progress(total=n, desc="cutouts", unit="img", disable=not show_progress)
    try:
        with ThreadPoolExecutor(max_workers=min(workers, max(n, 1))) as pool:
            futures = {pool.submit(task, i): i for i in range(n)}
            try:
                for fut in as_completed(futures):
                    result = fut.result()
                    if result is None:  # not started: the call is stopping
                        continue
                    i = futures[fut]
                    arrays[i], exc = result
                    errs[i], kinds[i] = ("", "") if exc is None else (str(exc), exc.kind)
                    bar.update(1)
            except BaseException as exc:
                stop.set()
                for f in futures:
                    f.cancel()
                # A worker's error may reach the main thread after a later one's: re-raise the first.
                # An interrupt of the main thread itself (Ctrl-C) stays what it is.
                if not isinstance(exc, Exception) or not first_error or first_error[0] is exc:
                    raise
                raise first_error[0]
    finally:
        bar.close()
    return arrays, errs, kinds
