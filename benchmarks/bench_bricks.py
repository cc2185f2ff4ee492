"""Benchmark stamps cut from brick coadds (LegacySurveyBricks) against HTTP cutouts from the local stand-in.

Writes two survey-sized synthetic bricks (3600 x 3600 pixels at 0.262"/px,
RICE-compressed like the survey's ``.fits.fz``, g, r, z) of the survey's
own tiling, side by side (``1501p022`` and ``1503p022``), to a temporary
directory, then times ``LegacySurveyBricks.get_cutouts`` on a few thousand
positions inside them:

* ``native``: every stamp at 0.262"/px (bilinear, `reproject_interp`);
* ``framed``: each stamp framed by a size drawn like a galaxy catalogue's
  (R90 log-normal around 8", at most 25"), so most are coarser than native
  and some are binned first (coarser than 1.5x native);

stamps near the shared edge are completed from the neighbouring brick as in
a real build. The first call includes opening and decompressing the bricks
(reported separately). For comparison it runs ``bench_cutouts.run`` (HTTP
cutouts of the same size from the local viewer stand-in, cold cache), which
is a lower bound on the real viewer's time per cutout.

    python benchmarks/bench_bricks.py                  # 2000 stamps of 256 px per mode
    python benchmarks/bench_bricks.py --n 500 --size 128

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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from astropy.coordinates import SkyCoord  # noqa: E402
from astropy.io import fits  # noqa: E402

from astro_semsearch import conf  # noqa: E402
from astro_semsearch.cutouts import LegacySurveyBricks  # noqa: E402
from astro_semsearch.cutouts.brickgrid import BrickGrid  # noqa: E402
from astro_semsearch.cutouts.framing import frame_pixscale  # noqa: E402
from sky import tan_wcs  # noqa: E402

BRICKS = ("1501p022", "1503p022")
N_PIX = 3600


def write_brick(root: Path, name: str, rng) -> None:
    """A survey-sized brick: noise plus a few hundred galaxy-like blobs, one file per band."""
    ra, dec = BrickGrid().centre(name)
    wcs = tan_wcs(ra, dec, N_PIX)
    base = rng.normal(0.0, 0.005, (N_PIX, N_PIX)).astype(np.float32)
    yy, xx = np.mgrid[-40:41, -40:41]
    for x, y, s, a in zip(rng.uniform(50, N_PIX - 50, 400), rng.uniform(50, N_PIX - 50, 400),
                          rng.uniform(2, 12, 400), rng.uniform(0.2, 3, 400)):
        xi, yi = int(x), int(y)
        base[yi - 40:yi + 41, xi - 40:xi + 41] += (a * np.exp(-0.5 * (xx**2 + yy**2) / s**2)).astype(np.float32)
    d = root / "coadd" / name[:3] / name
    d.mkdir(parents=True, exist_ok=True)
    for band, colour in zip("grz", (0.6, 1.0, 1.4)):
        hdu = fits.CompImageHDU(base * colour, header=wcs.to_header(), compression_type="RICE_1")
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(d / f"legacysurvey-{name}-image-{band}.fits.fz")


def positions(n: int, rng) -> SkyCoord:
    """Inside the two bricks, far enough from their outer edges (which have no neighbour here) for any stamp."""
    return SkyCoord(rng.uniform(150.05, 150.45, n), rng.uniform(2.17, 2.33, n), unit="deg")


def run_bricks(root: Path, n: int, size: int, mode: str, rng) -> dict:
    coords = positions(n, rng)
    if mode == "native":
        pix = np.full(n, 0.262)
    else:
        r90 = np.minimum(np.exp(rng.normal(np.log(8.0), 0.6, n)), 25.0)  # fields up to 160"
        pix = frame_pixscale(r90, size=size, frame_r90=6.4, fixed_pixscale=0.262).pixscale
    src = LegacySurveyBricks(root, max_bricks=2)
    first = 20
    t0 = time.perf_counter()
    src.get_cutouts(coords[:first], size=size, pixscale=pix[:first], progress=False)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    t = src.get_cutouts(coords[first:], size=size, pixscale=pix[first:], progress=False, errors="flag")
    t_rest = time.perf_counter() - t0
    assert t["ok"].all(), t["error"][~t["ok"]][:3]
    return {"mode": mode, "n": n, "size": size, "per_s": (n - first) / t_rest, "first_s": t_first,
            "binned": float(np.mean(pix / 0.262 > 1.5)), "opened": sum(src.opened.values())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="stamps per mode (default 2000)")
    p.add_argument("--size", type=int, default=256, help="pixels a side (default 256)")
    p.add_argument("--http-n", type=int, default=200, help="HTTP cutouts for the comparison (default 200)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, conf.set_temp("show_progress", False):
        root = Path(tmp)
        t0 = time.perf_counter()
        for name in BRICKS:
            write_brick(root, name, rng)
        print(f"wrote {len(BRICKS)} bricks of {N_PIX} px in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for mode in ("native", "framed"):
            r = run_bricks(root, args.n, args.size, mode, rng)
            rows.append(r)
            print(f"bricks {mode:6s}: {r['per_s']:6.1f} stamps/s (first 20 incl. opening: {r['first_s']:.2f} s, "
                  f"{100 * r['binned']:.0f}% binned, {r['opened']} file opens)", file=sys.stderr)
    from bench_cutouts import run as run_http

    http = run_http(args.http_n, args.size, "fits", int(conf.max_concurrency), args.seed)
    print(f"HTTP fits c={http['concurrency']}: {http['cold_per_s']:.1f} cutouts/s cold", file=sys.stderr)
    lines = [f"Bricks vs HTTP cutouts, {args.size} px, FITS grz; {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}.", "",
             "| source | stamps | stamps/s | notes |", "|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| bricks, {r['mode']} | {r['n']} | {r['per_s']:.1f} | first 20 (opening) {r['first_s']:.2f} s; "
                     f"{100 * r['binned']:.0f}% binned first; {r['opened']} file opens |")
    lines.append(f"| HTTP stand-in, cold cache | {http['n']} | {http['cold_per_s']:.1f} | concurrency "
                 f"{http['concurrency']} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
