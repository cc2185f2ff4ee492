"""Catalogue columns: which column is RA, Dec, the file name; values in degrees; positions.

Every stage that reads a user's catalogue or result table (building an
index, cross-matching, fetching thumbnails) finds its columns here, with one
list of accepted names each, so a catalogue that works in one place works in
all of them.

Examples
--------
>>> from astropy.table import Table
>>> from astro_semsearch.catalog import find_column, RA_NAMES
>>> t = Table({"RAJ2000": [10.0], "DEJ2000": [1.0]})
>>> find_column(t, None, RA_NAMES, "RA")
'RAJ2000'
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .exceptions import InvalidInputError, InvalidTypeError

__all__ = ["RA_NAMES", "DEC_NAMES", "FILE_NAMES", "find_column", "column_degrees", "read_catalog",
           "table_coords", "as_skycoord", "content_sha256"]

#: Column names tried (case-insensitively, in this order) for right ascension.
RA_NAMES = ("ra", "raj2000", "ra_icrs", "ra_deg", "radeg", "_raj2000", "ra_j2000", "alpha_j2000", "ra2000",
            "ramean", "alpha")
#: Column names tried (case-insensitively, in this order) for declination.
DEC_NAMES = ("dec", "dej2000", "decj2000", "de_icrs", "dec_icrs", "dec_deg", "decdeg", "dedeg", "_dej2000",
             "dec_j2000", "delta_j2000", "dec2000", "decmean", "delta")
#: Column names tried for a row's image file.
FILE_NAMES = ("file", "filename", "file_name", "path", "image", "image_path")


def find_column(table, given: str | None, names: Sequence[str], what: str) -> str:
    """Name of the ``what`` column of ``table``: ``given`` if set, else the first of ``names`` (any case).

    A numeric match is preferred: VizieR gives ``RAJ2000`` as sexagesimal text
    and ``_RAJ2000`` in degrees, for example.
    """
    if given is not None:
        if given not in table.colnames:
            raise InvalidInputError(f"{what} column {given!r} is not in the catalogue; it has {table.colnames}")
        return given
    lower = {c.lower(): c for c in table.colnames}
    found = [lower[n] for n in names if n in lower]
    for col in found:
        if np.asarray(table[col]).dtype.kind in "fiu":
            return col
    if found:
        return found[0]
    raise InvalidInputError(
        f"cannot find a {what} column in the catalogue; looked for {list(names)} (any case), "
        f"it has {table.colnames}. Name it explicitly."
    )


def column_degrees(col, name: str, label: str = "catalogue") -> np.ndarray:
    """Values of a catalogue angle column in degrees (no unit means degrees).

    Raises a clear error for masked, non-numeric, non-angle or non-finite values.
    """
    from astropy import units as u

    if np.any(getattr(col, "mask", False)):
        raise InvalidInputError(f"{label} column {name!r} has missing (masked) values")
    try:
        values = np.asarray(getattr(col, "value", col), dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"{label} column {name!r} must hold numbers in degrees (sexagesimal strings are not read)"
        ) from None
    unit = getattr(col, "unit", None)
    if unit is not None:
        if not u.Unit(unit).is_equivalent(u.deg):
            raise u.UnitTypeError(f"{label} column {name!r} has unit {unit}, which is not an angle")
        values = (values * u.Unit(unit)).to_value(u.deg)
    if not np.isfinite(values).all():
        raise InvalidInputError(f"{label} column {name!r} has NaN or infinite values")
    return values


def _check_ranges(ra: np.ndarray, dec: np.ndarray, label: str) -> None:
    bad = np.flatnonzero((ra < 0) | (ra > 360) | (dec < -90) | (dec > 90))
    if bad.size:
        raise InvalidInputError(f"{label}: RA must be in [0, 360] and Dec in [-90, 90] deg; bad rows "
                                f"{bad[:5].tolist()}")


def table_coords(table, ra_column: str | None = None, dec_column: str | None = None, label: str = "catalogue"):
    """The positions of a table's rows as a `~astropy.coordinates.SkyCoord` (columns found by name)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra_col = find_column(table, ra_column, RA_NAMES, "right ascension")
    dec_col = find_column(table, dec_column, DEC_NAMES, "declination")
    ra, dec = column_degrees(table[ra_col], ra_col, label), column_degrees(table[dec_col], dec_col, label)
    _check_ranges(ra, dec, label)
    return SkyCoord(ra * u.deg, dec * u.deg)


def as_skycoord(coordinates: Any):
    """ICRS coordinates (always a 1-D array) from a SkyCoord or a pair ``(ra, dec)`` in degrees."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    if isinstance(coordinates, SkyCoord):
        c = coordinates.icrs
    else:
        pair = isinstance(coordinates, (tuple, list)) and len(coordinates) == 2
        if not pair or isinstance(coordinates[0], SkyCoord):
            raise InvalidTypeError(
                "coordinates must be an astropy SkyCoord (scalar or array) or a pair (ra, dec) "
                f"in degrees, got {type(coordinates).__name__}"
            )
        ra, dec = coordinates
        ra = np.atleast_1d(u.Quantity(ra, u.deg).to_value(u.deg)).astype(float)
        dec = np.atleast_1d(u.Quantity(dec, u.deg).to_value(u.deg)).astype(float)
        if ra.shape != dec.shape:
            raise InvalidInputError(f"ra and dec have different lengths: {ra.shape} vs {dec.shape}")
        if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
            raise InvalidInputError("ra/dec contain NaN or infinite values")
        bad = (ra < 0) | (ra >= 360)
        if bad.any():
            raise InvalidInputError(f"RA must be in [0, 360) deg; got {ra[bad][:3].tolist()}")
        bad = (dec < -90) | (dec > 90)
        if bad.any():
            raise InvalidInputError(f"Dec must be in [-90, 90] deg; got {dec[bad][:3].tolist()}")
        c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    if c.isscalar:
        c = c.reshape((1,))
    return c.ravel()


def read_catalog(catalog):
    """``(Table, path or None)`` from a Table or a catalogue file astropy can read; empty is an error."""
    from astropy.table import Table

    path = None
    if not isinstance(catalog, Table):
        if not isinstance(catalog, (str, os.PathLike)):
            raise InvalidTypeError(f"catalog must be an astropy Table or a file path, got {type(catalog).__name__}")
        path = Path(catalog)
        if not path.is_file():
            raise FileNotFoundError(f"catalogue file {path} does not exist")
        catalog = Table.read(path)
    if len(catalog) == 0:
        raise InvalidInputError("the catalogue is empty")
    return catalog, path


def content_sha256(table, columns: Sequence[str]) -> str:
    """sha256 of the content of some catalogue columns (names, dtypes, units and values)."""
    h = hashlib.sha256()
    for name in columns:
        col = table[name]
        arr = np.asarray(col.filled() if hasattr(col, "filled") else col)
        if arr.dtype.kind == "O":
            arr = arr.astype(str)
        h.update(name.encode() + b"\0" + str(arr.dtype.str).encode() + b"\0" + str(getattr(col, "unit", "")).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()
