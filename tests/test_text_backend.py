"""The text backends (torch, ONNX Runtime), the numpy text head, and the fast paths of a text search.

MiniLM is exported to ONNX once per test session, into a temporary astropy
cache of its own (`onnx_cache`); tests that use it point astropy's cache
there (`use_onnx`). Every other test keeps the empty per-session cache, in
which ``conf.text_backend = "auto"`` means torch.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.config import paths
from astropy.coordinates import SkyCoord, search_around_sky
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from astro_semsearch import conf
from astro_semsearch.exceptions import MissingDependencyError, ModelLoadError
from astro_semsearch.model import GalaxyModel, clear_text_cache, encode_sentences, onnx_text, text_backend
from astro_semsearch.model.textmodel import TextModel

# Different lengths (padding), one longer than max_length (truncation), case, punctuation, accents.
TEXTS = ["ring galaxy", "a barred spiral galaxy with two loosely wound arms, a bright bulge and a faint outer ring",
         "edge-on", "Merging galaxies with TIDAL tails!", "naïve café galaxy",
         " ".join(["spiral"] * 100)]

needs_onnx = pytest.mark.skipif(not (onnx_text.available() and onnx_text._installed("onnx")),
                                reason="onnxruntime and onnx (the 'fast' extra) are not installed")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """An astropy cache directory holding the ONNX export of MiniLM (made once per session)."""
    if not (onnx_text.available() and onnx_text._installed("onnx")):
        pytest.skip("onnxruntime and onnx (the 'fast' extra) are not installed")
    cache = tmp_path_factory.mktemp("onnx-cache")
    with paths.set_temp_cache(str(cache)):
        onnx_text.prepare_text_encoder()
    return cache


@pytest.fixture
def use_onnx(onnx_cache):
    """Astropy's cache points at `onnx_cache` (so ``"auto"`` finds the export); new queries every test."""
    clear_text_cache()
    with paths.set_temp_cache(str(onnx_cache)):
        yield onnx_cache
    clear_text_cache()


def _copy_cache(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- agreement
@needs_onnx
def test_onnx_and_torch_embeddings_agree_on_a_padded_batch(use_onnx):
    with conf.set_temp("text_backend", "onnx"):
        onnx = encode_sentences(TEXTS)
        alone = np.concatenate([encode_sentences([t]) for t in TEXTS])  # no padding at all
        many = encode_sentences(TEXTS * 4)  # > 16 texts: the multi-threaded session
    with conf.set_temp("text_backend", "torch"):
        torch_ = encode_sentences(TEXTS)
    assert onnx.shape == (len(TEXTS), 384) and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1, atol=1e-5)
    assert (onnx * torch_).sum(axis=1).min() >= 0.9999
    assert (alone * torch_).sum(axis=1).min() >= 0.9999
    assert np.abs(many - np.tile(onnx, (4, 1))).max() < 1e-5
    meta = json.loads((onnx_text.encoder_dir() / onnx_text.META_FILE).read_text())
    assert meta["min_cosine_vs_torch"] >= 0.9999 and meta["minilm_sha256"] == onnx_text.minilm_sha256()
    assert set(meta["files"]) == {"minilm.onnx", "minilm.data"}


@needs_onnx
def test_onnx_tokenizer_matches_transformers(use_onnx):
    from astro_semsearch.model.minilm import torch_backbone

    tok, _ = torch_backbone()
    want = tok(TEXTS, padding=True, truncation=True, max_length=64)
    got = onnx_text._tokenizer(64).encode_batch(TEXTS)
    assert [e.ids for e in got] == want["input_ids"]
    assert [e.attention_mask for e in got] == want["attention_mask"]


# ----------------------------------------------------------------------------- selection
def test_auto_is_torch_without_an_export():
    assert conf.text_backend == "auto"
    assert not onnx_text.is_prepared()
    assert text_backend() == "torch"


@needs_onnx
def test_backend_selection(use_onnx, monkeypatch):
    assert text_backend() == "onnx"  # auto: installed and exported
    assert text_backend("cuda:0") == "torch"  # a model on a GPU runs MiniLM with torch
    with conf.set_temp("text_backend", "torch"):
        assert text_backend() == "torch"
    with pytest.raises(TypeError):
        conf.text_backend = "tensorflow"
    monkeypatch.setattr(onnx_text, "available", lambda: False)
    assert text_backend() == "torch"  # auto without onnxruntime
    with conf.set_temp("text_backend", "onnx"), pytest.raises(MissingDependencyError, match=r"\[fast\]"):
        text_backend()


def test_one_text_backend_keeps_the_first_answer(monkeypatch):
    """Inside one search every text is encoded, and recorded, with the same backend."""
    from astro_semsearch.model.text import one_text_backend

    monkeypatch.setattr(onnx_text, "available", lambda: True)
    with one_text_backend():
        assert text_backend() == "torch"
        with conf.set_temp("text_backend", "onnx"):
            assert text_backend() == "torch"
            assert text_backend("cuda") == "torch"
    with conf.set_temp("text_backend", "onnx"):
        assert text_backend() == "onnx"
        with one_text_backend():
            assert text_backend() == "onnx"


def test_cache_key_includes_the_backend(monkeypatch):
    """Features remembered from one backend are not served for the other."""
    from astro_semsearch.model import text

    calls = []
    monkeypatch.setattr(text, "_encode_torch", lambda t, *a: calls.append("torch") or np.ones((len(t), 384), "f4"))
    monkeypatch.setattr(onnx_text, "encode", lambda t, **k: calls.append("onnx") or np.zeros((len(t), 384), "f4"))
    monkeypatch.setattr(onnx_text, "available", lambda: True)
    clear_text_cache()
    encode_sentences(["a ring"])
    with conf.set_temp("text_backend", "onnx"):
        encode_sentences(["a ring"])
        encode_sentences(["a ring"])
    encode_sentences(["a ring"])
    assert calls == ["torch", "onnx"]
    clear_text_cache()


# ----------------------------------------------------------------------------- the exported file
@needs_onnx
def test_corrupt_export_is_detected_and_made_again(onnx_cache, tmp_path, monkeypatch):
    cache = _copy_cache(onnx_cache, tmp_path / "cache")
    with paths.set_temp_cache(str(cache)):
        directory = onnx_text.encoder_dir()
        original = onnx_cache / directory.relative_to(cache)
        weights = directory / onnx_text.DATA_FILE
        good = weights.read_bytes()
        # Flip one byte in the middle of the weights: the graph still loads, the sha256 does not match.
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0xFF
        weights.write_bytes(bytes(bad))
        assert onnx_text.is_prepared()  # present: "auto" picks it, and the load must catch it

        exports = []

        def fake_export(final):  # what _export leaves behind, without the seconds of tracing
            exports.append(final)
            shutil.copytree(original, final)

        monkeypatch.setattr(onnx_text, "_export", fake_export)
        monkeypatch.setattr(onnx_text, "_SESSIONS", {})
        clear_text_cache()
        with pytest.warns(AstropyUserWarning, match="sha256"):
            feats = encode_sentences(["ring galaxy"])
        assert exports == [directory]
        assert weights.read_bytes() == good
        with conf.set_temp("text_backend", "torch"):
            assert float(feats[0] @ encode_sentences(["ring galaxy"])[0]) >= 0.9999
        # A truncated file, a changed graph and a missing record are refused the same way.
        weights.write_bytes(good[:1000])
        with pytest.raises(onnx_text._Corrupt, match="sha256"):
            onnx_text._read_verified(directory)
        weights.write_bytes(good)
        onnx_text._read_verified(directory)
        (directory / onnx_text.ONNX_FILE).write_bytes((directory / onnx_text.ONNX_FILE).read_bytes() + b" ")
        with pytest.raises(onnx_text._Corrupt, match="minilm.onnx fails"):
            onnx_text._read_verified(directory)
        (directory / onnx_text.META_FILE).unlink()
        assert not onnx_text.is_prepared()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert text_backend() == "torch"  # auto never exports on a query
    clear_text_cache()


@needs_onnx
def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("no tracing today")

    monkeypatch.setattr(onnx_text, "load_torch_minilm", broken)
    with paths.set_temp_cache(str(tmp_path)):
        with pytest.raises(ModelLoadError, match="no tracing today"):
            onnx_text.prepare_text_encoder()
        parent = onnx_text.encoder_dir().parent
        assert not onnx_text.encoder_dir().exists()
        assert [p.name for p in parent.iterdir() if not p.name.endswith(".lock")] == []


@needs_onnx
def test_an_export_that_disagrees_with_torch_is_refused(use_onnx, monkeypatch):
    """Every export is compared with torch on padded probe sentences before it is kept."""
    from astro_semsearch.model.minilm import torch_backbone

    path = onnx_text.encoder_dir() / onnx_text.ONNX_FILE
    tok, _ = torch_backbone()
    assert onnx_text._agreement(path, tok) >= 0.9999
    monkeypatch.setattr(onnx_text, "MIN_COSINE", 1.5)  # nothing can pass
    with pytest.raises(ModelLoadError, match="disagrees with torch"):
        onnx_text._agreement(path, tok)


@needs_onnx
def test_concurrent_prepares_export_once(onnx_cache, tmp_path, monkeypatch):
    with paths.set_temp_cache(str(onnx_cache)):
        source = onnx_text.encoder_dir()
    calls = []

    def slow_export(final):
        calls.append(final)
        tmp = final.parent / f".{final.name}.tmp-test{len(calls)}"
        shutil.copytree(source, tmp)
        os.rename(tmp, final)

    monkeypatch.setattr(onnx_text, "_export", slow_export)
    with paths.set_temp_cache(str(tmp_path)):
        results, errors = [], []

        def worker():
            try:
                results.append(onnx_text.prepare_text_encoder())
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(set(results)) == 1 and len(calls) == 1
        onnx_text._read_verified(results[0])


def test_prepare_without_the_fast_extra(monkeypatch):
    monkeypatch.setattr(onnx_text, "_installed", lambda name: name != "onnx")
    with pytest.raises(MissingDependencyError, match=r"needs onnx: pip install .*\[fast\]"):
        onnx_text.prepare_text_encoder()


# ----------------------------------------------------------------------------- numpy text head
def _trained_looking_model(seed=0):
    """A random model whose text head's MLP is not zero (a fresh head's last layer is)."""
    import torch

    model = GalaxyModel.from_config({"dim": 16, "stem_channels": 4, "channels": [8, 8, 8], "head_hidden": 32,
                                     "name": "tiny"}, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.text_head.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    model.invalidate_fingerprint()
    return model


def test_numpy_text_head_equals_torch(tmp_path):
    import torch

    model = _trained_looking_model()
    directory = model.save(tmp_path / "tiny")
    text_model = TextModel.load(directory)
    assert text_model.fingerprint == GalaxyModel.load(directory).fingerprint
    assert text_model.dim == 16 and text_model.name == "tiny"
    feats = np.random.default_rng(0).normal(size=(40, 384)).astype(np.float32) * 0.2
    with torch.no_grad():
        want = model.encode_text_features(torch.from_numpy(feats)).numpy()
    got = text_model.project(feats)
    assert got.dtype == np.float32 and np.abs(got - want).max() < 1e-5
    # End to end, with MiniLM (torch backend for both).
    assert np.abs(text_model.embed_text(TEXTS) - model.embed_text(TEXTS)).max() < 1e-5
    assert text_model.embed_text("ring galaxy").shape == (1, 16)
    assert text_model.embed_text([]).shape == (0, 16)


def test_text_model_refuses_bad_files(tmp_path):
    from safetensors.numpy import load as st_load
    from safetensors.numpy import save as st_save

    directory = _trained_looking_model().save(tmp_path / "tiny")
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-10])
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        TextModel.load(directory)
    state = st_load(data)
    del state["text_head.norm.weight"]
    blob = st_save(state)
    weights.write_bytes(blob)
    cfg = json.loads((directory / "config.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (directory / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="text_head.norm.weight"):
        TextModel.load(directory)


# ----------------------------------------------------------------------------- search with the fast path
@pytest.fixture(scope="module")
def toy_index(tmp_path_factory):
    """A saved index of random vectors whose manifest names a small model inside it (model=None opens it)."""
    from astro_semsearch.index import GalaxyIndex

    root = tmp_path_factory.mktemp("toy-text")
    model = _trained_looking_model(seed=1)
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    table = Table({"object_id": [f"G{i:03d}" for i in range(300)], "ra": rng.uniform(0, 360, 300),
                   "dec": rng.uniform(-60, 60, 300)})
    GalaxyIndex.build(vecs, table, model=model, name="toy-text").save(root / "index")
    model.save(root / "index" / "tiny-text")
    index = GalaxyIndex.load(root / "index")
    index.manifest["model"]["name"] = "tiny-text/."  # a path inside the index directory: followed
    return index


@needs_onnx
def test_text_search_with_onnx_matches_torch(use_onnx, toy_index):
    from astro_semsearch import semantic_search

    with conf.set_temp("text_backend", "onnx"):
        fast = semantic_search("ring galaxy with a bar", k=10, index=toy_index)
    with conf.set_temp("text_backend", "torch"):
        ref = semantic_search("ring galaxy with a bar", k=10, index=toy_index)
    assert fast.meta["astro_semsearch"]["model"]["text_backend"] == "onnx"
    assert ref.meta["astro_semsearch"]["model"]["text_backend"] == "torch"
    assert fast.meta["astro_semsearch"]["model"]["sha256"] == ref.meta["astro_semsearch"]["model"]["sha256"]
    assert list(fast["object_id"]) == list(ref["object_id"])
    assert np.abs(np.asarray(fast["score"]) - np.asarray(ref["score"])).max() < 1e-4


@needs_onnx
@pytest.mark.slow
def test_a_text_search_in_a_new_process_imports_neither_torch_nor_transformers(use_onnx):
    code = ("import sys; from astro_semsearch import semantic_search; hits = semantic_search('ring galaxy', k=5); "
            "print(hits.meta['astro_semsearch']['model']['text_backend'], "
            "[m for m in ('torch', 'transformers', 'scipy.spatial', 'astroquery') if m in sys.modules])")
    env = dict(os.environ, XDG_CACHE_HOME=str(use_onnx), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["onnx", "[]"], out.stdout


# ----------------------------------------------------------------------------- near-duplicate pairs
@pytest.mark.parametrize("n", [2, 40, 300, 700])
def test_close_pairs_are_those_search_around_sky_finds(n):
    from astro_semsearch.search.engine import PAIRWISE_LIMIT, close_pairs

    rng = np.random.default_rng(n)
    # Clustered within a few arcsec (many pairs near the limit), plus a pole and RA wrap-around.
    ra = np.concatenate([rng.uniform(10, 10.004, n - 2), [359.9999, 0.0001]])
    dec = np.concatenate([rng.uniform(-0.002, 0.002, n - 2), [89.9999, 89.9999]])
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    limit = 5 * u.arcsec
    i, j = close_pairs(coords, limit)
    a, b, _, _ = search_around_sky(coords, coords, limit)
    assert set(zip(i.tolist(), j.tolist())) == set(zip(a.tolist(), b.tolist()))
    assert (n > PAIRWISE_LIMIT) == (n == 700)


# ----------------------------------------------------------------------------- memory-mapped vectors
def test_vectors_are_mapped_for_random_access(tmp_path):
    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.index.mapped import _mapping, advise, sequential_reads

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2000, 16)).astype(np.float32)
    table = Table({"object_id": [f"G{i}" for i in range(2000)], "ra": rng.uniform(0, 360, 2000),
                   "dec": rng.uniform(-60, 60, 2000)})
    built = GalaxyIndex.build(vecs, table, kind="ivfpq", nlist=16, m=4, name="mapped")
    directory = built.save(tmp_path / "ix")
    mapped, in_ram = GalaxyIndex.load(directory), GalaxyIndex.load(directory, mmap=False)
    vec = mapped.vectors_array()
    assert _mapping(vec) is not None and _mapping(in_ram.vectors_array()) is None
    assert advise(vec, "random") == hasattr(__import__("mmap"), "MADV_RANDOM")
    assert not advise(in_ram.vectors_array(), "random")
    queries = vecs[:20]
    # The refinement reads the mapped rows: the same answers as from RAM.
    for a, b in zip(mapped.search(queries, 10), in_ram.search(queries, 10)):
        np.testing.assert_array_equal(a, b)
    with sequential_reads(vec):
        copy = GalaxyIndex.load(mapped.save(tmp_path / "copy"))
    np.testing.assert_array_equal(copy.vectors_array(), in_ram.vectors_array())


# ----------------------------------------------------------------------------- command line
@needs_onnx
def test_prepare_text_encoder_command(use_onnx, capsys):
    from astro_semsearch.cli import main

    assert main(["prepare-text-encoder"]) == 0
    out = capsys.readouterr().out
    assert "minilm.onnx" in out and "text backend now: onnx" in out


# ----------------------------------------------------------------------------- MiniLM's sha256
def test_minilm_sha256_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    from astro_semsearch.model import minilm

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"first weights")
    monkeypatch.setattr(minilm, "minilm_dir", lambda: tmp_path)
    monkeypatch.setattr(minilm, "_SHA_CACHE", {})
    hashed = []
    real = minilm.sha256_file
    monkeypatch.setattr(minilm, "sha256_file", lambda p: hashed.append(p) or real(p))
    first = minilm.minilm_sha256()
    assert first == hashlib.sha256(b"first weights").hexdigest() and len(hashed) == 1
    monkeypatch.setattr(minilm, "_SHA_CACHE", {})  # a new process: the record in the cache is used
    assert minilm.minilm_sha256() == first and len(hashed) == 1
    weights.write_bytes(b"other weights!")  # a reinstall: new size, time (and usually inode)
    assert minilm.minilm_sha256() == hashlib.sha256(b"other weights!").hexdigest() and len(hashed) == 2
    minilm._sha_record().write_text("{not json")  # a damaged record is ignored
    monkeypatch.setattr(minilm, "_SHA_CACHE", {})
    assert minilm.minilm_sha256() == hashlib.sha256(b"other weights!").hexdigest() and len(hashed) == 3
