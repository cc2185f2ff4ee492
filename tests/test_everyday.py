"""What a user meets first: result files that keep their provenance, printouts, messages that say what to do."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from astro_semsearch import cite, conf, crossmatch, semantic_search, similar_to
from astro_semsearch._meta import read_results
from astro_semsearch.cli import main
from astro_semsearch.exceptions import InvalidInputError, ServiceUnreachableError
from astro_semsearch.index import GalaxyIndex
from astro_semsearch.search.results import Results
from astro_semsearch.search.scores import hit_statistics


@pytest.fixture(scope="module")
def index_dir(make_tiny_index):
    """30 galaxies with two long catalogue columns (for the printing tests) from an SDSS DR7 survey (for cite)."""
    return make_tiny_index(30, 3, "everyday", survey="SDSS DR7",
                           a_catalogue_column=lambda rng, n: rng.uniform(0, 1, n),
                           another_catalogue_column=lambda rng, n: rng.uniform(0, 1, n))


@pytest.fixture
def hits(index_dir, tiny_model):
    return semantic_search("ring galaxy", k=12, index=index_dir, model=tiny_model)


# --------------------------------------------------------------------------- provenance through files
def test_a_fits_file_keeps_the_provenance_and_cite_reads_it(hits, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cannot be added to FITS Header - skipping"
        hits.write(tmp_path / "hits.fits")
    back = Table.read(tmp_path / "hits.fits")
    assert isinstance(back.meta["astro_semsearch"], str)  # a FITS header holds JSON text
    assert "york2000sdss" in cite(back)  # the survey entry, read from that text
    restored = read_results(tmp_path / "hits.fits")
    assert restored.meta["astro_semsearch"]["query"] == hits.meta["astro_semsearch"]["query"]
    assert isinstance(hits.meta["astro_semsearch"], dict)  # writing did not flatten the table in hand


def test_a_votable_keeps_the_provenance_in_info_elements(hits, tmp_path):
    from astropy.io.votable import parse_single_table

    path = tmp_path / "hits.vot"
    hits.write(path, format="votable")
    infos = {i.name: i.value for i in parse_single_table(path).infos}  # what TOPCAT and pyvo see
    assert json.loads(infos["astro_semsearch"])["query"] == "ring galaxy"
    restored = read_results(path)
    assert restored.meta["astro_semsearch"]["query"] == "ring galaxy"
    assert restored["ra"].unit == hits["ra"].unit and list(restored["object_id"]) == list(hits["object_id"])
    assert "york2000sdss" in cite(restored)
    with pytest.raises(OSError, match="already exists"):
        hits.write(path, format="votable")  # as astropy's own writer refuses
    hits.write(path, format="votable", overwrite=True, tabledata_format="binary")
    assert read_results(path).meta["astro_semsearch"]["query"] == "ring galaxy"
    # astropy's other arguments, taken as its writer takes them: table_id positionally, serialize_method
    masked = type(hits)(hits, masked=True)  # still a result table, written by astro_semsearch
    masked["score"].mask[0] = True
    masked.write(tmp_path / "m.vot", "found", format="votable", serialize_method="data_mask")
    back = parse_single_table(tmp_path / "m.vot")
    assert back.ID == "found" and back.to_table()["score"].mask.tolist() == masked["score"].mask.tolist()
    assert read_results(tmp_path / "m.vot").meta["astro_semsearch"]["query"] == "ring galaxy"


def test_cli_writes_a_votable_with_its_provenance_and_cites_it(index_dir, tiny_model_dir, tmp_path, capsys):
    path = tmp_path / "hits.xml"
    assert main(["search", "ring galaxy", "-k", "4", "--index", str(index_dir), "--model", str(tiny_model_dir),
                 "-o", str(path)]) == 0
    assert "keeps no table metadata" not in capsys.readouterr().err
    assert main(["cite", str(path)]) == 0
    assert "york2000sdss" in capsys.readouterr().out


def test_cli_cite_of_a_fits_result_and_of_a_crossmatch_made_from_it(index_dir, tiny_model_dir, tmp_path, capsys):
    fits_path, cat_path, xm_path = tmp_path / "hits.fits", tmp_path / "cat.ecsv", tmp_path / "xm.ecsv"
    assert main(["search", "ring galaxy", "-k", "4", "--index", str(index_dir), "--model", str(tiny_model_dir),
                 "-o", str(fits_path)]) == 0
    t = Table.read(fits_path)
    Table({"name": ["A"], "ra": [t["ra"][0]], "dec": [t["dec"][0]]}).write(cat_path)
    assert main(["crossmatch", str(fits_path), str(cat_path), "-o", str(xm_path)]) == 0
    assert isinstance(Table.read(xm_path).meta["astro_semsearch"], dict)  # dicts again in the ECSV
    capsys.readouterr()
    for path in (fits_path, xm_path):
        assert main(["cite", str(path)]) == 0
        assert "york2000sdss" in capsys.readouterr().out


def test_formats_without_metadata_say_so(index_dir, tiny_model_dir, tmp_path, capsys):
    base = ["search", "ring galaxy", "-k", "3", "--index", str(index_dir), "--model", str(tiny_model_dir)]
    assert main([*base, "-o", str(tmp_path / "hits.csv")]) == 0
    assert "keeps no table metadata" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "hits.ecsv")]) == 0
    assert "keeps no table metadata" not in capsys.readouterr().err


# --------------------------------------------------------------------------- printing
def test_a_longer_table_prints_as_many_columns_as_a_short_one(hits):
    short, long = hits[:3].pformat(max_width=120)[0].split(), hits.pformat(max_width=120)[0].split()
    assert long == short and "a_catalogue_column" in long  # a "Length = 12 rows" line is not a column width


def test_pprint_all_and_pformat_all_show_every_column(hits, capsys):
    lines = hits.pformat_all()
    assert len(lines) == len(hits) + 3
    assert "another_catalogue_column" in lines[0] and "viewer_url" not in lines[0]
    hits.pprint_all()
    assert "another_catalogue_column" in capsys.readouterr().out


def test_cli_crossmatch_printout_shows_what_matched_first(index_dir, tiny_model_dir, tmp_path, capsys):
    hits_path, cat_path = tmp_path / "hits.ecsv", tmp_path / "cat.ecsv"
    assert main(["search", "ring galaxy", "-k", "5", "--index", str(index_dir), "--model", str(tiny_model_dir),
                 "-o", str(hits_path)]) == 0
    t = Table.read(hits_path)
    Table({"lens_name": ["L1"], "ra": [t["ra"][1]], "dec": [t["dec"][1]]}).write(cat_path)
    capsys.readouterr()
    assert main(["crossmatch", str(hits_path), str(cat_path), "--radius", "1arcsec"]) == 0
    captured = capsys.readouterr()
    assert "1 of 5 results matched within 1 arcsec" in captured.err
    assert captured.out.splitlines()[0].split()[:4] == ["rank", "object_id", "separation", "lens_name"]


# --------------------------------------------------------------------------- scores
def test_a_hit_never_scores_below_its_own_copy_in_the_background():
    background = np.sort(np.array([0.1, 0.2, 0.3, 0.8], dtype=np.float32)).astype(np.float64)
    # The same galaxy's score from FAISS and from NumPy, a float32 rounding apart, either way.
    percentile, _ = hit_statistics(background, np.array([0.8 + 3e-7, 0.8 - 3e-7, 0.3]))
    assert percentile.tolist() == [75.0, 75.0, 50.0]


# --------------------------------------------------------------------------- messages that say what to do
def test_mistyped_option_is_reported_by_its_command_with_the_nearest_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", "ring", "galaxy", "--negatve", "edge-on"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: astro-semsearch search" in err and "did you mean --negative?" in err


def test_index_info_of_a_missing_path_prints_only_the_error(tmp_path, capsys):
    assert main(["index", "info", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "does not exist" in captured.err


def test_crossmatch_names_the_table_that_lacks_coordinates():
    with pytest.raises(InvalidInputError, match="in the results table") as err:
        crossmatch(Table({"x": [1]}), Table({"ra": [1.0], "dec": [1.0]}))
    assert "ra_column" not in str(err.value)  # that option is the catalogue's
    with pytest.raises(InvalidInputError, match="in the catalogue.*ra_column="):
        crossmatch(Table({"ra": [1.0], "dec": [1.0]}), Table({"x": [1.0]}))


def test_an_unreachable_vizier_points_at_the_local_file_that_was_meant(tmp_path, monkeypatch):
    from legacy_server import closed_port

    # VizieR is unreachable for real: every request goes to a proxy on a closed local port.
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    Table({"ra": [1.0], "dec": [1.0]}).write(tmp_path / "mycat.ecsv")
    with pytest.raises(ServiceUnreachableError, match="taken as a VizieR catalogue id.*did you mean the file mycat"):
        crossmatch(Table({"ra": [1.0], "dec": [1.0]}), "mycat", radius=2 * u.arcsec)


def test_similar_to_near_an_indexed_galaxy_says_why_it_fetched(index_dir, tiny_model):
    from legacy_server import closed_port

    index = GalaxyIndex.load(index_dir)
    galaxy = index.coords()[0]
    near = galaxy.directional_offset_by(0 * u.deg, 1.5 * u.arcsec)
    with conf.set_temp("legacysurvey_url", f"http://127.0.0.1:{closed_port()}"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # framing unknown
        with pytest.raises(ServiceUnreachableError) as err:
            similar_to(near, k=2, index=index, model=tiny_model)
    note = " ".join(getattr(err.value, "__notes__", []))
    assert "G00" in note and "1.50 arcsec away" in note and "max_distance=2 * u.arcsec" in note
    twins = similar_to(near, k=2, index=index, model=tiny_model, max_distance=2 * u.arcsec)
    assert twins.meta["astro_semsearch"]["target_object_id"] == "G00"


def test_an_rgba_array_is_searched_as_its_rgb(index_dir, tiny_model):
    rgb = np.random.default_rng(5).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((32, 32, 1), 255, np.uint8)], axis=-1)
    a = similar_to(rgba, k=3, index=index_dir, model=tiny_model)
    b = similar_to(rgb, k=3, index=index_dir, model=tiny_model)
    assert a["object_id"].tolist() == b["object_id"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], atol=1e-5)


def test_results_keep_their_class_through_crossmatch(hits):
    out = crossmatch(hits, SkyCoord(hits["ra"][:1], hits["dec"][:1]), radius=1 * u.arcsec)
    assert isinstance(out, Results)


def test_write_leaves_other_meta_and_the_callers_arguments_alone(hits, tmp_path):
    hits.meta["comments"] = ["made for a test", "second line"]
    hits.write(tmp_path / "hits.txt", format="ascii.commented_header")  # a list of comments stays a list
    assert Table.read(tmp_path / "hits.txt", format="ascii.commented_header").meta["comments"][:2] == \
        ["made for a test", "second line"]
    hits.write(tmp_path / "hits.fits")
    assert "second line" in str(Table.read(tmp_path / "hits.fits").meta.get("comments"))
    pytest.importorskip("h5py")
    hits.write(tmp_path / "hits.h5", "mine")  # HDF5's path, given positionally as for any Table
    assert read_results(tmp_path / "hits.h5").meta["astro_semsearch"]["query"] == "ring galaxy"


def test_fits_suffixes_astropy_writes_are_not_reported_as_losing_the_provenance(index_dir, tiny_model_dir,
                                                                                tmp_path, capsys):
    assert main(["search", "ring galaxy", "-k", "3", "--index", str(index_dir), "--model", str(tiny_model_dir),
                 "-o", str(tmp_path / "hits.fts")]) == 0
    assert "keeps no table metadata" not in capsys.readouterr().err
    assert read_results(tmp_path / "hits.fts").meta["astro_semsearch"]["query"] == "ring galaxy"


def test_crossmatch_all_counts_results_not_pairs(tmp_path, capsys):
    hits = Table({"object_id": ["a", "b"], "ra": [10.0, 20.0] * u.deg, "dec": [1.0, 2.0] * u.deg})
    cat = Table({"name": ["X", "Y"], "ra": [10.0, 10.0001], "dec": [1.0, 1.0]})
    hits.write(tmp_path / "hits.ecsv")
    cat.write(tmp_path / "cat.ecsv")
    assert main(["crossmatch", str(tmp_path / "hits.ecsv"), str(tmp_path / "cat.ecsv"), "--all",
                 "--radius", "2arcsec"]) == 0
    assert "1 of 2 results matched, 2 pairs within 2 arcsec" in capsys.readouterr().err


def test_a_mistyped_global_option_is_reported_by_the_top_level_parser(capsys):
    with pytest.raises(SystemExit):
        main(["--tracebak", "index", "info"])
    err = capsys.readouterr().err
    assert "usage: astro-semsearch [-h]" in err and "did you mean --traceback?" in err


def test_the_configuration_template_lists_every_item_at_the_top_of_the_file():
    import io

    from astropy.config import generate_config

    from astro_semsearch.config import Conf

    out = io.StringIO()
    generate_config("astro_semsearch", out)
    text = out.getvalue()
    assert not any(line.startswith("[") for line in text.splitlines())  # no [config] section to get wrong
    for name in Conf().keys():
        assert f"# {name} = " in text, name
