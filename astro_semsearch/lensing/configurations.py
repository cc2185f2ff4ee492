"""Labelling a simulated lens as a ring, quad, pair or single arc (shared by both simulators).

Each simulator measures, with its own lens model, the point images of the
source centre (their number and the flux ratio of the two brightest) and the
azimuthal profile of the unconvolved lensed light on a polar grid
(`polar_grid`: 0.3-2.2 theta_E, 90 azimuths). The labels follow from these
numbers alone (`label_configuration`), so the two simulators use the same
definitions:

* **ring**: the lensed light covers at least `RING_COVERAGE` (75 %) of the
  azimuths (an azimuth is lit above 15 % of the brightest one);
* **quad**: four or more point images;
* **pair**: two or three images whose two brightest differ by at most
  `SINGLE_FLUX_RATIO` (2.5) in flux;
* **single**: otherwise, one dominant arc (a faint counter-image is usually
  lost in the lens galaxy's light).

Examples
--------
>>> label_configuration({"coverage": 0.9, "n_images": 2, "flux_ratio": 1.2})
'ring'
>>> label_configuration({"coverage": 0.3, "n_images": 2, "flux_ratio": 4.0})
'single'
"""
from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np

__all__ = [
    "CONFIGURATIONS",
    "RING_COVERAGE",
    "SINGLE_FLUX_RATIO",
    "azimuthal_coverage",
    "label_configuration",
    "polar_grid",
    "record_configuration",
]

#: Lens configurations, in the order they are tested when labelling an arc.
CONFIGURATIONS = ("ring", "quad", "pair", "single")

#: Lit fraction of the azimuths that makes a ring.
RING_COVERAGE = 0.75
#: Above this flux ratio of the two brightest images an arc is a "single".
SINGLE_FLUX_RATIO = 2.5
# An azimuth is "lit" above _COVERAGE_LEVEL of the brightest one; separate
# arcs are counted above _ARC_LEVEL (a counter-image 2.5x fainter is not).
_COVERAGE_LEVEL = 0.15
_ARC_LEVEL = 0.4
_N_AZIMUTHS = 90
_N_RADII = 48


def polar_grid(theta_e: float, center: tuple[float, float] = (0.0, 0.0)):
    """Image-plane points of the azimuthal measurement: ``(radii (48,), x (48, 90), y (48, 90))``.

    Radii 0.3-2.2 ``theta_e`` around ``center``, 90 azimuths.

    Examples
    --------
    >>> rad, x, y = polar_grid(1.0)
    >>> x.shape, round(float(rad[0]), 2), round(float(rad[-1]), 2)
    ((48, 90), 0.3, 2.2)
    """
    ang = np.linspace(0.0, 2 * np.pi, _N_AZIMUTHS, endpoint=False)
    rad = theta_e * np.linspace(0.3, 2.2, _N_RADII)
    x = center[0] + rad[:, None] * np.cos(ang)[None, :]
    y = center[1] + rad[:, None] * np.sin(ang)[None, :]
    return rad, x, y


def azimuthal_coverage(sb: np.ndarray, rad: np.ndarray) -> tuple[float, int]:
    """Azimuthal coverage and number of separate arcs of light sampled on `polar_grid`.

    The surface brightness ``sb`` (radii x azimuths) is summed over radius
    into flux per azimuth. The measure describes the lens system itself, not
    the pixel scale or the seeing (which merge close images).

    Returns
    -------
    (float, int)
        Fraction of azimuths above 15 % of the brightest, and the number of
        separate runs of azimuths above 40 % of it.

    Examples
    --------
    >>> rad, x, y = polar_grid(1.0)
    >>> azimuthal_coverage(np.ones_like(x), rad)                  # a full ring
    (1.0, 1)
    >>> azimuthal_coverage(np.where(np.abs(y) < 0.2, 1.0, 0.0) * (x > 0), rad)[1]
    1
    """
    prof = (np.asarray(sb, dtype=float) * rad[:, None]).sum(axis=0)
    top = prof.max()
    if not top > 0:
        return 0.0, 0
    coverage = float(np.mean(prof > _COVERAGE_LEVEL * top))
    lit = prof > _ARC_LEVEL * top
    n_arcs = 1 if lit.all() else int(np.sum(lit & ~np.roll(lit, 1)))
    return coverage, n_arcs


def label_configuration(p: Mapping[str, Any]) -> str:
    """The configuration (one of `CONFIGURATIONS`) of measured ``coverage``, ``n_images``, ``flux_ratio``."""
    if p["coverage"] >= RING_COVERAGE:
        return "ring"
    if p["n_images"] >= 4:
        return "quad"
    if p["n_images"] >= 2 and p["flux_ratio"] <= SINGLE_FLUX_RATIO:
        return "pair"
    return "single"


def record_configuration(p: MutableMapping[str, Any], magnifications: np.ndarray, sb: np.ndarray,
                         rad: np.ndarray) -> None:
    """Store the measurements and the label in ``p``.

    Parameters
    ----------
    p : dict
        The arc's parameters; gets ``n_images``, ``flux_ratio``, ``coverage``,
        ``n_arcs``, ``is_ring`` and ``config``.
    magnifications : numpy.ndarray
        Fluxes (or magnifications) of the point images, brightest first.
    sb, rad
        The lensed light on `polar_grid` and its radii (`azimuthal_coverage`).
    """
    mu = np.asarray(magnifications, dtype=float)
    p["n_images"] = len(mu)
    p["flux_ratio"] = float(mu[0] / mu[1]) if len(mu) >= 2 else float("inf")
    p["coverage"], p["n_arcs"] = azimuthal_coverage(sb, rad)
    p["is_ring"] = bool(p["coverage"] >= RING_COVERAGE)
    p["config"] = label_configuration(p)
