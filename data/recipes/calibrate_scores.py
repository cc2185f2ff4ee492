"""Give a trained model its text bank and the thresholds of the match verdict (NoGoodMatchWarning).

    python data/recipes/calibrate_scores.py MODEL_DIR --data GZ2_DIR [--max-bank 8000]

1. The text bank: the MiniLM features of the phrases the model was trained
   on (the training captioner's captions of the train split, and the lens
   captions), deduplicated, at most ``--max-bank`` of them (a seeded random
   subset), stored as float16 in ``text_bank.safetensors``.
2. ``min_text_similarity``: a query whose best similarity to the bank is below
   it is flagged as unlike anything the model knows. It is halfway between
   the 90th percentile of the off-topic calibration phrases and the 2nd
   percentile of the on-topic ones (the evaluation's phrasings
   ``eval_queries.toml`` and the phrases of
   ``data/recipes/calibration_phrases.toml``).

The evaluation's wording set (``eval_wordings.toml``), with its own off-topic
phrases, is not used here: the flagged fractions are measured on it
afterwards (``docs/evaluation.rst``). Writes the model directory in place
(the weights, hence the fingerprint, are unchanged).
"""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def bank_phrases(gz2_root: str, seed: int = 0) -> list[str]:
    from astro_semsearch.datasets import load_gz2, split_of
    from astro_semsearch.training.data import get_captioner

    captioner, caption_table, lens_captions = get_captioner()
    table = load_gz2(gz2_root)
    table = table[np.array([split_of(g) == "train" for g in table["galaxy_id"]])]
    caps = caption_table(table, captioner, 2, seed)
    phrases = {c for cs in caps for c in cs} | set(lens_captions(np.random.default_rng(seed), 64))
    return sorted(phrases)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model directory (written in place)")
    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/)")
    p.add_argument("--max-bank", type=int, default=8000)
    p.add_argument("--flag-at-most", type=float, default=0.02, help="the on-topic percentile the threshold sits under")
    args = p.parse_args(argv)

    from astro_semsearch.evaluation import load_queries
    from astro_semsearch.model import GalaxyModel, encode_sentences

    model = GalaxyModel.load(args.model)
    phrases = bank_phrases(args.data)
    if len(phrases) > args.max_bank:
        keep = np.sort(np.random.default_rng(0).choice(len(phrases), args.max_bank, replace=False))
        phrases = [phrases[i] for i in keep]
    model.text_bank = encode_sentences(phrases, batch_size=256, progress=True).astype(np.float16)
    with open(HERE / "calibration_phrases.toml", "rb") as f:
        cal = tomllib.load(f)
    on = sorted({q for qs in load_queries().values() for q in qs} | set(cal["on_topic"]))
    sims_on, sims_off = model.text_similarity(on), model.text_similarity(cal["off_topic"])
    threshold = 0.5 * (float(np.quantile(sims_off, 0.9)) + float(np.quantile(sims_on, args.flag_at_most)))
    model.config["score_calibration"] = {
        "min_text_similarity": round(threshold, 4),
        "min_excess": None,
        "calibrated_on": {"text_bank_phrases": len(phrases), "on_topic_phrases": len(on),
                          "off_topic_phrases": len(cal["off_topic"]),
                          "on_topic_flagged": round(float((sims_on < threshold).mean()), 4),
                          "off_topic_flagged": round(float((sims_off < threshold).mean()), 4),
                          "recipe": "data/recipes/calibrate_scores.py"},
    }
    model.save(args.model, overwrite=True)
    print(f"text bank: {len(phrases)} phrases; min_text_similarity {threshold:.3f}: "
          f"{(sims_on < threshold).mean():.1%} of {len(on)} on-topic and {(sims_off < threshold).mean():.1%} of "
          f"{len(cal['off_topic'])} off-topic calibration phrases flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
