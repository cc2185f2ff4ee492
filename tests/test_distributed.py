"""Tests of astro_semsearch.distributed: a Dask build equals the single-process build."""
import json

import numpy as np
import pytest
from astropy.table import Table

pytest.importorskip("distributed")
PIL = pytest.importorskip("PIL.Image")

from astro_semsearch.build import (
    build_index,  # noqa: E402
    build_index_dask,  # noqa: E402
)
from astro_semsearch.index import (
    GalaxyIndex,  # noqa: E402
    ShardedIndex,  # noqa: E402
)

N = 12
# distributed looks up this machine's IP (a harmless failed probe when sockets are blocked).
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't detect a suitable IP address:RuntimeWarning")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from astro_semsearch.model import GalaxyModel

    path = tmp_path_factory.mktemp("model") / "tiny"
    GalaxyModel.from_config(seed=0).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A dozen tiny JPEGs, one of them blank (skipped by the build), plus their catalogue."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    files = []
    for i in range(N):
        if i == 5:
            arr = np.zeros((40, 40, 3), np.uint8)  # outside the footprint: skipped
        else:
            yy, xx = np.mgrid[:40, :40]
            blob = np.exp(-((xx - 20 - rng.normal(0, 4)) ** 2 + (yy - 20) ** 2) / rng.uniform(10, 80))
            arr = np.clip(blob[..., None] * rng.uniform(80, 255, 3) + rng.normal(0, 8, (40, 40, 3)), 0, 255).astype(np.uint8)
        PIL.fromarray(arr).save(d / f"g{i:02d}.jpg", quality=95)
        files.append(f"g{i:02d}.jpg")
    cat = Table({"object_id": [f"obj{i}" for i in range(N)], "ra": rng.uniform(10, 20, N),
                 "dec": rng.uniform(-5, 5, N), "file": files, "mag": rng.uniform(15, 19, N)})
    return d, cat


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                           dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
    with Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, images, model_dir):
    from astro_semsearch.model import load_model

    d, cat = images
    out = tmp_path_factory.mktemp("ref") / "single"
    return build_index(cat, out=out, images=d, model=load_model(model_dir), kind="flat", progress=False)


def _same_content(a, b):
    assert list(a.table["object_id"]) == list(b.table["object_id"])
    assert a.table.colnames == b.table.colnames
    for c in a.table.colnames:
        if a.table[c].dtype.kind in "fc":
            np.testing.assert_allclose(np.asarray(a.table[c]), np.asarray(b.table[c]), rtol=1e-12)
        else:
            assert list(a.table[c]) == list(b.table[c])
    np.testing.assert_allclose(a.vectors(), b.vectors(), atol=1e-5)


def test_dask_merged_build_identical_to_single_process(tmp_path, images, model_dir, client, reference):
    d, cat = images
    merged = build_index_dask(cat, out=tmp_path / "dask", client=client, npartitions=4, merge=True,
                              images=d, model=str(model_dir), kind="flat")
    assert isinstance(merged, GalaxyIndex)
    assert merged.ntotal == N - 1 and "obj5" not in list(merged.table["object_id"])
    _same_content(merged, reference)
    assert merged.manifest["model"]["fingerprint"] == reference.manifest["model"]["fingerprint"]
    assert merged.manifest["dask"]["partitions"] == 4
    assert merged.manifest["build"]["n_skipped"] == 1
    skipped = Table.read(tmp_path / "dask" / "skipped.ecsv")
    assert list(skipped["object_id"]) == ["obj5"]
    assert not (tmp_path / "dask.dask-work").exists()
    # The saved copy passes the integrity checks.
    _same_content(GalaxyIndex.load(tmp_path / "dask"), reference)


def test_dask_sharded_build_searches_like_single(tmp_path, images, model_dir, client, reference):
    d, cat = images
    sharded = build_index_dask(cat, out=tmp_path / "sh", client=client, npartitions=3, images=d,
                               model=str(model_dir))
    assert isinstance(sharded, ShardedIndex) and sharded.nshards == 3
    _same_content(sharded, reference)
    q = reference.vectors([0, 7])
    s1, r1 = reference.search(q, 5)
    s2, r2 = sharded.search(q, 5)
    # The tiny random model puts neighbours within 1e-5 of each other: ties may swap places between kernels.
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert [set(a) for a in r1] == [set(b) for b in r2]


def test_dask_build_resumes_finished_partitions(tmp_path, images, model_dir, client, reference):
    from astro_semsearch.build import build_index
    from astro_semsearch.model import load_model

    d, cat = images
    out = tmp_path / "res"
    # An interrupted earlier run: partition 1 of 3 had finished when the job died.
    work = tmp_path / "res.dask-work"
    work.mkdir()
    bounds = np.linspace(0, N, 4).round().astype(int)
    build_index(cat[bounds[1]:bounds[2]], out=work / "part-00001", model=load_model(model_dir), images=d,
                kind="flat", name="res/part-00001", progress=False)
    assert (work / "part-00001" / "manifest.json").is_file()
    merged = build_index_dask(cat, out=out, client=client, npartitions=3, merge=True, images=d,
                              model=str(model_dir), kind="flat")
    assert merged.manifest["dask"]["partitions_resumed"] == 1
    _same_content(merged, reference)
    with pytest.raises(FileNotFoundError, match="image directory"):
        build_index_dask(cat, out=tmp_path / "other", client=client, images=tmp_path / "no-such-dir",
                         model=str(model_dir))


def test_dask_build_refuses_mismatched_work_dir(tmp_path, images, model_dir, client):
    d, cat = images
    work = tmp_path / "x.dask-work"
    work.mkdir()
    (work / "dask-work.json").write_text(json.dumps({"work_format": 1, "catalog_sha256": "0" * 64}))
    with pytest.raises(ValueError, match="different"):
        build_index_dask(cat, out=tmp_path / "x", client=client, npartitions=2, images=d, model=str(model_dir))
    (tmp_path / "y").mkdir()
    with pytest.raises(FileExistsError):
        build_index_dask(cat, out=tmp_path / "y", client=client, images=d, model=str(model_dir))
    with pytest.raises(ValueError, match="npartitions"):
        build_index_dask(cat, out=tmp_path / "z", client=client, npartitions=0, images=d, model=str(model_dir))
