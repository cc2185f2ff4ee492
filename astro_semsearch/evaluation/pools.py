"""The galaxies each query class is measured on: embeddings, relevances and (for re-rankers) images.

`class_pools` loads the labelled split once, embeds it once, and yields one
`Pool` per class of `~astro_semsearch.evaluation.protocol.CLASSES`, in table
order: the Galaxy Zoo 2 pools (`gz2_pool`), the DECaLS ring set, and the
smooth galaxies with simulated arcs injected into a few of them, once with
the training simulator (`~astro_semsearch.lensing.ArcInjector`) and once with
the independent one (`~astro_semsearch.lensing.RayTracedLensSimulator`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..datasets import load_decals, load_gz2, load_images, split_of
from .protocol import CLASSES, EvalClass, gz2_pool

__all__ = ["Pool", "class_pools", "PRELOAD_SIZE", "preload_size"]

#: Side in pixels the evaluation images of a 64-pixel model are decoded at; the model crops and resizes them.
PRELOAD_SIZE = 80


def preload_size(model) -> int:
    """The side the evaluation decodes images at: the model's ``image_size / crop_fraction`` (80 for 64 px).

    The whole Galaxy Zoo field is resized to it, as in training, and the
    model crops its central part itself.
    """
    cfg = getattr(model, "config", None) or {}
    if "image_size" not in cfg:
        return PRELOAD_SIZE
    return int(round(int(cfg["image_size"]) / float(cfg.get("crop_fraction", 0.8))))


@dataclass
class Pool:
    """One class's ranking problem.

    Attributes
    ----------
    cls : EvalClass
    emb : numpy.ndarray
        ``(n, dim)`` image embeddings of the pool.
    rel : numpy.ndarray
        ``(n,)`` relevance in [0, 1].
    image : callable
        ``image(rows, size)`` -> list of ``size x size x 3`` uint8 images of
        pool rows (what an image-reading re-ranker is shown).
    """

    cls: EvalClass
    emb: np.ndarray
    rel: np.ndarray
    image: Callable[[np.ndarray, int], list]


def _embed(model, images: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
    if len(images) == 0:
        return np.zeros((0, model.dim), dtype=np.float32)
    return np.asarray(model.embed_images(images, batch_size=batch_size, progress=progress), dtype=np.float32)


def _from_paths(paths: np.ndarray) -> Callable[[np.ndarray, int], list]:
    return lambda rows, size: list(load_images(list(paths[np.asarray(rows, dtype=np.int64)]), size=size))


def _from_arrays(images: np.ndarray) -> Callable[[np.ndarray, int], list]:
    def image(rows, size):
        from PIL import Image

        return [np.asarray(Image.fromarray(images[int(r)]).resize((size, size), Image.LANCZOS)) for r in rows]

    return image


def _want_lens(wanted: set[str]) -> bool:
    """Whether an injected-lens class is wanted (dropping the ArcInjector one without lenstronomy)."""
    if "injected_lens" in wanted:
        try:
            import lenstronomy  # noqa: F401
        except ImportError:
            # lenstronomy is an optional dependency (the "train" extra); the
            # independent simulator is plain NumPy and still runs.
            warnings.warn("lenstronomy is not installed: skipping the 'injected lens' class "
                          "(pip install 'astro_semsearch[train]')", stacklevel=3)
            wanted.discard("injected_lens")
    return any(c.source == "injected" and c.id in wanted for c in CLASSES)


@dataclass
class _Injection:
    """Which pool rows get arcs and the R90 (arcsec) of their hosts, shared by the injected-lens classes."""

    rows: np.ndarray
    r90: np.ndarray


def _injection_plan(n_hosts: int, seed: int, lens_fraction: float) -> _Injection:
    """``round(lens_fraction * n_hosts)`` rows (at least 1) and a log-uniform 2-8" R90 for each.

    Drawn from their own generator, seeded by ``seed`` alone, so both
    injected-lens classes put their arcs into the same hosts at the same
    pixel scales (the rows differ only by the simulator) whichever classes
    are asked for.
    """
    from ..lensing.hosts import R90_RANGE

    gen = np.random.default_rng([seed, 2_718])
    n_inj = min(n_hosts, max(1, round(lens_fraction * n_hosts)))
    rows = np.sort(gen.choice(n_hosts, size=n_inj, replace=False))
    lo, hi = R90_RANGE  # the simulators' default host R90 range
    return _Injection(rows, np.exp(gen.uniform(np.log(lo), np.log(hi), size=n_inj)))


def class_pools(model, wanted: set[str], *, gz2_root, decals_root, split: str, seed: int, lens_fraction: float,
                batch_size: int, progress: bool, rng: np.random.Generator,
                extra: Sequence[EvalClass] = (), transform: Callable | None = None) -> Iterator[Pool]:
    """The pools of the classes in ``wanted``, in table order, then of the ``extra`` Galaxy Zoo classes.

    Classes without data are skipped. The injected-lens pools are the
    validation split's smooth galaxies whatever ``split`` is; which of them
    get arcs (``lens_fraction``) and their hosts' R90 come from a generator
    seeded by ``seed`` alone (`_injection_plan`), not from ``rng``.
    ``transform`` (e.g. a re-framing) is applied to every ``(N, S, S, 3)``
    uint8 image stack before it is embedded, after any arcs are injected.
    """
    size = preload_size(model)

    def embed(images, show=False):
        return _embed(model, images if transform is None or not len(images) else transform(images), batch_size,
                      show)

    want_lens = _want_lens(wanted)  # may drop the ArcInjector class (no lenstronomy)
    classes = [c for c in CLASSES if c.id in wanted] + list(extra)
    want_gz2 = any(c.source == "gz2" for c in classes)
    gz2 = in_split = images = emb_all = plan = None
    pos: dict[int, int] = {}
    host = None
    if want_gz2 or want_lens:
        gz2 = load_gz2(gz2_root)
        val = np.array([split_of(g) == "val" for g in gz2["galaxy_id"]], dtype=bool)
        in_split = val if split == "val" else ~val
        voted = np.asarray(gz2["n_vote_columns"]) > 0
        host = np.zeros(len(gz2), dtype=bool)
        if want_lens:
            from ..lensing import lens_host_mask

            # Lens hosts come from the validation split only, whatever ``split``:
            # never an image training has seen.
            host = val & lens_host_mask(gz2)
            if host.any():
                plan = _injection_plan(int(host.sum()), seed, lens_fraction)
        rows = np.flatnonzero((in_split & voted & want_gz2) | host)
        images = (load_images(list(gz2["path"][rows]), size=size, progress=progress) if len(rows)
                  else np.zeros((0, size, size, 3), np.uint8))
        emb_all = embed(images, progress)
        pos = {r: i for i, r in enumerate(rows)}  # table row -> embedding row
    for c in classes:
        if c.source == "gz2":
            idx, rel = gz2_pool(gz2, c, in_split)
            emb = emb_all[[pos[i] for i in idx]] if len(idx) else np.zeros((0, model.dim), np.float32)
            pool = Pool(c, emb, rel, _from_paths(np.asarray(gz2["path"])[idx]))
        elif c.source == "decals":
            if decals_root is None or not (Path(decals_root) / "labels.csv").is_file():
                warnings.warn(f"DECaLS ring set not found at {decals_root}; skipping that class", stacklevel=2)
                continue
            dec = load_decals(decals_root)
            emb = embed(load_images(list(dec["path"]), size=size))
            pool = Pool(c, emb, np.asarray(dec[c.column], dtype=float), _from_paths(np.asarray(dec["path"])))
        else:
            if plan is None:
                continue
            pool = _injected_pool(c, embed, np.flatnonzero(host), images, emb_all, pos, plan, seed, size)
        if len(pool.rel):
            yield pool


def simulator(c: EvalClass, seed: int, size: int = PRELOAD_SIZE):
    """The lens simulator of an injected class, seeded away from training's (whose seed is ``[train] seed``).

    The evaluation's pools use ``seed`` 10,000 (training simulator) or 20,000
    (independent one) plus the evaluation seed; the probes fit on others.
    """
    from ..lensing import ArcInjector, RayTracedLensSimulator

    if c.simulator == "RayTracedLensSimulator":
        return RayTracedLensSimulator(seed=seed, size=size)
    return ArcInjector(seed=seed, size=size)


def _injected_pool(c: EvalClass, embed, idx: np.ndarray, images, emb_all, pos, plan: _Injection, seed: int,
                   size: int) -> Pool:
    """The validation smooth galaxies ``idx``, arcs of ``c.simulator`` injected into the rows of ``plan``.

    Each arc is drawn in arcsec for its host's pixel scale ``6.4 * R90 / size``
    (`~astro_semsearch.lensing.pixscale_from_r90`, R90 from ``plan``).
    """
    emb = emb_all[[pos[i] for i in idx]].copy()
    pool_images = images[[pos[i] for i in idx]].copy()
    chosen = plan.rows
    sim = simulator(c, (20_000 if c.simulator == "RayTracedLensSimulator" else 10_000) + seed, size)
    pool_images[chosen] = sim.inject(pool_images[chosen], sim.arcs(len(chosen), r90=plan.r90))
    emb[chosen] = embed(pool_images[chosen])
    rel = np.zeros(len(idx))
    rel[chosen] = 1.0
    return Pool(c, emb, rel, _from_arrays(pool_images))
