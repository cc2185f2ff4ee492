"""What both lens simulators share: pixel scales per arc and the ``arcs`` loop (not public API)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import arc_pixscales, check_count

__all__ = ["ArcSimulator"]


class ArcSimulator:
    """Base of `ArcInjector` and `RayTracedLensSimulator`.

    A subclass sets ``size``, ``r90`` (the R90 range in arcsec) and ``rng``
    and implements ``draw_parameters(pixscale=None)`` and ``render(p)``.
    """

    size: int
    r90: tuple[float, float]
    rng: np.random.Generator

    def _pixscales(self, n: int, pixscale, r90) -> tuple[np.ndarray, np.ndarray]:
        """Per-arc pixel scales and R90 (NaN where the pixel scale was given)."""
        return arc_pixscales(n, pixscale, r90, self.size, self.r90, self.rng)

    def _one_pixscale(self, pixscale: float | None) -> tuple[float, float]:
        """``(pixscale, r90)`` of one arc: the given scale (R90 NaN) or one from a drawn R90."""
        ps, r = self._pixscales(1, pixscale, None)
        return float(ps[0]), float(r[0])

    def draw_parameters(self, pixscale: float | None = None) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def render(self, p: Mapping[str, Any]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def arcs(self, n: int, pixscale: float | np.ndarray | None = None, r90: float | np.ndarray | None = None,
             return_params: bool = False):
        """Simulate ``n`` arc images (lensed source light only).

        Parameters
        ----------
        n : int
            Number of arcs.
        pixscale : float or array of shape (n,), optional
            Pixel scale(s) in arcsec/pixel of the images the arcs are meant for.
        r90 : float or array of shape (n,), optional
            Host Petrosian R90 in arcsec instead; the pixel scale is
            ``6.4 * r90 / size`` (`pixscale_from_r90`). With neither, R90 is
            drawn log-uniformly in the simulator's ``r90`` range.
        return_params : bool
            Also return the list of parameter dicts (see ``draw_parameters``).

        Returns
        -------
        numpy.ndarray
            ``(n, size, size, 3)`` float32, RGB, each arc's brightest channel
            peaking at 1 (scaled later by ``inject``).
        list of dict
            With ``return_params``: each arc's parameters, ``pixscale`` and
            ``r90`` included.
        """
        n = check_count(n)
        ps, r = self._pixscales(n, pixscale, r90)
        out = np.zeros((n, self.size, self.size, 3), dtype=np.float32)
        params = []
        for i in range(n):
            p = self.draw_parameters(pixscale=float(ps[i]))
            p["r90"] = float(r[i])
            out[i] = self.render(p)
            params.append(p)
        return (out, params) if return_params else out
