"""Sketch search and zero-shot classification for the symbol experiment (docs/symbols.rst).

    python data/recipes/symbols/compare.py MODEL_DIR [MODEL_DIR ...] --out runs/symbols/compare.json

Needs the shared data (``../shared/data/gz2`` and ``decals_rings``); the two
fine-tuned models come from ``astro-semsearch train --config
data/recipes/symbols/base.toml`` and ``.../sym.toml``.

For each model, on the Galaxy Zoo 2 validation split (never trained on):

* sketch search: nDCG@10 / recall@100 per class with a symbol query (the
  normalised mean embedding of 8 drawn variants, `embed_symbol`), on the
  same pools and relevances as `astro-semsearch evaluate`;
* zero-shot classification with `astro_semsearch.classify` on the coarse
  classes of `gz2_label`: the 5 classes every galaxy has a coarse label for,
  and all 11; accuracy and balanced accuracy (mean per-class recall);
* "symbol classification": each image gets the class whose symbol embedding
  is most similar (symbols as class prototypes instead of text).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from astro_semsearch.classify import classify  # noqa: E402
from astro_semsearch.evaluation import (  # noqa: E402
    CLASSES, RELEVANT, expected_random, gz2_pool, ndcg_at_k, recall_at_k,
)
from astro_semsearch.model import GalaxyModel  # noqa: E402
from astro_semsearch.datasets import load_decals, load_gz2, load_images, split_of  # noqa: E402
from astro_semsearch.sketch import embed_symbol  # noqa: E402
from astro_semsearch.training.symbols import gz2_label  # noqa: E402

# Evaluation class -> (symbol kind, parameters) used as the sketch query.
SKETCH = {
    "spiral": ("spiral", {"n_arms": 2}),
    "edge_on": ("edge_on", {}),
    "bar": ("barred_spiral", {"n_arms": 2}),
    "smooth": ("elliptical", {"axis_ratio": (0.8, 1.0)}),
    "merger": ("merger", {}),
    "ring": ("ring", {}),
    "irregular": ("irregular", {}),
    "disturbed": ("irregular", {}),
    "lens": ("lens", {}),
    "decals_ring": ("ring", {}),
}
# gz2_label -> classify() label text and the symbol prototype.
PROMPT = {
    "round smooth": ("completely round smooth galaxy", ("elliptical", {"axis_ratio": (0.8, 1.0)})),
    "in-between smooth": ("in-between round smooth galaxy", ("elliptical", {"axis_ratio": (0.5, 0.8)})),
    "cigar-shaped smooth": ("cigar-shaped smooth galaxy", ("elliptical", {"axis_ratio": (0.2, 0.45)})),
    "edge-on": ("edge-on disk galaxy", ("edge_on", {})),
    "disk": ("disk galaxy", ("disk", {})),
    "spiral": ("spiral galaxy", ("spiral", {})),
    "barred spiral": ("barred spiral galaxy", ("barred_spiral", {})),
    "ring": ("ring galaxy", ("ring", {})),
    "merger": ("merging galaxies", ("merger", {})),
    "lens": ("gravitational lens", ("lens", {})),
    "irregular": ("irregular galaxy", ("irregular", {})),
}
COARSE5 = ["round smooth", "in-between smooth", "cigar-shaped smooth", "edge-on", "spiral"]


def _metrics(scores, rel):
    order = np.argsort(-scores, kind="stable")
    return ndcg_at_k(rel[order], rel, 10), recall_at_k(rel[order], rel, 100)


def _accuracy(pred, true, labels):
    pred, true = np.asarray(pred), np.asarray(true)
    per = [float((pred[true == c] == c).mean()) for c in labels if (true == c).any()]
    return float((pred == true).mean()), float(np.mean(per))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="../shared/data/gz2")
    ap.add_argument("--decals", default="../shared/data/decals_rings")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    gz2 = load_gz2(args.data)
    val = np.array([split_of(g) == "val" for g in gz2["galaxy_id"]])
    voted = np.asarray(gz2["n_vote_columns"]) > 0
    labels = np.array([gz2_label({c: gz2[c][i] for c in gz2.colnames}) or "" for i in range(len(gz2))], dtype=object)
    rows = np.flatnonzero(val & (voted | (labels != "")))
    t0 = time.time()
    images = load_images(list(gz2["path"][rows]), size=80)
    dec = load_decals(args.decals)
    dec_images = load_images(list(dec["path"]), size=80)
    print(f"loaded {len(rows)} val images + {len(dec)} DECaLS in {time.time() - t0:.0f} s")
    pos = {r: i for i, r in enumerate(rows)}
    results = {}
    for mdir in args.models:
        t0 = time.time()
        model = GalaxyModel.load(mdir)
        emb = model.embed_images(images)
        dec_emb = model.embed_images(dec_images)
        res = {"model": str(mdir), "sha256": model.fingerprint, "sketch": {}}
        # --- sketch search
        for c in CLASSES:
            if c.id not in SKETCH:
                continue
            kind, params = SKETCH[c.id]
            q = embed_symbol(kind, model, n=8, rng=0, **params)
            if c.source == "gz2":
                idx, rel = gz2_pool(gz2, c, val)  # the pools and relevances of `astro-semsearch evaluate`
                e = emb[[pos[i] for i in idx]]
            else:
                e, rel = dec_emb, np.asarray(dec[c.column], dtype=float)
            nd, rc = _metrics(e @ q, rel)
            ndr, rcr = expected_random(rel, 10, 100)
            res["sketch"][c.name] = {"ndcg10": nd, "recall100": rc, "ndcg10_random": ndr,
                                     "n_pool": int(len(rel)), "n_rel": int((rel > RELEVANT).sum())}
        # --- zero-shot classification (text) and symbol-prototype classification
        lab = labels[rows]
        has = lab != ""
        for name, classes in (("coarse5", COARSE5), ("all11", list(PROMPT))):
            m = has & np.isin(lab, classes)
            prompts = [PROMPT[c][0] for c in classes]
            tab = classify(images[m], prompts, model=model)
            back = dict(zip(prompts, classes))
            pred = [back[str(p)] for p in tab["best_label"]]
            acc, bal = _accuracy(pred, lab[m], classes)
            protos = np.stack([embed_symbol(PROMPT[c][1][0], model, n=8, rng=0, **PROMPT[c][1][1]) for c in classes])
            spred = np.array(classes, dtype=object)[(emb[m] @ protos.T).argmax(1)]
            sacc, sbal = _accuracy(spred, lab[m], classes)
            res[f"zeroshot_{name}"] = {"n": int(m.sum()), "accuracy": acc, "balanced_accuracy": bal,
                                       "symbol_accuracy": sacc, "symbol_balanced_accuracy": sbal,
                                       "majority_accuracy": float(max((lab[m] == c).mean() for c in classes))}
        res["seconds"] = time.time() - t0
        results[str(mdir)] = res
        print(json.dumps(res, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
