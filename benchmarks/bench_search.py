"""End-to-end `semantic_search` latency against one bare MiniLM forward pass, for each text backend.

Uses the model shipped with the package (``conf.default_model``) and a
synthetic index of ``n`` clustered unit vectors of the model's dimension with
a synthetic catalogue (``object_id``, ``ra``, ``dec``, ``mag``), built with
``kind="auto"`` (exact below 1M, IVF-PQ + refinement from 1M) and recording
the model, so ``semantic_search(query, index=index)`` opens the model as a
user's call does. Times are warm (model and index loaded, a warm-up query)
medians (p50) and p99 over ``--repeat`` rounds; every round times every
measurement once, one after the other, so that a change in the machine's
load touches all of them alike. The torch backend's measurements run in a
second phase: torch's thread pool keeps spinning after each call and would
slow the measurements that follow it on a two-core machine.

* ``bare torch forward`` — one fp32 MiniLM forward pass (transformers,
  torch on **one thread**) of the round's phrase, tokenized beforehand:
  the reference of the speed target;
* ``bare onnx forward`` — the same with ONNX Runtime (one thread);
* for each text backend (``--backends``, ``conf.text_backend``):

  - ``text`` — the model's ``embed_text([phrase])`` (tokenizer, MiniLM,
    pooling, text head),
  - ``total`` — ``semantic_search(phrase, k, index=index)``, a new phrase
    each time (the cache of recent query texts is cleared first),
  - ``repeated`` — the same query again (its text features are remembered:
    what changing ``k``, a region or a re-ranker costs);

* ``search`` — the index search plus near-duplicate removal
  (``search.engine.ranked``), ``table`` — building the result Table.

The last line gives ``total (onnx) / bare torch forward``.

Examples
--------
::

    python benchmarks/bench_search.py --n 1e6
    python benchmarks/bench_search.py --index runs/bench/work/1000000-auto       # reuse a saved index
    python benchmarks/bench_search.py --n 1e6 --save runs/bench/work/1000000-auto  # build once, keep it

The ONNX backend needs ``pip install "astro_semsearch[fast]"``; the script
prepares the export (`~astro_semsearch.model.prepare_text_encoder`) if it is
missing. Not a test.
"""
from __future__ import annotations

import argparse
import os
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


def build_index(n: int, model, kind: str, save: str | None):
    from astro_semsearch.index import GalaxyIndex

    data, _ = clustered_unit_vectors(n, model.dim, seed=0)
    table = catalogue(n, seed=0)
    table["mag"] = np.random.default_rng(0).uniform(14, 21, n).astype(np.float32)
    t0 = time.perf_counter()
    index = GalaxyIndex.build(data, table, kind=kind, model=model, name=f"synthetic-{n}")
    print(f"built {index!r} in {time.perf_counter() - t0:.0f} s", flush=True)
    if save:
        index.save(save)
        index = GalaxyIndex.load(save, verify=False)
    return index


def bare_forwards(onnx: bool):
    """``{name: f(phrase)}``: one MiniLM forward pass of a phrase tokenized beforehand, torch and ONNX Runtime."""
    import torch

    from astro_semsearch.model.minilm import torch_backbone

    tok, mdl = torch_backbone()
    encoded = {p: tok([p], padding=True, truncation=True, max_length=64, return_tensors="pt") for p in PHRASES}

    def torch_forward(phrase):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                t0 = time.perf_counter()
                mdl(**encoded[phrase])
                return time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)

    out = {"bare torch forward (1 thread)": torch_forward}
    if onnx:
        from astro_semsearch.model import onnx_text

        session = onnx_text._session(1)
        feeds = {p: {k: v.numpy().astype(np.int64) for k, v in encoded[p].items()} for p in PHRASES}

        def onnx_forward(phrase):
            t0 = time.perf_counter()
            session.run(None, feeds[phrase])
            return time.perf_counter() - t0

        out["bare onnx forward (1 thread)"] = onnx_forward
    return out


def timer(fn):
    def run(phrase):
        t0 = time.perf_counter()
        fn(phrase)
        return time.perf_counter() - t0
    return run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=float, default=1e6, help="index size (default 1e6)")
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--repeat", type=int, default=60)
    p.add_argument("--kind", default="auto", help="index kind for the synthetic index (default auto)")
    p.add_argument("--index", default=None, help="use this saved index directory instead of building one")
    p.add_argument("--save", default=None, help="save the built index here (reuse it with --index)")
    p.add_argument("--backends", nargs="+", default=None, choices=["torch", "onnx"],
                   help="text backends to time (default: both if onnxruntime is installed)")
    args = p.parse_args(argv)

    import astropy.units as u

    from astro_semsearch import conf, semantic_search
    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.model import clear_text_cache, load_model, onnx_text, prepare_text_encoder
    from astro_semsearch.search.engine import ranked, resolve_model, result_table
    from astro_semsearch.search.query import query_vector

    backends = args.backends or (["torch", "onnx"] if onnx_text.available() else ["torch"])
    if "onnx" in backends:
        prepare_text_encoder()
    model = load_model()
    if args.index:
        index = GalaxyIndex.load(args.index, verify=False)
    else:
        index = build_index(int(args.n), model, args.kind, args.save)
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    print(f"Index: {index!r}; k={args.k}, min_separation 5 arcsec, {args.repeat} rounds\n")

    steps = dict(bare_forwards("onnx" in backends))
    for b in backends:
        with conf.set_temp("text_backend", b):
            m = resolve_model(None, index, text_only=True)  # what semantic_search uses for a text query
            m.embed_text(PHRASES[0])
            semantic_search(PHRASES[0], k=args.k, index=index)  # warm-up (positions, background sample)

        def fresh(fn, b=b):
            def run(phrase):
                clear_text_cache()  # a new query: MiniLM runs
                with conf.set_temp("text_backend", b):
                    t0 = time.perf_counter()
                    fn(phrase)
                    return time.perf_counter() - t0
            return run

        def again(fn, b=b):
            def run(phrase):
                with conf.set_temp("text_backend", b):
                    fn(PHRASES[0])  # remembered after the first call
                    t0 = time.perf_counter()
                    fn(PHRASES[0])
                    return time.perf_counter() - t0
            return run

        steps[f"text ({b})"] = fresh(m.embed_text)
        steps[f"total ({b})"] = fresh(lambda ph: semantic_search(ph, k=args.k, index=index))
        steps[f"repeated ({b})"] = again(lambda ph: semantic_search(ph, k=args.k, index=index))
    qvecs = {ph: query_vector(model, [ph]) for ph in PHRASES}
    steps["search"] = timer(lambda ph: ranked(index, qvecs[ph], args.k, min_sep=5 * u.arcsec))
    scores, rows = ranked(index, qvecs[PHRASES[0]], args.k, min_sep=5 * u.arcsec)
    steps["table"] = timer(lambda ph: result_table(index, scores, rows, {"function": "semantic_search"},
                                                    qvecs[PHRASES[0]]))

    # Two phases: torch's own thread pool (the torch backend runs on torch's default threads) keeps
    # spinning after each call and would slow whatever runs next on two cores; the bare forward pass
    # runs on one thread, which starts no pool.
    torch_steps = [name for name in steps if name.endswith("(torch)")]
    times = {name: [] for name in steps}
    time.sleep(1.0)  # let the thread pools woken by the warm-up calls go idle
    for phase in ([n for n in steps if n not in torch_steps], torch_steps):
        for r in range(args.repeat):
            phrase = PHRASES[r % len(PHRASES)]
            for name in phase:
                times[name].append(steps[name](phrase) * 1e3)
        print(f"(phase {phase[0]!r}...: load average {os.getloadavg()[0]:.2f})" if phase else "", flush=True)
    load_end = os.getloadavg()[0]
    print("| measurement | p50 ms | p99 ms |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {np.median(ts):.2f} | {np.percentile(ts, 99):.2f} |")
    bare = np.median(times["bare torch forward (1 thread)"])
    print()
    for b in backends:
        total = np.median(times[f"total ({b})"])
        print(f"total ({b}) / bare torch forward = {total:.2f} / {bare:.2f} ms = {total / bare:.2f}")
    print(f"load average {load_end:.2f} (1 min) at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
