"""Tests of astro_semsearch.index: sharded indexes searched in parallel and merged."""
import json

import numpy as np
import pytest
from astropy.table import Table

from astro_semsearch.exceptions import IndexIntegrityError, ModelMismatchError
from astro_semsearch.index import SHARDS_FILE, GalaxyIndex, ShardedIndex, healpix_pixels, is_sharded

DIM = 16


def _data(n=400, seed=0, prefix="G"):
    rng = np.random.default_rng(seed)
    vec = rng.normal(size=(n, DIM)).astype(np.float32)
    cat = Table({"object_id": [f"{prefix}{i}" for i in range(n)],
                 "ra": rng.uniform(0, 360, n), "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                 "mag": rng.uniform(14, 20, n)})
    return vec, cat


@pytest.fixture
def data():
    return _data()


def test_row_shards_match_single_exact_index(tmp_path, data):
    vec, cat = data
    flat = GalaxyIndex.build(vec, cat, kind="flat")
    sharded = ShardedIndex.build(vec, cat, tmp_path / "s", shard_size=150, kind="flat")
    assert sharded.nshards == 3 and sharded.ntotal == 400
    assert sharded.offsets.tolist() == [0, 150, 300, 400]
    q = np.random.default_rng(5).normal(size=(7, DIM))
    s1, r1 = flat.search(q, 25)
    s2, r2 = sharded.search(q, 25)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(s1, s2, rtol=0, atol=1e-5)
    # The global numbering is the catalogue's: same ids and vectors row by row.
    assert list(sharded.table["object_id"]) == list(cat["object_id"])
    rows = np.array([0, 149, 150, 399, 222])
    np.testing.assert_allclose(sharded.vectors(rows), flat.vectors(rows), rtol=1e-6)
    assert sharded.rows_of(["G0", "G150", "G399", "nope"]).tolist() == [0, 150, 399, -1]


def test_load_roundtrip_and_integrity(tmp_path, data):
    vec, cat = data
    ShardedIndex.build(vec, cat, tmp_path / "s", shard_size=200)
    assert is_sharded(tmp_path / "s") and not is_sharded(tmp_path)
    loaded = ShardedIndex.load(tmp_path / "s")
    assert loaded.ntotal == 400 and loaded.dim == DIM
    _, rows = loaded.search(vec[[3, 333]], 1)
    assert rows[:, 0].tolist() == [3, 333]
    # A shard altered behind the index's back is detected.
    mpath = tmp_path / "s" / "shard-00001" / "manifest.json"
    m = json.loads(mpath.read_text())
    m["name"] = "tampered"
    mpath.write_text(json.dumps(m))
    with pytest.raises(IndexIntegrityError, match="changed outside"):
        ShardedIndex.load(tmp_path / "s")
    with pytest.raises(IndexIntegrityError, match="shards.json"):
        ShardedIndex.load(tmp_path)


def test_healpix_shards_pixels_and_subset(tmp_path, data):
    pytest.importorskip("astropy_healpix")
    vec, cat = data
    sharded = ShardedIndex.build(vec, cat, tmp_path / "h", by="healpix", order=1, kind="flat")
    pix = healpix_pixels(cat["ra"], cat["dec"], 1)
    assert sharded.nshards == len(np.unique(pix))
    for rec, shard in zip(sharded.manifest["shards"], sharded.shards):
        assert (healpix_pixels(shard.table["ra"], shard.table["dec"], 1) == rec["healpix_pixel"]).all()
    flat = GalaxyIndex.build(vec, cat, kind="flat")
    q = vec[:4]
    s, r = sharded.search(q, 30)
    ids = np.asarray(sharded.table["object_id"])[r]
    s1, r1 = flat.search(q, 30)
    np.testing.assert_array_equal(ids, np.asarray(cat["object_id"])[r1])
    np.testing.assert_allclose(s, s1, rtol=0, atol=1e-5)
    # Restricting to two pixels searches only their galaxies, exactly.
    wanted = np.unique(pix)[:2]
    s, r = sharded.search(q, 10, pixels=wanted)
    got_ra = np.asarray(sharded.table["ra"])[r]
    got_dec = np.asarray(sharded.table["dec"])[r]
    assert np.isin(healpix_pixels(got_ra, got_dec, 1), wanted).all()
    inside = np.flatnonzero(np.isin(pix, wanted))
    s1, r1 = flat.search(q, 10, subset=inside)
    np.testing.assert_allclose(s, s1, rtol=0, atol=1e-5)
    # A global-row subset (a magnitude cut) gives the same answer as on one index.
    bright = np.asarray(sharded.table["mag"]) < 16
    s, r = sharded.search(q, 5, subset=bright)
    assert bright[r].all()
    s1, r1 = flat.search(q, 5, subset=np.asarray(cat["mag"]) < 16)
    np.testing.assert_allclose(s, s1, rtol=0, atol=1e-5)
    # A cone touches few pixels; searching only those shards finds every galaxy of the cone.
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    centre, radius = SkyCoord(cat["ra"][0] * u.deg, cat["dec"][0] * u.deg), 20 * u.deg
    cone_pix = sharded.pixels_in_cone(centre, radius)
    assert 0 < len(cone_pix) < sharded.nshards
    in_cone = SkyCoord(cat["ra"] * u.deg, cat["dec"] * u.deg).separation(centre) < radius
    assert np.isin(pix[in_cone], cone_pix).all()
    with pytest.raises(ValueError, match="pixels= needs"):
        ShardedIndex.build(vec, cat, tmp_path / "r", shard_size=100).search(q, 3, pixels=[0])


def test_add_shard_leaves_others_untouched(tmp_path, data):
    vec, cat = data
    sharded = ShardedIndex.build(vec[:200], cat[:200], tmp_path / "s", shard_size=100)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").glob("shard-*/*")}
    new = GalaxyIndex.build(vec[200:], cat[200:], kind="flat")
    sharded.add_shard(new)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").glob("shard-0000[01]/*")}
    assert all(before[k] == v for k, v in after.items())
    reloaded = ShardedIndex.load(tmp_path / "s")
    assert reloaded.nshards == 3 and reloaded.ntotal == 400
    assert reloaded.rows_of(["G250"]).tolist() == [250]
    with pytest.raises(ValueError, match="already in another shard"):
        reloaded.add_shard(GalaxyIndex.build(vec[:5], cat[:5]))
    with pytest.raises(ValueError, match="dimension"):
        v2, c2 = _data(10, prefix="X")
        reloaded.add_shard(GalaxyIndex.build(v2[:, :8], c2))
    with pytest.raises(ValueError, match="columns"):
        v2, c2 = _data(10, prefix="Y")
        c2.remove_column("mag")
        reloaded.add_shard(GalaxyIndex.build(v2, c2))


def test_add_shard_refuses_another_model(tmp_path, data):
    from types import SimpleNamespace

    vec, cat = data
    m1 = SimpleNamespace(name="a", fingerprint="1" * 64, dim=DIM)
    m2 = SimpleNamespace(name="b", fingerprint="2" * 64, dim=DIM)
    sharded = ShardedIndex.build(vec[:100], cat[:100], tmp_path / "s", shard_size=100, model=m1)
    with pytest.raises(ModelMismatchError):
        sharded.add_shard(GalaxyIndex.build(vec[100:200], cat[100:200], model=m2))
    with pytest.raises(ModelMismatchError):
        sharded.check_model(m2)
    sharded.check_model(m1)


def test_healpix_add_rewrites_only_touched_pixels(tmp_path, data):
    pytest.importorskip("astropy_healpix")
    vec, cat = data
    sharded = ShardedIndex.build(vec[:300], cat[:300], tmp_path / "h", by="healpix", order=1)
    old = {r["healpix_pixel"]: r["manifest_sha256"] for r in sharded.manifest["shards"]}
    newpix = set(healpix_pixels(cat["ra"][300:], cat["dec"][300:], 1).tolist())
    sharded.add(vec[300:], cat[300:])
    reloaded = ShardedIndex.load(tmp_path / "h")
    assert reloaded.ntotal == 400
    for r in reloaded.manifest["shards"]:
        p = r["healpix_pixel"]
        if p in old and p not in newpix:
            assert r["manifest_sha256"] == old[p]
        elif p in old:
            assert r["manifest_sha256"] != old[p]
    flat = GalaxyIndex.build(vec, cat, kind="flat")
    s, r = reloaded.search(vec[350:355], 8)
    s1, r1 = flat.search(vec[350:355], 8)
    np.testing.assert_array_equal(np.asarray(reloaded.table["object_id"])[r], np.asarray(cat["object_id"])[r1])
    with pytest.raises(ValueError, match="already"):
        reloaded.add(vec[:3], cat[:3])


def test_merge_to_single_index(tmp_path, data):
    pytest.importorskip("astropy_healpix")
    vec, cat = data
    sharded = ShardedIndex.build(vec, cat, tmp_path / "s", by="healpix", order=0)
    merged = sharded.merge(tmp_path / "m", kind="flat")
    again = GalaxyIndex.load(tmp_path / "m")
    assert again.ntotal == 400
    np.testing.assert_array_equal(np.asarray(again.table["object_id"]), np.asarray(sharded.table["object_id"]))
    np.testing.assert_allclose(again.vectors(), sharded.vectors(), rtol=1e-6)
    assert merged.kind == "flat"


def test_similar_to_accepts_a_sharded_index(tmp_path, data):
    from astro_semsearch.search import similar_to

    vec, cat = data
    sharded = ShardedIndex.build(vec, cat, tmp_path / "s", shard_size=128)
    flat = GalaxyIndex.build(vec, cat, kind="flat")
    a = similar_to("G7", k=10, index=sharded, min_separation=None)
    b = similar_to("G7", k=10, index=flat, min_separation=None)
    assert list(a["object_id"]) == list(b["object_id"])
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-5)
    # ... and a directory path of a sharded index
    c = similar_to("G7", k=10, index=str(tmp_path / "s"), min_separation=None)
    assert list(c["object_id"]) == list(b["object_id"])


def test_bad_arguments(tmp_path, data):
    vec, cat = data
    with pytest.raises(ValueError, match="shard_size"):
        ShardedIndex.build(vec, cat, tmp_path / "a")
    with pytest.raises(ValueError, match="order"):
        ShardedIndex.build(vec, cat, tmp_path / "b", by="healpix")
    with pytest.raises(ValueError, match="by must be"):
        ShardedIndex.create(tmp_path / "c", by="dec")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        ShardedIndex.create(tmp_path / "d")
    s = ShardedIndex.build(vec, cat, tmp_path / "e", shard_size=100)
    with pytest.warns(Warning, match="larger than"):
        _, rows = s.search(vec[:1], 500)
    assert rows.shape == (1, 400)
    assert (tmp_path / "e" / SHARDS_FILE).is_file()
