"""Stress the stop of ``get_cutouts`` against a service that fails every request (local test server, no network).

Each run asks for 40 cutouts from a server answering HTTP 500 to all of them,
with ``unreachable_after=5`` and no retries, and records the number of
requests the server saw and the run length the error names. With Python's
thread switch interval forced down (``--switch 1e-6``) the worker threads
interleave as on a loaded machine. The call promises at most
``unreachable_after + max_concurrency - 1`` requests (8 at the defaults) and
an error naming 5 cutouts in a row.

    python benchmarks/stress_failing_service.py               # 300 runs, switch interval 1e-6 s
    python benchmarks/stress_failing_service.py --runs 1000 --switch 0.005

Measured 2026-12-02 (2 cores): 300 of 300 runs sent 7-8 requests and named
"5 cutouts in a row". An intermediate version, which counted the failure and
kept the first error in two separate locked steps, named 6 or 7 in 5 of 300;
the code before the fix, with a slow caller, let all 40 requests through
(``tests/test_network.py``). Not a test.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
from astropy.config import paths  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402
from legacy_server import LegacyServer  # noqa: E402

from astro_semsearch import conf  # noqa: E402
from astro_semsearch.cutouts import LegacySurvey  # noqa: E402
from astro_semsearch.exceptions import ServiceUnreachableError  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--switch", type=float, default=1e-6, help="sys.setswitchinterval, seconds")
    args = p.parse_args(argv)
    if args.runs < 1 or not args.switch > 0:
        p.error("--runs must be >= 1 and --switch > 0")
    sys.setswitchinterval(args.switch)
    named, requests = collections.Counter(), collections.Counter()
    coords = SkyCoord(np.linspace(10, 20, 40), np.zeros(40), unit="deg")
    with paths.set_temp_cache(tempfile.mkdtemp()), conf.set_temp("show_progress", False):
        for _ in range(args.runs):
            with LegacyServer() as srv, conf.set_temp("legacysurvey_url", srv.url), \
                    conf.set_temp("backoff", 0.01), conf.set_temp("max_retries", 0), \
                    conf.set_temp("unreachable_after", 5):
                srv.fail("500", times=200)
                try:
                    LegacySurvey().get_cutouts(coords, size=16, errors="flag")
                    named["no error"] += 1
                except ServiceUnreachableError as exc:
                    found = re.search(r"(\d+) cutouts in a row", str(exc))
                    named[found.group(1) if found else "other"] += 1
                requests[srv.total] += 1
    bound = 5 + int(conf.max_concurrency) - 1
    over = sum(c for n, c in requests.items() if n > bound)
    print(f"{args.runs} runs, switch interval {args.switch:g} s: run length named {dict(named)}; "
          f"requests per run {dict(sorted(requests.items()))}; over the bound of {bound}: {over}")
    return 0 if over == 0 and set(named) == {"5"} else 1


if __name__ == "__main__":
    sys.exit(main())
