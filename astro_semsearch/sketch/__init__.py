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

from ..exceptions import InvalidInputError
from .painters import EDGE_BULGES, PAINTERS, gauss_blur

__all__ = [
    "SYMBOL_KINDS",
    "EDGE_BULGES",
    "draw_symbol",
    "draw_symbols",
    "embed_symbol",
]

#: The kinds of symbol `draw_symbol` can draw.
SYMBOL_KINDS: tuple[str, ...] = (
    "elliptical", "disk", "spiral", "barred_spiral", "edge_on", "ring", "merger", "lens", "irregular",
)


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
    astro_semsearch.exceptions.InvalidInputError: unknown symbol kind 'galaxy'; valid kinds: elliptical, disk, spiral, ...
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
    light = PAINTERS[kind](u, v, p, gen, width)
    light = gauss_blur(light, p["blur"] * scale)
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
