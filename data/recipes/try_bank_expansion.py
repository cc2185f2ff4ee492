"""A measured idea that was not shipped: mix each text query with its nearest training phrases.

    python data/recipes/try_bank_expansion.py galclip-v2 --data GZ2_DIR [--k 8] [--weight 1]

A query's MiniLM features are compared with the model's text bank (the
phrases it was trained on, `~astro_semsearch.model.GalaxyModel.text_bank`);
the text-head embeddings of the ``k`` nearest are averaged and added to the
query's own embedding with ``weight``. The hope: a wording the head never
saw ("doughnut-shaped galaxy") borrows the direction of trained phrases that
MiniLM places near it. ``k = 8`` and ``weight = 1`` were fixed before the
first measurement. Prints the wording table
(`~astro_semsearch.evaluation.wordings.evaluate_wordings`) of the plain and
the expanded model side by side: mean and worst/best wording per class.

Measured 2026-12-02 on galclip-v2 (docs/evaluation.rst, "Wordings"): the
mean barely moves, worst/best rises in some classes and falls in others, so
it is not part of the search.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


class BankExpanded:
    """A model whose ``embed_text`` mixes in the text-head embeddings of the nearest bank phrases."""

    def __init__(self, model, k: int, weight: float):
        import torch

        if model.text_bank is None:
            raise SystemExit(f"model {model.name!r} has no text bank (run data/recipes/calibrate_scores.py)")
        self._model, self._k, self._weight = model, int(k), float(weight)
        self._bank = model.text_bank.astype(np.float32)
        with torch.no_grad():
            self._bank_head = model.encode_text_features(torch.from_numpy(self._bank)).numpy()

    def __getattr__(self, name):  # everything else is the wrapped model's
        return getattr(self._model, name)

    def embed_text(self, texts, batch_size: int = 256) -> np.ndarray:
        from astro_semsearch.model import encode_sentences

        texts = [texts] if isinstance(texts, str) else list(texts)
        own = self._model.embed_text(texts, batch_size=batch_size)
        feats = encode_sentences(texts, max_length=int(self._model.config["text_max_length"]))
        nearest = np.argsort(-(feats @ self._bank.T), axis=1)[:, : self._k]
        borrowed = self._bank_head[nearest].mean(axis=1)
        borrowed /= np.linalg.norm(borrowed, axis=1, keepdims=True)
        out = own + self._weight * borrowed
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model name or directory")
    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/)")
    p.add_argument("--decals", default=None, help="DECaLS ring directory (default: decals_rings beside --data)")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--weight", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.k < 1 or args.weight < 0:
        p.error("--k must be >= 1 and --weight >= 0")

    from pathlib import Path

    from astro_semsearch.evaluation.wordings import evaluate_wordings
    from astro_semsearch.model import load_model

    decals = args.decals or str(Path(args.data).parent / "decals_rings")
    model = load_model(args.model)
    plain = evaluate_wordings(model, gz2_root=args.data, decals_root=decals)
    expanded = evaluate_wordings(BankExpanded(model, args.k, args.weight), gz2_root=args.data, decals_root=decals)
    print(f"{'class':32s} {'mean':>6s} {'-> exp':>6s} {'worst/best':>10s} {'-> exp':>6s}")
    for a, b in zip(plain, expanded):
        print(f"{a['class']:32s} {a['mean']:6.3f} {b['mean']:6.3f} {a['worst_over_best']:10.3f} "
              f"{b['worst_over_best']:6.3f}")
    print(f"{'mean over classes':32s} {np.mean(plain['mean']):6.3f} {np.mean(expanded['mean']):6.3f}   "
          f"classes with worst/best >= 0.6: {int(np.sum(plain['worst_over_best'] >= 0.6))} -> "
          f"{int(np.sum(expanded['worst_over_best'] >= 0.6))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
