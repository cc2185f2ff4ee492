"""Cutout fetching against a local server speaking the Legacy Survey viewer's protocol."""
import io
import time

import legacy_server as _server
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from fakes import MeanColourModel  # noqa: E402
from legacy_server import synthetic_cutout

from astro_semsearch import conf
from astro_semsearch.cutouts import Hips2FitsCutouts, LegacySurvey, fetch_and_embed, get_cutouts
from astro_semsearch.exceptions import CutoutError, TargetNotFoundError

legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)

SIZE = 32


def _cached_file(url_key):
    from astropy.utils.data import download_file

    return download_file(url_key, cache=True)


def test_fits_and_jpeg_content_and_order(legacy_server):
    ra = np.array([10.0, 200.5, 33.3, 120.0])
    dec = np.array([1.0, -5.0, 40.0, 12.0])
    t = LegacySurvey().get_cutouts(SkyCoord(ra, dec, unit="deg"), size=SIZE)
    assert t["image"].shape == (4, 3, SIZE, SIZE)
    assert t["image"].dtype == np.float32
    for i in range(4):
        np.testing.assert_allclose(t["image"][i], synthetic_cutout(ra[i], dec[i], SIZE, "grz"), rtol=1e-6)
    assert t["ok"].all() and t["in_footprint"].all()
    np.testing.assert_allclose(t["ra"].quantity.to_value(u.deg), ra)
    q = legacy_server.queries[0]
    assert set(q) >= {"ra", "dec", "layer", "pixscale", "size", "bands"}
    assert q["layer"] == "ls-dr10" and q["bands"] == "grz" and q["size"] == str(SIZE)

    j = get_cutouts((ra, dec), size=SIZE, format="jpeg")
    assert j["image"].shape == (4, SIZE, SIZE, 3) and j["image"].dtype == np.uint8
    assert legacy_server.counts["/jpeg-cutout"] == 4
    # Images differ from position to position.
    assert not np.array_equal(j["image"][0], j["image"][1])


def test_single_cutout_is_hdulist_with_wcs(legacy_server):
    hdul = LegacySurvey().get_cutout(SkyCoord(150.0, 2.0, unit="deg"), size=SIZE, bands="gr")
    assert isinstance(hdul, fits.HDUList)
    assert hdul[0].data.shape == (2, SIZE, SIZE)
    assert hdul[0].header["CTYPE1"] == "RA---TAN"


def test_input_order_under_concurrency(legacy_server):
    # Earlier rows answer later: completion order is the reverse of input order.
    n = 12
    ra = np.linspace(10, 20, n)
    legacy_server.delay = lambda p: 0.02 * (20 - float(p["ra"]))
    with conf.set_temp("max_concurrency", 6):
        t = LegacySurvey().get_cutouts(SkyCoord(ra, np.zeros(n), unit="deg"), size=SIZE)
    for i in range(n):
        np.testing.assert_allclose(t["image"][i], synthetic_cutout(ra[i], 0.0, SIZE), rtol=1e-6)
    assert list(t["index"]) == list(range(n))


def test_second_call_sends_no_request(legacy_server):
    c = SkyCoord([10, 11], [0, 1], unit="deg")
    first = LegacySurvey().get_cutouts(c, size=SIZE)
    assert legacy_server.total == 2
    second = LegacySurvey().get_cutouts(c, size=SIZE)
    assert legacy_server.total == 2
    np.testing.assert_array_equal(first["image"], second["image"])
    # cache=False always asks.
    LegacySurvey().get_cutouts(c, size=SIZE, cache=False)
    assert legacy_server.total == 4


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-size"])
def test_corrupt_cached_file_is_fetched_again(legacy_server, damage):
    c = SkyCoord(10, 0, unit="deg")
    ls = LegacySurvey()
    good = ls.get_cutout(c, size=SIZE)[0].data.copy()
    key = ls.cache_key(c, size=SIZE)
    path = _cached_file(key)
    raw = open(path, "rb").read()
    with open(path, "wb") as f:
        if damage == "truncate":
            f.write(raw[: len(raw) // 2])
        elif damage == "garbage":
            f.write(b"\0" * len(raw))
        else:
            buf = io.BytesIO()
            fits.PrimaryHDU(np.ones((3, 8, 8), np.float32)).writeto(buf)
            f.write(buf.getvalue())
    assert legacy_server.total == 1
    again = ls.get_cutout(c, size=SIZE)[0].data
    assert legacy_server.total == 2
    np.testing.assert_array_equal(again, good)
    # ... and the good copy replaced the bad one in the cache.
    ls.get_cutout(c, size=SIZE)
    assert legacy_server.total == 2


def test_bit_flip_in_a_cached_cutout_is_caught_by_its_checksum(legacy_server):
    # A flipped bit in the data keeps a valid FITS file of the right shape: only the checksum sees it.
    c = SkyCoord(10, 0, unit="deg")
    ls = LegacySurvey()
    good = ls.get_cutout(c, size=SIZE)[0].data.copy()
    path = _cached_file(ls.cache_key(c, size=SIZE))
    raw = bytearray(open(path, "rb").read())
    raw[2880 + 100] ^= 0x10  # inside the data unit, after the header block
    open(path, "wb").write(bytes(raw))
    again = ls.get_cutout(c, size=SIZE)[0].data
    assert legacy_server.total == 2
    np.testing.assert_array_equal(again, good)


def test_cached_cutout_without_a_checksum_is_not_trusted(legacy_server):
    from astropy.utils.data import clear_download_cache

    c = SkyCoord(10, 0, unit="deg")
    ls = LegacySurvey()
    ls.get_cutout(c, size=SIZE)
    clear_download_cache(ls.cache_key(c, size=SIZE) + "#sha256")
    ls.get_cutout(c, size=SIZE)
    assert legacy_server.total == 2
    ls.get_cutout(c, size=SIZE)  # stored again with its checksum
    assert legacy_server.total == 2


def test_blank_answers_are_not_cached(legacy_server):
    from astropy.utils.data import is_url_in_cache

    ls = LegacySurvey()
    outside = SkyCoord(10, -60, unit="deg")  # the stand-in survey is blank below dec -30
    t = ls.get_cutouts(outside, size=SIZE)
    assert t["ok"][0] and not t["in_footprint"][0]
    assert not is_url_in_cache(ls.cache_key(outside, size=SIZE))
    ls.get_cutouts(outside, size=SIZE)
    assert legacy_server.total == 2  # asked again: the sky may be there next time


def test_fresh_cache_duplicate_positions_four_workers(legacy_server, tmp_path):
    # astropy's download cache made by several threads at once, the same URL twice: no escaping OSError.
    from astropy.config import paths

    c = SkyCoord([10, 10, 11, 11, 10, 11, 12, 12], [0, 0, 1, 1, 0, 1, 2, 2], unit="deg")
    with paths.set_temp_cache(str(tmp_path / "fresh")), conf.set_temp("max_concurrency", 4):
        t = LegacySurvey().get_cutouts(c, size=SIZE, errors="flag")
        assert t["ok"].all(), list(t["error"])
        again = LegacySurvey().get_cutouts(c, size=SIZE, errors="flag")
    np.testing.assert_array_equal(t["image"], again["image"])


def test_retries_on_500_then_succeeds(legacy_server):
    legacy_server.fail("500", times=2)
    t = LegacySurvey().get_cutouts(SkyCoord(10, 0, unit="deg"), size=SIZE)
    assert t["ok"][0]
    assert legacy_server.total == 3


def test_gives_up_after_last_retry_naming_the_coordinate(legacy_server):
    legacy_server.fail("500", times=10)
    with conf.set_temp("max_retries", 2), pytest.raises(CutoutError, match=r"RA=12\.345600.*HTTP 500"):
        LegacySurvey().get_cutouts(SkyCoord(12.3456, 7.0, unit="deg"), size=SIZE)
    assert legacy_server.total == 3


def test_backoff_grows_exponentially(legacy_server):
    legacy_server.fail("500", times=3)
    with conf.set_temp("backoff", 0.1):
        t0 = time.perf_counter()
        LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
        elapsed = time.perf_counter() - t0
    assert elapsed >= 0.1 + 0.2 + 0.4 - 0.02


def test_retry_after_is_honoured(legacy_server):
    legacy_server.fail("429", times=1, retry_after=1)
    t0 = time.perf_counter()
    hdul = LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
    assert time.perf_counter() - t0 >= 0.95  # backoff is 0.01 s: only Retry-After explains the wait
    assert hdul[0].data.shape == (3, SIZE, SIZE)
    assert legacy_server.total == 2


def test_timeout_raises_cutout_error_naming_coordinate(legacy_server):
    legacy_server.fail("hang", times=5, seconds=3)
    with conf.set_temp("timeout", 0.3), conf.set_temp("max_retries", 1):
        t0 = time.perf_counter()
        with pytest.raises(CutoutError, match=r"RA=45\.000000 Dec=\+10\.000000.*timed out"):
            LegacySurvey().get_cutout(SkyCoord(45, 10, unit="deg"), size=SIZE)
        assert time.perf_counter() - t0 < 10  # two 0.3 s time-outs, not two 3 s hangs (room for a stalled machine)


@pytest.mark.parametrize("kind", ["truncate", "short"])
def test_truncated_body_is_retried_not_returned(legacy_server, kind):
    legacy_server.fail(kind, times=1)
    t = LegacySurvey().get_cutouts(SkyCoord(10, 0, unit="deg"), size=SIZE)
    assert t["ok"][0]
    np.testing.assert_allclose(t["image"][0], synthetic_cutout(10, 0, SIZE), rtol=1e-6)
    assert legacy_server.total == 2


def test_truncated_jpeg_is_retried(legacy_server):
    legacy_server.fail("short", times=1)
    t = LegacySurvey().get_cutouts(SkyCoord(10, 0, unit="deg"), size=SIZE, format="jpeg")
    assert t["ok"][0] and legacy_server.total == 2


def test_errors_flag_gives_flagged_row(legacy_server):
    # One worker, so the failures hit the second position's attempts in order.
    legacy_server.delay = None
    with conf.set_temp("max_concurrency", 1), conf.set_temp("max_retries", 1):
        ls = LegacySurvey()
        ls.get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)  # cached: sends nothing below
        legacy_server.fail("500", times=2)
        t = ls.get_cutouts(SkyCoord([10, 20], [0, 0], unit="deg"), size=SIZE, errors="flag")
    assert list(t["ok"]) == [True, False]
    assert "RA=20.000000" in t["error"][1] and "HTTP 500" in t["error"][1]
    assert t["error"][0] == ""
    assert np.isnan(t["image"][1]).all()


def test_footprint_flag(legacy_server):
    t = LegacySurvey().get_cutouts(SkyCoord([10, 10], [0, -45], unit="deg"), size=SIZE)
    assert list(t["ok"]) == [True, True]
    assert list(t["in_footprint"]) == [True, False]
    tj = LegacySurvey().get_cutouts(SkyCoord([10, 10], [0, -45], unit="deg"), size=SIZE, format="jpeg")
    assert list(tj["in_footprint"]) == [True, False]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 3001}, "3000"),
        ({"size": 0}, "size"),
        ({"size": 2.5}, "integer"),
        ({"pixscale": 0}, "pixscale"),
        ({"pixscale": -1}, "pixscale"),
        ({"format": "png"}, "format"),
        ({"layer": "ls dr10; rm"}, "layer"),
        ({"bands": ""}, "bands"),
        ({"errors": "ignore"}, "errors"),
    ],
)
def test_bad_requests_rejected_before_any_request(legacy_server, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LegacySurvey().get_cutouts(SkyCoord(10, 0, unit="deg"), **kwargs)
    assert legacy_server.total == 0


@pytest.mark.parametrize(
    "coords, match",
    [
        (([360.0], [0.0]), "RA"),
        (([-1.0], [0.0]), "RA"),
        (([10.0], [91.0]), "Dec"),
        (([np.nan], [0.0]), "NaN"),
        ("M31", "SkyCoord"),
    ],
)
def test_bad_coordinates_rejected_before_any_request(legacy_server, coords, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LegacySurvey().get_cutouts(coords, size=SIZE)
    assert legacy_server.total == 0


def test_4xx_is_not_retried(legacy_server):
    with conf.set_temp("legacysurvey_url", legacy_server.url + "/nope"), pytest.raises(CutoutError, match="404"):
        LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
    assert legacy_server.total == 1


def test_fetch_and_embed(legacy_server):
    m = MeanColourModel()
    v = fetch_and_embed(SkyCoord(10, 0, unit="deg"), m, size=SIZE)
    assert v.shape == (1, 4) and m.seen == [(3, SIZE, SIZE)]
    with pytest.raises(TargetNotFoundError, match="outside the survey footprint"):
        fetch_and_embed(SkyCoord(10, -60, unit="deg"), m, size=SIZE)
    assert len(m.seen) == 1  # the blank was never embedded


def test_hips2fits_parameters_offline():
    h = Hips2FitsCutouts()
    p = h.get_cutout_async(SkyCoord(150.0, 2.0, unit="deg"), size=100, pixscale=0.5, get_query_payload=True)
    assert p["hips"] == "CDS/P/DESI-Legacy-Surveys/DR10/color"
    assert (p["width"], p["height"], p["projection"], p["format"]) == (100, 100, "TAN", "fits")
    assert p["fov"] == pytest.approx(100 * 0.5 / 3600)
    assert (p["ra"], p["dec"]) == (pytest.approx(150.0), pytest.approx(2.0))
    with conf.set_temp("hips2fits_url", "http://example.invalid/hips2fits"):
        assert h.cache_key(SkyCoord(150, 2, unit="deg"), size=8).startswith("http://example.invalid/hips2fits?")


def test_corrupt_cached_jpeg_is_fetched_again(legacy_server):
    c = SkyCoord(10, 0, unit="deg")
    ls = LegacySurvey()
    good = ls.get_cutout(c, size=SIZE, format="jpeg")
    key = ls.cache_key(c, size=SIZE, format="jpeg")
    path = _cached_file(key)
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[: len(raw) // 2])
    again = ls.get_cutout(c, size=SIZE, format="jpeg")
    assert legacy_server.total == 2
    np.testing.assert_array_equal(again, good)


def test_retry_after_as_an_http_date_is_honoured(legacy_server):
    import email.utils

    later = email.utils.formatdate(time.time() + 2, usegmt=True)
    legacy_server.fail("429", times=1, retry_after=later)
    t0 = time.perf_counter()
    cut = LegacySurvey().get_cutout(SkyCoord(10, 0, unit="deg"), size=SIZE)
    assert time.perf_counter() - t0 >= 0.8  # waited for the date, not for the tiny back-off
    assert cut[0].data.shape == (3, SIZE, SIZE) and legacy_server.total == 2
