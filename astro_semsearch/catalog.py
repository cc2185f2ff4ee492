"""Catalogue columns: which column is RA, Dec, the file name, the size; values in degrees; positions.

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

__all__ = ["RA_NAMES", "DEC_NAMES", "FILE_NAMES", "SIZE_NAMES", "SIZE_COLUMNS", "find_column", "column_degrees",
           "find_size_column", "column_r90", "read_catalog", "table_coords", "as_skycoord", "content_sha256"]

#: Column names tried (case-insensitively, in this order) for right ascension.
RA_NAMES = ("ra", "raj2000", "ra_icrs", "ra_deg", "radeg", "_raj2000", "ra_j2000", "alpha_j2000", "ra2000",
            "ramean", "alpha")
#: Column names tried (case-insensitively, in this order) for declination.
DEC_NAMES = ("dec", "dej2000", "decj2000", "de_icrs", "dec_icrs", "dec_deg", "decdeg", "dedeg", "_dej2000",
             "dec_j2000", "delta_j2000", "dec2000", "decmean", "delta")
#: Column names tried for a row's image file.
FILE_NAMES = ("file", "filename", "file_name", "path", "image", "image_path")

#: Size columns recognised by name (case-insensitively): name -> (unit assumed when the column has none,
#: factor turning the value into R90, what the value is). R90 is the radius holding 90% of the
#: Petrosian flux (SDSS ``petroR90_r``), the radius Galaxy Zoo framed its images by.
#:
#: * ``petroR90_r`` (SDSS), ``r90``: R90 itself, arcsec.
#: * ``shape_r`` (Legacy Survey Tractor): the model's half-light radius R_e, arcsec. The Petrosian
#:   R90 of a Sersic profile is 2.28 R_e for n=1 (exponential), 2.71 R_e for n=2 and 2.50 R_e for
#:   n=4 (de Vaucouleurs; the Petrosian aperture misses 17% of its light), so one factor, 2.5,
#:   serves every Tractor type within about 10%.
#: * ``D26`` (Siena Galaxy Atlas): the diameter of the 26 mag/arcsec^2 r-band isophote, arcmin. For
#:   an exponential disc of central surface brightness about 20.7 r mag/arcsec^2 the isophote lies
#:   at 4.9 scale lengths and R90 at 3.9, so R90 = 0.8 * D26/2 = 0.4 * D26.
#:
#: A column named explicitly (``size_column=``) that is not one of these must carry an angle unit;
#: it is then taken as R90.
SIZE_COLUMNS = {
    "petror90_r": ("arcsec", 1.0, "Petrosian R90"),
    "r90": ("arcsec", 1.0, "R90"),
    "shape_r": ("arcsec", 2.5, "half-light radius (R90 = 2.5 x shape_r)"),
    "d26": ("arcmin", 0.4, "26 mag/arcsec^2 isophotal diameter (R90 = 0.4 x D26)"),
}
#: The size column names tried, in this order, when none is named.
SIZE_NAMES = tuple(SIZE_COLUMNS)


def find_column(table, given: str | None, names: Sequence[str], what: str, option: str | None = None,
                label: str = "catalogue") -> str:
    """Name of the ``what`` column of ``table``: ``given`` if set, else the first of ``names`` (any case).

    A numeric match is preferred: VizieR gives ``RAJ2000`` as sexagesimal text
    and ``_RAJ2000`` in degrees, for example. ``option`` (``"ra_column"``)
    names the argument that sets the column, in the error (with its
    command-line form, ``--ra-column``); ``label`` names the table there.
    """
    how = (f"name it with {option}=..., --{option.replace('_', '-')} on the command line" if option
           else "name it explicitly")
    if given is not None:
        if given not in table.colnames:
            raise InvalidInputError(f"{what} column {given!r} is not in the {label}; it has {table.colnames}")
        return given
    lower = {c.lower(): c for c in table.colnames}
    found = [lower[n] for n in names if n in lower]
    for col in found:
        if np.asarray(table[col]).dtype.kind in "fiu":
            return col
    if found:
        return found[0]
    raise InvalidInputError(
        f"cannot find a {what} column in the {label}; looked for {list(names)} (any case), "
        f"it has {table.colnames}; {how}"
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


def find_size_column(table, given: str | None = None) -> str | None:
    """The column giving each row's size: ``given`` if set, else the first of `SIZE_NAMES` (any case), else None.

    Examples
    --------
    >>> from astropy.table import Table
    >>> find_size_column(Table({"ra": [1.0], "SHAPE_R": [2.0]}))
    'SHAPE_R'
    >>> find_size_column(Table({"ra": [1.0]})) is None
    True
    """
    if given is not None:
        if not isinstance(given, str):
            raise InvalidTypeError(f"size_column must be a column name, got {given!r}")
        return find_column(table, given, SIZE_NAMES, "size")
    try:
        return find_column(table, None, SIZE_NAMES, "size")
    except InvalidInputError:
        return None


def column_r90(table, name: str) -> tuple[np.ndarray, str]:
    """``(R90 in arcsec per row, how the column was read)``; NaN where the size is missing or not positive.

    The column is read by its name (see `SIZE_COLUMNS`) or, for any other
    name, as R90 in its own angle unit.

    Examples
    --------
    >>> from astropy.table import Table
    >>> r90, how = column_r90(Table({"shape_r": [2.0, 0.0, float("nan")]}), "shape_r")
    >>> r90.tolist(), how
    ([5.0, nan, nan], 'shape_r: half-light radius (R90 = 2.5 x shape_r)')
    """
    from astropy import units as u

    col = table[name]
    known = SIZE_COLUMNS.get(name.lower())
    unit = getattr(col, "unit", None)
    if unit is not None and not u.Unit(unit).is_equivalent(u.arcsec):
        raise u.UnitTypeError(f"size column {name!r} has unit {unit}, which is not an angle")
    if known is None and unit is None:
        raise InvalidInputError(
            f"size column {name!r} has no unit, so it cannot be read as a size: give it an angle unit "
            f"(e.g. table[{name!r}].unit = 'arcsec'; it is then taken as R90) or use one of the recognised "
            f"columns {[n for n in SIZE_NAMES]} (any case)"
        )
    try:
        if isinstance(col, u.Quantity):  # a QTable column (a masked one fills its gaps with NaN)
            raw = col.unmasked.value if hasattr(col, "unmasked") else col.value
            values = np.array(raw, dtype=np.float64)
            if hasattr(col, "mask"):
                values[np.asarray(col.mask)] = np.nan
        else:
            values = np.ma.filled(np.ma.asarray(col).astype(np.float64), np.nan)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"size column {name!r} must hold numbers") from None
    values = np.array(values, dtype=np.float64).reshape(-1)
    default_unit, factor, what = known if known is not None else (None, 1.0, "R90")
    values = (values * u.Unit(unit or default_unit)).to_value(u.arcsec) * factor
    values[~(np.isfinite(values) & (values > 0))] = np.nan
    return values, f"{name}: {what}"


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
