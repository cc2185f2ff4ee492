"""The DESI Legacy Imaging Surveys viewer: FITS and JPEG cutouts, and links to its sky viewer."""
from __future__ import annotations

import numpy as np

from ..config import conf
from .service import CutoutService

__all__ = ["LegacySurvey", "viewer_urls"]


class LegacySurvey(CutoutService):
    """Cutouts from the DESI Legacy Imaging Surveys viewer (``conf.legacysurvey_url``).

    Endpoints: ``{url}/fits-cutout`` and ``{url}/jpeg-cutout`` with parameters
    ``ra, dec, layer, pixscale, size, bands``. A FITS cutout's primary HDU has
    shape ``(len(bands), size, size)`` (nanomaggies) and a TAN WCS.

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astro_semsearch.cutouts import LegacySurvey
    >>> coords = SkyCoord([150.1, 150.2], [2.2, 2.3], unit="deg")
    >>> t = LegacySurvey().get_cutouts(coords, size=64, format="jpeg")  # doctest: +REMOTE_DATA
    >>> t["image"].shape                                               # doctest: +REMOTE_DATA
    (2, 64, 64, 3)
    """

    _default_layer = "ls-dr10"

    def _endpoint(self, format: str) -> str:
        base = str(conf.legacysurvey_url).rstrip("/")
        return f"{base}/{'jpeg' if format == 'jpeg' else 'fits'}-cutout"

    def _payload(self, ra, dec, *, size, pixscale, layer, bands, format) -> dict:
        # ``bands`` is ignored by the viewer for JPEG; it is sent anyway so the URL (the cache key) names
        # what was asked.
        return {"ra": round(ra, 7), "dec": round(dec, 7), "layer": layer, "pixscale": pixscale, "size": size,
                "bands": bands}

    def _expected_channels(self, bands: str, format: str) -> int | None:
        return len(bands) if format == "fits" else 3


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
