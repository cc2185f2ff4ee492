"""Tests for the evaluation protocol (astro_semsearch.evaluation)."""
import importlib.util
import math

import numpy as np
import pytest
from astropy.table import Table
from fakes import BrightnessModel

from astro_semsearch.datasets import GZ2_COLUMNS, split_of
from astro_semsearch.evaluation import (
    CLASSES,
    evaluate,
    expected_random,
    load_queries,
    ndcg_at_k,
    recall_at_k,
    to_markdown,
    to_rst,
)

# ---------------------------------------------------------------------------
# Pure metrics against hand-worked examples


def test_ndcg_perfect_and_reversed():
    rel = [1.0, 0.5, 0.0]
    assert ndcg_at_k(rel, rel, k=3) == pytest.approx(1.0)
    # By hand: gains 2**rel - 1 = 1, 0.41421, 0; discounts 1, 1/log2(3)=0.63093, 0.5.
    # ideal DCG = 1 + 0.41421 * 0.63093 = 1.26134
    # reversed DCG = 0 + 0.41421 * 0.63093 + 1 * 0.5 = 0.76134 -> nDCG = 0.60360
    assert ndcg_at_k(rel[::-1], rel, k=3) == pytest.approx(0.76134 / 1.26134, abs=1e-4)
    assert ndcg_at_k(rel[::-1], rel, k=3) == pytest.approx(0.6036, abs=1e-4)


def test_ndcg_ideal_is_over_the_whole_pool():
    # The top-2 holds the only two items it shows, but the pool has a better one.
    ranked = [0.5, 0.5]
    pool = [1.0, 0.5, 0.5, 0.0]
    # DCG = 0.41421 * (1 + 0.63093) = 0.67555; IDCG = 1 + 0.41421 * 0.63093 = 1.26134
    assert ndcg_at_k(ranked, pool, k=2) == pytest.approx(0.67555 / 1.26134, abs=1e-4)
    assert ndcg_at_k([1, 0], pool, k=1) == pytest.approx(1.0)
    assert math.isnan(ndcg_at_k([0, 0], [0, 0], k=2))
    with pytest.raises(ValueError):
        ndcg_at_k([1], [1], k=0)


def test_recall():
    pool = [0.9, 0.6, 0.2, 0.8, 0.0]  # three relevant (> 0.5)
    assert recall_at_k([0.9, 0.2, 0.6], pool, k=2) == pytest.approx(1 / 3)
    assert recall_at_k([0.9, 0.2, 0.6, 0.8], pool, k=4) == pytest.approx(1.0)
    assert recall_at_k([0.5, 0.2], [0.5, 0.2], k=1) != recall_at_k([0.5, 0.2], [0.5, 0.2], k=1)  # NaN: none > 0.5


def test_expected_random_matches_simulation():
    rng = np.random.default_rng(0)
    rel = np.concatenate([rng.random(20), np.zeros(180)])
    nd, rc = expected_random(rel, k_ndcg=10, k_recall=50)
    sims = [(ndcg_at_k(p, rel, 10), recall_at_k(p, rel, 50)) for p in (rng.permutation(rel) for _ in range(3000))]
    sim_nd, sim_rc = np.mean(sims, axis=0)
    assert nd == pytest.approx(sim_nd, rel=0.05)
    assert rc == pytest.approx(sim_rc, abs=0.02)
    assert rc == pytest.approx(0.25)


def test_load_queries_default_and_validation(tmp_path):
    q = load_queries()
    assert {c.id for c in CLASSES} <= set(q)
    assert all(len(v) >= 2 for v in q.values())
    bad = tmp_path / "q.toml"
    bad.write_text('spiral = [""]\n')
    with pytest.raises(ValueError):
        load_queries(bad)
    with pytest.raises(FileNotFoundError):
        load_queries(tmp_path / "missing.toml")


# ---------------------------------------------------------------------------
# End to end on a tiny fake Galaxy Zoo directory


def _ids(n_val, n_train):
    val, train = [], []
    i = 100000
    while len(val) < n_val or len(train) < n_train:
        (val if split_of(i) == "val" else train).append(i)
        i += 1
    return val[:n_val], train[:n_train]


def _textured(level: int, size: int = 40) -> np.ndarray:
    """A grey image of mean brightness ``level`` exactly, with a +-4 checkerboard (blank images are refused)."""
    img = np.full((size, size, 3), level, dtype=np.int16)
    img += np.where((np.add.outer(np.arange(size), np.arange(size)) % 2 == 0)[..., None], 4, -4).astype(np.int16)
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    """40 val + 10 train galaxies (37 vote columns); PNG brightness encodes the spiral fraction."""
    from PIL import Image

    root = tmp_path_factory.mktemp("gz2")
    (root / "images").mkdir()
    rng = np.random.default_rng(1)
    val, train = _ids(40, 10)
    rows = []
    for gid in val + train:
        spiral = float(rng.choice([0.0, 0.1, 0.3, 0.6, 0.9]) + rng.uniform(0, 0.05))
        votes = {c: float(rng.uniform(0, 0.2)) for c in GZ2_COLUMNS}
        votes["Class4.1"] = spiral
        votes["Class1.1"] = float(rng.uniform(0, 1))  # some lens hosts
        level = int(round(40 + 200 * spiral))
        Image.fromarray(_textured(level)).save(root / "images" / f"{gid}.png")
        rows.append({"file": f"images/{gid}.png", "galaxy_id": gid, "coarse_label": "", "n_vote_columns": 37,
                     **votes})
    Table(rows=rows).write(root / "labels.csv", format="ascii.csv")

    dec = tmp_path_factory.mktemp("decals")
    (dec / "images").mkdir()
    drows = []
    for i in range(12):
        ring = i % 2
        Image.fromarray(_textured(60 + 120 * ring)).save(dec / "images" / f"D{i}.png")
        drows.append({"iauname": f"D{i}", "ra": 10.0 + i, "dec": -1.0, "ring": ring, "file": f"images/D{i}.png"})
    Table(rows=drows).write(dec / "labels.csv", format="ascii.csv")
    return root, dec, val


def OracleModel():
    """Image embedding follows brightness; "spiral"/"ring" queries point along it (a perfect pipeline ranks
    the spiral pool perfectly: text nDCG = 1)."""
    return BrightnessModel(name="oracle", fingerprint="0" * 64, bright_words=("spiral", "ring"))


QUERIES = {c.id: ["spiral galaxy", "a galaxy with arms"] if c.id == "spiral" else ["ring"] for c in CLASSES}


def test_evaluate_with_oracle(fake_data):
    root, dec, val = fake_data
    t = evaluate(OracleModel(), gz2_root=root, decals_root=dec, queries=QUERIES, seed=0)
    assert t.colnames == ["class", "n_pool", "n_rel", "ndcg10_text", "ndcg10_image", "ndcg10_random",
                          "recall100_text", "recall100_image", "recall100_random", "n_probe_train", "ndcg10_probe",
                          "recall100_probe"]
    rows = {r["class"]: r for r in t}
    # The probe is fitted on the 10 train-split galaxies and ranks the val pool as well as the best query.
    assert rows["spiral"]["n_probe_train"] == 10
    assert rows["spiral"]["ndcg10_probe"] == pytest.approx(1.0, abs=1e-3)
    assert rows["DECaLS ring"]["n_probe_train"] == rows["ring"]["n_probe_train"] == 10  # the GZ2 ring probe
    assert t.meta["probe"]["fitted_on"] == "train" and "spiral" in t.meta["probe"]["alpha"]
    assert "n_probe_train" not in evaluate(OracleModel(), gz2_root=root, queries=QUERIES, classes=["spiral"],
                                           probe=False).colnames
    sp = rows["spiral"]
    assert sp["n_pool"] == len(val)  # only the val split, never train
    labels = Table.read(root / "labels.csv", format="ascii.csv")
    in_val = np.isin(labels["galaxy_id"], val)
    assert sp["n_rel"] == int((labels["Class4.1"][in_val] > 0.5).sum())
    # Query 1 ("spiral galaxy") ranks by brightness = perfectly; query 2 points the other way.
    ideal = ndcg_at_k(np.sort(labels["Class4.1"][in_val])[::-1], labels["Class4.1"][in_val], 10)
    worst = ndcg_at_k(np.sort(labels["Class4.1"][in_val]), labels["Class4.1"][in_val], 10)
    assert ideal == pytest.approx(1.0)
    assert sp["ndcg10_text"] == pytest.approx(np.mean([ideal, worst]), abs=1e-3)  # ties from 8-bit pixels
    pq = t.meta["text_ndcg10_per_query"]["spiral"]
    assert pq["spiral galaxy"] == pytest.approx(1.0, abs=1e-3) and pq["a galaxy with arms"] < 0.5
    # Image queries (bright = confident spirals) also find spirals better than random.
    assert sp["ndcg10_image"] > sp["ndcg10_random"]
    # DECaLS rings: brightness encodes the ring tag, "ring" query -> perfect.
    assert rows["DECaLS ring"]["ndcg10_text"] == pytest.approx(1.0)
    assert rows["DECaLS ring"]["recall100_text"] == pytest.approx(1.0)
    assert rows["DECaLS ring"]["n_pool"] == 12 and rows["DECaLS ring"]["n_rel"] == 6
    if importlib.util.find_spec("lenstronomy") is not None:
        inj = rows["injected lens (synthetic)"]
        assert inj["n_rel"] >= 1 and inj["n_pool"] <= len(val)
    for name in [c for c in t.colnames[3:] if c != "n_probe_train"]:
        vals = np.asarray(t[name], dtype=float)
        assert np.all((vals[np.isfinite(vals)] >= 0) & (vals[np.isfinite(vals)] <= 1 + 1e-9))
    assert t.meta["model"] == "oracle" and t.meta["split"] == "val"
    assert "| class |" in to_markdown(t) and ".. list-table::" in to_rst(t)
    # Deterministic.
    t2 = evaluate(OracleModel(), gz2_root=root, decals_root=dec, queries=QUERIES, seed=0)
    np.testing.assert_array_equal(np.asarray(t["ndcg10_image"]), np.asarray(t2["ndcg10_image"]))


def test_evaluate_validates(fake_data):
    root, dec, _ = fake_data
    with pytest.raises(ValueError, match="unknown class"):
        evaluate(OracleModel(), gz2_root=root, decals_root=dec, queries=QUERIES, classes=["nebula"])
    with pytest.raises(ValueError, match="split"):
        evaluate(OracleModel(), gz2_root=root, split="test", queries=QUERIES)
    with pytest.raises(FileNotFoundError):
        evaluate(OracleModel(), gz2_root=root / "nowhere", queries=QUERIES)


def test_injected_lens_rows_both_simulators(fake_data):
    """Both injected rows: validation smooth galaxies only, the same lensed hosts, 1 % by default."""
    from astro_semsearch.evaluation.pools import class_pools
    from astro_semsearch.lensing import is_lens_host

    root, _, val = fake_data
    labels = Table.read(root / "labels.csv", format="ascii.csv")
    n_hosts = sum(is_lens_host({"Class1.1": float(c)}) for g, c in zip(labels["galaxy_id"], labels["Class1.1"])
                  if g in set(val))
    ids = ["injected_lens_independent"]
    if importlib.util.find_spec("lenstronomy") is not None:
        ids.insert(0, "injected_lens")
    t = evaluate(OracleModel(), gz2_root=root, queries=QUERIES, seed=0, classes=ids)
    rows = {r["class"]: r for r in t}
    ind = rows["injected lens (independent sim)"]
    assert ind["n_pool"] == n_hosts and ind["n_rel"] == max(1, round(0.01 * n_hosts))
    assert t.meta["lens_fraction"] == 0.01
    assert "RayTracedLensSimulator" in t.meta["relevance"]["injected lens (independent sim)"]
    assert "ArcInjector" in t.meta["protocol"] and "RayTracedLensSimulator" in t.meta["protocol"]
    # Lens hosts never come from the train split, even when evaluating on it.
    t_train = evaluate(OracleModel(), gz2_root=root, queries=QUERIES, seed=0, split="train",
                       classes=["injected_lens_independent"], lens_fraction=0.25)
    assert t_train["n_pool"][0] == n_hosts and t_train["n_rel"][0] == round(0.25 * n_hosts)
    # The rows share their lensed hosts (they differ only by the simulator), and the draw is seeded.
    pools = {p.cls.id: p for p in class_pools(OracleModel(), set(ids), gz2_root=root, decals_root=None, split="val",
                                              seed=3, lens_fraction=0.25, batch_size=8, progress=False,
                                              rng=np.random.default_rng(0))}
    again = next(class_pools(OracleModel(), {"injected_lens_independent"}, gz2_root=root, decals_root=None,
                             split="val", seed=3, lens_fraction=0.25, batch_size=8, progress=False,
                             rng=np.random.default_rng(1)))
    np.testing.assert_array_equal(again.rel, pools["injected_lens_independent"].rel)
    np.testing.assert_array_equal(again.emb, pools["injected_lens_independent"].emb)
    if "injected_lens" in pools:
        np.testing.assert_array_equal(pools["injected_lens"].rel, pools["injected_lens_independent"].rel)
        lensed = pools["injected_lens"].rel > 0
        assert not np.allclose(pools["injected_lens"].emb[lensed], pools["injected_lens_independent"].emb[lensed])


def test_cli_with_random_init_model(fake_data, tmp_path):
    from astro_semsearch.cli import main
    from astro_semsearch.model import GalaxyModel

    root, dec, _ = fake_data
    model_dir = GalaxyModel.from_config(seed=0).save(tmp_path / "m")
    qfile = tmp_path / "q.toml"
    qfile.write_text('spiral = ["spiral galaxy", "arms"]\nring = ["ring galaxy"]\ndecals_ring = ["ring"]\n')
    out = tmp_path / "res" / "eval.ecsv"
    assert main(["evaluate", "--data", str(root), "--decals", str(dec), "--model", str(model_dir), "--out", str(out),
                 "--queries", str(qfile), "--quiet", "--per-query", "--classes", "spiral", "ring",
                 "decals_ring"]) == 0
    t = Table.read(out, format="ascii.ecsv")
    assert list(t["class"]) == ["spiral", "ring", "DECaLS ring"]
    assert len(t.meta["model_sha256"]) == 64
    assert out.with_suffix(".md").read_text().startswith("| class |")
    assert out.with_suffix(".rst").is_file()


def test_gz2_pool_selects_voted_finite_split_rows():
    from astropy.table import Table

    from astro_semsearch.evaluation import EvalClass, gz2_pool

    t = Table({"n_vote_columns": [37, 37, 0, 20, 37], "Class8.1": [0.2, np.nan, 0.9, 1.3, -0.1]})
    in_split = np.array([True, True, True, True, False])
    rows, rel = gz2_pool(t, EvalClass("x", "x", "gz2", "Class8.1"), in_split)
    assert rows.tolist() == [0, 3]            # NaN, unvoted and out-of-split rows are not in the pool
    assert rel.tolist() == [0.2, 1.0]          # relevance clipped to [0, 1]
    rows, _ = gz2_pool(t, EvalClass("x", "x", "gz2", "Class8.1", needs_37=True), in_split)
    assert rows.tolist() == [0]               # only full-tree classifications


def test_evaluate_wordings_mean_worst_and_negated(fake_data, tmp_path):
    from astro_semsearch.datasets import load_gz2, load_images
    from astro_semsearch.evaluation.wordings import evaluate_wordings

    root, dec, val = fake_data
    words = tmp_path / "w.toml"
    words.write_text('''
[[query]]
class = "spiral"
kind = "short"
text = "spiral galaxy"
[[query]]
class = "spiral"
kind = "one_word"
text = "arms"
[[query]]
class = "spiral"
kind = "negated"
text = "galaxy without spiral arms"
relevance = "Class4.2"
opposite_positive = "smooth disk"
[off_topic]
phrases = ["a cat"]
''')
    model = OracleModel()
    t = evaluate_wordings(model, wordings=words, gz2_root=root, decals_root=None, classes=["spiral"])
    row = t[0]
    assert row["class"] == "spiral" and row["n_wordings"] == 2
    assert row["best"] == pytest.approx(1.0, abs=1e-3) and row["worst_wording"] == "arms"  # "arms" points the other way
    assert row["worst"] < row["mean"] < row["best"] and row["worst_over_best"] == pytest.approx(row["worst"] / row["best"])
    # the negated wording by hand: "galaxy" away from "spiral arms", ranked against Class4.2
    gz2 = load_gz2(root)
    in_val = np.isin(gz2["galaxy_id"], val)
    emb = model.embed_images(load_images(list(gz2["path"][in_val]), size=80))
    rel = np.clip(np.asarray(gz2["Class4.2"], float)[in_val], 0, 1)
    q = np.array([0.0, 1.0]) - 0.5 * np.array([1.0, 0.0])
    by_hand = ndcg_at_k(rel[np.argsort(-(emb @ (q / np.linalg.norm(q))), kind="stable")], rel, 10)
    assert row["negated"] == pytest.approx(by_hand, abs=1e-6)
    assert row["negated_ratio"] == pytest.approx(row["negated"] / row["opposite_positive"])
    per = {r["text"]: r for r in t.meta["per_wording"]}
    assert per["galaxy without spiral arms"]["kind"] == "negated"


def test_ridge_fit_recovers_a_linear_rule_and_refuses_bad_shapes():
    from astro_semsearch.evaluation.probe import ridge_fit

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5))
    y = x @ np.array([0.5, -1.0, 0.0, 2.0, 0.1]) + 0.3 + rng.normal(scale=0.01, size=300)
    w, b, alpha = ridge_fit(x, y)
    np.testing.assert_allclose(w, [0.5, -1.0, 0.0, 2.0, 0.1], atol=0.01)
    assert b == pytest.approx(0.3, abs=0.01) and alpha <= 1.0
    # Pure noise: cross-validation picks a strong penalty.
    assert ridge_fit(x, rng.normal(size=300))[2] >= 10.0
    with pytest.raises(ValueError, match="shapes"):
        ridge_fit(x, y[:10])


def test_transform_is_applied_to_the_evaluated_images_only(fake_data):
    # Inverting brightness flips the oracle's ranking of the evaluated pool; the probe (fitted on the
    # untransformed train split) then ranks it worst, the text query too.
    root, dec, _ = fake_data
    calls = []

    def invert(images):
        calls.append(images.shape)
        return 255 - images

    t = evaluate(OracleModel(), gz2_root=root, queries=QUERIES, classes=["spiral"], transform=invert)
    plain = evaluate(OracleModel(), gz2_root=root, queries=QUERIES, classes=["spiral"])
    assert calls and t.meta["transform"] == "invert"
    assert t["ndcg10_probe"][0] < 0.5 < plain["ndcg10_probe"][0]


def test_summary_counts_the_targets():
    from astro_semsearch.evaluation.render import summary

    t = Table({"class": ["a", "b"], "ndcg10_text": [0.6, 0.2], "ndcg10_image": [0.5, 0.3],
               "ndcg10_probe": [0.62, 0.4], "ndcg10_random": [0.1, 0.1]})
    t.meta["text_ndcg10_per_query"] = {"a": {"x": 0.6, "y": 0.3}, "b": {"z": 0.2}}
    s = summary(t)
    assert s["mean_text"] == pytest.approx(0.4) and s["text_within_0.05_of_probe"] == 1
    assert s["text_beats_image"] == 1 and s["text_at_least_3x_random"] == 1
    assert s["phrasing_worst_over_best"] == {"a": 0.5, "b": 1.0}
