"""build_index end to end against the local cutout server, resume after a kill, local images."""
import legacy_server as _server
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from legacy_server import synthetic_cutout

from astro_semsearch import conf
from astro_semsearch.build import build_index
from astro_semsearch.cli import main
from astro_semsearch.cutouts import LegacySurvey
from astro_semsearch.index import GalaxyIndex

legacy_server = _server.legacy_server  # the fixture (tests/legacy_server.py)

torch = pytest.importorskip("torch")
SIZE = 32


@pytest.fixture(scope="module")
def model():
    from astro_semsearch.model import GalaxyModel

    torch.set_num_threads(1)
    return GalaxyModel.from_config(seed=0)


class Counting:
    """Wraps a model: counts embedded images; optionally dies after ``fail_after`` calls (a kill)."""

    def __init__(self, model, fail_after=None):
        self.model, self.fail_after = model, fail_after
        self.calls = self.images = 0
        self.dim, self.name, self.fingerprint = model.dim, model.name, model.fingerprint

    def embed_images(self, images, batch_size=256, progress=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        out = self.model.embed_images(images, batch_size=batch_size)
        self.images += len(out)
        return out


def _catalog(n=10, south=(3, 7)):
    rng = np.random.default_rng(1)
    dec = rng.uniform(-10, 30, n)
    dec[list(south)] = -45.0  # outside the fake footprint
    t = Table()
    t["name"] = [f"gal-{i:03d}" for i in range(n)]
    t["RAJ2000"] = rng.uniform(0, 360, n) * u.deg
    t["DEJ2000"] = dec * u.deg
    t["z"] = rng.uniform(0.01, 0.2, n)
    t["morph"] = [("S", "E")[i % 2] for i in range(n)]
    return t


def test_build_end_to_end(legacy_server, model, tmp_path):
    cat = _catalog()
    cat.write(tmp_path / "cat.ecsv")
    out = tmp_path / "idx"
    index = build_index(tmp_path / "cat.ecsv", out=out, model=model, id_column="name", size=SIZE, chunk_size=4)
    expected_ids = [f"gal-{i:03d}" for i in range(10) if i not in (3, 7)]
    assert list(index.table["object_id"]) == expected_ids
    assert {"z", "morph"} <= set(index.table.colnames)
    np.testing.assert_allclose(index.table["z"], cat["z"][[i for i in range(10) if i not in (3, 7)]])
    # The vectors are the model's embeddings of exactly those cutouts.
    row = 4  # gal-005
    img = synthetic_cutout(float(cat["RAJ2000"][5]), float(cat["DEJ2000"][5]), SIZE)
    np.testing.assert_allclose(index.vectors([row])[0], model.embed_images(img)[0], atol=1e-5)
    # Blank cutouts were skipped, reported and never embedded.
    b = index.manifest["build"]
    assert (b["n_input"], b["n_indexed"], b["n_skipped"]) == (10, 8, 2)
    skipped = Table.read(out / "skipped.ecsv")
    assert list(skipped["object_id"]) == ["gal-003", "gal-007"]
    assert all("footprint" in r for r in skipped["reason"])
    assert b["throughput"]["cutouts_per_s"] > 0 and b["throughput"]["embeddings_per_s"] > 0
    assert not (tmp_path / "idx.partial").exists()
    loaded = GalaxyIndex.load(out)
    assert loaded.ntotal == 8 and loaded.manifest["model"]["fingerprint"] == model.fingerprint
    assert loaded.manifest["build"]["n_skipped"] == 2
    scores, rows = loaded.search(loaded.vectors([2]), k=1)
    assert rows[0, 0] == 2
    assert legacy_server.counts["/fits-cutout"] == 10
    with pytest.raises(FileExistsError):
        build_index(cat, out=out, model=model, id_column="name", size=SIZE)


def test_resume_after_kill_embeds_nothing_twice(legacy_server, model, tmp_path):
    class CountingSource(LegacySurvey):
        def __init__(self):
            super().__init__()
            self.asked = []

        def get_cutouts(self, coordinates, **kw):
            self.asked.extend(np.round(coordinates[0], 6).tolist())
            return super().get_cutouts(coordinates, **kw)

    cat = _catalog(n=12, south=(1,))
    out = tmp_path / "idx"
    dying = Counting(model, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        build_index(cat, out=out, model=dying, id_column="name", size=SIZE, chunk_size=3)
    work = tmp_path / "idx.partial"
    assert sorted(p.name for p in work.glob("chunk-*.npz")) == ["chunk-00000.npz", "chunk-00001.npz"]
    assert not out.exists()
    assert dying.images == 5  # chunk 0 had one blank
    assert legacy_server.total == 9  # chunk 2 was fetched, then the kill came before its embedding

    again, src = Counting(model), CountingSource()
    index = build_index(cat, out=out, source=src, model=again, id_column="name", size=SIZE, chunk_size=3)
    # Only chunks 2 and 3 were fetched and embedded (6 galaxies), nothing twice.
    assert (again.calls, again.images) == (2, 6)
    assert src.asked == np.round(np.asarray(cat["RAJ2000"][6:]), 6).tolist()
    assert legacy_server.total == 12  # chunk 2 came from the cache
    assert index.manifest["build"]["throughput"]["chunks_resumed"] == 2
    assert index.manifest["build"]["n_indexed"] == 11
    assert not work.exists()
    # Identical to an uninterrupted build.
    full = build_index(cat, out=tmp_path / "ref", model=model, id_column="name", size=SIZE, chunk_size=3)
    assert list(index.table["object_id"]) == list(full.table["object_id"])
    np.testing.assert_array_equal(index.vectors(), full.vectors())
    assert index.table.colnames == full.table.colnames
    np.testing.assert_array_equal(index.table["z"], full.table["z"])


def test_resume_after_kill_during_fetch(legacy_server, model, tmp_path):
    class DyingSource(LegacySurvey):
        calls = 0

        def get_cutouts(self, *a, **k):
            if DyingSource.calls >= 1:
                raise KeyboardInterrupt("simulated kill")
            DyingSource.calls += 1
            return super().get_cutouts(*a, **k)

    cat = _catalog(n=6, south=())
    with pytest.raises(KeyboardInterrupt):
        build_index(cat, out=tmp_path / "idx", source=DyingSource(), model=model, id_column="name",
                    size=SIZE, chunk_size=3)
    counting = Counting(model)
    index = build_index(cat, out=tmp_path / "idx", model=counting, id_column="name", size=SIZE, chunk_size=3)
    assert counting.images == 3 and index.ntotal == 6


def test_damaged_chunk_file_is_redone(legacy_server, model, tmp_path):
    cat = _catalog(n=9, south=())
    with pytest.raises(KeyboardInterrupt):
        build_index(cat, out=tmp_path / "idx", model=Counting(model, fail_after=2), id_column="name",
                    size=SIZE, chunk_size=3)
    chunk = tmp_path / "idx.partial" / "chunk-00001.npz"
    chunk.write_bytes(chunk.read_bytes()[:100])  # e.g. a disk that filled up under another tool
    counting = Counting(model)
    index = build_index(cat, out=tmp_path / "idx", model=counting, id_column="name", size=SIZE, chunk_size=3)
    assert counting.images == 6  # chunks 1 and 2; chunk 0 was reused
    assert list(index.table["object_id"]) == list(cat["name"])


def test_refuses_to_mix_catalogues_or_models(legacy_server, model, tmp_path):
    from astro_semsearch.model import GalaxyModel

    cat = _catalog(n=6, south=())
    with pytest.raises(KeyboardInterrupt):
        build_index(cat, out=tmp_path / "idx", model=Counting(model, fail_after=1), id_column="name",
                    size=SIZE, chunk_size=3)
    other = cat.copy()
    other["RAJ2000"][0] += 1.0
    with pytest.raises(ValueError, match="different catalogue, model or settings.*catalog_sha256"):
        build_index(other, out=tmp_path / "idx", model=model, id_column="name", size=SIZE, chunk_size=3)
    with pytest.raises(ValueError, match="model_fingerprint"):
        build_index(cat, out=tmp_path / "idx", model=GalaxyModel.from_config(seed=1), id_column="name",
                    size=SIZE, chunk_size=3)
    with pytest.raises(ValueError, match="size"):
        build_index(cat, out=tmp_path / "idx", model=model, id_column="name", size=SIZE * 2, chunk_size=3)


def test_failed_cutouts_are_skipped_and_reported(legacy_server, model, tmp_path):
    cat = _catalog(n=4, south=())
    legacy_server.fail("500", times=1)
    with conf.set_temp("max_retries", 0), conf.set_temp("max_concurrency", 1):
        index = build_index(cat, out=tmp_path / "idx", model=model, id_column="name", size=SIZE)
    assert index.ntotal == 3
    skipped = Table.read(tmp_path / "idx" / "skipped.ecsv")
    assert list(skipped["object_id"]) == ["gal-000"]
    assert "HTTP 500" in skipped["reason"][0]


def test_build_from_local_images(model, tmp_path):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    files = []
    for i in range(5):
        img = synthetic_cutout(10.0 + i, 5.0, SIZE)
        if i == 0:
            fits.PrimaryHDU(img).writeto(d / "g0.fits")
            files.append("g0.fits")
        else:
            rgb = (np.clip(np.moveaxis(img[::-1], 0, -1), 0, 1) * 255).astype(np.uint8)
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(rgb).save(d / f"g{i}.{ext}")
            files.append(f"g{i}.{ext}")
    fits.PrimaryHDU(np.zeros((3, SIZE, SIZE), np.float32)).writeto(d / "blank.fits")
    files += ["blank.fits", "missing.png"]
    cat = Table({"object_id": [f"L{i}" for i in range(7)], "ra": np.arange(7.0) + 10, "dec": np.full(7, 5.0),
                 "file": files})
    index = build_index(cat, out=tmp_path / "idx", model=model, images=d)
    assert list(index.table["object_id"]) == ["L0", "L1", "L2", "L3", "L4"]
    assert "file" in index.table.colnames
    np.testing.assert_allclose(index.vectors([1])[0], model.embed_images(str(d / "g1.png"))[0], atol=1e-5)
    skipped = Table.read(tmp_path / "idx" / "skipped.ecsv")
    assert list(skipped["object_id"]) == ["L5", "L6"]
    assert "blank" in skipped["reason"][0] and "not found" in skipped["reason"][1]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"id_column": "nope"}, ValueError, "id column 'nope'"),
        ({"ra_column": "alpha"}, ValueError, "RA column 'alpha'"),
        ({"keep_columns": ["zz"]}, ValueError, "keep_columns"),
        ({"images": "no-such-dir"}, FileNotFoundError, "no-such-dir"),
    ],
)
def test_bad_inputs_fail_before_any_work(legacy_server, model, tmp_path, kwargs, exc, match):
    cat = _catalog(n=4, south=())
    kwargs.setdefault("id_column", "name")
    with pytest.raises(exc, match=match):
        build_index(cat, out=tmp_path / "idx", model=model, size=SIZE, **kwargs)
    assert legacy_server.total == 0 and not (tmp_path / "idx.partial").exists()


def test_duplicate_ids_rejected(model, tmp_path):
    cat = Table({"object_id": ["a", "a"], "ra": [1.0, 2.0], "dec": [0.0, 0.0]})
    with pytest.raises(ValueError, match="unique"):
        build_index(cat, out=tmp_path / "idx", model=model)


def test_cli_build_index(legacy_server, model, tmp_path, capsys):
    mdir = model.save(tmp_path / "model")
    cat = _catalog(n=4, south=(2,))
    cat.write(tmp_path / "cat.ecsv")
    assert main(["build-index", str(tmp_path / "cat.ecsv"), "--out", str(tmp_path / "idx"), "--id-column", "name",
                 "--size", str(SIZE), "--model", str(mdir), "--chunk-size", "2"]) == 0
    text = capsys.readouterr().out
    assert "3 galaxies indexed, 1 skipped" in text and "cutouts/s" in text
    assert GalaxyIndex.load(tmp_path / "idx").ntotal == 3


def _rgb_file(path, seed):
    from PIL import Image

    img = synthetic_cutout(10.0 + seed, 5.0, SIZE)
    Image.fromarray((np.clip(np.moveaxis(img[::-1], 0, -1), 0, 1) * 255).astype(np.uint8)).save(path)


def test_images_the_model_cannot_embed_are_skipped_rows_naming_row_and_file(model, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    _rgb_file(d / "good.png", 0)
    fits.PrimaryHDU(np.full((SIZE, SIZE), np.nan, np.float32)).writeto(d / "nan.fits")
    fits.PrimaryHDU(np.random.default_rng(0).random((4, 4)).astype(np.float32)).writeto(d / "tiny.fits")
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    fits.PrimaryHDU(np.random.default_rng(1).random((SIZE, SIZE)).astype(np.float32)).writeto(d / "one_band.fits")
    files = ["good.png", "nan.fits", "tiny.fits", "broken.jpg", "one_band.fits"]
    cat = Table({"object_id": [f"L{i}" for i in range(5)], "ra": np.arange(5.0) + 10, "dec": np.full(5, 5.0),
                 "file": files})
    index = build_index(cat, out=tmp_path / "idx", model=model, images=d, chunk_size=5)
    # A single plane is embedded (grey), the others are skipped: one bad file never stops the chunk.
    assert list(index.table["object_id"]) == ["L0", "L4"]
    skipped = Table.read(tmp_path / "idx" / "skipped.ecsv")
    assert list(skipped["row"]) == [1, 2, 3] and list(skipped["object_id"]) == ["L1", "L2", "L3"]
    reasons = list(skipped["reason"])
    assert reasons[0].startswith("nan.fits") and "NaN" in reasons[0]
    assert reasons[1].startswith("tiny.fits") and "too small" in reasons[1]
    assert reasons[2].startswith("broken.jpg") and "cannot be read" in reasons[2]


def test_without_a_file_column_images_are_found_by_object_id(model, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    _rgb_file(d / "A.png", 0)
    _rgb_file(d / "B.jpg", 1)
    cat = Table({"object_id": ["A", "B", "C"], "ra": [10.0, 11.0, 12.0], "dec": [5.0, 5.0, 5.0]})
    index = build_index(cat, out=tmp_path / "idx", model=model, images=d)
    assert list(index.table["object_id"]) == ["A", "B"]
    reason = Table.read(tmp_path / "idx" / "skipped.ecsv")["reason"][0]
    assert "C.{jpg,jpeg,png" in reason and str(d) in reason


def test_file_names_that_repeat_the_directory_are_not_doubled(model, tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    _rgb_file(d / "J1.png", 0)
    cat = Table({"object_id": ["J1"], "ra": [10.0], "dec": [5.0], "file": ["images/J1.png"]})
    assert build_index(cat, out=tmp_path / "idx", model=model, images=d).ntotal == 1


def test_a_second_build_into_the_same_output_is_refused(model, tmp_path):
    import threading

    from astro_semsearch._io import output_lock
    from astro_semsearch.exceptions import LockedError

    cat = Table({"object_id": ["A"], "ra": [10.0], "dec": [5.0]})
    held, release = threading.Event(), threading.Event()

    def other_build():
        with output_lock(tmp_path / "idx"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=other_build)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(LockedError, match="is writing to"):
            build_index(cat, out=tmp_path / "idx", model=model, images=tmp_path)
        assert not (tmp_path / "idx.partial").exists()  # refused before any work
    finally:
        release.set()
        t.join()


def test_cli_build_messages_use_option_names_and_say_what_to_do_after_a_stop(legacy_server, model, tmp_path,
                                                                               capsys):
    mdir = model.save(tmp_path / "model")
    cat = Table({"id": ["a", "b"], "x": [10.0, 11.0], "y": [5.0, 5.0]})
    cat.write(tmp_path / "cat.ecsv")
    args = ["build-index", str(tmp_path / "cat.ecsv"), "--out", str(tmp_path / "idx"), "--model", str(mdir),
            "--size", str(SIZE), "--fixed-framing"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--id-column" in err and "id_column=" in err
    assert main(args + ["--id-column", "id"]) == 2
    assert "--ra-column" in capsys.readouterr().err
    # A build that stops midway (the model fails on the second chunk) says where its work is and what to do.
    cat = _catalog(n=4, south=())
    cat.write(tmp_path / "cat2.ecsv")

    def broken(self, images, batch_size=256, progress=False):
        if broken.calls:
            raise OSError("disk trouble")
        broken.calls += 1
        return orig(self, images, batch_size=batch_size)

    from astro_semsearch.model import GalaxyModel

    orig, broken.calls = GalaxyModel.embed_images, 0
    try:
        GalaxyModel.embed_images = broken
        code = main(["build-index", str(tmp_path / "cat2.ecsv"), "--out", str(tmp_path / "idx2"), "--model",
                     str(mdir), "--size", str(SIZE), "--id-column", "name", "--chunk-size", "2", "--fixed-framing"])
    finally:
        GalaxyModel.embed_images = orig
    err = capsys.readouterr().err
    assert code == 2 and "disk trouble" in err and "idx2.partial" in err and "run the same command again" in err
    assert len(err.strip().splitlines()) == 1
