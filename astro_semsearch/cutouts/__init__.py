"""Image cutouts from the DESI Legacy Imaging Surveys, the astroquery way.

Two services share one interface:

`LegacySurvey`
    The Legacy Survey viewer's ``fits-cutout`` and ``jpeg-cutout`` endpoints
    (``conf.legacysurvey_url``, by default https://www.legacysurvey.org/viewer).
    FITS cutouts hold calibrated fluxes (nanomaggies) in one plane per band.
`Hips2FitsCutouts`
    The CDS hips2fits service (``conf.hips2fits_url``) resampling the DR10
    HiPS, a second source for when the viewer is slow or down.

A third source, `LegacySurveyBricks`, resamples the survey's own brick
coadds (a local mirror, or files fetched once into astropy's cache from
``conf.legacysurvey_bricks_url``): no request per galaxy, for bulk builds.
Its ``get_cutouts`` returns the same table (FITS fluxes only).

Framing by size (`astro_semsearch.cutouts.framing`) turns each galaxy's R90
into the pixel scale that frames it as the model was trained; every
``get_cutouts`` takes one ``pixscale`` per position.

Both are `astroquery.query.BaseQuery` subclasses with the usual
``get_cutout_async`` (raw response) / ``get_cutout`` (parsed) pair, and a
``get_cutouts`` for many positions at once that

* validates the request on our side first (the viewer silently clamps
  ``size`` at 3000 pixels: we refuse instead),
* runs ``conf.max_concurrency`` requests at a time with a progress bar,
* retries on HTTP 408, 429 (waiting the server's ``Retry-After``, at most
  ``conf.max_retry_after``), 5xx, resets, time-outs and corrupt bodies, with
  exponential back-off (``conf.backoff * 2**attempt`` seconds), up to
  ``conf.max_retries`` times and ``conf.max_retry_time`` seconds per cutout,
* limits every request in all (``conf.request_deadline``, not only per read)
  and every body after decompression (``conf.max_body_bytes``),
* retries a connection refused or a host name not resolved only once, and
  stops with one `~astro_semsearch.exceptions.ServiceUnreachableError` naming
  the URL when the service is not there (``conf.unreachable_after``),
* keeps every cutout in astropy's download cache keyed by its URL, and
  checks a cached file before using it (a truncated or corrupt file is
  deleted and fetched again, never returned),
* flags blank cutouts (outside the survey footprint the viewer returns an
  all-zero image) in an ``in_footprint`` column.

Configuration is read from `astro_semsearch.conf` at call time, so
``with conf.set_temp("legacysurvey_url", "http://127.0.0.1:8000"): ...``
redirects every request.

Examples
--------
>>> from astropy.coordinates import SkyCoord
>>> from astro_semsearch.cutouts import LegacySurvey
>>> ls = LegacySurvey()
>>> ls.get_cutout_async(SkyCoord(150.1, 2.2, unit="deg"), size=64,
...                     get_query_payload=True)   # what would be sent
{'ra': 150.1, 'dec': 2.2, 'layer': 'ls-dr10', 'pixscale': 0.262, 'size': 64, 'bands': 'grz'}
>>> cut = ls.get_cutout(SkyCoord(150.1, 2.2, unit="deg"), size=64)  # doctest: +REMOTE_DATA
>>> cut[0].data.shape                                                # doctest: +REMOTE_DATA
(3, 64, 64)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._lazy import lazy_exports
from ..exceptions import InvalidInputError, TargetNotFoundError
from .framing import FIXED_SIZE, NATIVE_PIXSCALE
from .viewer import viewer_urls

if TYPE_CHECKING:  # annotations only
    from astropy.table import Table

    from .bricks import LegacySurveyBricks
    from .service import CutoutService

__all__ = ["LegacySurvey", "Hips2FitsCutouts", "LegacySurveyBricks", "CutoutService", "get_cutouts",
           "resolve_source", "fetch_and_embed", "viewer_urls", "MAX_SIZE", "DR10_HIPS"]

# The services are imported when first used: they bring astroquery (and pyvo, scipy), which a search
# that only links to the viewer (`viewer_urls`) does not need.
_LAZY = {"LegacySurvey": "legacysurvey", "Hips2FitsCutouts": "hips2fits", "DR10_HIPS": "hips2fits",
         "CutoutService": "service", "MAX_SIZE": "service", "LegacySurveyBricks": "bricks"}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


def get_cutouts(coordinates, *, source: str | CutoutService | None = None, **kwargs) -> Table:
    """Fetch cutouts with `LegacySurvey` (default) or `Hips2FitsCutouts` (``source="hips2fits"``).

    See `LegacySurvey.get_cutouts` for the parameters and the returned table.
    """
    return resolve_source(source).get_cutouts(coordinates, **kwargs)


def resolve_source(source) -> CutoutService | LegacySurveyBricks:
    """A cutout source from a name (``"legacysurvey"``, ``"hips2fits"``), a `CutoutService` or `LegacySurveyBricks`."""
    from .bricks import LegacySurveyBricks
    from .hips2fits import Hips2FitsCutouts
    from .legacysurvey import LegacySurvey
    from .service import CutoutService

    if source is None or (isinstance(source, str) and source.lower() in ("legacysurvey", "legacy", "ls")):
        return LegacySurvey()
    if isinstance(source, str) and source.lower() == "hips2fits":
        return Hips2FitsCutouts()
    if isinstance(source, (CutoutService, LegacySurveyBricks)):
        return source
    raise InvalidInputError(f"source must be 'legacysurvey', 'hips2fits' or a LegacySurvey/Hips2FitsCutouts/"
                            f"LegacySurveyBricks, got {source!r}")


def fetch_and_embed(coord, model, *, source=None, size: int = FIXED_SIZE, pixscale=NATIVE_PIXSCALE, layer: str | None = None,
                    bands: str = "grz", format: str = "fits", cache: bool = True) -> np.ndarray:
    """Fetch the cutout at one position and embed it with ``model``.

    Used by `~astro_semsearch.similar_to` for a position that is not in the
    index.

    Returns
    -------
    numpy.ndarray, shape (1, model.dim)

    Raises
    ------
    TargetNotFoundError
        When the position is outside the survey footprint (blank cutout).
    CutoutError
        When the cutout cannot be fetched; a
        `~astro_semsearch.exceptions.ServiceUnreachableError` (naming the URL
        and the conf item to check) when the service cannot be reached, after
        one quick retry rather than the full back-off.
    """
    t = resolve_source(source).get_cutouts(coord, size=size, pixscale=pixscale, layer=layer, bands=bands,
                                            format=format, cache=cache, errors="raise", progress=False)
    if len(t) != 1:
        raise InvalidInputError(f"fetch_and_embed takes one position, got {len(t)}")
    if not t["in_footprint"][0]:
        raise TargetNotFoundError(
            f"RA={t['ra'][0]:.6f} Dec={t['dec'][0]:+.6f} is outside the survey footprint "
            f"(the {t.meta['astro_semsearch']['layer']} cutout is blank); nothing to embed"
        )
    return np.asarray(model.embed_images(np.asarray(t["image"][0])), dtype=np.float32).reshape(1, -1)
