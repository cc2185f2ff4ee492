"""Checks of what goes into an index: unit vectors and a catalogue with object_id, ra, dec (not public API)."""
from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..exceptions import InvalidInputError, InvalidTypeError

__all__ = ["as_unit_matrix", "normalise_catalog", "gather_rows"]


def as_unit_matrix(vectors, dim: int | None, what: str = "embeddings") -> np.ndarray:
    """Validate and L2-normalise vectors into a C-contiguous float32 (n, dim) array.

    Everything FAISS could choke on is caught here with a clear message, so a
    wrong shape or dtype never reaches the C++ code (where it could crash).
    """
    try:
        arr = np.asarray(vectors)
    except Exception as exc:  # ragged lists etc.
        raise InvalidTypeError(f"{what} must be a numeric array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidTypeError(f"{what} must be a numeric (float) array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidInputError(f"{what} must be a 2-D array (n, dim), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InvalidInputError(f"{what} is empty (0 vectors)")
    if dim is not None and arr.shape[1] != dim:
        raise InvalidInputError(f"{what} have dimension {arr.shape[1]} but the index has dimension {dim}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidInputError(
            f"{what} contain non-finite values (NaN/inf) in {bad.size} row(s), first rows: {bad[:5].tolist()}"
        )
    norms = np.linalg.norm(arr, axis=1)
    if (norms == 0).any():
        bad = np.flatnonzero(norms == 0)
        raise InvalidInputError(f"{what} contain all-zero vector(s) (no direction) at rows {bad[:5].tolist()}")
    # Cosine similarity = inner product of unit vectors.
    return np.ascontiguousarray(arr / norms[:, None], dtype=np.float32)


def normalise_catalog(table, n: int) -> Table:
    """Check the catalogue and return a copy with object_id (str), ra, dec (float64 deg)."""
    if not isinstance(table, Table):
        try:
            table = Table(table)
        except Exception as exc:
            raise InvalidTypeError(f"table must be an astropy Table (or convertible to one): {exc}") from None
    missing = [c for c in ("object_id", "ra", "dec") if c not in table.colnames]
    if missing:
        raise InvalidInputError(
            f"the catalogue table needs columns object_id, ra and dec (degrees); missing: {missing}. "
            f"It has: {table.colnames}"
        )
    if len(table) != n:
        raise InvalidInputError(f"the table has {len(table)} rows but there are {n} embeddings; they must match row by row")
    out = Table(table, copy=True)  # a QTable becomes a Table with units on its columns
    out.meta.clear()
    for name in ("ra", "dec"):
        col = out[name]
        if np.any(getattr(col, "mask", False)):
            raise InvalidInputError(f"column {name!r} has missing (masked) values")
        unit = getattr(col, "unit", None)
        values = np.asarray(getattr(col, "value", col))
        if unit is not None:
            try:
                values = (np.asarray(values, dtype=float) * u.Unit(unit)).to_value(u.deg)
            except u.UnitConversionError:
                raise InvalidInputError(f"column {name!r} has unit {unit}, which is not an angle") from None
        try:
            values = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidTypeError(f"column {name!r} must hold numbers (degrees), got dtype {np.asarray(col).dtype}") from None
        if not np.isfinite(values).all():
            raise InvalidInputError(f"column {name!r} has missing or non-finite values")
        out.replace_column(name, Table.Column(values, name=name, unit=u.deg))
    ra, dec = np.asarray(out["ra"]), np.asarray(out["dec"])
    if ((ra < 0) | (ra > 360)).any():
        bad = ra[(ra < 0) | (ra > 360)][:3]
        raise InvalidInputError(f"RA out of range [0, 360] deg: {bad.tolist()}")
    if ((dec < -90) | (dec > 90)).any():
        bad = dec[(dec < -90) | (dec > 90)][:3]
        raise InvalidInputError(f"Dec out of range [-90, 90] deg: {bad.tolist()}")
    ids = np.asarray(out["object_id"]).astype(str)
    if (np.char.strip(ids) == "").any():
        raise InvalidInputError("object_id values must be non-empty strings")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InvalidInputError(f"duplicate object_id values in the table: {uniq[counts > 1][:5].tolist()}")
    out.replace_column("object_id", Table.Column(ids, name="object_id"))
    # Canonical order: object_id, ra, dec first, the kept columns after.
    rest = [c for c in out.colnames if c not in ("object_id", "ra", "dec")]
    return out[["object_id", "ra", "dec", *rest]]


def gather_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Read rows of a (memory-mapped) matrix in sorted order (sequential disk reads)."""
    rows = np.asarray(rows, dtype=np.int64)
    uniq, inverse = np.unique(rows, return_inverse=True)
    return np.asarray(vectors[uniq], dtype=np.float32)[inverse.reshape(rows.shape)]
