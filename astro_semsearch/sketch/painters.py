"""How each symbol kind is painted: intensity primitives in galaxy coordinates and one painter per kind.

`astro_semsearch.sketch.draw_symbol` resolves a symbol's parameters, lays
out the galaxy coordinates (u along the major axis, v across it, both in
units of the galaxy radius) and calls ``PAINTERS[kind](u, v, params, rng,
line_width)``, which returns the light (peaking around 1) before blur,
colour and noise.
"""
from __future__ import annotations

import math

import numpy as np

from ..exceptions import InvalidInputError

__all__ = ["PAINTERS", "EDGE_BULGES", "gauss_blur"]

# Pitch angles (degrees) of logarithmic spiral arms by Galaxy Zoo winding answer.
_PITCH = {"tight": 12.0, "medium": 22.0, "loose": 35.0}
#: The bulge shapes of an edge-on disk symbol (Galaxy Zoo question 9).
EDGE_BULGES = ("none", "rounded", "boxy")


def _arms_and_pitch(p: dict, rng: np.random.Generator, lo: int) -> tuple[int, float]:
    n = p["n_arms"]
    if n is None:
        n = int(rng.choice([1, 2, 2, 2, 3, 4])) if lo > 0 else 2
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, (int, np.integer)) or not lo <= n <= 4:
        raise InvalidInputError(f"n_arms must be an integer from {lo} to 4, got {n!r}")
    w = p["winding"]
    if w is None:
        w = str(rng.choice(list(_PITCH)))
    if isinstance(w, str):
        if w not in _PITCH:
            raise InvalidInputError(f"winding must be one of {list(_PITCH)} or a pitch angle in degrees, got {w!r}")
        pitch = _PITCH[w] + float(rng.uniform(-3, 3))
    elif isinstance(w, (int, float)) and 3 <= w <= 60:
        pitch = float(w)
    else:
        raise InvalidInputError(f"winding must be one of {list(_PITCH)} or a pitch angle of 3-60 degrees, got {w!r}")
    return int(n), pitch


# --------------------------------------------------------------------------- primitives
# All drawing happens in galaxy coordinates (u, v): u along the major axis,
# in units of the galaxy radius R; intensities peak around 1.

def _blob(u, v, cu, cv, a, b, sharp=2.5, power=1.0):
    """Smooth elliptical blob centred on (cu, cv), semi-axes a, b: exp(-sharp * r_ell**power).

    ``power`` 1 is an exponential profile (a bright cusp); larger powers give a
    softer, fuller blob.
    """
    r = np.hypot((u - cu) / a, (v - cv) / b)
    return np.exp(-sharp * r ** power)


def _bar(u, v, half_length, half_width):
    """A flat bar along u with soft ends."""
    return np.exp(-0.5 * (v / half_width) ** 2) / (1.0 + np.exp((np.abs(u) - half_length) / 0.05))


def _plateau(u, v, a, b, edge=0.08):
    """A flat-topped disk with a soft edge (schematic disk)."""
    r = np.hypot(u / a, v / b)
    return 1.0 / (1.0 + np.exp((r - 1.0) / edge))


def _curve(u, v, pts: np.ndarray, width: float, weight: np.ndarray | None = None) -> np.ndarray:
    """Gaussian line of FWHM ``width`` along the polyline ``pts`` (M, 2), optionally tapered."""
    a, b = pts[:-1], pts[1:]
    d = b - a
    L2 = np.maximum((d ** 2).sum(1), 1e-12)
    sigma = width / 2.355
    out = np.zeros(u.size)
    # Only pixels near the curve's bounding box can be lit: skip the rest.
    pad = 4 * sigma
    near = ((u >= pts[:, 0].min() - pad) & (u <= pts[:, 0].max() + pad)
            & (v >= pts[:, 1].min() - pad) & (v <= pts[:, 1].max() + pad)).ravel()
    idx = np.flatnonzero(near)
    P = np.stack([u.ravel()[idx], v.ravel()[idx]], 1)
    # Chunk the pixels so the (pixels x segments) arrays stay small.
    for s in range(0, len(P), 2048):
        q = P[s:s + 2048, None, :]
        t = np.clip(((q - a) * d).sum(-1) / L2, 0.0, 1.0)
        dist2 = ((a + t[..., None] * d - q) ** 2).sum(-1)
        val = np.exp(-0.5 * dist2 / sigma ** 2)
        if weight is not None:
            val = val * (weight[:-1] + t * (weight[1:] - weight[:-1]))
        out[idx[s:s + 2048]] = val.max(1)
    return out.reshape(u.shape)


def _project(pts: np.ndarray, q: float) -> np.ndarray:
    """Incline a face-on curve: squeeze v by the axis ratio."""
    return pts * np.array([1.0, q])


def _log_spiral(theta0: float, r0: float, r1: float, pitch_deg: float, n: int = 80) -> np.ndarray:
    k = math.tan(math.radians(pitch_deg))
    span = math.log(r1 / r0) / k
    th = np.linspace(0.0, span, n)
    r = r0 * np.exp(k * th)
    return np.stack([r * np.cos(theta0 + th), r * np.sin(theta0 + th)], 1)


def _ellipse_pts(a: float, b: float, n: int = 120, t0: float = 0.0, t1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    return np.stack([a * np.cos(t), b * np.sin(t)], 1)


# --------------------------------------------------------------------------- kinds
def _elliptical(u, v, p, rng, w):
    return _blob(u, v, 0, 0, 1.0, p["axis_ratio"], sharp=2.6)


def _disk(u, v, p, rng, w):
    q = p["axis_ratio"]
    bul = p["bulge"]
    return 0.45 * _plateau(u, v, 1.0, q) + _blob(u, v, 0, 0, bul * 2.2, bul * 2.2 * max(q, 0.8), sharp=2.5)


def _arms(u, v, p, rng, w, n, pitch, r0, phase0):
    q = p["axis_ratio"]
    light = np.zeros_like(u)
    for i in range(n):
        pts = _project(_log_spiral(phase0 + 2 * math.pi * i / n, r0, 1.0, pitch), q)
        taper = np.linspace(1.0, 0.55, len(pts))
        light = np.maximum(light, _curve(u, v, pts, w, taper))
    return light


def _spiral(u, v, p, rng, w):
    n, pitch = _arms_and_pitch(p, rng, 1)
    q, bul = p["axis_ratio"], p["bulge"]
    light = _arms(u, v, p, rng, w, n, pitch, max(bul, 0.12), float(rng.uniform(0, 2 * math.pi)))
    light = np.maximum(light, _blob(u, v, 0, 0, bul * 2.0, bul * 2.0 * max(q, 0.8), sharp=2.5))
    return light + 0.12 * _blob(u, v, 0, 0, 1.0, q, sharp=2.0)


def _barred_spiral(u, v, p, rng, w):
    n, pitch = _arms_and_pitch(p, rng, 0)
    q, bul, bar = p["axis_ratio"], p["bulge"], p["bar_length"]
    light = 0.9 * _bar(u, v, bar, 0.07 + 0.03 * float(rng.random()))
    light = np.maximum(light, _blob(u, v, 0, 0, bul * 2.0, bul * 2.0, sharp=2.5))
    if n > 0:
        # The arms start at the ends of the bar (angle 0 and pi for two arms).
        light = np.maximum(light, _arms(u, v, p, rng, w, n, pitch, bar, 0.0))
    else:  # a barred lenticular: the bar inside a plain disk
        light = np.maximum(light, 0.4 * _plateau(u, v, 1.0, q))
    return light + 0.1 * _blob(u, v, 0, 0, 1.0, q, sharp=2.0)


def _edge_on(u, v, p, rng, w):
    h = p["thickness"]
    bulge = p["bulge"]
    if bulge is None:
        bulge = str(rng.choice(EDGE_BULGES))
    if bulge not in EDGE_BULGES:
        raise InvalidInputError(f"edge_on bulge must be one of {list(EDGE_BULGES)}, got {bulge!r}")
    disk = np.exp(-np.abs(u) / 0.45) * np.exp(-0.5 * (v / h) ** 2) / (1 + np.exp((np.abs(u) - 1.0) / 0.05))
    if bulge == "rounded":
        b = float(rng.uniform(0.22, 0.3))
        disk = np.maximum(disk, _blob(u, v, 0, 0, b, b * 0.9, sharp=2.2))
    elif bulge == "boxy":
        a, b = float(rng.uniform(0.22, 0.3)), float(rng.uniform(0.16, 0.22))
        box = np.exp(-2.2 * ((u / a) ** 4 + (v / b) ** 4) ** 0.25)
        disk = np.maximum(disk, box)
    return disk


def _ring(u, v, p, rng, w):
    q, rr = p["axis_ratio"], p["ring_radius"]
    light = _curve(u, v, _ellipse_pts(rr, rr * q), w * 1.4,
                   0.8 + 0.2 * np.cos(np.linspace(0, 2 * math.pi, 120) * 2 + float(rng.uniform(0, 6.3))))
    if p["nucleus"]:
        light = np.maximum(light, _blob(u, v, 0, 0, 0.16, 0.16, sharp=2.5))
    if p["bar"]:
        light = np.maximum(light, 0.8 * _bar(u, v, rr * 0.9, 0.08))
    return light


def _merger(u, v, p, rng, w):
    s, ratio = p["separation"], p["size_ratio"]
    c1, c2 = -s / 2, s / 2
    r1, r2 = 0.62, 0.62 * ratio
    light = np.maximum(_blob(u, v, c1, 0, r1, r1 * 0.85, sharp=2.2, power=1.6),
                       (0.6 + 0.4 * ratio) * _blob(u, v, c2, 0.1 * s, r2, r2 * 0.85, sharp=2.2, power=1.6))
    if p["tails"]:
        # Antisymmetric tidal tails curling away from each nucleus (Antennae-like).
        sign = 1.0 if rng.random() < 0.5 else -1.0
        for c, r, ph, amp in ((c1, r1, math.pi, 1.0), (c2, r2, 0.0, 0.8)):
            t = np.linspace(0, 1, 50)
            ang = ph + sign * (0.5 + 1.6 * t)
            rad = r * 0.5 + (0.7 + 0.3 * float(rng.random())) * t
            pts = np.stack([c + rad * np.cos(ang), 0.05 + rad * np.sin(ang)], 1)
            light = np.maximum(light, amp * 0.5 * _curve(u, v, pts, w * 1.3, np.linspace(1.0, 0.3, 50)))
    return light


def _lens(u, v, p, rng, w):
    n = p["n_arcs"]
    if n is None:
        n = int(rng.choice([0, 1, 2, 2]))
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, (int, np.integer)) or not 0 <= n <= 3:
        raise InvalidInputError(f"n_arcs must be an integer from 0 (full Einstein ring) to 3, got {n!r}")
    te = p["einstein_radius"]
    light = _blob(u, v, 0, 0, 0.5, 0.42, sharp=2.4, power=1.5)
    if n == 0:
        light = np.maximum(light, 0.6 * _curve(u, v, _ellipse_pts(te, te), w))
        return light
    start = float(rng.uniform(0, 2 * math.pi))
    for i in range(n):
        length = math.radians(p["arc_length"]) * (1.0 if i == 0 else 0.45)
        mid = start + 2 * math.pi * i / n
        pts = _ellipse_pts(te, te, 60, mid - length / 2, mid + length / 2)
        taper = np.sin(np.linspace(0.15, math.pi - 0.15, 60)) ** 0.5
        light = np.maximum(light, (0.7 if i == 0 else 0.5) * _curve(u, v, pts, w * 1.2, taper))
    return light


def _irregular(u, v, p, rng, w):
    n = p["n_clumps"]
    if n is None:
        n = int(rng.integers(4, 9))
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, (int, np.integer)) or not 3 <= n <= 10:
        raise InvalidInputError(f"n_clumps must be an integer from 3 to 10, got {n!r}")
    # An off-centre, lopsided envelope with bright knots scattered through it.
    off = rng.normal(0, 0.2, 2)
    light = 0.5 * _blob(u, v, off[0], off[1], 0.9, 0.6, sharp=2.0, power=1.5)
    for _ in range(n):
        c = rng.normal(0, 0.45, 2) + off / 2
        r = float(rng.uniform(0.14, 0.32))
        light = np.maximum(light, float(rng.uniform(0.5, 1.0)) * _blob(u, v, c[0], c[1], r, r, sharp=2.2, power=2.0))
    return light


PAINTERS = {
    "elliptical": _elliptical, "disk": _disk, "spiral": _spiral, "barred_spiral": _barred_spiral,
    "edge_on": _edge_on, "ring": _ring, "merger": _merger, "lens": _lens, "irregular": _irregular,
}


def gauss_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur as two small matrix products (fine for small images)."""
    if sigma <= 0.05:
        return img
    n = img.shape[0]
    x = np.arange(n)
    K = np.exp(-0.5 * ((x[:, None] - x[None, :]) / sigma) ** 2)
    K /= K.sum(1, keepdims=True)
    return K @ img @ K.T
