"""Build indexes on a Dask cluster: partitions cut out and embedded in parallel, then merged.

`build_index_dask` splits your catalogue into row partitions and runs
`~astro_semsearch.build.build_index` on each one as a task on a
`dask.distributed` cluster. Every partition writes its own index directory
(a shard), so the work is:

* **parallel** — as many partitions at a time as the cluster has worker
  threads (cutout downloads and the model's forward passes both release the
  GIL);
* **resumable** — a finished partition is never redone, and an interrupted
  one resumes from its own finished chunks (``build_index`` keeps them in
  ``<shard>.partial/``). Kill the job, run the same call again. A partition
  that finished with rows skipped for network reasons keeps its chunks too,
  and so does the work directory: the same call with ``overwrite=True``
  fetches those rows again (and only those);
* **mergeable** — at the end the shards become a
  `~astro_semsearch.index.ShardedIndex` (``merge=False``, nothing is copied)
  or one `~astro_semsearch.index.GalaxyIndex` (``merge=True``), identical in
  content to what a single-process ``build_index`` makes: same object ids in
  the same order, same vectors, same catalogue.

The same code runs on a laptop and on a cluster: only the scheduler address
changes. On a laptop::

    from dask.distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))

on a cluster (scheduler started with ``dask scheduler``, workers with
``dask worker tcp://scheduler:8786`` on each node, or through dask-jobqueue
/ dask-kubernetes)::

    client = Client("tcp://scheduler:8786")

then, in both cases::

    from astro_semsearch.build import build_index_dask
    index = build_index_dask("catalog.fits", out="/shared/indexes/dr10", client=client,
                             npartitions=400, model="/shared/models/galclip-v1")

On a cluster, ``out`` (and ``images=`` if you read local files) must be on a
filesystem every worker can see, and the model is given by name or directory
path so that each worker loads it itself (model objects are not shipped
around; if you pass one it is saved once into the work directory).

Examples
--------
>>> from dask.distributed import Client, LocalCluster                 # doctest: +SKIP
>>> with Client(LocalCluster(processes=False, n_workers=2)) as client:  # doctest: +SKIP
...     index = build_index_dask(cat, out="idx", client=client, npartitions=4,
...                              images="cutouts/", merge=True)
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack

from .._io import atomic_write_bytes
from .._validate import check_choice, check_int
from ..catalog import content_sha256, read_catalog
from ..exceptions import InvalidInputError, InvalidTypeError
from ..index import GalaxyIndex, ShardedIndex
from ..index.storage import MANIFEST_FILE
from .partitions import brick_bounds, brick_order
from .single import build_index
from .sizes import size_column_of, warn_unknown_framing
from .work import locked_output

__all__ = ["build_index_dask"]

log = logging.getLogger(__name__)

_WORK_FORMAT = 1
_EMPTY_MARKER = "EMPTY.json"


def _part_name(i: int) -> str:
    return f"part-{i:05d}"


def _pending(part: Path) -> Path:
    """The partition's ``build_index`` work directory: still there when rows wait to be fetched again."""
    return part.parent / f"{part.name}.partial"


def _finished(part: Path) -> bool:
    built = (part / MANIFEST_FILE).is_file() and not _pending(part).is_dir()
    return built or (part.parent / f"{part.name}.{_EMPTY_MARKER}").is_file()


def _build_partition(sub: Table, part: str, model_spec: str, build_kw: dict) -> dict:
    """One Dask task: build_index on one partition of the catalogue (idempotent)."""
    from ..model import load_model

    part_path = Path(part)
    empty = part_path.parent / f"{part_path.name}.{_EMPTY_MARKER}"
    again = _pending(part_path).is_dir()  # built, with rows skipped for network reasons to fetch again
    if (part_path / MANIFEST_FILE).is_file() and not again:
        return {"part": part, "status": "done-before"}
    if empty.is_file():
        return {"part": part, "status": "empty"}
    model = load_model(model_spec)
    try:
        build_index(sub, out=part_path, model=model, progress=False, **dict(build_kw, overwrite=again))
    except ValueError as exc:
        # A partition where no row could be indexed (all outside the footprint,
        # all files unreadable) is not an error for the whole catalogue.
        if "could be indexed" not in str(exc):
            raise
        atomic_write_bytes(empty, json.dumps({"n_input": len(sub), "reason": str(exc)}).encode())
        shutil.rmtree(part_path.parent / f"{part_path.name}.partial", ignore_errors=True)
        return {"part": part, "status": "empty"}
    return {"part": part, "status": "built"}


def _model_spec(model, work: Path) -> tuple[str, Any]:
    """(name or directory the workers load, the model object here)."""
    from ..config import conf
    from ..model import load_model

    if model is None:
        model = conf.default_model
    if isinstance(model, (str, os.PathLike)):
        spec = str(model)
        # An existing relative directory is made absolute: workers may run elsewhere.
        if Path(spec).is_dir():
            spec = str(Path(spec).resolve())
        return spec, load_model(spec)
    if not hasattr(model, "save") or not hasattr(model, "fingerprint"):
        raise InvalidTypeError(f"model must be a GalaxyModel, a model name or a model directory, got {type(model).__name__}")
    target = work / "model"
    cfg = target / "config.json"
    if not (cfg.is_file() and json.loads(cfg.read_text()).get("weights_sha256") == getattr(model, "weights_sha256", model.fingerprint)):
        model.save(target, overwrite=True)
    return str(target.resolve()), model


def _catalog_digest(catalog: Table) -> str:
    cols = [c for c in catalog.colnames if getattr(catalog[c].dtype, "kind", "O") != "O"]
    return content_sha256(catalog, cols)


@locked_output
def build_index_dask(
    catalog,
    *,
    out: str | os.PathLike,
    client=None,
    npartitions: int | None = None,
    merge: bool = False,
    model=None,
    kind: str = "auto",
    name: str | None = None,
    survey: str | None = None,
    overwrite: bool = False,
    partition_by: str | None = None,
    **build_kw: Any,
):
    """Build an index on a Dask cluster, one `build_index` per catalogue partition.

    Parameters
    ----------
    catalog : `~astropy.table.Table` or path
        As for `~astro_semsearch.build.build_index`.
    out : path
        The index directory to write.
    client : `dask.distributed.Client`, optional
        Default: the current client (``distributed.get_client()``), or a
        temporary in-process `~dask.distributed.LocalCluster` if there is none.
    npartitions : int, optional
        Number of row partitions (default: 4 per worker thread, at most one
        per 1,000 rows). Each partition is one task and one shard.
    merge : bool
        False: write a `~astro_semsearch.index.ShardedIndex` (one shard per
        partition, nothing copied). True: write one `GalaxyIndex` with all
        rows in catalogue order, rebuilt with ``kind``.
    model : str, path or `GalaxyModel`, optional
        Default ``conf.default_model``. Workers load it by name/path.
    kind, name, survey
        Index kind and manifest fields (see `GalaxyIndex.build`).
    overwrite : bool
        Replace an existing ``out``.
    partition_by : {None, "brick"}
        None: partitions are equal runs of catalogue rows. ``"brick"``: the
        rows are sorted (stably) by survey brick (a ``brickname`` column, else
        the brick of each position, from ``source``'s bricks table when it is a
        `~astro_semsearch.cutouts.LegacySurveyBricks`) and partitions are cut
        at brick boundaries, so each brick's files are read by one task. The
        index then lists the galaxies brick by brick.
    **build_kw
        Passed on to `build_index` (``images=``, ``file_column=``, ``size=``,
        ``source=``, ``keep_columns=``, ``chunk_size=``, ``retry_skipped=``,
        ...). ``source`` must be picklable (a name, or a service object) on a
        real cluster.

    Returns
    -------
    `~astro_semsearch.index.ShardedIndex` or `GalaxyIndex`
        Its manifest's ``"dask"`` entry holds the partition counts
        (``partitions``, ``partitions_resumed``, ``partitions_empty``).

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    ValueError
        The work directory belongs to another catalogue, model or partitioning.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True, --overwrite on the command line, to replace it)")
    build_kw.pop("progress", None)  # workers never draw progress bars
    catalog, cat_path = read_catalog(catalog)
    id_col = build_kw.get("id_column", "object_id")
    ids = np.asarray(catalog[id_col]).astype(str) if id_col in catalog.colnames else None  # skipped rows' numbers
    n = len(catalog)
    if build_kw.get("images") is None and build_kw.get("size_column") is None and size_column_of(catalog, None) is None:
        # One warning for the whole build, here, rather than one per partition on the workers.
        warn_unknown_framing(build_kw.get("size", 256), build_kw.get("pixscale", 0.262))
        build_kw["size_column"] = False
    bricks = None
    if partition_by is not None:
        check_choice(partition_by, "partition_by", ("brick",))
        catalog, bricks = brick_order(catalog, build_kw.get("source"), build_kw.get("ra_column"),
                                      build_kw.get("dec_column"))
    if build_kw.get("images") is not None:
        if not Path(build_kw["images"]).is_dir():
            raise FileNotFoundError(f"image directory {build_kw['images']} does not exist")
        build_kw["images"] = str(Path(build_kw["images"]).resolve())  # workers may have another cwd
    work = out.parent / f"{out.name}.dask-work"
    with _client(client) as (client, own):
        if npartitions is None:
            threads = sum(client.nthreads().values()) or 1
            npartitions = max(1, min(4 * threads, -(-n // 1000)))
        npartitions = int(min(check_int(npartitions, "npartitions"), n))
        bounds = np.linspace(0, n, npartitions + 1).round().astype(int) if bricks is None else \
            brick_bounds(bricks, npartitions)
        npartitions = len(bounds) - 1
        work.mkdir(parents=True, exist_ok=True)
        spec, model_obj = _model_spec(model, work)
        expected = {
            "work_format": _WORK_FORMAT,
            "catalog_sha256": _catalog_digest(catalog),
            "catalog_rows": n,
            "npartitions": npartitions,
            "model_fingerprint": str(model_obj.fingerprint),
            "kind": kind,
            "partition_by": partition_by,
            "build_kw": {k: (v if isinstance(v, (str, int, float, bool, type(None), list)) else repr(v))
                         for k, v in sorted(build_kw.items()) if k != "retry_skipped"},  # a way to resume
        }
        _check_work_manifest(work, expected)
        part_kind = "flat" if merge else kind  # a merged build rebuilds the FAISS index anyway
        resumed = _run_partitions(client, catalog, work, bounds, spec, expected["catalog_sha256"][:8],
                                  dict(build_kw, kind=part_kind, survey=survey), name or out.name, out.name)
        address = None if own else getattr(getattr(client, "scheduler", None), "address", None)
    parts = [work / _part_name(i) for i in range(npartitions)]
    full = [p for p in parts if (p / MANIFEST_FILE).is_file()]
    if not full:
        raise InvalidInputError(f"none of the {n} catalogue rows could be indexed in any of the {npartitions} "
                                f"partitions (see {work})")
    info = {"partitions": npartitions, "partitions_resumed": resumed,
            "partitions_empty": sum(1 for p in parts if not (p / MANIFEST_FILE).is_file()), "scheduler": address}
    for p in full:
        _catalogue_rows(p / "skipped.ecsv", ids)
    keep = [p for p in full if _pending(p).is_dir()]
    if keep:
        log.warning("%d partition(s) of %s skipped rows for network reasons; %s is kept: run the same call with "
                    "overwrite=True to fetch them again", len(keep), out, work)
    if not merge:
        return _as_sharded(full, work, out, name=name or out.name, survey=survey, model=model_obj, info=info,
                           keep=bool(keep))
    return _as_merged(full, parts, work, out, catalog_name=cat_path.name if cat_path is not None else None,
                      n=n, digest=expected["catalog_sha256"], kind=kind, model=model_obj, name=name or out.name,
                      survey=survey, overwrite=overwrite, info=info, keep=bool(keep))


def _catalogue_rows(path: Path, ids: np.ndarray | None) -> None:
    """Rewrite a partition's ``skipped.ecsv`` so that its ``row`` column counts rows of the whole catalogue."""
    if ids is None or not path.is_file():
        return
    skipped = Table.read(path, format="ascii.ecsv")
    if not len(skipped):
        return
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids, np.asarray(skipped["object_id"]).astype(str), sorter=order)
    skipped["row"] = order[np.clip(pos, 0, len(ids) - 1)]
    buf = io.StringIO()
    skipped.write(buf, format="ascii.ecsv")
    atomic_write_bytes(path, buf.getvalue().encode())


@contextlib.contextmanager
def _client(client):
    """``(client, owned)``: the given client, the current one, or a temporary in-process LocalCluster."""
    if client is not None:
        yield client, False
        return
    from distributed import Client, LocalCluster, get_client

    try:
        yield get_client(), False
        return
    except ValueError:
        pass
    own = Client(LocalCluster(processes=False, n_workers=1, threads_per_worker=os.cpu_count() or 1))
    try:
        yield own, True
    finally:
        cluster = own.cluster
        own.close()
        cluster.close()


def _check_work_manifest(work: Path, expected: dict) -> None:
    """Refuse a work directory of another catalogue, model or partitioning; start one otherwise."""
    wman = work / "dask-work.json"
    if wman.is_file():
        found = json.loads(wman.read_text(encoding="utf-8"))
        diffs = [k for k in expected if found.get(k) != expected[k]]
        if diffs:
            raise InvalidInputError(f"the unfinished Dask build in {work} was made with a different "
                                    f"{', '.join(diffs)}; delete {work} to start again, or rerun with the same "
                                    "inputs")
    else:
        atomic_write_bytes(wman, (json.dumps(expected, indent=2) + "\n").encode())


def _run_partitions(client, catalog: Table, work: Path, bounds: np.ndarray, spec: str, digest: str, kw: dict,
                    name: str, key_name: str) -> int:
    """Submit one task per unfinished partition (contiguous row ranges) and wait; return the number resumed."""
    futures, resumed = [], 0
    for i in range(len(bounds) - 1):
        part = work / _part_name(i)
        if _finished(part):
            resumed += 1
            continue
        futures.append(client.submit(_build_partition, catalog[bounds[i]:bounds[i + 1]], str(part), spec,
                                     dict(kw, name=f"{name}/{_part_name(i)}"),
                                     key=f"astro-semsearch-{key_name}-{_part_name(i)}-{digest}", pure=False,
                                     retries=1))
    results = client.gather(futures)
    log.info("Dask build %s: %d partitions built, %d resumed", work, len(results), resumed)
    return resumed


def _as_sharded(full: list[Path], work: Path, out: Path, *, name, survey, model, info, keep) -> ShardedIndex:
    """The finished partitions moved (copied when ``keep``: the work is kept) into a sharded index at ``out``."""
    staging = work / "sharded"
    shutil.rmtree(staging, ignore_errors=True)
    sharded = ShardedIndex.create(staging, name=name, survey=survey, model=model)
    for p in full:
        sharded.add_shard(p, move=not keep)
    sharded.manifest["dask"] = info
    sharded.write_manifest()
    if out.exists():
        shutil.rmtree(out)
    os.rename(staging, out)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return ShardedIndex.load(out, verify=False)


def _as_merged(full: list[Path], parts: list[Path], work: Path, out: Path, *, catalog_name, n, digest, kind, model,
               name, survey, overwrite, info, keep) -> GalaxyIndex:
    """The finished partitions merged into one index at ``out`` (vectors streamed, never all in RAM)."""
    shards = [GalaxyIndex.load(p, verify=False) for p in full]
    builds = [s.manifest.get("build") or {} for s in shards]
    skipped_tables = [Table.read(p / "skipped.ecsv", format="ascii.ecsv") for p in full
                      if (p / "skipped.ecsv").is_file()]
    skipped = vstack(skipped_tables) if skipped_tables else Table(
        names=["row", "object_id", "ra", "dec", "reason", "kind"], dtype=[int, str, float, float, str, str])
    if len(skipped):
        skipped = skipped[np.argsort(skipped["row"], kind="stable")]
    empties = [json.loads((work / f"{p.name}.{_EMPTY_MARKER}").read_text()) for p in parts
               if (work / f"{p.name}.{_EMPTY_MARKER}").is_file()]
    n_indexed = int(sum(s.ntotal for s in shards))
    build_info = {
        "catalog": catalog_name, "catalog_sha256": digest, "request": builds[0].get("request"), "n_input": n,
        "n_indexed": n_indexed, "n_skipped": int(n - n_indexed),
        "n_skipped_network": int(sum(int(b.get("n_skipped_network", 0)) for b in builds)),
        "skipped": [{"row": int(r["row"]), "object_id": str(r["object_id"]), "reason": str(r["reason"]),
                     "kind": str(r["kind"])} for r in skipped[:100]],
        "empty_partitions": [e["reason"] for e in empties][:10],
    }
    index = GalaxyIndex.merge(shards, out, kind=kind, model=model, name=name, survey=survey, overwrite=overwrite,
                          manifest_extra={"build": build_info, "dask": info})
    buf = io.StringIO()
    skipped.write(buf, format="ascii.ecsv")
    atomic_write_bytes(out / "skipped.ecsv", buf.getvalue().encode())
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return index
