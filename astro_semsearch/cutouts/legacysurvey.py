"""The DESI Legacy Imaging Surveys viewer: FITS and JPEG cutouts, and links to its sky viewer."""
from __future__ import annotations

from ..config import conf
from .service import CutoutService
from .viewer import viewer_urls

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
