"""Network failures, against servers on 127.0.0.1 only: a closed port, a trickle, compression bombs, long
Retry-After, 5xx storms; builds that stop with one error and resume, retryable skips, catalogue row numbers.
"""
import logging
import re
import time
import tracemalloc

import legacy_server as _server
import numpy as np
import pytest
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from fakes import MeanColourModel
from legacy_server import LegacyServer, closed_port, release_port

from astro_semsearch import conf
from astro_semsearch.build import build_index
from astro_semsearch.build.work import infer_kind
from astro_semsearch.cli import main
from astro_semsearch.cutouts import LegacySurvey, fetch_and_embed
from astro_semsearch.cutouts.http import _connect_failure
from astro_semsearch.exceptions import CutoutError, ServiceUnreachableError

legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)

SIZE = 16


@pytest.fixture
def nowhere():
    """conf points at a port on 127.0.0.1 where nothing listens; yields its URL."""
    url = f"http://127.0.0.1:{closed_port()}"
    with conf.set_temp("legacysurvey_url", url), conf.set_temp("backoff", 0.01):
        yield url


class Dying(MeanColourModel):
    """A MeanColourModel that is killed at its ``fail_after``-th embedding call (a Ctrl-C)."""

    def __init__(self, fail_after=None):
        super().__init__()
        self.fail_after, self.calls = fail_after, 0

    def embed_images(self, images, batch_size=256, progress=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        return super().embed_images(images, batch_size, progress)


def _catalog(n, south=()):
    t = Table()
    t["object_id"] = [f"g{i:02d}" for i in range(n)]
    t["ra"] = 10.0 + np.arange(n) * 0.5
    t["dec"] = np.where(np.isin(np.arange(n), list(south)), -45.0, 5.0)
    return t


# --------------------------------------------------------------------------- an unreachable service
def test_closed_port_stops_get_cutouts_with_one_error(nowhere):
    t0 = time.monotonic()
    with pytest.raises(ServiceUnreachableError, match=re.escape(nowhere)) as err:
        LegacySurvey().get_cutouts(SkyCoord(np.linspace(10, 20, 30), np.zeros(30), unit="deg"), size=SIZE,
                                   errors="flag")
    assert time.monotonic() - t0 < 10
    assert "conf.legacysurvey_url" in str(err.value) and "connection refused" in str(err.value)
    assert err.value.kind == "unreachable" and err.value.url.startswith(nowhere)


def test_connection_refused_is_retried_once_only(nowhere, caplog):
    with conf.set_temp("max_retries", 10), caplog.at_level(logging.INFO, "astro_semsearch.cutouts.http"):
        with pytest.raises(ServiceUnreachableError, match="cannot reach"):
            LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 1


def test_name_resolution_failure_counts_as_unreachable():
    import socket

    import urllib3

    inner = urllib3.exceptions.NameResolutionError("nohost.invalid", None, socket.gaierror(-2, "Name unknown"))
    exc = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/fits-cutout", inner))
    assert _connect_failure(exc).startswith("host name not resolved")
    assert _connect_failure(requests.ConnectionError("Connection aborted: reset by peer")) is None


def test_similar_to_an_unindexed_position_fails_fast(legacy_server, tmp_path):
    from astro_semsearch import similar_to

    model = MeanColourModel()
    index = build_index(_catalog(4), out=tmp_path / "idx", model=model, size=SIZE)
    with conf.set_temp("legacysurvey_url", f"http://127.0.0.1:{closed_port()}"):
        t0 = time.monotonic()
        with pytest.raises(ServiceUnreachableError, match="cannot reach http://127.0.0.1"):
            similar_to(SkyCoord(200.0, 10.0, unit="deg"), k=2, index=index, model=model)
        assert time.monotonic() - t0 < 5
        with pytest.raises(ServiceUnreachableError):
            fetch_and_embed(SkyCoord(200.0, 10.0, unit="deg"), model, size=SIZE)


def test_build_against_closed_port_stops_then_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    port = closed_port()
    monkeypatch.setattr("astro_semsearch.model.load_model", lambda *a, **k: MeanColourModel())
    _catalog(20).write(tmp_path / "cat.ecsv")
    argv = ["build-index", str(tmp_path / "cat.ecsv"), "--out", str(tmp_path / "idx"), "--size", str(SIZE),
            "--chunk-size", "8"]
    with conf.set_temp("legacysurvey_url", f"http://127.0.0.1:{port}"), conf.set_temp("backoff", 0.01):
        t0 = time.monotonic()
        assert main(argv) == 2
        assert time.monotonic() - t0 < 20
        err = capsys.readouterr().err
        assert f"cannot reach http://127.0.0.1:{port}" in err and "rerun the same command to resume" in err
        assert err.count("error:") == 1 and (tmp_path / "idx.partial").is_dir() and not (tmp_path / "idx").exists()
        release_port(port)
        with LegacyServer(port=port) as srv:  # the network is back: same URL, same command
            assert main(argv) == 0
    assert "20 galaxies indexed, 0 skipped" in capsys.readouterr().out
    assert srv.total == 20 and not (tmp_path / "idx.partial").exists()


def test_a_service_failing_every_request_stops_the_call(legacy_server):
    legacy_server.fail("500", times=200)
    with conf.set_temp("max_retries", 0), conf.set_temp("unreachable_after", 5):
        with pytest.raises(ServiceUnreachableError, match=r"is failing: 5 cutouts in a row.*HTTP 500"):
            LegacySurvey().get_cutouts(SkyCoord(np.linspace(10, 20, 40), np.zeros(40), unit="deg"), size=SIZE,
                                       errors="flag")
    assert legacy_server.total <= 5 + conf.max_concurrency - 1


def test_a_slow_caller_does_not_let_requests_pile_up_after_the_service_is_judged_down(legacy_server, monkeypatch):
    # The main thread collecting results is slow (a loaded machine, a progress bar): the failure run is still
    # judged by the workers as their requests end, so no request starts once the 5th has failed.
    import astro_semsearch.cutouts.service as service

    class SlowBar:
        def update(self, n):
            time.sleep(0.2)

        def close(self):
            pass

    monkeypatch.setattr(service, "_progress", lambda **kw: SlowBar())
    legacy_server.fail("500", times=200)
    with conf.set_temp("max_retries", 0), conf.set_temp("unreachable_after", 5):
        with pytest.raises(ServiceUnreachableError, match="5 cutouts in a row"):
            LegacySurvey().get_cutouts(SkyCoord(np.linspace(10, 20, 40), np.zeros(40), unit="deg"), size=SIZE,
                                       errors="flag")
    assert legacy_server.total <= 5 + conf.max_concurrency - 1


# --------------------------------------------------------------------------- time and size limits
@pytest.mark.parametrize("interval", [0.1, 3.0])
def test_trickling_server_is_cut_at_the_deadline(legacy_server, interval):
    # A byte every 0.1 s is never silent for conf.timeout; a byte every 3 s is silent past the deadline.
    legacy_server.fail("trickle", interval=interval)
    with conf.set_temp("request_deadline", 1.0), conf.set_temp("timeout", 5.0), conf.set_temp("max_retries", 0):
        t0 = time.monotonic()
        with pytest.raises(CutoutError, match="request_deadline") as err:
            LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
        elapsed = time.monotonic() - t0
    # Cut at about 1 s, not at the next byte (3 s away) nor after the whole trickle: the server says how much
    # it sent; the upper bound on the clock only leaves room for a stalled machine.
    assert 0.8 <= elapsed < 10
    assert err.value.kind == "network" and legacy_server.bytes_sent < 40


@pytest.mark.parametrize("encoding, decoded", [("gzip", 1024**3), ("deflate", 1024**3)])
def test_compression_bomb_is_cut_without_inflating_it(legacy_server, encoding, decoded):  # 1 GiB of zeros
    legacy_server.fail(encoding, decoded_bytes=decoded)
    with conf.set_temp("max_body_bytes", 1024**2):
        tracemalloc.start()
        try:
            with pytest.raises(CutoutError, match="too large") as err:
                LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE, cache=False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    read = int(re.search(r"after reading (\d+) bytes", str(err.value)).group(1))
    assert read < 256 * 1024  # a sliver of the compressed body was read...
    assert peak < 16 * 1024**2  # ...and memory stayed near the 1 MiB cap, far from the decoded size
    assert err.value.kind == "permanent" and legacy_server.total == 1  # not asked again


def test_announced_huge_body_is_refused_unread(legacy_server):
    legacy_server.fail("huge", length=8 * 1024**3)
    with pytest.raises(CutoutError, match="announces 8589934592 bytes.*conf.max_body_bytes"):
        LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)


def test_long_retry_after_is_capped(legacy_server):
    legacy_server.fail("429", times=1, retry_after=600)
    with conf.set_temp("max_retry_after", 0.3):
        hdul = LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
    gap = legacy_server.arrivals[1] - legacy_server.arrivals[0]
    assert 0.25 <= gap < 5.0  # waited the cap (0.3 s), not the 600 s asked
    assert hdul[0].data.shape == (3, SIZE, SIZE)


def test_total_retry_time_is_capped(legacy_server):
    legacy_server.fail("500", times=500)
    with conf.set_temp("max_retries", 100), conf.set_temp("backoff", 0.05), conf.set_temp("max_retry_time", 0.5):
        t0 = time.monotonic()
        with pytest.raises(CutoutError, match="max_retry_time") as err:
            LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
        assert time.monotonic() - t0 < 3.0
    assert legacy_server.total < 10 and err.value.kind == "network"


def test_error_kinds_in_the_table(legacy_server):
    legacy_server.fail("status", code=404)
    legacy_server.fail("500")
    with conf.set_temp("max_concurrency", 1), conf.set_temp("max_retries", 0):
        t = LegacySurvey().get_cutouts(SkyCoord([10, 11, 12], [0, 0, 0], unit="deg"), size=SIZE, errors="flag")
    assert list(t["ok"]) == [False, False, True]
    assert list(t["error_kind"]) == ["permanent", "network", ""]
    assert "HTTP 404" in t["error"][0] and "(position" not in t["error"][0]


# --------------------------------------------------------------------------- builds: retryable skips, rows
def test_network_skips_of_a_finished_chunk_are_fetched_on_resume(legacy_server, tmp_path):
    cat = _catalog(9)
    legacy_server.fail("500", times=2)  # row 0: both attempts fail
    with conf.set_temp("max_concurrency", 1), conf.set_temp("max_retries", 1):
        with pytest.raises(KeyboardInterrupt):
            build_index(cat, out=tmp_path / "idx", model=Dying(fail_after=1), size=SIZE, chunk_size=3)
    with np.load(tmp_path / "idx.partial" / "chunk-00000.npz") as z:
        assert list(z["skipped_rows"]) == [0] and list(z["skipped_kind"]) == ["network"]
    before = legacy_server.total
    index = build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, chunk_size=3)
    assert list(index.table["object_id"]) == list(cat["object_id"])
    assert index.manifest["build"]["throughput"]["skipped_rows_retried_this_run"] == 1
    assert legacy_server.total - before == 1 + 3  # row 0 again, then chunk 2 (chunk 1's cutouts are cached)
    assert float(legacy_server.queries[before]["ra"]) == pytest.approx(float(cat["ra"][0]))


def test_finished_build_keeps_network_skips_for_the_next_run(legacy_server, tmp_path):
    cat = _catalog(4)
    legacy_server.fail("500", times=1)
    with conf.set_temp("max_concurrency", 1), conf.set_temp("max_retries", 0):
        index = build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE)
    b = index.manifest["build"]
    assert (b["n_indexed"], b["n_skipped"], b["n_skipped_network"]) == (3, 1, 1)
    assert b["skipped"][0]["row"] == 0 and b["skipped"][0]["kind"] == "network"
    assert (tmp_path / "idx.partial").is_dir()  # kept: those rows are not a final answer
    with pytest.raises(FileExistsError, match="network reasons"):
        build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE)
    before = legacy_server.total
    index = build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, overwrite=True)
    assert index.ntotal == 4 and legacy_server.total - before == 1
    assert not (tmp_path / "idx.partial").exists()


def test_retry_skipped_asks_again_for_permanent_skips(legacy_server, tmp_path, monkeypatch, capsys):
    cat = _catalog(6)
    cat.write(tmp_path / "cat.ecsv")
    legacy_server.fail("status", code=404)  # row 0: HTTP 404, a permanent skip
    with conf.set_temp("max_concurrency", 1), pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "cat.ecsv", out=tmp_path / "idx", model=Dying(fail_after=1), size=SIZE,
                    chunk_size=3)
    with np.load(tmp_path / "idx.partial" / "chunk-00000.npz") as z:
        assert list(z["skipped_kind"]) == ["permanent"]
    monkeypatch.setattr("astro_semsearch.model.load_model", lambda *a, **k: MeanColourModel())
    argv = ["build-index", str(tmp_path / "cat.ecsv"), "--out", str(tmp_path / "idx"), "--size", str(SIZE),
            "--chunk-size", "3", "--retry-skipped"]
    assert main(argv) == 0
    assert "6 galaxies indexed, 0 skipped" in capsys.readouterr().out


def test_skipped_ecsv_names_catalogue_rows(legacy_server, tmp_path):
    cat = _catalog(8, south=(4, 7))
    build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, chunk_size=3)
    skipped = Table.read(tmp_path / "idx" / "skipped.ecsv")
    assert skipped.colnames == ["row", "object_id", "ra", "dec", "reason", "kind"]
    assert list(skipped["row"]) == [4, 7] and list(skipped["object_id"]) == ["g04", "g07"]
    np.testing.assert_allclose(skipped["ra"].quantity.to_value(u.deg), cat["ra"][[4, 7]])
    assert list(skipped["kind"]) == ["permanent", "permanent"]


def test_failed_rows_name_catalogue_rows_not_chunk_positions(legacy_server, tmp_path):
    cat = _catalog(6)
    with conf.set_temp("max_concurrency", 1), conf.set_temp("max_retries", 0):
        build_index(cat[:3], out=tmp_path / "warm", model=MeanColourModel(), size=SIZE)  # rows 0-2 now cached
        legacy_server.fail("status", code=404)  # the first request is row 3: position 0 of the second chunk
        build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, chunk_size=3)
    skipped = Table.read(tmp_path / "idx" / "skipped.ecsv")
    assert list(skipped["row"]) == [3] and "(position 0)" not in skipped["reason"][0]


def test_old_work_files_get_kinds_from_their_reasons():
    assert infer_kind("cutout at RA=1 Dec=2 (row 3) failed after 5 attempt(s): connection error: refused") == "network"
    assert infer_kind("cutout at RA=1 Dec=2 failed after 5 attempt(s): HTTP 503 Service Unavailable") == "network"
    assert infer_kind("cutout at RA=1 Dec=2 failed after 5 attempt(s): timed out after 30 s") == "network"
    assert infer_kind("cutout at RA=1 Dec=2 failed: HTTP 429 Too Many Requests") == "network"
    assert infer_kind("cutout at RA=1 Dec=2 failed: HTTP 404 Not Found (URL x)") == "permanent"
    assert infer_kind("outside the survey footprint (blank cutout)") == "permanent"
    assert infer_kind("file not found: imgs/a.png") == "permanent"



class SyncClient:
    """Enough of a dask.distributed.Client for build_index_dask: each task runs at once, in this thread."""

    scheduler = None

    def nthreads(self):
        return {"local": 1}

    def submit(self, fn, *args, key=None, pure=None, retries=0, **kwargs):
        return fn(*args, **kwargs)

    def gather(self, futures):
        return list(futures)


def test_dask_build_names_catalogue_rows_and_keeps_network_skips(legacy_server, tmp_path, monkeypatch):
    from astro_semsearch.build import build_index_dask

    monkeypatch.setattr("astro_semsearch.model.load_model", lambda *a, **k: MeanColourModel())
    cat = _catalog(6, south=(4,))
    kw = dict(out=tmp_path / "idx", client=SyncClient(), npartitions=2, merge=True, model="fake", size=SIZE)
    legacy_server.fail("500", times=1)  # row 0 (the first request): a network skip
    with conf.set_temp("max_concurrency", 1), conf.set_temp("max_retries", 0):
        index = build_index_dask(cat, **kw)
    skipped = Table.read(tmp_path / "idx" / "skipped.ecsv")
    assert list(skipped["row"]) == [0, 4] and list(skipped["kind"]) == ["network", "permanent"]
    assert index.manifest["build"]["n_skipped_network"] == 1 and (tmp_path / "idx.dask-work").is_dir()
    before = legacy_server.total
    index = build_index_dask(cat, overwrite=True, **kw)
    assert index.ntotal == 5 and legacy_server.total - before == 1  # only row 0 was asked for again
    assert list(Table.read(tmp_path / "idx" / "skipped.ecsv")["row"]) == [4]
    assert not (tmp_path / "idx.dask-work").exists()
