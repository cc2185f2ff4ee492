"""End-to-end `semantic_search` latency, split into text encoding, search and Table building.

Uses the model shipped with the package (``conf.default_model``) to encode the
text, and a synthetic index of ``n`` clustered unit vectors of the model's
dimension with a synthetic catalogue (``object_id``, ``ra``, ``dec``, ``mag``),
built with ``kind="auto"`` (exact below 1M, IVF-PQ + refinement from 1M).
Times are warm (model and index loaded, one warm-up query) medians (p50) and
p99 over ``--repeat`` queries drawn from a list of phrases:

* ``text``   — ``model.embed_text([query])`` (MiniLM + projection, 1 query),
* ``search`` — the index search plus near-duplicate removal (the internal
  ``search._ranked`` step of `semantic_search`),
* ``table``  — building the result `~astropy.table.Table` (``search._table``),
* ``total``  — ``semantic_search(query, k)`` itself, a new query each time
  (the model's cache of recent query texts is cleared before each call),
* ``repeated query`` — the same query again (its text embedding is
  remembered: what changing ``k``, a region or a re-ranker costs).

Examples
--------
::

    python benchmarks/bench_search.py --n 100000 1000000
    python benchmarks/bench_search.py --n 1000000 --index bench-work/1000000-ivfpq   # reuse a saved index

Not a test.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_index import catalogue, clustered_unit_vectors  # noqa: E402
from bench_scale import machine  # noqa: E402

PHRASES = [
    "ring galaxy", "spiral galaxy with two arms", "edge-on disk galaxy", "smooth round elliptical galaxy",
    "barred spiral", "merging galaxies with tidal tails", "strong gravitational lens arc", "irregular galaxy",
    "galaxy with a bulge", "cigar-shaped galaxy", "tightly wound spiral arms", "dust lane", "blue clumpy galaxy",
    "face-on spiral", "galaxy pair", "lenticular galaxy", "loosely wound spiral", "compact red galaxy",
    "disturbed morphology", "polar ring",
]


def timed(fn, repeat: int) -> tuple[list[float], object]:
    out, ts = None, []
    for i in range(repeat):
        t0 = time.perf_counter()
        out = fn(i)
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=float, nargs="+", default=[1e5])
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--repeat", type=int, default=60)
    p.add_argument("--kind", default="auto", help="index kind for the synthetic index (default auto)")
    p.add_argument("--index", default=None, help="use this saved index directory instead of building one")
    p.add_argument("--model", default=None, help="model name or directory (default: conf.default_model)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice; a single query runs on one "
                        "thread anyway)")
    args = p.parse_args(argv)

    import astropy.units as u
    from astropy.table import Table

    from astro_semsearch import semantic_search
    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.model import clear_text_cache, load_model
    from astro_semsearch.search.engine import ranked as ranked_rows
    from astro_semsearch.search.engine import result_table
    from astro_semsearch.search.query import query_vector

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    t0 = time.perf_counter()
    model = load_model(args.model)
    print(f"Machine: {machine()}")
    print(f"Model: {model.name} (dim {model.dim}), loaded in {time.perf_counter() - t0:.1f} s; k={args.k}, "
          f"{args.repeat} warm queries, min_separation 5 arcsec, torch threads {torch.get_num_threads()}\n")
    print("| n | index | text p50 ms | search p50 ms | table p50 ms | total p50 ms | total p99 ms "
          "| repeated query p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    sizes = [int(x) for x in args.n] if args.index is None else [None]
    for n in sizes:
        if args.index is not None:
            index = GalaxyIndex.load(args.index, verify=False)
            n = index.ntotal
        else:
            data, _ = clustered_unit_vectors(n, model.dim, seed=0)
            table = catalogue(n, seed=0)
            table["mag"] = np.random.default_rng(0).uniform(14, 21, n).astype(np.float32)
            index = GalaxyIndex.build(data, table, kind=args.kind, model=model, name=f"synthetic-{n}")
            del data
        q = lambda i: PHRASES[i % len(PHRASES)]  # noqa: E731
        semantic_search(q(0), k=args.k, index=index, model=model)  # warm-up (coordinates cached etc.)
        # The model remembers recent short queries; clear that cache so each timing is a new query.
        cold = lambda f: (lambda i: (clear_text_cache(), f(i))[1])  # noqa: E731
        t_text, _ = timed(cold(lambda i: model.embed_text([q(i)])), args.repeat)
        qvecs = [query_vector(model, [q(i)]) for i in range(len(PHRASES))]
        t_search, ranked = timed(lambda i: ranked_rows(index, qvecs[i % len(qvecs)], args.k, min_sep=5 * u.arcsec),
                                 args.repeat)
        scores, rows = ranked
        t_table, out = timed(lambda i: result_table(index, scores, rows, {"function": "semantic_search"}), args.repeat)
        assert isinstance(out, Table) and len(out) == args.k
        t_total, _ = timed(cold(lambda i: semantic_search(q(i), k=args.k, index=index, model=model)), args.repeat)
        # The same query again (new k, region, re-ranker...): its text embedding is remembered.
        t_again, _ = timed(lambda i: semantic_search(q(0), k=args.k, index=index, model=model), args.repeat)
        label = f"{index.kind} ({index.manifest.get('factory')})"
        print(f"| {n:.0e} | {label} | {np.median(t_text):.2f} | {np.median(t_search):.2f} | {np.median(t_table):.2f} "
              f"| {np.median(t_total):.2f} | {np.percentile(t_total, 99):.2f} | {np.median(t_again):.2f} |", flush=True)
        del index
    return 0


if __name__ == "__main__":
    sys.exit(main())
