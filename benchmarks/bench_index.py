"""Benchmark the GalaxyIndex kinds on synthetic clustered unit vectors.

For each index kind and size: build time, bytes per vector (resident = the
FAISS structure in RAM; on disk = all files written by ``save``), p50/p99
latency of a single query and per query in a batch, and recall@10/@100
against exact search. Prints a Markdown table; ``--out FILE`` also writes it.

    python benchmarks/bench_index.py                 # n = 1e5, dim 128
    python benchmarks/bench_index.py --n 100000 1000000 --out docs/benchmarks/index.md

Not a test: it takes minutes at 1e6 and needs a few GB of RAM at 1e7.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table


def clustered_unit_vectors(n: int, dim: int, seed: int, n_clusters: int = 1000, spread: float = 0.8,
                           centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors scattered around random cluster centres (like galaxy embeddings)."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 200_000):  # in blocks: bounded temporary memory
        m = min(200_000, n - s)
        v = centres[rng.integers(0, len(centres), m)] + spread / np.sqrt(dim) * rng.normal(size=(m, dim)).astype(np.float32)
        out[s:s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out, centres


def catalogue(n: int, seed: int) -> Table:
    rng = np.random.default_rng(seed)
    return Table({"object_id": np.char.add("G", np.arange(n).astype(str)),
                  "ra": rng.uniform(0, 360, n), "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n)))})


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(np.intersect1d(f[:k], t[:k])) / k for f, t in zip(found, truth)]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[100_000], help="index sizes (default 1e5)")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq-norefine", "ivfpq"],
                   help="flat, hnsw, ivfpq, ivfpq-norefine (refine_factor=1), or FAISS factory strings")
    p.add_argument("--queries", type=int, default=500, help="queries for recall and batched latency")
    p.add_argument("--single", type=int, default=200, help="single queries timed one by one")
    p.add_argument("--threads", type=int, default=None, help="FAISS/BLAS threads (default: all cores)")
    p.add_argument("--out", default=None, help="also write the Markdown table to this file")
    p.add_argument("--e2e", action="store_true",
                   help="also time semantic_search end to end (text encoding / search / table) with the "
                        "shipped model over a synthetic index of each size and kind")
    args = p.parse_args(argv)

    import faiss

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from astro_semsearch.index import GalaxyIndex

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{faiss.omp_get_max_threads()} FAISS threads, Python {platform.python_version()}, FAISS {faiss.__version__}, "
        f"dim {args.dim}, synthetic clustered unit vectors, {time.strftime('%Y-%m-%d')}",
        "",
        "| n | kind | factory | build s | B/vec RAM | B/vec disk | single p50 ms | single p99 ms "
        "| batch ms/query | recall@10 | recall@100 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for n in args.n:
        data, centres = clustered_unit_vectors(n, args.dim, seed=0)
        queries, _ = clustered_unit_vectors(args.queries, args.dim, seed=1, centres=centres)
        table = catalogue(n, seed=0)
        truth = None
        for kind in args.kinds:
            knobs = {}
            real_kind = kind
            if kind == "ivfpq-norefine":
                real_kind, knobs = "ivfpq", {"refine_factor": 1}
            t0 = time.perf_counter()
            index = GalaxyIndex.build(data, table, kind=real_kind, name=f"bench-{n}", **knobs)
            build_s = time.perf_counter() - t0
            ram = len(faiss.serialize_index(index._index)) / n
            with tempfile.TemporaryDirectory() as tmp:
                saved = index.save(Path(tmp) / "idx")
                disk = sum(f.stat().st_size for f in saved.iterdir()) / n
                index = GalaxyIndex.load(saved, verify=False)  # vectors memory-mapped, as in use
                index.search(queries[:5], 100)  # warm up
                lat = []
                for q in queries[: args.single]:
                    t0 = time.perf_counter()
                    index.search(q, 100)
                    lat.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                _, rows = index.search(queries, 100)
                batch_ms = (time.perf_counter() - t0) * 1e3 / len(queries)
                del index
            if truth is None:
                if kind == "flat":
                    truth = rows
                else:
                    truth = np.argsort(-(queries @ data.T), axis=1)[:, :100]
            line = (f"| {n:.0e} | {kind} | {_factory(real_kind, knobs, n, args.dim)} | {build_s:.1f} | {ram:.0f} | {disk:.0f} "
                    f"| {np.percentile(lat, 50):.2f} | {np.percentile(lat, 99):.2f} | {batch_ms:.3f} "
                    f"| {recall_at(rows, truth, 10):.3f} | {recall_at(rows, truth, 100):.3f} |")
            lines.append(line)
            print(line, flush=True)
    if args.e2e:
        lines += ["", *end_to_end(args)]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


def end_to_end(args) -> list[str]:
    """p50 of each stage of semantic_search (warm), on synthetic indexes of the model's dimension."""
    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.model import load_model
    from astro_semsearch.search.engine import ranked, result_table
    from astro_semsearch.search.query import query_vector

    model = load_model()
    texts = ["ring galaxy", "barred spiral", "edge-on disk with a dust lane", "merging galaxies with tidal tails",
             "smooth round elliptical", "blue arcs around a red galaxy"]
    out = ["| n | kind | text encoding p50 ms | search p50 ms | table p50 ms | total p50 ms |",
           "|---|---|---|---|---|---|"]
    print("\n".join(out), flush=True)
    for n in args.n:
        data, _ = clustered_unit_vectors(n, model.dim, seed=0)
        table = catalogue(n, seed=0)
        for kind in [k for k in args.kinds if k in ("flat", "hnsw", "ivfpq")]:
            index = GalaxyIndex.build(data, table, kind=kind, model=model, name="e2e")
            stages = []
            for i in range(40):
                t0 = time.perf_counter()
                q = query_vector(model, [texts[i % len(texts)]])
                t1 = time.perf_counter()
                scores, rows = ranked(index, q, 50, min_sep=None)
                t2 = time.perf_counter()
                result_table(index, scores, rows, {"query": texts[i % len(texts)]})
                t3 = time.perf_counter()
                if i >= 5:  # warm
                    stages.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
            p50 = np.percentile(np.array(stages) * 1e3, 50, axis=0)
            line = f"| {n:.0e} | {kind} | {p50[0]:.2f} | {p50[1]:.2f} | {p50[2]:.2f} | {p50[3]:.2f} |"
            out.append(line)
            print(line, flush=True)
    return out


def _factory(kind: str, knobs: dict, n: int, dim: int) -> str:
    from astro_semsearch.index.kinds import resolve_kind

    kind, factory, full = resolve_kind(kind, n, dim, dict(knobs))
    refine = full.get("refine_factor", 1)
    return factory + (f" + refine x{refine}" if refine and refine > 1 else "")


if __name__ == "__main__":
    sys.exit(main())
