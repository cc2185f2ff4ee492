"""The CDS hips2fits service: cutouts resampled from a HiPS (default: Legacy Surveys DR10 colour)."""
from __future__ import annotations

import numpy as np
from astropy import units as u

from ..config import conf
from ..exceptions import InvalidInputError
from .service import CutoutService

__all__ = ["Hips2FitsCutouts", "DR10_HIPS"]

DR10_HIPS = "CDS/P/DESI-Legacy-Surveys/DR10/color"
"""The CDS HiPS of the Legacy Surveys DR10 colour images, used by `Hips2FitsCutouts`."""


class Hips2FitsCutouts(CutoutService):
    """Cutouts resampled by CDS hips2fits from a HiPS (default: Legacy Surveys DR10 colour).

    The same interface as `LegacySurvey`; ``layer`` is the HiPS identifier and
    ``bands`` is ignored (the HiPS decides the planes). The query parameters
    are made by `astroquery.hips2fits` (TAN projection centred on the
    position, field of view ``size * pixscale``).

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astro_semsearch.cutouts import Hips2FitsCutouts
    >>> p = Hips2FitsCutouts().get_cutout_async(SkyCoord(150.1, 2.2, unit="deg"), size=64,
    ...                                         format="jpeg", get_query_payload=True)
    >>> p["hips"], p["width"], p["projection"], p["format"]
    ('CDS/P/DESI-Legacy-Surveys/DR10/color', 64, 'TAN', 'jpg')
    """

    _default_layer = DR10_HIPS
    _url_conf = "hips2fits_url"

    def __init__(self, hips: str = DR10_HIPS):
        super().__init__()
        self._default_layer = hips

    def _endpoint(self, format: str) -> str:
        return str(conf.hips2fits_url)

    def _payload(self, ra, dec, *, size, pixscale, layer, bands, format) -> dict:
        from astropy.coordinates import Angle, Latitude, Longitude
        from astroquery.hips2fits import hips2fits

        p = hips2fits.query(
            hips=layer, width=size, height=size, projection="TAN", ra=Longitude(ra * u.deg),
            dec=Latitude(dec * u.deg), fov=Angle(size * pixscale * u.arcsec),
            format="jpg" if format == "jpeg" else "fits", get_query_payload=True,
        )
        # Plain Python numbers so the URL (our cache key) is stable.
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in p.items()}

    def _check_strings(self, layer, bands, format):
        if not isinstance(layer, str) or not layer.strip():
            raise InvalidInputError(f"layer must be a HiPS identifier such as {DR10_HIPS!r}, got {layer!r}")
        # Only the format is checked by the shared rules; bands do not apply to a HiPS.
        _, _, format = super()._check_strings("ls-dr10", "grz", format)
        return layer, str(bands or ""), format
