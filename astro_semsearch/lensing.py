"""Inject simulated strong-lensing arcs into real galaxy images.

There are no real strong-lens images in the training data, yet lenses are
one of the rarest and most searched-for phenomena. `ArcInjector` paints the
light of a lensed background galaxy around real smooth (elliptical) host
galaxies, so that the image-text model sees "a strong gravitational lens with
blue arcs around a red galaxy" during training.

What is modelled (with `lenstronomy`, Birrer & Amara 2018):

* the lens: a singular isothermal ellipsoid (SIE) centred on the host, with a
  random axis ratio and orientation, plus external shear;
* the source: an elliptical Sérsic galaxy placed close to the lens centre
  (inside the region of the caustics), so its images are arcs, arc pairs or
  near-complete Einstein rings;
* the seeing: a Gaussian point-spread function;
* colours: the source is blue (bright in g, faint in z), the SDSS/DECaLS host
  ellipticals are red, so in an RGB composite (R=i or z, G=r, B=g) the arcs
  are blue-ish; the colour is jittered per arc;
* noise: Poisson-like noise proportional to the square root of the added
  arc light (the rest of the image keeps its own, real noise).

What is *not* modelled: the host's own light is not subtracted or re-lensed,
there is no lens-light/mass misalignment model beyond random orientations, no
multiple source planes, no microlensing or time delays, no compound or
cluster lenses, and no physical units (Einstein radii are drawn in pixels, as
a fraction of the frame, because the training cutouts are scaled to the
galaxy size). The arcs are a *visual* stand-in, good enough to teach the
appearance of "blue arcs around a red galaxy"; they are not for lens-model
science.

Examples
--------
>>> from astro_semsearch.lensing import ArcInjector
>>> inj = ArcInjector(seed=0, size=40)
>>> arcs = inj.arcs(2)
>>> arcs.shape, str(arcs.dtype)
((2, 40, 40, 3), 'float32')
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .exceptions import InvalidInputError, InvalidTypeError

__all__ = ["ArcInjector", "is_lens_host"]


def is_lens_host(record: Mapping[str, Any]) -> bool:
    """True for galaxies suitable as lens hosts: smooth ellipticals.

    A host is smooth when its Galaxy Zoo ``Class1.1`` (smooth) weighted
    fraction exceeds 0.6, or, without votes, when its ``coarse_label``
    says "smooth" (but not "cigar-shaped", which are often edge-on disks).

    Examples
    --------
    >>> is_lens_host({"Class1.1": 0.8})
    True
    >>> is_lens_host({"Class1.1": float("nan"), "coarse_label": "completely round smooth"})
    True
    >>> is_lens_host({"coarse_label": "spiral"})
    False
    """
    try:
        smooth = float(record["Class1.1"])
    except (KeyError, IndexError, TypeError, ValueError):
        smooth = float("nan")
    if np.isfinite(smooth):
        return smooth > 0.6
    try:
        label = str(record["coarse_label"]).lower()
    except (KeyError, IndexError):
        return False
    return "smooth" in label and "cigar" not in label


class ArcInjector:
    """Simulate lensed arcs (SIE + shear lens, Sérsic source, Gaussian PSF).

    Parameters
    ----------
    seed : int
        Seed of the random generator; the sequence of arcs is reproducible.
    size : int
        Side of the square images in pixels (the preloaded training images
        are 80 x 80, the galaxy filling about the central half).
    theta_e : (float, float)
        Range of Einstein radii as a fraction of the half-width of the frame.
        The default (0.3, 0.6) puts the arcs just outside the host's bright
        core and inside the 80 % centre crop the model looks at.
    fwhm : (float, float)
        Range of PSF full width at half maximum, in pixels.
    source_colour : (float, float, float)
        Mean relative (R, G, B) brightness of the source, i.e. (z or i, r, g).
        Blue by default. Each arc jitters it by ``colour_jitter``.
    colour_jitter : float
        Relative standard deviation of the per-channel colour jitter.

    Examples
    --------
    >>> import numpy as np
    >>> inj = ArcInjector(seed=1, size=40)
    >>> hosts = np.full((2, 40, 40, 3), 60, dtype=np.uint8)
    >>> out = inj.inject(hosts, inj.arcs(2))
    >>> out.dtype == np.uint8 and out.shape == hosts.shape
    True
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 80,
        theta_e: tuple[float, float] = (0.3, 0.6),
        fwhm: tuple[float, float] = (1.2, 2.5),
        source_colour: tuple[float, float, float] = (0.45, 0.75, 1.0),
        colour_jitter: float = 0.12,
        brightness: tuple[float, float] = (0.35, 0.9),
    ) -> None:
        if int(size) < 16:
            raise InvalidInputError(f"size must be at least 16 pixels, got {size}")
        if not 0 < theta_e[0] <= theta_e[1] < 1:
            raise InvalidInputError(f"theta_e must be a range inside (0, 1) of the half-width, got {theta_e}")
        if not 0 < fwhm[0] <= fwhm[1]:
            raise InvalidInputError(f"fwhm must be a positive range, got {fwhm}")
        if not 0 < brightness[0] <= brightness[1]:
            raise InvalidInputError(f"brightness must be a positive range, got {brightness}")
        self.seed = seed
        self.size = int(size)
        self.theta_e = (float(theta_e[0]), float(theta_e[1]))
        self.fwhm = (float(fwhm[0]), float(fwhm[1]))
        self.source_colour = np.asarray(source_colour, dtype=np.float32)
        self.colour_jitter = float(colour_jitter)
        self.brightness = (float(brightness[0]), float(brightness[1]))
        self.rng = np.random.default_rng(seed)
        self._data = self._pixel_grid()

    def _pixel_grid(self):
        from lenstronomy.Data.imaging_data import ImageData

        # One "arcsecond" = one pixel; the frame is centred on (0, 0).
        n = self.size
        half = (n - 1) / 2.0
        return ImageData(
            image_data=np.zeros((n, n)),
            ra_at_xy_0=-half,
            dec_at_xy_0=-half,
            transform_pix2angle=np.array([[1.0, 0.0], [0.0, 1.0]]),
        )

    def draw_parameters(self) -> dict:
        """Draw one set of lens and source parameters (pixels, radians)."""
        rng = self.rng
        half = self.size / 2.0
        theta_e = rng.uniform(*self.theta_e) * half
        q = rng.uniform(0.6, 1.0)  # lens axis ratio
        phi = rng.uniform(0, np.pi)
        e = (1 - q) / (1 + q)
        gamma = rng.uniform(0.0, 0.08)
        phi_g = rng.uniform(0, np.pi)
        # Source inside ~0.3 theta_E of the centre: near the caustics, so the
        # images are bright arcs or rings rather than two faint dots.
        r = theta_e * rng.uniform(0.0, 0.3)
        ang = rng.uniform(0, 2 * np.pi)
        qs = rng.uniform(0.4, 1.0)
        phis = rng.uniform(0, np.pi)
        es = (1 - qs) / (1 + qs)
        return {
            "theta_E": float(theta_e),
            "e1": float(e * np.cos(2 * phi)), "e2": float(e * np.sin(2 * phi)),
            "gamma1": float(gamma * np.cos(2 * phi_g)), "gamma2": float(gamma * np.sin(2 * phi_g)),
            "source_x": float(r * np.cos(ang)), "source_y": float(r * np.sin(ang)),
            "R_sersic": float(rng.uniform(0.6, 2.5) * half / 40),
            "n_sersic": float(rng.uniform(0.7, 2.0)),
            "source_e1": float(es * np.cos(2 * phis)), "source_e2": float(es * np.sin(2 * phis)),
            "fwhm": float(rng.uniform(*self.fwhm)),
            "colour": (self.source_colour * (1 + self.colour_jitter * rng.standard_normal(3))).clip(0.05, None),
        }

    def _render(self, p: dict) -> np.ndarray:
        from lenstronomy.Data.psf import PSF
        from lenstronomy.ImSim.image_model import ImageModel
        from lenstronomy.LensModel.lens_model import LensModel
        from lenstronomy.LightModel.light_model import LightModel

        lens = LensModel(["SIE", "SHEAR"])
        source = LightModel(["SERSIC_ELLIPSE"])
        psf = PSF(psf_type="GAUSSIAN", fwhm=p["fwhm"], pixel_size=1.0, truncation=4)
        model = ImageModel(self._data, psf, lens_model_class=lens, source_model_class=source,
                           kwargs_numerics={"supersampling_factor": 2})
        kwargs_lens = [
            {"theta_E": p["theta_E"], "e1": p["e1"], "e2": p["e2"], "center_x": 0.0, "center_y": 0.0},
            {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": 0.0, "dec_0": 0.0},
        ]
        kwargs_source = [{"amp": 1.0, "R_sersic": p["R_sersic"], "n_sersic": p["n_sersic"],
                          "e1": p["source_e1"], "e2": p["source_e2"],
                          "center_x": p["source_x"], "center_y": p["source_y"]}]
        img = np.asarray(model.image(kwargs_lens=kwargs_lens, kwargs_source=kwargs_source), dtype=np.float64)
        # lenstronomy's pixel (row, col) = (y, x) with y up; orientation is random anyway.
        img = np.clip(img, 0.0, None)
        peak = img.max()
        if peak > 0:
            img /= peak
        return img

    def arcs(self, n: int, return_params: bool = False):
        """Simulate ``n`` arc images (lensed source light only).

        Parameters
        ----------
        n : int
            Number of arcs.
        return_params : bool
            Also return the list of drawn parameter dicts.

        Returns
        -------
        numpy.ndarray
            ``(n, size, size, 3)`` float32, RGB, each arc's brightest channel
            peaking at 1 (scaled later by `inject`).
        """
        if n < 0:
            raise InvalidInputError(f"n must be >= 0, got {n}")
        out = np.zeros((n, self.size, self.size, 3), dtype=np.float32)
        params = []
        for i in range(n):
            p = self.draw_parameters()
            morph = self._render(p)
            colour = p["colour"] / p["colour"].max()
            out[i] = morph[:, :, None] * colour[None, None, :]
            params.append(p)
        return (out, params) if return_params else out

    def inject(self, images: np.ndarray, arcs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Add arcs to uint8 RGB host images with random brightness and noise.

        Parameters
        ----------
        images : numpy.ndarray
            ``(N, size, size, 3)`` or ``(size, size, 3)`` uint8 RGB hosts.
        arcs : numpy.ndarray
            Output of `arcs`, same leading shape (or one arc for all images).
        rng : numpy.random.Generator, optional
            Generator for the brightness and noise; default the injector's.

        Returns
        -------
        numpy.ndarray
            uint8 images of the same shape. Pixels far from the arcs are
            unchanged (the noise scales with the added arc light).
        """
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise InvalidTypeError(f"inject expects uint8 RGB images, got dtype {images.dtype}")
        single = images.ndim == 3
        imgs = images[None] if single else images
        arcs = np.asarray(arcs, dtype=np.float32)
        if arcs.ndim == 3:
            arcs = arcs[None]
        if imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise InvalidInputError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
        if arcs.shape[1:] != imgs.shape[1:]:
            raise InvalidInputError(f"arcs of shape {arcs.shape[1:]} do not match images of shape {imgs.shape[1:]}")
        if len(arcs) not in (1, len(imgs)):
            raise InvalidInputError(f"got {len(arcs)} arcs for {len(imgs)} images")
        rng = self.rng if rng is None else rng
        n = len(imgs)
        amp = rng.uniform(*self.brightness, size=(n, 1, 1, 1)) * 255.0
        light = arcs * amp  # broadcast over a single arc
        noise = rng.standard_normal(light.shape).astype(np.float32) * np.sqrt(light) * 0.5
        out = imgs.astype(np.float32) + light + noise
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out[0] if single else out
