"""Which Legacy Surveys brick holds a position: the survey's tiling rule, or a bricks table.

The survey cuts the sky into *bricks* (the Legacy Surveys file description
and ``desiutil.brick``, which DESI targeting uses to reproduce the survey's
``survey-bricks.fits.gz``):

* rows of constant Dec, 0.25 deg high, centred on multiples of 0.25 deg
  (row ``i`` is centred on ``-90 + 0.25 i`` and spans +-0.125 deg); the two
  polar caps are one brick each;
* row ``i`` holds ``n`` bricks of equal RA width starting at RA 0, ``n`` the
  even number ``2 ceil(720 cos(|dec_i| - 0.125 deg) / 0.25 / 2)``, so no
  brick is wider than 0.25 deg on its side nearer the equator;
* a brick is named from its centre: ``int(RA x 10)`` as four digits, ``p``
  or ``m`` for the sign of Dec, ``int(|Dec| x 10)`` as three digits, e.g.
  ``1501p022`` (centre 150.125, +2.25). Coadd files live in
  ``coadd/<ddd>/<brick>/``, ``ddd`` the first three characters of the name.

With a bricks table (``survey-bricks.fits.gz``, or any FITS/ECSV table
with ``brickname, ra1, ra2, dec1, dec2``, any case) the table decides
instead, which also serves tables of a few bricks (tests, partial mirrors).

Examples
--------
>>> from astro_semsearch.cutouts.brickgrid import BrickGrid
>>> grid = BrickGrid()
>>> grid.locate([150.1, 0.1, 112.6], [2.2, -0.2, 22.2]).tolist()
['1501p022', '0001m002', '1126p222']
>>> grid.centre("1501p022")
(150.125, 2.25)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..exceptions import InvalidInputError, InvalidTypeError

__all__ = ["BrickGrid", "BRICK_HEIGHT", "brick_directory"]

#: Height (deg) of a row of bricks; bricks are at most this wide.
BRICK_HEIGHT = 0.25


def brick_directory(name: str) -> str:
    """The ``coadd/`` sub-directory of a brick: the first three characters of its name (its integer RA)."""
    return str(name)[:3]


def _name(ra_c: np.ndarray, dec_c: np.ndarray) -> np.ndarray:
    # Round to 1e-4 deg first so that a centre such as 39.6 (stored as 39.59999...) reads 0396.
    ra_d = np.round(np.asarray(ra_c) * 1e4).astype(np.int64) // 1000
    dec_d = np.round(np.abs(np.asarray(dec_c)) * 1e4).astype(np.int64) // 1000
    sign = np.where(np.asarray(dec_c) >= 0, "p", "m")
    return np.array([f"{r:04d}{s}{d:03d}" for r, s, d in zip(ra_d, sign, dec_d)], dtype="U8")


class BrickGrid:
    """Brick lookup: the survey's rule (no ``table``) or a bricks table.

    Parameters
    ----------
    table : `~astropy.table.Table`, path or None
        A bricks table with ``brickname, ra1, ra2, dec1, dec2`` columns (any
        case; ``ra, dec`` centres too if you want `centre`). None: the
        survey's rule.
    """

    def __init__(self, table=None):
        self.table = None
        if table is None:
            return
        if isinstance(table, (str, os.PathLike)):
            from astropy.table import Table

            path = Path(table)
            if not path.is_file():
                raise FileNotFoundError(f"bricks table {path} does not exist")
            table = Table.read(path)
        if not hasattr(table, "colnames"):
            raise InvalidTypeError(f"bricks must be an astropy Table or a file, got {type(table).__name__}")
        lower = {c.lower(): c for c in table.colnames}
        missing = [c for c in ("brickname", "ra1", "ra2", "dec1", "dec2") if c not in lower]
        if missing:
            raise InvalidInputError(f"the bricks table lacks {missing} (it has {table.colnames}); use the survey's "
                                    "survey-bricks.fits.gz, whose columns are BRICKNAME, RA, DEC, RA1, RA2, DEC1, DEC2")
        self.names = np.char.strip(np.asarray(table[lower["brickname"]]).astype("U8"))
        self.ra1, self.ra2 = (np.asarray(table[lower[c]], np.float64) for c in ("ra1", "ra2"))
        self.dec1, self.dec2 = (np.asarray(table[lower[c]], np.float64) for c in ("dec1", "dec2"))
        self.ra_c = np.asarray(table[lower["ra"]], np.float64) if "ra" in lower else (self.ra1 + self.ra2) / 2
        self.dec_c = np.asarray(table[lower["dec"]], np.float64) if "dec" in lower else (self.dec1 + self.dec2) / 2
        self.table = table
        # Rows of bricks (same lower Dec edge), each sorted by RA, for a binary search.
        self._rows = {}
        for d in np.unique(self.dec1):
            idx = np.flatnonzero(self.dec1 == d)
            self._rows[d] = idx[np.argsort(self.ra1[idx])]
        self._row_starts = np.array(sorted(self._rows))
        self._by_name = {n: i for i, n in enumerate(self.names)}

    # ------------------------------------------------------------------ the survey's rule
    @staticmethod
    def _rule_row_col(ra: np.ndarray, dec: np.ndarray):
        nrow = int(round(180 / BRICK_HEIGHT)) + 1
        row = np.clip(np.floor((dec + 90.0 + BRICK_HEIGHT / 2) / BRICK_HEIGHT).astype(int), 0, nrow - 1)
        dec_c = -90.0 + BRICK_HEIGHT * row
        near = np.deg2rad(np.abs(dec_c) - BRICK_HEIGHT / 2)
        ncol = (2 * np.ceil(360.0 / BRICK_HEIGHT * np.cos(near) / 2)).astype(int)
        ncol[(row == 0) | (row == nrow - 1)] = 1
        col = np.minimum(np.floor((ra % 360.0) / 360.0 * ncol).astype(int), ncol - 1)
        ra_c = np.where(ncol == 1, 180.0, 360.0 * (col + 0.5) / ncol)
        return ra_c, dec_c

    # ------------------------------------------------------------------ public
    def locate(self, ra, dec) -> np.ndarray:
        """The name of the brick holding each position, flattened (``""`` where a bricks table has none)."""
        ra = np.atleast_1d(np.asarray(ra, np.float64)).ravel() % 360.0
        dec = np.atleast_1d(np.asarray(dec, np.float64)).ravel()
        if ra.shape != dec.shape:
            raise InvalidInputError(f"ra and dec have different lengths: {ra.size} vs {dec.size}")
        if self.table is None:
            return _name(*self._rule_row_col(ra, dec))
        out = np.full(ra.shape, "", dtype="U8")
        k = np.searchsorted(self._row_starts, dec, side="right") - 1
        for r in np.unique(k[k >= 0]):
            idx = self._rows[self._row_starts[r]]
            sel = np.flatnonzero((k == r) & (dec < self.dec2[idx[0]]))
            j = np.searchsorted(self.ra1[idx], ra[sel], side="right") - 1
            hit = (j >= 0) & (ra[sel] < self.ra2[idx[np.maximum(j, 0)]])
            out[sel[hit]] = self.names[idx[j[hit]]]
        return out

    def centre(self, name: str) -> tuple[float, float]:
        """(RA, Dec) of a brick's centre in degrees."""
        if self.table is not None:
            i = self._by_name.get(str(name))
            if i is None:
                raise InvalidInputError(f"brick {name!r} is not in the bricks table")
            return float(self.ra_c[i]), float(self.dec_c[i])
        ra_d, sign, dec_d = int(name[:4]), name[4], int(name[5:8])
        dec = (1 if sign == "p" else -1) * (dec_d + 0.5) / 10.0
        ra_c, dec_c = self._rule_row_col(np.array([ra_d / 10.0 + 0.05]), np.array([dec]))
        found = _name(ra_c, dec_c)[0]
        if found != name:
            raise InvalidInputError(f"{name!r} is not a brick of the survey's tiling (the brick there is "
                                    f"{str(found)!r})")
        return float(ra_c[0]), float(dec_c[0])
