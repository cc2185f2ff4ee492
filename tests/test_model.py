"""Tests of astro_semsearch.model: embedding inputs, determinism, persistence, load errors."""
import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astro_semsearch.exceptions import ModelLoadError
from astro_semsearch.model import GalaxyModel, load_model

CFG = {"dim": 16, "stem_channels": 8, "channels": [8, 16, 16], "head_hidden": 32, "name": "tiny"}


@pytest.fixture(scope="module")
def model():
    return GalaxyModel.from_config(CFG, seed=0)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return model.save(tmp_path_factory.mktemp("models") / "tiny")


def _unit(x):
    return np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def _inputs(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    bands = rng.gamma(2.0, 0.05, (3, 40, 40)).astype(np.float32)
    Image.fromarray(rgb).save(tmp_path / "g.png")
    fits.PrimaryHDU(bands).writeto(tmp_path / "g.fits")
    return {
        "rgb": (rgb, 1),
        "rgb_stack": (np.stack([rgb, rgb[::-1]]), 2),
        "rgb_float": (rgb / 255.0, 1),
        "bands": (bands, 1),
        "band_stack": (np.stack([bands, bands * 2]), 2),
        "path": (tmp_path / "g.png", 1),
        "str_path": (str(tmp_path / "g.fits"), 1),
        "hdu": (fits.PrimaryHDU(bands), 1),
        "hdulist": (fits.HDUList([fits.PrimaryHDU(bands)]), 1),
        "mixed_list": ([rgb, bands, tmp_path / "g.png"], 3),
    }


def test_embed_images_every_input_kind(model, tmp_path):
    for kind, (images, n) in _inputs(tmp_path).items():
        out = model.embed_images(images)
        assert out.shape == (n, 16), kind
        assert out.dtype == np.float32, kind
        assert _unit(out), kind


def test_same_image_same_vector_across_forms(model, tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (60, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "x.png")
    a = model.embed_images(rgb)
    b = model.embed_images(tmp_path / "x.png")
    c = model.embed_images([rgb, rgb], batch_size=1)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(c, np.vstack([a, a]), atol=1e-5)
    # Different images give different vectors.
    assert not np.allclose(a, model.embed_images(rgb[::-1]))


def test_embed_images_bad_input(model):
    with pytest.raises(ValueError):
        model.embed_images(np.zeros((2, 2, 2, 2, 2)))
    with pytest.raises(TypeError):
        model.embed_images(42)


def test_embed_text(model):
    one = model.embed_text("a ring galaxy")
    many = model.embed_text(["a ring galaxy", "a barred spiral", "two merging galaxies"])
    assert one.shape == (1, 16) and many.shape == (3, 16)
    assert one.dtype == np.float32 and _unit(many)
    np.testing.assert_allclose(one[0], many[0], atol=1e-5)
    assert model.embed_text([]).shape == (0, 16)
    with pytest.raises(TypeError):
        model.embed_text([1, 2])


def test_from_config_deterministic():
    a = GalaxyModel.from_config(CFG, seed=5)
    b = GalaxyModel.from_config(CFG, seed=5)
    c = GalaxyModel.from_config(CFG, seed=6)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(a.embed_images(x), b.embed_images(x))
    assert len(a.fingerprint) == 64


def test_save_load_roundtrip(model, saved, tmp_path):
    assert (saved / "model.safetensors").is_file() and (saved / "config.json").is_file()
    loaded = GalaxyModel.load(saved)
    assert loaded.fingerprint == model.fingerprint
    from astro_semsearch._io import sha256_file

    assert loaded.fingerprint == sha256_file(saved / "model.safetensors")
    assert loaded.dim == 16 and loaded.config["channels"] == [8, 16, 16]
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.embed_images(x), model.embed_images(x), atol=1e-6)
    np.testing.assert_allclose(loaded.embed_text("spiral"), model.embed_text("spiral"), atol=1e-6)
    assert loaded.temperature == pytest.approx(model.temperature)
    # load_model by path, cached.
    assert load_model(saved) is load_model(str(saved))
    # A model card is written when given and kept on re-save.
    model.save(tmp_path / "m", model_card="# card\n")
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "MODEL_CARD.md").read_text() == "# card\n"


def _copy(saved, tmp_path):
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(saved, dest)
    return dest


def test_missing_files(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        GalaxyModel.load(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match="no model 'no-such-model'"):
        load_model("no-such-model")
    d = _copy(saved, tmp_path)
    (d / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="missing.*model.safetensors"):
        GalaxyModel.load(d)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_weights(saved, tmp_path, damage):
    d = _copy(saved, tmp_path)
    w = d / "model.safetensors"
    data = bytearray(w.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-10] ^= 0xFF
    else:
        data = bytearray(b"\x00" * 100)
    w.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupt or truncated"):
        GalaxyModel.load(d)
    # Without the recorded hash, the safetensors parser or shape check still refuses.
    cfg = json.loads((d / "config.json").read_text())
    del cfg["weights_sha256"]
    (d / "config.json").write_text(json.dumps(cfg))
    if damage != "flip":  # a flipped byte inside a tensor is only detectable by the hash
        with pytest.raises(ModelLoadError):
            GalaxyModel.load(d)


def test_bad_config(saved, tmp_path):
    d = _copy(saved, tmp_path)
    (d / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        GalaxyModel.load(d)


def test_dim_mismatch(saved, tmp_path):
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["dim"] = 32
    del cfg["weights_sha256"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="dim=32"):
        GalaxyModel.load(d)


def test_text_model_hash_mismatch_warns(saved, tmp_path):
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["text_model_sha256"] = "0" * 64
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(RuntimeWarning, match="MiniLM"):
        GalaxyModel.load(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GalaxyModel.load(saved)


def test_embedding_leaves_the_torch_thread_count_alone(model):
    """A library must not change process-wide torch settings (it runs in thread pools and Dask workers)."""
    import torch

    before = torch.get_num_threads()
    model.embed_text("a ring galaxy")
    model.embed_images(np.zeros((1, 64, 64, 3), np.uint8))
    assert torch.get_num_threads() == before


def test_short_query_features_are_remembered(monkeypatch):
    from astro_semsearch.model import encode_sentences, text

    first = encode_sentences(["a ring galaxy seen twice"])
    calls = []
    monkeypatch.setattr(text, "_text_backbone", lambda: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    again = encode_sentences(["a ring galaxy seen twice"])  # served from the cache: MiniLM not called
    assert calls == [] and np.array_equal(first, again)
    again[:] = 0  # the caller's copy: the cache is not changed through it
    assert np.array_equal(encode_sentences(["a ring galaxy seen twice"]), first)
