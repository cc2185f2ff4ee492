"""Cold-cache search latency of a large IVF-PQ index, with and without ``MADV_RANDOM`` on its vectors.

A loaded IVF-PQ index keeps its PQ codes in RAM and re-scores each query's
``k * refine_factor`` candidates with the full-precision vectors, read from
the memory-mapped ``vectors.npy`` (`astro_semsearch.index.mapped`). After a
reboot, or when other work has pushed those pages out, each candidate row is
a read from disk. This script measures that case: before every query the
vectors' pages are dropped from the page cache, then one query is timed.

Each cold query:

1. our own mapping of ``vectors.npy`` is unmapped page by page
   (``MADV_DONTNEED``; the kernel never drops pages a process has mapped),
2. the page cache is dropped: ``sync; echo 3 > /proc/sys/vm/drop_caches``
   (``--drop global``, needs root) or only ``vectors.npy``'s pages with
   ``posix_fadvise(POSIX_FADV_DONTNEED)`` (``--drop file``, any user),
3. ``index.search(query, k)`` is timed (FAISS scan of the resident codes +
   the refinement's reads), and the bytes the process read from disk
   (``/proc/self/io`` ``read_bytes``) are recorded.

The two modes are alternated query by query, so a change in the machine's
load touches both alike: ``random`` (the package's default advice) and
``normal`` (the kernel's default read-around).

Examples
--------
::

    # build (once, ~15 min and ~12 GB of RAM on 2 cores) and keep the 10^7 index, then measure:
    python benchmarks/bench_cold.py --n 1e7 --index runs/bench/work/10000000-auto --queries 20
    python benchmarks/bench_cold.py --index runs/bench/work/10000000-auto --drop file

Linux only (``madvise``, ``/proc``). Not a test.
"""
from __future__ import annotations

import argparse
import mmap
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_index import catalogue, clustered_unit_vectors  # noqa: E402
from bench_scale import machine  # noqa: E402


def build(n: int, out: Path) -> None:
    """Build the synthetic index of ``n`` vectors (as bench_scale.py does, kind auto) and save it."""
    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.model import load_model

    model = load_model()
    t0 = time.perf_counter()
    data, _ = clustered_unit_vectors(n, model.dim, seed=0)
    table = catalogue(n, seed=0)
    index = GalaxyIndex.build(data, table, kind="auto", model=model, name=f"synthetic-{n}")
    del data
    index.save(out)
    print(f"built and saved {index!r} in {time.perf_counter() - t0:.0f} s", flush=True)


def read_bytes() -> int:
    """Bytes this process has caused to be read from storage (``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no read_bytes in /proc/self/io")


def resident_pages(path: Path) -> int | None:
    """Pages of ``path`` in the page cache (``fincore``), or None if fincore is not there."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return int(out.stdout.split()[0]) // mmap.PAGESIZE


def drop(path: Path, mapping: mmap.mmap, how: str) -> None:
    mapping.madvise(mmap.MADV_DONTNEED)  # unmap our pages first, or the kernel keeps them
    if how == "global":
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    else:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", required=True, help="the saved index (built here first with --n if missing)")
    p.add_argument("--n", type=float, default=None, help="build an index of this size if --index is missing")
    p.add_argument("--queries", type=int, default=20, help="cold queries per mode")
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--drop", choices=["global", "file"], default="global",
                   help="drop the whole page cache (root) or only vectors.npy's pages")
    args = p.parse_args(argv)

    target = Path(args.index)
    if not (target / "manifest.json").is_file():
        if args.n is None:
            p.error(f"{target} is not an index; give --n to build one there")
        build(int(args.n), target)

    from astro_semsearch.index import GalaxyIndex
    from astro_semsearch.index.mapped import _mapping, advise

    t0 = time.perf_counter()
    index = GalaxyIndex.load(target, verify=False)
    vectors = index.vectors_array()
    mapping = _mapping(vectors)
    vpath = target / "vectors.npy"
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    print(f"Index: {index!r} ({vpath.stat().st_size / 2**30:.1f} GiB of vectors), opened in "
          f"{time.perf_counter() - t0:.1f} s; k={args.k}, refine_factor {index.knobs.get('refine_factor')}, "
          f"nprobe {index.knobs.get('nprobe')}; page cache dropped with --drop {args.drop}\n")
    _, centres = clustered_unit_vectors(1, index.dim, seed=0)  # the index's mixture...
    queries, _ = clustered_unit_vectors(2 * args.queries + 2, index.dim, seed=1, centres=centres)  # ...new draws
    index.search(queries[-1], args.k)  # warm-up: FAISS allocations, code pages of the libraries

    results = {"random": [], "normal": []}
    for i in range(args.queries):
        for j, mode in enumerate(("random", "normal") if i % 2 == 0 else ("normal", "random")):
            q = queries[2 * i + j]
            advise(vectors, mode)
            drop(vpath, mapping, args.drop)
            left = resident_pages(vpath)
            before = read_bytes()
            t0 = time.perf_counter()
            index.search(q, args.k)
            elapsed = time.perf_counter() - t0
            results[mode].append((elapsed * 1e3, (read_bytes() - before) / 2**20, left))
    advise(vectors, "random")
    print("| vectors advised | cold query p50 ms | p90 ms | min ms | max ms | MB read p50 | pages left after drop |")
    print("|---|---|---|---|---|---|---|")
    for mode, rows in results.items():
        ms = np.array([r[0] for r in rows])
        mb = np.array([r[1] for r in rows])
        left = sorted({r[2] for r in rows if r[2] is not None})
        print(f"| {mode} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} | {ms.min():.1f} | {ms.max():.1f} "
              f"| {np.median(mb):.2f} | {left or 'n/a'} |")
    warm = []
    for q in queries[:args.queries]:
        index.search(q, args.k)  # reads its rows into the page cache
        t0 = time.perf_counter()
        index.search(q, args.k)
        warm.append((time.perf_counter() - t0) * 1e3)
    print(f"\nwarm (the query's rows cached): p50 {np.median(warm):.2f} ms; "
          f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
