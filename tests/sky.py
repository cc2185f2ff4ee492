"""A synthetic sky for the brick tests and benchmarks: an analytic model, survey-like brick files of it.

* `SkyModel`: smooth Gaussian blobs (a few arcsec across) whose flux at any
  (RA, Dec) is known exactly, so a resampled stamp can be checked against
  the sky itself, and the local viewer stand-in (``LegacyServer(sky=...)``)
  can render the same sky.
* `brick_grid`: a small table of bricks in the survey's layout (rows of
  constant Dec, columns of constant RA, each image a little larger than its
  brick so neighbours overlap, as the survey's 3600-pixel images overlap
  their 0.25-degree bricks).
* `write_brick`: one ``legacysurvey-<brick>-image-<band>.fits.fz`` file
  (RICE-compressed image HDU, TAN WCS centred on the brick), in the mirror
  layout ``coadd/<ddd>/<brick>/`` or flat.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

PIXSCALE = 0.262
COLOURS = {"g": 0.6, "r": 1.0, "z": 1.4}


class SkyModel:
    """Gaussian blobs (``sigma`` 2-6 arcsec) on a faint smooth background; ``flux(ra, dec, band)``."""

    def __init__(self, ra0: float, dec0: float, width_deg: float, n: int = 40, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.ra0, self.dec0 = ra0, dec0
        self.ra = ra0 + rng.uniform(-width_deg, width_deg, n) / np.cos(np.deg2rad(dec0))
        self.dec = dec0 + rng.uniform(-width_deg, width_deg, n)
        self.amp = rng.uniform(0.5, 2.0, n)
        self.sigma = rng.uniform(2.0, 6.0, n) / 3600.0

    def add(self, ra: float, dec: float, amp: float = 3.0, sigma_arcsec: float = 4.0) -> "SkyModel":
        """One more blob (a galaxy to cut out)."""
        self.ra, self.dec = np.append(self.ra, ra), np.append(self.dec, dec)
        self.amp, self.sigma = np.append(self.amp, amp), np.append(self.sigma, sigma_arcsec / 3600.0)
        return self

    def flux(self, ra, dec, band: str = "r") -> np.ndarray:
        ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
        cosd = np.cos(np.deg2rad(self.dec0))
        # A faint smooth background (a sky with nothing on it would be a blank, all-zero stamp).
        x, y = np.deg2rad(ra - self.ra0) * cosd * 3600.0, np.deg2rad(dec - self.dec0) * 3600.0
        out = 0.02 + 0.01 * np.sin(x) * np.cos(y)
        for r, d, a, s in zip(self.ra, self.dec, self.amp, self.sigma):
            dra = ((ra - r + 180.0) % 360.0 - 180.0) * cosd
            out += a * np.exp(-0.5 * (dra**2 + (dec - d) ** 2) / s**2)
        return COLOURS.get(band, 1.0) * out

    def __call__(self, ra, dec, band="r"):
        return self.flux(ra, dec, band)


def tan_wcs(ra: float, dec: float, size: int, pixscale: float = PIXSCALE) -> WCS:
    """The survey's brick (and cutout) WCS: TAN centred on (ra, dec), CRPIX at the image centre."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
    w.wcs.cd = [[-pixscale / 3600.0, 0.0], [0.0, pixscale / 3600.0]]
    return w


def render(sky, wcs: WCS, size: int, bands: str = "grz") -> np.ndarray:
    """``(len(bands), size, size)`` float32: the sky at the centre of every pixel."""
    yy, xx = np.mgrid[0:size, 0:size]
    ra, dec = wcs.pixel_to_world_values(xx, yy)
    return np.stack([sky(ra, dec, b) for b in bands]).astype(np.float32)


def brick_grid(ra0: float, dec0: float, nra: int, ndec: int, spacing_arcsec: float) -> Table:
    """A bricks table (brickname, ra, dec, ra1, ra2, dec1, dec2) of ``nra x ndec`` bricks starting at (ra0, dec0)."""
    h = spacing_arcsec / 3600.0
    rows = []
    for k in range(ndec):
        dc = dec0 + k * h
        w = h / np.cos(np.deg2rad(dc))
        for j in range(nra):
            rc = ra0 + j * w
            rows.append((f"{1000 + j:04d}p{100 + k:03d}", rc, dc, rc - w / 2, rc + w / 2, dc - h / 2, dc + h / 2))
    return Table(rows=rows, names=["brickname", "ra", "dec", "ra1", "ra2", "dec1", "dec2"])


def write_brick(root: Path, name: str, ra: float, dec: float, sky, size: int, bands: str = "grz",
                flat: bool = False) -> list[Path]:
    """Write the brick's image files (RICE-compressed, like the survey's ``.fits.fz``); return their paths."""
    d = Path(root) if flat else Path(root) / "coadd" / name[:3] / name
    d.mkdir(parents=True, exist_ok=True)
    wcs = tan_wcs(ra, dec, size)
    data = render(sky, wcs, size, bands)
    paths = []
    for plane, band in zip(data, bands):
        header = wcs.to_header()
        header["BRICKNAM"], header["FILTER"] = name, band
        hdu = fits.CompImageHDU(plane, header=header, compression_type="RICE_1", quantize_level=-0.0001)
        path = d / f"legacysurvey-{name}-image-{band}.fits.fz"
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
        paths.append(path)
    return paths


def write_bricks(root: Path, table: Table, sky, size: int, bands: str = "grz", skip=(), flat: bool = False) -> None:
    """Every brick of ``table`` except those named in ``skip``, and the table itself as ``survey-bricks.fits``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for row in table:
        if row["brickname"] not in skip:
            write_brick(root, str(row["brickname"]), float(row["ra"]), float(row["dec"]), sky, size, bands, flat)
    table.write(root / "survey-bricks.fits", overwrite=True)
