"""``astro-semsearch evaluate``: search quality on a labelled split."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate, to_markdown, to_rst
    from ..evaluation.render import format_value

    decals = args.decals
    if decals is None:
        guess = Path(args.data).parent / "decals_rings"
        decals = guess if (guess / "labels.csv").is_file() else None
    table = evaluate(args.model, gz2_root=args.data, decals_root=decals, split=args.split, queries=args.queries,
                     seed=args.seed, classes=args.classes, progress=not args.quiet,
                     rerank=args.rerank, rerank_top_n=args.rerank_top_n, feedback_marks=args.feedback_marks,
                     probe=not args.no_probe)
    table.pprint_all()
    from ..evaluation.render import summary

    print("summary: " + ", ".join(f"{k} {format_value(v)}" for k, v in summary(table).items()
                                  if not isinstance(v, dict)))
    if args.per_query:
        for cls, scores in table.meta["text_ndcg10_per_query"].items():
            for query, v in scores.items():
                print(f"  {cls:>26s}  {format_value(v):>6s}  {query}")
    print(f"model {table.meta['model']} ({table.meta['model_sha256'][:12]}), split {table.meta['split']}, "
          f"{table.meta['run_time_s']} s")
    if args.wordings is not None:
        from ..evaluation.wordings import evaluate_wordings

        words = evaluate_wordings(args.model, wordings=args.wordings or None, gz2_root=args.data, decals_root=decals,
                                  split=args.split, seed=args.seed, classes=args.classes, progress=not args.quiet)
        print("\nwording robustness (nDCG@10 per wording; negated wordings against the opposite answer):")
        words.pprint_all()
        if args.out:
            wout = Path(args.out).with_name(Path(args.out).stem + "_wordings.ecsv")
            words.write(wout, format="ascii.ecsv", overwrite=True)
            print(f"wrote {wout}", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.write(out, format="ascii.ecsv", overwrite=True)
        out.with_suffix(".md").write_text(to_markdown(table))
        out.with_suffix(".rst").write_text(to_rst(table))
        print(f"wrote {out}, {out.with_suffix('.md')}, {out.with_suffix('.rst')}", file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    """Register ``astro-semsearch evaluate``."""
    p = subparsers.add_parser(
        "evaluate", help="measure nDCG@10 / recall@100 of text and image search on a labelled split",
        description="Evaluate a model on the Galaxy Zoo 2 validation split (and the DECaLS ring set): "
                    "nDCG@10 and recall@100 for text search, image-similarity search and a random ranking.")
    from ..evaluation.protocol import CLASSES  # the class ids for the help text (no torch)

    p.add_argument("--data", required=True, help="Galaxy Zoo 2 directory (labels.csv + images/), "
                                                 "e.g. ../shared/data/gz2")
    p.add_argument("--model", default=None, help="model name or directory (default: the shipped model)")
    p.add_argument("--out", default=None, help="write the table here as ECSV (plus .md and .rst beside it)")
    p.add_argument("--decals", default=None, help="DECaLS ring directory (default: decals_rings beside --data)")
    p.add_argument("--queries", default=None, help="TOML file of query phrasings per class")
    p.add_argument("--split", default="val", choices=["val", "train"],
                   help="the Galaxy Zoo 2 split to rank (default val: never trained on; the probe fits on the other)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds which lens hosts get arcs, the arcs themselves and image-query tie-breaks (default 0)")
    p.add_argument("--no-probe", action="store_true",
                   help="skip the probe columns (a linear read-out fitted on the other split; ~40 s more)")
    p.add_argument("--classes", nargs="+", default=None, metavar="ID",
                   help=f"only these class ids ({', '.join(c.id for c in CLASSES)})")
    p.add_argument("--wordings", nargs="?", const="", default=None, metavar="TOML",
                   help="also measure wording robustness on a wording set (default: the shipped "
                        "eval_wordings.toml): mean and worst wording per class, negated wordings")
    p.add_argument("--per-query", action="store_true", help="also print the text nDCG@10 of every query phrasing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--rerank", nargs="+", default=None, metavar="NAME[:k=v,...]",
                   help="also measure text search re-ranked by these (expansion, galaxidnet, feedback; "
                        "options e.g. expansion:n=5,weight=0.3)")
    p.add_argument("--rerank-top-n", type=int, default=100, metavar="N",
                   help="how many text hits a re-ranker sees (default 100)")
    p.add_argument("--feedback-marks", type=int, default=10, metavar="M",
                   help="the simulated feedback user marks the first M hits (default 10)")
    p.set_defaults(func=_run)
