"""How visible an arc is on its host: `arc_contrast`, and `visible_arcs` to draw only visible ones.

The Galaxy Zoo cutouts are scaled to the galaxy, so a host always fills the
same pixels while an Einstein radius in arcsec shrinks, in pixels, on a
large (nearby) host. Many small arcs then land on the host's bright core,
where the light they add is lost at the model's 64-pixel input: labelled
"lens", they would teach the model noise. `arc_contrast` measures this
against a typical host (e.g. the median of the hosts), and `visible_arcs`
keeps drawing until it has enough arcs above a contrast.

Examples
--------
>>> host = np.zeros((16, 16, 3)); host[6:10, 6:10] = 150
>>> arcs = np.zeros((1, 16, 16, 3)); arcs[0, 1, 1] = 1
>>> arc_contrast(arcs, host).tolist()
[765.0]
"""
from __future__ import annotations

import numpy as np

from ..exceptions import InvalidInputError
from ._checks import check_count

__all__ = ["arc_contrast", "visible_arcs"]


def arc_contrast(arcs: np.ndarray, host: np.ndarray, level: float = 0.5) -> np.ndarray:
    """How bright each arc is against the host light under it: a visibility measure.

    For each arc, the pixels where its light (summed over R, G, B) is at
    least ``level`` of its maximum are its bright part; the contrast is the
    arc light there at full scale (an arc peaking at 1 adds 255 grey levels)
    divided by the host light at the same pixels (grey levels, at least 1).
    `~astro_semsearch.lensing.ArcInjector.inject` scales the arc by a
    brightness of 0.03-0.9, so an arc of contrast ``c`` injected at
    brightness ``b`` roughly adds ``b * c`` times the host light where it
    lands. On the Galaxy Zoo 2 smooth hosts (80 pixels, against their
    median image) arcs below about 1.3 sit on the host's bright core and are
    mostly invisible at the model's input; arcs of 2 or more stand out.

    Parameters
    ----------
    arcs : numpy.ndarray
        ``(n, S, S, 3)`` (or one ``(S, S, 3)``) arc light, peak 1, as from
        ``arcs`` of either simulator.
    host : numpy.ndarray
        ``(S, S, 3)`` host image in grey levels, e.g. the median of the hosts
        the arcs will be injected into.
    level : float
        Fraction of the arc's peak that defines its bright part, in (0, 1).

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float contrasts (0 for an all-dark arc).

    Examples
    --------
    >>> host = np.zeros((16, 16, 3)); host[6:10, 6:10] = 150     # a bright core
    >>> arcs = np.zeros((2, 16, 16, 3)); arcs[0, 7, 7] = 1; arcs[1, 1, 1] = 1
    >>> arc_contrast(arcs, host).round(2).tolist()                 # on the core, outside it
    [1.7, 765.0]
    """
    arcs = np.asarray(arcs, dtype=float)
    arcs = arcs[None] if arcs.ndim == 3 else arcs
    host = np.asarray(host, dtype=float)
    if arcs.ndim != 4 or arcs.shape[-1] != 3 or host.shape != arcs.shape[1:]:
        raise InvalidInputError(f"arcs (n, S, S, 3) and host (S, S, 3) must match, got {arcs.shape} and {host.shape}")
    if not 0 < level < 1:
        raise InvalidInputError(f"level must be in (0, 1), got {level}")
    light = arcs.sum(-1)
    host_light = host.sum(-1)
    out = np.zeros(len(arcs))
    for i, arc in enumerate(light):
        top = arc.max()
        if not top > 0:
            continue
        bright = arc >= level * top
        out[i] = 255.0 * arc[bright].sum() / max(host_light[bright].sum(), float(bright.sum()))
    return out


def visible_arcs(simulator, n: int, host: np.ndarray, min_contrast: float, max_draws: int | None = None,
                 **arcs_kwargs) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw arcs until ``n`` of them have an `arc_contrast` of at least ``min_contrast`` against ``host``.

    Arcs are drawn with ``simulator.arcs`` (either simulator; ``arcs_kwargs``
    such as ``r90`` are passed on for every batch) in batches of the number
    still missing, in order, so the result is reproducible from the
    simulator's seed.

    Parameters
    ----------
    simulator : ArcInjector or RayTracedLensSimulator
    n : int
        Number of visible arcs wanted.
    host : numpy.ndarray
        ``(size, size, 3)`` typical host (grey levels).
    min_contrast : float
        Threshold of `arc_contrast`; 0 keeps every arc.
    max_draws : int, optional
        Most arcs to draw in all (default ``10 * n``); fewer than ``n`` are
        returned when it is reached.

    Returns
    -------
    arcs : numpy.ndarray
        ``(m, size, size, 3)`` float32, ``m <= n``, in drawing order.
    contrast : numpy.ndarray
        ``(m,)`` their contrasts.
    n_drawn : int
        How many arcs were drawn.

    Examples
    --------
    >>> from astro_semsearch.lensing import RayTracedLensSimulator
    >>> host = np.full((32, 32, 3), 40, np.uint8)
    >>> arcs, contrast, n_drawn = visible_arcs(RayTracedLensSimulator(seed=0, size=32), 2, host, 2.0)
    >>> arcs.shape, bool((contrast >= 2.0).all()), n_drawn >= 2
    ((2, 32, 32, 3), True, True)
    """
    n = check_count(n)
    if not min_contrast >= 0:
        raise InvalidInputError(f"min_contrast must be >= 0, got {min_contrast!r}")
    max_draws = 10 * n if max_draws is None else check_count(max_draws)
    size = simulator.size
    kept, contrasts, n_drawn = [], [], 0
    while sum(len(k) for k in kept) < n and n_drawn < max_draws:
        batch = min(n - sum(len(k) for k in kept), max_draws - n_drawn)
        arcs = simulator.arcs(batch, **arcs_kwargs)
        n_drawn += batch
        c = arc_contrast(arcs, host)
        ok = c >= min_contrast
        kept.append(arcs[ok])
        contrasts.append(c[ok])
    if not kept:
        return np.zeros((0, size, size, 3), np.float32), np.zeros(0), 0
    return np.concatenate(kept)[:n], np.concatenate(contrasts)[:n], n_drawn
