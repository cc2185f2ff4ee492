"""The training lens simulator: `ArcInjector` (lenstronomy SIE + shear, Sérsic source, Gaussian PSF).

There are no real strong-lens images in the training data, yet lenses are
one of the rarest and most searched-for phenomena. `ArcInjector` paints the
light of a lensed background galaxy around real smooth (elliptical) host
galaxies, so that the image-text model sees "a strong gravitational lens with
blue arcs around a red galaxy" during training.

Everything is drawn in **physical units** (arcseconds) and converted to
pixels with a per-image pixel scale (`~astro_semsearch.lensing.pixscale_from_r90`:
``6.4 * R90 / size``; without a scale or an R90, R90 is drawn log-uniformly
in ``r90``, default 2-8"), so that the arcs have the sizes of real
galaxy-scale lenses (Einstein radii 0.8-3", i.e. 3-11 pixels in the DESI
Legacy Surveys at 0.262"/pixel) and hug the lens galaxy's light.

What is modelled (with `lenstronomy`, Birrer & Amara 2018):

* the lens: a singular isothermal ellipsoid (SIE) centred on the host, with a
  random axis ratio and orientation, plus external shear;
* the source: an elliptical Sérsic galaxy of random size, ellipticity and
  index, placed relative to the lens caustics according to a controllable
  mix of configurations (`~astro_semsearch.lensing.CONFIGURATIONS`):
  near-complete Einstein rings (a source covering the centre), quads (source
  inside the astroid caustic), arc pairs (just outside it) and single
  dominant arcs (further out). Offsets are weighted towards the caustic, as
  lens searches favour the most magnified arcs. The configuration each arc
  *actually* has is measured afterwards
  (`~astro_semsearch.lensing.configurations`) and recorded;
* the seeing: a Gaussian point-spread function of FWHM 0.9-1.6";
* colours: mostly blue (bright in g, faint in z/i: star-forming sources),
  some green or white, jittered per arc, uniform over the arc;
* brightness: drawn per injected image, with a fraction of faint arcs barely
  above the noise;
* noise: Gaussian, of standard deviation half the square root of the added
  arc light (the rest of the image keeps its own, real noise).

What is *not* modelled: the host's own light is neither subtracted nor
re-lensed, the lens mass is centred on the frame and not tied to the host's
measured shape, there is no correlation of Einstein radius with host size or
velocity dispersion, no multiple source planes, microlensing, time delays,
compound or cluster lenses, and no per-image seeing. The arcs are a *visual*
stand-in for training; they are not for lens-model science. Small Einstein
radii on large hosts land on the host's core and are invisible at the
model's resolution (`~astro_semsearch.lensing.arc_contrast` measures it).

Examples
--------
>>> from astro_semsearch.lensing import ArcInjector
>>> inj = ArcInjector(seed=0, size=40)
>>> arcs, params = inj.arcs(2, pixscale=0.3, return_params=True)
>>> arcs.shape, str(arcs.dtype)
((2, 40, 40, 3), 'float32')
>>> round(params[0]["theta_E_pix"] * 0.3 / params[0]["theta_E"], 6)
1.0
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..exceptions import InvalidInputError
from . import _sie_model as sie_model
from ._base import ArcSimulator
from ._checks import (
    check_number,
    check_range,
    check_size,
    check_weights,
    inside_polygon,
    log_uniform,
    per_image,
    prepare_inject,
    to_uint8,
)
from .configurations import CONFIGURATIONS, record_configuration
from .hosts import R90_RANGE

__all__ = ["ArcInjector"]

# Mean (R, G, B) = (i or z, r, g) colours of the source families. Blue is a
# star-forming galaxy; green mimics strong [OIII] / Hbeta in r at z~0.3-0.5;
# white is an older or dusty source.
_COLOURS = {
    "blue": (0.45, 0.75, 1.0),
    "green": (0.55, 1.00, 0.90),
    "white": (0.90, 0.95, 1.00),
}
_DEFAULT_MIX = {"ring": 0.2, "quad": 0.25, "pair": 0.3, "single": 0.25}
_DEFAULT_COLOUR_MIX = {"blue": 0.8, "green": 0.08, "white": 0.12}


class ArcInjector(ArcSimulator):
    """Simulate lensed arcs (SIE + shear lens, Sérsic source, Gaussian PSF) in arcsec.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the sequence of arcs is reproducible.
    size : int
        Side of the square images in pixels (the preloaded training images
        are 80 x 80).
    theta_e : (float, float)
        Range of Einstein radii in arcsec, drawn uniformly. The default
        (0.8, 3.0) spans the galaxy-scale lenses found in the DESI Legacy
        Surveys.
    r90 : (float, float)
        Range of host Petrosian R90 (arcsec), drawn log-uniformly, used for the
        pixel scale when `arcs` is given neither ``pixscale`` nor ``r90``.
    fwhm : (float, float)
        Range of the PSF's full width at half maximum, in arcsec.
    source_radius : (float, float)
        Range (log-uniform) of the source's Sérsic half-light radius, arcsec.
    sersic_index : (float, float)
        Range of the source's Sérsic index.
    lens_q : (float, float)
        Range of the lens mass axis ratio.
    shear : (float, float)
        Range of the external shear strength.
    mix : mapping, optional
        Relative frequency of the *targeted* configurations, keys from
        `CONFIGURATIONS`; default ``{"ring": 0.2, "quad": 0.25, "pair": 0.3,
        "single": 0.25}``. The configuration actually obtained is measured
        and stored as ``params["config"]``.
    colour_mix : mapping, optional
        Relative frequency of the source colour families ``"blue"``,
        ``"green"`` and ``"white"``; default 0.8, 0.08, 0.12.
    colour_jitter : float
        Relative standard deviation of the per-channel colour jitter.
    brightness : (float, float)
        Range of the peak arc amplitude added by `inject`, as a fraction of
        255, for ordinary arcs.
    faint_fraction : float
        Fraction of arcs drawn from ``faint_brightness`` instead.
    faint_brightness : (float, float)
        Range of the peak amplitude of faint arcs (fraction of 255); the
        default 0.03-0.1 (8-25 grey levels) is barely above the noise.

    Examples
    --------
    >>> import numpy as np
    >>> inj = ArcInjector(seed=1, size=40)
    >>> hosts = np.full((2, 40, 40, 3), 60, dtype=np.uint8)
    >>> out = inj.inject(hosts, inj.arcs(2))
    >>> out.dtype == np.uint8 and out.shape == hosts.shape
    True
    >>> p = inj.draw_parameters(pixscale=0.25, config="quad")
    >>> p["target_config"], p["config"] in CONFIGURATIONS
    ('quad', True)
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 80,
        theta_e: tuple[float, float] = (0.8, 3.0),
        r90: tuple[float, float] = R90_RANGE,
        fwhm: tuple[float, float] = (0.9, 1.6),
        source_radius: tuple[float, float] = (0.12, 0.7),
        sersic_index: tuple[float, float] = (0.5, 3.0),
        lens_q: tuple[float, float] = (0.5, 1.0),
        shear: tuple[float, float] = (0.0, 0.1),
        mix: Mapping[str, float] | None = None,
        colour_mix: Mapping[str, float] | None = None,
        colour_jitter: float = 0.1,
        brightness: tuple[float, float] = (0.25, 0.9),
        faint_fraction: float = 0.2,
        faint_brightness: tuple[float, float] = (0.03, 0.1),
    ) -> None:
        self.seed = seed
        self.size = check_size(size)
        # Einstein radii beyond ~10" are cluster lenses, not galaxy lenses.
        self.theta_e = check_range("theta_e (arcsec)", theta_e, 0.0, 10.0)
        self.r90 = check_range("r90 (arcsec)", r90)
        self.fwhm = check_range("fwhm (arcsec)", fwhm)
        self.source_radius = check_range("source_radius (arcsec)", source_radius)
        # lenstronomy's Sérsic profile is ill-behaved below n~0.3.
        self.sersic_index = check_range("sersic_index", sersic_index, 0.3, 8.0, closed=True)
        self.lens_q = check_range("lens_q", lens_q, 0.2, 1.0, closed=True)
        self.shear = check_range("shear", shear, 0.0, 0.3, closed=True)
        self.mix = check_weights("mix", _DEFAULT_MIX if mix is None else mix, CONFIGURATIONS)
        self.colour_mix = check_weights("colour_mix", _DEFAULT_COLOUR_MIX if colour_mix is None else colour_mix,
                                        tuple(_COLOURS))
        self.colour_jitter = check_number("colour_jitter", colour_jitter, 0.0, 1.0, closed_high=False)
        self.brightness = check_range("brightness", brightness, 0.0, 4.0)
        self.faint_fraction = check_number("faint_fraction", faint_fraction, 0.0, 1.0)
        self.faint_brightness = check_range("faint_brightness", faint_brightness, 0.0, 4.0)
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return (f"ArcInjector(seed={self.seed!r}, size={self.size}, theta_e={self.theta_e}, r90={self.r90}, "
                f"fwhm={self.fwhm})")

    # ------------------------------------------------------------ drawing
    def draw_parameters(self, pixscale: float | None = None, config: str | None = None) -> dict:
        """Draw one set of lens and source parameters (arcsec, radians).

        Parameters
        ----------
        pixscale : float, optional
            Pixel scale of the image in arcsec/pixel; default from a host R90
            drawn in ``r90``.
        config : str, optional
            Targeted configuration (one of `CONFIGURATIONS`); default drawn
            from ``mix``.

        Returns
        -------
        dict
            Lens (``theta_E`` arcsec, ``theta_E_pix``, ``q``, ``phi``,
            ``e1``, ``e2``, ``gamma_ext``, ``phi_ext``, ``gamma1``,
            ``gamma2``), source (``source_x``, ``source_y`` arcsec,
            ``source_offset`` in units of theta_E, ``R_sersic`` arcsec,
            ``n_sersic``, ``source_q``, ``source_e1``, ``source_e2``), seeing
            (``fwhm`` arcsec, ``fwhm_pix``), ``pixscale``, ``r90`` (NaN when
            given a pixel scale), colour (``colour`` RGB with maximum 1,
            ``colour_family``), ``brightness`` (a suggested peak amplitude
            for `inject`, fraction of 255) and ``faint``, ``target_config``
            and the measured ``config``, ``n_images`` (point images of the
            source centre), ``flux_ratio`` (of the two brightest),
            ``coverage`` (fraction of azimuths lit), ``n_arcs`` (separate
            bright arcs) and ``is_ring``.

        Examples
        --------
        >>> inj = ArcInjector(seed=0, size=40)
        >>> p = inj.draw_parameters(pixscale=0.25)
        >>> 0.8 <= p["theta_E"] <= 3.0 and abs(p["theta_E_pix"] - p["theta_E"] / 0.25) < 1e-9
        True
        """
        rng = self.rng
        if config is None:
            keys = list(self.mix)
            config = keys[int(rng.choice(len(keys), p=[self.mix[k] for k in keys]))]
        elif config not in CONFIGURATIONS:
            raise InvalidInputError(f"config must be one of {CONFIGURATIONS}, got {config!r}")
        pixscale, r90 = self._one_pixscale(pixscale)
        p: dict[str, Any] = {"pixscale": pixscale, "r90": r90, "target_config": config}
        theta_e = float(rng.uniform(*self.theta_e))
        p["theta_E"], p["theta_E_pix"] = theta_e, theta_e / pixscale
        fwhm = float(rng.uniform(*self.fwhm))  # drawn first: the labels depend on it
        p["fwhm"], p["fwhm_pix"] = fwhm, fwhm / pixscale
        caustic = self._draw_lens(p, config)
        self._draw_source_shape(p, config, caustic)
        self._place_source(p, config, caustic)
        self._draw_colour(p)
        b, faint = self._brightness(1, rng)
        p["brightness"], p["faint"] = float(b[0]), bool(faint[0])
        return p

    def _draw_lens(self, p: dict, config: str) -> np.ndarray:
        """Draw the SIE + shear into ``p``; return its caustic.

        Quads and rings need a caustic big enough to put a source in, so for
        them a nearly round, unsheared lens is redrawn (a few tries).
        """
        rng = self.rng
        for _ in range(6):
            # q = 1 without shear is degenerate for lenstronomy's analytic solver.
            q = min(float(rng.uniform(*self.lens_q)), 0.9999)
            phi = float(rng.uniform(0, np.pi))
            e = (1 - q) / (1 + q)
            g = float(rng.uniform(*self.shear))
            phi_g = float(rng.uniform(0, np.pi))
            p.update(q=q, phi=phi, e1=e * np.cos(2 * phi), e2=e * np.sin(2 * phi),
                     gamma_ext=g, phi_ext=phi_g, gamma1=g * np.cos(2 * phi_g), gamma2=g * np.sin(2 * phi_g))
            caustic = sie_model.caustic(p)
            if config not in ("quad", "ring") or np.hypot(*caustic).max() > 0.06 * p["theta_E"]:
                break
        return caustic

    def _draw_source_shape(self, p: dict, config: str, caustic: np.ndarray) -> None:
        """Draw the Sérsic source's size, index and ellipticity into ``p``."""
        rng = self.rng
        r_s = float(log_uniform(rng, self.source_radius))
        if config == "ring":
            # A ring needs a source about as big as the caustic it covers, but
            # not so big that its images fill the ring's hole.
            r_c = np.hypot(*caustic).max()
            r_s = float(np.clip(max(r_s, rng.uniform(0.6, 1.2) * r_c), 0.12,
                                max(0.12, min(0.8, 0.25 * p["theta_E"]))))
        qs = float(rng.uniform(0.35, 1.0))
        phis = float(rng.uniform(0, np.pi))
        es = (1 - qs) / (1 + qs)
        p.update(R_sersic=r_s, n_sersic=float(rng.uniform(*self.sersic_index)), source_q=qs,
                 source_e1=es * np.cos(2 * phis), source_e2=es * np.sin(2 * phis))

    def _source_position(self, config: str, caustic: np.ndarray, theta_e: float) -> tuple[float, float]:
        """One source position (arcsec) for the targeted configuration, relative to the caustic."""
        rng = self.rng
        r_caustic = np.hypot(*caustic)
        ang = float(rng.uniform(0, 2 * np.pi))
        if config == "ring":
            beta = float(rng.uniform(0.0, 0.3)) * r_caustic.min()
            return beta * np.cos(ang), beta * np.sin(ang)
        if config == "quad":
            # Uniform inside the astroid: rejection from its bounding box.
            cx = rng.uniform(caustic[0].min(), caustic[0].max(), 64)
            cy = rng.uniform(caustic[1].min(), caustic[1].max(), 64)
            ok = np.flatnonzero(inside_polygon(cx, cy, caustic[0], caustic[1]))
            return (float(cx[ok[0]]), float(cy[ok[0]])) if len(ok) else (0.0, 0.0)
        # Outside the astroid: a pair close to it (images of similar
        # brightness), a single arc further out (faint counter-image).
        edge = float(np.interp(ang, np.mod(np.arctan2(caustic[1], caustic[0]), 2 * np.pi), r_caustic,
                               period=2 * np.pi))
        lo_b, hi_b = (edge / theta_e + 0.02, 0.38) if config == "pair" else (0.45, 0.8)
        lo_b = min(lo_b, hi_b)
        # Weighted towards the caustic: lens searches find the most magnified
        # (longest, brightest) arcs, the magnification bias.
        beta = theta_e * (lo_b + (hi_b - lo_b) * float(rng.random()) ** 2)
        return beta * np.cos(ang), beta * np.sin(ang)

    def _place_source(self, p: dict, config: str, caustic: np.ndarray) -> None:
        """Place the source (up to 8 tries) until the measured configuration is the targeted one."""
        for _ in range(8):
            bx, by = self._source_position(config, caustic, p["theta_E"])
            p.update(source_x=float(bx), source_y=float(by), source_offset=float(np.hypot(bx, by) / p["theta_E"]))
            self._classify(p)
            if p["config"] == config:
                break

    def _classify(self, p: dict) -> None:
        """Measure and record the configuration the drawn parameters produce."""
        sb, rad = sie_model.polar_light(p)
        record_configuration(p, sie_model.image_magnifications(p), sb, rad)

    def _draw_colour(self, p: dict) -> None:
        rng = self.rng
        keys = list(self.colour_mix)
        fam = keys[int(rng.choice(len(keys), p=[self.colour_mix[k] for k in keys]))]
        colour = np.asarray(_COLOURS[fam]) * (1 + self.colour_jitter * rng.standard_normal(3))
        colour = np.clip(colour, 0.05, None)
        p["colour_family"], p["colour"] = fam, tuple(float(c) for c in colour / colour.max())

    def draw_brightness(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Draw ``n`` peak amplitudes (fraction of 255), a fraction of them faint.

        Examples
        --------
        >>> b = ArcInjector(seed=0, faint_fraction=1.0).draw_brightness(3)
        >>> bool(((0.03 <= b) & (b <= 0.1)).all())
        True
        """
        return self._brightness(n, self.rng if rng is None else rng)[0]

    def _brightness(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Peak amplitudes and whether each was drawn from the faint range."""
        faint = rng.random(n) < self.faint_fraction
        amp = np.where(faint, rng.uniform(*self.faint_brightness, size=n), rng.uniform(*self.brightness, size=n))
        return amp, faint

    # ------------------------------------------------------------ rendering
    def render(self, p: Mapping[str, Any]) -> np.ndarray:
        """Render one arc from its parameters (as from `draw_parameters`).

        Returns
        -------
        numpy.ndarray
            ``(size, size, 3)`` float32 RGB, the brightest channel peaking at
            1 (all zeros if the lensed light misses the frame).
        """
        img = sie_model.render_sie(p, self.size)
        colour = np.asarray(p["colour"], dtype=np.float64)
        return (img[:, :, None] * (colour / colour.max())[None, None, :]).astype(np.float32)

    def inject(self, images: np.ndarray, arcs: np.ndarray, rng: np.random.Generator | None = None,
               brightness: float | np.ndarray | None = None) -> np.ndarray:
        """Add arcs to uint8 RGB host images with random brightness and noise.

        Parameters
        ----------
        images : numpy.ndarray
            ``(N, size, size, 3)`` or ``(size, size, 3)`` uint8 RGB hosts.
        arcs : numpy.ndarray
            Output of `arcs`, same leading shape (or one arc for all images).
        rng : numpy.random.Generator, optional
            Generator for the brightness and noise; default the injector's.
        brightness : float or array of shape (N,), optional
            Peak amplitude of each arc as a fraction of 255 (e.g. the
            ``brightness`` recorded in the arc's parameters); default drawn
            with `draw_brightness` (including faint arcs).

        Returns
        -------
        numpy.ndarray
            uint8 images of the same shape. Pixels far from the arcs are
            unchanged (the noise scales with the added arc light).
        """
        imgs, arcs, single = prepare_inject(images, arcs, np.float32)
        rng = self.rng if rng is None else rng
        n = len(imgs)
        amp = self.draw_brightness(n, rng=rng) if brightness is None else per_image("brightness", brightness, n)
        light = arcs * (amp.reshape(n, 1, 1, 1) * 255.0).astype(np.float32)  # broadcast over a single arc
        # Poisson-like: variance = light / 4 grey levels (a gain of ~4).
        noise = rng.standard_normal(light.shape).astype(np.float32) * np.sqrt(light) * 0.5
        return to_uint8(imgs.astype(np.float32) + light + noise, single)
