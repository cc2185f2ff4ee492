"""The figure of docs/visualising.rst: the ten best "ring galaxy" hits on the shipped index.

    python data/recipes/visualising_montage.py --images data/decals_rings/images

Writes ``docs/_static/visualising_montage.png`` (110 dpi, 256 colours) and
prints how many of the ten the Galaxy Zoo DECaLS volunteers tagged as rings,
then, for each shipped model, the ROC AUC with which the "ring galaxy"
ranking of all 236 galaxies (their images embedded by that model) separates
the ring-tagged ones, and how many of its top ten are tagged. The images are
Galaxy Zoo DECaLS's (not part of the package).
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

    import numpy as np
    from scipy.stats import rankdata

    from astro_semsearch.images import find_image, load_image
    from astro_semsearch.index import load_index
    from astro_semsearch.model import load_model
    from astro_semsearch.model.files import MODELS_DIR

    table = load_index().table
    ring = np.asarray(table["ring"], dtype=bool)
    paths = [find_image(Path(args.images), str(o)) for o in table["object_id"]]
    if any(p is None for p in paths):
        raise SystemExit(f"{args.images} lacks some of the index's images (<object_id>.jpg)")
    images = [load_image(str(p)) for p in paths]
    for name in sorted(d.name for d in MODELS_DIR.iterdir() if d.is_dir()):
        model = load_model(name)
        score = model.embed_images(images) @ model.embed_text("ring galaxy")[0]
        r = rankdata(score)
        n1, n0 = int(ring.sum()), int((~ring).sum())
        auc = (r[ring].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
        print(f"{name}: ROC AUC {auc:.3f} over {len(ring)} galaxies ({n1} ring-tagged); "
              f"top ten: {int(ring[np.argsort(-score)[:10]].sum())} tagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
