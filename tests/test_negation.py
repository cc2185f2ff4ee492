"""Negations in text queries: parsed into negatives, searched as such, recorded in the meta."""
import numpy as np
import pytest
from astropy.table import Table

from astro_semsearch import semantic_search
from astro_semsearch.index import GalaxyIndex
from astro_semsearch.rerank import rerank
from astro_semsearch.search.negation import split_negation
from fakes import WordModel

VOCAB = {"ring": 0, "spiral": 1, "bar": 2, "galaxy": 3, "elliptical": 4, "edge-on": 5}


@pytest.mark.parametrize("text, wanted, unwanted", [
    ("galaxy without a ring", "galaxy", ["ring"]),
    ("galaxy with no ring", "galaxy", ["ring"]),
    ("no bar", "a galaxy", ["bar"]),
    ("not smooth", "a galaxy", ["smooth"]),
    ("a galaxy that is not edge-on", "a galaxy", ["edge-on"]),
    ("non-elliptical galaxy", "galaxy", ["elliptical"]),
    ("non-edge-on discs", "discs", ["edge-on"]),
    ("unbarred spiral", "spiral", ["bar"]),
    ("NO SIGN OF A MERGER", "a galaxy", ["MERGER"]),
    ("isolated galaxy, no sign of a merger", "isolated galaxy", ["merger"]),
    ("galaxy with no spiral arms and a big bulge", "galaxy with a big bulge", ["spiral arms"]),
    ("no bar and no ring", "a galaxy", ["bar", "ring"]),
    ("a smooth galaxy with no disk, arms or other structure", "a smooth galaxy", ["disk", "arms", "other structure"]),
    ("not a spiral, but an elliptical", "an elliptical", ["spiral"]),
    ("bar-free disk", "disk", ["bar"]),
    ("galaxies that aren't smooth", "galaxies", ["smooth"]),
    ("spiral that doesn't have a bar", "spiral", ["bar"]),
    ("no tidal tails - just a normal galaxy", "just a normal galaxy", ["tidal tails"]),
    # not negations
    ("featureless elliptical", "featureless elliptical", []),
    ("nothing odd", "nothing odd", []),
    ("nova remnant", "nova remnant", []),
    ("uniform disk", "uniform disk", []),
    ("barred spiral", "barred spiral", []),
    ("carefree galaxy", "carefree galaxy", []),
    ("E - S0 transition", "E - S0 transition", []),
])
def test_split_negation(text, wanted, unwanted):
    assert split_negation(text) == (wanted, unwanted)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(3)
    n = 40
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    table = Table({"object_id": [f"G{i}" for i in range(n)], "ra": 10 + 0.05 * np.arange(n), "dec": np.zeros(n)})
    model = WordModel(VOCAB, 8, name="words", fingerprint="9" * 64)
    return GalaxyIndex.build(vecs, table, model=model, name="neg"), model


def test_a_negated_query_searches_like_an_explicit_negative(setup):
    index, model = setup
    parsed = semantic_search("galaxy without a ring", k=10, index=index, model=model, min_separation=None)
    explicit = semantic_search("galaxy", negative="ring", k=10, index=index, model=model, min_separation=None)
    assert parsed["object_id"].tolist() == explicit["object_id"].tolist()
    np.testing.assert_allclose(parsed["score"], explicit["score"], rtol=0, atol=1e-6)
    meta = parsed.meta["astro_semsearch"]
    assert meta["query"] == "galaxy without a ring" and meta["parsed_negative"] == ["ring"]
    assert meta["negation"] is True and meta["negative"] is None
    raw = semantic_search("galaxy without a ring", k=10, index=index, model=model, min_separation=None,
                          negation=False)
    assert raw["object_id"].tolist() != parsed["object_id"].tolist()  # the raw text points at rings
    assert "parsed_negative" not in raw.meta["astro_semsearch"]


def test_rerank_rebuilds_the_parsed_query(setup):
    index, model = setup
    hits = semantic_search("unbarred spiral", k=10, index=index, model=model, min_separation=None)
    out = rerank(hits, "expansion", weight=0.0, index=index, model=model)  # re-scores by the rebuilt query
    assert out["object_id"].tolist() == hits["object_id"].tolist()  # the same query: expansion by 0 keeps the order


@pytest.mark.parametrize("term, answer", [
    ("spiral arms", "no_arms"), ("spirals", "no_arms"), ("spiral structure", "no_arms"),
    ("edge-on", "face_on"), ("edge-on view", "face_on"), ("elliptical", "features"), ("smooth blobs", "features"),
    ("bar", None), ("merger", None), ("odd features", None), ("tidal tails", None),
])
def test_a_negated_answer_of_a_yes_no_question_names_the_other_answer(term, answer):
    from astro_semsearch.search.negation import opposite_answer
    from astro_semsearch.training.concepts import CONCEPTS, held_out_texts

    got = opposite_answer(term)
    assert (got and got[0]) == answer
    if answer:
        trained = {w for c in CONCEPTS if c.id == answer for w in c.words}
        held = {t.lower() for t in held_out_texts()}
        assert got[1] and set(got[1]) <= trained
        assert not {w.lower() for w in got[1]} & held  # the evaluation's strings stay out, as in training


def test_no_spiral_arms_searches_for_the_no_arms_answer_instead_of_subtracting(setup):
    from astro_semsearch.search import Query
    from astro_semsearch.search.negation import opposite_answer
    from astro_semsearch.search.query import query_vector

    index, model = setup
    q = Query.from_text(model, "disk galaxy with no spiral arms or ring")
    assert q.parsed_negative == ["spiral arms", "ring"] and q.opposite_answers == ["no_arms"]
    words = opposite_answer("spiral arms")[1]
    expected = query_vector(model, ["disk galaxy"], negative=["ring"], answer=words)
    np.testing.assert_allclose(q.vector, expected, rtol=0, atol=1e-6)
    subtracted = query_vector(model, ["disk galaxy"], negative=["spiral arms", "ring"])
    assert float(q.vector @ subtracted) < 0.999  # not the old recipe
    hits = semantic_search("disk galaxy with no spiral arms or ring", k=5, index=index, model=model,
                           min_separation=None)
    meta = hits.meta["astro_semsearch"]
    assert meta["opposite_answers"] == ["no_arms"] and meta["parsed_negative"] == ["spiral arms", "ring"]
    again = Query.from_meta(meta, model=model)
    np.testing.assert_allclose(again.vector, q.vector, rtol=0, atol=1e-6)


def test_the_answer_tables_are_the_training_vocabulary():
    """negation.py's tables are the concepts' wordings, the evaluation's held-out strings aside."""
    from astro_semsearch.search.negation import _ANSWER_OF, _normal, ANSWER_WORDINGS, OPPOSITE_ANSWERS
    from astro_semsearch.training.concepts import CONCEPTS, held_out_texts

    held = {_normal(t) for t in held_out_texts()}
    words = {c.id: c.words for c in CONCEPTS}
    assert set(ANSWER_WORDINGS) == set(OPPOSITE_ANSWERS) == set(OPPOSITE_ANSWERS.values())
    for answer, mine in ANSWER_WORDINGS.items():
        assert list(mine) == [w for w in words[answer] if _normal(w) not in held]
        # every wording of the answer, held out or not, names it when negated
        assert {_normal(w) for w in words[answer]} <= {k for k, a in _ANSWER_OF.items() if a == answer}


def test_a_negated_query_is_embedded_in_one_pass():
    from astro_semsearch.search import Query

    model = WordModel(VOCAB, 8)
    Query.from_text(model, "disk galaxy with no spiral arms or ring")  # wanted + answer wordings + negative
    assert len(model.text_calls) == 1
    assert model.text_calls[0][0] == "disk galaxy" and model.text_calls[0][-1] == "ring"
