"""The galaxies each query class is measured on: embeddings, relevances and (for re-rankers) images.

`class_pools` loads the labelled split once, embeds it once, and yields one
`Pool` per class of `~astro_semsearch.evaluation.protocol.CLASSES`, in table
order: the Galaxy Zoo 2 pools (`gz2_pool`), the DECaLS ring set, and the
smooth galaxies with simulated arcs injected into a few of them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..datasets import load_decals, load_gz2, load_images, split_of
from .protocol import CLASSES, EvalClass, gz2_pool

__all__ = ["Pool", "class_pools", "PRELOAD_SIZE"]

#: Side in pixels the evaluation images are decoded at; the model crops and resizes them itself.
PRELOAD_SIZE = 80


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
    if "injected_lens" not in wanted:
        return False
    try:
        import lenstronomy  # noqa: F401
    except ImportError:
        # lenstronomy is an optional dependency (the "train" extra).
        warnings.warn("lenstronomy is not installed: skipping the 'injected lens' class "
                      "(pip install 'astro_semsearch[train]')", stacklevel=3)
        wanted.discard("injected_lens")
        return False
    return True


def class_pools(model, wanted: set[str], *, gz2_root, decals_root, split: str, seed: int, lens_fraction: float,
                batch_size: int, progress: bool, rng: np.random.Generator,
                extra: Sequence[EvalClass] = ()) -> Iterator[Pool]:
    """The pools of the classes in ``wanted``, in table order, then of the ``extra`` Galaxy Zoo classes.

    Classes without data are skipped.
    """
    want_lens = _want_lens(wanted)  # may drop the injected-lens class (no lenstronomy)
    classes = [c for c in CLASSES if c.id in wanted] + list(extra)
    want_gz2 = any(c.source == "gz2" for c in classes)
    gz2 = in_split = images = emb_all = None
    pos: dict[int, int] = {}
    host = None
    if want_gz2 or want_lens:
        gz2 = load_gz2(gz2_root)
        in_split = np.array([split_of(g) == split for g in gz2["galaxy_id"]], dtype=bool)
        voted = np.asarray(gz2["n_vote_columns"]) > 0
        host = np.zeros(len(gz2), dtype=bool)
        if want_lens:
            from ..lensing import is_lens_host

            cols = ["Class1.1", "coarse_label"]
            host = np.array([is_lens_host({c: gz2[c][i] for c in cols}) for i in range(len(gz2))], dtype=bool)
        rows = np.flatnonzero(in_split & ((voted & want_gz2) | host))
        images = (load_images(list(gz2["path"][rows]), size=PRELOAD_SIZE, progress=progress) if len(rows)
                  else np.zeros((0, PRELOAD_SIZE, PRELOAD_SIZE, 3), np.uint8))
        emb_all = _embed(model, images, batch_size, progress)
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
            emb = _embed(model, load_images(list(dec["path"]), size=PRELOAD_SIZE), batch_size, False)
            pool = Pool(c, emb, np.asarray(dec[c.column], dtype=float), _from_paths(np.asarray(dec["path"])))
        else:
            pool = _injected_pool(c, model, gz2, in_split & host, images, emb_all, pos, seed, lens_fraction,
                                  batch_size, rng)
            if pool is None:
                continue
        if len(pool.rel):
            yield pool


def _injected_pool(c: EvalClass, model, gz2, hosts: np.ndarray, images, emb_all, pos, seed: int,
                   lens_fraction: float, batch_size: int, rng: np.random.Generator) -> Pool | None:
    """The split's smooth galaxies, simulated arcs injected into ``lens_fraction`` of them."""
    from ..lensing import ArcInjector

    idx = np.flatnonzero(hosts)
    if len(idx) == 0:
        return None
    emb = emb_all[[pos[i] for i in idx]].copy()
    pool_images = images[[pos[i] for i in idx]].copy()
    n_inj = max(1, int(round(lens_fraction * len(idx))))
    chosen = rng.choice(len(idx), size=n_inj, replace=False)
    # A seed far from training's, so these arcs are not the training arcs.
    injector = ArcInjector(seed=10_000 + seed, size=PRELOAD_SIZE)
    pool_images[chosen] = injector.inject(pool_images[chosen], injector.arcs(n_inj))
    emb[chosen] = _embed(model, pool_images[chosen], batch_size, False)
    rel = np.zeros(len(idx))
    rel[chosen] = 1.0
    return Pool(c, emb, rel, _from_arrays(pool_images))
