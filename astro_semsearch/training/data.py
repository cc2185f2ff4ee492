"""What training reads: the train split, its decoded images, captions and their MiniLM features, arc banks.

Decoded images and caption features are cached in the run directory, keyed
by their content, so a resumed or repeated run does not decode or embed
them again.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from ..datasets import load_gz2, load_images, split_of
from ..model import encode_sentences, load_model, minilm_sha256
from ..sketch import draw_symbols
from .captions import GalaxyZooCaptioner, caption_table, lens_captions
from .symbols import gz2_symbol

__all__ = ["seed_for", "train_table", "preload", "get_captioner", "embed_captions", "symbol_bank", "lens_bank",
           "init_model"]


def seed_for(seed: int, *parts) -> int:
    """A per-(stage, epoch) seed, so resumed runs redraw the same numbers."""
    h = hashlib.sha256(repr((seed,) + parts).encode()).hexdigest()
    return int(h[:8], 16)


def train_table(cfg: dict):
    table = load_gz2(cfg["data"]["gz2_root"])
    keep = np.array([split_of(g) == "train" for g in table["galaxy_id"]], dtype=bool)
    table = table[keep]
    m = int(cfg["data"].get("max_images", 0) or 0)
    if 0 < m < len(table):
        rng = np.random.default_rng(seed_for(cfg["train"]["seed"], "subset"))
        table = table[np.sort(rng.choice(len(table), m, replace=False))]
    return table


def preload(table, cfg: dict, out: Path) -> np.ndarray:
    """Decode every image once into an ``(N, S, S, 3)`` uint8 array cached in ``out``."""
    size = int(cfg["data"]["preload_size"])
    ids = [str(g) for g in table["galaxy_id"]]
    key = hashlib.sha256(("\n".join(ids) + f"|{size}").encode()).hexdigest()[:16]
    cache = out / f"images_{size}_{key}.npy"
    if cache.is_file():
        try:
            arr = np.load(cache, mmap_mode=None, allow_pickle=False)
            if arr.shape == (len(ids), size, size, 3):
                return arr
        except (ValueError, OSError):
            pass
    arr = load_images(list(table["path"]), size=size, threads=int(cfg["data"].get("load_threads", 2)),
                      progress=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, arr, allow_pickle=False)
    os.replace(tmp, cache)
    return arr


def get_captioner():
    """The captioner and its helpers (`astro_semsearch.training.captions`)."""
    return GalaxyZooCaptioner(), caption_table, lens_captions


def embed_captions(strings: list[str], out: Path, device) -> np.ndarray:
    """Frozen-MiniLM features of the unique caption strings, cached in ``out``."""
    key = hashlib.sha256(("\n".join(strings) + minilm_sha256()).encode()).hexdigest()[:16]
    cache = out / f"caption_features_{key}.npy"
    if cache.is_file():
        arr = np.load(cache, allow_pickle=False)
        if arr.shape[0] == len(strings):
            return arr
    # Sorting by length keeps padding (wasted work) small.
    order = np.argsort([len(s) for s in strings], kind="stable")
    feats = np.empty((len(strings), 384), np.float32)
    feats[order] = encode_sentences([strings[i] for i in order], batch_size=256, device=device, progress=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, feats, allow_pickle=False)
    os.replace(tmp, cache)
    return feats


def symbol_bank(table, keep: np.ndarray, cfg: dict, with_lens: bool) -> dict | None:
    """Pre-draw symbol variants for every (kind, parameters) the training labels need.

    Returns ``{"bank": (K, V, S, S, 3) uint8, "key_of": (N_align,) int (-1: no symbol),
    "lens_key": int or -1, "keys": [...]}``.
    """
    s = cfg["symbols"]
    size = int(cfg["data"]["preload_size"])
    cols = table.colnames
    wanted = [gz2_symbol({c: row[c] for c in cols}) for row, k in zip(table, keep) if k]
    keys = sorted({repr(w) for w in wanted if w is not None} | ({repr(("lens", {}))} if with_lens else set()))
    if not keys:
        return None
    index = {key: i for i, key in enumerate(keys)}
    key_of = np.array([index[repr(w)] if w is not None else -1 for w in wanted], dtype=np.int64)
    n_var = int(s.get("variants", 24))
    seed = int(cfg["train"]["seed"])
    parsed = {repr(w): w for w in wanted if w is not None}
    parsed[repr(("lens", {}))] = ("lens", {})
    bank = np.stack([draw_symbols(parsed[key][0], n_var, np.random.default_rng(seed_for(seed, "symbol", key)),
                                  size=size, **parsed[key][1]) for key in keys])
    return {"bank": bank, "key_of": key_of, "keys": keys,
            "lens_key": index.get(repr(("lens", {})), -1) if with_lens else -1}


def lens_bank(table, images, cfg, sid, lens_caps):
    """Pre-generate arcs and pick smooth host galaxies for lens injection (None if unavailable).

    The ``[align] n_arcs`` arcs of `~astro_semsearch.lensing.ArcInjector` are
    drawn in arcsec, each for the pixel scale of its own host R90 drawn
    log-uniformly in 2-8" (the simulator's default). With ``[align]
    lens_min_contrast > 0`` only arcs whose
    `~astro_semsearch.lensing.arc_contrast` against the median host image is
    at least that are kept (`~astro_semsearch.lensing.visible_arcs`, up to
    10 x ``n_arcs`` drawn): small arcs on the bright core of a large host are
    invisible at the model's input and must not be labelled "lens".
    """
    try:
        import lenstronomy  # noqa: F401

        from ..lensing import ArcInjector, is_lens_host, visible_arcs
    except ImportError as err:
        warnings.warn(f"lens injection disabled: {err}", stacklevel=2)
        return None
    records = [{c: row[c] for c in table.colnames} for row in table]
    host_idx = np.flatnonzero([is_lens_host(r) for r in records])
    if len(host_idx) == 0:
        return None
    size = int(cfg["data"]["preload_size"])
    seed = int(cfg["train"]["seed"])
    n_arcs = int(cfg["align"].get("n_arcs", 300))
    min_contrast = float(cfg["align"].get("lens_min_contrast", 0.0) or 0.0)
    injector = ArcInjector(seed=seed, size=size)
    hosts = images[host_idx]
    # The typical host: the median image of (up to 512 of) the hosts.
    rng = np.random.default_rng(seed_for(seed, "lens_hosts"))
    sample = np.sort(rng.choice(len(hosts), size=min(512, len(hosts)), replace=False))
    typical = np.median(hosts[sample], axis=0)
    arcs, contrast, n_drawn = visible_arcs(injector, n_arcs, typical, min_contrast)
    if len(arcs) == 0:
        warnings.warn(f"lens injection disabled: none of {n_drawn} simulated arcs reaches [align] "
                      f"lens_min_contrast = {min_contrast} on these hosts", stacklevel=2)
        return None
    if min_contrast > 0:
        print(f"lens arcs: kept {len(arcs)} of {n_drawn} drawn with contrast >= {min_contrast} "
              f"(median {np.median(contrast):.2f})")
    return {"hosts": hosts, "arcs": arcs, "injector": injector, "contrast": contrast,
            "caption_ids": np.array([sid[c] for c in lens_caps])}


def init_model(cfg: dict):
    """The model named by ``[train] init_model`` (a shipped name or a directory), or None."""
    name = str(cfg["train"].get("init_model", "") or "").strip()
    if not name:
        return None
    return load_model(name)
