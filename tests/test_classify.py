"""Tests of zero-shot classification (astro_semsearch.classify)."""
import numpy as np
import pytest
import torch

from astro_semsearch.classify import classify
from astro_semsearch.model import GalaxyModel

LABELS = ["red blob", "blue ring"]


def _images():
    y, x = np.mgrid[:48, :48] - 23.5
    r = np.hypot(x, y)
    red = np.zeros((48, 48, 3), np.uint8)
    red[..., 0] = (255 * np.exp(-r / 5)).astype(np.uint8)
    blue = np.zeros((48, 48, 3), np.uint8)
    blue[..., 2] = (255 * np.exp(-((r - 12) ** 2) / 8)).astype(np.uint8)
    return red, blue


@pytest.fixture(scope="module")
def aligned_model():
    """A tiny model whose heads are set by hand so the right answer is known.

    The image head maps mean colour to (red, blue) axes; the text head maps
    each label's MiniLM embedding onto the matching axis. This checks the
    classification plumbing (prompts, softmax, columns), not learning.
    """
    model = GalaxyModel.from_config({"dim": 2, "stem_channels": 4, "channels": [4, 4, 3], "head_hidden": 4,
                                     "mean": [0, 0, 0], "std": [1, 1, 1]}, seed=0)
    with torch.no_grad():
        # Encoder: identity-like average of RGB (a 1x1 "colour reader").
        enc = model.image_encoder
        enc.features = torch.nn.Identity()  # pooled mean RGB -> 3 features
        model.image_head.proj.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0]]))
        model.image_head.proj.bias.zero_()
        prompts = [f"a galaxy image showing a {lab}" for lab in LABELS]
        from astro_semsearch.model import encode_sentences

        feats = torch.from_numpy(encode_sentences(prompts))
        # Least-squares text projection sending prompt k to axis k.
        w = torch.linalg.lstsq(feats, torch.eye(2)).solution.T
        model.text_head.proj.weight.copy_(w)
        model.text_head.proj.bias.zero_()
    model.invalidate_fingerprint()
    return model


def test_classify_picks_the_right_label(aligned_model):
    red, blue = _images()
    table = classify([red, blue, red], LABELS, model=aligned_model)
    assert len(table) == 3
    assert list(table["best_label"]) == ["red blob", "blue ring", "red blob"]
    probs = np.vstack([table[f"p_{lab}"] for lab in LABELS]).T
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (probs >= 0).all() and (table["best_probability"] > 0.5).all()
    np.testing.assert_allclose(table["best_probability"], probs.max(axis=1))
    assert table.meta["labels"] == LABELS
    assert table.meta["model_sha256"] == aligned_model.fingerprint
    assert table.meta["prompts"][0] == "a galaxy image showing a red blob"


def test_classify_random_model_probabilities(tmp_path):
    model = GalaxyModel.from_config({"dim": 8}, seed=1)
    imgs = np.random.default_rng(0).integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)
    labels = ["spiral", "elliptical", "merger", "edge-on disk"]
    table = classify(imgs, labels, model=model, template=None)
    assert table.colnames == ["best_label", "best_probability"] + [f"p_{lab}" for lab in labels]
    p = np.vstack([table[f"p_{lab}"] for lab in labels]).T
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert table.meta["prompts"] == labels
    # A single image gives a one-row table.
    assert len(classify(imgs[0], labels, model=model)) == 1


@pytest.mark.parametrize(
    "labels, template, err",
    [
        (["spiral"], None, ValueError),
        (["spiral", "spiral"], None, ValueError),
        (["spiral", ""], None, ValueError),
        ("spiral", None, TypeError),
        (["spiral", "ring"], "no placeholder", ValueError),
    ],
)
def test_classify_bad_labels(labels, template, err):
    model = GalaxyModel.from_config({"dim": 8}, seed=1)
    kwargs = {} if template is None else {"template": template}
    with pytest.raises(err):
        classify(np.zeros((32, 32, 3), np.uint8), labels, model=model, **kwargs)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((3, 40, 40), np.nan, np.float32), "all NaN"),
        (np.zeros((40, 40, 3), np.uint8), "blank"),
        (np.full((40, 40, 3), 128, np.uint8), "blank"),
        (np.where(np.eye(40, dtype=bool), np.inf, 0.2)[None].repeat(3, 0), "infinite"),
    ],
)
def test_classify_refuses_images_without_signal(bad, match):
    """An all-NaN image was labelled "ring" at 0.82: such images get no label, and the message names them."""
    from astro_semsearch.exceptions import InvalidInputError

    model = GalaxyModel.from_config({"dim": 8}, seed=1)
    red, _ = _images()
    with pytest.raises(InvalidInputError, match=f"image at index 1 of 2 .*{match}"):
        classify([red, bad], ["ring", "spiral"], model=model)


def test_classify_names_the_refused_file(tmp_path):
    from PIL import Image

    from astro_semsearch.exceptions import InvalidInputError

    model = GalaxyModel.from_config({"dim": 8}, seed=1)
    red, blue = _images()
    paths = []
    for name, img in (("red.png", red), ("grey.png", np.full((40, 40, 3), 77, np.uint8)), ("blue.png", blue)):
        Image.fromarray(img).save(tmp_path / name)
        paths.append(str(tmp_path / name))
    with pytest.raises(InvalidInputError, match=r"image at index 1 of 3 \(file .*grey\.png\) is blank"):
        classify(paths, ["ring", "spiral"], model=model)
