"""Tests of the Galaxy Zoo concepts, the concept loss, the weighted sampler and the sky-padded zoom."""
import numpy as np
import pytest
import torch

from astro_semsearch.training.concepts import (CONCEPTS, ConceptCaptioner, concept_strings, concept_targets,
                                               vote_matrix)
from astro_semsearch.datasets import GZ2_COLUMNS
from astro_semsearch.training.losses import concept_loss

IDS = [c.id for c in CONCEPTS]


def _record(n=37, **votes):
    r = {"n_vote_columns": n}
    for c in GZ2_COLUMNS:
        r[c] = 0.0 if n == 37 or c.split(".")[0] in ("Class1", "Class2", "Class6", "Class7", "Class8") else np.nan
    r.update({k.replace("_", "."): v for k, v in votes.items()})
    return r


def test_every_galaxy_zoo_answer_has_a_concept():
    cols = {c for c in GZ2_COLUMNS if c not in ("Class3.2", "Class6.2", "Class11.6")}  # negatives / can't tell
    fake = np.eye(len(GZ2_COLUMNS))
    covered = set()
    for c in CONCEPTS:
        if c.id in ("Sa", "Sb", "Sc"):
            continue
        v = c.target(fake)
        covered |= {GZ2_COLUMNS[i] for i in np.flatnonzero(v > 0)}
    assert cols <= covered


def test_targets_are_the_weighted_fractions_and_unknown_is_nan():
    t = concept_targets([_record(Class3_1=0.4, Class8_6=0.7), _record(n=17, Class8_6=0.2)])
    assert t[0, IDS.index("bar")] == pytest.approx(0.4)
    assert t[0, IDS.index("merger")] == pytest.approx(0.7)
    assert np.isnan(t[1, IDS.index("bar")])          # not asked in a 17-column record
    assert np.isnan(t[1, IDS.index("Sc")])
    assert t[1, IDS.index("merger")] == pytest.approx(0.2)
    assert vote_matrix([_record()]).shape == (1, 37)


def test_hubble_types_follow_bulge_and_winding():
    sa = _record(Class4_1=0.8, Class5_4=0.5, Class10_1=0.6)
    sc = _record(Class4_1=0.8, Class5_1=0.5, Class10_3=0.6)
    t = concept_targets([sa, sc])
    assert t[0, IDS.index("Sa")] > t[0, IDS.index("Sc")]
    assert t[1, IDS.index("Sc")] > t[1, IDS.index("Sa")]


def test_wordings_are_negation_free_and_exclusions_hold():
    for c in CONCEPTS:
        ss = concept_strings(c, exclude=["bar"])
        assert ss and len(ss) == len(set(ss))
        for s in ss:
            assert not any(f" {w} " in f" {s.lower()} " for w in ("no", "not", "without", "unbarred", "non"))
            assert "galaxy galaxy" not in s
    assert "bar" not in concept_strings(CONCEPTS[IDS.index("bar")], exclude=["BAR"])
    one_words = {w for c in CONCEPTS for w in c.words if " " not in w}
    assert {"elliptical", "bar", "merger", "ring", "edge-on", "spiral", "irregular", "lens", "dust"} <= one_words


def test_concept_captioner():
    rec = _record(n=17, Class1_1=0.1, Class1_2=0.9, Class6_1=0.9, Class8_6=0.8)
    caps = ConceptCaptioner()(rec, np.random.default_rng(0), n=30)
    merger_words = {w.lower() for w in CONCEPTS[IDS.index("merger")].words}
    assert sum(any(w in c.lower() for w in merger_words) for c in caps) > 15
    assert ConceptCaptioner()({"coarse_label": "spiral"}, np.random.default_rng(0), n=3) == []


def test_concept_loss_prefers_the_right_direction():
    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]), dim=-1)
    targets = torch.tensor([[0.9], [0.0], [float("nan")]])
    good = concept_loss(img, torch.tensor([[1.0, 0.0]]), targets, torch.tensor(10.0))
    bad = concept_loss(img, torch.tensor([[0.0, 1.0]]), targets, torch.tensor(10.0))
    assert good < bad
    # Unknown relevance everywhere / no gain: no term.
    assert concept_loss(img, torch.tensor([[1.0, 0.0]]), torch.full((3, 1), float("nan")), torch.tensor(1.0)) == 0
    assert concept_loss(img, torch.tensor([[1.0, 0.0]]), torch.zeros(3, 1), torch.tensor(1.0)) == 0


def test_sky_padding_fills_with_background_not_mirrors():
    from astro_semsearch.training.augment import Augment, reframe

    img = np.full((1, 40, 40, 3), 20, np.uint8)
    img[:, 18:22, 18:22] = 250  # a bright "galaxy" in the centre
    out = reframe(img, 0.5)
    assert out.shape == img.shape
    bright = (out[0].max(-1) > 200).sum()
    assert 1 <= bright <= 8  # one shrunken copy, no mirrored ghosts
    assert abs(int(np.median(out)) - 20) <= 1
    aug = Augment(out_size=32, crop_fraction=1.0, scale=(0.5, 0.5), rotate=False, flip=False, shift=0.0,
                  blur_sigma=(0.0, 0.0), noise=0.0, brightness=0.0, pad="sky")
    x = aug(torch.from_numpy(img), generator=torch.Generator().manual_seed(0))
    assert int((x[0].amax(0) > 0.8).sum()) <= 4


def test_reframe_zoom_in_enlarges():
    from astro_semsearch.training.augment import reframe

    img = np.zeros((1, 40, 40, 3), np.uint8)
    img[:, 18:22, 18:22] = 250
    assert (reframe(img, 2.0)[0].max(-1) > 200).sum() > 16


def test_weighted_sampler_draws_rare_voted_galaxies_more_often():
    from astro_semsearch.training.stages import sampling_weights

    t = torch.full((4, len(CONCEPTS)), float("nan"))
    t[1:] = 0.0
    t[2, IDS.index("ring")] = 0.2
    t[3, IDS.index("ring")] = 0.9
    w = sampling_weights(t, [IDS.index("ring")], voted_weight=3.0, rare_boost=10.0)
    assert w.tolist() == pytest.approx([1.0, 3.0, 5.0, 12.0])


def test_held_out_texts_cover_both_evaluation_sets():
    from astro_semsearch.evaluation.protocol import load_queries
    from astro_semsearch.evaluation.wordings import load_wordings
    from astro_semsearch.training.concepts import held_out_texts

    held = set(held_out_texts())
    assert {q for v in load_queries().values() for q in v} <= held
    assert {q["text"] for q in load_wordings()["query"]} <= held
    # A concept wording that is also an evaluation query is never a training string.
    for c in CONCEPTS:
        assert not set(concept_strings(c, held)) & held
