"""The figure of docs/visualising.rst: the ten best "ring galaxy" hits on the shipped index.

    python data/recipes/visualising_montage.py --images data/decals_rings/images

Writes ``docs/_static/visualising_montage.png`` (110 dpi, 256 colours) and
prints how many of the ten the Galaxy Zoo DECaLS volunteers tagged as rings.
The images are Galaxy Zoo DECaLS's (not part of the package).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "docs" / "_static" / "visualising_montage.png"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, help="directory of the DECaLS ring images (<object_id>.jpg)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)

    from PIL import Image

    from astro_semsearch import semantic_search
    from astro_semsearch.plotting import plot_results

    hits = semantic_search("ring galaxy", k=10)
    fig = plot_results(hits, ncols=5, size=160, images=args.images)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=110, format="png")
    Image.open(buf).convert("RGB").quantize(256).save(args.out, optimize=True)
    print(f"{int(sum(hits['ring']))} of 10 tagged as rings; model "
          f"{hits.meta['astro_semsearch']['model']['name']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
