"""crossmatch: agreement with astropy's matching, joins, column handling, errors."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky
from astropy.table import Table

from astro_semsearch import crossmatch


def results_table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return Table({
        "rank": np.arange(1, n + 1),
        "object_id": [f"G{i}" for i in range(n)],
        "ra": rng.uniform(10, 11, n) * u.deg,
        "dec": rng.uniform(-1, 0, n) * u.deg,
        "score": np.linspace(0.9, 0.1, n),
    }, meta={"astro_semsearch": {"query": "ring"}})


def random_catalog(results, seed=1, n_extra=300, jitter_arcsec=3.0):
    """Counterparts near half of the results (jittered) plus unrelated sources."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(results), len(results) // 2, replace=False)
    base = SkyCoord(results["ra"][pick], results["dec"][pick])
    near = base.directional_offset_by(rng.uniform(0, 360, pick.size) * u.deg,
                                      rng.uniform(0, jitter_arcsec, pick.size) * u.arcsec)
    ra = np.concatenate([near.ra.deg, rng.uniform(10, 11, n_extra)])
    dec = np.concatenate([near.dec.deg, rng.uniform(-1, 0, n_extra)])
    return Table({"name": [f"C{i}" for i in range(ra.size)], "RAJ2000": ra * u.deg, "DEJ2000": dec * u.deg,
                  "z": rng.uniform(0, 1, ra.size)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_agrees_with_match_coordinates_sky(seed):
    res = results_table(seed=seed)
    cat = random_catalog(res, seed=seed + 10)
    radius = 2 * u.arcsec
    out = crossmatch(res, cat, radius)
    idx, sep, _ = match_coordinates_sky(SkyCoord(res["ra"], res["dec"]), SkyCoord(cat["RAJ2000"], cat["DEJ2000"]))
    ok = sep <= radius
    assert len(out) == len(res) and list(out["object_id"]) == list(res["object_id"])  # left join, order kept
    assert ok.sum() > 10 and (~ok).sum() > 10
    np.testing.assert_array_equal(out["name"].mask, ~ok)
    assert list(out["name"][ok]) == [f"C{i}" for i in idx[ok]]
    np.testing.assert_allclose(out["separation"][ok], sep[ok].to_value(u.arcsec), rtol=1e-9)
    assert out["separation"].unit == u.arcsec and out["separation"].mask[~ok].all()
    assert out.meta["crossmatch"]["n_matched"] == ok.sum()
    assert out.meta["astro_semsearch"]["query"] == "ring"


def test_all_pairs_agree_with_search_around_sky():
    res = results_table(seed=3)
    cat = random_catalog(res, seed=4, jitter_arcsec=20)
    radius = 30 * u.arcsec
    out = crossmatch(res, cat, radius, nearest=False, join_type="inner")
    ri, ci, sep, _ = search_around_sky(SkyCoord(res["ra"], res["dec"]), SkyCoord(cat["RAJ2000"], cat["DEJ2000"]), radius)
    expected = {(f"G{a}", f"C{b}") for a, b in zip(ri, ci)}
    got = set(zip(out["object_id"], out["name"]))
    assert got == expected and len(out) == len(ri)
    assert len(set(out["object_id"])) < len(out)  # some results have several counterparts
    # results stay in rank order; within one result the nearest counterpart comes first
    assert np.all(np.diff(out["rank"]) >= 0)
    for oid in set(out["object_id"]):
        s = np.asarray(out["separation"][out["object_id"] == oid])
        assert np.all(np.diff(s) >= 0)


def test_left_and_inner_joins():
    res = results_table(50, seed=5)
    cat = random_catalog(res, seed=6, n_extra=0, jitter_arcsec=0.5)
    left = crossmatch(res, cat, 1 * u.arcsec)
    inner = crossmatch(res, cat, 1 * u.arcsec, join_type="inner")
    assert len(left) == 50 and len(inner) == 25
    assert not inner["name"].mask.any()
    assert set(inner["object_id"]) == set(left["object_id"][~left["name"].mask])
    left_all = crossmatch(res, cat, 1 * u.arcsec, nearest=False)
    assert len(left_all) == 50  # each result has at most one counterpart within 1"


def test_column_clashes_get_a_prefix_and_units_are_kept():
    res = results_table(20)
    cat = Table({"object_id": ["X"], "ra": [float(res["ra"][0])] * u.deg, "dec": [float(res["dec"][0])] * u.deg,
                 "flux": [3.0] * u.mJy})
    out = crossmatch(res, cat, 1 * u.arcsec, catalog_name="sim")
    assert out.colnames[:5] == ["rank", "object_id", "ra", "dec", "score"]
    assert {"sim_object_id", "sim_ra", "sim_dec", "flux", "separation"} <= set(out.colnames)
    assert out["sim_object_id"][0] == "X" and out["flux"].unit == u.mJy
    assert out["separation"][0] == pytest.approx(0, abs=1e-6)
    assert out.meta["crossmatch"]["catalog"] == "sim"


def test_catalogue_column_detection_and_units():
    res = results_table(20)
    ra0, dec0 = float(res["ra"][3]), float(res["dec"][3])
    rad = Table({"alpha": [np.radians(ra0)] * u.rad, "delta": [np.radians(dec0)] * u.rad})
    out = crossmatch(res, rad, 1 * u.arcsec, ra_column="alpha", dec_column="delta", join_type="inner")
    assert list(out["object_id"]) == ["G3"]
    plain = Table({"RA_deg": [ra0], "Dec_deg": [dec0]})  # no units -> degrees
    assert list(crossmatch(res, plain, 1 * u.arcsec, join_type="inner")["object_id"]) == ["G3"]
    with pytest.raises(ValueError, match=r"cannot find a right ascension column.*looked for \['ra', 'raj2000'"):
        crossmatch(res, Table({"x": [1.0], "y": [2.0]}))
    with pytest.raises(ValueError, match="column 'nope'"):
        crossmatch(res, plain, ra_column="nope")
    with pytest.raises(u.UnitTypeError, match="not an angle"):
        crossmatch(res, Table({"ra": [1.0] * u.m, "dec": [1.0] * u.deg}))
    with pytest.raises(ValueError, match="Dec out of range"):
        crossmatch(res, Table({"ra": [1.0], "dec": [95.0]}))
    with pytest.raises(ValueError, match="RA out of range"):
        crossmatch(res, Table({"ra": [-5.0], "dec": [1.0]}))


def test_skycoord_and_file_catalogues(tmp_path):
    res = results_table(30)
    coords = SkyCoord(res["ra"][[2, 7]], res["dec"][[2, 7]])
    out = crossmatch(res, coords, 1 * u.arcsec, join_type="inner")
    assert list(out["object_id"]) == ["G2", "G7"] and list(out["catalog_index"]) == [0, 1]
    single = crossmatch(res, coords[0], 1 * u.arcsec, join_type="inner")
    assert list(single["object_id"]) == ["G2"]
    path = tmp_path / "mycat.ecsv"
    Table({"ra": coords.ra, "dec": coords.dec, "label": ["a", "b"]}).write(path)
    out = crossmatch(res, str(path), 1 * u.arcsec, join_type="inner")
    assert list(out["label"]) == ["a", "b"] and "mycat_ra" in out.colnames


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"radius": 2}, TypeError, "angle with units"),
        ({"radius": 2 * u.s}, u.UnitTypeError, "must be an angle"),
        ({"radius": -1 * u.arcsec}, ValueError, "> 0"),
        ({"join_type": "outer"}, ValueError, "join_type"),
        ({"catalog": 5}, TypeError, "catalog must be"),
        ({"catalog": "  "}, ValueError, "empty string"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"results": results_table(5), "catalog": Table({"ra": [1.0], "dec": [1.0]}), **kwargs}
    with pytest.raises(exc, match=match):
        crossmatch(**args)


def test_results_must_be_a_table_with_coordinates():
    with pytest.raises(TypeError, match="astropy Table"):
        crossmatch([1, 2], Table({"ra": [1.0], "dec": [1.0]}))
    with pytest.raises(ValueError, match="right ascension"):
        crossmatch(Table({"a": [1]}), Table({"ra": [1.0], "dec": [1.0]}))


def test_empty_catalogue_and_no_matches():
    res = results_table(5)
    out = crossmatch(res, Table({"ra": np.zeros(0), "dec": np.zeros(0), "n": np.zeros(0, int)}))
    assert len(out) == 5 and out["separation"].mask.all()
    assert len(crossmatch(res, Table({"ra": [200.0], "dec": [50.0]}), join_type="inner")) == 0


@pytest.mark.skipif(importlib.util.find_spec("lenscat") is None, reason="lenscat is not installed")
def test_lenscat():
    # The compilation read independently of the package: the CSV inside lenscat, units in the column names.
    spec = importlib.util.find_spec("lenscat")
    raw = Table.read(Path(list(spec.submodule_search_locations)[0]) / "data" / "catalog.csv", format="ascii.csv")
    lenses = Table({"name": raw["name"], "RA": raw["RA [deg]"] * u.deg, "DEC": raw["DEC [deg]"] * u.deg})
    assert len(lenses) > 1000
    res = Table({"object_id": ["a", "b"], "ra": [lenses["RA"][10], 271.1234] * u.deg,
                 "dec": [lenses["DEC"][10], 66.4321] * u.deg})
    _, sep, _ = match_coordinates_sky(SkyCoord(res["ra"], res["dec"]), SkyCoord(lenses["RA"], lenses["DEC"]))
    assert sep[1] > 2 * u.arcsec  # the second position has no known lens nearby
    out = crossmatch(res, "lenscat", radius=2 * u.arcsec)
    assert out["name"][0] == lenses["name"][10] and out["name"].mask[1]
    assert out.meta["crossmatch"]["catalog"] == "lenscat"


def test_lenscat_missing_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lenscat" else real(name, *a))
    with pytest.raises(ImportError, match="pip install lenscat"):
        crossmatch(results_table(3), "lenscat")


@pytest.mark.remote_data
def test_vizier_catalogue():
    # Around M51 (NGC 5194) in the RC3 catalogue of bright galaxies.
    res = Table({"object_id": ["M51"], "ra": [202.4696] * u.deg, "dec": [47.1952] * u.deg})
    out = crossmatch(res, "VII/155", radius=1 * u.arcmin)
    assert out.meta["crossmatch"]["n_matched"] == 1


def test_vizier_path_offline(monkeypatch):
    """The VizieR branch with astroquery's Vizier replaced by a stand-in (no network)."""
    import astroquery.vizier

    res = results_table(10)
    calls = {}

    class FakeVizier:
        def __init__(self, columns=None, row_limit=None):
            calls["columns"], calls["row_limit"] = columns, row_limit

        def query_region(self, coords, radius, catalog):
            calls["catalog"], calls["radius"], calls["n"] = catalog, radius, len(coords)
            # like VizieR: sexagesimal RAJ2000/DEJ2000 text plus computed _RAJ2000/_DEJ2000 in degrees
            return [Table({"_q": [1], "_RAJ2000": [float(res["ra"][4])] * u.deg,
                           "_DEJ2000": [float(res["dec"][4])] * u.deg,
                           "RAJ2000": ["00 40 00.0"], "DEJ2000": ["-00 30 00"], "Name": ["NGC X"]})]

    monkeypatch.setattr(astroquery.vizier, "Vizier", FakeVizier)
    out = crossmatch(res, "VII/155", radius=1 * u.arcsec, join_type="inner")
    assert calls["catalog"] == "VII/155" and calls["row_limit"] == -1 and calls["n"] == 10
    assert list(out["object_id"]) == ["G4"] and out["Name"][0] == "NGC X" and "_q" not in out.colnames
    assert out.meta["crossmatch"]["catalog"] == "VII_155"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # lsdb: "no margin cache" (none is needed here)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_crossmatch_lsdb_matches_in_memory_crossmatch(tmp_path):
    lsdb = pytest.importorskip("lsdb")
    import astropy.units as u
    import pandas as pd

    from astro_semsearch.crossmatch import crossmatch, crossmatch_lsdb

    rng = np.random.default_rng(3)
    n = 500
    big = pd.DataFrame({"name": [f"S{i}" for i in range(n)], "ra": rng.uniform(10, 20, n),
                        "dec": rng.uniform(-5, 5, n), "z": rng.uniform(0, 1, n)})
    writer = lsdb.from_dataframe(big, ra_column="ra", dec_column="dec", catalog_name="bigcat",
                                 should_generate_moc=False, margin_threshold=None)
    (getattr(writer, "write_catalog", None) or writer.to_hats)(str(tmp_path / "bigcat"))
    # Results: 4 near catalogue sources (0.3-1.5 arcsec away), 2 far from everything.
    pick = [3, 40, 41, 400]
    offs = np.array([0.3, 0.8, 1.2, 1.5]) / 3600
    hits = Table({"rank": np.arange(1, 7), "object_id": [f"h{i}" for i in range(6)],
                  "ra": np.r_[big.ra.to_numpy()[pick], 100.0, 200.0] * u.deg,
                  "dec": np.r_[big.dec.to_numpy()[pick] + offs, 30.0, -30.0] * u.deg, "score": np.linspace(1, 0.5, 6)})
    got = crossmatch_lsdb(hits, tmp_path / "bigcat", 2 * u.arcsec)
    ref = crossmatch(hits, Table.from_pandas(big), radius=2 * u.arcsec, catalog_name="bigcat")
    assert list(got["object_id"]) == list(hits["object_id"])
    assert got.colnames == ref.colnames
    assert list(got["name"].filled("")) == ["S3", "S40", "S41", "S400", "", ""]
    np.testing.assert_allclose(got["separation"].filled(-1), ref["separation"].filled(-1), atol=1e-3)
    np.testing.assert_allclose(got["z"].filled(-1), ref["z"].filled(-1))
    inner = crossmatch_lsdb(hits, tmp_path / "bigcat", 1 * u.arcsec, join_type="inner")
    assert list(inner["object_id"]) == ["h0", "h1"]
    with pytest.raises(TypeError, match="angle"):
        crossmatch_lsdb(hits, tmp_path / "bigcat", 2.0)


@pytest.mark.parametrize("name", ["lenses.csv", "my_lenses.FITS", "data/lenses", "./lenses", "~/no-such-cat.ecsv",
                                  "/no/such/catalog", "C:\\cats\\lenses"])
def test_a_missing_file_is_never_sent_to_vizier(monkeypatch, name):
    """A string that looks like a path and is not a file is a local error, not a VizieR query."""
    import astroquery.vizier

    class NoVizier:
        def __init__(self, *args, **kwargs):
            raise AssertionError(f"{name!r} was sent to VizieR")

    monkeypatch.setattr(astroquery.vizier, "Vizier", NoVizier)
    with pytest.raises(FileNotFoundError, match="catalogue file .* does not exist"):
        crossmatch(results_table(3), name)


@pytest.mark.parametrize("catalog_id", ["J/ApJS/243/17", "II/246", "I/355/gaiadr3", "VII/155", "B/mk", "2MASS"])
def test_vizier_ids_still_go_to_vizier(monkeypatch, catalog_id):
    import astroquery.vizier

    from astro_semsearch.crossmatch import looks_like_path

    asked = []

    class FakeVizier:
        def __init__(self, *args, **kwargs):
            pass

        def query_region(self, coords, radius, catalog):
            asked.append(catalog)
            return []

    monkeypatch.setattr(astroquery.vizier, "Vizier", FakeVizier)
    assert not looks_like_path(catalog_id)
    crossmatch(results_table(3), catalog_id)
    assert asked == [catalog_id]


def test_an_existing_file_with_a_vizier_like_name_is_read(tmp_path, monkeypatch):
    res = results_table(5)
    (tmp_path / "J").mkdir()
    Table({"ra": res["ra"][:1], "dec": res["dec"][:1], "tag": ["x"]}).write(tmp_path / "J" / "cat", format="fits")
    monkeypatch.chdir(tmp_path)
    out = crossmatch(res, "J/cat", 1 * u.arcsec, join_type="inner")
    assert list(out["tag"]) == ["x"]
