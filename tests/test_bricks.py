"""LegacySurveyBricks: stamps resampled from survey-like brick files of an analytic sky.

The bricks are small (200 x 200 pixels at 0.262"/pixel, a little larger
than their 50" bricks, so neighbours overlap as the survey's do), written
RICE-compressed as the survey's ``.fits.fz`` are, from `sky.SkyModel`, whose
flux is known everywhere. The same sky is served by the local viewer
stand-in, so the brick path and the HTTP path can be compared pixel by pixel.
"""
import contextlib
import pickle

import numpy as np
import pytest
from astropy import units as u
from astropy.config import paths
from astropy.coordinates import SkyCoord
from astropy.table import Table
from fakes import MeanColourModel
from legacy_server import LegacyServer
from sky import PIXSCALE, SkyModel, brick_grid, render, tan_wcs, write_brick, write_bricks

from astro_semsearch import conf
from astro_semsearch.build import build_index
from astro_semsearch.cutouts import LegacySurvey, LegacySurveyBricks
from astro_semsearch.cutouts.brickgrid import BrickGrid
from astro_semsearch.exceptions import CutoutError, InvalidInputError

RA0, DEC0, SPACING, BRICK = 150.0, 2.0, 50.0, 200
TABLE = brick_grid(RA0, DEC0, nra=3, ndec=2, spacing_arcsec=SPACING)  # 6 bricks, 1000p100 ... 1002p101


def _brick(name):
    return TABLE[list(TABLE["brickname"]).index(name)]


def _corner():
    """The corner shared by bricks 1000p100, 1001p100, 1000p101 and 1001p101."""
    a = _brick("1000p100")
    return float(a["ra2"]), float(a["dec2"])


@pytest.fixture(scope="module")
def sky():
    s = SkyModel(RA0 + 0.01, DEC0 + 0.007, 0.03, n=40, seed=3)
    return s.add(*_corner(), amp=3.0, sigma_arcsec=3.0)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, sky):
    root = tmp_path_factory.mktemp("mirror")
    write_bricks(root, TABLE, sky, BRICK)
    return root


@contextlib.contextmanager
def _server(tmp_path, **kw):
    cache = tmp_path / "astropy-cache"
    cache.mkdir(exist_ok=True)
    with LegacyServer(**kw) as srv, paths.set_temp_cache(str(cache)), \
            conf.set_temp("legacysurvey_url", srv.url), conf.set_temp("backoff", 0.01):
        yield srv


def _coords(*names_offsets):
    """Positions at fractions (fx, fy) of a brick's width/height from its centre."""
    ra, dec = [], []
    for name, fx, fy in names_offsets:
        b = _brick(name)
        ra.append(b["ra"] + fx * (b["ra2"] - b["ra1"]))
        dec.append(b["dec"] + fy * (b["dec2"] - b["dec1"]))
    return SkyCoord(ra, dec, unit="deg")


def _truth(sky, coords, size, pix):
    pix = np.broadcast_to(pix, len(coords))
    return np.stack([render(sky, tan_wcs(c.ra.deg, c.dec.deg, size, p), size) for c, p in zip(coords, pix)])


# ---------------------------------------------------------------------------------------------- the tiling rule
@pytest.mark.parametrize("ra, dec, name", [(150.1, 2.2, "1501p022"), (0.1, -0.2, "0001m002"),
                                           (112.6, 22.2, "1126p222"), (359.95, 0.05, "3598p000"),
                                           (0.01, 0.0, "0001p000"), (10.0, 89.99, "1800p900")])
def test_survey_rule_names_real_bricks(ra, dec, name):
    assert BrickGrid().locate([ra], [dec]).tolist() == [name]


def test_survey_rule_centres_and_a_table_agree():
    grid = BrickGrid()
    assert grid.centre("1501p022") == pytest.approx((150.125, 2.25))
    assert grid.centre("0001m002") == pytest.approx((0.125, -0.25))
    # The last brick of the equator row is centred at RA 359.875: its name is 3598p000; 3599p000 is none.
    assert grid.centre("3598p000") == pytest.approx((359.875, 0.0))
    with pytest.raises(InvalidInputError, match="3599p000.*3598p000"):
        grid.centre("3599p000")
    # A table of four real bricks (as survey-bricks.fits.gz lists them) gives the same answers.
    rows = [(n, r, d, r - 0.125, r + 0.125, d - 0.125, d + 0.125)
            for n, r, d in [("1501p020", 150.125, 2.0), ("1503p020", 150.375, 2.0),
                            ("1501p022", 150.125, 2.25), ("1503p022", 150.375, 2.25)]]
    table = BrickGrid(Table(rows=rows, names=["BRICKNAME", "RA", "DEC", "RA1", "RA2", "DEC1", "DEC2"]))
    rng = np.random.default_rng(0)
    ra, dec = rng.uniform(150.0, 150.5, 200), rng.uniform(1.875, 2.375, 200)
    assert (table.locate(ra, dec) == grid.locate(ra, dec)).all()
    assert table.locate([151.0], [2.0]).tolist() == [""]  # no brick of the table there


# ---------------------------------------------------------------------------------------------- (a) same pixels
def test_same_pixels_as_the_http_path(mirror, sky, tmp_path):
    coords = _coords(("1000p100", 0.0, 0.0), ("1001p100", 0.2, -0.1), ("1001p101", 0.45, 0.1))
    pix = np.array([PIXSCALE, 0.3, PIXSCALE])
    bricks = LegacySurveyBricks(mirror, brick_size=BRICK).get_cutouts(coords, size=48, pixscale=pix)
    with _server(tmp_path, sky=sky):
        http = LegacySurvey().get_cutouts(coords, size=48, pixscale=pix)
    assert bricks.colnames == http.colnames
    for c in bricks.colnames:
        assert bricks[c].shape == http[c].shape and bricks[c].dtype.kind == http[c].dtype.kind, c
    assert bricks["image"].dtype == np.float32
    assert bricks["ok"].all() and bricks["in_footprint"].all()
    peak = float(np.max(http["image"]))
    # Bilinear resampling of the brick pixels against the sky at each stamp pixel's centre.
    np.testing.assert_allclose(bricks["image"], http["image"], atol=2e-3 * peak)
    np.testing.assert_allclose(bricks["image"], _truth(sky, coords, 48, pix), atol=2e-3 * peak)


def test_fast_bilinear_path_equals_reproject_interp(mirror):
    coords = _coords(("1000p100", 0.1, 0.0), ("1001p100", -0.45, 0.45))  # inside; over a corner
    pix = [PIXSCALE, 0.35]
    fast = LegacySurveyBricks(mirror, brick_size=BRICK).get_cutouts(coords, size=40, pixscale=pix)
    ref = LegacySurveyBricks(mirror, brick_size=BRICK, resample="interp").get_cutouts(coords, size=40, pixscale=pix)
    assert fast["ok"].all() and ref["ok"].all()
    np.testing.assert_allclose(fast["image"], ref["image"], atol=1e-5 * float(np.max(ref["image"])))


@pytest.mark.parametrize("pixscale", [0.5, 1.0])
def test_coarse_stamps_average_the_brick_pixels(mirror, sky, pixscale):
    c = _coords(("1001p100", 0.0, 0.0), ("1001p100", 0.4, 0.4))  # inside; over a corner
    t = LegacySurveyBricks(mirror, brick_size=BRICK).get_cutouts(c, size=24, pixscale=pixscale)
    adaptive = LegacySurveyBricks(mirror, brick_size=BRICK, resample="adaptive").get_cutouts(c, size=24,
                                                                                            pixscale=pixscale)
    truth = _truth(sky, c, 24, pixscale)
    assert t["ok"].all() and adaptive["ok"].all()
    # Averages, not point samples: close to the sky, a little smoother; close to reproject_adaptive's kernel.
    assert np.abs(t["image"] - truth).max() < 0.1 * truth.max()
    assert t["image"].max() <= truth.max() * 1.01
    assert np.abs(t["image"] - adaptive["image"]).max() < 0.05 * truth.max()


# ---------------------------------------------------------------------------------------------- (b) brick edges
def test_stamp_over_a_corner_is_completed_from_the_neighbours(mirror, sky, tmp_path):
    ra, dec = _corner()
    c = SkyCoord([ra], [dec], unit="deg")
    src = LegacySurveyBricks(mirror, brick_size=BRICK)
    t = src.get_cutouts(c, size=64)
    assert t["ok"][0] and t["error"][0] == ""
    used = {p.split("legacysurvey-")[1][:8] for p in src.opened}
    assert used == {"1000p100", "1001p100", "1000p101", "1001p101"}
    # The same sky in one big brick centred on the corner: the single-brick result.
    one = tmp_path / "one"
    write_brick(one, "1000p100", ra, dec, sky, 400, flat=True)
    single = LegacySurveyBricks(one, brick_size=400, bricks=Table(
        rows=[("1000p100", ra, dec, ra - 0.1, ra + 0.1, dec - 0.1, dec + 0.1)],
        names=["brickname", "ra", "dec", "ra1", "ra2", "dec1", "dec2"])).get_cutouts(c, size=64)
    # Both within bilinear interpolation error (h^2/8 f'' at the 3" blob's peak: 0.14% of it) of the sky.
    peak = float(np.max(single["image"]))
    np.testing.assert_allclose(t["image"], single["image"], atol=2e-3 * peak)
    np.testing.assert_allclose(t["image"], _truth(sky, c, 64, PIXSCALE), atol=2e-3 * peak)


def test_missing_neighbour_flags_the_row(tmp_path, sky):
    root = tmp_path / "partial"
    write_bricks(root, TABLE, sky, BRICK, skip=("1001p100",))
    coords = _coords(("1000p100", 0.0, 0.0), ("1000p100", 0.45, 0.0))  # the second reaches east into 1001p100
    src = LegacySurveyBricks(root, brick_size=BRICK)
    t = src.get_cutouts(coords, size=64, errors="flag")
    assert list(t["ok"]) == [True, False]
    assert "east edge of brick 1000p100" in t["error"][1] and "1001p100" in t["error"][1]
    assert np.isnan(t["image"][1]).all() and not t["in_footprint"][1]
    with pytest.raises(CutoutError, match=r"RA=150\.\d+ .*east edge of brick 1000p100"):
        src.get_cutouts(coords[1:], size=64)
    zero = LegacySurveyBricks(root, brick_size=BRICK, missing_neighbour="zero").get_cutouts(coords[1:], size=64)
    assert zero["ok"][0] and (zero["image"][0][:, :, :8] == 0).all()


def test_outside_the_survey_is_blank(mirror):
    t = LegacySurveyBricks(mirror, brick_size=BRICK).get_cutouts(SkyCoord([10.0], [-40.0], unit="deg"), size=16)
    assert t["ok"][0] and not t["in_footprint"][0] and (t["image"][0] == 0).all()


# ---------------------------------------------------------------------------------------------- (d) one open each
def test_each_brick_file_is_opened_once_per_build(mirror, tmp_path):
    rng = np.random.default_rng(5)
    names = rng.choice(TABLE["brickname"][:4], 12)  # bricks in no order, across chunks
    coords = _coords(*[(n, fx, fy) for n, fx, fy in zip(names, rng.uniform(-0.2, 0.2, 12),
                                                         rng.uniform(-0.2, 0.2, 12))])
    cat = Table({"object_id": [f"s{i}" for i in range(12)], "ra": coords.ra.deg, "dec": coords.dec.deg,
                 "shape_r": rng.uniform(0.5, 1.5, 12)})
    src = LegacySurveyBricks(mirror, brick_size=BRICK, max_bricks=6)
    index = build_index(cat, out=tmp_path / "idx", source=src, model=MeanColourModel(), size=32, chunk_size=3)
    assert index.ntotal == 12 and index.manifest["build"]["request"]["source"] == "LegacySurveyBricks"
    assert len(src.opened) == 3 * len(set(names)) and set(src.opened.values()) == {1}
    assert index.manifest["build"]["framing"]["size"] + index.manifest["build"]["framing"]["min"] == 12


def test_cli_build_from_bricks(mirror, tmp_path, tiny_model_dir, capsys):
    from astro_semsearch.cli import main
    from astro_semsearch.index import GalaxyIndex

    c = _coords(("1000p100", 0.0, 0.0), ("1001p101", 0.1, -0.1), ("1002p100", 0.0, 0.2))
    Table({"object_id": ["a", "b", "c"], "ra": c.ra.deg, "dec": c.dec.deg, "shape_r": [1.0, 2.0, 3.0]}).write(
        tmp_path / "cat.ecsv")
    assert main(["build-index", str(tmp_path / "cat.ecsv"), "--out", str(tmp_path / "idx"), "--size", "32",
                 "--model", str(tiny_model_dir), "--source", "bricks", "--bricks", str(mirror),
                 "--brick-size", str(BRICK)]) == 0
    assert "3 galaxies indexed" in capsys.readouterr().out
    index = GalaxyIndex.load(tmp_path / "idx")
    assert index.manifest["build"]["request"]["source"] == "LegacySurveyBricks"


# ---------------------------------------------------------------------------------------------- remote files
def test_brick_files_are_fetched_once_through_the_cache(mirror, tmp_path):
    c = _coords(("1001p100", 0.1, 0.1), ("1001p100", -0.1, 0.0), ("1002p101", 0.0, 0.0))
    local = LegacySurveyBricks(mirror, brick_size=BRICK).get_cutouts(c, size=32)
    with _server(tmp_path, files=mirror) as srv:
        url = srv.url + "/files"
        got = LegacySurveyBricks(url=url, bricks=TABLE, brick_size=BRICK).get_cutouts(c, size=32)
        assert srv.total == 6  # two bricks x g, r, z
        again = LegacySurveyBricks(url=url, bricks=TABLE, brick_size=BRICK).get_cutouts(c, size=32)
        assert srv.total == 6  # all from astropy's download cache
        far = LegacySurveyBricks(url=url, brick_size=BRICK).get_cutouts(SkyCoord([10], [5], unit="deg"), size=8)
    np.testing.assert_allclose(got["image"], local["image"], rtol=1e-6)
    np.testing.assert_allclose(again["image"], local["image"], rtol=1e-6)
    assert not far["in_footprint"][0]  # the server has no such brick (404): outside the survey


# ---------------------------------------------------------------------------------------------- checks
def test_bad_inputs_are_refused(mirror, tmp_path):
    src = LegacySurveyBricks(mirror, brick_size=BRICK)
    c = _coords(("1000p100", 0.0, 0.0))
    with pytest.raises(InvalidInputError, match="FITS flux stamps only"):
        src.get_cutouts(c, size=16, format="jpeg")
    with pytest.raises(InvalidInputError, match="bands"):
        src.get_cutouts(c, size=16, bands="gq")
    with pytest.raises(InvalidInputError, match="3000"):
        src.get_cutouts(c, size=4000)
    with pytest.raises(CutoutError, match="brick_size"):
        LegacySurveyBricks(mirror).get_cutouts(c, size=16)
    with pytest.raises(InvalidInputError, match="not both"):
        LegacySurveyBricks(mirror, url="http://example.invalid")
    with pytest.raises(FileNotFoundError):
        LegacySurveyBricks(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="lacks"):
        LegacySurveyBricks(mirror, bricks=Table({"brickname": ["x"], "ra": [1.0]}))


def test_a_used_source_pickles_without_its_open_files(mirror):
    src = LegacySurveyBricks(mirror, brick_size=BRICK)
    c = _coords(("1000p100", 0.0, 0.0))
    first = src.get_cutouts(c, size=16)
    copy = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(copy.get_cutouts(c, size=16)["image"], first["image"])
    src.close()


def test_flat_directory_and_survey_rule(tmp_path, sky):
    # A brick of the survey's own tiling, in a flat directory, found without any bricks table.
    ra, dec = BrickGrid().centre("1501p022")
    s = SkyModel(ra, dec, 0.002, n=5, seed=1)
    write_brick(tmp_path, "1501p022", ra, dec, s, 100, flat=True)
    t = LegacySurveyBricks(tmp_path, brick_size=100).get_cutouts(SkyCoord([ra], [dec], unit="deg"), size=16,
                                                                  pixscale=0.262 * u.arcsec)
    assert t["ok"][0] and t["in_footprint"][0]
    np.testing.assert_allclose(t["image"], _truth(s, SkyCoord([ra], [dec], unit="deg"), 16, PIXSCALE),
                               atol=1e-3 * float(np.max(t["image"])))


# ---------------------------------------------------------------------------------------------- (e) Dask
@pytest.mark.filterwarnings("ignore:Couldn't detect a suitable IP address:RuntimeWarning")
def test_dask_build_over_bricks_matches_the_single_process_build(mirror, tmp_path, tiny_model_dir):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from astro_semsearch.build import build_index_dask
    from astro_semsearch.model import load_model

    rng = np.random.default_rng(7)
    names = rng.choice(TABLE["brickname"], 14)
    coords = _coords(*[(n, fx, fy) for n, fx, fy in zip(names, rng.uniform(-0.2, 0.2, 14),
                                                         rng.uniform(-0.2, 0.2, 14))])
    cat = Table({"object_id": [f"d{i:02d}" for i in range(14)], "ra": coords.ra.deg, "dec": coords.dec.deg,
                 "shape_r": rng.uniform(0.5, 2.0, 14)})
    src = LegacySurveyBricks(mirror, brick_size=BRICK)
    single = build_index(cat, out=tmp_path / "single", source=src, model=load_model(tiny_model_dir), size=32,
                         kind="flat", progress=False)
    cluster = LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                           worker_dashboard_address="127.0.0.1:0")
    with Client(cluster) as client:
        dask = build_index_dask(cat, out=tmp_path / "dask", client=client, npartitions=3, merge=True,
                                model=str(tiny_model_dir), source=LegacySurveyBricks(mirror, brick_size=BRICK),
                                partition_by="brick", size=32)
    cluster.close()
    # Rows come brick by brick; the content is the single-process build's.
    order = np.argsort(names, kind="stable")
    assert list(dask.table["object_id"]) == list(cat["object_id"][order])
    rows = single.rows_of(list(dask.table["object_id"]))
    np.testing.assert_allclose(dask.vectors(), single.vectors(rows), atol=1e-6)
    np.testing.assert_allclose(np.asarray(dask.table["pixscale"]), np.asarray(single.table["pixscale"])[rows])
    assert dask.manifest["dask"]["partitions"] <= 3
    assert dask.manifest["build"]["request"]["source"] == "LegacySurveyBricks"
