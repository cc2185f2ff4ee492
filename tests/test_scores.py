"""Scores against the index's background, the match verdict and NoGoodMatchWarning, the model's text bank."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.table import Table

from astro_semsearch import NoGoodMatchWarning, semantic_search
from astro_semsearch.exceptions import ModelLoadError
from astro_semsearch.index import GalaxyIndex
from astro_semsearch.model import GalaxyModel, encode_sentences, load_model
from astro_semsearch.search.scores import hit_statistics, match_verdict

GALAXY_PHRASES = ["a ring galaxy", "a barred spiral galaxy", "an edge-on disk galaxy", "two merging galaxies"]


def test_hit_statistics_by_hand():
    background = np.sort(np.array([0.1, 0.2, 0.3, 0.4, 0.5]))
    pct, excess = hit_statistics(background, [0.45, 0.05, 0.6])
    assert pct.tolist() == [80.0, 0.0, 100.0]
    np.testing.assert_allclose(excess, [0.15, -0.25, 0.3])
    pct, excess = hit_statistics(np.array([]), [0.5])
    assert np.isnan(pct).all() and np.isnan(excess).all()


@pytest.fixture(scope="module")
def banked(tiny_model_dir, tmp_path_factory):
    """The tiny model with a text bank of galaxy phrases and a text-similarity threshold, and an index of it."""
    model = load_model(tiny_model_dir)
    model = GalaxyModel.load(model.save(tmp_path_factory.mktemp("m") / "tiny"))  # a private copy
    model.text_bank = encode_sentences(GALAXY_PHRASES).astype(np.float16)
    model.config["score_calibration"] = {"min_text_similarity": 0.45}
    rng = np.random.default_rng(1)
    n = 30
    images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    table = Table({"object_id": [f"G{i}" for i in range(n)], "ra": rng.uniform(0, 360, n),
                   "dec": rng.uniform(-60, 60, n)})
    return model, GalaxyIndex.build(model.embed_images(images), table, model=model, name="banked")


def test_off_topic_text_gets_a_warning_on_topic_none(banked):
    model, index = banked
    assert model.text_similarity("a photo of my cat")[0] < 0.45 < model.text_similarity("ring galaxy")[0]
    with pytest.warns(NoGoodMatchWarning, match="unlike anything the model was trained on") as record:
        hits = semantic_search("a photo of my cat", k=3, index=index, model=model)
    assert record[0].filename == __file__  # the warning points at the user's line
    match = hits.meta["astro_semsearch"]["match"]
    assert match["good"] is False and match["text_similarity"] < 0.45 and len(hits) == 3  # hits are still returned
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoGoodMatchWarning)
        hits = semantic_search("ring galaxy", k=3, index=index, model=model)
    assert hits.meta["astro_semsearch"]["match"]["good"] is True


def test_nothing_better_than_the_background(banked):
    model, index = banked
    old = dict(model.config["score_calibration"])
    model.config["score_calibration"] = {"min_excess": 5.0}  # no cosine margin can reach it
    try:
        with pytest.warns(NoGoodMatchWarning, match="better than the index's background"):
            semantic_search("ring galaxy", k=3, index=index, model=model)
    finally:
        model.config["score_calibration"] = old
    verdict = match_verdict(model, None, 0.2)  # no text, a margin: only the text test is skipped
    assert verdict["good"] is True and verdict["text_similarity"] is None


def test_text_bank_round_trips_and_is_checked(banked, tmp_path):
    model, _ = banked
    path = model.save(tmp_path / "with-bank")
    again = GalaxyModel.load(path)
    np.testing.assert_array_equal(again.text_bank, model.text_bank)
    assert again.config["score_calibration"] == {"min_text_similarity": 0.45}
    bank = path / "text_bank.safetensors"
    raw = bytearray(bank.read_bytes())
    raw[-3] ^= 0xFF
    bank.write_bytes(bytes(raw))
    with pytest.raises(ModelLoadError, match="sha256"):
        GalaxyModel.load(path)
    bank.unlink()
    with pytest.raises(ModelLoadError, match="text bank"):
        GalaxyModel.load(path)


def test_the_calibration_threshold_flags_the_asked_share_of_off_topic_phrases():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data" / "recipes" / "calibrate_scores.py"
    spec = importlib.util.spec_from_file_location("calibrate_scores", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    rng = np.random.default_rng(0)
    for n in (5, 36, 101):
        sims = rng.uniform(0.2, 0.8, n)
        for fraction in (0.5, 0.9, 1.0):
            t = recipe.off_topic_threshold(sims, fraction)
            flagged = int((sims < t).sum())
            assert flagged >= int(np.ceil(fraction * n - 1e-9))
            assert flagged == int(np.ceil(fraction * n - 1e-9))  # and no more than needed
    with pytest.raises(ValueError, match="no off-topic calibration phrases"):
        recipe.off_topic_threshold(np.array([]), 0.9)
    with pytest.raises(ValueError, match="must be in"):
        recipe.off_topic_threshold(sims, 0.0)
