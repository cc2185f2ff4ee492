"""How far the evaluation wordings sit from the strings the text head was trained on.

    python data/recipes/text_neighbour_distances.py runs/galclip-v3

Reads a training run's ``caption_strings.txt`` and its cached MiniLM features
(``caption_features_*.npy``), embeds the evaluation wordings with the same
frozen MiniLM, and prints, in MiniLM's unit feature space, the median
Euclidean distance from each wording to its nearest training string, beside
the median distance from a sampled training string to its nearest other one.
docs/training.rst ("Jittered text features") quotes them for the run that
became galclip-v3: 0.29 between training strings; 0.43, 0.50 and 0.53 for
the three evaluation sets.
A few seconds on two CPU cores.
"""
from __future__ import annotations

import argparse
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np

from astro_semsearch.model.text import encode_sentences


def _wordings(name: str) -> list[str]:
    data = tomllib.loads((resources.files("astro_semsearch") / "data" / name).read_text(encoding="utf-8"))
    if "query" in data:  # eval_wordings*.toml: [[query]] tables
        return list(dict.fromkeys(q["text"] for q in data["query"]))
    return list(dict.fromkeys(s for v in data.values() if isinstance(v, list) for s in v))


def nearest_distances(sim: np.ndarray) -> np.ndarray:
    """Euclidean distance between unit vectors from each row's largest cosine similarity."""
    return np.sqrt(np.clip(2.0 - 2.0 * sim.max(axis=1), 0.0, None))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a training run directory (astro-semsearch train --out)")
    p.add_argument("--sample", type=int, default=2000, help="training strings sampled for their own spacing")
    args = p.parse_args(argv)
    strings = (args.run / "caption_strings.txt").read_text(encoding="utf-8").splitlines()
    cached = sorted(args.run.glob("caption_features_*.npy"))
    feats = next((f for f in map(np.load, cached) if len(f) == len(strings)), None)
    if feats is None:
        raise SystemExit(f"{args.run} has no caption_features_*.npy for its {len(strings)} caption strings")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(feats), size=min(args.sample, len(feats)), replace=False)
    # the sampled strings against all of them, their own row excluded
    sim = feats[pick] @ feats.T
    sim[np.arange(len(pick)), pick] = -1.0
    spacing = nearest_distances(sim)
    print(f"training strings ({len(strings)}): median distance to the nearest other one {np.median(spacing):.2f}")
    for name in ("eval_queries.toml", "eval_wordings.toml", "eval_wordings_third.toml"):
        texts = _wordings(name)
        d = nearest_distances(encode_sentences(texts, batch_size=64, device="cpu") @ feats.T)
        print(f"{name} ({len(texts)} wordings): median distance to the nearest training string {np.median(d):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
