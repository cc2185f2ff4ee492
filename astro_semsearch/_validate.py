"""Argument checks shared by every stage (not public API).

Each check returns the value in a canonical form (an ``int``, a ``float``,
an angle in arcsec, a list of stripped strings, a unit vector) or raises an
`~astro_semsearch.exceptions.InvalidInputError` /
`~astro_semsearch.exceptions.InvalidTypeError` whose message names the
argument, so that bad input is stopped at the door with the same words
wherever it is given.

Examples
--------
>>> check_int(3, "k")
3
>>> check_int(2.5, "batch_size")
Traceback (most recent call last):
...
astro_semsearch.exceptions.InvalidTypeError: batch_size must be an integer, got 2.5 (float)
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from .exceptions import InvalidInputError, InvalidTypeError

__all__ = [
    "check_int", "check_number", "check_bool", "check_choice", "check_angle", "check_texts",
    "unit_vector", "unit_rows", "check_matrix", "finite_or_none",
]


def check_int(value: Any, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise InvalidInputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidInputError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value > high
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise InvalidInputError(f"{name} must be a finite number in {'(' if low_open else '['}{lo}, {hi}], "
                                f"got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy booleans too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidTypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_angle(value: Any, name: str, *, allow_none: bool = True, positive: bool = False):
    """A scalar angle `~astropy.units.Quantity` (converted to arcsec), or None when allowed."""
    from astropy import units as u

    if value is None and allow_none:
        return None
    if not isinstance(value, u.Quantity):
        raise InvalidTypeError(f"{name} must be an angle with units, e.g. 5 * u.arcsec, got {value!r}")
    if not value.unit.is_equivalent(u.deg):
        raise u.UnitTypeError(f"{name} must be an angle, got unit {value.unit}")
    if not value.isscalar:
        raise InvalidInputError(f"{name} must be a single angle, got shape {value.shape}")
    if not np.isfinite(value.value) or value.value < 0 or (positive and value.value == 0):
        raise InvalidInputError(f"{name} must be a finite angle {'>' if positive else '>='} 0, got {value}")
    return value.to(u.arcsec)


def check_texts(value: Any, name: str) -> list[str]:
    """A non-empty string or a non-empty list of non-empty strings, as a list of stripped strings."""
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise InvalidInputError(f"{name} is an empty list; give at least one description")
    else:
        raise InvalidTypeError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    for item in items:
        if not isinstance(item, str):
            raise InvalidTypeError(f"{name} must contain only strings, got {item!r} ({type(item).__name__})")
        if not item.strip():
            raise InvalidInputError(f"{name} contains an empty or whitespace-only string")
    return [s.strip() for s in items]


def unit_vector(v: Any, what: str = "query vector") -> np.ndarray:
    """``v / |v|`` as float64; an error naming ``what`` for a zero, non-finite or not 1-D vector."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise InvalidInputError(f"the {what} must be 1-D (one embedding), got shape {v.shape}")
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm == 0:
        raise InvalidInputError(f"the {what} has no direction (zero length or non-finite values)")
    return v / norm


def unit_rows(m: Any) -> np.ndarray:
    """Rows of ``m`` scaled to unit length (zero rows are left as they are)."""
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


def check_matrix(vectors: Any, dim: int, n: int | None = None, what: str = "vectors") -> np.ndarray:
    """A finite ``(n, dim)`` float32 matrix."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise InvalidInputError(f"{what} must have shape (n, {dim}) to match the query, got {vectors.shape}")
    if n is not None and vectors.shape[0] != n:
        raise InvalidInputError(f"{what} has {vectors.shape[0]} rows but there are {n} candidates")
    if not np.isfinite(vectors).all():
        raise InvalidInputError(f"{what} contain non-finite values")
    return vectors


def finite_or_none(value: Any) -> float | None:
    """A finite float, or None for masked / NaN / missing / non-numeric values."""
    if value is None or np.ma.is_masked(value):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def check_strings(values: Sequence[Any], name: str) -> list[str]:
    """Every entry of ``values`` as a non-empty ``str``."""
    out = [str(v) for v in values]
    if any(not v.strip() for v in out):
        raise InvalidInputError(f"{name} must be non-empty strings")
    return out
