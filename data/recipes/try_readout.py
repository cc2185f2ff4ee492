"""Train and measure the stage-4 variants of docs/training.rst ("Stage 4: the read-out").

    python data/recipes/try_readout.py --data GZ2_DIR [--out runs/readout] [--only pull6 ...]

Each variant is ``data/recipes/galclip-v4.toml`` (stage 4 alone, from
galclip-v3's weights), or the recipe its ``"recipe"`` names, with the
overrides below, trained into ``--out/NAME``
(a finished run is reused; decoded images and caption features are shared
between variants), then measured on the validation split as
``try_text_stage.py`` measures: mean text nDCG@10, rows within 0.05 of the
probe, rows where text beats image similarity, and per wording set the
classes whose worst wording is at least 0.6 x the best and the mean. About
4 minutes of training and 5 of measuring a variant on two CPU cores (the
``vocabulary`` ones about 6 of training, with stage 3; a ``seed1`` variant
also embeds its own caption strings, a few minutes more). ``shipped``
(galclip-v4), ``vocabulary`` (``data/recipes/galclip-v4-vocabulary.toml``) and
``vocabulary-captions`` (the default, ``data/recipes/galclip-v5.toml``, but
for its name) have the full ``evaluate_release.py`` protocol in their
recipes' headers.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from try_text_stage import _share_caches, measure, print_rows, variant_args  # noqa: E402

#: name -> overrides of galclip-v4.toml (or of the recipe that "recipe" names).
VARIANTS = {
    "shipped": {},
    "noise1": {"readout": {"text_noise": 1.0}},
    "pull6": {"readout": {"pull": 0.6}},
    "seed1": {"train": {"seed": 1}},
    # Stage 3 (the second author's extra wordings) before the read-out, and its second seed.
    "vocabulary": {"recipe": "galclip-v4-vocabulary.toml"},
    "vocabulary-seed1": {"recipe": "galclip-v4-vocabulary.toml", "train": {"seed": 1}},
    # ... with the sentence captions' anchors half-way to their galaxies' read-out ([readout] caption_pull).
    "vocabulary-captions": {"recipe": "galclip-v4-vocabulary.toml", "readout": {"caption_pull": 0.5}},
    "vocabulary-captions-seed1": {"recipe": "galclip-v4-vocabulary.toml", "readout": {"caption_pull": 0.5},
                                  "train": {"seed": 1}},
    "vocabulary-captions1": {"recipe": "galclip-v4-vocabulary.toml", "readout": {"caption_pull": 1.0}},
}


def main(argv=None) -> int:
    args = variant_args(__doc__, "runs/readout", VARIANTS, argv)

    from astro_semsearch.model import load_model
    from astro_semsearch.training.train import train

    out = Path(args.out)
    rows = []
    for name in args.only or VARIANTS:
        run = out / name
        _share_caches(out, run)
        overrides = dict(VARIANTS[name])
        cfg = tomllib.loads((HERE / overrides.pop("recipe", "galclip-v4.toml")).read_text())
        for section, values in overrides.items():
            cfg.setdefault(section, {}).update(values)
        if "extra_wordings" in cfg.get("text", {}):  # the recipes name it from the repository root
            cfg["text"]["extra_wordings"] = str(HERE / Path(cfg["text"]["extra_wordings"]).name)
        cfg.setdefault("data", {})["gz2_root"] = args.data
        cfg["model"]["name"] = f"galclip-v4-{name}"
        rows.append([name, *measure(load_model(train(cfg, run)), args.data, args.decals)])
    print_rows("stage 4", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
