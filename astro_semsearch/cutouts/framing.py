"""Framing by size: the pixel scale that makes each galaxy fill a cutout the way the model was trained.

The model was trained on Galaxy Zoo 2 images: frames of 424 pixels at
0.02 x petroR90_r arcsec/pixel (8.48 R90 across), of which the shared JPEGs
keep the central 320 pixels, so 6.4 x R90 across. Its own preprocessing then
keeps the central ``crop_fraction`` (0.8), so the network sees about 5.1 x
R90. A cutout framed the same way spans ``frame_r90`` x R90 (6.4, from the
model's config key ``"frame_r90"``), so for ``size`` pixels::

    pixscale = frame_r90 * R90 / size        (arcsec/pixel)

with two limits:

* never finer than the survey's native 0.262"/pixel (`NATIVE_PIXSCALE`):
  point-like and tiny sources get the field ``size * 0.262"`` (``"min"``);
* never a field wider than `MAX_FIELD` (30 arcmin): the largest galaxies
  are cut to it and marked (``"max"``);

and rows without a usable size (masked, NaN, zero or negative) keep the
fixed request (``"fixed"``). R90 comes from a catalogue column
(`astro_semsearch.catalog.column_r90`).

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.cutouts.framing import frame_pixscale
>>> f = frame_pixscale(np.array([10.0, 1.0, np.nan, 1e4]), size=256, frame_r90=6.4, fixed_pixscale=0.262)
>>> f.pixscale.tolist(), f.status.tolist()
([0.262, 0.262, 0.262, 7.03125], ['min', 'min', 'fixed', 'max'])
>>> frame_pixscale(np.array([40.0]), size=256, frame_r90=6.4, fixed_pixscale=0.262).pixscale.tolist()
[1.0]
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from astropy import units as u

__all__ = ["DEFAULT_FRAME_R90", "NATIVE_PIXSCALE", "FIXED_SIZE", "MAX_FIELD", "Framing", "frame_pixscale", "model_frame_r90",
           "unknown_framing_message"]

#: Cutout side in units of R90 when a model's config has no ``"frame_r90"`` (Galaxy Zoo 2 framing).
DEFAULT_FRAME_R90 = 6.4
#: The Legacy Surveys' native pixel scale (arcsec/pixel): no cutout is framed finer than this.
NATIVE_PIXSCALE = 0.262
#: Side (pixels) of the fixed request, ``FIXED_SIZE`` px at `NATIVE_PIXSCALE` (67"): what `fetch_and_embed`
#: and `build_index` ask for when a galaxy's size is not known.
FIXED_SIZE = 256
#: The widest field a framed cutout may span; larger galaxies are cut to it (status ``"max"``).
MAX_FIELD = 30 * u.arcmin


class Framing(NamedTuple):
    """Per-row pixel scales and how each was decided."""

    pixscale: np.ndarray
    """Arcsec per pixel, one per row (rounded to 1e-5 arcsec so request URLs are stable)."""
    status: np.ndarray
    """``"size"`` (framed by its size), ``"min"`` (native scale: small or point-like), ``"max"`` (the
    field is cut to `MAX_FIELD`) or ``"fixed"`` (no usable size: the fixed request)."""

    def counts(self) -> dict[str, int]:
        """How many rows have each status."""
        return {k: int(np.sum(self.status == k)) for k in ("size", "min", "max", "fixed")}


def model_frame_r90(model: Any) -> float:
    """The ``"frame_r90"`` of a model's config (`DEFAULT_FRAME_R90` when it has none).

    Examples
    --------
    >>> model_frame_r90(None)
    6.4
    """
    config = getattr(model, "config", None) or {}
    value = config.get("frame_r90", DEFAULT_FRAME_R90) if isinstance(config, dict) else DEFAULT_FRAME_R90
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        from ..exceptions import InvalidInputError

        raise InvalidInputError(f"the model's config has frame_r90={value!r}; it must be a positive number")
    return value


def frame_pixscale(r90_arcsec, *, size: int, frame_r90: float = DEFAULT_FRAME_R90, fixed_pixscale: float = 0.262,
                   min_pixscale: float = NATIVE_PIXSCALE, max_field: u.Quantity = MAX_FIELD) -> Framing:
    """Per-row pixel scales framing each galaxy to ``frame_r90`` x R90 across ``size`` pixels.

    Parameters
    ----------
    r90_arcsec : array-like
        R90 of each row in arcsec; NaN (or not positive) where unknown.
    size : int
        Cutout side in pixels.
    frame_r90 : float
        Field of view in units of R90 (the model's ``"frame_r90"``).
    fixed_pixscale : float
        Pixel scale of rows without a usable size.
    min_pixscale : float
        Finest allowed pixel scale (default: the survey's native 0.262").
    max_field : angle
        Widest allowed field (default 30 arcmin).

    Returns
    -------
    `Framing`
    """
    r90 = np.asarray(r90_arcsec, dtype=np.float64).reshape(-1)
    good = np.isfinite(r90) & (r90 > 0)
    max_pix = float(u.Quantity(max_field, u.arcsec).to_value(u.arcsec)) / int(size)
    raw = np.where(good, float(frame_r90) * np.where(good, r90, 1.0) / int(size), float(fixed_pixscale))
    pix = np.clip(raw, float(min_pixscale), max_pix)
    status = np.full(r90.shape, "size", dtype="U5")
    status[good & (raw < float(min_pixscale))] = "min"
    status[good & (raw > max_pix)] = "max"
    status[~good] = "fixed"
    pix[~good] = float(fixed_pixscale)
    return Framing(np.round(pix, 5), status)


_BUILD_FIX = ("Give sizes: a catalogue column of Tractor shape_r, SDSS petroR90_r, SGA D26 or any angle column of "
              "R90 (size_column=..., found by name when not given); size_column=False keeps the fixed request "
              "without this warning.")


def unknown_framing_message(size: int, pixscale: float, where: str = "build_index", fix: str = _BUILD_FIX) -> str:
    """The warning given when cutouts are requested without knowing the galaxies' sizes.

    Examples
    --------
    >>> print(unknown_framing_message(256, 0.262, fix="Give sizes."))  # doctest: +NORMALIZE_WHITESPACE
    framing unknown: without galaxy sizes build_index asks for every cutout at 256 px of 0.262"/px (67"
    across), whatever the galaxy's size, but the model expects each galaxy framed to about 6.4 x R90
    across. Give sizes.
    """
    return (
        f"framing unknown: without galaxy sizes {where} asks for every cutout at {int(size)} px of "
        f"{float(pixscale):g}\"/px ({int(size) * float(pixscale):.0f}\" across), whatever the galaxy's size, "
        f"but the model expects each galaxy framed to about {DEFAULT_FRAME_R90:g} x R90 across. {fix}"
    )
