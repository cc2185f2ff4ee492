"""The evaluation lens simulator: `RayTracedLensSimulator`, written independently of the training one.

A retrieval score measured on arcs from the *same* simulator as training
(`ArcInjector`) could reward memory of that simulator's look rather than the
idea "blue arcs around a red galaxy". `RayTracedLensSimulator` shares only
the physical ranges, the configuration labels and the output convention with
it and differs in every modelling choice (see the table in
`astro_semsearch.lensing`): an elliptical power-law mass with shear and an
occasional satellite, its own NumPy ray shooting (`~astro_semsearch.lensing.physics`),
a clumpy source with toy SED colours, a per-band Moffat PSF, and Poisson
noise with a random gain. It does not need lenstronomy.

Examples
--------
>>> from astro_semsearch.lensing import RayTracedLensSimulator
>>> sim = RayTracedLensSimulator(seed=0, size=40)
>>> arcs, params = sim.arcs(2, pixscale=0.3, return_params=True)
>>> arcs.shape, str(arcs.dtype), float(arcs[0].max())
((2, 40, 40, 3), 'float32', 1.0)
>>> sorted(params[0])[:4]
['bands', 'clumps', 'config', 'coverage']
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError
from ._base import ArcSimulator
from ._checks import (
    check_number,
    check_range,
    check_size,
    log_uniform,
    per_image,
    prepare_inject,
    to_uint8,
)
from .configurations import polar_grid, record_configuration
from .hosts import R90_RANGE
from .physics import (
    DISPLAY_WEIGHTS,
    WAVELENGTH,
    convolve_fft,
    deflect,
    moffat_kernel,
    sed_band_fluxes,
    source_light,
)

__all__ = ["RayTracedLensSimulator"]

_EPS = 0.05  # radius (theta_E) of the test disc for image counting


class RayTracedLensSimulator(ArcSimulator):
    """Independent lens simulator: EPL (+ shear, + satellite) mass, clumpy source, Moffat PSF.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the sequence of arcs is reproducible.
    size : int
        Side of the square images in pixels.
    theta_e : (float, float)
        Range of (circularised) Einstein radii in arcsec, drawn uniformly.
    r90 : (float, float)
        Range of host R90 (arcsec, log-uniform) for the pixel scale when
        `arcs` gets neither ``pixscale`` nor ``r90``.
    fwhm : (float, float)
        Range of the r-band PSF FWHM in arcsec; g is broader and i/z
        narrower by (lambda / lambda_r)^-0.2.
    moffat_beta : (float, float)
        Range of the Moffat index.
    slope : (float, float)
        Clip range of the density slope, drawn from N(2.05, 0.12)
        (lens ellipticals have slopes 2.08 +- 0.16, SLACS).
    lens_q : (float, float)
        Range of the mass axis ratio.
    shear_sigma : float
        Width of each external-shear component (Gaussian), clipped at 0.15.
    perturber_probability : float
        Chance of an SIS satellite (0.08-0.25 theta_E, 0.9-2 theta_E away).
    disc_radius : (float, float)
        Range (log-uniform) of the source disc's half-light radius, arcsec.
    n_clumps : (int, int)
        Inclusive range of the number of star-forming clumps.
    clump_sigma : (float, float)
        Range (log-uniform) of the clumps' Gaussian sigma, arcsec.
    central_fraction : float
        Share of sources placed within 0.15 theta_E of the centre
        (quads and rings); the rest are area-uniform within ``max_offset``.
    max_offset : float
        Largest source offset, in units of theta_E.
    magnification_bias : float
        A drawn source position is kept with probability
        ``min(1, (mu / 10) ** magnification_bias)`` (mu: total magnification
        of the source centre; up to 12 tries), favouring the bright, long
        arcs that lens searches find. 0 keeps the area-uniform draw.
    bands : {"gri", "grz"}
        Bands of the RGB composite (R, G, B) = (i or z, r, g): SDSS (Galaxy
        Zoo 2) or Legacy Surveys.
    peak_counts : (float, float)
        Range (log-uniform) of the peak grey levels an arc adds in `inject`.
    gain : (float, float)
        Range of the gain (counts per grey level) for the Poisson noise.
    read_noise : float
        Gaussian noise (grey levels) added to every pixel by `inject`.
        Default 0: the hosts are real images that already carry their sky
        and read noise, and extra noise everywhere would mark injected
        images by their noise level alone.

    Examples
    --------
    >>> sim = RayTracedLensSimulator(seed=3, size=32)
    >>> hosts = np.full((2, 32, 32, 3), 50, dtype=np.uint8)
    >>> out = sim.inject(hosts, sim.arcs(2, pixscale=0.25))
    >>> out.shape, out.dtype.name
    ((2, 32, 32, 3), 'uint8')
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 80,
        theta_e: tuple[float, float] = (0.8, 3.0),
        r90: tuple[float, float] = R90_RANGE,
        fwhm: tuple[float, float] = (0.9, 1.6),
        moffat_beta: tuple[float, float] = (2.5, 4.5),
        slope: tuple[float, float] = (1.75, 2.35),
        lens_q: tuple[float, float] = (0.45, 1.0),
        shear_sigma: float = 0.05,
        perturber_probability: float = 0.3,
        disc_radius: tuple[float, float] = (0.15, 0.7),
        n_clumps: tuple[int, int] = (1, 6),
        clump_sigma: tuple[float, float] = (0.03, 0.12),
        central_fraction: float = 0.35,
        max_offset: float = 0.7,
        magnification_bias: float = 1.0,
        bands: str = "gri",
        peak_counts: tuple[float, float] = (15.0, 255.0),
        gain: tuple[float, float] = (1.5, 6.0),
        read_noise: float = 0.0,
    ) -> None:
        self.seed = seed
        self.size = check_size(size)
        self.theta_e = check_range("theta_e (arcsec)", theta_e, 0.0, 10.0)
        self.r90 = check_range("r90 (arcsec)", r90)
        self.fwhm = check_range("fwhm (arcsec)", fwhm)
        self.moffat_beta = check_range("moffat_beta", moffat_beta, 1.0, 20.0)
        self.slope = check_range("slope", slope, 1.0, 3.0)
        if self.slope[1] >= 3.0:
            raise InvalidInputError(f"slope must stay below 3, got {slope}")
        self.lens_q = check_range("lens_q", lens_q, 0.2, 1.0, closed=True)
        self.shear_sigma = check_number("shear_sigma", shear_sigma, 0.0, 0.2)
        self.perturber_probability = check_number("perturber_probability", perturber_probability, 0.0, 1.0)
        self.disc_radius = check_range("disc_radius (arcsec)", disc_radius)
        try:
            lo, hi = n_clumps
            ok = int(lo) == lo and int(hi) == hi and 0 <= lo <= hi <= 20
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidInputError(f"n_clumps must be integers 0 <= min <= max <= 20, got {n_clumps!r}")
        self.n_clumps = (int(lo), int(hi))
        self.clump_sigma = check_range("clump_sigma (arcsec)", clump_sigma)
        self.central_fraction = check_number("central_fraction", central_fraction, 0.0, 1.0)
        self.max_offset = check_number("max_offset (theta_E)", max_offset, 0.15, 1.5)
        self.magnification_bias = check_number("magnification_bias", magnification_bias, 0.0, 3.0)
        if bands not in DISPLAY_WEIGHTS:
            raise InvalidInputError(f"bands must be one of {tuple(DISPLAY_WEIGHTS)}, got {bands!r}")
        self.bands = bands
        self.peak_counts = check_range("peak_counts", peak_counts, 0.0, 1e4)
        self.gain = check_range("gain", gain)
        self.read_noise = check_number("read_noise", read_noise, 0.0, np.inf)
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return (f"RayTracedLensSimulator(seed={self.seed!r}, size={self.size}, theta_e={self.theta_e}, "
                f"r90={self.r90}, fwhm={self.fwhm}, bands={self.bands!r})")

    # ------------------------------------------------------------ drawing
    def _band_fluxes(self, z: float, beta_uv: float, break_mag: float) -> list[float]:
        """(g, r, i or z) f_nu fluxes of one source component, r = 1."""
        return [float(v) for v in sed_band_fluxes(z, beta_uv, break_mag, "gr" + self.bands[2])]

    def draw_parameters(self, pixscale: float | None = None) -> dict:
        """Draw one lens + source + seeing configuration (arcsec, radians).

        Parameters
        ----------
        pixscale : float, optional
            Arcsec per pixel; default from an R90 drawn in ``r90``.

        Returns
        -------
        dict
            ``pixscale``, ``r90``, lens (``theta_E``, ``theta_E_pix``,
            ``slope``, ``q``, ``phi``, ``lens_x``, ``lens_y``, ``gamma1``,
            ``gamma2``, ``perturber`` or None), source (``source_x``,
            ``source_y``, ``source_offset`` in theta_E, ``magnification``
            of the source centre, ``redshift``, ``disc`` and ``clumps`` with
            their (g, r, i/z) ``band_flux``), colours of the
            whole source (``g_r`` and ``r_i`` or ``r_z``, AB magnitudes),
            seeing (``fwhm`` r band, ``fwhm_pix``, ``moffat_beta``),
            ``bands``, ``peak`` (suggested peak grey level for `inject`),
            and the measured ``n_images``, ``flux_ratio``, ``coverage``,
            ``n_arcs``, ``is_ring`` and ``config`` (one of `CONFIGURATIONS`).

        Examples
        --------
        >>> from astro_semsearch.lensing import CONFIGURATIONS
        >>> p = RayTracedLensSimulator(seed=0, size=40).draw_parameters(pixscale=0.3)
        >>> p["config"] in CONFIGURATIONS and 0.8 <= p["theta_E"] <= 3.0
        True
        """
        rng = self.rng
        pixscale, r90 = self._one_pixscale(pixscale)
        te = float(rng.uniform(*self.theta_e))
        p: dict[str, Any] = {"pixscale": pixscale, "r90": r90, "theta_E": te, "theta_E_pix": te / pixscale,
                             "bands": self.bands}
        self._draw_lens(p)
        grid = self._lens_grid(p)
        self._place_source(p, grid)
        self._draw_source(p)
        p["fwhm"] = float(rng.uniform(*self.fwhm))
        p["fwhm_pix"] = p["fwhm"] / pixscale
        p["moffat_beta"] = float(rng.uniform(*self.moffat_beta))
        p["peak"] = float(log_uniform(rng, self.peak_counts))
        self._classify(p, grid)
        return p

    def _draw_lens(self, p: dict) -> None:
        """EPL slope, shape, a mass centre a few hundredths of an arcsec off the light, shear, satellite."""
        rng, te = self.rng, p["theta_E"]
        p["slope"] = float(np.clip(rng.normal(2.05, 0.12), *self.slope))
        p["q"] = float(rng.uniform(*self.lens_q))
        p["phi"] = float(rng.uniform(0, np.pi))
        p["lens_x"], p["lens_y"] = (float(v) for v in rng.normal(0.0, 0.03, 2))
        g1, g2 = rng.normal(0.0, self.shear_sigma, 2)
        gmag = np.hypot(g1, g2)
        if gmag > 0.15:
            g1, g2 = g1 * 0.15 / gmag, g2 * 0.15 / gmag
        p["gamma1"], p["gamma2"] = float(g1), float(g2)
        p["perturber"] = None
        if rng.random() < self.perturber_probability:
            d, a = te * rng.uniform(0.9, 2.0), rng.uniform(0, 2 * np.pi)
            p["perturber"] = {"theta_E": float(te * rng.uniform(0.08, 0.25)),
                              "x": float(d * np.cos(a)), "y": float(d * np.sin(a))}

    def _place_source(self, p: dict, grid) -> None:
        """Source position: area-uniform in a disc (a share near the centre), magnification-biased.

        A drawn position is kept with probability ``(mu / 10) ** bias``
        (up to 12 tries): lens searches find the most magnified sources first.
        """
        rng, te = self.rng, p["theta_E"]
        for _ in range(12):
            rmax = 0.15 if rng.random() < self.central_fraction else self.max_offset
            off, a = te * rmax * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
            sx, sy = p["lens_x"] + off * np.cos(a), p["lens_y"] + off * np.sin(a)
            mu = float(self._hits(grid, sx, sy, te).sum() * grid[2] / (np.pi * (_EPS * te) ** 2))
            if rng.random() < min(1.0, (mu / 10.0) ** self.magnification_bias):
                break
        p["source_x"], p["source_y"] = float(sx), float(sy)
        p["source_offset"] = float(off / te)
        p["magnification"] = mu

    def _draw_source(self, p: dict) -> None:
        """The source: an exponential disc and star-forming clumps, each with its own toy SED."""
        rng = self.rng
        z = float(rng.uniform(1.0, 2.2))
        beta_d = float(np.clip(rng.normal(-0.9, 0.5), -2.5, 0.5))
        brk_d = float(rng.uniform(0.2, 1.0))
        f_disc = float(rng.uniform(0.3, 0.8))
        r_e = float(log_uniform(rng, self.disc_radius))
        p["redshift"] = z
        p["disc"] = {"r_e": r_e, "q": float(rng.uniform(0.3, 1.0)), "phi": float(rng.uniform(0, np.pi)),
                     "flux": f_disc, "band_flux": self._band_fluxes(z, beta_d, brk_d), "uv_slope": beta_d,
                     "break_mag": brk_d}
        nk = int(rng.integers(self.n_clumps[0], self.n_clumps[1] + 1))
        shares = rng.dirichlet(np.ones(nk)) * (1 - f_disc) if nk else np.zeros(0)
        clumps = []
        for share in shares:
            # Clumps are young: bluer UV slope and a weaker break than the disc.
            beta_c = float(np.clip(beta_d - rng.uniform(0.2, 0.8), -3.0, 0.5))
            brk_c = float(brk_d * rng.uniform(0.0, 0.6))
            cx, cy = rng.normal(0.0, 0.6 * r_e, 2)
            clumps.append({"x": float(p["source_x"] + cx), "y": float(p["source_y"] + cy),
                           "sigma": float(log_uniform(rng, self.clump_sigma)), "flux": float(share),
                           "band_flux": self._band_fluxes(z, beta_c, brk_c), "uv_slope": beta_c,
                           "break_mag": brk_c})
        if not clumps:
            p["disc"]["flux"] = 1.0  # no clumps: the disc carries all the light
        p["clumps"] = clumps
        tot = p["disc"]["flux"] * np.asarray(p["disc"]["band_flux"]) + \
            sum((k["flux"] * np.asarray(k["band_flux"]) for k in clumps), np.zeros(3))
        p["g_r"] = float(-2.5 * np.log10(tot[0] / tot[1]))
        p["r_" + self.bands[2]] = float(2.5 * np.log10(tot[2] / tot[1]))

    # ------------------------------------------------------- measurement
    @staticmethod
    def _lens_grid(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, float]:
        """Source-plane positions of a 201 x 201 ray grid over +-2.3 theta_E, and its cell area."""
        te = p["theta_E"]
        g = np.linspace(-2.3 * te, 2.3 * te, 201)
        xx, yy = np.meshgrid(g + p["lens_x"], g + p["lens_y"])
        bx, by = deflect(xx, yy, p)
        return bx, by, float((g[1] - g[0]) ** 2)

    @staticmethod
    def _hits(grid, sx: float, sy: float, te: float) -> np.ndarray:
        """Grid rays landing within _EPS theta_E of (sx, sy): the images of a small disc."""
        return np.hypot(grid[0] - sx, grid[1] - sy) < _EPS * te

    def _classify(self, p: dict, grid=None) -> None:
        """Image multiplicity of the source centre and azimuthal coverage of its light.

        Multiplicity: the image-plane rays (`_lens_grid`) landing within
        0.05 theta_E of the source centre are split into connected parts;
        their areas give the flux ratio. Coverage: the unconvolved r-band
        light on the polar grid of `~astro_semsearch.lensing.configurations`.
        """
        from scipy import ndimage

        te = p["theta_E"]
        grid = self._lens_grid(p) if grid is None else grid
        labels, n = ndimage.label(self._hits(grid, p["source_x"], p["source_y"], te), structure=np.ones((3, 3)))
        areas = np.sort(np.bincount(labels.ravel())[1:])[::-1] if n else np.zeros(0)
        rad, px, py = polar_grid(te, (p["lens_x"], p["lens_y"]))
        sb = source_light(*deflect(px, py, p), p)[1]  # r band
        record_configuration(p, areas, sb, rad)

    # --------------------------------------------------------- rendering
    def render(self, p: Mapping[str, Any]) -> np.ndarray:
        """Ray-trace, blur and colour one arc from its parameters.

        A grid of ``s x s`` rays per pixel (s = 3-7, finer for coarser
        pixels) is mapped to the source plane and the three band images are
        averaged back to pixels, each convolved (FFT) with its band's Moffat
        PSF, then combined to RGB with the survey's display weights.

        Returns
        -------
        numpy.ndarray
            ``(size, size, 3)`` float32 RGB, the brightest channel peaking at 1.
        """
        n, ps = self.size, float(p["pixscale"])
        s = int(np.clip(np.ceil(ps / 0.07), 3, 7))
        # Sub-pixel centres; the frame centre ((n - 1) / 2 pixels) is (0, 0).
        sub = ((np.arange(n * s) + 0.5) / s - 0.5 - (n - 1) / 2.0) * ps
        xx, yy = np.meshgrid(sub, sub)  # rows = y, columns = x
        bands = source_light(*deflect(xx, yy, p), p, min_sigma=0.5 * ps / s)
        bands = bands.reshape(3, n, s, n, s).mean(axis=(2, 4))
        weights = DISPLAY_WEIGHTS[self.bands]
        rgb = np.zeros((n, n, 3))
        for j, band in enumerate("gr" + self.bands[2]):
            # Kolmogorov seeing: FWHM ~ lambda^-0.2.
            fwhm_b = p["fwhm_pix"] * (WAVELENGTH[band] / WAVELENGTH["r"]) ** -0.2
            kernel = moffat_kernel(fwhm_b, p["moffat_beta"], radius=min(int(np.ceil(4 * fwhm_b)), n))
            plane = {"g": 2, "r": 1}.get(band, 0)  # (R, G, B) = (i or z, r, g)
            rgb[:, :, plane] = weights[band] * convolve_fft(bands[j], kernel)
        rgb = np.clip(rgb, 0.0, None)
        peak = rgb.max()
        return (rgb / peak if peak > 0 else rgb).astype(np.float32)

    def inject(self, images: np.ndarray, arcs: np.ndarray, rng: np.random.Generator | None = None,
               peak: float | np.ndarray | None = None) -> np.ndarray:
        """Add arcs to uint8 RGB hosts as Poisson counts (plus optional read noise).

        Parameters
        ----------
        images : numpy.ndarray
            ``(N, size, size, 3)`` or ``(size, size, 3)`` uint8 RGB hosts.
        arcs : numpy.ndarray
            Output of `arcs`, same leading shape (or one arc for all images).
        rng : numpy.random.Generator, optional
            Generator for the brightness, gain and noise; default the simulator's.
        peak : float or array of shape (N,), optional
            Peak grey levels the arcs add (e.g. the ``peak`` recorded in their
            parameters); default log-uniform in ``peak_counts``.

        Returns
        -------
        numpy.ndarray
            uint8 images of the same shape.
        """
        imgs, arcs, single = prepare_inject(images, arcs, np.float64)
        rng = self.rng if rng is None else rng
        n = len(imgs)
        amp = log_uniform(rng, self.peak_counts, size=n) if peak is None else per_image("peak", peak, n)
        gain = rng.uniform(*self.gain, size=n).reshape(n, 1, 1, 1)
        light = np.broadcast_to(arcs * amp.reshape(n, 1, 1, 1), imgs.shape)
        # The arc's photons: Poisson counts in electrons, back to grey levels.
        added = rng.poisson(light * gain) / gain
        if self.read_noise > 0:
            added = added + rng.normal(0.0, self.read_noise, imgs.shape)
        return to_uint8(imgs.astype(np.float64) + added, single)
