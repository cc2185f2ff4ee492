"""The physics of `RayTracedLensSimulator`, in plain NumPy: EPL deflection, clumpy source, SED colours, Moffat PSF.

Nothing here uses lenstronomy, so the evaluation simulator shares no code
path with the training one (`ArcInjector`).

* `epl_deflection`: the elliptical power-law mass of Tessore & Metcalf
  (2015), `deflect` adds external shear and an optional SIS satellite;
* `source_light`: an exponential disc plus Gaussian star-forming clumps,
  each with its own band fluxes from `sed_band_fluxes` (a toy SED: UV power
  law and a 4000 A break, redshifted);
* `moffat_kernel` and `convolve_fft`: the seeing.

Examples
--------
>>> ax, ay = epl_deflection(np.array([3.0]), np.array([4.0]), theta_e=1.5)
>>> np.round([ax[0], ay[0]], 6).tolist()
[0.9, 1.2]
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError

__all__ = [
    "DISPLAY_WEIGHTS",
    "WAVELENGTH",
    "convolve_fft",
    "deflect",
    "epl_deflection",
    "moffat_kernel",
    "sed_band_fluxes",
    "sis_deflection",
    "source_light",
]

#: Effective wavelengths (Angstrom) of the SDSS / DECam bands.
WAVELENGTH = {"g": 4770.0, "r": 6230.0, "i": 7630.0, "z": 9130.0}
#: Display weights per band (flux multipliers before the asinh stretch) of the
#: standard composites: SDSS gri (sdss_rgb) and Legacy Surveys grz (dr2_rgb).
DISPLAY_WEIGHTS = {
    "gri": {"i": 1.0, "r": 1.5, "g": 2.5},
    "grz": {"z": 2.2, "r": 3.4, "g": 6.0},
}


# ------------------------------------------------------------------ lens
def _epl_series(z: np.ndarray, f: float, t: float) -> np.ndarray:
    """The angular hypergeometric series of Tessore & Metcalf (2015), summed with their recurrence."""
    e_phi = np.exp(1j * np.angle(z))
    term = e_phi.copy()
    total = e_phi.copy()
    if f > 0:
        fact = -f * e_phi ** 2
        # Terms shrink like f**n: stop when below 1e-10 of the first.
        n_terms = int(np.ceil(np.log(1e-10) / np.log(f))) + 1
        for n in range(1, min(n_terms, 400)):
            term = term * ((2 * n - (2 - t)) / (2 * n + (2 - t))) * fact
            total += term
    return total


def epl_deflection(x: np.ndarray, y: np.ndarray, theta_e: float, q: float = 1.0, phi: float = 0.0,
                   slope: float = 2.0, center: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Deflection of an elliptical power-law (EPL) mass distribution.

    The convergence is ``kappa = (2 - t) / 2 * (b / R)**t`` with elliptical
    radius ``R = sqrt(q**2 x'**2 + y'**2)`` in the frame rotated by ``phi``
    (major axis along x'), ``t = slope - 1`` and ``b = theta_e * sqrt(q)``,
    so that the mean convergence inside the critical ellipse is one and
    ``theta_e`` is its area-equivalent (circularised) Einstein radius. The
    deflection is the hypergeometric series of Tessore & Metcalf (2015,
    A&A 580, A79), summed with their recurrence.

    Parameters
    ----------
    x, y : numpy.ndarray
        Image-plane positions (any unit; theta_e in the same unit).
    theta_e : float
        Einstein radius, > 0.
    q : float
        Axis ratio of the mass in (0, 1].
    phi : float
        Position angle of the major axis (radians, from +x towards +y).
    slope : float
        Logarithmic slope gamma of the 3-D density, in (1, 3); 2 is
        isothermal (an SIE).
    center : (float, float)
        Centre of the mass.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Deflection components (alpha_x, alpha_y), shaped like x.

    Examples
    --------
    An isothermal sphere deflects by theta_E everywhere, radially:

    >>> ax, ay = epl_deflection(np.array([3.0]), np.array([4.0]), theta_e=1.5)
    >>> np.round([ax[0], ay[0]], 6).tolist()
    [0.9, 1.2]
    """
    if not theta_e > 0:
        raise InvalidInputError(f"theta_e must be positive, got {theta_e}")
    if not 0 < q <= 1:
        raise InvalidInputError(f"q must be in (0, 1], got {q}")
    if not 1 < slope < 3:
        raise InvalidInputError(f"slope must be in (1, 3), got {slope}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    t = slope - 1.0
    b = theta_e * np.sqrt(q)
    c, s = np.cos(phi), np.sin(phi)
    dx, dy = x - center[0], y - center[1]
    xr, yr = c * dx + s * dy, -s * dx + c * dy
    z = q * xr + 1j * yr
    # Keep rays off the singular centre (its deflection is ill-defined).
    r_ell = np.maximum(np.abs(z), 1e-9 * b)
    total = _epl_series(z, (1.0 - q) / (1.0 + q), t)
    alpha = 2.0 * b / (1.0 + q) * (b / r_ell) ** (t - 1.0) * total
    ax_r, ay_r = alpha.real, alpha.imag
    return c * ax_r - s * ay_r, s * ax_r + c * ay_r


def sis_deflection(x: np.ndarray, y: np.ndarray, theta_e: float, cx: float, cy: float):
    """Deflection of a singular isothermal sphere of Einstein radius ``theta_e`` centred on ``(cx, cy)``.

    Examples
    --------
    >>> [round(float(v[0]), 6) for v in sis_deflection(np.array([1.0]), np.array([1.0]), 0.5, 1.0, 0.0)]
    [0.0, 0.5]
    """
    dx, dy = x - cx, y - cy
    r = np.maximum(np.hypot(dx, dy), 1e-9 * theta_e)
    return theta_e * dx / r, theta_e * dy / r


def deflect(x: np.ndarray, y: np.ndarray, p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Source-plane positions ``beta = theta - alpha(theta)`` for the lens parameters ``p``.

    ``p`` holds the EPL (``theta_E``, ``q``, ``phi``, ``slope``, centre
    ``lens_x``, ``lens_y``), the external shear (``gamma1``, ``gamma2``,
    potential ``0.5 g1 (x^2 - y^2) + g2 x y`` about the lens centre) and an
    optional SIS ``perturber`` (``theta_E``, ``x``, ``y``) or None.
    """
    ax, ay = epl_deflection(x, y, p["theta_E"], p["q"], p["phi"], p["slope"], (p["lens_x"], p["lens_y"]))
    dx, dy = x - p["lens_x"], y - p["lens_y"]
    ax = ax + p["gamma1"] * dx + p["gamma2"] * dy
    ay = ay + p["gamma2"] * dx - p["gamma1"] * dy
    if p.get("perturber") is not None:
        pt = p["perturber"]
        sx, sy = sis_deflection(x, y, pt["theta_E"], pt["x"], pt["y"])
        ax, ay = ax + sx, ay + sy
    return x - ax, y - ay


# ---------------------------------------------------------------- source
def sed_band_fluxes(redshift: float, uv_slope: float, break_mag: float, bands: str = "gri") -> np.ndarray:
    """Relative f_nu fluxes of a toy star-forming SED in ``bands`` (r = 1).

    The rest-frame SED is a UV power law ``f_lambda ~ lambda**uv_slope``
    (star-forming galaxies have slopes of about -2.5 to -0.5) that is fainter
    by ``break_mag`` magnitudes blueward of the 4000 A / Balmer break (a
    smooth step 5 % wide in wavelength), observed at ``redshift`` at the
    effective wavelength of each band.

    Parameters
    ----------
    redshift : float
        Source redshift, >= 0.
    uv_slope : float
        Power-law slope beta of f_lambda.
    break_mag : float
        Strength of the 4000 A break in magnitudes, >= 0.
    bands : str
        Band letters from "griz".

    Returns
    -------
    numpy.ndarray
        One f_nu flux per band, normalised so that r (or the middle band) is 1.

    Examples
    --------
    A flat f_nu spectrum (beta = -2) without a break has no colour:

    >>> sed_band_fluxes(1.5, -2.0, 0.0).round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    if not redshift >= 0 or not break_mag >= 0:
        raise InvalidInputError(f"redshift and break_mag must be >= 0, got {redshift}, {break_mag}")
    unknown = set(bands) - set(WAVELENGTH)
    if unknown or not bands:
        raise InvalidInputError(f"bands must be letters from 'griz', got {bands!r}")
    lam_obs = np.array([WAVELENGTH[b] for b in bands])
    lam_rest = lam_obs / (1.0 + redshift)
    # f_nu = f_lambda lambda^2 ~ lambda^(beta + 2)
    f_nu = lam_rest ** (uv_slope + 2.0)
    blue_side = 1.0 / (1.0 + np.exp((np.log(lam_rest) - np.log(4000.0)) / 0.05))
    f_nu = f_nu * 10 ** (-0.4 * break_mag * blue_side)
    ref = bands.index("r") if "r" in bands else len(bands) // 2
    return f_nu / f_nu[ref]


def source_light(bx: np.ndarray, by: np.ndarray, p: Mapping[str, Any], min_sigma: float = 0.0) -> np.ndarray:
    """Surface brightness of the clumpy source at source-plane points, per band: ``(3, *bx.shape)``.

    ``p`` holds the source centre (``source_x``, ``source_y``), the ``disc``
    (``r_e`` half-light radius, ``q``, ``phi``, ``flux``, ``band_flux``)
    and the ``clumps`` (each ``x``, ``y``, ``sigma``, ``flux``,
    ``band_flux``). ``min_sigma`` widens the clumps (in quadrature) so that
    none is narrower than the ray spacing.
    """
    out = np.zeros((3, *bx.shape))
    d = p["disc"]
    c, s = np.cos(d["phi"]), np.sin(d["phi"])
    dx, dy = bx - p["source_x"], by - p["source_y"]
    u, v = c * dx + s * dy, -s * dx + c * dy
    # Area-preserving elliptical radius; exponential scale length = Re / 1.678.
    h = d["r_e"] / 1.678
    r = np.sqrt(d["q"] * u ** 2 + v ** 2 / d["q"])
    prof = np.exp(-r / h) / (2 * np.pi * h ** 2)
    out += d["flux"] * np.asarray(d["band_flux"]).reshape((3,) + (1,) * bx.ndim) * prof[None]
    for k in p["clumps"]:
        sig2 = k["sigma"] ** 2 + min_sigma ** 2
        prof = np.exp(-0.5 * ((bx - k["x"]) ** 2 + (by - k["y"]) ** 2) / sig2) / (2 * np.pi * sig2)
        out += k["flux"] * np.asarray(k["band_flux"]).reshape((3,) + (1,) * bx.ndim) * prof[None]
    return out


# ------------------------------------------------------------------- PSF
def moffat_kernel(fwhm_pix: float, beta: float = 3.5, radius: int | None = None, oversample: int = 5) -> np.ndarray:
    """A normalised, pixel-integrated Moffat PSF ``(1 + (r/alpha)^2)^-beta``.

    Parameters
    ----------
    fwhm_pix : float
        Full width at half maximum in pixels, > 0.
    beta : float
        Moffat index, > 1 (ground-based seeing: about 2.5-4.5).
    radius : int, optional
        Half-size of the kernel in pixels; default ``ceil(4 * fwhm_pix)``.
    oversample : int
        Sub-pixels per pixel side for the pixel integration.

    Returns
    -------
    numpy.ndarray
        ``(2 * radius + 1, 2 * radius + 1)`` kernel summing to 1.

    Examples
    --------
    >>> k = moffat_kernel(3.0, beta=3.0)
    >>> k.shape, round(float(k.sum()), 6), bool(k[12, 12] == k.max())
    ((25, 25), 1.0, True)
    """
    if not fwhm_pix > 0 or not beta > 1:
        raise InvalidInputError(f"fwhm_pix must be > 0 and beta > 1, got {fwhm_pix}, {beta}")
    alpha = fwhm_pix / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    radius = int(np.ceil(4 * fwhm_pix)) if radius is None else int(radius)
    if radius < 1:
        raise InvalidInputError(f"radius must be >= 1, got {radius}")
    n = 2 * radius + 1
    sub = (np.arange(n * oversample) + 0.5) / oversample - radius - 0.5
    rr = sub[:, None] ** 2 + sub[None, :] ** 2
    k = (1.0 + rr / alpha ** 2) ** (-beta)
    k = k.reshape(n, oversample, n, oversample).sum(axis=(1, 3))
    return k / k.sum()


def convolve_fft(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Linear (zero-padded, not circular) convolution by FFT, cropped to ``img``'s shape (centred kernel).

    Examples
    --------
    >>> img = np.zeros((5, 5)); img[2, 2] = 1.0
    >>> bool(np.allclose(convolve_fft(img, np.full((3, 3), 1 / 9))[1:4, 1:4], 1 / 9))
    True
    """
    h, w = img.shape
    kh, kw = kernel.shape
    fh, fw = h + kh - 1, w + kw - 1
    spec = np.fft.rfft2(img, s=(fh, fw)) * np.fft.rfft2(kernel, s=(fh, fw))
    full = np.fft.irfft2(spec, s=(fh, fw))
    top, left = kh // 2, kw // 2
    return full[top:top + h, left:left + w]
