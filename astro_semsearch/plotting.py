"""A montage of search results, ready for a paper figure.

`plot_results` draws one panel per hit: the galaxy's thumbnail (see
`~astro_semsearch.thumbnails.result_images` for where it comes from), its
rank, its score (and ``rerank_score`` when the table was re-ranked) and its
identifier. It returns a `matplotlib.figure.Figure` made without pyplot, so
nothing is left in pyplot's list of open figures and no window pops up; save
it with ``fig.savefig("hits.pdf")``. In a Jupyter notebook with the inline
backend, the figure shows when it is the cell's last expression.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from astro_semsearch.plotting import plot_results
>>> hits = Table({"rank": [1, 2], "object_id": ["a", "b"], "ra": [1.0, 2.0], "dec": [0.0, 0.0],
...               "score": [0.42, 0.40]})
>>> grey = np.full((32, 32, 3), 128, np.uint8)
>>> fig = plot_results(hits, images={"a": grey, "b": grey}, ncols=2)
>>> [ax.get_label() for ax in fig.axes]
['a', 'b']
>>> fig.axes[0].get_title()
'#1  score 0.420\\na'
"""
from __future__ import annotations

from typing import Any, Callable

from astropy.table import Row, Table

from ._validate import check_int
from ._validate import finite_or_none as _number
from .exceptions import InvalidInputError, InvalidTypeError

__all__ = ["plot_results"]


def _panel_title(row, *, show_score: bool = True, label: str | Callable | None = "object_id",
                fmt: str = ".3f") -> str:
    """The text above a result's panel: rank and scores, then the label (shared with the HTML report)."""
    first = []
    cols = row.colnames
    if "rank" in cols:
        first.append(f"#{row['rank']}")
    if show_score:
        rr = _number(row["rerank_score"]) if "rerank_score" in cols else None
        sc = _number(row["score"]) if "score" in cols else None
        if rr is not None:
            first.append(f"rerank {rr:{fmt}}")
        if sc is not None:
            first.append(f"score {sc:{fmt}}")
    lines = ["  ".join(first)] if first else []
    if callable(label):
        text = label(row)
        if text:
            lines.append(str(text))
    elif label:
        if label not in cols:
            raise InvalidInputError(f"label column {label!r} is not in the table; it has {cols}")
        lines.append(str(row[label]))
    return "\n".join(lines)


def plot_results(
    results: Table,
    *,
    ncols: int = 5,
    size: int = 128,
    images: Any = None,
    index: Any = None,
    source: Any = None,
    show_score: bool = True,
    label: str | Callable | None = "object_id",
    fig=None,
    panel_size: float = 1.8,
    fontsize: float = 7.0,
    title: str | None = None,
    progress: bool | None = None,
):
    """Draw a montage of the hits' images with rank, score and identifier.

    Parameters
    ----------
    results : `~astropy.table.Table`
        A search result (`~astro_semsearch.semantic_search`,
        `~astro_semsearch.similar_to`, a re-ranked table), or any table with
        ``object_id`` and ``ra``/``dec``. Slice it to plot fewer:
        ``plot_results(hits[:10])``.
    ncols : int
        Panels per row.
    size : int
        Thumbnail side in pixels (the panels are resampled by matplotlib).
    images, index, source
        Where the thumbnails come from, see
        `~astro_semsearch.thumbnails.result_images` (``images`` may also be
        its output: a list with one array or None per row).
    show_score : bool
        Print ``score`` (and ``rerank_score`` when present) above each panel.
    label : str, callable or None
        Second line of each panel title: a column name (default
        ``"object_id"``), a function ``row -> str``, or None for none.
    fig : `matplotlib.figure.Figure`, optional
        Draw into this figure (its size is kept) instead of a new one.
    panel_size : float
        Width of one panel in inches, for a new figure (1.8 in: 5 columns fit
        a two-column-wide journal page).
    fontsize : float
        Points, for the panel titles.
    title : str, optional
        A title above the montage (e.g. the query).
    progress : bool, optional
        Progress bar while fetching cutouts.

    Returns
    -------
    `matplotlib.figure.Figure`
        One `~matplotlib.axes.Axes` per hit in ``fig.axes``, in rank order,
        each labelled with its ``object_id`` (``ax.get_label()``). A hit
        with no image gets a grey panel saying so.

    Examples
    --------
    >>> fig = plot_results(semantic_search("ring galaxy", k=10))   # doctest: +SKIP
    >>> fig.savefig("rings.pdf")                                    # doctest: +SKIP
    """
    from matplotlib.figure import Figure

    from .thumbnails import result_images

    if isinstance(results, Row):
        results = results.table[results.index : results.index + 1]
    if not isinstance(results, Table):
        raise InvalidTypeError(f"results must be an astropy Table, got {type(results).__name__}")
    ncols = check_int(ncols, "ncols")
    n = len(results)
    if n == 0:
        raise InvalidInputError("the table has no rows to plot")
    if not (isinstance(panel_size, (int, float)) and panel_size > 0):
        raise InvalidInputError(f"panel_size must be a positive number of inches, got {panel_size!r}")
    if isinstance(label, str) and label not in results.colnames:
        raise InvalidInputError(f"label column {label!r} is not in the table; it has {results.colnames}")

    thumbs = result_images(results, index=index, size=size, source=source, images=images, progress=progress)

    ncols = int(min(ncols, n))
    nrows = -(-n // ncols)
    titles = [_panel_title(results[i], show_score=show_score, label=label) for i in range(n)]
    nlines = max((t.count("\n") + 1 if t else 0) for t in titles)
    line_in = fontsize * 1.2 / 72  # one line of title text, inches
    title_in = nlines * line_in + (0.05 if nlines else 0.0)
    pad_in = 0.06 * panel_size
    top_in = (fontsize * 1.6 * 1.5 / 72 + pad_in) if title else pad_in
    if fig is None:
        # A plain Figure, not pyplot.figure(): no global state, no window, nothing to close.
        fig = Figure(figsize=(ncols * (panel_size + pad_in) + pad_in,
                              nrows * (panel_size + title_in + pad_in) + top_in))
    width_in, height_in = fig.get_size_inches()
    # Lay out the cells in inches, then place square axes in figure fractions.
    cell_w = (width_in - pad_in) / ncols
    cell_h = (height_in - top_in) / nrows
    side = max(min(cell_w - pad_in, cell_h - title_in - pad_in), 0.05)
    if title:
        fig.text(0.5, 1 - (pad_in / 2) / height_in, title, ha="center", va="top", fontsize=fontsize * 1.6)
    for i in range(n):
        r, c = divmod(i, ncols)
        x0 = pad_in + c * cell_w + (cell_w - pad_in - side) / 2
        y0 = height_in - top_in - (r + 1) * cell_h + (cell_h - title_in - side) / 2
        ax = fig.add_axes((x0 / width_in, y0 / height_in, side / width_in, side / height_in),
                          label=str(results["object_id"][i]) if "object_id" in results.colnames else f"row {i}")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_linewidth(0.5)
        img = thumbs[i]
        if img is None:
            ax.set_facecolor("0.88")
            ax.text(0.5, 0.5, "no image", ha="center", va="center", transform=ax.transAxes,
                    fontsize=fontsize, color="0.35")
        else:
            ax.imshow(img, origin="upper", interpolation="antialiased")
        ax.set_title(titles[i], fontsize=fontsize, pad=2, linespacing=1.15)
    return fig
