"""The host side of lens injection: which galaxies host a lens and the pixel scale of their frame.

The Galaxy Zoo 2 cutouts are scaled to the galaxy: an ``N x N`` image spans
about `FRAME_SPAN_R90` = 6.4 times the galaxy's Petrosian 90 % radius R90,
so its pixel scale is ``6.4 * R90 / N`` arcsec/pixel (`pixscale_from_r90`).
A host therefore always covers the same number of pixels, whatever its
angular size, while an Einstein radius in arcsec covers ``theta_E /
pixscale`` pixels: small on a large (nearby) host.

Examples
--------
>>> pixscale_from_r90(5.0, 80)
0.4
>>> is_lens_host({"Class1.1": 0.8})
True
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..cutouts.framing import DEFAULT_FRAME_R90
from ..exceptions import InvalidInputError

__all__ = ["FRAME_SPAN_R90", "R90_RANGE", "is_lens_host", "lens_host_mask", "pixscale_from_r90"]

#: Side of a Galaxy Zoo 2 cutout in units of the galaxy's Petrosian R90 (the
#: framing rule of `astro_semsearch.cutouts.framing`).
FRAME_SPAN_R90 = DEFAULT_FRAME_R90

#: Default range (arcsec) of the host R90 the simulators draw, log-uniformly, when
#: given no pixel scale: typical of the smooth ellipticals that act as lenses.
R90_RANGE = (2.0, 8.0)


def pixscale_from_r90(r90: float | np.ndarray, size: int, span: float = FRAME_SPAN_R90) -> float | np.ndarray:
    """Pixel scale (arcsec/pixel) of a galaxy-scaled cutout.

    A cutout of ``size`` pixels spans ``span`` times the galaxy's Petrosian
    90 % radius, so one pixel is ``span * r90 / size`` arcsec.

    Parameters
    ----------
    r90 : float or numpy.ndarray
        Petrosian 90 % radius (arcsec), positive and finite.
    size : int
        Side of the (square) image in pixels.
    span : float
        Frame side in units of R90 (6.4 for the Galaxy Zoo 2 cutouts).

    Returns
    -------
    float or numpy.ndarray
        Arcsec per pixel, the shape of ``r90``.

    Examples
    --------
    >>> pixscale_from_r90(5.0, 80)
    0.4
    >>> pixscale_from_r90([2.5, 5.0], 160).tolist()
    [0.1, 0.2]
    """
    r = np.asarray(r90, dtype=float)
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise InvalidInputError(f"r90 must be positive and finite (arcsec), got {r90!r}")
    if int(size) < 1:
        raise InvalidInputError(f"size must be a positive number of pixels, got {size}")
    if not span > 0:
        raise InvalidInputError(f"span must be positive, got {span}")
    out = span * r / int(size)
    return float(out) if out.ndim == 0 else out


def is_lens_host(record: Mapping[str, Any]) -> bool:
    """True for galaxies suitable as lens hosts: smooth ellipticals.

    A host is smooth when its Galaxy Zoo ``Class1.1`` (smooth) weighted
    fraction exceeds 0.6, or, without votes, when its ``coarse_label``
    says "smooth" (but not "cigar-shaped", which are often edge-on disks).

    Examples
    --------
    >>> is_lens_host({"Class1.1": 0.8})
    True
    >>> is_lens_host({"Class1.1": float("nan"), "coarse_label": "completely round smooth"})
    True
    >>> is_lens_host({"coarse_label": "spiral"})
    False
    """
    try:
        smooth = float(record["Class1.1"])
    except (KeyError, IndexError, TypeError, ValueError):
        smooth = float("nan")
    if np.isfinite(smooth):
        return smooth > 0.6
    try:
        label = str(record["coarse_label"]).lower()
    except (KeyError, IndexError):
        return False
    return "smooth" in label and "cigar" not in label


def lens_host_mask(table) -> np.ndarray:
    """`is_lens_host` for every row of a table with ``Class1.1`` and/or ``coarse_label`` columns, at once.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"Class1.1": [0.8, np.nan, np.nan, 0.2],
    ...            "coarse_label": ["", "completely round smooth", "smooth cigar-shaped", "smooth"]})
    >>> lens_host_mask(t).tolist()
    [True, True, False, False]
    """
    n = len(table)
    smooth = (np.ma.filled(np.ma.asarray(table["Class1.1"], dtype=float), np.nan) if "Class1.1" in table.colnames
              else np.full(n, np.nan))
    if "coarse_label" in table.colnames:
        label = np.char.lower(np.ma.filled(np.ma.asarray(table["coarse_label"]).astype(str), ""))
        by_label = (np.char.find(label, "smooth") >= 0) & (np.char.find(label, "cigar") < 0)
    else:
        by_label = np.zeros(n, dtype=bool)
    return np.where(np.isfinite(smooth), smooth > 0.6, by_label)
