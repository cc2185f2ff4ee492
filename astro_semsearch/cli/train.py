"""``astro-semsearch train``: train the aligned image-text model."""
from __future__ import annotations

import argparse

__all__ = ["add_parser"]

DEFAULT_CONFIG_PATH = "astro_semsearch/training/default_config.toml"


def _cli(args) -> int:
    from ..training.config import load_config
    from ..training.train import train

    config = load_config(args.config)
    if args.data:
        config["data"]["gz2_root"] = args.data
    path = train(config, args.out, resume=args.resume, device=args.device)
    print(path)
    return 0


def add_parser(subparsers) -> None:
    """Register ``astro-semsearch train``."""
    p = subparsers.add_parser(
        "train", help="train the aligned image-text model",
        description="Train the aligned image-text model (SimCLR pretraining, then caption alignment).",
    )
    p.add_argument("--config", default=None,
                   help=f"TOML config (default: the shipped {DEFAULT_CONFIG_PATH})")
    p.add_argument("--out", required=True, help="output directory (checkpoints, log, model/)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="Galaxy Zoo 2 directory (labels.csv + images/); default: the config's [data] gz2_root, "
                        "else conf.gz2_root")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the last checkpoint in --out (default: yes)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=_cli)
