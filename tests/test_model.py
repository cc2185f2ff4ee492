"""Tests of astro_semsearch.model: embedding inputs, determinism, persistence, load errors."""
import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from astro_semsearch.exceptions import InvalidInputError, ModelLoadError
from astro_semsearch.images import to_rgb
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
    model.embed_images(np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8))
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


# --------------------------------------------------------------------------- images refused at the door
@pytest.mark.parametrize(
    "image, match",
    [
        (np.full((48, 48, 3), 128, np.uint8), "blank"),
        (np.zeros((3, 40, 40), np.float32), "blank"),
        (np.full((3, 40, 40), np.nan, np.float32), "all NaN"),
        (np.where(np.arange(3 * 40 * 40).reshape(3, 40, 40) == 7, np.inf, 0.1), "infinite"),
        (np.random.default_rng(0).integers(0, 256, (5, 5, 3), dtype=np.uint8), "too small"),
    ],
)
def test_embed_images_refuses_images_without_signal(model, image, match):
    good = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    with pytest.raises(InvalidInputError, match=f"image at index 1 of 2 .*{match}"):
        model.embed_images([good, image])
    with pytest.raises(InvalidInputError, match=f"the image .*{match}"):
        model.embed_images(image)


def test_embed_images_names_the_file(model, tmp_path):
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "grey.png")
    with pytest.raises(InvalidInputError, match=r"file .*grey\.png\) is blank"):
        model.embed_images([tmp_path / "grey.png"])


def test_single_plane_images_are_embedded(model, tmp_path):
    plane = np.random.default_rng(2).gamma(2.0, 0.05, (40, 40)).astype(np.float32)
    fits.PrimaryHDU(plane).writeto(tmp_path / "one-band.fits")
    a = model.embed_images(plane)
    b = model.embed_images(tmp_path / "one-band.fits")
    grey = np.repeat(to_rgb(plane)[..., None, :1], 3, axis=-1)[:, :, 0, :]  # the documented grey rule
    assert a.shape == (1, 16) and _unit(a)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, model.embed_images(grey), atol=1e-5)


# --------------------------------------------------------------------------- config.json checked at load
@pytest.mark.parametrize(
    "field, value, match",
    [
        ("crop_fraction", 1.5, r"crop_fraction must be a finite number in \(0.3, 1\]"),
        ("crop_fraction", 0.2, "crop_fraction"),
        ("crop_fraction", "0.8", "crop_fraction must be a number"),
        ("image_size", 8, "image_size must be >= 16"),
        ("image_size", 64.0, "image_size must be an integer"),
        ("bands", "gyz", "bands must be distinct letters"),
        ("bands", 3, "bands must be a string"),
        ("mean", [0.1, 0.1], "mean must be a list of 3 numbers"),
        ("std", [0.1, 0.0, 0.1], r"std\[1\] must be a finite number in \(0"),
        ("dim", 1, "dim must be >= 2"),
        ("dim", True, "dim must be an integer"),
        ("text_max_length", 0, "text_max_length must be >= 1"),
        ("channels", [], "channels must be a non-empty list"),
        ("text_bank_sha256", "xyz", "text_bank_sha256 must be a sha256"),
    ],
)
def test_config_values_are_checked_at_load(saved, tmp_path, field, value, match):
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg[field] = value
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=f"config.json does not describe a valid model: {match}"):
        GalaxyModel.load(d)


def test_fingerprint_covers_the_preprocessing(model, saved, tmp_path):
    loaded = GalaxyModel.load(saved)
    assert loaded.fingerprint == loaded.weights_sha256  # legacy preprocessing: the weights' sha256, as before
    d = _copy(saved, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["crop_fraction"] = 0.6
    (d / "config.json").write_text(json.dumps(cfg))
    cropped = GalaxyModel.load(d)
    assert cropped.weights_sha256 == loaded.weights_sha256
    assert cropped.fingerprint != loaded.fingerprint and len(cropped.fingerprint) == 64
    x = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    assert not np.allclose(cropped.embed_images(x), loaded.embed_images(x), atol=1e-4)  # why it must differ
    # An index built with one refuses the other.
    from astropy.table import Table

    from astro_semsearch.exceptions import ModelMismatchError
    from astro_semsearch.index import GalaxyIndex

    table = Table({"object_id": ["a", "b"], "ra": [1.0, 2.0], "dec": [0.0, 1.0]})
    index = GalaxyIndex.build(loaded.embed_images(x), table, model=loaded)
    assert index.manifest["model"]["preprocessing"]["crop_fraction"] == pytest.approx(0.8)
    with pytest.raises(ModelMismatchError, match="not comparable"):
        index.check_model(cropped)
    for key, value in (("image_size", 48), ("bands", "gri"), ("text_max_length", 32)):
        other = GalaxyModel.from_config({**CFG, key: value}, seed=0)
        assert other.fingerprint != model.fingerprint, key
        assert other.weights_sha256 == model.weights_sha256, key


def test_shipped_model_fingerprint_matches_the_shipped_index():
    """galclip-v1 has the legacy preprocessing, so its fingerprint is still the one the shipped index records."""
    from astro_semsearch.index import open_index

    shipped = load_model()
    index = open_index()
    assert shipped.fingerprint == shipped.weights_sha256 == shipped.config["weights_sha256"]
    assert index.manifest["model"]["fingerprint"] == shipped.fingerprint
    index.check_model(shipped)
