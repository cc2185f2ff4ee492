"""What is checked when an index is opened, and the trust boundaries of indexes from elsewhere.

Every damaged or hand-edited index is refused with an `IndexIntegrityError`
naming the file and the field or row, never a ``TypeError`` / ``KeyError`` /
``RecursionError`` traceback. "Re-signed" means the manifest's sizes and
sha256s were recomputed after the edit, so only the content checks can see it.
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from astro_semsearch import conf
from astro_semsearch.exceptions import IndexIntegrityError, InvalidInputError
from astro_semsearch.index import GalaxyIndex, ShardedIndex, galaxy_index, integrity, open_index

N, DIM = 50, 8


def _build(n=N, seed=0, name="chk", kind="flat"):
    rng = np.random.default_rng(seed)
    table = Table({"object_id": [f"C{i:03d}" for i in range(n)], "ra": rng.uniform(0, 360, n),
                   "dec": rng.uniform(-60, 60, n), "mag": rng.uniform(15, 19, n)})
    return GalaxyIndex.build(rng.normal(size=(n, DIM)).astype(np.float32), table, name=name, kind=kind)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return _build().save(tmp_path_factory.mktemp("chk") / "chk")


@pytest.fixture
def copy(saved, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(saved, dest)
    return dest


def _manifest(d):
    return json.loads((d / "manifest.json").read_text())


def _write_manifest(d, m):
    (d / "manifest.json").write_text(json.dumps(m))


def _resign(d):
    """Recompute the manifest's file sizes and sha256s, as a careless tool would after editing a file."""
    m = _manifest(d)
    for fn in ("index.faiss", "vectors.npy", "catalog.fits"):
        data = (d / fn).read_bytes()
        m["files"][fn] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    _write_manifest(d, m)


def _edit(**changes):
    def apply(d):
        m = _manifest(d)
        for path, value in changes.items():
            obj = m
            keys = path.split("__")
            for k in keys[:-1]:
                obj = obj[k]
            if value is KeyError:
                del obj[keys[-1]]
            else:
                obj[keys[-1]] = value
        _write_manifest(d, m)
    return apply


def _bytes_as_text(files):
    info = files["catalog.fits"]
    return {**files, "catalog.fits": {**info, "bytes": str(info["bytes"])}}


# --------------------------------------------------------------------------- every manifest field type-checked
@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: _edit(files={k: v for k, v in _manifest(d)["files"].items() if k != "vectors.npy"})(d),
         "files lists no checksum for vectors.npy"),
        (_edit(**{"files": ["index.faiss"]}), "files must be a JSON object, got list"),
        (_edit(files__nothing=1), None),  # extra entries are fine
        (lambda d: _edit(files=dict(_manifest(d)["files"], **{"vectors.npy": {"bytes": 1}}))(d),
         r"files.vectors.npy.sha256 must be a sha256"),
        (lambda d: _edit(files=dict(_manifest(d)["files"], **{"vectors.npy": "abc"}))(d),
         r"files.vectors.npy must be a JSON object"),
        (lambda d: _edit(files=_bytes_as_text(_manifest(d)["files"]))(d),
         r"files.catalog.fits.bytes must be an integer, got '\d+' \(str\)"),
        (_edit(count="50"), r"count must be an integer, got '50' \(str\)"),
        (_edit(count=True), "count must be an integer"),
        (_edit(dim=8.0), "dim must be an integer"),
        (_edit(format_version=True), "format version True is not supported"),
        (_edit(kind=None), "kind must be a string"),
        (_edit(name=7), "name must be a string"),
        (_edit(model=["galclip"]), "model must be a JSON object, got list"),
        (_edit(model={"name": "m", "fingerprint": 5, "dim": 8}), "model.fingerprint must be a string"),
        (_edit(model={"name": "m", "fingerprint": "f", "dim": "8"}), "model.dim must be an integer"),
        (_edit(knobs=[1, 2]), "knobs must be a JSON object"),
        (_edit(knobs={"nprobe": "fast"}), "knobs.nprobe must be an integer"),
        (_edit(knobs={"warp": 9}), "knobs.warp is not an index knob"),
        (_edit(build="yes"), "build must be a JSON object"),
        (_edit(content={"rows": [0], "object_ids": []}), "content must hold lists"),
        (_edit(content={"rows": ["0"], "object_ids": ["C000"], "vector_sha256": ["0" * 64]}), "not a row number"),
        (_edit(content={"rows": [999], "object_ids": ["C000"], "vector_sha256": ["0" * 64]}), "past the 50 rows"),
        (lambda d: (d / "manifest.json").write_text("[" * 50_000 + "]" * 50_000), "nested too deeply"),
        (lambda d: (d / "manifest.json").write_text('{"a": ' * 500 + "1" + "}" * 500), "format version None"),
        (lambda d: (d / "manifest.json").write_bytes(b'{"name": "\xff"}'), "not valid JSON"),
    ],
)
def test_every_manifest_field_is_type_checked(copy, damage, match):
    damage(copy)
    if match is None:
        GalaxyIndex.load(copy)
        return
    with pytest.raises(IndexIntegrityError, match=match) as err:
        GalaxyIndex.load(copy)
    assert "manifest.json" in str(err.value) or "index" in str(err.value)


def test_manifest_records_a_content_sample(saved):
    m = _manifest(saved)
    c = m["content"]
    assert c["rows"][0] == 0 and c["rows"][-1] == N - 1 and len(c["rows"]) == integrity.CONTENT_ROWS
    assert c["object_ids"][:2] == ["C000", f"C{c['rows'][1]:03d}"]
    assert all(len(h) == 64 for h in c["vector_sha256"])


# --------------------------------------------------------------------------- contents, with the checksums re-signed
def _rewrite_vectors(d, fn):
    v = np.load(d / "vectors.npy")
    np.save(d / "vectors.npy", fn(v.copy()))


def _rewrite_catalog(d, fn):
    t = Table.read(d / "catalog.fits")
    fn(t).write(d / "catalog.fits", overwrite=True)


def _set(col, row, value):
    def f(t):
        t[col][row] = value
        return t
    return f


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: _rewrite_vectors(d, lambda v: v[::-1]),
         r"vectors.npy: row 0 is not the vector saved for object 'C000'"),
        (lambda d: _rewrite_catalog(d, lambda t: t[::-1]),
         r"catalog.fits: row 0 holds object 'C049', the manifest recorded 'C000'"),
        (lambda d: _rewrite_vectors(d, lambda v: np.where(np.arange(N)[:, None] == 7, np.nan, v)),
         "row 7 has non-finite"),
        (lambda d: _rewrite_vectors(d, lambda v: v * 2), r"row 0 has length 2, not a unit vector"),
        (lambda d: _rewrite_catalog(d, _set("ra", 3, 400.0)),
         r"row 3 has ra = 400.0, not a finite angle in \[0, 360\]"),
        (lambda d: _rewrite_catalog(d, _set("dec", 4, np.nan)), "row 4 has dec = nan"),
        (lambda d: _rewrite_catalog(d, _set("object_id", 5, "C006")), r"duplicate object_id values .*C006"),
        (lambda d: _rewrite_catalog(d, lambda t: t[["object_id", "dec", "mag"]]),
         r"required column\(s\) \['ra'\] missing"),
    ],
)
def test_contents_are_checked_even_with_recomputed_checksums(copy, damage, match):
    damage(copy)
    _resign(copy)
    with pytest.raises(IndexIntegrityError, match=match):
        GalaxyIndex.load(copy)


def test_permuted_vectors_and_catalogue_are_caught_by_the_faiss_rows(copy):
    """Vectors and catalogue permuted together (ids and digests moved along) still disagree with index.faiss."""
    perm = np.random.default_rng(1).permutation(N)
    _rewrite_vectors(copy, lambda v: v[perm])
    _rewrite_catalog(copy, lambda t: t[perm])
    m = _manifest(copy)
    v = np.load(copy / "vectors.npy")
    t = Table.read(copy / "catalog.fits")
    m["content"]["object_ids"] = [str(t["object_id"][r]) for r in m["content"]["rows"]]
    m["content"]["vector_sha256"] = [hashlib.sha256(v[r].tobytes()).hexdigest() for r in m["content"]["rows"]]
    _write_manifest(copy, m)
    _resign(copy)
    with pytest.raises(IndexIntegrityError, match=r"index.faiss: row \d+ does not hold the vector of object"):
        GalaxyIndex.load(copy)


def test_large_indexes_are_checked_on_a_sample_and_ids_when_looked_up(tmp_path, monkeypatch):
    path = _build(n=300).save(tmp_path / "big")
    _rewrite_catalog(path, _set("object_id", 150, "C001"))  # a row the content sample does not hold
    _resign(path)
    monkeypatch.setattr(integrity, "FULL_CHECK_ROWS", 100)
    monkeypatch.setattr(integrity, "SAMPLE_ROWS", 50)
    monkeypatch.setattr(galaxy_index, "FULL_CHECK_ROWS", 100)
    index = GalaxyIndex.load(path)  # ids of large catalogues are not sorted at load...
    with pytest.raises(IndexIntegrityError, match=r"duplicate object_id values .*C001"):
        index.rows_of(["C002"])  # ...but on the first look-up, which sorts them anyway
    _rewrite_vectors(path, lambda v: v * 3)
    _resign(path)
    with pytest.raises(IndexIntegrityError, match="not a unit vector"):
        GalaxyIndex.load(path)


def test_the_shipped_index_passes_every_check():
    index = open_index()
    assert index.ntotal == 236 and len(index.manifest["content"]["rows"]) > 0


def test_an_index_saved_before_content_samples_still_opens(copy):
    m = _manifest(copy)
    del m["content"]
    (copy / "manifest.json").write_text(json.dumps(m))
    index = GalaxyIndex.load(copy)
    assert index.ntotal == N and "content" not in index.manifest


# --------------------------------------------------------------------------- shards.json
@pytest.fixture
def sharded(tmp_path):
    rng = np.random.default_rng(2)
    table = Table({"object_id": [f"S{i}" for i in range(60)], "ra": rng.uniform(0, 360, 60),
                   "dec": rng.uniform(-60, 60, 60)})
    ShardedIndex.build(rng.normal(size=(60, DIM)).astype(np.float32), table, tmp_path / "sh", shard_size=20)
    return tmp_path / "sh"


def _edit_shards(d, fn):
    m = json.loads((d / "shards.json").read_text())
    fn(m)
    (d / "shards.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m["shards"][0].update(directory="../victim"),
         r"shards\[0\].directory must be a plain directory name"),
        (lambda m: m["shards"][1].update(directory="/etc"), r"shards\[1\].directory must be a plain"),
        (lambda m: m["shards"][0].update(directory="a\\b"), "must be a plain"),
        (lambda m: m["shards"][1].update(directory=m["shards"][0]["directory"]), "listed twice"),
        (lambda m: m["shards"][0].update(count="20"), r"shards\[0\].count must be an integer"),
        (lambda m: m["shards"][0].pop("manifest_sha256"), r"shards\[0\].manifest_sha256 must be a sha256"),
        (lambda m: m.update(shards={"a": 1}), "shards must be a list, got dict"),
        (lambda m: m["shards"].append("shard-9"), r"shards\[3\] must be a JSON object"),
        (lambda m: m.update(by="dec"), "by must be 'rows' or 'healpix'"),
        (lambda m: m.update(by="healpix"), "healpix_order must be an integer"),
        (lambda m: m.update(dim="8"), "dim must be an integer"),
    ],
)
def test_shards_json_is_type_checked_and_confined(sharded, change, match):
    _edit_shards(sharded, change)
    with pytest.raises(IndexIntegrityError, match=match):
        ShardedIndex.load(sharded)


def test_a_shard_linked_outside_the_index_is_refused(sharded, tmp_path):
    victim = tmp_path / "victim"
    shutil.move(str(sharded / "shard-00000"), victim)
    (sharded / "shard-00000").symlink_to(victim, target_is_directory=True)
    with pytest.raises(IndexIntegrityError, match="leads outside the index"):
        ShardedIndex.load(sharded)


def test_add_never_writes_outside_the_index(tmp_path):
    rng = np.random.default_rng(3)
    table = Table({"object_id": [f"H{i}" for i in range(40)], "ra": rng.uniform(10, 11, 40),
                   "dec": rng.uniform(10, 11, 40)})
    vec = rng.normal(size=(40, DIM)).astype(np.float32)
    sh = ShardedIndex.build(vec[:20], table[:20], tmp_path / "hp", by="healpix", order=0)
    sh.manifest["shards"][0]["directory"] = "../victim"  # changed behind its back
    with pytest.raises(IndexIntegrityError, match="not a plain name inside the index"):
        sh.add(vec[20:], table[20:])
    assert not (tmp_path / "victim").exists()


# --------------------------------------------------------------------------- paths named by a manifest
def test_a_model_path_in_the_manifest_is_confined_to_the_index(copy, tmp_path):
    from astro_semsearch import semantic_search

    for name in ("../elsewhere/model", "/abs/model"):
        _edit(model={"name": name, "fingerprint": "f" * 64, "dim": DIM})(copy)
        with pytest.raises(InvalidInputError, match="outside the index directory; refused"):
            semantic_search("ring", index=GalaxyIndex.load(copy))


@pytest.mark.filterwarnings("ignore:no image for")
def test_an_image_directory_in_the_manifest_is_confined_to_the_index(copy, tmp_path):
    from PIL import Image

    from astro_semsearch.thumbnails import result_images

    outside = tmp_path / "elsewhere" / "private"  # not beside the index (that is looked up by name)
    outside.mkdir(parents=True)
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    picture.save(outside / "C000.png")
    _edit(build={"request": {"source": "local:private"}, "images": {"directory": str(outside)}})(copy)
    _resign(copy)
    index = GalaxyIndex.load(copy)
    with pytest.warns(AstropyUserWarning, match="outside the index directory, which is not followed"):
        thumbs = result_images(index.catalog([0]), index=index, source=False)
    assert thumbs == [None]
    (copy / "private").mkdir()  # inside the index (or beside it, by name): used
    picture.save(copy / "private" / "C000.png")
    assert result_images(index.catalog([0]), index=index, source=False)[0] is not None


# --------------------------------------------------------------------------- indexes from URLs
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _tar(index_dir, archive, arcname="idx"):
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(index_dir, arcname=arcname)
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def test_url_indexes_are_cached_by_url_and_sha256(www, tmp_path):
    root, base = www
    a = _build(name="first").save(tmp_path / "a")
    sha_a = _tar(a, root / "idx.tar.gz")
    first = open_index(f"{base}/idx.tar.gz#sha256={sha_a}")
    assert first.name == "first"
    b = _build(seed=5, name="second").save(tmp_path / "b")
    sha_b = _tar(b, root / "idx.tar.gz")  # the file at the URL changed
    second = open_index(f"{base}/idx.tar.gz", sha256=sha_b)
    assert second.name == "second" and second is not first  # not the first one from the cache
    with pytest.raises(IndexIntegrityError, match=f"expected {sha_a}"):
        GalaxyIndex.load(f"{base}/idx.tar.gz", sha256=sha_a)  # the server now has another file


def test_files_edited_in_the_cache_are_caught_and_extracted_again(www, tmp_path):
    root, base = www
    src = _build(name="authentic").save(tmp_path / "a")
    sha = _tar(src, root / "idx.tar.gz")
    url = f"{base}/idx.tar.gz"
    cached = GalaxyIndex.load(url, sha256=sha).path
    _edit(name="edited")(cached)  # the manifest in the cache
    with pytest.warns(AstropyUserWarning, match="failed its checks .*edited in the cache"):
        assert GalaxyIndex.load(url, sha256=sha).name == "authentic"
    v = np.load(cached / "vectors.npy")
    np.save(cached / "vectors.npy", v[::-1])  # a data file in the cache (verify=False is not honoured for URLs)
    with pytest.warns(AstropyUserWarning, match="fails its sha256"):
        assert GalaxyIndex.load(url, sha256=sha, verify=False).name == "authentic"
    assert GalaxyIndex.load(url, sha256=sha).name == "authentic"  # and quietly from then on


def _bomb(path, megabytes):
    with tarfile.open(path, "w:gz") as tf:
        data = b"\0" * (megabytes << 20)
        info = tarfile.TarInfo("idx/vectors.npy")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_archive_limits_refuse_bombs_and_huge_archives(www, tmp_path):
    root, base = www
    sha = _bomb(root / "bomb.tar.gz", 20)  # ~20 kB that expands to 20 MB
    with pytest.raises(IndexIntegrityError, match=r"expands [\d,]+ times .*conf.max_archive_ratio"):
        GalaxyIndex.load(f"{base}/bomb.tar.gz", sha256=sha)
    src = _build(name="ok").save(tmp_path / "a")
    sha = _tar(src, root / "idx.tar.gz")
    with conf.set_temp("max_archive_bytes", 1000):
        with pytest.raises(IndexIntegrityError, match=r"expands to [\d,]+ bytes, more than conf.max_archive_bytes"):
            GalaxyIndex.load(f"{base}/idx.tar.gz", sha256=sha)
    with conf.set_temp("max_archive_members", 3):
        with pytest.raises(IndexIntegrityError, match="5 members, more than conf.max_archive_members = 3"):
            GalaxyIndex.load(f"{base}/idx.tar.gz", sha256=sha)
    zsrc = root / "idx.zip"
    with zipfile.ZipFile(zsrc, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("idx/vectors.npy", b"\0" * (20 << 20))
    with pytest.raises(IndexIntegrityError, match="max_archive_ratio"):
        GalaxyIndex.load(f"{base}/idx.zip", sha256=hashlib.sha256(zsrc.read_bytes()).hexdigest())
    assert GalaxyIndex.load(f"{base}/idx.tar.gz", sha256=sha).name == "ok"
    with pytest.raises(InvalidInputError, match="64 hex digits"):
        GalaxyIndex.load(f"{base}/idx.tar.gz", sha256="not-a-hash")
