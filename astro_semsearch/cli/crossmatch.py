"""``astro-semsearch crossmatch``: a result table against a catalogue."""
from __future__ import annotations

import sys
from pathlib import Path

from ..exceptions import InvalidInputError
from ._output import add_output_options, emit_table, output_format, refuse_existing

__all__ = ["add_parser"]


def _cli_crossmatch(args) -> int:
    from astropy import units as u

    from .._meta import read_results
    from ..crossmatch import crossmatch

    try:
        radius = u.Quantity(args.radius)
    except (TypeError, ValueError):
        raise InvalidInputError(f"--radius {args.radius!r} is not an angle such as 2arcsec or 0.5arcmin") from None
    if radius.unit == u.dimensionless_unscaled:
        raise InvalidInputError(f"--radius {args.radius!r} has no unit; write e.g. 2arcsec")
    refuse_existing(args.output, args.overwrite)
    output_format(args.output, args.format)
    if not Path(args.results).is_file():
        raise FileNotFoundError(f"no result table at {args.results}")
    results = read_results(args.results)
    out = crossmatch(
        results,
        args.catalog,
        radius,
        nearest=not args.all,
        join_type=args.join,
        ra_column=args.ra_column,
        dec_column=args.dec_column,
    )
    xm = out.meta["crossmatch"]
    n_pairs = xm["n_matched"]
    n_results = xm.get("n_results_matched", n_pairs)
    matched = f"{n_results} of {len(results)} results matched" + (f", {n_pairs} pairs" if n_pairs != n_results else "")
    if args.output is None:
        # On the terminal, what matched comes first: the separation and the catalogue's columns, then the rest.
        print(f"{matched} within {radius:g}", file=sys.stderr)
        added = [c for c in out.colnames if c not in results.colnames]
        lead = [c for c in ("rank", "object_id") if c in out.colnames]
        order = lead + ["separation"] + [c for c in added if c != "separation"]
        out = out[order + [c for c in out.colnames if c not in order]]
    summary = f"wrote {len(out)} rows ({matched}) to {args.output}"
    return emit_table(out, args.output, args.overwrite, summary, fmt=args.format)


def add_parser(subparsers) -> None:
    """Register the ``crossmatch`` subcommand."""
    p = subparsers.add_parser("crossmatch", help="cross-match a result table with a catalogue")
    p.add_argument("results", help="result table file (e.g. hits.ecsv)")
    p.add_argument("catalog", help="catalogue file (anything astropy reads), 'lenscat', or a VizieR catalogue id "
                                   "such as J/ApJS/243/17 (network)")
    p.add_argument("--radius", default="1arcsec", help="match radius with unit (default 1arcsec)")
    p.add_argument("--all", action="store_true", help="every counterpart within the radius, not only the nearest")
    p.add_argument("--join", choices=("left", "inner"), default="left", help="keep unmatched results (left) or not")
    p.add_argument("--ra-column", default=None, help="catalogue RA column (default: auto-detect)")
    p.add_argument("--dec-column", default=None, help="catalogue Dec column (default: auto-detect)")
    add_output_options(p, "the cross-matched table")
    p.set_defaults(func=_cli_crossmatch)
