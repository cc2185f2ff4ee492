"""One cutout over HTTP with every limit: connection time, total deadline, body size, retries (not public API).

`fetch` asks for a cutout until it is parsed or the limits say stop, and
raises a `~astro_semsearch.exceptions.CutoutError` whose ``kind`` says
whether asking again later may help:

* a connection refused, a host name not resolved or a connection not
  accepted within ``conf.connect_timeout`` means the service is not there:
  one quick retry, then `~astro_semsearch.exceptions.ServiceUnreachableError`
  (``kind="unreachable"``);
* time-outs, resets, truncated transfers and HTTP 408/429/5xx are retried
  with exponential back-off (``conf.backoff * 2**attempt``, or the server's
  ``Retry-After`` up to ``conf.max_retry_after``), up to ``conf.max_retries``
  times and ``conf.max_retry_time`` seconds in all (``kind="network"``);
* a complete answer that does not parse is retried the same way (servers
  and proxies do send broken files), and stays ``kind="permanent"``;
* other HTTP 4xx answers and bodies over ``conf.max_body_bytes`` are not
  retried (``kind="permanent"``).

Each request is streamed: the connection is cut at ``conf.request_deadline``
seconds in all (not only per read), and the body is counted as it is decoded
(gzip and deflate are decoded here, a piece at a time), so a server
trickling bytes or sending a compression bomb costs at most the deadline and
``conf.max_body_bytes`` of memory.
"""
from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import socket
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import requests
import urllib3

from .._validate import check_int, check_number
from ..config import conf
from ..exceptions import CutoutError, ServiceUnreachableError

__all__ = ["Limits", "Answer", "stream_get", "fetch", "retry_after"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024  # bytes read (and at most decoded) at a time
_QUICK_RETRY = 0.5  # the longest wait, in seconds, before the one retry of a connection failure
_ERROR_BODY = 4096  # bytes of an error answer kept for the message
_TIMEOUTS = (urllib3.exceptions.TimeoutError, TimeoutError)


@dataclass(frozen=True)
class Limits:
    """The limits of one cutout's requests, read from `astro_semsearch.conf` (see there)."""

    connect_timeout: float
    read_timeout: float
    deadline: float
    max_body_bytes: int
    max_retries: int
    backoff: float
    max_retry_after: float
    max_retry_time: float

    @classmethod
    def from_conf(cls) -> "Limits":
        """The current configuration (read at call time, so ``conf.set_temp`` applies), each value checked."""
        def positive(name):
            return check_number(getattr(conf, name), f"conf.{name}", 0, low_open=True)

        return cls(
            connect_timeout=positive("connect_timeout"), read_timeout=positive("timeout"),
            deadline=positive("request_deadline"),
            max_body_bytes=check_int(conf.max_body_bytes, "conf.max_body_bytes", 1),
            max_retries=check_int(conf.max_retries, "conf.max_retries", 0),
            backoff=check_number(conf.backoff, "conf.backoff", 0),
            max_retry_after=check_number(conf.max_retry_after, "conf.max_retry_after", 0),
            max_retry_time=positive("max_retry_time"),
        )


@dataclass
class Answer:
    """A complete HTTP answer: status, headers and the (decoded) body."""

    status: int
    reason: str
    headers: Any
    body: bytes
    url: str


def retry_after(headers) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After")
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


# --------------------------------------------------------------------------- one request
def stream_get(session: requests.Session, url: str, params: dict, limits: Limits, deadline: float) -> Answer:
    """GET ``url`` and read the whole answer within ``deadline`` seconds, or raise a `CutoutError`."""
    end = time.monotonic() + deadline
    try:
        resp = session.get(url, params=params, stream=True, headers={"Accept-Encoding": "gzip, deflate"},
                           timeout=(min(limits.connect_timeout, deadline), min(limits.read_timeout, deadline)))
    except requests.ConnectTimeout:
        raise ServiceUnreachableError(f"no connection accepted within {min(limits.connect_timeout, deadline):g} s "
                                      "(conf.connect_timeout)", url=url) from None
    except requests.Timeout:
        raise CutoutError(f"timed out after {min(limits.read_timeout, deadline):g} s waiting for the answer "
                          "(conf.timeout)", kind="network", url=url) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema) as exc:
        raise ServiceUnreachableError(f"invalid URL {url!r} ({exc})", url=url) from None
    except requests.ConnectionError as exc:
        cause = _connect_failure(exc)
        if cause is not None:
            raise ServiceUnreachableError(cause, url=url) from None
        raise CutoutError(f"connection error: {_short(exc)}", kind="network", url=url) from None
    except requests.RequestException as exc:
        raise CutoutError(f"request failed: {_short(exc)}", kind="network", url=url) from None
    with contextlib.closing(resp):
        ok = 200 <= resp.status_code < 300
        try:
            body = _read_body(resp, end, deadline, limits, limits.max_body_bytes if ok else _ERROR_BODY, strict=ok)
        except CutoutError:
            if ok:
                raise
            body = b""  # the status says enough
        return Answer(resp.status_code, resp.reason or "", resp.headers, body, resp.url)


def _connect_failure(exc: BaseException) -> str | None:
    """What stopped the connection (refused, name not resolved, no route), or None if it was made."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (urllib3.exceptions.NewConnectionError, socket.gaierror, ConnectionRefusedError)):
            text = _short(e)
            text = text[text.index("Failed to"):] if "Failed to" in text else text  # the URL is named already
            if isinstance(e, socket.gaierror) or "resolve" in text.lower():
                return f"host name not resolved ({text})"
            if "refused" in text.lower():
                return f"connection refused ({text})"
            return f"no connection ({text})"
        todo += [getattr(e, "reason", None), e.__cause__, e.__context__]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ").strip() or exc.__class__.__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _socket_of(resp):
    """The answer's socket (its time-out is shortened as the deadline nears), or None."""
    for path in (("connection", "sock"), ("_connection", "sock"), ("_fp", "fp", "raw", "_sock")):
        obj = resp.raw
        for attr in path:
            obj = getattr(obj, attr, None)
        if obj is not None and hasattr(obj, "settimeout"):
            return obj
    return None


def _reader(resp) -> Callable[[int], bytes]:
    """``read(n)``: at most ``n`` raw (still encoded) bytes, from at most one read of the socket."""
    raw = resp.raw
    if hasattr(raw, "read1"):
        return lambda n: raw.read1(n, decode_content=False)
    return raw._fp.read1  # urllib3 < 2.1: the http.client answer underneath


def _read_body(resp, end: float, deadline: float, limits: Limits, cap: int, *, strict: bool) -> bytes:
    """The decoded body: at most ``cap`` bytes (more: an error if ``strict``, else cut), before ``end``."""
    url = resp.url
    decoder = _Decoder(resp.headers.get("Content-Encoding", ""), url)
    length = _int_or_none(resp.headers.get("Content-Length"))
    if strict and not decoder.active and length is not None and length > cap:
        raise _too_large(url, f"it announces {length} bytes", cap)
    read, sock = _reader(resp), _socket_of(resp)
    out, n_raw = bytearray(), 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise _deadline(url, deadline, limits, n_raw)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(min(limits.read_timeout, left))
        try:
            data = read(_CHUNK)
        except _TIMEOUTS:
            if end - time.monotonic() <= 0.05:
                raise _deadline(url, deadline, limits, n_raw) from None
            raise CutoutError(f"timed out: no data for {limits.read_timeout:g} s after {n_raw} bytes "
                              "(conf.timeout)", kind="network", url=url) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise CutoutError(f"connection broken after {n_raw} bytes: {_short(exc)}", kind="network",
                              url=url) from None
        if not data:
            break
        n_raw += len(data)
        out += decoder.decode(data, cap - len(out))
        if len(out) > cap:
            if strict:
                raise _too_large(url, f"more than {cap} bytes after decompression, cut after reading {n_raw} "
                                      "bytes", cap)
            return bytes(out[:cap])
    if length is not None and n_raw < length and "chunked" not in resp.headers.get("Transfer-Encoding", ""):
        raise CutoutError(f"connection closed after {n_raw} of {length} bytes", kind="network", url=url)
    return bytes(out)


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _too_large(url: str, what: str, cap: int) -> CutoutError:
    return CutoutError(f"answer too large ({what}; conf.max_body_bytes = {cap}: raise it if such answers are "
                       "expected)", kind="permanent", url=url)


def _deadline(url: str, deadline: float, limits: Limits, n_raw: int) -> CutoutError:
    which = "conf.request_deadline" if deadline >= limits.deadline else "the rest of conf.max_retry_time"
    return CutoutError(f"timed out: the answer did not complete within {deadline:.3g} s ({which}; {n_raw} bytes "
                       "received)", kind="network", url=url)


class _Decoder:
    """gzip / deflate bodies decoded a piece at a time, never more than asked for (a bomb is cut, not inflated)."""

    def __init__(self, encoding: str, url: str):
        self.encoding = encoding.strip().lower()
        if self.encoding in ("", "identity"):
            self._obj = None
            return
        if self.encoding not in ("gzip", "x-gzip", "deflate"):
            raise CutoutError(f"unsupported Content-Encoding {encoding!r} (asked for gzip or deflate)",
                              kind="permanent", url=url)
        self._url, self._gzip = url, "gzip" in self.encoding
        self._wbits = zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        self._started = False

    @property
    def active(self) -> bool:
        return self._obj is not None

    def decode(self, data: bytes, room: int) -> bytes:
        """What ``data`` decodes to, at most ``room + 1`` bytes (one more than fits tells it did not fit)."""
        if self._obj is None:
            return data
        out, pending = bytearray(), data
        while len(out) <= room:
            try:
                piece = self._obj.decompress(pending, room + 1 - len(out))
            except zlib.error as exc:
                if self.encoding == "deflate" and not self._started and self._wbits > 0:
                    self._wbits = -zlib.MAX_WBITS  # a raw deflate stream, as some servers send
                    self._obj = zlib.decompressobj(self._wbits)
                    continue
                raise CutoutError(f"corrupt {self.encoding} body: {exc}", kind="network", url=self._url) from None
            self._started = True
            out += piece
            pending = self._obj.unconsumed_tail
            if not pending and self._obj.eof and self._obj.unused_data and self._gzip:
                pending = self._obj.unused_data  # the next member of a multi-member gzip stream
                self._obj = zlib.decompressobj(self._wbits)
            if not pending:
                break
        return bytes(out)


# --------------------------------------------------------------------------- retries
def fetch(session: requests.Session, url: str, params: dict, *, label: str, parse: Callable[[bytes], Any],
          limits: Limits, hint: str) -> tuple[Any, bytes]:
    """``(parse(body), body)`` of the cutout at ``url``, asked as often as ``limits`` allow.

    Raises
    ------
    ServiceUnreachableError
        The service could not be connected to (twice); ``hint`` says what to check.
    CutoutError
        Any other failure, after the retries it allows; ``kind`` says whether
        it may work later (``"network"``) or not (``"permanent"``).
    """
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        budget = limits.max_retry_time - (time.monotonic() - start)
        corrupt, ra = False, None
        try:
            ans = stream_get(session, url, params, limits, max(0.001, min(limits.deadline, budget)))
        except CutoutError as exc:
            failure = exc
        else:
            if 200 <= ans.status < 300:
                try:
                    return parse(ans.body), ans.body
                except Exception as exc:
                    failure, corrupt = CutoutError(f"corrupt body: {exc}", kind="permanent", url=url), True
            else:
                failure, ra = _http_failure(ans), retry_after(ans.headers)
        if isinstance(failure, ServiceUnreachableError):
            allowed, wait = 2, min(limits.backoff, _QUICK_RETRY)
        elif failure.kind == "network" or corrupt:
            allowed, wait = limits.max_retries + 1, limits.backoff * 2 ** (attempt - 1)
            if ra is not None:
                if ra > limits.max_retry_after:
                    log.info("%s asked to wait %.0f s; waiting conf.max_retry_after = %g s", url, ra,
                             limits.max_retry_after)
                wait = max(wait, min(ra, limits.max_retry_after))
        else:
            allowed, wait = 1, 0.0
        allowed = min(allowed, limits.max_retries + 1)
        elapsed = time.monotonic() - start
        out_of_time = elapsed + wait >= limits.max_retry_time
        if attempt >= allowed or out_of_time:
            raise _final(failure, label=label, url=url, attempt=attempt, elapsed=elapsed, hint=hint,
                         budget=limits.max_retry_time if out_of_time and attempt < allowed else None) from failure
        log.info("cutout at %s: %s; retrying in %.2f s", label, failure, wait)
        time.sleep(wait)


def _http_failure(ans: Answer) -> CutoutError:
    """A non-2xx answer as an error: 408, 429 and 5xx may pass (``network``), other 4xx will not."""
    text = ans.body.decode("utf-8", "replace")
    with contextlib.suppress(Exception):  # hips2fits answers errors as JSON {title, description}
        doc = json.loads(text)
        text = ": ".join(str(doc[k]) for k in ("title", "description") if doc.get(k))
    text = " ".join(text.split())[:200]
    kind = "network" if ans.status >= 500 or ans.status in (408, 429) else "permanent"
    return CutoutError(f"HTTP {ans.status} {ans.reason}" + (f": {text}" if text else ""), kind=kind, url=ans.url,
                       status=ans.status)


def _final(failure: CutoutError, *, label, url, attempt, elapsed, hint, budget) -> CutoutError:
    """The error a caller sees: the position, what failed, how often it was tried and what to do."""
    if isinstance(failure, ServiceUnreachableError):
        return ServiceUnreachableError(f"cutout at {label}: cannot reach {url}: {failure}; {hint}", url=url)
    if failure.kind == "permanent" and attempt == 1:
        return CutoutError(f"cutout at {label} failed: {failure} (URL {failure.url or url})", kind="permanent",
                           url=url, status=failure.status)
    note = (f"; gave up, the next retry would pass conf.max_retry_time = {budget:g} s" if budget is not None
            else "")
    return CutoutError(f"cutout at {label} failed after {attempt} attempt(s) in {elapsed:.1f} s: {failure}{note}",
                       kind=failure.kind, url=url, status=failure.status)
