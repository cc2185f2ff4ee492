"""The lenstronomy side of `ArcInjector`: SIE + shear lens, Sérsic source, caustics, images (not public API).

All positions are in arcsec with the lens at the origin; ``p`` is a
parameter dict from `ArcInjector.draw_parameters`. lenstronomy is imported
on first use (the import takes seconds).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from .configurations import polar_grid

__all__ = ["caustic", "image_magnifications", "models", "polar_light", "render_sie", "sie_kwargs"]


@functools.lru_cache(maxsize=1)
def models() -> dict:
    """lenstronomy classes and the fixed lens/light models, imported once."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.Solver.epl_shear_solver import caustics_epl_shear
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver
    from lenstronomy.LightModel.light_model import LightModel

    lens = LensModel(["SIE", "SHEAR"])
    return {
        "ImageData": ImageData, "PSF": PSF, "ImageModel": ImageModel,
        "lens": lens, "source": LightModel(["SERSIC_ELLIPSE"]),
        "solver": LensEquationSolver(lens), "caustics": caustics_epl_shear,
    }


def sie_kwargs(p: Mapping[str, Any]) -> tuple[list, list]:
    """lenstronomy keyword lists of the lens (SIE, SHEAR) and the source (SERSIC_ELLIPSE)."""
    kl = [{"theta_E": p["theta_E"], "e1": p["e1"], "e2": p["e2"], "center_x": 0.0, "center_y": 0.0},
          {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": 0.0, "dec_0": 0.0}]
    ks = [{"amp": 1.0, "R_sersic": p["R_sersic"], "n_sersic": p["n_sersic"],
           "e1": p["source_e1"], "e2": p["source_e2"],
           "center_x": p["source_x"], "center_y": p["source_y"]}]
    return kl, ks


def caustic(p: Mapping[str, Any]) -> np.ndarray:
    """``(2, K)`` tangential (astroid) caustic of the lens, arcsec (an EPL of slope 2 is the SIE)."""
    kl = [{"theta_E": p["theta_E"], "e1": p["e1"], "e2": p["e2"], "gamma": 2.0, "center_x": 0.0, "center_y": 0.0},
          {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": 0.0, "dec_0": 0.0}]
    return np.asarray(models()["caustics"](kl, num_th=240, return_which="caustic"), dtype=float)


def image_magnifications(p: Mapping[str, Any]) -> np.ndarray:
    """|magnification| of the point images of the source centre, brightest first."""
    lt = models()
    kl, _ = sie_kwargs(p)
    x, y = lt["solver"].image_position_from_source(p["source_x"], p["source_y"], kl, solver="analytical")
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) == 0:
        return np.zeros(0)
    mu = np.abs(np.asarray(lt["lens"].magnification(x, y, kl), dtype=float))
    # The SIE's central image sits on the singularity with zero flux; drop it.
    return np.sort(mu[mu > 0.05])[::-1]


def polar_light(p: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Unconvolved lensed source light on `~astro_semsearch.lensing.configurations.polar_grid`: ``(sb, radii)``."""
    lt = models()
    kl, ks = sie_kwargs(p)
    rad, x, y = polar_grid(p["theta_E"])
    bx, by = lt["lens"].ray_shooting(x.ravel(), y.ravel(), kl)
    sb = np.asarray(lt["source"].surface_brightness(bx, by, ks), dtype=float).reshape(x.shape)
    return sb, rad


def render_sie(p: Mapping[str, Any], size: int) -> np.ndarray:
    """``(size, size)`` lensed, PSF-convolved source light, peak 1 (zeros if it misses the frame)."""
    lt = models()
    n, ps = int(size), float(p["pixscale"])
    half = (n - 1) / 2.0 * ps  # the lens sits at the frame centre
    data = lt["ImageData"](image_data=np.zeros((n, n)), ra_at_xy_0=-half, dec_at_xy_0=-half,
                           transform_pix2angle=np.array([[ps, 0.0], [0.0, ps]]))
    psf = lt["PSF"](psf_type="GAUSSIAN", fwhm=float(p["fwhm"]), pixel_size=ps, truncation=4)
    # Sub-pixels about half the source's half-light radius, within 2-6.
    ss = int(np.clip(np.ceil(ps / (0.5 * float(p["R_sersic"]))), 2, 6))
    model = lt["ImageModel"](data, psf, lens_model_class=lt["lens"], source_model_class=lt["source"],
                             kwargs_numerics={"supersampling_factor": ss})
    kl, ks = sie_kwargs(p)
    img = np.clip(np.asarray(model.image(kwargs_lens=kl, kwargs_source=ks), dtype=np.float64), 0.0, None)
    peak = img.max()
    return img / peak if peak > 0 else img
