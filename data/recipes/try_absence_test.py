"""A measured idea that was not shipped: flag a query whose concept the index holds no example of.

    python data/recipes/try_absence_test.py galclip-v2 --data GZ2_DIR [--decals DIR] [--top 1 5 10] [--lenses DIR]

`~astro_semsearch.exceptions.NoGoodMatchWarning` has a second test beside
the text one: the best hit's ``excess`` (score minus the index's median
score) against the model's ``score_calibration["min_excess"]``. One fixed
threshold cannot work, because the excess a real match reaches depends on the
query. This recipe asks whether a per-query yardstick makes it work:

* *reference galaxies*: the ``--n-ref`` most confident galaxies of each Galaxy
  Zoo class and as many smooth hosts with training-simulator arcs, all from a
  half of the **train** split set apart by a hash of the id, plus 1,000 random
  galaxies of that half as their background;
* for each evaluation wording of a class (``eval_wordings.toml``, negated ones
  left out), the ratio of the index's top-``K`` mean excess to the reference
  galaxies' top-``K`` mean excess, on the class's **validation** pool *with*
  its members and *without* them (Galaxy Zoo vote below 0.1; for the DECaLS
  rings the untagged galaxies; for the injected lenses the hosts without arcs).

A usable test needs the two to separate: "with" near 1 and "without" clearly
below it, for every class. Measured 2026-12-02 on galclip-v2: they do not
(docs/evaluation.rst, "Flags"). For the lenses of the training simulator the
top-1 ratio is 0.92 (median over wordings) with the 22 lenses and 0.81
without, but the worst wording reaches only 0.78 with them and the best 0.90
without; for mergers, rings and dust lanes "with" and "without" differ by
0.02-0.10; on the DECaLS rings (another survey) the ratio is 0.4-0.56 with
rings and without, so a threshold that passes real rings there passes
anything. The non-members at the top of a pool score about as high as the
members, so ``min_excess`` stays unset and the warning fires on the text test
alone.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np


def reference_embeddings(model, gz2_root: str, n_ref: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(positives, background)`` embeddings from the reference half of the train split."""
    from astro_semsearch.datasets import load_gz2, load_images, split_of
    from astro_semsearch.evaluation.pools import preload_size
    from astro_semsearch.evaluation.protocol import CLASSES, gz2_pool
    from astro_semsearch.lensing import ArcInjector, lens_host_mask

    size = preload_size(model)
    gz2 = load_gz2(gz2_root)
    ids = [str(g) for g in gz2["galaxy_id"]]
    half = np.array([split_of(g) == "train" and hashlib.sha256(f"ref{g}".encode()).digest()[0] % 2 == 0
                     for g in ids])
    rows = set()
    for c in CLASSES:
        if c.source == "gz2":
            idx, rel = gz2_pool(gz2, c, half)
            rows |= {int(r) for r in idx[np.argsort(-rel, kind="stable")[:n_ref]]}
    rng = np.random.default_rng(seed)
    voted = np.asarray(gz2["n_vote_columns"]) > 0
    pool = np.flatnonzero(half & voted)
    background = rng.choice(pool, min(1000, len(pool)), replace=False)
    hosts = np.flatnonzero(half & lens_host_mask(gz2))
    if len(hosts) < n_ref or len(pool) < 10:
        raise SystemExit(f"the reference half of the train split has {len(hosts)} lens hosts and {len(pool)} voted "
                         f"galaxies; --n-ref {n_ref} needs at least that many hosts and 10 galaxies")
    hosts = rng.choice(hosts, n_ref, replace=False)
    injector = ArcInjector(seed=30_000 + seed, size=size)  # neither training's nor the evaluation's seed
    r90 = np.exp(rng.uniform(np.log(2.0), np.log(8.0), n_ref))
    lensed = injector.inject(load_images(list(gz2["path"][hosts]), size=size), injector.arcs(n_ref, r90=r90))
    members = np.array(sorted(rows))
    pos = np.vstack([model.embed_images(load_images(list(gz2["path"][members]), size=size)),
                     model.embed_images(lensed)])
    return pos, model.embed_images(load_images(list(gz2["path"][background]), size=size))


def top_excess(scores: np.ndarray, background: np.ndarray, k: int) -> float:
    """Mean of the ``k`` best scores minus the median background score.

    >>> top_excess(np.array([0.9, 0.5, 0.7]), np.array([0.1, 0.3, 0.2]), 2)
    0.6
    """
    return float(np.sort(scores)[::-1][:k].mean() - np.median(background))


def default_index_check(model, lenses: str | None) -> None:
    """The case the docs quote: "strong lens arcs" and "ring galaxy" on the default index, and its known lenses."""
    import warnings

    import astropy.units as u
    from astropy.table import Table, vstack

    from astro_semsearch import crossmatch, semantic_search
    from astro_semsearch.index import open_index

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a NoGoodMatchWarning would be the subject, not noise; none is raised
        for query in ("strong lens arcs", "ring galaxy"):
            hits = semantic_search(query, k=1, model=model)
            print(f"default index, {query!r}: best excess {float(hits['excess'][0]):.3f}, "
                  f"match verdict {hits.meta['astro_semsearch']['match']['good']}")
    if lenses:
        files = sorted(Path(lenses).glob("*.tsv"))
        known = vstack([Table.read(f, format="ascii.csv", delimiter="\t")["ra", "dec"] for f in files])
        index = open_index()
        galaxies = index.catalog(np.arange(len(index)))
        n = crossmatch(galaxies, known, radius=5 * u.arcsec).meta["crossmatch"]["n_results_matched"]
        print(f"default index ({len(galaxies)} galaxies): {n} within 5 arcsec of the {len(known)} known lenses "
              f"and candidates of {', '.join(f.name for f in files)}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model name or directory")
    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/)")
    p.add_argument("--decals", default=None, help="DECaLS ring directory (default: decals_rings beside --data)")
    p.add_argument("--n-ref", type=int, default=30, help="reference galaxies per class")
    p.add_argument("--top", type=int, nargs="+", default=[1, 5, 10], help="K of the top-K mean excess")
    p.add_argument("--lenses", default=None,
                   help="directory of known-lens tables (*.tsv with ra, dec), cross-matched with the default index")
    args = p.parse_args(argv)
    if args.n_ref < 10 or min(args.top) < 1 or max(args.top) > args.n_ref:
        p.error("--n-ref must be >= 10 and every --top in 1..n-ref")

    from astro_semsearch.evaluation.pools import class_pools
    from astro_semsearch.evaluation.protocol import CLASSES
    from astro_semsearch.evaluation.wordings import _wording_class, load_wordings
    from astro_semsearch.model import load_model

    model = load_model(args.model)
    default_index_check(model, args.lenses)
    positives, background = reference_embeddings(model, args.data, args.n_ref)
    decals = args.decals or str(Path(args.data).parent / "decals_rings")
    pools = list(class_pools(model, {c.id for c in CLASSES}, gz2_root=args.data, decals_root=decals, split="val",
                             seed=0, lens_fraction=0.01, batch_size=256, progress=False,
                             rng=np.random.default_rng(0)))
    wordings = load_wordings()["query"]
    for k in args.top:
        print(f"top-{k} mean excess, index / reference: {'with members':>22s} {'without':>16s}")
        print(f"{'class':32s} {'min':>10s} {'median':>8s} {'median':>8s} {'max':>7s}")
        for pool in pools:
            texts = [q["text"] for q in wordings
                     if q["class"] == _wording_class(pool.cls.id) and q.get("kind") != "negated"]
            without = pool.rel < (0.1 if pool.cls.source == "gz2" else 0.5)
            ratios = []
            for q in model.embed_text(texts):
                ref = top_excess(positives @ q, background @ q, k)
                s = pool.emb @ q
                ratios.append((top_excess(s, s, k) / ref, top_excess(s[without], s[without], k) / ref))
            r = np.array(ratios)
            print(f"{pool.cls.name:32s} {r[:, 0].min():10.2f} {np.median(r[:, 0]):8.2f} {np.median(r[:, 1]):8.2f} "
                  f"{r[:, 1].max():7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
