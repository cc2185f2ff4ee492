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

from astropy.table import Table

__all__ = ["Results", "as_results"]


class Results(Table):
    """A search result table; see the module docstring for how it prints."""

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
            width = max((len(s) for s in lines), default=len(name)) + (1 if names else 0)
            if names and used + width > max_width:
                break
            names.append(name)
            used += width
        return names or list(self.colnames[:1])

    def pformat(self, max_lines=-1, max_width=-1, **kwargs):
        if kwargs.get("html"):
            return super().pformat(max_lines=max_lines, max_width=max_width, **kwargs)
        width = self._width(max_width)
        with self.pprint_include_names.set(self._fitting_names(width)):
            return super().pformat(max_lines=max_lines, max_width=width, **kwargs)

    def pprint(self, max_lines=None, max_width=None, **kwargs):
        width = self._width(max_width)
        with self.pprint_include_names.set(self._fitting_names(width)):
            return super().pprint(max_lines=max_lines, max_width=width, **kwargs)

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
