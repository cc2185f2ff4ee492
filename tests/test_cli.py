"""The astro-semsearch command line, run in-process through cli.main."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table

import astro_semsearch
from astro_semsearch.cli import build_parser, main
from astro_semsearch.index import GalaxyIndex

DIM = 6


class ToyModel:
    name = "toy"
    dim = DIM
    fingerprint = "5" * 64

    def embed_text(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.full((len(texts), DIM), 0.1, np.float32)
        for i, t in enumerate(texts):
            out[i, len(t) % DIM] += 1  # deterministic, text dependent
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_images(self, images):
        a = np.asarray(images, float)
        v = np.full(DIM, 0.1)
        v[:3] += a.reshape(-1, 3).mean(0) / 255
        return (v / np.linalg.norm(v))[None].astype(np.float32)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 40
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    t = Table({"object_id": [f"G{i:02d}" for i in range(n)], "ra": rng.uniform(150, 151, n) * u.deg,
               "dec": rng.uniform(2, 3, n) * u.deg, "mag_r": rng.uniform(15, 18, n) * u.mag})
    idx = GalaxyIndex.build(v, t, model=ToyModel(), name="cli-index", survey="SDSS")
    return idx.save(tmp_path_factory.mktemp("cli") / "cli-index")


@pytest.fixture
def toy_model(monkeypatch):
    fake = types.ModuleType("astro_semsearch.model")
    fake.load_model = lambda name=None: ToyModel()
    monkeypatch.setitem(sys.modules, "astro_semsearch.model", fake)


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


def test_search_prints_a_table(index_dir, toy_model, capsys):
    assert main(["search", "ring galaxy", "-k", "5", "--index", str(index_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["rank", "object_id", "ra", "dec", "score"]
    assert len([line for line in out if line.strip().startswith(("1 ", "2 ", "3 ", "4 ", "5 "))]) == 5


def test_search_writes_ecsv_and_refuses_to_overwrite(index_dir, toy_model, tmp_path, capsys):
    out = tmp_path / "hits.ecsv"
    args = ["search", "spiral", "bar", "--negative", "edge-on", "-k", "4", "--index", str(index_dir), "-o", str(out)]
    assert main(args) == 0
    hits = Table.read(out)
    assert len(hits) == 4 and hits["ra"].unit == u.deg
    meta = hits.meta["astro_semsearch"]
    assert meta["query"] == ["spiral", "bar"] and meta["negative"] == "edge-on"
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
    ],
)
def test_bad_input_exits_2_with_a_message(index_dir, toy_model, capsys, argv, message):
    assert main(argv + ["--index", str(index_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_similar_by_id_and_by_position(index_dir, capsys):
    assert main(["similar", "G03", "-k", "3", "--index", str(index_dir)]) == 0
    by_id = capsys.readouterr().out
    assert "G03 " not in by_id and "score" in by_id
    t = GalaxyIndex.load(index_dir).table[3]
    assert main(["similar", f"{t['ra']:.7f} {t['dec']:.7f}", "-k", "3", "--index", str(index_dir)]) == 0
    assert capsys.readouterr().out == by_id


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
    assert "cli-index" in out and "galaxies     40" in out and "sha256" in out and "toy" in out
    assert main(["index", "info", str(index_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 40
    assert main(["index", "info", str(index_dir / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "astro_semsearch.cli", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "search" in proc.stdout and "crossmatch" in proc.stdout
