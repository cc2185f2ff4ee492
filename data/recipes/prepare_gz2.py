"""Lay out the Galaxy Zoo 2 training data the way ``astro-semsearch train`` and ``evaluate`` read it.

The images and votes are those of the Kaggle competition "Galaxy Zoo - The
Galaxy Challenge" (SDSS gri composites with Galaxy Zoo 2 weighted vote
fractions, Willett et al. 2013). Their terms allow training and evaluation,
not redistribution, so they are not shipped: download them yourself from the
competition's page (a Kaggle account is needed), e.g. with the Kaggle
command line tool::

    kaggle competitions download -c galaxy-zoo-the-galaxy-challenge
    unzip galaxy-zoo-the-galaxy-challenge.zip   # images_training_rev1.zip, training_solutions_rev1.zip
    unzip images_training_rev1.zip && unzip training_solutions_rev1.zip

then run::

    python data/recipes/prepare_gz2.py images_training_rev1 training_solutions_rev1.csv --out data/gz2

It writes ``data/gz2/labels.csv`` (``file, galaxy_id, coarse_label,
n_vote_columns, Class1.1 ... Class11.6``) and ``data/gz2/images/<id>.jpg``:
the central 320 x 320 pixels of each 424 x 424 image, resized to 160 x 160
(the framing the shipped model was trained on: about 6.4 x R90 across). Every
row has all 37 vote columns; ``coarse_label`` is left empty. Point training
and evaluation at it with ``--data data/gz2`` (or
``astro_semsearch.conf.gz2_root``). Resumable: images already written are
skipped.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", help="the Kaggle images_training_rev1 directory (<GalaxyID>.jpg)")
    p.add_argument("solutions", help="the Kaggle training_solutions_rev1.csv")
    p.add_argument("--out", required=True, help="output directory (labels.csv + images/)")
    args = p.parse_args(argv)

    from PIL import Image

    from astro_semsearch.datasets import GZ2_COLUMNS

    src, out = Path(args.images), Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    with open(args.solutions, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in GZ2_COLUMNS if c not in rows[0]]
    if missing:
        raise SystemExit(f"{args.solutions} lacks the vote columns {missing[:3]}...; is it training_solutions_rev1?")
    written = []
    for i, row in enumerate(rows):
        gid = row["GalaxyID"]
        target = out / "images" / f"{gid}.jpg"
        if not target.is_file():
            with Image.open(src / f"{gid}.jpg") as im:
                w, h = im.size
                box = ((w - 320) // 2, (h - 320) // 2, (w + 320) // 2, (h + 320) // 2)
                im.convert("RGB").crop(box).resize((160, 160), Image.LANCZOS).save(target, quality=95)
        written.append({"file": f"images/{gid}.jpg", "galaxy_id": gid, "coarse_label": "", "n_vote_columns": 37,
                        **{c: row[c] for c in GZ2_COLUMNS}})
        if (i + 1) % 5000 == 0:
            print(f"{i + 1} of {len(rows)} images", file=sys.stderr)
    tmp = out / "labels.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "galaxy_id", "coarse_label", "n_vote_columns", *GZ2_COLUMNS])
        w.writeheader()
        w.writerows(written)
    tmp.replace(out / "labels.csv")
    print(f"wrote {out / 'labels.csv'} ({len(written)} galaxies) and {out / 'images'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
