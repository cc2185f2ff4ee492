"""GalaxyIndex: build, search, add, save/load, integrity, URLs, validation."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from astropy import units as u
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning
from fakes import ModelRecord

from astro_semsearch.exceptions import IndexIntegrityError, ModelMismatchError
from astro_semsearch.index import GalaxyIndex, galaxy_index, kinds, load_index, storage


def clustered(n, dim, seed=0, n_clusters=20):
    """Unit vectors drawn around random cluster centres (like real embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    labels = rng.integers(0, n_clusters, n)
    v = centres[labels] + 0.6 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def catalogue(n, seed=0):
    rng = np.random.default_rng(seed)
    return Table(
        {
            "object_id": [f"G{i:05d}" for i in range(n)],
            "ra": rng.uniform(0, 360, n) * u.deg,
            "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))) * u.deg,
            "mag_r": rng.uniform(14, 19, n) * u.mag,
            "kind": rng.choice(["ring", "spiral"], n),
        }
    )


def exact_topk(vectors, queries, k):
    sims = queries @ vectors.T
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


FakeModel = ModelRecord


@pytest.fixture(scope="module")
def small():
    v = clustered(300, 16, seed=1)
    return v, catalogue(300, seed=1)


@pytest.fixture(scope="module")
def saved(small, tmp_path_factory):
    v, t = small
    idx = GalaxyIndex.build(v, t, name="small", survey="SDSS", model=FakeModel())
    return idx.save(tmp_path_factory.mktemp("idx") / "small")


# --------------------------------------------------------------------------- build & search
def test_flat_is_exact_and_auto_picks_flat(small):
    v, t = small
    idx = GalaxyIndex.build(v, t, name="small")
    assert idx.kind == "flat" and idx.manifest["factory"] == "Flat"
    assert (idx.ntotal, idx.dim, len(idx)) == (300, 16, 300)
    scores, rows = idx.search(v[:20], 10)
    np.testing.assert_array_equal(rows, exact_topk(v, v[:20], 10))
    np.testing.assert_allclose(scores, np.take_along_axis(v[:20] @ v.T, rows, 1), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_vectors_are_normalised_and_table_canonical(small):
    v, t = small
    idx = GalaxyIndex.build(v * 7.5, t)  # any length in, unit vectors stored
    np.testing.assert_allclose(np.linalg.norm(idx.vectors(), axis=1), 1, atol=1e-5)
    assert idx.table.colnames[:3] == ["object_id", "ra", "dec"]
    assert idx.table["ra"].unit == u.deg and idx.table["mag_r"].unit == u.mag
    np.testing.assert_allclose(idx.vectors([5, 2]), v[[5, 2]], atol=1e-6)
    assert list(idx.rows_of(["G00007", "nope", "G00000"])) == [7, -1, 0]


def test_angles_in_other_units_are_converted():
    v = clustered(5, 4)
    t = QTable({"object_id": list("abcde"), "ra": np.radians([10, 20, 30, 40, 50]) * u.rad,
                "dec": [0, 1, 2, 3, 4] * u.arcmin})
    idx = GalaxyIndex.build(v, t)
    np.testing.assert_allclose(idx.table["ra"], [10, 20, 30, 40, 50])
    np.testing.assert_allclose(idx.table["dec"], np.arange(5) / 60)


def test_hnsw_and_ivfpq_recall_against_exact():
    v = clustered(4000, 32, seed=2)
    t = catalogue(4000, seed=2)
    q = clustered(50, 32, seed=3)
    truth = exact_topk(v, q, 10)
    hnsw = GalaxyIndex.build(v, t, kind="hnsw", ef_search=64)
    assert hnsw.manifest["factory"] == "HNSW32"
    assert recall(hnsw.search(q, 10)[1], truth) >= 0.9
    ivf = GalaxyIndex.build(v, t, kind="ivfpq", nlist=32, m=8, nbits=6, nprobe=8)
    assert ivf.manifest["factory"] == "IVF32,PQ8x6"
    refined = recall(ivf.search(q, 10)[1], truth)
    ivf.set_knobs(refine_factor=1)
    raw = recall(ivf.search(q, 10)[1], truth)
    assert refined >= 0.9
    assert refined > raw  # the exact re-scoring is what recovers the true neighbours
    ivf.set_knobs(refine_factor=10)
    scores, rows = ivf.search(q[:3], 5)
    # refined scores are exact cosines of the returned rows
    np.testing.assert_allclose(scores, np.einsum("nkd,nd->nk", v[rows], q[:3]), atol=1e-5)


def test_factory_string_and_bad_factory():
    v = clustered(500, 16)
    idx = GalaxyIndex.build(v, catalogue(500), kind="IVF8,Flat", nprobe=8)
    assert idx.kind == "factory" and idx.manifest["factory"] == "IVF8,Flat"
    np.testing.assert_array_equal(idx.search(v[:5], 3)[1], exact_topk(v, v[:5], 3))
    with pytest.raises(ValueError, match="FAISS cannot build"):
        GalaxyIndex.build(v, catalogue(500), kind="NotAnIndex17")


def test_auto_switches_to_ivfpq_above_limit(monkeypatch):
    monkeypatch.setattr(kinds, "AUTO_EXACT_LIMIT", 100)
    v = clustered(600, 16)
    idx = GalaxyIndex.build(v, catalogue(600), kind="auto", nbits=5)
    assert idx.kind == "ivfpq" and idx.knobs["refine_factor"] == 10
    assert idx.manifest["factory"].startswith("IVF")


def test_default_knobs_meet_memory_budget():
    # nlist ~ 4 sqrt(n), a power of two, capped (k-means cost); PQ codes <= 48 bytes
    # (resident <= 64 B/vector with the 8 B id)
    assert kinds.default_nlist(10**6) == 4096
    assert kinds.default_nlist(10**7) == kinds.IVF_NLIST_CAP == 4096
    assert kinds.default_nlist(10**8) == 16384
    assert kinds.default_nlist(1000) == 16  # capped so each list gets >= 39 training points
    for dim in (128, 256, 512, 768, 1024):
        m = kinds.default_pq_m(dim)
        assert dim % m == 0 and m <= 48 and m + 8 <= 64


def test_k_above_ntotal_warns_and_clips(small):
    v, t = small
    idx = GalaxyIndex.build(v[:7], t[:7])
    with pytest.warns(AstropyUserWarning, match="larger than the 7"):
        scores, rows = idx.search(v[0], 50)
    assert rows.shape == (1, 7) and sorted(rows[0]) == list(range(7))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_subset_search_with_idselector(kind, monkeypatch):
    v = clustered(1200, 16, seed=4)
    t = catalogue(1200, seed=4)
    knobs = {"nlist": 16, "m": 4, "nbits": 5, "nprobe": 16} if kind == "ivfpq" else {}
    idx = GalaxyIndex.build(v, t, kind=kind, **knobs)
    mask = np.asarray(t["mag_r"]) < 16
    truth = np.flatnonzero(mask)[exact_topk(v[mask], v[:4], 5)]
    for limit in (10**9, 0):  # exact numpy path, then the FAISS IDSelector path
        monkeypatch.setattr(galaxy_index, "EXACT_SUBSET_LIMIT", limit)
        scores, rows = idx.search(v[:4], 5, subset=mask)
        assert mask[rows].all()
        assert recall(rows, truth) >= 0.9
    rows2 = idx.search(v[:4], 5, subset=np.flatnonzero(mask))[1]
    assert mask[rows2].all()
    with pytest.raises(ValueError, match="one entry per indexed row"):
        idx.search(v[:1], 5, subset=mask[:10])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "mutate, exc, match",
    [
        (lambda v, t: (np.where(np.arange(v.size).reshape(v.shape) == 3, np.nan, v), t), ValueError, "non-finite"),
        (lambda v, t: (v, t[:-1]), ValueError, "rows but there are"),
        (lambda v, t: (v, t[["object_id", "ra"]]), ValueError, r"missing: \['dec'\]"),
        (lambda v, t: (v[None], t), ValueError, "2-D"),
        (lambda v, t: (v.astype(str), t), TypeError, "numeric"),
        (lambda v, t: (np.zeros_like(v), t), ValueError, "all-zero"),
        (lambda v, t: (v[:0], t[:0]), ValueError, "empty"),
    ],
)
def test_build_rejects_bad_embeddings_and_tables(small, mutate, exc, match):
    v, t = small
    v2, t2 = mutate(v.copy(), t.copy())
    with pytest.raises(exc, match=match):
        GalaxyIndex.build(v2, t2)


@pytest.mark.parametrize(
    "column, value, match",
    [("ra", 361.0, "RA out of range"), ("ra", -1.0, "RA out of range"), ("dec", 90.5, "Dec out of range"),
     ("dec", np.nan, "non-finite"), ("object_id", "G00001", "duplicate object_id")],
)
def test_build_rejects_bad_catalogue_values(small, column, value, match):
    v, t = small
    t = t.copy()
    if column == "object_id":
        t[column][0] = value
    else:
        t[column] = t[column].value
        t[column][0] = value
    with pytest.raises(ValueError, match=match):
        GalaxyIndex.build(v, t)


def test_bad_knobs_and_kinds(small):
    v, t = small
    with pytest.raises(TypeError, match="unknown index knob"):
        GalaxyIndex.build(v, t, kind="hnsw", efsearch=3)
    with pytest.raises(TypeError, match="nprobe must be an integer"):
        GalaxyIndex.build(v, t, kind="ivfpq", nprobe=2.5)
    with pytest.raises(ValueError, match="needs at least"):
        GalaxyIndex.build(v[:100], t[:100], kind="ivfpq", nlist=4)  # PQ needs 256 training vectors
    with pytest.raises(TypeError, match="kind must be"):
        GalaxyIndex.build(v, t, kind=3)
    with pytest.raises(ValueError, match="metric"):
        GalaxyIndex.build(v, t, metric="l2")


def test_search_rejects_bad_queries(small):
    v, t = small
    idx = GalaxyIndex.build(v, t)
    with pytest.raises(ValueError, match="dimension 8 but the index has dimension 16"):
        idx.search(np.ones((2, 8)), 3)
    with pytest.raises(ValueError, match="non-finite"):
        idx.search(np.full(16, np.nan), 3)
    with pytest.raises(ValueError, match="k must be >= 1"):
        idx.search(v[0], 0)
    with pytest.raises(TypeError, match="k must be an integer"):
        idx.search(v[0], 2.0)
    with pytest.raises(TypeError, match="numeric"):
        idx.search(["a"] * 16, 2)


# --------------------------------------------------------------------------- add
def test_add_appends_and_validates(small, tmp_path):
    v, t = small
    idx = GalaxyIndex.build(v[:200], t[:200], kind="ivfpq", nlist=4, nbits=4, m=4, refine_factor=100)
    idx.add(v[200:], t[200:])
    assert idx.ntotal == 300 and len(idx.table) == 300 and idx.manifest["count"] == 300
    rows = idx.search(v[250:255], 1)[1][:, 0]
    np.testing.assert_array_equal(rows, np.arange(250, 255))
    np.testing.assert_allclose(idx.vectors([299]), v[[299]], atol=1e-6)
    with pytest.raises(ValueError, match="already in the index"):
        idx.add(v[:3], t[:3])
    with pytest.raises(ValueError, match="dimension"):
        idx.add(np.ones((1, 4)), t[:1])
    bad = t[:2].copy()
    bad["object_id"] = ["new1", "new2"]
    bad.remove_column("kind")
    with pytest.raises(ValueError, match="columns"):
        idx.add(v[:2], bad)
    back = GalaxyIndex.load(idx.save(tmp_path / "added"))
    assert back.ntotal == 300
    np.testing.assert_array_equal(back.search(v[250:255], 1)[1][:, 0], np.arange(250, 255))


# --------------------------------------------------------------------------- save / load
def test_save_load_round_trip(small, saved):
    v, t = small
    names = sorted(p.name for p in saved.iterdir())
    assert names == ["catalog.fits", "index.faiss", "manifest.json", "vectors.npy"]
    m = json.loads((saved / "manifest.json").read_text())
    for key in ("format_version", "name", "survey", "kind", "factory", "metric", "dim", "count", "model",
                "knobs", "package_version", "created", "files"):
        assert key in m
    assert m["model"] == {"name": "toy", "fingerprint": "a" * 64, "dim": 16}
    assert m["files"]["vectors.npy"]["bytes"] == (saved / "vectors.npy").stat().st_size
    assert m["files"]["index.faiss"]["sha256"] == hashlib.sha256((saved / "index.faiss").read_bytes()).hexdigest()

    idx = GalaxyIndex.load(saved)
    assert isinstance(idx.vectors_array(), np.memmap)
    assert isinstance(GalaxyIndex.load(saved, mmap=False).vectors_array(), np.ndarray)
    assert idx.name == "small" and idx.ntotal == 300 and idx.path == saved
    assert idx.table["object_id"].dtype.kind == "U"
    assert list(idx.table["object_id"]) == list(t["object_id"])
    assert idx.table["ra"].unit == u.deg and idx.table["mag_r"].unit == u.mag
    np.testing.assert_allclose(idx.table["dec"], t["dec"])
    np.testing.assert_array_equal(idx.search(v[:10], 5)[1], exact_topk(v, v[:10], 5))


def test_save_is_atomic_and_refuses_to_overwrite(small, saved, monkeypatch):
    v, t = small
    idx = GalaxyIndex.build(v, t)
    with pytest.raises(FileExistsError):
        idx.save(saved)
    before = (saved / "manifest.json").read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(storage, "sha256_file", boom)
    with pytest.raises(OSError, match="disk full"):
        idx.save(saved, overwrite=True)
    monkeypatch.undo()
    assert (saved / "manifest.json").read_text() == before  # old index untouched
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".small.tmp")]
    GalaxyIndex.load(saved)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: (d / "vectors.npy").unlink(), "vectors.npy is missing"),
        (lambda d: (d / "index.faiss").write_bytes((d / "index.faiss").read_bytes()[:-100]), "index.faiss is truncated"),
        (lambda d: (d / "catalog.fits").write_bytes((d / "catalog.fits").read_bytes() + b"x"), "catalog.fits has"),
        (lambda d: _flip_byte(d / "vectors.npy"), "vectors.npy fails its sha256"),
        (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda d: _edit_manifest(d, count=5), "inconsistent counts"),
        (lambda d: _edit_manifest(d, dim=3), "inconsistent dimensions"),
        (lambda d: _edit_manifest(d, format_version=99), "format version"),
    ],
)
def test_load_detects_damage(saved, tmp_path, damage, match):
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    damage(copy)
    with pytest.raises(IndexIntegrityError, match=match):
        GalaxyIndex.load(copy)


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(d, **changes):
    m = json.loads((d / "manifest.json").read_text())
    m.update(changes)
    (d / "manifest.json").write_text(json.dumps(m))


def test_load_missing_directory(tmp_path):
    with pytest.raises(IndexIntegrityError, match="does not exist"):
        GalaxyIndex.load(tmp_path / "nothing")


# --------------------------------------------------------------------------- model check
def test_check_model(small):
    v, t = small
    idx = GalaxyIndex.build(v, t, model=FakeModel(), name="toyindex")
    idx.check_model(FakeModel())
    with pytest.raises(ModelMismatchError, match="16-d vectors .* makes 32-d"):
        idx.check_model(FakeModel(dim=32))
    with pytest.raises(ModelMismatchError, match=r"built by model 'toy' \(sha256 aaaaaaaaaaaa.*you are using 'other'"):
        idx.check_model(FakeModel(fingerprint="b" * 64, name="other"))
    with pytest.raises(ValueError, match="dimension 16 but the index has dimension 8"):
        GalaxyIndex.build(v, t, model=FakeModel(dim=8))


# --------------------------------------------------------------------------- URLs and names
@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_load_from_url_with_sha256(saved, http_dir, fmt):
    from astropy.utils.data import is_url_in_cache

    root, base = http_dir
    archive = root / f"small.{fmt}"
    if fmt == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for p in saved.iterdir():
                zf.write(p, f"small/{p.name}")
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(saved, arcname="small")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    url = f"{base}/small.{fmt}"

    with pytest.raises(ValueError, match="needs its sha256"):
        GalaxyIndex.load(url)
    with pytest.raises(IndexIntegrityError, match="expected 0000"):
        GalaxyIndex.load(url, sha256="0" * 64)
    assert not is_url_in_cache(url)  # the bad download was thrown away

    idx = GalaxyIndex.load(url, sha256=sha)
    assert idx.ntotal == 300 and idx.name == "small"
    again = GalaxyIndex.load(url, sha256=sha)  # from the cache, extracted once
    assert again.path == idx.path
    assert load_index(f"{url}#sha256={sha}").path == idx.path  # the command-line spelling


def test_archive_path_traversal_is_refused(tmp_path, http_dir):
    root, base = http_dir
    evil = root / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", "x")
    sha = hashlib.sha256(evil.read_bytes()).hexdigest()
    with pytest.raises(IndexIntegrityError, match="outside"):
        GalaxyIndex.load(f"{base}/evil.zip", sha256=sha)


def test_load_index_caches_and_resolves(saved):
    from astro_semsearch import conf

    a = load_index(saved)
    assert load_index(str(saved)) is a
    with conf.set_temp("default_index", str(saved)):
        assert load_index() is a
    with pytest.raises(IndexIntegrityError, match="no index named 'no-such-index'"):
        load_index("no-such-index")
    assert "GalaxyIndex 'small'" in repr(a)


def test_knobs_survive_save_and_load(tmp_path):
    import faiss

    v = clustered(800, 16, seed=5)
    idx = GalaxyIndex.build(v, catalogue(800, seed=5), kind="hnsw", ef_search=77)
    idx.set_knobs(ef_search=99)
    with pytest.raises(TypeError, match="ef_search must be an integer"):
        idx.set_knobs(ef_search="fast")
    back = GalaxyIndex.load(idx.save(tmp_path / "h"), verify=False)
    assert back.knobs["ef_search"] == 99
    assert faiss.downcast_index(back._index).hnsw.efSearch == 99
    with pytest.raises(IndexError, match="row numbers"):
        back.vectors([800])


def test_ivf_trains_on_a_subsample(monkeypatch):
    # k-means cost is O(train_size * nlist): the index must train on train_size vectors, not all n
    seen = []
    import faiss

    real = faiss.IndexIVFPQ.train

    def spy(self, x):
        seen.append(len(x))
        return real(self, x)

    monkeypatch.setattr(faiss.IndexIVFPQ, "train", spy)
    v = clustered(3000, 16)
    idx = GalaxyIndex.build(v, catalogue(3000), kind="ivfpq", nlist=16, m=4, nbits=6, train_size=1000)
    assert seen == [1000] and idx.ntotal == 3000
    assert idx.search(v[:3], 5)[1][:, 0].tolist() == [0, 1, 2]  # 50 candidates re-scored exactly


def test_large_catalogue_is_memory_mapped(tmp_path, monkeypatch):
    v = clustered(300, 16)
    GalaxyIndex.build(v, catalogue(300)).save(tmp_path / "ix")
    monkeypatch.setattr(storage, "CATALOG_DECODE_LIMIT", 100)
    idx = GalaxyIndex.load(tmp_path / "ix")
    assert idx.table["object_id"].dtype.kind == "S"  # left as memory-mapped bytes
    cat = idx.catalog([5, 2])
    assert cat["object_id"].dtype.kind == "U" and list(cat["object_id"]) == [catalogue(300)["object_id"][5],
                                                                            catalogue(300)["object_id"][2]]
    assert list(idx.object_ids([7])) == [str(catalogue(300)["object_id"][7])]
    assert idx.rows_of([str(catalogue(300)["object_id"][42]), "nope"]).tolist() == [42, -1]
    np.testing.assert_allclose(idx.coords([3]).ra.deg, catalogue(300)["ra"][3])
    # a small catalogue is decoded as usual
    monkeypatch.setattr(storage, "CATALOG_DECODE_LIMIT", 1000)
    assert GalaxyIndex.load(tmp_path / "ix").table["object_id"].dtype.kind == "U"


def test_streaming_merge_equals_one_build(tmp_path):
    v = clustered(900, 16)
    cat = catalogue(900)
    parts = [GalaxyIndex.build(v[a:b], cat[a:b]) for a, b in ((0, 300), (300, 650), (650, 900))]
    merged = GalaxyIndex.merge(parts, tmp_path / "m", kind="ivfpq", nlist=8, m=4, nbits=6, chunk=100)
    assert merged.ntotal == 900 and merged.kind == "ivfpq" and merged.path == tmp_path / "m"
    np.testing.assert_array_equal(merged.vectors(), np.concatenate([p.vectors() for p in parts]))  # bit for bit
    assert list(merged.table["object_id"]) == list(cat["object_id"])
    np.testing.assert_array_equal(merged.search(v[:4], 5)[1][:, 0], [0, 1, 2, 3])
    assert merged.manifest["count"] == 900 and merged.manifest["files"]["vectors.npy"]["bytes"] > 900 * 16 * 4
    with pytest.raises(ValueError, match="duplicate object_id"):
        GalaxyIndex.merge([parts[0], parts[0]], tmp_path / "dup")
    with pytest.raises(ValueError, match="no parts"):
        GalaxyIndex.merge([], tmp_path / "none")
    with pytest.raises(ValueError, match="dimension"):
        GalaxyIndex.merge([parts[0], GalaxyIndex.build(clustered(10, 8), catalogue(10))], tmp_path / "d")
    assert not (tmp_path / "dup").exists()


def test_too_small_training_sample_is_refused_at_the_door():
    v = clustered(3000, 16)
    with pytest.raises(ValueError, match="train_size=50 is too small.*at least 256"):
        GalaxyIndex.build(v, catalogue(3000), kind="ivfpq", nlist=16, m=4, train_size=50)
