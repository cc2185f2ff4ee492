"""Simulated strong-lensing arcs injected into real galaxy images: two independent simulators.

There are no real strong-lens images in the training data, yet lenses are
one of the rarest and most searched-for phenomena. Two simulators paint the
light of a lensed background galaxy around real smooth (elliptical) hosts
(`is_lens_host`):

* `ArcInjector` (`~astro_semsearch.lensing.sie`) makes the **training**
  arcs, with lenstronomy;
* `RayTracedLensSimulator` (`~astro_semsearch.lensing.raytrace`) is written
  independently and used only for **evaluation**, so that a retrieval score
  on its arcs measures whether the model learned "blue arcs around a red
  galaxy" rather than the look of one simulator.

They share the physical ranges (Einstein radius 0.8-3", PSF FWHM 0.9-1.6",
host R90 2-8" for the pixel scale `pixscale_from_r90` = ``6.4 * R90 /
size``), the configuration labels (`CONFIGURATIONS`:
`~astro_semsearch.lensing.configurations`) and the output convention
(``arcs(n, pixscale=None, r90=None, return_params=False)`` gives ``(n, size,
size, 3)`` float32 RGB arc light peaking at 1; ``inject`` adds it to uint8
hosts), and differ in every modelling choice:

========================  ==================================  ===========================================
                          ArcInjector (training)              RayTracedLensSimulator (evaluation)
========================  ==================================  ===========================================
mass model                SIE + external shear                elliptical power law (EPL, slope 1.75-2.35)
                                                              + shear, 30 % with an SIS satellite,
                                                              small mass-centre offset
deflection / renderer     lenstronomy                         own NumPy code (`~astro_semsearch.lensing.physics`):
                                                              EPL series of Tessore & Metcalf (2015),
                                                              inverse ray shooting of a supersampled grid
source                    one elliptical Sérsic               exponential disc + 1-6 Gaussian
                                                              star-forming clumps
colour                    fixed RGB families + jitter,        toy SED per component (UV slope, 4000 A
                          uniform over the arc                break, redshift 1-2.2) in the g, r, i/z
                                                              bands, clumps bluer than the disc, SDSS /
                                                              Legacy Surveys display weights
PSF                       Gaussian                            Moffat, per-band FWHM (~ lambda^-0.2), FFT
source placement          targeted by configuration           area-uniform offsets (a share near the
                          (caustic sampling)                  centre), magnification-biased
brightness / noise        uniform peak + faint share,         log-uniform peak, Poisson counts with a
                          Gaussian sqrt(light)/2              random gain (+ optional read noise)
========================  ==================================  ===========================================

Not modelled by either: the host's own light is neither subtracted nor
re-lensed, no multiple source planes, microlensing, time delays, compound or
cluster lenses, and the light is added linearly to the stored (stretched)
grey levels. The arcs are a *visual* stand-in; they are not for lens-model
science. A small Einstein radius on a large host lands on the host's bright
core and is invisible at the model's resolution: `arc_contrast` measures how
much an arc stands out from a host, and `visible_arcs` draws only arcs that do.

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.lensing import ArcInjector, RayTracedLensSimulator, pixscale_from_r90
>>> hosts = np.full((2, 40, 40, 3), 60, dtype=np.uint8)
>>> for sim in (ArcInjector(seed=0, size=40), RayTracedLensSimulator(seed=0, size=40)):
...     arcs = sim.arcs(2, pixscale=pixscale_from_r90(2.0, 40))
...     print(type(sim).__name__, arcs.shape, sim.inject(hosts, arcs).dtype)
ArcInjector (2, 40, 40, 3) uint8
RayTracedLensSimulator (2, 40, 40, 3) uint8
"""
from .configurations import CONFIGURATIONS
from .hosts import FRAME_SPAN_R90, is_lens_host, lens_host_mask, pixscale_from_r90
from .raytrace import RayTracedLensSimulator
from .sie import ArcInjector
from .visibility import arc_contrast, visible_arcs

__all__ = [
    "CONFIGURATIONS",
    "FRAME_SPAN_R90",
    "ArcInjector",
    "RayTracedLensSimulator",
    "arc_contrast",
    "is_lens_host",
    "lens_host_mask",
    "pixscale_from_r90",
    "visible_arcs",
]
