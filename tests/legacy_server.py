"""A local stand-in for the Legacy Survey viewer's cutout service, for offline tests.

`LegacyServer` is a real HTTP server (``http.server.ThreadingHTTPServer`` on
127.0.0.1, a free port, in a thread) that answers the viewer's
``/fits-cutout`` and ``/jpeg-cutout`` endpoints with the real parameter
names (``ra, dec, layer, pixscale, size, bands``):

* FITS bodies: a primary HDU of shape ``(len(bands), size, size)`` float32
  with a TAN WCS header, like the real service;
* JPEG bodies: ``size x size`` RGB made from the same bands;
* a synthetic galaxy (an elliptical Sersic-like blob) whose size, ellipticity
  and angle depend on (ra, dec), so every position gives a different image;
* blank (all-zero) images outside a fake footprint (``dec < -30``);
* ``size`` silently clamped at 3000, as the real service does;
* with ``sky=`` (a callable ``sky(ra_deg, dec_deg, band) -> flux``, e.g.
  ``tests/sky.py``'s `SkyModel`), cutouts of that sky instead: every pixel
  is the sky at its centre on the cutout's TAN projection (the header's),
  so a cutout can be compared with stamps resampled from bricks of the
  same sky;
* with ``files=DIR``, the files under ``DIR`` at ``/files/<path>`` (404 if
  absent): a survey mirror's brick images for `LegacySurveyBricks(url=...)`.

It can be told to misbehave for the next requests (`LegacyServer.fail`):
HTTP 500, 429 with ``Retry-After``, any other status, hang past the
client's time-out, a truncated body, a body trickled a byte at a time, a
gzip or deflate compression bomb, a huge announced body, or a delay per
request. It counts requests per path, their arrival times, and the bytes
the misbehaving answers managed to send.

`closed_port` gives a port on 127.0.0.1 that nothing listens on
(connections are refused), and ``LegacyServer(port=...)`` starts the
service on a given port later (the same URL, now up).

Use the ``legacy_server`` fixture (import it into a test module, or list
this module in ``pytest_plugins``): it points ``conf.legacysurvey_url`` at the
server, astropy's download cache at a fresh temporary directory, and makes
back-off tiny.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import io
import socket
import threading
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

__all__ = ["LegacyServer", "synthetic_cutout", "legacy_server", "closed_port", "FOOTPRINT_DEC_MIN"]

FOOTPRINT_DEC_MIN = -30.0
"""The fake survey covers dec >= -30 deg; below it cutouts are blank."""


def synthetic_cutout(ra: float, dec: float, size: int, bands: str = "grz") -> np.ndarray:
    """The image the fake service returns: ``(len(bands), size, size)`` float32 nanomaggies."""
    if dec < FOOTPRINT_DEC_MIN:
        return np.zeros((len(bands), size, size), np.float32)
    # Deterministic shape parameters from the position.
    seed = int(round(ra * 1e5)) * 7919 + int(round((dec + 90) * 1e5))
    rng = np.random.default_rng(seed % (2**32))
    re_pix = size * rng.uniform(0.06, 0.18)
    q = rng.uniform(0.3, 1.0)
    theta = rng.uniform(0, np.pi)
    n_sersic = rng.uniform(0.8, 4.0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - (size - 1) / 2
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    r = np.sqrt(xr**2 + (yr / q) ** 2)
    bn = 2 * n_sersic - 1 / 3
    profile = np.exp(-bn * ((r / re_pix) ** (1 / n_sersic) - 1)).astype(np.float32)
    profile /= profile.max()
    colours = {"g": 0.6, "r": 1.0, "i": 1.2, "z": 1.4}
    noise = rng.normal(0, 0.01, (len(bands), size, size)).astype(np.float32)
    return np.stack([colours.get(b, 1.0) * profile for b in bands]).astype(np.float32) + noise


def _render(sky, ra: float, dec: float, size: int, pixscale: float, bands: str) -> np.ndarray:
    """The sky at the centre of every pixel of a TAN cutout centred on (ra, dec) (the FITS header's WCS)."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    w.wcs.cd = [[-pixscale / 3600, 0.0], [0.0, pixscale / 3600]]
    yy, xx = np.mgrid[0:size, 0:size]
    wra, wdec = w.pixel_to_world_values(xx, yy)
    return np.stack([sky(wra, wdec, b) for b in bands]).astype(np.float32)


def _to_jpeg(bands_img: np.ndarray) -> bytes:
    from PIL import Image

    planes = list(bands_img[:3]) + [bands_img[-1]] * (3 - min(3, len(bands_img)))
    rgb = np.stack(planes[::-1], axis=-1)  # z, r, g -> R, G, B
    rgb = np.clip(np.arcsinh(rgb * 10) / np.arcsinh(10) * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _to_fits(bands_img: np.ndarray, ra: float, dec: float, pixscale: float, bands: str, layer: str) -> bytes:
    from astropy.io import fits

    size = bands_img.shape[-1]
    hdu = fits.PrimaryHDU(bands_img)
    h = hdu.header
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = ra, dec
    h["CRPIX1"] = h["CRPIX2"] = (size + 1) / 2
    h["CD1_1"], h["CD2_2"] = -pixscale / 3600, pixscale / 3600
    h["CD1_2"] = h["CD2_1"] = 0.0
    for i, b in enumerate(bands):
        h[f"BAND{i}"] = b
    h["SURVEY"] = layer
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


#: Sockets behind `closed_port` by port, held for the whole session (or until `release_port`) so that no other
#: program can take their ports.
_HELD: dict[int, socket.socket] = {}


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, so connections to it are refused.

    The socket stays bound but never listens: the kernel refuses every
    connection, and (unlike a port bound and closed again) no other program
    can start listening there while the tests run.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    _HELD[port] = s
    return port


def release_port(port: int) -> None:
    """Free a `closed_port` for a server that is to listen there ("the network is back")."""
    _HELD.pop(port).close()


@functools.lru_cache(maxsize=4)
def compression_bomb(encoding: str, decoded_bytes: int) -> bytes:
    """A gzip (multi-member) or deflate body of ``decoded_bytes`` zeros: about a thousandth of that on the wire."""
    block = 8 * 1024**2
    if encoding == "gzip":
        import gzip

        member = gzip.compress(b"\0" * block, compresslevel=9)
        return member * max(1, decoded_bytes // block)
    # A zlib stream: header, then the same fully flushed block of zeros n times (a full flush resets the
    # compressor, so each copy decodes alone), a final empty block and the Adler-32 of n blocks of zeros.
    n, zeros = max(1, decoded_bytes // block), b"\0" * block
    comp = zlib.compressobj(9)
    first = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    header = first[: len(first) - len(again)]
    adler = ((n * block) % 65521) << 16 | 1  # Adler-32 of zeros: a stays 1, b grows by 1 a byte
    return header + again * n + b"\x03\x00" + adler.to_bytes(4, "big")


class LegacyServer:
    """The fake cutout service; see the module docstring.

    Attributes
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:43117`` (set ``conf.legacysurvey_url`` to it).
    counts : collections.Counter
        Requests received per path (``"/fits-cutout"``, ``"/jpeg-cutout"``).
    queries : list of dict
        Query parameters of every request, in arrival order.
    delay : callable or None
        ``delay(params) -> seconds`` to wait before answering (ordering tests).
    arrivals : list of float
        `time.monotonic` of every request's arrival.
    bytes_sent : int
        Body bytes written by the trickle, bomb and huge answers before the client hung up.
    """

    def __init__(self, sky=None, files=None, port: int = 0):
        self.sky, self.files = sky, files
        self.counts: collections.Counter = collections.Counter()
        self.queries: list[dict] = []
        self.arrivals: list[float] = []
        self.bytes_sent = 0
        self.delay = None
        self._plan: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ---------------------------------------------------------------- control
    def fail(self, kind: str, times: int = 1, **opts) -> None:
        """Misbehave on the next ``times`` requests.

        kind : ``"500"`` | ``"429"`` (opts: ``retry_after`` seconds) |
        ``"status"`` (opts: ``code``, e.g. 404) | ``"hang"`` (opts:
        ``seconds``) | ``"truncate"`` (half the body, then close the
        connection) | ``"short"`` (half the body with a matching
        Content-Length: a complete HTTP answer holding a truncated file) |
        ``"trickle"`` (the body announced in full, then one byte every
        ``interval`` seconds) | ``"gzip"`` / ``"deflate"`` (a compression
        bomb of ``decoded_bytes`` zeros, default 1 GiB, with that
        Content-Encoding) | ``"huge"`` (``length`` bytes announced, zeros
        sent until the client hangs up).
        """
        if kind not in ("500", "429", "status", "hang", "truncate", "short", "trickle", "gzip", "deflate", "huge"):
            raise ValueError(f"unknown failure kind {kind!r}")
        if kind in ("gzip", "deflate"):
            compression_bomb(kind, int(opts.get("decoded_bytes", 1024**3)))  # made now, not while timed
        with self._lock:
            self._plan.extend([(kind, opts)] * times)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def start(self) -> "LegacyServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wake up hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------------- serving
    def _send(self, h, status: int, body: bytes, ctype: str, headers: dict | None = None, length: int | None = None):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            h.send_header(k, str(v))
        h.end_headers()
        h.wfile.write(body)

    def _send_file(self, h, rel: str):
        import pathlib

        root = pathlib.Path(self.files).resolve()
        target = (root / urllib.parse.unquote(rel)).resolve()
        if root not in target.parents or not target.is_file():
            return self._send(h, 404, b"Not found", "text/plain")
        return self._send(h, 200, target.read_bytes(), "application/octet-stream")

    def _write_counted(self, h, data: bytes) -> None:
        h.wfile.write(data)
        h.wfile.flush()
        with self._lock:
            self.bytes_sent += len(data)

    def _trickle(self, h, body: bytes, ctype: str, interval: float) -> None:
        """The whole body announced, then sent one byte every ``interval`` seconds."""
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for i in range(len(body)):
            self._write_counted(h, body[i:i + 1])
            if self._stop.wait(interval):
                return

    def _stream_junk(self, h, kind: str, opts: dict) -> None:
        """A compression bomb (gzip/deflate) or ``length`` announced zero bytes (huge), in 64 KiB writes."""
        h.close_connection = True
        if kind == "huge":
            length, body = int(opts.get("length", 4 * 1024**3)), None
        else:
            body = compression_bomb(kind, int(opts.get("decoded_bytes", 1024**3)))
            length = len(body)
        h.send_response(200)
        h.send_header("Content-Type", "image/fits")
        h.send_header("Content-Length", str(length))
        if kind != "huge":
            h.send_header("Content-Encoding", kind)
        h.end_headers()
        step, zeros = 64 * 1024, b"\0" * (64 * 1024)
        for start in range(0, length, step):
            if self._stop.is_set():
                return
            self._write_counted(h, zeros[: length - start] if body is None else body[start:start + step])

    def _handle(self, h) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        path = parsed.path
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        with self._lock:
            self.counts[path] += 1
            self.queries.append(dict(params, _path=path))
            self.arrivals.append(time.monotonic())
            action = self._plan.popleft() if self._plan else None
        try:
            if self.delay is not None:
                time.sleep(self.delay(params))
            if action is not None:
                kind, opts = action
                if kind == "500":
                    return self._send(h, 500, b"Internal Server Error", "text/plain")
                if kind == "429":
                    return self._send(h, 429, b"Too Many Requests", "text/plain",
                                      {"Retry-After": opts.get("retry_after", 1)})
                if kind == "hang":
                    self._stop.wait(opts.get("seconds", 5.0))
                    h.close_connection = True
                    return None
                if kind == "status":
                    return self._send(h, int(opts["code"]), f"status {opts['code']}".encode(), "text/plain")
                if kind in ("gzip", "deflate", "huge"):
                    return self._stream_junk(h, kind, opts)
            if path.startswith("/files/") and self.files is not None:
                return self._send_file(h, path[len("/files/"):])
            if path not in ("/fits-cutout", "/jpeg-cutout"):
                return self._send(h, 404, b"Not found", "text/plain")
            try:
                ra, dec = float(params["ra"]), float(params["dec"])
                size = min(int(params.get("size", 256)), 3000)  # the real service clamps silently
                pixscale = float(params.get("pixscale", 0.262))
                layer = params.get("layer", "ls-dr10")
                bands = params.get("bands", "grz")
            except (KeyError, ValueError) as exc:
                return self._send(h, 400, f"bad request: {exc}".encode(), "text/plain")
            img = synthetic_cutout(ra, dec, size, bands) if self.sky is None else _render(self.sky, ra, dec, size,
                                                                                          pixscale, bands)
            if path == "/fits-cutout":
                body, ctype = _to_fits(img, ra, dec, pixscale, bands, layer), "image/fits"
            else:
                body, ctype = _to_jpeg(img), "image/jpeg"
            if action is not None and action[0] == "truncate":
                h.close_connection = True
                return self._send(h, 200, body[: len(body) // 2], ctype, length=len(body))
            if action is not None and action[0] == "short":
                return self._send(h, 200, body[: len(body) // 2], ctype)
            if action is not None and action[0] == "trickle":
                return self._trickle(h, body, ctype, float(action[1].get("interval", 0.2)))
            return self._send(h, 200, body, ctype)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (time-out test)
            return None


try:
    import pytest
except ImportError:  # pragma: no cover - used outside pytest (benchmarks)
    pytest = None

if pytest is not None:

    @pytest.fixture
    def legacy_server(tmp_path):
        """A running `LegacyServer`; conf points at it, astropy's cache is a fresh tmp dir."""
        from astropy.config import paths

        from astro_semsearch import conf

        cache = tmp_path / "astropy-cache"
        cache.mkdir()
        with contextlib.ExitStack() as stack:
            srv = stack.enter_context(LegacyServer())
            stack.enter_context(paths.set_temp_cache(str(cache)))
            stack.enter_context(conf.set_temp("legacysurvey_url", srv.url))
            stack.enter_context(conf.set_temp("backoff", 0.01))
            stack.enter_context(conf.set_temp("timeout", 5.0))
            stack.enter_context(conf.set_temp("max_retries", 3))
            yield srv
