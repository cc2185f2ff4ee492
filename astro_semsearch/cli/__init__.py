"""The ``astro-semsearch`` command.

One module per command group, each with ``add_parser(subparsers)``: the
parser is built from all of them (they import nothing heavy), and only the
command that runs imports what it needs, so ``--help``, ``--version`` and
``index info`` never import torch::

    astro-semsearch search "ring galaxy" -k 20 -o hits.ecsv
    astro-semsearch similar J000411.19+020924.0 -k 10
    astro-semsearch similar "150.1 2.2"           # RA Dec in degrees
    astro-semsearch crossmatch hits.ecsv lenscat --radius 2arcsec
    astro-semsearch index info
    astro-semsearch build-index ... / train ... / evaluate ...
    astro-semsearch prepare-text-encoder          # once, with astro_semsearch[fast]

Exit status: 0 on success; 2 for bad input, with a one-line message on
stderr (the package's own errors, file errors and unit errors); anything else
is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import build, classify, crossmatch, evaluate, index, prepare, search, train

__all__ = ["main", "build_parser"]

# In the order their subcommands are listed in ``--help``.
_GROUPS = (search, crossmatch, classify, index, build, train, evaluate, prepare)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="astro-semsearch",
        description="Semantic search over galaxy images: text queries, similar galaxies, cross-matches.",
    )
    parser.add_argument("--version", action="version", version=f"astro_semsearch {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.add_parser(sub)
    _remember_parsers(sub)
    return parser


def _remember_parsers(subparsers) -> None:
    """Give each (sub)command's namespace its own parser, so a mistyped option is reported by it."""
    for p in subparsers.choices.values():
        p.set_defaults(_parser=p)
        for action in p._actions:  # nested commands (index info, ...); their defaults win over their parent's
            if isinstance(action, argparse._SubParsersAction):
                _remember_parsers(action)


def _reject_unknown(parser, args, extra: list[str]) -> None:
    """Report unrecognised arguments with the nearest option, through the parser it belongs to.

    The subcommand's parser (its usage) by default; the top-level parser when
    the nearest option is a top-level one (``--tracebak``).
    """
    import difflib

    sub = getattr(args, "_parser", None) or parser
    candidates = {o: sub for o in sub._option_string_actions}
    candidates.update({o: parser for o in parser._option_string_actions if o not in ("-h", "--help")})
    message, owner = f"unrecognized arguments: {' '.join(extra)}", sub
    for word in extra:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], list(candidates), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {close[0]}?)"
                owner = candidates[close[0]]
                break
    owner.error(message)


def _user_errors() -> tuple[type[BaseException], ...]:
    """What counts as bad input: the package's own errors, file errors, wrong units."""
    from astropy.units import UnitsError

    from ..exceptions import AstroSemsearchError

    return AstroSemsearchError, OSError, UnitsError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if extra:
        _reject_unknown(parser, args, extra)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except _user_errors() as exc:
        if args.traceback:
            raise
        notes = "".join(f"; {n}" for n in getattr(exc, "__notes__", ()))  # what to do next, where a stage said
        print(f"astro-semsearch {args.command}: error: {exc}{notes}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
