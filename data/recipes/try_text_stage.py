"""Train and measure the stage-3 variants of docs/training.rst ("Stage 3: more words for the text head").

    python data/recipes/try_text_stage.py --data GZ2_DIR [--out runs/text-stage] [--only anchor10 ...]

Each variant is ``data/recipes/galclip-v2-vocabulary.toml`` (stage 3 from
galclip-v2) with the overrides below, trained into ``--out/NAME`` (a finished
run is reused, and the decoded images and caption features are shared
between variants), then measured on the validation split: the main table
(`astro_semsearch.evaluation.evaluate`) and both wording sets
(`~astro_semsearch.evaluation.wordings.evaluate_wordings`). It prints one row
a variant, galclip-v2 first: mean text nDCG@10, rows within 0.05 of the
probe, rows where text beats image similarity, and per wording set the
classes whose worst wording is at least 0.6 x the best and the mean. About 7
minutes of training and 4 of measuring a variant on two CPU cores.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: name -> overrides of galclip-v2-vocabulary.toml (the recipe itself is "anchor10").
VARIANTS = {
    "no-anchor": {"text": {"anchor_weight": 0.0}},
    "no-anchor-6-epochs-lr-1e-3": {"text": {"anchor_weight": 0.0, "epochs": 6, "lr": 1e-3}},
    "anchor10": {},
    "anchor30": {"text": {"anchor_weight": 30.0}},
    "anchor100": {"text": {"anchor_weight": 100.0}},
}


def _share_caches(out: Path, run: Path) -> None:
    """Hard-link the decoded images and caption features earlier variants wrote (they do not depend on
    the variant), so each run does not decode 28,000 images again."""
    run.mkdir(parents=True, exist_ok=True)
    for f in out.glob("*/images_*.npy"):
        if not (run / f.name).exists():
            os.link(f, run / f.name)
    for f in out.glob("*/caption_features_*.npy"):
        if not (run / f.name).exists():
            os.link(f, run / f.name)


def measure(model, gz2: str, decals: str) -> list:
    from astro_semsearch.evaluation import evaluate
    from astro_semsearch.evaluation.render import summary
    from astro_semsearch.evaluation.wordings import THIRD_WORDINGS, evaluate_wordings

    s = summary(evaluate(model, gz2_root=gz2, decals_root=decals))
    row = [s["mean_text"], s["text_within_0.05_of_probe"], s["text_beats_image"]]
    for wordings in (None, THIRD_WORDINGS):
        t = evaluate_wordings(model, wordings=wordings, gz2_root=gz2, decals_root=decals)
        row += [int(np.sum(t["worst_over_best"] >= 0.6)), float(np.mean(t["mean"]))]
    return row


def variant_args(doc: str, out: str, variants, argv=None) -> argparse.Namespace:
    """The command line of a variants recipe (this one and ``try_readout.py``); ``decals`` filled in."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/)")
    p.add_argument("--decals", default=None, help="DECaLS ring directory (default: decals_rings beside --data)")
    p.add_argument("--out", default=out, help="where the variants are trained")
    p.add_argument("--only", nargs="+", choices=sorted(variants), help="just these variants")
    args = p.parse_args(argv)
    args.decals = args.decals or str(Path(args.data).parent / "decals_rings")
    return args


def print_rows(title: str, rows: list) -> None:
    """One line a variant: mean text, rows within the probe / beating image search, both wording sets."""
    print(f"{title:28s} {'mean':>6s} {'probe':>6s} {'image':>6s} {'first':>6s} {'mean':>6s} {'third':>6s} "
          f"{'mean':>6s}")
    for r in rows:
        print(f"{r[0]:28s} {r[1]:6.3f} {r[2]:6d} {r[3]:6d} {r[4]:6d} {r[5]:6.3f} {r[6]:6d} {r[7]:6.3f}")


def main(argv=None) -> int:
    args = variant_args(__doc__, "runs/text-stage", VARIANTS, argv)
    decals = args.decals

    from astro_semsearch.model import load_model
    from astro_semsearch.training.config import load_config
    from astro_semsearch.training.train import train

    out = Path(args.out)
    rows = [["galclip-v2 (no stage 3)", *measure(load_model("galclip-v2"), args.data, decals)]]
    for name in args.only or VARIANTS:
        run = out / name
        _share_caches(out, run)
        cfg = load_config(HERE / "galclip-v2-vocabulary.toml")
        cfg["data"]["gz2_root"], cfg["model"]["name"] = args.data, f"galclip-v2-{name}"
        cfg["text"].update({"extra_wordings": str(HERE / "extra_wordings.toml"), **VARIANTS[name].get("text", {})})
        rows.append([name, *measure(load_model(train(cfg, run)), args.data, decals)])
    print_rows("stage 3", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
