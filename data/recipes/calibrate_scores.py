"""Give a trained model its text bank and the thresholds of the match verdict (NoGoodMatchWarning).

    python data/recipes/calibrate_scores.py MODEL_DIR --data GZ2_DIR [--max-bank 4000] [--extra-wordings FILE]

1. The text bank: the MiniLM features of phrases of the kind the model was
   trained on (every concept wording, and a seeded random subset of the
   training captioner's captions of the train split and the lens captions),
   at most ``--max-bank`` of them, stored as float16 in
   ``text_bank.safetensors``.
2. ``min_text_similarity``: a query whose best similarity to the bank is below
   it is flagged as unlike anything the model knows. It is placed to flag at
   least ``--off-topic-flagged`` (default 90 %) of the off-topic calibration
   phrases, and higher, halfway between the off-topic phrases' 90th
   percentile and the on-topic ones' 2nd, when the on-topic phrases (the
   evaluation's phrasings ``eval_queries.toml`` and the phrases of
   ``data/recipes/calibration_phrases.toml``) lie clear of them. Terse
   jargon the model was never trained on ("BCG", "cD") is as unlike the bank
   as off-topic text, so the two overlap; the off-topic target then decides,
   and the on-topic fraction flagged is reported.

The evaluation's wording set (``eval_wordings.toml``), with its own off-topic
phrases, is not used here: the flagged fractions are measured on it
afterwards (``docs/evaluation.rst``). Writes the model directory in place
(the weights, hence the fingerprint, are unchanged).
"""
from __future__ import annotations

import argparse
import math
import sys
import tomllib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def bank_phrases(gz2_root: str, seed: int = 0, max_bank: int = 4000, extra_wordings: str | None = None) -> list[str]:
    """The phrases of the text bank: every concept wording, then training captions up to ``max_bank``.

    The concept wordings (`astro_semsearch.training.concepts.CONCEPTS`, one
    word to a sentence each, with the ``extra_wordings`` the model's stage 3
    learnt) are all kept: they are the vocabulary an astronomer types. The
    rest is a seeded random subset of the training
    captioner's captions of the train split and the lens captions. No phrase
    an evaluation asks for is in the bank (`held_out_texts`), as in training.
    """
    from astro_semsearch.datasets import load_gz2, split_of
    from astro_semsearch.training.concepts import CONCEPTS, held_out_texts, with_extra_wordings
    from astro_semsearch.training.data import get_captioner

    held = {t.lower() for t in held_out_texts()}
    concepts = with_extra_wordings(CONCEPTS, extra_wordings) if extra_wordings else CONCEPTS
    words = sorted({w for c in concepts for w in c.words if w.lower() not in held})
    captioner, caption_table, lens_captions = get_captioner()
    table = load_gz2(gz2_root)
    table = table[np.array([split_of(g) == "train" for g in table["galaxy_id"]])]
    caps = caption_table(table, captioner, 2, seed)
    rest = sorted(({c for cs in caps for c in cs} | set(lens_captions(np.random.default_rng(seed), 64)))
                  - set(words))
    rest = [c for c in rest if c.lower() not in held]
    n_rest = max(0, max_bank - len(words))
    if len(rest) > n_rest:
        rest = [rest[i] for i in np.sort(np.random.default_rng(seed).choice(len(rest), n_rest, replace=False))]
    return words + rest


def off_topic_threshold(sims_off: np.ndarray, fraction: float) -> float:
    """The threshold that flags (``similarity < threshold``) at least ``fraction`` of the off-topic phrases.

    Halfway between the k-th and (k+1)-th lowest similarities, k = ceil(fraction n).

    >>> off_topic_threshold(np.array([0.1, 0.2, 0.3, 0.4, 0.9]), 0.8)
    0.65
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the off-topic fraction to flag must be in (0, 1], got {fraction}")
    s = np.sort(np.asarray(sims_off, dtype=float))
    if s.size == 0:
        raise ValueError("no off-topic calibration phrases to place the threshold on")
    k = math.ceil(fraction * len(s) - 1e-9)
    return float(s[-1] + 1e-3) if k >= len(s) else round(float(0.5 * (s[k - 1] + s[k])), 6)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model directory (written in place)")
    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/)")
    p.add_argument("--max-bank", type=int, default=4000, help="phrases in the bank (float16, 768 bytes each)")
    p.add_argument("--extra-wordings", default=None,
                   help="the [text] extra_wordings file the model was trained with (its words join the bank)")
    p.add_argument("--off-topic-flagged", type=float, default=0.9,
                   help="the least fraction of the off-topic calibration phrases to flag")
    args = p.parse_args(argv)
    if not 0.0 < args.off_topic_flagged <= 1.0:
        p.error(f"--off-topic-flagged must be in (0, 1], got {args.off_topic_flagged}")

    from astro_semsearch.evaluation import load_queries
    from astro_semsearch.model import GalaxyModel, encode_sentences

    model = GalaxyModel.load(args.model)
    phrases = bank_phrases(args.data, max_bank=args.max_bank, extra_wordings=args.extra_wordings)
    model.text_bank = encode_sentences(phrases, batch_size=256, progress=True).astype(np.float16)
    with open(HERE / "calibration_phrases.toml", "rb") as f:
        cal = tomllib.load(f)
    on = sorted({q for qs in load_queries().values() for q in qs} | set(cal["on_topic"]))
    sims_on, sims_off = model.text_similarity(on), model.text_similarity(cal["off_topic"])
    threshold = max(off_topic_threshold(sims_off, args.off_topic_flagged),
                    0.5 * (float(np.quantile(sims_off, 0.9)) + float(np.quantile(sims_on, 0.02))))
    model.config["score_calibration"] = {
        "min_text_similarity": round(threshold, 4),
        "min_excess": None,
        "calibrated_on": {"text_bank_phrases": len(phrases), "on_topic_phrases": len(on),
                          **({"extra_wordings": args.extra_wordings} if args.extra_wordings else {}),
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
