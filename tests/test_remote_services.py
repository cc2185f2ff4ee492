"""The real services' contract (docs/cutouts.rst), checked with small requests: runs only with --remote-data.

Each test asks for one 64-pixel cutout (a few kB) at a position inside
the Legacy Surveys DR10 footprint (COSMOS), without the cache, with the
package's own limits; nothing here runs by default.
"""
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from astro_semsearch.cutouts import Hips2FitsCutouts, LegacySurvey, viewer_urls

pytestmark = pytest.mark.remote_data

COSMOS = SkyCoord(150.1, 2.2, unit="deg")
SIZE = 64


def test_viewer_fits_cutout_contract():
    hdul = LegacySurvey().get_cutout(COSMOS, size=SIZE, pixscale=0.262, bands="grz", cache=False)
    assert isinstance(hdul, fits.HDUList)
    data, header = hdul[0].data, hdul[0].header
    assert data.shape == (3, SIZE, SIZE) and np.isfinite(data).any()
    w = WCS(header).celestial
    assert w.wcs.ctype[0].startswith("RA---TAN") and w.wcs.ctype[1].startswith("DEC--TAN")
    centre = w.pixel_to_world((SIZE - 1) / 2, (SIZE - 1) / 2)
    assert centre.separation(COSMOS).arcsec < 0.262 * 2  # centred on the position, to a pixel or two
    scale = np.abs(w.proj_plane_pixel_scales()[0].to_value("arcsec"))
    assert scale == pytest.approx(0.262, rel=0.02)


def test_viewer_fits_bands_are_the_planes_asked_for():
    hdul = LegacySurvey().get_cutout(COSMOS, size=SIZE, bands="gr", cache=False)
    assert hdul[0].data.shape == (2, SIZE, SIZE)


def test_viewer_jpeg_cutout_contract():
    img = LegacySurvey().get_cutout(COSMOS, size=SIZE, format="jpeg", cache=False)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8 and img.max() > 0


def test_viewer_get_cutouts_table():
    t = LegacySurvey().get_cutouts(SkyCoord([150.1, 150.11], [2.2, 2.21], unit="deg"), size=SIZE,
                                   format="jpeg", cache=False, errors="flag")
    assert list(t["ok"]) == [True, True] and list(t["in_footprint"]) == [True, True]
    assert list(t["error_kind"]) == ["", ""]


def test_viewer_link_opens():
    import requests

    url = str(viewer_urls([150.1], [2.2])[0])
    r = requests.get(url, timeout=30)
    assert r.status_code == 200


def test_hips2fits_jpeg_from_the_dr10_colour_hips():
    img = Hips2FitsCutouts().get_cutout(COSMOS, size=SIZE, pixscale=0.262, format="jpeg", cache=False)
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8 and img.max() > 0


def test_hips2fits_fits_from_a_hips_with_fits_tiles():
    hdul = Hips2FitsCutouts("CDS/P/DSS2/red").get_cutout(COSMOS, size=SIZE, pixscale=1.0, format="fits",
                                                         cache=False)
    data = np.squeeze(hdul[0].data)
    assert data.shape == (SIZE, SIZE) and np.isfinite(data).all()
    w = WCS(hdul[0].header).celestial
    assert w.wcs.ctype[0].startswith("RA---TAN")
    assert np.abs(w.proj_plane_pixel_scales()[0].to_value("arcsec")) == pytest.approx(1.0, rel=0.02)
