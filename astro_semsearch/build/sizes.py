"""Framing a build by galaxy size: which size column, each row's pixel scale, what the manifest records.

`build_index` asks `frame_rows` for the cutout pixel scale of every row
(see `astro_semsearch.cutouts.framing` for the rule). With no usable size
column it returns None and warns once that the framing is unknown.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..catalog import column_r90, find_size_column
from ..cutouts.framing import MAX_FIELD, NATIVE_PIXSCALE, frame_pixscale, model_frame_r90, unknown_framing_message
from ..exceptions import InvalidTypeError

__all__ = ["SizeFraming", "size_column_of", "frame_rows", "warn_unknown_framing"]


@dataclass
class SizeFraming:
    """The per-row framing of a build: pixel scales, their status, and the rule for the manifest."""

    pixscale: np.ndarray
    status: np.ndarray
    rule: dict

    def counts(self) -> dict[str, int]:
        return {k: int(np.sum(self.status == k)) for k in ("size", "min", "max", "fixed")}


def size_column_of(catalog, size_column) -> str | None:
    """The size column to frame by: the one named, one found by name (``None``), or none (``False``)."""
    if size_column is False:
        return None
    if size_column is True:
        raise InvalidTypeError("size_column must be a column name, None (find it by name) or False (fixed framing)")
    return find_size_column(catalog, size_column)


def frame_rows(catalog, column: str | None, *, model, size: int, pixscale: float) -> SizeFraming | None:
    """Per-row framing from ``column`` (None: no size column, the fixed request for every row)."""
    if column is None:
        return None
    r90, how = column_r90(catalog, column)
    frame_r90 = model_frame_r90(model)
    f = frame_pixscale(r90, size=int(size), frame_r90=frame_r90, fixed_pixscale=float(pixscale))
    rule = {"size_column": column, "read_as": how, "frame_r90": frame_r90, "pixscale": "frame_r90 * R90 / size",
            "min_pixscale": NATIVE_PIXSCALE, "max_field_arcsec": float(MAX_FIELD.to_value("arcsec")),
            "fallback_pixscale": float(pixscale)}
    return SizeFraming(f.pixscale, f.status, rule)


def warn_unknown_framing(size: int, pixscale: float, stacklevel: int = 4) -> None:
    """The one warning of a build that fetches cutouts without knowing the galaxies' sizes (at the caller of the
    build: the build and its output lock are two frames)."""
    warnings.warn(unknown_framing_message(size, pixscale), AstropyUserWarning, stacklevel=stacklevel)
