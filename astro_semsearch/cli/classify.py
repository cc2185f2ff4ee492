"""``astro-semsearch classify``: zero-shot labels for image files, and ``astro-semsearch cite``."""
from __future__ import annotations

from pathlib import Path

from ._output import add_output_options, emit_table, output_format, refuse_existing

__all__ = ["add_parser"]


def _cli_classify(args) -> int:
    missing = [f for f in args.images if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"image file(s) not found: {', '.join(missing[:5])}")
    refuse_existing(args.output, args.overwrite)
    output_format(args.output, args.format)
    from ..classify import classify

    table = classify([str(f) for f in args.images], args.labels, model=args.model,
                     template=None if args.no_template else args.template)
    return emit_table(table, args.output, args.overwrite, fmt=args.format)


def _cli_cite(args) -> int:
    from ..citation import cite

    results = None
    if args.results is not None:
        from .._meta import read_results

        if not Path(args.results).is_file():
            raise FileNotFoundError(f"no result table at {args.results}")
        results = read_results(args.results)
    text = cite(results)
    if args.output:
        refuse_existing(args.output, args.overwrite)
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {text.count('@')} BibTeX entries to {args.output}")
    else:
        print(text, end="")
    return 0


def add_parser(subparsers) -> None:
    """Register ``classify`` and ``cite``."""
    p = subparsers.add_parser("classify", help="zero-shot probabilities of labels for galaxy images",
                              description="Give each image a probability for each label (softmax over the "
                                          "model's similarity to a sentence made from the label).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG or FITS)")
    p.add_argument("--labels", nargs="+", required=True, metavar="LABEL",
                   help="at least two labels, e.g. --labels spiral elliptical merger")
    p.add_argument("--model", default=None, help="model name or directory (default: conf.default_model)")
    p.add_argument("--template", default="a galaxy image showing {a} {}",
                   help="sentence a label is put into: {} is the label, {a} its article (default: "
                        "'a galaxy image showing {a} {}')")
    p.add_argument("--no-template", action="store_true", help="use the labels as written")
    add_output_options(p, "the probability table")
    p.set_defaults(func=_cli_classify)

    p = subparsers.add_parser("cite", help="BibTeX for this package, its methods and the data behind a result",
                              description="Print the BibTeX entries to cite for a result table (or for the "
                                          "package and its default data).")
    p.add_argument("results", nargs="?", default=None, help="a result table written by search/similar/crossmatch")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="write the BibTeX here (e.g. refs.bib)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(func=_cli_cite)
