"""The ``astro-semsearch`` command.

Each pipeline stage registers its own subcommand (``add_cli(subparsers)`` in
its module); this file only collects them::

    astro-semsearch search "ring galaxy" -k 20 -o hits.ecsv
    astro-semsearch similar J000411.19+020924.0 -k 10
    astro-semsearch similar "150.1 2.2"           # RA Dec in degrees
    astro-semsearch crossmatch hits.ecsv lenscat --radius 2arcsec
    astro-semsearch index info
    astro-semsearch build-index ... / train ... / evaluate ...

Exit status: 0 on success, 2 for bad input (the message goes to stderr,
without a traceback), 1 for an unexpected error.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]

# Stage modules, in the order their subcommands are listed in ``--help``.
_STAGES = ("search", "crossmatch", "index", "build", "training", "evaluation")
# Which module defines which command: only that module is imported to run it
# (``index info`` should not pay for importing torch).
_COMMANDS = {"search": "search", "similar": "search", "crossmatch": "crossmatch", "index": "index",
             "build-index": "build", "train": "training", "evaluate": "evaluation"}


def build_parser(stages: Sequence[str] = _STAGES) -> argparse.ArgumentParser:
    """The argument parser with the subcommands of the given (available) stages."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="astro-semsearch",
        description="Semantic search over galaxy images: text queries, similar galaxies, cross-matches.",
    )
    parser.add_argument("--version", action="version", version=f"astro_semsearch {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in stages:
        try:
            module = importlib.import_module(f"astro_semsearch.{name}")
        except ImportError as exc:
            # A stage that is not installed (or not written yet) is skipped,
            # unless the failure is inside a module that does exist.
            if getattr(exc, "name", None) != f"astro_semsearch.{name}":
                raise
            continue
        add = getattr(module, "add_cli", None)
        if add is not None:
            add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    from .exceptions import AstroSemsearchError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser([_COMMANDS[command]] if command in _COMMANDS else _STAGES)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (AstroSemsearchError, ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as exc:
        if args.traceback:
            raise
        # Our own input errors: one clear line, no traceback.
        print(f"astro-semsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
