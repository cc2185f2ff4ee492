"""Links to the Legacy Survey sky viewer (no astroquery: every result table makes them)."""
from __future__ import annotations

import numpy as np

from ..config import conf

__all__ = ["viewer_urls"]


def viewer_urls(ra, dec, layer: str | None = None, zoom: int = 16) -> np.ndarray:
    """Links that open each position in the Legacy Survey sky viewer.

    Parameters
    ----------
    ra, dec : array-like (deg)
    layer : str, optional
        Viewer layer (default ``conf.viewer_layer``, e.g. ``"ls-dr10"``).
    zoom : int
        Viewer zoom level (16 shows a galaxy-sized field).

    Examples
    --------
    >>> str(viewer_urls([150.1], [2.2], layer="ls-dr10")[0])
    'https://www.legacysurvey.org/viewer?ra=150.100000&dec=2.200000&layer=ls-dr10&zoom=16'
    """
    layer = layer or conf.viewer_layer
    base = str(conf.legacysurvey_url).rstrip("/")
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    return np.array([f"{base}?ra={r:.6f}&dec={d:.6f}&layer={layer}&zoom={int(zoom)}" for r, d in zip(ra, dec)],
                    dtype=str)
