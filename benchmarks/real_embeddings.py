"""Make a benchmark set of REAL embeddings: the shipped model applied to Galaxy Zoo 2 images.

Synthetic clustered vectors (``bench_index.clustered_unit_vectors``) are easy
to make at any size, but real embeddings have their own structure (a few
dense regions, long tails) that decides how well compressed indexes recall.
This script embeds the Galaxy Zoo 2 images in ``../shared/data/gz2`` (see
``../shared/README.md``) with the model, and writes ``--out`` (``.npz``):

``data``
    The indexed set: every galaxy but the held-out ones, each in its four
    90-degree rotations (the model is not rotation-invariant, so the four
    views are four distinct, realistic, nearby vectors): ~1.2 x 10^5 vectors.
``queries``
    The held-out galaxies' embeddings (image-similarity queries).
``text_queries``, ``text``
    The embeddings of the evaluation query phrasings (text queries).

Then ``python benchmarks/bench_scale.py --real runs/bench/real.npz`` measures
the index kinds on it. Not a test; needs the shared data (a few minutes on
two cores).

    python benchmarks/real_embeddings.py --out runs/bench/real.npz
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gz2", default="../shared/data/gz2", help="Galaxy Zoo 2 directory (labels.csv + images/)")
    p.add_argument("--model", default=None, help="model name or directory (default: the shipped model)")
    p.add_argument("--out", default="runs/bench/real.npz")
    p.add_argument("--holdout", type=int, default=1000, help="galaxies kept out of the index as queries")
    p.add_argument("--rotations", type=int, default=4, choices=[1, 2, 4])
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)

    import torch

    from astro_semsearch import load_model
    from astro_semsearch.evaluation import load_queries
    from astro_semsearch.datasets import load_gz2, load_images

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    t0 = time.perf_counter()
    table = load_gz2(args.gz2)
    images = load_images(list(table["path"]), size=80)
    print(f"loaded {len(images)} images in {time.perf_counter() - t0:.0f} s", flush=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    held, kept = order[: args.holdout], np.sort(order[args.holdout:])
    t0 = time.perf_counter()
    queries = model.embed_images(images[held])
    views = [model.embed_images(np.ascontiguousarray(np.rot90(images[kept], r, axes=(1, 2))))
             for r in range(args.rotations)]
    data = np.concatenate(views)
    print(f"embedded {len(data) + len(queries)} images in {time.perf_counter() - t0:.0f} s", flush=True)
    phrases = [q for qs in load_queries().values() for q in qs]
    text_queries = model.embed_text(phrases)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, data=data.astype(np.float32), queries=queries.astype(np.float32),
             text_queries=text_queries.astype(np.float32), text=np.array(phrases),
             model=np.array(model.name), fingerprint=np.array(model.fingerprint))
    print(f"wrote {out}: {len(data)} indexed vectors, {len(queries)} image queries, {len(phrases)} text queries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
