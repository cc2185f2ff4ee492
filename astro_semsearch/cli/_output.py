"""Writing a command's result table: to a file in any format astropy writes, or fitted to the terminal."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from .._meta import identified_format, meta_kind, write_table
from ..exceptions import InvalidInputError

__all__ = ["emit_table", "refuse_existing", "output_format", "add_output_options"]

# Suffixes astropy does not identify by itself when writing, and the format meant.
_SUFFIX_FORMATS = {".vot": "votable", ".xml": "votable", ".txt": "ascii.fixed_width_two_line",
                   ".dat": "ascii.basic", ".tsv": "ascii.tab", ".json": "pandas.json", ".tex": "ascii.latex",
                   ".rst": "ascii.rst", ".ipac": "ascii.ipac"}


def _writable_formats() -> list[str]:
    from astropy.io import registry
    from astropy.table import Table

    import astropy.io.votable  # noqa: F401  (registers the VOTable writer)

    return sorted({str(r["Format"]) for r in registry.get_formats(Table) if r["Write"] == "Yes"})


def output_format(path, fmt: str | None) -> str | None:
    """The format a table is written to ``path`` in (``fmt``, else from the suffix); checked before any work.

    Returns None where astropy itself identifies the suffix (``.ecsv``,
    ``.fits``, ``.csv``, ``.html``...).
    """
    if path is None:
        return None
    known = _writable_formats()
    if fmt is not None:
        if fmt not in known:
            raise InvalidInputError(f"--format {fmt!r} is not a table format astropy writes; use one of "
                                    f"{', '.join(known)}")
        return fmt
    if identified_format(path):  # astropy knows the suffix (.ecsv, .fits, .fits.gz, .csv, .html, .parquet ...)
        return None
    suffix = Path(str(path).lower()).suffix
    if suffix in _SUFFIX_FORMATS:
        guess = _SUFFIX_FORMATS[suffix]
        if guess == "pandas.json":
            try:
                import pandas  # noqa: F401
            except ImportError:
                raise InvalidInputError("writing .json needs pandas (pip install pandas); or use .ecsv, which "
                                        "also keeps the provenance") from None
        return guess
    raise InvalidInputError(f"cannot tell the table format of {path} from its suffix {suffix or '(none)'!r}: give "
                            "--format (e.g. ecsv, fits, votable, csv, ascii.fixed_width_two_line) or a suffix such "
                            "as .ecsv, .fits, .vot, .csv, .txt")


def refuse_existing(path, overwrite: bool) -> None:
    """Refuse an existing output before any work is done (so a refused run writes nothing)."""
    if path is not None and Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (add --overwrite to replace it)")


def emit_table(table, output=None, overwrite: bool = False, summary: str | None = None,
               fmt: str | None = None) -> int:
    """Write ``table`` to ``output`` (every column, the provenance where the format keeps it), or print the
    columns that fit the terminal."""
    if output is None:
        from ..search.results import as_results

        as_results(table).pprint(max_lines=-1, max_width=shutil.get_terminal_size((100, 24)).columns)
        return 0
    refuse_existing(output, overwrite)
    fmt = output_format(output, fmt)
    write_table(table, output, overwrite=overwrite, format=fmt)
    print(summary or f"wrote {len(table)} rows to {output}")
    if table.meta and meta_kind(output, fmt) is None:
        print(f"note: {fmt or Path(str(output)).suffix} keeps no table metadata, so {output} holds the columns "
              "without the provenance (query, model, index); write .ecsv or .fits to keep it", file=sys.stderr)
    return 0


def add_output_options(p, what: str = "the result table") -> None:
    """``-o/--output``, ``--format`` and ``--overwrite``."""
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help=f"write {what} here instead of printing it; the format comes from the suffix (.ecsv, "
                        ".fits, .vot/.xml (VOTable) and .parquet keep the provenance; .csv, .txt, .html ... do not) "
                        "or --format")
    p.add_argument("--format", default=None, metavar="FORMAT",
                   help="table format for -o when the suffix does not say (any astropy format: ecsv, fits, "
                        "votable, csv, ascii.fixed_width_two_line ...)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
