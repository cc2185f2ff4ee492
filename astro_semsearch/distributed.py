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
  ``<shard>.partial/``). Kill the job, run the same call again;
* **mergeable** — at the end the shards become a
  `~astro_semsearch.shards.ShardedIndex` (``merge=False``, nothing is copied)
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

    from astro_semsearch.distributed import build_index_dask
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

import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack

from ._utils import atomic_write_bytes, read_catalog
from .index import MANIFEST_FILE, GalaxyIndex

__all__ = ["build_index_dask", "crossmatch_lsdb"]

log = logging.getLogger(__name__)

_WORK_FORMAT = 1
_EMPTY_MARKER = "EMPTY.json"


def _part_name(i: int) -> str:
    return f"part-{i:05d}"


def _finished(part: Path) -> bool:
    return (part / MANIFEST_FILE).is_file() or (part.parent / f"{part.name}.{_EMPTY_MARKER}").is_file()


def _build_partition(sub: Table, part: str, model_spec: str, build_kw: dict) -> dict:
    """One Dask task: build_index on one partition of the catalogue (idempotent)."""
    from .build import build_index
    from .model import load_model

    part_path = Path(part)
    empty = part_path.parent / f"{part_path.name}.{_EMPTY_MARKER}"
    if (part_path / MANIFEST_FILE).is_file():
        return {"part": part, "status": "done-before"}
    if empty.is_file():
        return {"part": part, "status": "empty"}
    model = load_model(model_spec)
    try:
        build_index(sub, out=part_path, model=model, progress=False, **build_kw)
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
    from .config import conf
    from .model import load_model

    if model is None:
        model = conf.default_model
    if isinstance(model, (str, os.PathLike)):
        spec = str(model)
        # An existing relative directory is made absolute: workers may run elsewhere.
        if Path(spec).is_dir():
            spec = str(Path(spec).resolve())
        return spec, load_model(spec)
    if not hasattr(model, "save") or not hasattr(model, "fingerprint"):
        raise TypeError(f"model must be a GalaxyModel, a model name or a model directory, got {type(model).__name__}")
    target = work / "model"
    cfg = target / "config.json"
    if not (cfg.is_file() and json.loads(cfg.read_text()).get("weights_sha256") == model.fingerprint):
        model.save(target, overwrite=True)
    return str(target.resolve()), model


def _catalog_digest(catalog: Table) -> str:
    from .build import _content_sha256

    cols = [c for c in catalog.colnames if getattr(catalog[c].dtype, "kind", "O") != "O"]
    return _content_sha256(catalog, cols)


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
        False: write a `~astro_semsearch.shards.ShardedIndex` (one shard per
        partition, nothing copied). True: write one `GalaxyIndex` with all
        rows in catalogue order, rebuilt with ``kind``.
    model : str, path or `GalaxyModel`, optional
        Default ``conf.default_model``. Workers load it by name/path.
    kind, name, survey
        Index kind and manifest fields (see `GalaxyIndex.build`).
    overwrite : bool
        Replace an existing ``out``.
    **build_kw
        Passed on to `build_index` (``images=``, ``file_column=``, ``size=``,
        ``source=``, ``keep_columns=``, ``chunk_size=``, ...). ``source`` must
        be picklable (a name, or a service object) on a real cluster.

    Returns
    -------
    `~astro_semsearch.shards.ShardedIndex` or `GalaxyIndex`
        Its manifest's ``"dask"`` entry holds the partition counts
        (``partitions``, ``partitions_resumed``, ``partitions_empty``).

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    ValueError
        The work directory belongs to another catalogue, model or partitioning.
    """
    from .shards import ShardedIndex

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True to replace it)")
    build_kw.pop("progress", None)  # workers never draw progress bars
    catalog, cat_path = read_catalog(catalog)
    n = len(catalog)
    if "images" in build_kw and build_kw["images"] is not None:
        if not Path(build_kw["images"]).is_dir():
            raise FileNotFoundError(f"image directory {build_kw['images']} does not exist")
        build_kw["images"] = str(Path(build_kw["images"]).resolve())  # workers may have another cwd

    own_client = None
    if client is None:
        from distributed import Client, LocalCluster, get_client

        try:
            client = get_client()
        except ValueError:
            own_client = client = Client(LocalCluster(processes=False, n_workers=1,
                                                      threads_per_worker=os.cpu_count() or 1))
    try:
        if npartitions is None:
            threads = sum(client.nthreads().values()) or 1
            npartitions = max(1, min(4 * threads, -(-n // 1000)))
        if isinstance(npartitions, bool) or not isinstance(npartitions, (int, np.integer)) or npartitions < 1:
            raise ValueError(f"npartitions must be a positive integer, got {npartitions!r}")
        npartitions = int(min(npartitions, n))

        work = out.parent / f"{out.name}.dask-work"
        work.mkdir(parents=True, exist_ok=True)
        spec, model_obj = _model_spec(model, work)
        expected = {
            "work_format": _WORK_FORMAT,
            "catalog_sha256": _catalog_digest(catalog),
            "catalog_rows": n,
            "npartitions": npartitions,
            "model_fingerprint": str(model_obj.fingerprint),
            "kind": kind,
            "build_kw": {k: (v if isinstance(v, (str, int, float, bool, type(None), list)) else repr(v))
                         for k, v in sorted(build_kw.items())},
        }
        wman = work / "dask-work.json"
        if wman.is_file():
            found = json.loads(wman.read_text(encoding="utf-8"))
            diffs = [k for k in expected if found.get(k) != expected[k]]
            if diffs:
                raise ValueError(f"the unfinished Dask build in {work} was made with a different {', '.join(diffs)}; "
                                 f"delete {work} to start again, or rerun with the same inputs")
        else:
            atomic_write_bytes(wman, (json.dumps(expected, indent=2) + "\n").encode())

        # Contiguous row ranges: concatenating the shards gives the catalogue order back.
        bounds = np.linspace(0, n, npartitions + 1).round().astype(int)
        part_kind = "flat" if merge else kind  # a merged build rebuilds the FAISS index anyway
        futures, resumed = [], 0
        for i in range(npartitions):
            part = work / _part_name(i)
            if _finished(part):
                resumed += 1
                continue
            kw = dict(build_kw, kind=part_kind, name=f"{name or out.name}/{_part_name(i)}", survey=survey)
            futures.append(client.submit(_build_partition, catalog[bounds[i]:bounds[i + 1]], str(part), spec, kw,
                                         key=f"astro-semsearch-{out.name}-{_part_name(i)}-{expected['catalog_sha256'][:8]}",
                                         pure=False, retries=1))
        results = client.gather(futures)
        address = getattr(getattr(client, "scheduler", None), "address", None)
        log.info("Dask build %s: %d partitions built, %d resumed", out, len(results), resumed)
    finally:
        if own_client is not None:
            cluster = own_client.cluster
            own_client.close()
            cluster.close()

    parts = [work / _part_name(i) for i in range(npartitions)]
    full = [p for p in parts if (p / MANIFEST_FILE).is_file()]
    n_empty = sum(1 for p in parts if not (p / MANIFEST_FILE).is_file())
    if not full:
        raise ValueError(f"none of the {n} catalogue rows could be indexed in any of the {npartitions} partitions "
                         f"(see {work})")
    info = {"partitions": npartitions, "partitions_resumed": resumed, "partitions_empty": n_empty,
            "scheduler": None if own_client is not None else address}

    if not merge:
        staging = work / "sharded"
        shutil.rmtree(staging, ignore_errors=True)
        sharded = ShardedIndex.create(staging, name=name or out.name, survey=survey, model=model_obj)
        for p in full:
            sharded.add_shard(p, move=True)
        sharded.manifest["dask"] = info
        sharded._write_manifest()
        if out.exists():
            shutil.rmtree(out)
        os.rename(staging, out)
        shutil.rmtree(work, ignore_errors=True)
        return ShardedIndex.load(out, verify=False)

    shards = [GalaxyIndex.load(p, verify=False) for p in full]
    builds = [s.manifest.get("build") or {} for s in shards]
    skipped_tables = [Table.read(p / "skipped.ecsv", format="ascii.ecsv") for p in full if (p / "skipped.ecsv").is_file()]
    skipped = vstack(skipped_tables) if skipped_tables else Table(names=["object_id", "ra", "dec", "reason"],
                                                                  dtype=[str, float, float, str])
    empties = [json.loads((work / f"{p.name}.{_EMPTY_MARKER}").read_text()) for p in parts
               if (work / f"{p.name}.{_EMPTY_MARKER}").is_file()]
    n_indexed = int(sum(s.ntotal for s in shards))
    build_info = {
        "catalog": cat_path.name if cat_path is not None else None,
        "catalog_sha256": expected["catalog_sha256"],
        "request": builds[0].get("request"),
        "n_input": n,
        "n_indexed": n_indexed,
        "n_skipped": int(n - n_indexed),
        "skipped": [{"object_id": str(r["object_id"]), "reason": str(r["reason"])} for r in skipped[:100]],
        "empty_partitions": [e["reason"] for e in empties][:10],
    }
    # Streamed from the memory-mapped partitions: the vectors are never all in RAM at once.
    index = GalaxyIndex.merge(shards, out, kind=kind, model=model_obj, name=name or out.name, survey=survey,
                              overwrite=overwrite, manifest_extra={"build": build_info, "dask": info})
    buf = io.StringIO()
    skipped.write(buf, format="ascii.ecsv")
    atomic_write_bytes(out / "skipped.ecsv", buf.getvalue().encode())
    shutil.rmtree(work, ignore_errors=True)
    return index


def crossmatch_lsdb(
    results: Table,
    hats_catalog,
    radius=None,
    *,
    join_type: str = "left",
    columns: list[str] | None = None,
    margin_cache: str | os.PathLike | None = None,
    catalog_name: str | None = None,
) -> Table:
    """Cross-match a result table with a HATS catalogue too large for memory (through lsdb).

    Only the HATS partitions (HEALPix pixels) that the results fall in are
    read, so a billion-row catalogue on disk or in an object store costs no
    more than the pixels your hits touch. The work runs on the current Dask
    client if there is one.

    Parameters
    ----------
    results : `~astropy.table.Table`
        A result table (``ra``/``dec`` in degrees), e.g. from `semantic_search`.
    hats_catalog : path, URL or `lsdb.Catalog`
        A HATS catalogue directory (``lsdb.open_catalog`` is used on paths).
    radius : `~astropy.units.Quantity` (angle)
        Maximum separation (default 1 arcsec).
    join_type : {"left", "inner"}
        Keep unmatched results (catalogue columns masked) or drop them.
    columns : list of str, optional
        Catalogue columns to read (default: all).
    margin_cache : path, optional
        The catalogue's HATS margin cache. Without one, a counterpart lying
        across a HEALPix partition boundary from its result can be missed
        (lsdb warns); with one, matches near boundaries are complete.
    catalog_name : str, optional
        Prefix for catalogue columns whose names clash with result columns
        (default: the catalogue's name).

    Returns
    -------
    `~astropy.table.Table`
        Like `astro_semsearch.crossmatch.crossmatch` with ``nearest=True``:
        the result columns in their order, the catalogue columns, then
        ``separation`` (arcsec, masked where there is no match).

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=1000)                        # doctest: +SKIP
    >>> matched = crossmatch_lsdb(hits, "hats/gaia_dr3", 1 * u.arcsec)      # doctest: +SKIP
    """
    import warnings as _w

    from astropy import units as u
    from astropy.table import MaskedColumn

    try:
        import lsdb
    except ImportError:  # pragma: no cover - optional dependency
        raise ImportError("crossmatch_lsdb needs the optional package lsdb (pip install lsdb)") from None

    radius = 1 * u.arcsec if radius is None else radius
    if not isinstance(results, Table):
        raise TypeError(f"results must be an astropy Table, got {type(results).__name__}")
    if not isinstance(radius, u.Quantity) or not radius.unit.is_equivalent(u.deg):
        raise TypeError(f"radius must be an angle Quantity, e.g. 2 * u.arcsec, got {radius!r}")
    if not radius.isscalar or not np.isfinite(radius.value) or radius.value <= 0:
        raise ValueError(f"radius must be one positive angle, got {radius}")
    if join_type not in ("left", "inner"):
        raise ValueError(f"join_type must be 'left' or 'inner', got {join_type!r}")
    for c in ("ra", "dec"):
        if c not in results.colnames:
            raise ValueError(f"results need ra and dec columns (degrees); they have {results.colnames}")

    if isinstance(hats_catalog, (str, os.PathLike)):
        opener = getattr(lsdb, "open_catalog", None) or lsdb.read_hats
        kw = {"columns": columns} if columns else {}
        if margin_cache is not None:
            kw["margin_cache"] = str(margin_cache)
        cat = opener(str(hats_catalog), **kw)
        default_name = Path(str(hats_catalog)).name
    else:
        cat = hats_catalog
        default_name = getattr(getattr(cat, "hc_structure", None), "catalog_name", None) or "catalog"
    prefix = catalog_name or default_name
    cat_cols = [c for c in cat.columns]

    n = len(results)
    ri = np.zeros(0, np.int64)
    matched_df = None
    if n:
        import pandas as pd

        ra = np.asarray(getattr(results["ra"], "value", results["ra"]), float)
        dec = np.asarray(getattr(results["dec"], "value", results["dec"]), float)
        left = lsdb.from_dataframe(pd.DataFrame({"_row": np.arange(n), "ra": ra, "dec": dec}),
                                   ra_column="ra", dec_column="dec", catalog_name="results",
                                   should_generate_moc=False, margin_threshold=None)
        with _w.catch_warnings():
            _w.simplefilter("ignore", FutureWarning)
            xm = left.crossmatch(cat, radius_arcsec=float(radius.to_value(u.arcsec)), n_neighbors=1,
                                 suffixes=("_left", "_right"), suffix_method="all_columns")
            matched_df = xm.compute()
        ri = matched_df["_row_left"].to_numpy().astype(np.int64)
        order = np.argsort(ri, kind="stable")
        matched_df = matched_df.iloc[order]
        ri = ri[order]

    matched = np.zeros(n, bool)
    matched[ri] = True
    if join_type == "left":
        rows = np.arange(n)
        pos = np.full(n, -1)
        pos[ri] = np.arange(len(ri))
    else:
        rows = ri
        pos = np.arange(len(ri))
    out = Table(results[rows] if len(rows) else results[:0], masked=False, copy=True)
    missing = pos < 0
    safe = np.where(missing, 0, pos)
    for name in cat_cols:
        new = f"{prefix}_{name}" if name in out.colnames or name == "separation" else name
        if matched_df is not None and len(matched_df):
            data = matched_df[f"{name}_right"].to_numpy()[safe]
        else:
            data = np.zeros(len(rows), dtype=float)
        if data.dtype.kind == "O":
            data = np.asarray([("" if v is None else str(v)) for v in data])
        out[new] = MaskedColumn(data, mask=missing.copy())
    sep = (matched_df["_dist_arcsec"].to_numpy()[safe] if matched_df is not None and len(matched_df)
           else np.zeros(len(rows)))
    out["separation"] = MaskedColumn(np.where(missing, 0.0, sep), mask=missing, unit=u.arcsec, format=".3f")
    out.meta = dict(results.meta)
    out.meta["crossmatch"] = {"catalog": prefix, "radius_arcsec": float(radius.to_value(u.arcsec)),
                              "nearest": True, "join_type": join_type, "n_matched": int(matched.sum()),
                              "engine": "lsdb"}
    return out
