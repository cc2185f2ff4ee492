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
    # not negations
    ("featureless elliptical", "featureless elliptical", []),
    ("nothing odd", "nothing odd", []),
    ("nova remnant", "nova remnant", []),
    ("uniform disk", "uniform disk", []),
    ("barred spiral", "barred spiral", []),
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
