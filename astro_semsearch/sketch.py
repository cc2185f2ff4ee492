"""Sketches: schematic symbols of galaxy types, to search by drawing and to train with.

Galaxy Zoo volunteers classify galaxies by matching them to small schematic
drawings (a round blob, a disk with two arms, a bar, an edge-on line with a
bulge). GalaxAlign (Wang, Wang & Luo 2024, arXiv:2411.19475) aligns such
*symbols* with galaxy images and text during training. This module draws the
symbols programmatically, so that

* training can align a symbol drawn for each galaxy's Galaxy Zoo label with
  the galaxy image and its caption (``[symbols]`` in the training config,
  see `astro_semsearch.training.train`), and
* a user can **search by sketch**: a symbol is an ordinary ``HxWx3`` uint8
  RGB image, so ``similar_to(draw_symbol("ring"))`` embeds it with the image
  encoder and returns the galaxies that look most like it.

Every symbol is a light drawing on a dark sky, with the galaxy filling about
the central half of the field as in the Galaxy Zoo cutouts. Each call draws a
new random variant (position angle, size, axis ratio, line width, mild blur
and noise) unless the parameters are fixed; pass ``rng`` (a seed or a
`numpy.random.Generator`) for reproducible drawings.

Kinds (`SYMBOL_KINDS`) and their own parameters (any numeric parameter may
be a number or a ``(low, high)`` range drawn uniformly):

============== ==============================================================
kind           parameters
============== ==============================================================
elliptical     ``axis_ratio`` (0.2-1)
disk           ``axis_ratio``, ``bulge`` (bulge radius / disk radius)
spiral         ``n_arms`` (1-4), ``winding`` ("tight", "medium", "loose" or a
               pitch angle in degrees), ``axis_ratio``, ``bulge``
barred_spiral  as spiral (``n_arms`` 0-4; 0 is a barred disk), ``bar_length``
edge_on        ``thickness`` (scale height / radius), ``bulge`` ("none",
               "rounded", "boxy")
ring           ``axis_ratio``, ``ring_radius``, ``nucleus`` (bool), ``bar`` (bool)
merger         ``separation``, ``size_ratio``, ``tails`` (bool)
lens           ``n_arcs`` (0 = a full Einstein ring, 1-3 arcs),
               ``einstein_radius``, ``arc_length`` (degrees)
irregular      ``n_clumps`` (3-10)
============== ==============================================================

Common parameters of every kind: ``radius`` (galaxy radius as a fraction of
the half-width of the field), ``angle`` (position angle, degrees),
``line_width`` and ``blur`` (pixels, for a 64-pixel field; scaled with
``size``), ``noise`` (standard deviation, 0-1 units), ``brightness`` (peak,
0-1) and ``color`` (an RGB triple in 0-1; white by default).

`astro_semsearch.training.symbols.gz2_symbol` maps a Galaxy Zoo 2 record
(vote fractions, or the coarse label alone) to a symbol kind and
parameters, for training.

Examples
--------
>>> from astro_semsearch.sketch import draw_symbol, SYMBOL_KINDS
>>> ring = draw_symbol("ring", rng=0)
>>> ring.shape, ring.dtype.name
((64, 64, 3), 'uint8')
>>> spiral = draw_symbol("spiral", rng=1, size=80, n_arms=2, winding="tight")
>>> bool((draw_symbol("spiral", rng=1, size=80, n_arms=2, winding="tight") == spiral).all())
True

Searching an index by sketch (needs a built index):

>>> from astro_semsearch import similar_to
>>> hits = similar_to(draw_symbol("ring", rng=0), k=10)        # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .exceptions import InvalidInputError

__all__ = [
    "SYMBOL_KINDS",
    "draw_symbol",
    "draw_symbols",
    "embed_symbol",
]

#: The kinds of symbol `draw_symbol` can draw.
SYMBOL_KINDS: tuple[str, ...] = (
    "elliptical", "disk", "spiral", "barred_spiral", "edge_on", "ring", "merger", "lens", "irregular",
)

# Pitch angles (degrees) of logarithmic spiral arms by Galaxy Zoo winding answer.
_PITCH = {"tight": 12.0, "medium": 22.0, "loose": 35.0}
#: The bulge shapes of an edge-on disk symbol (Galaxy Zoo question 9).
EDGE_BULGES = ("none", "rounded", "boxy")

_COMMON: dict[str, Any] = {
    "radius": (0.35, 0.55),
    "angle": (0.0, 180.0),
    "line_width": (1.3, 2.2),
    "blur": (0.3, 0.9),
    "noise": (0.004, 0.02),
    "brightness": (0.8, 1.0),
    "color": (1.0, 1.0, 1.0),
}

# Defaults per kind (None: drawn at random by the drawing function).
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "elliptical": {"axis_ratio": (0.3, 1.0)},
    "disk": {"axis_ratio": (0.55, 1.0), "bulge": (0.15, 0.3)},
    "spiral": {"n_arms": None, "winding": None, "axis_ratio": (0.65, 1.0), "bulge": (0.12, 0.22)},
    "barred_spiral": {"n_arms": 2, "winding": None, "axis_ratio": (0.65, 1.0), "bulge": (0.1, 0.18),
                      "bar_length": (0.4, 0.6)},
    "edge_on": {"thickness": (0.05, 0.11), "bulge": None},
    "ring": {"axis_ratio": (0.65, 1.0), "ring_radius": (0.75, 0.95), "nucleus": True, "bar": False},
    "merger": {"separation": (0.9, 1.3), "size_ratio": (0.55, 1.0), "tails": True},
    "lens": {"n_arcs": None, "einstein_radius": (0.75, 0.95), "arc_length": (60.0, 140.0)},
    "irregular": {"n_clumps": None},
}


# --------------------------------------------------------------------------- parameters
def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or kind not in SYMBOL_KINDS:
        raise InvalidInputError(f"unknown symbol kind {kind!r}; valid kinds: {', '.join(SYMBOL_KINDS)}")
    return kind


def _draw(value, rng: np.random.Generator, name: str) -> Any:
    """A number, or a uniform draw from a ``(low, high)`` range."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and name != "color":
        lo, hi = (float(v) for v in value)
        if hi < lo:
            raise InvalidInputError(f"{name} range must be (low, high), got {value}")
        return lo + (hi - lo) * float(rng.random())
    return value


def _resolve(kind: str, params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    allowed = set(_COMMON) | set(_KIND_DEFAULTS[kind])
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidInputError(f"unknown parameter(s) {unknown} for symbol kind {kind!r}; "
                         f"valid: {', '.join(sorted(allowed))}")
    merged = {**_COMMON, **_KIND_DEFAULTS[kind], **dict(params)}
    # Draw in a fixed order so a seed gives the same symbol whatever the dict order.
    out = {name: _draw(merged[name], rng, name) for name in sorted(merged)}
    for name in ("radius", "line_width", "brightness", "axis_ratio", "thickness", "ring_radius",
                 "separation", "size_ratio", "einstein_radius", "bar_length"):
        if name in out and not (isinstance(out[name], (int, float)) and out[name] > 0):
            raise InvalidInputError(f"{name} must be a positive number, got {out[name]!r}")
    if "axis_ratio" in out and out["axis_ratio"] > 1:
        raise InvalidInputError(f"axis_ratio must be in (0, 1], got {out['axis_ratio']}")
    for name in ("blur", "noise"):
        if not (isinstance(out[name], (int, float)) and out[name] >= 0):
            raise InvalidInputError(f"{name} must be a number >= 0, got {out[name]!r}")
    color = np.asarray(out["color"], dtype=float)
    if color.shape != (3,) or np.any(color < 0) or np.any(color > 1):
        raise InvalidInputError(f"color must be an RGB triple in [0, 1], got {out['color']!r}")
    out["color"] = color
    return out


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


_DRAW = {
    "elliptical": _elliptical, "disk": _disk, "spiral": _spiral, "barred_spiral": _barred_spiral,
    "edge_on": _edge_on, "ring": _ring, "merger": _merger, "lens": _lens, "irregular": _irregular,
}


def _gauss_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur as two small matrix products (fine for small images)."""
    if sigma <= 0.05:
        return img
    n = img.shape[0]
    x = np.arange(n)
    K = np.exp(-0.5 * ((x[:, None] - x[None, :]) / sigma) ** 2)
    K /= K.sum(1, keepdims=True)
    return K @ img @ K.T


# --------------------------------------------------------------------------- public
def draw_symbol(kind: str, rng: int | np.random.Generator | None = None, size: int = 64,
                **params: Any) -> np.ndarray:
    """Draw one schematic galaxy symbol as an ``size x size x 3`` uint8 RGB image.

    Parameters
    ----------
    kind : str
        One of `SYMBOL_KINDS`.
    rng : int, `numpy.random.Generator` or None
        Seed or generator of the random variations (None: a fresh random
        symbol each call).
    size : int
        Side of the image in pixels (at least 16). Widths and blur scale with
        it, so a symbol looks the same at any size.
    **params
        Kind-specific and common parameters (see the module docstring); a
        numeric one may be a ``(low, high)`` range. Unset ones are drawn at
        random from their default ranges.

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8: light on a dark sky, like a galaxy cutout.

    Raises
    ------
    ValueError
        For an unknown kind (the message lists the valid ones), an unknown
        parameter or an out-of-range value.

    Examples
    --------
    >>> img = draw_symbol("edge_on", rng=3, bulge="boxy")
    >>> img.shape
    (64, 64, 3)
    >>> draw_symbol("galaxy")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown symbol kind 'galaxy'; valid kinds: elliptical, disk, spiral, ...
    """
    _check_kind(kind)
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise InvalidInputError(f"size must be an integer >= 16, got {size!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    p = _resolve(kind, params, gen)
    scale = size / 64.0
    R = p["radius"] * size / 2.0
    if kind == "merger":
        R *= 0.8  # two galaxies side by side: keep the pair inside the field
    yy, xx = np.mgrid[:size, :size].astype(float) - (size - 1) / 2.0
    phi = math.radians(p["angle"])
    u = (xx * math.cos(phi) + yy * math.sin(phi)) / R
    v = (-xx * math.sin(phi) + yy * math.cos(phi)) / R
    width = p["line_width"] * scale / R  # in units of R
    light = _DRAW[kind](u, v, p, gen, width)
    light = _gauss_blur(light, p["blur"] * scale)
    light = light / max(float(light.max()), 1e-9) * p["brightness"]
    img = 0.02 + light[..., None] * p["color"][None, None, :]
    if p["noise"] > 0:
        img = img + gen.normal(0.0, p["noise"], img.shape)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def draw_symbols(kind: str, n: int, rng: int | np.random.Generator | None = None, size: int = 64,
                 **params: Any) -> np.ndarray:
    """``n`` random variants of one symbol as an ``(n, size, size, 3)`` uint8 stack.

    Examples
    --------
    >>> draw_symbols("merger", 3, rng=0).shape
    (3, 64, 64, 3)
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidInputError(f"n must be an integer >= 0, got {n!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        out[i] = draw_symbol(kind, gen, size, **params)
    return out


def embed_symbol(kind: str, model=None, n: int = 8, rng: int | np.random.Generator | None = 0,
                 **params: Any) -> np.ndarray:
    """A sketch query vector: the normalised mean embedding of ``n`` drawn variants.

    Averaging a few random variants (orientation, size, line width) keeps
    what the symbols share (the morphology) and averages away the rest.

    Parameters
    ----------
    kind : str
        One of `SYMBOL_KINDS`.
    model : `~astro_semsearch.GalaxyModel`, optional
        Default `~astro_semsearch.load_model` ().
    n : int
        Number of variants averaged.
    rng, **params
        As in `draw_symbol`.

    Returns
    -------
    numpy.ndarray
        ``(dim,)`` float32 unit vector, usable as ``similar_to(vector)``.

    Examples
    --------
    >>> from astro_semsearch.model import GalaxyModel
    >>> vec = embed_symbol("ring", GalaxyModel.from_config({"dim": 8}), n=2)
    >>> vec.shape
    (8,)
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidInputError(f"n must be an integer >= 1, got {n!r}")
    if model is None:
        from .model import load_model

        model = load_model()
    emb = model.embed_images(draw_symbols(kind, n, rng, **params))
    vec = emb.mean(0)
    return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)
