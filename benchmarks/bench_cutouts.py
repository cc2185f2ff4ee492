"""Benchmark cutout fetching against the local test server (no network).

Measures, for ``LegacySurvey.get_cutouts``:

* cutouts/s on a cold cache at the default concurrency (``conf.max_concurrency``)
  and, for comparison, at 1 and 2x the default,
* the cost of a cache hit (the same request again: no HTTP, the cached file
  is read and validated),

for FITS and JPEG. The server generates the images on the fly (a few ms of
CPU for 256 px) in the same process, so the numbers are a lower bound on
what the client can do, not a measurement of the real viewer (which is
slower and rate limited: be polite with ``max_concurrency``).

    python benchmarks/bench_cutouts.py                 # 200 cutouts of 256 px
    python benchmarks/bench_cutouts.py --n 500 --size 128 --out docs/benchmarks/cutouts.md

Not a test.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from astropy.config import paths  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402

from astro_semsearch import conf  # noqa: E402
from astro_semsearch.cutouts import LegacySurvey  # noqa: E402
from legacy_server import LegacyServer  # noqa: E402


def _coords(n: int, seed: int) -> SkyCoord:
    rng = np.random.default_rng(seed)
    return SkyCoord(rng.uniform(0, 360, n), rng.uniform(-20, 60, n), unit="deg")


def run(n: int, size: int, fmt: str, concurrency: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as cache, paths.set_temp_cache(cache), LegacyServer() as server, \
            conf.set_temp("legacysurvey_url", server.url), conf.set_temp("max_concurrency", concurrency), \
            conf.set_temp("show_progress", False):
        ls = LegacySurvey()
        coords = _coords(n, seed)
        t0 = time.perf_counter()
        cold = ls.get_cutouts(coords, size=size, format=fmt)
        t_cold = time.perf_counter() - t0
        assert cold["ok"].all() and server.total == n
        t0 = time.perf_counter()
        ls.get_cutouts(coords, size=size, format=fmt)
        t_warm = time.perf_counter() - t0
        assert server.total == n, "cache hits must not send requests"
        # One cache hit on its own (single call, no thread pool).
        single = []
        for c in coords[:50]:
            t0 = time.perf_counter()
            ls.get_cutout(c, size=size, format=fmt)
            single.append(time.perf_counter() - t0)
    return {"format": fmt, "size": size, "n": n, "concurrency": concurrency,
            "cold_per_s": n / t_cold, "warm_per_s": n / t_warm, "hit_ms": 1e3 * float(np.median(single))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="cutouts per run (default 200)")
    p.add_argument("--size", type=int, default=256, help="pixels a side (default 256)")
    p.add_argument("--formats", nargs="+", default=["fits", "jpeg"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the Markdown table here")
    args = p.parse_args(argv)

    default = int(conf.max_concurrency)
    rows = []
    for fmt in args.formats:
        for conc in sorted({1, default, 2 * default}):
            r = run(args.n, args.size, fmt, conc, args.seed)
            rows.append(r)
            print(f"{fmt:5s} c={conc:2d}: {r['cold_per_s']:7.1f} cutouts/s cold, {r['warm_per_s']:7.1f}/s cached, "
                  f"cache hit {r['hit_ms']:.2f} ms", file=sys.stderr)
    lines = [
        f"Cutouts against the local test server: {args.n} x {args.size} px, "
        f"default concurrency {default}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        "",
        "| format | concurrency | cold cache (cutouts/s) | all cached (cutouts/s) | one cache hit (ms, median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " (default)" if r["concurrency"] == default else ""
        lines.append(f"| {r['format']} | {r['concurrency']}{mark} | {r['cold_per_s']:.1f} | {r['warm_per_s']:.1f} "
                     f"| {r['hit_ms']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
