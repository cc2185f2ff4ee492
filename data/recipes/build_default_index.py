"""Build the default index shipped in the wheel (``decals-dr5-rings``).

It holds the 236 real DESI Legacy Survey (DECaLS DR5) galaxies of
``../shared/data/decals_rings`` (Galaxy Zoo DECaLS, Walmsley et al. 2022), with
their real coordinates (parsed from the IAU names) and Galaxy Zoo vote
fractions, embedded with the default model. Only embeddings, ids, coordinates
and labels are shipped, never the images.

Run from the repository root after (re)training the default model::

    python data/recipes/build_default_index.py [--shared ../shared]

The index records the model's fingerprint, so it must be rebuilt whenever the
default model changes (the tests check that the two match).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import astropy.units as u
from astropy.table import Table

from astro_semsearch.index import GalaxyIndex
from astro_semsearch.model import load_model

NAME = "decals-dr5-rings"
SURVEY = "DESI Legacy Imaging Surveys DR5 (DECaLS), Galaxy Zoo DECaLS"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default="../shared", help="the shared data folder")
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[2] / "astro_semsearch/data/indexes" / NAME)
    )
    args = parser.parse_args(argv)

    root = Path(args.shared) / "data" / "decals_rings"
    labels = Table.read(root / "labels.csv", format="ascii.csv")
    model = load_model()
    vectors = model.embed_images([str(root / f) for f in labels["file"]], progress=True)

    table = Table()
    table["object_id"] = [str(s) for s in labels["iauname"]]
    table["ra"] = labels["ra"].astype(float) * u.deg
    table["dec"] = labels["dec"].astype(float) * u.deg
    table["ring"] = labels["ring"].astype(bool)
    table["ring"].description = "Galaxy Zoo DECaLS volunteer ring tag (noisy)"
    for src, dst in [
        ("smooth-or-featured_featured-or-disk_fraction", "featured_fraction"),
        ("disk-edge-on_no_fraction", "not_edge_on_fraction"),
        ("has-spiral-arms_no_fraction", "no_spiral_arms_fraction"),
    ]:
        table[dst] = labels[src].astype("float32")
        table[dst].description = f"Galaxy Zoo DECaLS vote fraction ({src})"

    index = GalaxyIndex.build(vectors, table, kind="flat", model=model, name=NAME, survey=SURVEY)
    index.save(args.out, overwrite=True)
    print(f"wrote {index.ntotal} galaxies to {args.out}")


if __name__ == "__main__":
    main()
