"""Start-up times, each in a new Python process: the command line's ``--help`` / ``--version`` against
``import astropy.table``, and a first ``semantic_search`` against the 2 s target, for each text backend.

Every command is run ``--repeat`` times in turn (round robin, so a change in
the machine's load touches all alike) and the median wall time of the whole
process is reported, start to exit:

* ``python -c "import astropy.table"`` — the yardstick: every result of the
  package is an astropy Table;
* ``astro-semsearch --help`` and ``astro-semsearch --version`` (as
  ``python -m astro_semsearch.cli``, the same code as the installed script),
  with their ratio to the yardstick (target: at most 1.5);
* ``python -c "from astro_semsearch import semantic_search;
  semantic_search('ring galaxy', index=INDEX)"`` with ``conf.text_backend``
  set to each backend (target: under 2 s), a different phrase each run.

Examples
--------
::

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --index runs/bench/work/1000000-auto --repeat 10
    python -X importtime -m astro_semsearch.cli --help 2> imports.txt   # where the time goes

The ONNX backend needs ``pip install "astro_semsearch[fast]"`` and the export
(``astro-semsearch prepare-text-encoder``, made here if it is missing).
Not a test.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

PHRASES = ["ring galaxy", "barred spiral", "edge-on disk galaxy", "merging galaxies with tidal tails",
           "smooth round elliptical galaxy", "galaxy pair", "dust lane", "polar ring", "blue clumpy galaxy",
           "face-on spiral", "lenticular galaxy", "compact red galaxy"]


def run(argv: list[str], env: dict) -> float:
    """Wall time of one process, start to exit (it must succeed)."""
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{out.stderr}")
    return elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--index", default=None, help="index for the first search (default: the shipped one)")
    p.add_argument("--backends", nargs="+", default=None, choices=["torch", "onnx"],
                   help="text backends of the first search (default: both if onnxruntime is installed)")
    args = p.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from astro_semsearch.model import onnx_text

    backends = args.backends or (["torch", "onnx"] if onnx_text.available() else ["torch"])
    if "onnx" in backends:
        onnx_text.prepare_text_encoder()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    py = sys.executable
    index = repr(args.index) if args.index else "None"
    commands = {
        "import astropy.table": lambda i: [py, "-c", "import astropy.table"],
        "astro-semsearch --help": lambda i: [py, "-m", "astro_semsearch.cli", "--help"],
        "astro-semsearch --version": lambda i: [py, "-m", "astro_semsearch.cli", "--version"],
    }
    for b in backends:
        commands[f"first semantic_search ({b})"] = lambda i, b=b: [
            py, "-c", "from astro_semsearch import conf, semantic_search; "
                      f"conf.text_backend = {b!r}; semantic_search({PHRASES[i % len(PHRASES)]!r}, index={index})"]
    for name, make in commands.items():  # warm the page cache (files, .pyc): start-up, not disk, is measured
        run(make(0), env)
    times = {name: [] for name in commands}
    loads = [os.getloadavg()[0]]
    for i in range(args.repeat):
        for name, make in commands.items():
            times[name].append(run(make(i), env))
        loads.append(os.getloadavg()[0])
    base = float(np.median(times["import astropy.table"]))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; index {args.index or 'shipped default'}; "
          f"median of {args.repeat} runs each; load average (1 min) {min(loads):.2f}-{max(loads):.2f}\n")
    print("| command | median s | min s | max s | / import astropy.table |\n|---|---|---|---|---|")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"| {name} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
