"""Re-ranking (astro_semsearch.rerank): the plumbing, the three vector re-rankers, search and evaluation hooks.

Every expected order is computed by hand or by brute force on a small index
built from random unit vectors, with a toy model whose text embedding is a
fixed direction per word (as in test_search.py).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from fakes import BrightnessModel, WordModel, unit

from astro_semsearch import semantic_search, similar_to
from astro_semsearch.evaluation import evaluate, ndcg_at_k, parse_reranker, recall_at_k
from astro_semsearch.index import GalaxyIndex
from astro_semsearch.rerank import (
    ExpansionReranker,
    FeedbackReranker,
    GalaxIDNetReranker,
    Reranker,
    RerankQuery,
    feedback_search,
    galaxidnet_similarity,
    get_reranker,
    rerank,
)

DIM = 6
VOCAB = {"ring": 0, "spiral": 1, "bar": 2, "merger": 3}


def ToyModel():
    return WordModel(VOCAB, DIM, name="toy", fingerprint="5" * 64)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(7)
    n = 60
    vecs = unit(rng.normal(size=(n, DIM))).astype(np.float32)
    # Galaxies spread over a few degrees, so near-duplicate removal never fires.
    table = Table({"object_id": [f"G{i:02d}" for i in range(n)], "ra": (10 + 0.1 * np.arange(n)) * u.deg,
                   "dec": np.zeros(n) * u.deg, "mag": rng.uniform(14, 19, n)})
    model = ToyModel()
    index = GalaxyIndex.build(vecs, table, model=model, name="toy-rerank")
    return index, model, vecs


def order_by(scores):
    return np.argsort(-np.asarray(scores), kind="stable")


class ColumnReranker(Reranker):
    """Scores = a column of the candidates (so every expected order is obvious)."""

    name = "column"

    def __init__(self, column="mag", sign=-1.0):
        self.column, self.sign = column, sign
        self.calls = []

    def describe(self):
        return {"column": self.column}

    def __call__(self, query, candidates, *, vectors, images=None):
        self.calls.append((query, len(candidates), vectors.shape, images))
        return self.sign * np.asarray(candidates[self.column], dtype=float)


def small_results(mags, ids=None):
    n = len(mags)
    return Table({"rank": np.arange(1, n + 1), "object_id": ids or [f"o{i}" for i in range(n)],
                  "score": np.linspace(0.9, 0.5, n), "mag": np.asarray(mags, float)},
                 meta={"astro_semsearch": {"query": "x"}})


# --------------------------------------------------------------------------- plumbing
def test_rerank_orders_renumbers_and_keeps_score():
    hits = small_results([18.0, 15.0, 17.0, 16.0])
    rr = ColumnReranker()
    out = rerank(hits, rr, query=np.ones(3), vectors=np.eye(4, 3))
    assert out["object_id"].tolist() == ["o1", "o3", "o2", "o0"]
    assert out["rank"].tolist() == [1, 2, 3, 4]
    assert out["search_rank"].tolist() == [2, 4, 3, 1]
    np.testing.assert_allclose(out["score"], np.linspace(0.9, 0.5, 4)[[1, 3, 2, 0]])
    np.testing.assert_allclose(out["rerank_score"], [-15, -16, -17, -18])
    assert out.colnames == ["rank", "object_id", "score", "rerank_score", "search_rank", "mag"]
    rec = out.meta["astro_semsearch"]["rerank"]
    assert rec["name"] == "column" and rec["parameters"] == {"column": "mag"} and rec["top_n"] == 4
    assert rec["seconds"] >= 0
    assert out.meta["astro_semsearch"]["query"] == "x"
    # the input is not modified
    assert hits.colnames == ["rank", "object_id", "score", "mag"] and "rerank" not in hits.meta["astro_semsearch"]
    # the query vector is normalised before the re-ranker sees it
    np.testing.assert_allclose(rr.calls[0][0].vector, np.ones(3) / np.sqrt(3))


def test_top_n_tail_keeps_order_and_is_masked():
    hits = small_results([18.0, 15.0, 17.0, 10.0, 11.0])
    out = rerank(hits, ColumnReranker(), top_n=3, query=np.ones(2), vectors=np.ones((3, 2)))
    # only the first three are re-ordered; the brighter galaxies after them stay below
    assert out["object_id"].tolist() == ["o1", "o2", "o0", "o3", "o4"]
    assert out["rerank_score"].mask.tolist() == [False, False, False, True, True]
    assert out["search_rank"].tolist() == [2, 3, 1, 4, 5]
    assert out.meta["astro_semsearch"]["rerank"]["top_n"] == 3
    # top_n beyond the table is clipped
    assert rerank(hits, ColumnReranker(), top_n=50, query=np.ones(2),
                  vectors=np.ones((5, 2))).meta["astro_semsearch"]["rerank"]["top_n"] == 5


def test_ties_keep_search_order_and_nan_goes_last():
    hits = small_results([16.0, 15.0, 16.0, 15.0])
    out = rerank(hits, ColumnReranker(), query=np.ones(2), vectors=np.ones((4, 2)))
    assert out["object_id"].tolist() == ["o1", "o3", "o0", "o2"]

    hits = small_results([np.nan, 15.0, 16.0])
    with pytest.warns(AstropyUserWarning, match="could not score 1 of 3"):
        out = rerank(hits, ColumnReranker(), query=np.ones(2), vectors=np.ones((3, 2)))
    assert out["object_id"].tolist() == ["o1", "o2", "o0"]
    assert out["rerank_score"].mask.tolist() == [False, False, True]


def test_chained_rerank_keeps_the_search_rank_and_history():
    hits = small_results([18.0, 15.0, 17.0])
    once = rerank(hits, ColumnReranker(), query=np.ones(2), vectors=np.ones((3, 2)))
    twice = rerank(once, ColumnReranker(sign=1.0), query=np.ones(2), vectors=np.ones((3, 2)))
    assert twice["object_id"].tolist() == ["o0", "o2", "o1"]
    assert twice["search_rank"].tolist() == [1, 3, 2]  # still the search's rank, not the first re-ranking's
    assert twice.colnames.count("rerank_score") == 1
    assert twice.meta["astro_semsearch"]["rerank"]["previous"]["name"] == "column"


def test_images_are_passed_in_candidate_order():
    class Looks(ColumnReranker):
        needs_images = True

    hits = small_results([18.0, 15.0, 17.0])
    imgs = [np.full((4, 4, 3), i, np.uint8) for i in range(3)]
    rr = Looks()
    rerank(hits, rr, top_n=2, query=np.ones(2), vectors=np.ones((2, 2)), images=imgs)
    got = rr.calls[0][3]
    assert len(got) == 2 and got[1][0, 0, 0] == 1
    with pytest.raises(ValueError, match="images has 1 entries"):
        rerank(hits, Looks(), query=np.ones(2), vectors=np.ones((3, 2)), images=imgs[:1])


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda h: rerank(h, "nonsense", query=np.ones(2), vectors=np.ones((3, 2))), ValueError, "unknown re-ranker"),
        (lambda h: rerank(h, 3.0), TypeError, "reranker must be"),
        (lambda h: rerank(h, ColumnReranker(), top_n=0, query=np.ones(2), vectors=np.ones((3, 2))),
         ValueError, "top_n must be >= 1"),
        (lambda h: rerank(h, ColumnReranker(), top_n=True, query=np.ones(2), vectors=np.ones((3, 2))),
         TypeError, "top_n must be an integer"),
        (lambda h: rerank(h[:0], ColumnReranker(), query=np.ones(2), vectors=np.ones((0, 2))),
         ValueError, "nothing to re-rank"),
        (lambda h: rerank([1, 2], ColumnReranker()), TypeError, "astropy Table"),
        (lambda h: rerank(h, ColumnReranker(), query=np.ones(2), vectors=np.ones((3, 5))),
         ValueError, r"shape \(n, 2\)"),
        (lambda h: rerank(h, ColumnReranker(), query=np.ones(2), vectors=np.ones((2, 2))),
         ValueError, "2 rows but there are 3"),
        (lambda h: rerank(h, ColumnReranker(), query=np.zeros(2), vectors=np.ones((3, 2))),
         ValueError, "no direction"),
        (lambda h: rerank(h, ColumnReranker(), vectors=np.ones((3, 2))), ValueError, "which index"),
        (lambda h: rerank(h, ExpansionReranker(), n=3), TypeError, "only be given with a re-ranker name"),
        (lambda h: rerank(h, "expansion", weight=2.0), ValueError, "weight"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(small_results([18.0, 15.0, 17.0]))


def test_wrong_number_of_scores_is_an_error():
    class Short(Reranker):
        name = "short"

        def __call__(self, query, candidates, *, vectors, images=None):
            return np.zeros(len(candidates) - 1)

    with pytest.raises(ValueError, match="returned 2 scores for 3"):
        rerank(small_results([1.0, 2.0, 3.0]), Short(), query=np.ones(2), vectors=np.ones((3, 2)))
    with pytest.raises(NotImplementedError):
        Reranker()(RerankQuery(None, [1.0]), Table(), vectors=np.ones((0, 1)))


def test_get_reranker_names():
    assert isinstance(get_reranker("Expansion"), ExpansionReranker)
    assert isinstance(get_reranker("galaxidnet", weights=(1, 0, 0)), GalaxIDNetReranker)
    assert isinstance(get_reranker("feedback", good=["G01"]), FeedbackReranker)
    with pytest.raises(ValueError, match="at least one hit"):
        get_reranker("feedback")


# --------------------------------------------------------------------------- the re-rankers' arithmetic
def test_rocchio_moves_the_query_as_expected():
    q = RerankQuery(None, [1.0, 0.0, 0.0])
    good = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])  # normalised before averaging
    bad = np.array([[0.0, -1.0, 0.0]])
    fb = FeedbackReranker(good=good, bad=bad, alpha=1.0, beta=0.5, gamma=0.5)
    expected = unit([1.0, 0.5 * 0.5 + 0.5 * 1.0, 0.5 * 0.5])  # alpha q + beta mean(good) - gamma mean(bad)
    np.testing.assert_allclose(fb.moved_query(q), expected, atol=1e-12)
    cands = unit(np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.6, -0.8, 0.0]]))
    scores = fb(q, Table({"object_id": ["a", "b", "c"]}), vectors=cands)
    np.testing.assert_allclose(scores, cands @ expected, atol=1e-6)  # vectors are float32 like the index
    assert order_by(scores).tolist() == [1, 0, 2]  # toward good, away from bad
    assert fb.describe()["beta"] == 0.5
    with pytest.raises(ValueError, match="cancels"):
        FeedbackReranker(bad=np.array([[1.0, 0.0, 0.0]]), gamma=1.0).moved_query(q)


def test_expansion_matches_a_hand_computation():
    q = RerankQuery(["bar"], [1.0, 0.0, 0.0])
    vecs = unit(np.array([[0.8, 0.6, 0.0], [0.8, 0.0, 0.6], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    ex = ExpansionReranker(n=2, weight=0.4)
    centroid = unit(vecs[:2].mean(axis=0))
    moved = unit(0.6 * np.array([1.0, 0, 0]) + 0.4 * centroid)
    scores = ex(q, Table({"object_id": list("abcd")}), vectors=vecs)
    np.testing.assert_allclose(scores, vecs @ moved, atol=1e-6)
    # weight 0 keeps the search order, n larger than the candidates uses them all
    np.testing.assert_allclose(ExpansionReranker(n=1, weight=0)(q, Table({"object_id": list("abcd")}),
                                                                  vectors=vecs), vecs @ [1.0, 0, 0])
    all4 = ExpansionReranker(n=99, weight=1.0)(q, Table({"object_id": list("abcd")}), vectors=vecs)
    np.testing.assert_allclose(all4, vecs @ unit(vecs.mean(axis=0)), atol=1e-6)
    for bad in (dict(n=0), dict(weight=-0.1), dict(weight=1.5)):
        with pytest.raises(ValueError):
            ExpansionReranker(**bad)
    with pytest.raises(TypeError):
        ExpansionReranker(n=2.5)


def test_galaxidnet_similarity_by_hand():
    a, b = np.array([1.0, 2.0, 2.0]), np.array([1.0, 0.0, 0.0])
    cos = 1 / 3
    l2 = np.sqrt(0 + 4 + 4)
    l3 = (0 + 8 + 8) ** (1 / 3)
    assert galaxidnet_similarity(a, b, (2, 3, 5)) == pytest.approx(2 * cos + 3 / (1 + l2) + 5 / (1 + l3))
    # broadcasting: one query against several candidates
    many = galaxidnet_similarity(b, np.stack([a, b]))
    assert many.shape == (2,) and many[1] == pytest.approx(3.0)
    for bad in ((1, 1), (-1, 1, 1), (0, 0, 0), (np.nan, 1, 1)):
        with pytest.raises(ValueError, match="weights"):
            galaxidnet_similarity(a, b, bad)
    with pytest.raises(ValueError, match="same dimension"):
        galaxidnet_similarity(a, b[:2])
    with pytest.raises(ValueError, match="zero-length"):
        galaxidnet_similarity(a, np.zeros(3))


def test_l3_is_really_minkowski_p3():
    # Differences spread over four coordinates vs concentrated in one: L2 prefers b, L3 prefers a.
    q = np.array([1.0, 0, 0, 0, 0])
    a = q + np.array([0, 1.0, 1.0, 1.0, 1.0])  # |d|_2 = 2,   |d|_3 = 4**(1/3) = 1.587
    b = q + np.array([0, 0, 0, 0, 1.9])        # |d|_2 = 1.9, |d|_3 = 1.9
    l2 = galaxidnet_similarity(q, np.stack([a, b]), (0, 1, 0))
    l3 = galaxidnet_similarity(q, np.stack([a, b]), (0, 0, 1))
    np.testing.assert_allclose(l2, [1 / 3, 1 / 2.9])
    np.testing.assert_allclose(l3, [1 / (1 + 4 ** (1 / 3)), 1 / 2.9])
    assert l2[1] > l2[0] and l3[0] > l3[1]

    # The same on unit vectors, through the re-ranker: cosine ranks b first, the L3 term ranks a first.
    qv = RerankQuery(None, [1.0, 0, 0, 0])
    s = np.sqrt(0.75)
    ua = np.array([0.5, s / np.sqrt(3), s / np.sqrt(3), s / np.sqrt(3)])  # cos 0.5, difference spread out
    ub = np.array([0.6, 0.8, 0.0, 0.0])                                   # cos 0.6, difference in one axis
    cands = Table({"object_id": ["a", "b"]})
    assert order_by(GalaxIDNetReranker((1, 1, 0))(qv, cands, vectors=np.stack([ua, ub]))).tolist() == [1, 0]
    assert order_by(GalaxIDNetReranker((0, 0, 1))(qv, cands, vectors=np.stack([ua, ub]))).tolist() == [0, 1]


# --------------------------------------------------------------------------- with an index and a search
def test_semantic_search_rerank_integration(setup):
    index, model, vecs = setup
    k, top_n = 5, 20
    hits = semantic_search("ring", k=k, index=index, model=model, min_separation=None,
                           rerank="expansion", rerank_top_n=top_n)
    q = model.text_vector("ring")
    order = order_by(vecs @ q)
    cand = order[:top_n]
    moved = unit(0.5 * q + 0.5 * unit(unit(vecs[cand[:10]]).mean(axis=0)))
    expect = cand[order_by(vecs[cand] @ moved)][:k]
    assert hits["object_id"].tolist() == [f"G{i:02d}" for i in expect]
    assert len(hits) == k and hits["rank"].tolist() == list(range(1, k + 1))
    np.testing.assert_allclose(hits["score"], (vecs @ q)[expect], atol=1e-5)
    assert hits["search_rank"].tolist() == [int(np.flatnonzero(order == i)[0]) + 1 for i in expect]
    meta = hits.meta["astro_semsearch"]
    assert meta["k"] == k and meta["rerank"]["name"] == "expansion" and meta["rerank"]["top_n"] == top_n

    # rerank_top_n below k: the tail keeps the search order, unscored
    few = semantic_search("ring", k=8, index=index, model=model, min_separation=None,
                          rerank=GalaxIDNetReranker(), rerank_top_n=3)
    assert few["object_id"].tolist()[3:] == [f"G{i:02d}" for i in order[3:8]]
    assert few["rerank_score"].mask.tolist() == [False] * 3 + [True] * 5
    # rerank_top_n beyond the index is clipped without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = semantic_search("ring", k=4, index=index, model=model, min_separation=None,
                              rerank="galaxidnet", rerank_top_n=10_000)
    assert len(big) == 4 and big.meta["astro_semsearch"]["rerank"]["top_n"] == index.ntotal
    with pytest.raises(ValueError, match="unknown re-ranker"):
        semantic_search("ring", index=index, model=model, rerank="vlmm")
    with pytest.raises(ValueError, match="rerank_top_n"):
        semantic_search("ring", index=index, model=model, rerank="expansion", rerank_top_n=0)


def test_rerank_rebuilds_the_query_from_the_meta(setup):
    index, model, vecs = setup
    hits = semantic_search("spiral", k=15, index=index, model=model, min_separation=None,
                           negative="bar", negative_weight=0.4)
    out = rerank(hits, GalaxIDNetReranker((0, 0, 1)), index=index, model=model)  # no query given
    q = unit(unit(model.text_vector("spiral")) - 0.4 * model.text_vector("bar"))
    rows = index.rows_of(hits["object_id"])
    expect = rows[order_by(galaxidnet_similarity(q, vecs[rows], (0, 0, 1)))]
    assert out["object_id"].tolist() == [f"G{i:02d}" for i in expect]
    # the index named in the meta is found by itself when it was saved to disk
    twins = similar_to("G03", k=10, index=index, min_separation=None)
    out = rerank(twins, "expansion", index=index)  # the target's stored vector: no model needed
    assert sorted(out["object_id"]) == sorted(twins["object_id"])
    assert out.meta["astro_semsearch"]["function"] == "similar_to"
    # a text query given explicitly is embedded with the index's model
    a = rerank(hits, "galaxidnet", query="spiral", index=index, model=model)
    b = rerank(hits, "galaxidnet", query=model.text_vector("spiral"), index=index)
    assert a["object_id"].tolist() == b["object_id"].tolist()


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_rerank_sees_exactly_the_query_the_search_used(setup, weight):
    """The vector rebuilt from the meta is the search's own, even for negative_weight=0 (not a default)."""
    index, model, _ = setup
    hits = semantic_search("spiral", k=8, index=index, model=model, min_separation=None, negative="bar",
                           negative_weight=weight)
    rr = ColumnReranker()
    rerank(hits, rr, index=index, model=model)  # no query given: rebuilt from the meta
    expected = unit(unit(model.text_vector("spiral")) - weight * model.text_vector("bar"))
    np.testing.assert_allclose(rr.calls[0][0].vector, expected, rtol=0, atol=1e-6)
    assert hits.meta["astro_semsearch"]["negative_weight"] == weight
    # the search's scores are the cosine with that same vector
    rows = index.rows_of(hits["object_id"])
    np.testing.assert_allclose(hits["score"], index.vectors(rows) @ expected, rtol=0, atol=1e-5)


def test_rerank_needs_the_candidates_in_the_index(setup):
    index, model, _ = setup
    hits = semantic_search("ring", k=5, index=index, model=model, min_separation=None)
    hits["object_id"] = hits["object_id"].astype("U12")
    hits["object_id"][2] = "NOT-THERE"
    with pytest.raises(ValueError, match=r"1 of the re-ranked rows are not in index .*NOT-THERE"):
        rerank(hits, "expansion", index=index, model=model)


def test_feedback_marks_as_ids_rows_and_row_numbers(setup):
    index, model, vecs = setup
    hits = semantic_search("merger", k=12, index=index, model=model, min_separation=None)
    good_ids = [hits["object_id"][5], hits["object_id"][9]]
    bad_id = hits["object_id"][0]
    a = rerank(hits, "feedback", good=good_ids, bad=[bad_id], index=index, model=model)
    b = rerank(hits, FeedbackReranker(good=[hits[5], 9], bad=0), index=index, model=model)
    assert a["object_id"].tolist() == b["object_id"].tolist()
    q = model.text_vector("merger")
    rows = index.rows_of(hits["object_id"])
    moved = unit(q + 0.75 * unit(vecs[index.rows_of(good_ids)]).mean(0) - 0.25 * vecs[index.rows_of([bad_id])[0]])
    assert a["object_id"].tolist() == [f"G{i:02d}" for i in rows[order_by(vecs[rows] @ moved)]]
    assert a.meta["astro_semsearch"]["rerank"]["parameters"]["good"] == good_ids
    # a good galaxy need not be among the hits, but it must be in the index
    outside = [i for i in index.table["object_id"] if i not in set(hits["object_id"])][0]
    rerank(hits, "feedback", good=[outside], index=index, model=model)
    with pytest.raises(ValueError, match="not in index"):
        rerank(hits, "feedback", good=["NOPE"], index=index, model=model)
    with pytest.raises(ValueError, match="outside the results table"):
        rerank(hits, "feedback", good=[12], index=index, model=model)
    with pytest.raises(TypeError, match="good entries"):
        rerank(hits, "feedback", good=[1.5], index=index, model=model)
    with pytest.raises(ValueError, match=r"shape \(n, 6\)"):
        rerank(hits, "feedback", good=np.ones((1, 4)), index=index, model=model)


def test_feedback_search_searches_the_whole_index(setup):
    index, model, vecs = setup
    hits = semantic_search("ring", k=5, index=index, model=model, min_separation=None)
    # mark a galaxy that the first search did not return: its neighbours must now come up
    far = order_by(vecs @ model.text_vector("ring"))[-1]
    again = feedback_search(hits, good=[f"G{far:02d}"], beta=3.0, k=6, index=index, model=model)
    moved = unit(model.text_vector("ring") + 3.0 * vecs[far])
    assert again["object_id"].tolist() == [f"G{i:02d}" for i in order_by(vecs @ moved)[:6]]
    meta = again.meta["astro_semsearch"]
    assert meta["function"] == "feedback_search" and meta["query"] == "ring"
    assert meta["feedback"]["good"] == [f"G{far:02d}"] and meta["k"] == 6
    assert len(feedback_search(hits, bad=[0], index=index, model=model)) == 5  # default k: the marked table's


# --------------------------------------------------------------------------- evaluation
def _gz2_dir(root, levels, spiral):
    """A Galaxy Zoo 2 directory of validation galaxies: near-flat images of the given grey levels."""
    from PIL import Image

    from astro_semsearch.datasets import GZ2_COLUMNS, split_of

    (root / "images").mkdir(parents=True)
    rows, gid = [], 200000
    for level, frac in zip(levels, spiral):
        gid += 1
        while split_of(gid) != "val":
            gid += 1
        votes = {c: 0.1 for c in GZ2_COLUMNS}
        votes["Class4.1"] = float(frac)
        img = np.full((24, 24, 3), int(level), np.int16)
        img[::2, ::2] -= 3  # a faint pattern: blank (constant) images are refused by the real model
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "images" / f"{gid}.png")
        rows.append({"file": f"images/{gid}.png", "galaxy_id": gid, "coarse_label": "", "n_vote_columns": 37,
                     **votes})
    Table(rows=rows).write(root / "labels.csv", format="ascii.csv")
    return root


def test_evaluate_rerankers_by_hand(tmp_path):
    # Pool of 6: the relevant galaxies share a direction that the text query only half points to.
    levels = [230, 243, 42, 23, 59, 255]
    rel = np.array([0.0, 0.0, 1.0, 0.9, 0.8, 0.0])
    root = _gz2_dir(tmp_path / "gz2", levels, rel)
    model = BrightnessModel(tilt=[1.0, 0.6])  # ranks the irrelevant ones first
    t = evaluate(model, gz2_root=root, decals_root=None, classes=["spiral"], queries={"spiral": ["q"]},
                 rerank=["feedback", "galaxidnet"], rerank_top_n=6, k_recall=2, feedback_marks=2)
    from astro_semsearch.datasets import load_gz2, load_images

    emb = model.embed_images(load_images(list(load_gz2(root)["path"]), size=80))
    q = unit([1.0, 0.6])
    base_order = order_by(emb @ q)
    base = ndcg_at_k(rel[base_order], rel, 10)
    assert t["ndcg10_text"][0] == pytest.approx(base)
    # The oracle marks the first two hits: both irrelevant -> query moves away from them.
    marked = base_order[:2]
    assert rel[marked].max() == 0
    moved = unit(q - 0.25 * unit(emb[marked]).mean(0))
    new = order_by(emb @ moved)
    assert t["ndcg10_feedback"][0] == pytest.approx(ndcg_at_k(rel[new], rel, 10))
    assert t["recall100_feedback"][0] == pytest.approx(recall_at_k(rel[new], rel, 2))
    left = ~np.isin(np.arange(6), marked)
    assert t["ndcg10_text_residual"][0] == pytest.approx(ndcg_at_k(rel[[i for i in base_order if left[i]]],
                                                                   rel[left], 10))
    assert t["ndcg10_feedback_residual"][0] == pytest.approx(ndcg_at_k(rel[[i for i in new if left[i]]],
                                                                       rel[left], 10))
    assert t["ndcg10_feedback"][0] > base
    # top_n = 1 cannot change anything
    one = evaluate(model, gz2_root=root, decals_root=None, classes=["spiral"], queries={"spiral": ["q"]},
                   rerank=["expansion"], rerank_top_n=1, k_recall=2)
    assert one["ndcg10_expansion"][0] == pytest.approx(base)


def test_parse_reranker_specs():
    label, ex = parse_reranker("expansion:n=3,weight=0.2")
    assert label == "expansion:n=3,weight=0.2" and (ex.n, ex.weight) == (3, 0.2)
    assert parse_reranker("galaxidnet:weights=(0, 0, 1)")[1].weights == (0.0, 0.0, 1.0)
    assert parse_reranker("feedback:gamma=0.5") == ("feedback:gamma=0.5", {"gamma": 0.5})
    assert parse_reranker(GalaxIDNetReranker())[0] == "galaxidnet"
    with pytest.raises(ValueError, match="needs a vision-language model"):
        parse_reranker("vlm")
    with pytest.raises(ValueError, match="cannot read"):
        parse_reranker("expansion:n=")
    with pytest.raises(ValueError, match="unknown re-ranker"):
        parse_reranker("rocchio")
    with pytest.raises(ValueError):
        parse_reranker("feedback:beta=-1")


@pytest.fixture(scope="module")
def tiny_gz2(tmp_path_factory):
    """24 validation galaxies whose image brightness encodes the spiral vote fraction."""
    spiral = np.random.default_rng(3).uniform(0, 1, 24)
    return _gz2_dir(tmp_path_factory.mktemp("gz2r"), np.round(30 + 200 * spiral), spiral)


def TiltedModel():
    """Brightness -> direction; the text query is tilted away from the bright (spiral) end."""
    return BrightnessModel(name="tilted", fingerprint="1" * 64, tilt=[1.0, 0.35])


def test_evaluate_with_rerankers(tiny_gz2):
    t = evaluate(TiltedModel(), gz2_root=tiny_gz2, decals_root=None, classes=["spiral"],
                 queries={"spiral": ["spiral"]}, rerank=["expansion", "galaxidnet", "feedback"],
                 rerank_top_n=10, feedback_marks=5, k_recall=10)
    for col in ("ndcg10_expansion", "recall100_expansion", "ndcg10_galaxidnet", "ndcg10_feedback",
                "ndcg10_text_residual", "ndcg10_feedback_residual"):
        assert col in t.colnames and 0 <= t[col][0] <= 1
    assert t.meta["rerank"]["top_n"] == 10 and t.meta["rerank"]["rerankers"]["feedback"]["marks"] == 5
    # top_n == k_recall: the same ten galaxies stay in the top ten, so recall cannot move
    for name in ("expansion", "galaxidnet", "feedback"):
        assert t[f"recall100_{name}"][0] == pytest.approx(t["recall100_text"][0])
    # a re-ranker that changes nothing reproduces the text column exactly
    same = evaluate(TiltedModel(), gz2_root=tiny_gz2, decals_root=None, classes=["spiral"],
                    queries={"spiral": ["spiral"]}, rerank=["expansion:weight=0"])
    assert same["ndcg10_expansion:weight=0"][0] == pytest.approx(same["ndcg10_text"][0])
    with pytest.raises(ValueError, match="rerank_top_n"):
        evaluate(TiltedModel(), gz2_root=tiny_gz2, decals_root=None, classes=["spiral"],
                 queries={"spiral": ["spiral"]}, rerank=["expansion"], rerank_top_n=0)


def test_evaluate_cli_rerank_option(tiny_gz2, tiny_model_dir, tmp_path):
    from astro_semsearch.cli import main

    qfile = tmp_path / "q.toml"
    qfile.write_text('spiral = ["spiral"]\n')
    assert main(["evaluate", "--data", str(tiny_gz2), "--model", str(tiny_model_dir), "--queries", str(qfile),
                 "--quiet", "--classes", "spiral", "--rerank", "galaxidnet:weights=(0,0,1)", "feedback",
                 "--rerank-top-n", "12", "--feedback-marks", "4", "--out", str(tmp_path / "e.ecsv")]) == 0
    back = Table.read(tmp_path / "e.ecsv")
    assert "ndcg10_galaxidnet:weights=(0,0,1)" in back.colnames and "ndcg10_feedback_residual" in back.colnames
    assert back.meta["rerank"]["top_n"] == 12


# --------------------------------------------------------------------------- the command line, shipped data
def _shipped_index_ok():
    from astro_semsearch import conf
    from astro_semsearch.index.open import builtin_index_dir

    return (builtin_index_dir(conf.default_index) / "manifest.json").is_file()


@pytest.mark.skipif(not _shipped_index_ok(), reason="the default index is not built")
def test_search_cli_rerank_on_the_shipped_index(tmp_path, capsys):
    from astro_semsearch.cli import main

    plain = semantic_search("ring galaxy", k=10)
    out = tmp_path / "hits.ecsv"
    assert main(["search", "ring galaxy", "-k", "6", "--rerank", "feedback", "--good", str(plain["object_id"][7]),
                 "--bad", str(plain["object_id"][0]), "--rerank-top-n", "10", "-o", str(out)]) == 0
    back = Table.read(out)
    api = rerank(plain, "feedback", good=[7], bad=[0])
    assert back["object_id"].tolist() == api["object_id"].tolist()[:6]
    assert back["search_rank"].tolist() == api["search_rank"].tolist()[:6]
    assert list(api["object_id"]).index(plain["object_id"][7]) < 7  # the good hit moved up
    assert back.meta["astro_semsearch"]["rerank"]["name"] == "feedback"
    assert {"rerank_score", "search_rank"} <= set(back.colnames)
    assert main(["search", "ring galaxy", "--good", "X"]) == 2
    assert "--rerank feedback" in capsys.readouterr().err
