"""Argument checks and small geometry helpers shared by the two lens simulators (not public API).

Every check returns the value in a canonical form or raises the package's
`~astro_semsearch.exceptions.InvalidInputError` /
`~astro_semsearch.exceptions.InvalidTypeError` with a message naming the
argument.

Examples
--------
>>> check_range("fwhm (arcsec)", (0.9, 1.6))
(0.9, 1.6)
>>> check_weights("mix", {"ring": 1, "pair": 3}, ("ring", "pair"))
{'ring': 0.25, 'pair': 0.75}
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..exceptions import InvalidInputError, InvalidTypeError
from .hosts import pixscale_from_r90

__all__ = [
    "arc_pixscales",
    "check_count",
    "check_number",
    "check_range",
    "check_size",
    "check_weights",
    "inside_polygon",
    "log_uniform",
    "per_image",
    "prepare_inject",
    "to_uint8",
]


def check_range(name: str, value, low: float = 0.0, high: float = np.inf,
                closed: bool = False) -> tuple[float, float]:
    """A validated ``(min, max)`` pair of finite floats with ``low < min <= max <= high``.

    With ``closed=True`` the lower bound is inclusive (``low <= min``).

    Examples
    --------
    >>> check_range("lens_q", (0.2, 1.0), 0.2, 1.0, closed=True)
    (0.2, 1.0)
    >>> check_range("theta_e", (3.0, 1.0))
    Traceback (most recent call last):
    ...
    astro_semsearch.exceptions.InvalidInputError: theta_e must be a range with 0.0 < min <= max <= inf, got (3.0, 1.0)
    """
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a (min, max) pair of numbers, got {value!r}") from None
    ok_low = a >= low if closed else a > low
    if not (np.isfinite(a) and np.isfinite(b) and ok_low and a <= b <= high):
        raise InvalidInputError(f"{name} must be a range with {low} {'<=' if closed else '<'} min <= max <= {high}, "
                                f"got {value!r}")
    return a, b


def check_weights(name: str, value: Mapping[str, float], allowed: Sequence[str]) -> dict[str, float]:
    """A ``{category: weight}`` mapping normalised to probabilities (zero weights dropped)."""
    if not isinstance(value, Mapping) or not value:
        raise InvalidInputError(f"{name} must be a non-empty mapping of {tuple(allowed)} to weights, got {value!r}")
    unknown = set(value) - set(allowed)
    if unknown:
        raise InvalidInputError(f"{name} has unknown keys {sorted(unknown)}; allowed: {tuple(allowed)}")
    try:
        w = {k: float(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} weights must be numbers, got {value!r}") from None
    if any(not np.isfinite(v) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise InvalidInputError(f"{name} weights must be non-negative with a positive sum, got {value!r}")
    total = sum(w.values())
    return {k: v / total for k, v in w.items() if v > 0}


def check_number(name: str, value, low: float, high: float, closed_high: bool = True) -> float:
    """``value`` as a float in ``[low, high]`` (``[low, high)`` with ``closed_high=False``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not (low <= v <= high) or (not closed_high and v == high):
        raise InvalidInputError(f"{name} must be in [{low}, {high}{']' if closed_high else ')'}, got {value!r}")
    return v


def check_size(size) -> int:
    """The side of the square images in pixels, at least 16."""
    try:
        n = int(size)
    except (TypeError, ValueError):
        raise InvalidInputError(f"size must be a whole number of pixels, got {size!r}") from None
    if n < 16:
        raise InvalidInputError(f"size must be at least 16 pixels, got {size}")
    return n


def check_count(n) -> int:
    """A non-negative integer number of arcs (bools and floats are refused)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidInputError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float], size=None):
    """Draw log-uniformly in ``bounds`` (one rng call, so draw orders are stable)."""
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size=size))


def _per_arc(name: str, value, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    arr = np.full(n, float(arr)) if arr.ndim == 0 else arr
    if arr.shape != (n,):
        raise InvalidInputError(f"{name} must be a scalar or have one value per arc ({n}), got shape {arr.shape}")
    return arr


def arc_pixscales(n: int, pixscale, r90, size: int, r90_range: tuple[float, float],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-arc pixel scales (arcsec/pixel) and the host R90 (arcsec) they came from.

    Exactly one way: ``pixscale`` given (R90 is then NaN), ``r90`` given (the
    scale is `pixscale_from_r90`), or neither (R90 drawn log-uniformly in
    ``r90_range`` with ``rng``).

    Examples
    --------
    >>> ps, r = arc_pixscales(2, None, [2.5, 5.0], 40, (2.0, 8.0), None)
    >>> ps.tolist(), r.tolist()
    ([0.4, 0.8], [2.5, 5.0])
    """
    if pixscale is not None and r90 is not None:
        raise InvalidInputError("give pixscale or r90, not both")
    if pixscale is not None:
        ps = _per_arc("pixscale", pixscale, n)
        if not np.all(np.isfinite(ps)) or np.any(ps <= 0):
            raise InvalidInputError(f"pixscale must be positive and finite (arcsec/pixel), got {pixscale!r}")
        return ps, np.full(n, np.nan)
    r = log_uniform(rng, r90_range, size=n) if r90 is None else _per_arc("r90", r90, n)
    return np.asarray(pixscale_from_r90(r, size), dtype=float).reshape(n), r.astype(float)


def per_image(name: str, value, n: int) -> np.ndarray:
    """A non-negative finite value per image: a scalar broadcast to ``(n,)`` or an ``(n,)`` array."""
    amp = np.asarray(value, dtype=float)
    amp = np.full(n, float(amp)) if amp.ndim == 0 else amp
    if amp.shape != (n,) or not np.all(np.isfinite(amp)) or np.any(amp < 0):
        raise InvalidInputError(f"{name} must be a non-negative scalar or one value per image ({n}), got {value!r}")
    return amp


def prepare_inject(images, arcs, dtype) -> tuple[np.ndarray, np.ndarray, bool]:
    """Check hosts and arcs for ``inject``: ``(hosts (N, S, S, 3) uint8, arcs (1 or N, S, S, 3), single)``."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise InvalidTypeError(f"inject expects uint8 RGB images, got dtype {images.dtype}")
    single = images.ndim == 3
    imgs = images[None] if single else images
    arcs = np.asarray(arcs, dtype=dtype)
    arcs = arcs[None] if arcs.ndim == 3 else arcs
    if imgs.ndim != 4 or imgs.shape[-1] != 3:
        raise InvalidInputError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
    if arcs.ndim != 4 or arcs.shape[1:] != imgs.shape[1:]:
        raise InvalidInputError(f"arcs of shape {arcs.shape[1:]} do not match images of shape {imgs.shape[1:]}")
    if len(arcs) not in (1, len(imgs)):
        raise InvalidInputError(f"got {len(arcs)} arcs for {len(imgs)} images")
    if not np.all(np.isfinite(arcs)) or np.any(arcs < 0):
        raise InvalidInputError("arcs must be finite and non-negative")
    return imgs, arcs, single


def to_uint8(out: np.ndarray, single: bool) -> np.ndarray:
    """Round and clip grey levels to uint8 (dropping the batch axis of a single image)."""
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[0] if single else out


def inside_polygon(px: np.ndarray, py: np.ndarray, vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    """Even-odd ray-casting test of points ``(px, py)`` against the closed polygon ``(vx, vy)``.

    Examples
    --------
    >>> sq = np.array([0.0, 1.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0])
    >>> inside_polygon(np.array([0.5, 1.5]), np.array([0.5, 0.5]), *sq).tolist()
    [True, False]
    """
    x0, y0 = vx[None, :], vy[None, :]
    x1, y1 = np.roll(vx, -1)[None, :], np.roll(vy, -1)[None, :]
    px, py = px[:, None], py[:, None]
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return np.sum(crosses & (px < x_at), axis=1) % 2 == 1
