"""Framing by size: each galaxy's cutout spans the model's frame_r90 x R90 (against the local viewer stand-in)."""
import warnings

import legacy_server as _server
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning
from fakes import MeanColourModel

from astro_semsearch.build import build_index
from astro_semsearch.catalog import SIZE_NAMES, column_r90, find_size_column
from astro_semsearch.cli import main
from astro_semsearch.cutouts import LegacySurvey
from astro_semsearch.cutouts.framing import frame_pixscale, model_frame_r90
from astro_semsearch.exceptions import InvalidInputError
from astro_semsearch.thumbnails import result_images

legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)

SIZE = 32


def _cat(**cols):
    n = len(next(iter(cols.values())))
    t = Table({"object_id": [f"g{i}" for i in range(n)], "ra": 10.0 + np.arange(n), "dec": np.full(n, 5.0)})
    for k, v in cols.items():
        t[k] = v
    return t


def _fits_pixscales(server, path="/fits-cutout"):
    """The pixscale asked for each position, in RA order (requests run concurrently)."""
    asked = sorted((float(q["ra"]), float(q["pixscale"])) for q in server.queries if q["_path"] == path)
    return [p for _, p in asked]


def _no_framing_warning(record):
    return not [w for w in record if "framing unknown" in str(w.message)]


def test_shape_r_gives_pixscales_fourfold_apart(legacy_server, tmp_path):
    cat = _cat(shape_r=[1.5, 6.0])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        index = build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE)
    assert _no_framing_warning(record)
    pix = _fits_pixscales(legacy_server)
    assert len(pix) == 2 and pix[1] / pix[0] == pytest.approx(4.0, rel=1e-3)
    # 6.4 x R90 across, R90 = 2.5 x shape_r
    assert pix[0] == pytest.approx(6.4 * 2.5 * 1.5 / SIZE, rel=1e-4)
    col = index.table["pixscale"]
    assert col.unit == u.arcsec / u.pix
    np.testing.assert_allclose(np.asarray(col), pix, rtol=1e-6)
    assert list(index.table["framing"]) == ["size", "size"]
    assert list(index.table["shape_r"]) == [1.5, 6.0]  # the size column is kept, in place
    req = index.manifest["build"]["request"]
    assert req["framing"]["size_column"] == "shape_r" and req["framing"]["frame_r90"] == pytest.approx(6.4)
    assert index.manifest["build"]["framing"] == {"size": 2, "min": 0, "max": 0, "fixed": 0}


@pytest.mark.parametrize("name, value, r90", [("petroR90_r", 10.0, 10.0), ("PETROR90_R", 10.0, 10.0),
                                              ("D26", 1.0, 24.0), ("r90", 7.0, 7.0)])
def test_size_columns_recognised_by_name(legacy_server, tmp_path, name, value, r90):
    build_index(_cat(**{name: [value]}), out=tmp_path / "idx", model=MeanColourModel(), size=SIZE)
    assert _fits_pixscales(legacy_server) == [pytest.approx(6.4 * r90 / SIZE, rel=1e-4)]


def test_quantity_column_named_explicitly_is_r90(legacy_server, tmp_path):
    cat = QTable(_cat(radius=[0.25, 0.5]))
    cat["radius"] = [0.25, 0.5] * u.arcmin
    build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, size_column="radius")
    assert _fits_pixscales(legacy_server) == [pytest.approx(6.4 * 15 / SIZE), pytest.approx(6.4 * 30 / SIZE)]


@pytest.mark.parametrize("kwargs, match", [
    ({"size_column": "nope"}, "size column 'nope' is not in the catalogue"),
    ({"size_column": "mag"}, "has no unit"),
])
def test_bad_size_column_is_a_clear_error(legacy_server, tmp_path, kwargs, match):
    cat = _cat(mag=[17.0, 18.0])
    with pytest.raises(InvalidInputError, match=match):
        build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, **kwargs)
    assert legacy_server.total == 0


def test_missing_sizes_fall_back_and_big_ones_are_capped(legacy_server, tmp_path):
    cat = Table(_cat(shape_r=[3.0, np.nan, -1.0, 0.1, 2000.0]), masked=True)
    cat["shape_r"].mask = [False, False, False, False, False]
    cat["shape_r"].mask[2] = True
    index = build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, pixscale=0.5)
    assert list(index.table["framing"]) == ["size", "fixed", "fixed", "min", "max"]
    pix = np.asarray(index.table["pixscale"])
    np.testing.assert_allclose(pix[:4], [6.4 * 7.5 / SIZE, 0.5, 0.5, 0.262], rtol=1e-4)
    assert pix[4] * SIZE == pytest.approx(1800, rel=1e-4)  # the field is cut to 30 arcmin
    assert index.manifest["build"]["framing"] == {"size": 1, "min": 1, "max": 1, "fixed": 2}


def test_one_warning_without_sizes(legacy_server, tmp_path):
    cat = _cat(mag=[17.0, 18.0, 19.0])
    with pytest.warns(AstropyUserWarning, match="framing unknown") as record:
        index = build_index(cat, out=tmp_path / "idx", model=MeanColourModel(), size=SIZE, chunk_size=1)
    assert sum("framing unknown" in str(w.message) for w in record) == 1
    assert "size_column" in str(record[0].message)
    assert "pixscale" not in index.table.colnames and "framing" not in index.manifest["build"]["request"]
    assert set(_fits_pixscales(legacy_server)) == {0.262}
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        build_index(cat, out=tmp_path / "idx2", model=MeanColourModel(), size=SIZE, size_column=False)
    assert _no_framing_warning(again)


def test_one_warning_for_a_whole_dask_build(tmp_path):
    pytest.importorskip("distributed")
    from astro_semsearch.build import build_index_dask

    with pytest.warns(AstropyUserWarning, match="framing unknown") as record, \
            pytest.raises(InvalidInputError, match="npartitions"):
        build_index_dask(_cat(mag=[17.0, 18.0]), out=tmp_path / "idx", client=object(), npartitions=0)
    assert sum("framing unknown" in str(w.message) for w in record) == 1


def test_per_row_pixscale_in_get_cutouts(legacy_server):
    c = SkyCoord([10, 11], [0, 1], unit="deg")
    t = LegacySurvey().get_cutouts(c, size=SIZE, pixscale=[0.5, 1.0] * u.arcsec)
    assert t["ok"].all() and _fits_pixscales(legacy_server) == [0.5, 1.0]
    assert t.meta["astro_semsearch"]["pixscale"] == "per-row"
    with pytest.raises(InvalidInputError, match="one per position"):
        LegacySurvey().get_cutouts(c, size=SIZE, pixscale=[0.5, 1.0, 2.0])
    with pytest.raises(InvalidInputError, match="bad rows"):
        LegacySurvey().get_cutouts(c, size=SIZE, pixscale=[0.5, -1.0])
    assert legacy_server.total == 2


def test_thumbnails_use_each_rows_field(legacy_server, tmp_path):
    index = build_index(_cat(shape_r=[1.5, 6.0]), out=tmp_path / "idx", model=MeanColourModel(), size=SIZE)
    thumbs = result_images(index.table, index=index, size=16)
    assert [t.shape for t in thumbs] == [(16, 16, 3)] * 2
    jpeg = _fits_pixscales(legacy_server, "/jpeg-cutout")
    # The same field as the embedded cutout: pixscale x 32 px = thumbnail scale x 16 px.
    np.testing.assert_allclose(jpeg, np.asarray(index.table["pixscale"]) * SIZE / 16, rtol=1e-5)
    # ... also for a result table that does not carry the pixscale column.
    legacy_server.queries.clear()
    result_images(index.table["object_id", "ra", "dec"][::-1], index=index, size=8, images=None)
    jpeg = _fits_pixscales(legacy_server, "/jpeg-cutout")
    np.testing.assert_allclose(jpeg, np.asarray(index.table["pixscale"]) * SIZE / 8, rtol=1e-5)


def test_similar_to_frames_a_fetched_position_by_r90(legacy_server, tmp_path):
    from astro_semsearch import similar_to

    model = MeanColourModel()
    index = build_index(_cat(shape_r=[1.5, 6.0, 3.0]), out=tmp_path / "idx", model=model, size=SIZE)
    legacy_server.queries.clear()
    far = SkyCoord(40.0, 5.0, unit="deg")
    hits = similar_to(far, k=2, index=index, model=model, r90=20 * u.arcsec)
    assert len(hits) == 2
    assert _fits_pixscales(legacy_server) == [pytest.approx(6.4 * 20 / 256, rel=1e-4)]
    with pytest.warns(AstropyUserWarning, match="framing unknown.*r90="):
        similar_to(SkyCoord(41.0, 5.0, unit="deg"), k=2, index=index, model=model)
    assert float(legacy_server.queries[-1]["pixscale"]) == pytest.approx(0.262)
    with pytest.raises((ValueError, TypeError), match="r90"):
        similar_to(far, k=2, index=index, model=model, r90=20.0)


def test_cli_size_column(legacy_server, tmp_path, capsys, tiny_model_dir):
    _cat(size=[1.0 / 60, 2.0 / 60]).write(tmp_path / "cat.ecsv")
    cat = Table.read(tmp_path / "cat.ecsv")
    cat["size"].unit = u.deg
    cat.write(tmp_path / "cat.ecsv", overwrite=True)
    assert main(["build-index", str(tmp_path / "cat.ecsv"), "--out", str(tmp_path / "idx"), "--size", str(SIZE),
                 "--model", str(tiny_model_dir), "--size-column", "size"]) == 0
    assert "framing by size: 2 framed by size" in capsys.readouterr().out
    assert _fits_pixscales(legacy_server) == [pytest.approx(6.4 * 60 / SIZE), pytest.approx(6.4 * 120 / SIZE)]


def test_the_rule_and_the_names():
    assert SIZE_NAMES[:2] == ("petror90_r", "r90") and "shape_r" in SIZE_NAMES and "d26" in SIZE_NAMES
    assert find_size_column(Table({"D26": [1.0]})) == "D26"
    r90, how = column_r90(Table({"d26": [2.0]}), "d26")
    assert r90[0] == pytest.approx(48.0) and "isophotal diameter" in how
    f = frame_pixscale([5.0, 50.0], size=100, frame_r90=8.0, fixed_pixscale=0.3)
    np.testing.assert_allclose(f.pixscale, [0.4, 4.0])
    assert model_frame_r90(type("M", (), {"config": {"frame_r90": 5.0}})()) == 5.0
    from astro_semsearch.model import DEFAULT_CONFIG

    assert DEFAULT_CONFIG["frame_r90"] == pytest.approx(6.4)


@pytest.mark.parametrize("module", ["astro_semsearch.catalog", "astro_semsearch.cutouts.framing",
                                    "astro_semsearch.cutouts.brickgrid", "astro_semsearch.cutouts.bricks",
                                    "astro_semsearch.build.partitions"])
def test_module_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
