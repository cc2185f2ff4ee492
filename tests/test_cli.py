"""The astro-semsearch command line, run in-process through cli.main."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

import astro_semsearch
import legacy_server as _server
from astro_semsearch.cli import build_parser, main
from astro_semsearch.index import GalaxyIndex


legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)


@pytest.fixture(scope="module")
def index_dir(make_tiny_index):
    """40 galaxies embedded by the tiny real model (random images)."""
    return make_tiny_index(40, 0, "cli-index", mag_r=lambda rng, n: rng.uniform(15, 18, n) * u.mag)


@pytest.fixture
def model_args(tiny_model_dir):
    return ["--model", str(tiny_model_dir)]


def test_parser_has_every_available_stage():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"search", "similar", "crossmatch", "index"} <= set(sub.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert astro_semsearch.__version__ in capsys.readouterr().out


def test_no_command_is_an_error(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_search_prints_a_table(index_dir, model_args, capsys):
    assert main(["search", "ring galaxy", "-k", "5", "--index", str(index_dir), *model_args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["rank", "object_id", "ra", "dec", "score"]
    assert len([line for line in out if line.strip().startswith(("1 ", "2 ", "3 ", "4 ", "5 "))]) == 5


def test_search_writes_ecsv_and_refuses_to_overwrite(index_dir, model_args, tmp_path, capsys):
    out = tmp_path / "hits.ecsv"
    args = ["search", "spiral", "-q", "barred galaxy", "--negative", "edge-on", "-k", "4", "--index", str(index_dir),
            "-o", str(out), *model_args]
    assert main(args) == 0
    hits = Table.read(out)
    assert len(hits) == 4 and hits["ra"].unit == u.deg
    meta = hits.meta["astro_semsearch"]
    assert meta["query"] == ["spiral", "barred galaxy"] and meta["negative"] == "edge-on"
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "   "], "empty or whitespace"),
        (["search", "ring", "-k", "0"], "k must be >= 1"),
        (["similar", "NOPE"], "'NOPE' is not in index"),
        (["similar", "400", "10"], "out of range"),
        (["similar", "10", "95"], "out of range"),
        (["search", "ring", "--model", "/nonexistent/model"], "no model"),
    ],
)
def test_bad_input_exits_2_with_a_message(index_dir, tiny_model_dir, capsys, argv, message):
    model = [] if "--model" in argv else ["--model", str(tiny_model_dir)]
    assert main(argv + ["--index", str(index_dir), *model]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_similar_by_id_and_by_position(index_dir, capsys):
    assert main(["similar", "G03", "-k", "3", "--index", str(index_dir)]) == 0
    by_id = capsys.readouterr().out
    assert "G03 " not in by_id and "score" in by_id
    t = GalaxyIndex.load(index_dir).table[3]
    assert main(["similar", f"{t['ra']:.7f} {t['dec']:.7f}", "-k", "3", "--index", str(index_dir)]) == 0
    assert capsys.readouterr().out == by_id


def test_r90_options_frame_a_fetched_cutout(index_dir, model_args, legacy_server, capsys):
    far = "10 -20"  # inside the local stand-in's footprint, far from every indexed galaxy
    assert main(["similar", far, "--r90", "20", "-k", "2", "--index", str(index_dir), *model_args]) == 0
    assert main(["search", "spiral", "--like", far, "--like-r90", "15", "-k", "2", "--index", str(index_dir),
                 *model_args]) == 0
    asked = [float(q["pixscale"]) for q in legacy_server.queries if q["_path"] == "/fits-cutout"]
    assert asked == pytest.approx([0.5, 0.375], abs=1e-4)  # 6.4 x R90 over 256 px
    assert main(["search", "spiral", "--like-r90", "10", "--index", str(index_dir), *model_args]) == 2
    assert "give --like as well" in capsys.readouterr().err
    # an object id is embedded as indexed: an R90 for it is refused in flag words, before any fetch
    assert main(["search", "spiral", "--like", "G03", "--like-r90", "10", "--index", str(index_dir),
                 *model_args]) == 2
    assert "--like-r90 frames the cutout fetched for an 'RA DEC' position; --like 'G03' is an object id" in \
        capsys.readouterr().err
    assert main(["similar", "G03", "--r90", "10", "--index", str(index_dir), *model_args]) == 2
    assert "leave --r90 out" in capsys.readouterr().err
    assert len(asked) == len([q for q in legacy_server.queries if q["_path"] == "/fits-cutout"])


def test_crossmatch_command(index_dir, tmp_path, capsys):
    hits_path, cat_path, out_path = tmp_path / "hits.ecsv", tmp_path / "cat.ecsv", tmp_path / "xm.ecsv"
    assert main(["similar", "G00", "-k", "6", "--index", str(index_dir), "-o", str(hits_path)]) == 0
    hits = Table.read(hits_path)
    Table({"name": ["L1"], "ra": [hits["ra"][2]] * u.deg, "dec": [hits["dec"][2]] * u.deg}).write(cat_path)
    assert main(["crossmatch", str(hits_path), str(cat_path), "--radius", "2arcsec", "-o", str(out_path)]) == 0
    xm = Table.read(out_path)
    assert len(xm) == 6 and list(xm["name"].mask).count(False) == 1 and xm["name"][2] == "L1"
    assert main(["crossmatch", str(hits_path), str(cat_path), "--radius", "2", "--join", "inner"]) == 2
    assert "no unit" in capsys.readouterr().err
    assert main(["crossmatch", str(tmp_path / "none.ecsv"), str(cat_path)]) == 2
    assert main(["crossmatch", str(hits_path), str(cat_path), "--radius", "1deg", "--join", "inner"]) == 0
    assert "L1" in capsys.readouterr().out


def test_index_info(index_dir, capsys):
    assert main(["index", "info", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "cli-index" in out and "galaxies     40" in out and "sha256" in out and "tiny" in out
    assert main(["index", "info", str(index_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 40
    assert main(["index", "info", str(index_dir / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_index_info_on_a_sharded_index(tmp_path, capsys):
    from astro_semsearch.index import ShardedIndex

    rng = np.random.default_rng(4)
    t = Table({"object_id": [f"S{i}" for i in range(30)], "ra": rng.uniform(0, 360, 30),
               "dec": rng.uniform(-60, 60, 30)})
    ShardedIndex.build(rng.normal(size=(30, 4)).astype(np.float32), t, tmp_path / "sharded", shard_size=10)
    assert main(["index", "info", str(tmp_path / "sharded")]) == 0
    out = capsys.readouterr().out
    assert "sharded by rows" in out and "galaxies     30" in out and out.count("shard-0000") == 3


def test_a_bug_is_not_reported_as_bad_input(index_dir, monkeypatch):
    """Only the package's own errors, file errors and unit errors are one-line messages; a bug shows."""
    import astro_semsearch.search.api as api

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(api, "ranked", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["similar", "G03", "--index", str(index_dir)])


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "astro_semsearch.cli", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "search" in proc.stdout and "crossmatch" in proc.stdout


# --------------------------------------------------------------------------- habits of astropy/astroquery users
def test_unquoted_words_are_one_query(index_dir, model_args, tmp_path):
    out = tmp_path / "h.ecsv"
    assert main(["search", "ring", "galaxy", "--index", str(index_dir), "-o", str(out), *model_args]) == 0
    back = Table.read(out)
    assert back.meta["astro_semsearch"]["query"] == "ring galaxy"
    assert len(back) == astro_semsearch.conf.default_k  # one default k, the same as Python's


def test_positions_in_degrees_or_sexagesimal(index_dir, capsys):
    from astropy.coordinates import SkyCoord

    t = GalaxyIndex.load(index_dir).table[3]
    c = SkyCoord(t["ra"] * u.deg, t["dec"] * u.deg)
    assert main(["similar", "G03", "-k", "3", "--index", str(index_dir)]) == 0
    by_id = capsys.readouterr().out
    for text in (c.to_string("hmsdms", sep=":", precision=3), c.to_string("hmsdms", precision=3),
                 f"{t['ra']:.7f},{t['dec']:.7f}"):
        assert main(["similar", *text.split(), "-k", "3", "--index", str(index_dir)]) == 0, text
        assert capsys.readouterr().out == by_id, text


@pytest.mark.parametrize("suffix, fmt", [(".vot", None), (".xml", None), (".txt", None), (".dat", None),
                                         (".fits", None), (".out", "ascii.csv")])
def test_every_astropy_format(index_dir, tmp_path, suffix, fmt):
    out = tmp_path / f"hits{suffix}"
    argv = ["similar", "G03", "-k", "4", "--index", str(index_dir), "-o", str(out)]
    assert main(argv + (["--format", fmt] if fmt else [])) == 0
    from astro_semsearch.cli._output import output_format

    back = Table.read(out, format=output_format(out, fmt))
    assert len(back) == 4 and "object_id" in back.colnames and "viewer_url" in back.colnames


def test_bad_output_and_images_are_refused_before_any_work(index_dir, tmp_path, capsys):
    assert main(["similar", "G03", "--index", str(index_dir), "-o", str(tmp_path / "hits.unknown")]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["similar", "G03", "--index", str(index_dir), "-o", str(tmp_path / "x.ecsv"), "--format",
                 "nope"]) == 2
    assert "not a table format" in capsys.readouterr().err
    out = tmp_path / "hits.ecsv"
    assert main(["similar", "G03", "--index", str(index_dir), "-o", str(out), "--html", str(tmp_path / "r.html"),
                 "--images", str(tmp_path / "nonexistent")]) == 2
    assert "--images" in capsys.readouterr().err and not out.exists()


def test_classify_and_cite_commands(tiny_model_dir, tmp_path, capsys):
    from PIL import Image

    files = []
    for i, level in enumerate((30, 200)):
        path = tmp_path / f"gal{i}.png"
        img = np.full((32, 32, 3), level, np.uint8)
        img[::2, ::2] += 20  # some structure: blank images are refused
        Image.fromarray(img).save(path)
        files.append(str(path))
    out = tmp_path / "labels.ecsv"
    assert main(["classify", *files, "--labels", "elliptical", "spiral", "--model", str(tiny_model_dir),
                 "-o", str(out)]) == 0
    t = Table.read(out)
    assert t["file"].tolist() == ["gal0.png", "gal1.png"]
    np.testing.assert_allclose(t["p_elliptical"] + t["p_spiral"], 1.0, atol=1e-6)
    assert t.meta["prompts"] == ["a galaxy image showing an elliptical", "a galaxy image showing a spiral"]
    assert main(["classify", str(tmp_path / "none.png"), "--labels", "a", "b"]) == 2
    capsys.readouterr()
    assert main(["cite"]) == 0
    assert "@software{astro_semsearch" in capsys.readouterr().out


def test_index_info_shows_what_it_can_read_of_a_damaged_index(index_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    (broken / "vectors.npy").write_bytes(b"short")
    assert main(["index", "info", str(broken)]) == 2
    captured = capsys.readouterr()
    assert "cli-index" in captured.out and "vectors.npy" in captured.out and "on disk 5" in captured.out
    assert "truncated" in captured.err and "Traceback" not in captured.err


def test_terminal_output_fits_the_width(index_dir, tiny_model_dir):
    env = dict(__import__("os").environ, COLUMNS="90")
    proc = subprocess.run([sys.executable, "-m", "astro_semsearch.cli", "search", "ring", "galaxy", "-k", "5",
                           "--index", str(index_dir), "--model", str(tiny_model_dir)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 90
    assert lines[0].split()[:5] == ["rank", "object_id", "ra", "dec", "score"] and "viewer_url" not in lines[0]


def test_user_errors_exit_2_in_one_line_through_the_console(index_dir):
    proc = subprocess.run([sys.executable, "-m", "astro_semsearch.cli", "similar", "NOPE", "--index", str(index_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "NOPE" in proc.stderr
