"""Scaling benchmark of the GalaxyIndex kinds: 1e5 -> 1e6 -> 1e7 synthetic galaxies.

For each size and index kind (``flat``, ``hnsw``, ``ivfpq`` = IVF-PQ + exact
refinement, ``auto``) this measures

* build time (FAISS training + adding, from vectors already in memory),
* bytes per vector resident in RAM (the serialized FAISS structure: for
  ``ivfpq`` the PQ codes, ids and centroids; the full-precision vectors are
  memory-mapped from disk and only the few re-scored rows are read),
* bytes per vector on disk (every file of the saved index directory),
* p50/p99 latency of one query at a time, and per query in a batch,
* recall@10 and recall@100 against exact search (``faiss.knn`` on the raw
  vectors, for a subset of queries),

and, with ``--sweep``, the recall/latency of other ``nprobe`` and
``refine_factor`` values on the same built IVF-PQ index (no rebuild).

The data are those of ``bench_index.py`` (helper functions imported from it):
unit vectors scattered around 1000 random centres (a Gaussian mixture on the
sphere, like clustered galaxy embeddings). Queries come from the same mixture
but are not in the index.

Examples
--------
::

    python benchmarks/bench_scale.py --n 100000                       # ~1 minute
    python benchmarks/bench_scale.py --n 1000000 --kinds flat ivfpq hnsw --sweep
    python benchmarks/bench_scale.py --n 10000000 --kinds ivfpq       # ~5 GB of vectors
    python benchmarks/bench_scale.py --n 100000 --json results.json   # machine-readable

Not a test: minutes at 1e6, longer at 1e7. ``auto`` is not rebuilt when it
resolves to a kind already measured at that size (its row says which).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_index import catalogue, clustered_unit_vectors, recall_at  # noqa: E402


def machine() -> str:
    """One line: CPU model, cores, RAM, library versions, date."""
    import faiss

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        ram = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{ram}, {faiss.omp_get_max_threads()} FAISS threads, "
            f"Python {platform.python_version()}, NumPy {np.__version__}, FAISS {faiss.__version__}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def exact_truth(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k rows by inner product (blocked inside FAISS: no n x q matrix in RAM)."""
    import faiss

    _, rows = faiss.knn(queries, data, k, metric=faiss.METRIC_INNER_PRODUCT)
    return rows


def measure(index, queries: np.ndarray, truth: np.ndarray, n_single: int, k: int = 100) -> dict:
    """Latency (single and batched) and recall of a built/loaded index."""
    index.search(queries[:5], k)  # warm-up (page in the mmap, allocate)
    lat = []
    for q in queries[:n_single]:
        t0 = time.perf_counter()
        index.search(q, k)
        lat.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    _, rows = index.search(queries, k)
    batch_ms = (time.perf_counter() - t0) * 1e3 / len(queries)
    return {"single_p50_ms": float(np.percentile(lat, 50)), "single_p99_ms": float(np.percentile(lat, 99)),
            "batch_ms_per_query": batch_ms, "recall@10": recall_at(rows, truth, 10),
            "recall@100": recall_at(rows, truth, 100)}


_RSS_PROBE = r"""
import json, sys, numpy as np
def rss():
    out = {}
    for line in open("/proc/self/status"):
        if line.startswith(("RssAnon", "RssFile")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) * 1024
    return out
from astro_semsearch.index import GalaxyIndex, load_index
# Baseline after every module is imported and initialised (load and search the tiny shipped index).
tiny = load_index()
tiny.catalog(tiny.search(tiny.vectors([0]), 10)[1][0])
del tiny
base = rss()
index = GalaxyIndex.load(sys.argv[1], verify=False)
queries = np.load(sys.argv[2])
for q in queries:  # as semantic_search does: search, then read the hits' catalogue rows
    scores, rows = index.search(q, 100)
    index.catalog(rows[0])
after = rss()
print(json.dumps({"anon": after["RssAnon"] - base["RssAnon"], "file": after["RssFile"] - base["RssFile"]}))
"""


def resident(target: Path, queries: np.ndarray, n: int) -> dict:
    """Resident memory per galaxy of a loaded index, measured in a fresh process.

    ``anon``: private memory (FAISS structure, Python objects) that cannot be
    dropped; ``file``: memory-mapped pages (vectors read by the refinement,
    catalogue rows) that the kernel keeps as page cache and may evict.
    """
    import subprocess

    qfile = target.parent / f"{target.name}-queries.npy"
    np.save(qfile, queries)
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(target), str(qfile)], capture_output=True,
                         text=True, env=env, check=True)
    qfile.unlink()
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rss_anon_b_per_vec": d["anon"] / n, "rss_file_b_per_vec": d["file"] / n}


def row(r: dict) -> str:
    return (f"| {r['n']:.0e} | {r['kind']} | {r['factory']} | {r['build_s']:.1f} | {r['ram_b_per_vec']:.0f} "
            f"| {r['disk_b_per_vec']:.0f} | {r['single_p50_ms']:.2f} | {r['single_p99_ms']:.2f} "
            f"| {r['batch_ms_per_query']:.3f} | {r['recall@10']:.3f} | {r['recall@100']:.3f} |")


HEADER = ("| n | kind | FAISS index | build s | B/vec RAM | B/vec disk | single p50 ms | single p99 ms "
          "| batch ms/query | recall@10 | recall@100 |\n|---|---|---|---|---|---|---|---|---|---|---|")


def parse_kind(spec: str) -> tuple[str, dict]:
    """``"ivfpq:nprobe=64,m=64"`` -> ("ivfpq", {"nprobe": 64, "m": 64})."""
    kind, _, rest = spec.partition(":")
    knobs = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        knobs[key] = int(value)
    return kind, knobs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=float, nargs="+", default=[1e5], help="index sizes (default 1e5)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq", "auto"],
                   help="flat, hnsw, ivfpq, auto, or KIND:knob=value,... (e.g. ivfpq:nprobe=64)")
    p.add_argument("--queries", type=int, default=1000, help="queries for recall and batched latency")
    p.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    p.add_argument("--sweep", action="store_true", help="also sweep nprobe x refine_factor on the IVF-PQ index")
    p.add_argument("--sweep-nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    p.add_argument("--sweep-refine", type=int, nargs="+", default=[1, 5, 10, 20])
    p.add_argument("--shards", type=int, default=0,
                   help="also measure a ShardedIndex of this many row-range shards (exact shards)")
    p.add_argument("--workdir", default=None, help="where indexes are saved (default: a temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the saved indexes in --workdir")
    p.add_argument("--json", default=None, help="append results (JSON lines) to this file")
    p.add_argument("--real", default=None,
                   help="an .npz from real_embeddings.py: benchmark on real model embeddings instead of synthetic")
    p.add_argument("--rss", action="store_true",
                   help="also measure resident memory of the loaded index in a fresh process (RssAnon/RssFile)")
    p.add_argument("--threads", type=int, default=None, help="FAISS threads (default: all cores)")
    args = p.parse_args(argv)

    import faiss

    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.index.kinds import resolve_kind

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    print(f"Machine: {machine()}", flush=True)
    if not args.real:
        print(f"Data: dim {args.dim}, clustered unit vectors (1000 centres, spread 0.8), {args.queries} held-out "
              f"queries, k=100\n", flush=True)
    print(HEADER, flush=True)
    workroot = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
    workroot.mkdir(parents=True, exist_ok=True)
    results = []
    sizes = [int(x) for x in args.n]
    if args.real:
        real = np.load(args.real)
        sizes = [len(real["data"])]
        args.dim = real["data"].shape[1]
        print(f"<!-- real embeddings from {Path(args.real).name}: model {real['model']} "
              f"({str(real['fingerprint'])[:12]}), {len(real['data'])} indexed, {len(real['queries'])} image "
              f"queries + {len(real['text_queries'])} text queries -->", flush=True)
    for n in sizes:
        t0 = time.perf_counter()
        if args.real:
            data = np.ascontiguousarray(real["data"])
            queries = np.ascontiguousarray(np.concatenate([real["queries"], real["text_queries"]]))
        else:
            data, centres = clustered_unit_vectors(n, args.dim, seed=0)
            queries, _ = clustered_unit_vectors(args.queries, args.dim, seed=1, centres=centres)
        table = catalogue(n, seed=0)
        truth = exact_truth(data, queries, 100)
        print(f"<!-- n={n}: data + exact truth in {time.perf_counter() - t0:.1f} s -->", flush=True)
        done: dict[tuple, dict] = {}
        for spec in args.kinds:
            kind, knobs = parse_kind(spec)
            real_kind, factory, full = resolve_kind(kind, n, args.dim, dict(knobs))
            key = (real_kind, factory, json.dumps(full, sort_keys=True))
            refine = full.get("refine_factor", 1) or 1
            label = factory + (f" + refine x{refine}" if refine > 1 else "")
            if kind == "auto" and key in done:
                r = dict(done[key], kind=f"auto (= {done[key]['kind']})")
                results.append(r)
                print(row(r), flush=True)
                continue
            t0 = time.perf_counter()
            index = GalaxyIndex.build(data, table, kind=kind, name=f"bench-{n}", **knobs)
            build_s = time.perf_counter() - t0
            if real_kind == "flat":  # the vectors themselves (serializing a copy would double the RAM used)
                ram = 4.0 * args.dim
            else:
                ram = len(faiss.serialize_index(index._index)) / n
            target = workroot / f"{n}-{spec.replace(':', '_').replace(',', '_').replace('=', '')}"
            shutil.rmtree(target, ignore_errors=True)
            index.save(target)
            disk = sum(f.stat().st_size for f in target.iterdir()) / n
            del index
            index = GalaxyIndex.load(target, verify=False)  # as in use: vectors memory-mapped
            r = {"n": n, "dim": args.dim, "kind": spec, "factory": label, "build_s": build_s,
                 "ram_b_per_vec": ram, "disk_b_per_vec": disk, "knobs": full}
            r.update(measure(index, queries, truth, args.single))
            if args.rss:
                r.update(resident(target, queries[: args.single], n))
                print(f"<!-- {spec}: measured resident {r['rss_anon_b_per_vec']:.1f} B/vec private + "
                      f"{r['rss_file_b_per_vec']:.1f} B/vec memory-mapped (page cache) after "
                      f"{args.single} queries -->", flush=True)
            results.append(r)
            done[key] = r
            print(row(r), flush=True)
            if args.sweep and real_kind == "ivfpq":
                for nprobe, refine_f in itertools.product(args.sweep_nprobe, args.sweep_refine):
                    index.set_knobs(nprobe=nprobe, refine_factor=refine_f)
                    s = dict(r, kind=f"{kind} sweep", factory=f"{factory}, nprobe {nprobe}, refine x{refine_f}")
                    s.update(measure(index, queries, truth, min(args.single, 50)))
                    s["knobs"] = dict(full, nprobe=nprobe, refine_factor=refine_f)
                    results.append(s)
                    print(row(s), flush=True)
            del index
            if not args.keep:
                shutil.rmtree(target, ignore_errors=True)
        if args.shards:
            from astro_semsearch.index import ShardedIndex

            target = workroot / f"{n}-sharded{args.shards}"
            shutil.rmtree(target, ignore_errors=True)
            t0 = time.perf_counter()
            ShardedIndex.build(data, table, target, shard_size=-(-n // args.shards), kind="flat")
            build_s = time.perf_counter() - t0
            sharded = ShardedIndex.load(target, verify=False)
            disk = sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / n
            ram = sum(len(faiss.serialize_index(s._index)) for s in sharded.shards) / n
            r = {"n": n, "dim": args.dim, "kind": f"sharded x{args.shards}", "factory": "Flat shards, thread pool",
                 "build_s": build_s, "ram_b_per_vec": ram, "disk_b_per_vec": disk, "knobs": {}}
            r.update(measure(sharded, queries, truth, args.single))
            results.append(r)
            print(row(r), flush=True)
            del sharded
            if not args.keep:
                shutil.rmtree(target, ignore_errors=True)
        del data, table
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            for r in results:
                f.write(json.dumps(dict(r, machine=machine())) + "\n")
    if not args.keep and not args.workdir:
        shutil.rmtree(workroot, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
