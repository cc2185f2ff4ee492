"""Partitions that follow survey bricks: rows sorted by brick, cuts only at brick boundaries.

Used by ``build_index_dask(..., partition_by="brick")`` so that each brick's
files are read by one task (`~astro_semsearch.cutouts.LegacySurveyBricks`
opens a brick once and keeps it while its rows are processed).

Examples
--------
>>> import numpy as np
>>> brick_bounds(np.array(["a", "a", "a", "b", "c", "c"]), 3).tolist()
[0, 3, 4, 6]
>>> brick_bounds(np.array(["a"] * 5), 3).tolist()
[0, 5]
"""
from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..catalog import table_coords
from ..cutouts.brickgrid import BrickGrid

__all__ = ["brick_order", "brick_bounds"]


def brick_order(catalog: Table, source=None, ra_column: str | None = None,
                dec_column: str | None = None) -> tuple[Table, np.ndarray]:
    """``(catalogue sorted stably by brick, the brick of each of its rows)``.

    The brick is a ``brickname`` column (any case) when the catalogue has
    one, else the brick holding each position: from ``source.bricks_of`` (a
    `LegacySurveyBricks` and its bricks table) or the survey's tiling rule.
    """
    lower = {c.lower(): c for c in catalog.colnames}
    if "brickname" in lower:
        bricks = np.char.strip(np.asarray(catalog[lower["brickname"]]).astype(str))
    else:
        coords = table_coords(catalog, ra_column, dec_column)
        bricks = (source.bricks_of(coords) if hasattr(source, "bricks_of")
                  else BrickGrid().locate(coords.ra.deg, coords.dec.deg))
    order = np.argsort(bricks, kind="stable")
    return catalog[order], np.asarray(bricks)[order]


def brick_bounds(sorted_bricks: np.ndarray, npartitions: int) -> np.ndarray:
    """Row bounds of about ``npartitions`` partitions of brick-sorted rows, each cut at a brick boundary.

    Every equal-size cut moves to the nearest change of brick; cuts that meet
    merge, so there may be fewer partitions (never one brick split in two).
    """
    n = len(sorted_bricks)
    starts = np.flatnonzero(np.r_[True, sorted_bricks[1:] != sorted_bricks[:-1]])  # first row of each brick
    edges = np.r_[starts, n]
    cuts = []
    for target in np.linspace(0, n, int(npartitions) + 1)[1:-1]:
        cuts.append(int(edges[np.argmin(np.abs(edges - target))]))
    return np.unique(np.r_[0, [c for c in cuts if 0 < c < n], n]).astype(int)
