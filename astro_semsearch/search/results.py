"""The result table: an `astropy.table.Table` that prints what matters in the width there is.

Search results carry their own columns (``rank, object_id, ra, dec, score,
percentile, excess``), the index's catalogue columns and a long
``viewer_url``. Printed as a plain `~astropy.table.Table`, a terminal shows
the first and the *last* columns and elides the middle, which hides the
scores behind the catalogue. A `Results` table prints its leading columns
first and adds the others only while they fit the width (the terminal's, or
``max_width``); ``viewer_url`` is never printed as text (astropy's
``pprint_exclude_names``), but stays in the table, in files and in HTML.
Everything else is an ordinary Table: writing, slicing, cross-matching.

Examples
--------
>>> from astro_semsearch.search.results import Results
>>> t = Results({"rank": [1], "object_id": ["J1"], "score": [0.5], "a_very_long_catalogue_column": [1.0]})
>>> print(t.pformat(max_width=30)[0])
rank object_id score
"""
from __future__ import annotations

import shutil

from astropy.io.registry import UnifiedReadWriteMethod
from astropy.table import Table
from astropy.table.connect import TableWrite

__all__ = ["Results", "as_results"]


class _ResultsWrite(TableWrite):
    """`astropy.table.Table.write`, keeping the provenance where the format can hold it.

    ECSV, Parquet and HDF5 keep ``meta`` as it is; FITS (header cards) and
    VOTable (``INFO`` elements) keep each provenance section as JSON text
    (read back by `~astro_semsearch.cite` and the other readers of result
    tables); CSV and the other text formats keep no table metadata.
    """

    def __call__(self, *args, **kwargs):
        from .._meta import write_table

        write_table(self._instance, *args, **kwargs)


class Results(Table):
    """A search result table; see the module docstring for how it prints."""

    write = UnifiedReadWriteMethod(_ResultsWrite)

    @staticmethod
    def _width(max_width: int | None) -> int:
        """``max_width``, or the terminal's width (100 when there is no terminal)."""
        if max_width is None or max_width < 0:
            return shutil.get_terminal_size((100, 24)).columns
        return int(max_width)

    def _fitting_names(self, max_width: int) -> list[str]:
        """The leading printable columns whose rendered widths fit ``max_width`` (at least the first)."""
        excluded = set(self.pprint_exclude_names() or ())
        names, used = [], 0
        for name in self.colnames:
            if name in excluded:
                continue
            col = self[name]
            if getattr(col, "ndim", 1) > 1:
                continue
            lines = col.pformat(max_lines=12, show_unit=True, show_name=True)
            # A long column ends in "Length = N rows", wider than its values: not part of its width.
            width = max((len(s) for s in lines if not s.startswith("Length = ")), default=len(name)) + \
                (1 if names else 0)
            if names and used + width > max_width:
                break
            names.append(name)
            used += width
        return names or list(self.colnames[:1])

    # Table's own positional order is kept: astropy calls these positionally (pprint_all, pformat_all).
    def pformat(self, max_lines=-1, max_width=-1, *args, **kwargs):
        if kwargs.get("html", args[3] if len(args) > 3 else False):  # html is Table.pformat's 6th argument
            return super().pformat(max_lines, max_width, *args, **kwargs)
        width = self._width(max_width)
        with self.pprint_include_names.set(self._fitting_names(width)):
            return super().pformat(max_lines, width, *args, **kwargs)

    def pprint(self, max_lines=None, max_width=None, *args, **kwargs):
        width = self._width(max_width)
        with self.pprint_include_names.set(self._fitting_names(width)):
            return super().pprint(max_lines, width, *args, **kwargs)

    # "_all" is every row and every column (but viewer_url), as for a Table: no fitting to the terminal.
    def pformat_all(self, max_lines=-1, max_width=-1, *args, **kwargs):
        return Table.pformat(self, max_lines, max_width, *args, **kwargs)

    def pprint_all(self, max_lines=-1, max_width=-1, *args, **kwargs):
        return Table.pprint(self, max_lines, max_width, *args, **kwargs)

    def _base_repr_(self, html=False, descr_vals=None, max_width=None, **kwargs):
        if html:
            return super()._base_repr_(html=html, descr_vals=descr_vals, max_width=max_width, **kwargs)
        width = self._width(max_width)
        with self.pprint_include_names.set(self._fitting_names(width)):
            return super()._base_repr_(html=html, descr_vals=descr_vals, max_width=width, **kwargs)


def as_results(table: Table) -> Results:
    """``table`` as a `Results` table (its data not copied), ``viewer_url`` hidden from text output."""
    out = table if isinstance(table, Results) else Results(table, copy=False)
    if "viewer_url" in out.colnames:
        out.pprint_exclude_names.add("viewer_url")
    return out
