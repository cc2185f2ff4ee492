"""The training stages, one epoch at a time: SimCLR, image-caption alignment, the text-only vocabulary stage."""
from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._io import progress
from .data import seed_for
from .losses import clip_loss, concept_loss, nt_xent

__all__ = ["ssl_head", "ssl_optimizer", "align_optimizer", "text_optimizer", "run_ssl_epoch", "run_align_epoch",
           "AlignData", "ConceptTerm", "anchor_term", "symbol_term", "schedule", "sampling_weights", "jitter_features"]


def schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5%."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    p = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def ssl_head(dim_in: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim_in, 512), nn.BatchNorm1d(512), nn.GELU(), nn.Linear(512, 128))


def _ssl_params(model, head):
    return list(model.image_encoder.parameters()) + list(head.parameters())


def align_optimizer(model, cfg, extra: nn.Module | None = None):
    """AdamW over the encoder, the heads and the temperature; ``extra``: training-only parameters (the
    concept loss's temperature), at the heads' rate without weight decay."""
    a = cfg["align"]
    enc = list(model.image_encoder.parameters())
    heads = list(model.image_head.parameters()) + list(model.text_head.parameters())
    groups = [
        {"params": enc, "lr": a["encoder_lr"], "base_lr": a["encoder_lr"]},
        {"params": heads, "lr": a["lr"], "base_lr": a["lr"]},
        {"params": [model.logit_scale], "lr": a["lr"], "base_lr": a["lr"], "weight_decay": 0.0},
    ]
    if extra is not None:
        groups.append({"params": list(extra.parameters()), "lr": a["lr"], "base_lr": a["lr"], "weight_decay": 0.0})
    return torch.optim.AdamW(groups, weight_decay=a["weight_decay"])


def text_optimizer(model, cfg, extra: nn.Module | None = None):
    """AdamW over the text head alone (and ``extra``, the concept temperature): stage 3 keeps the image
    tower, and so every image embedding an index holds, exactly as stage 2 left it."""
    t = cfg["text"]
    groups = [{"params": list(model.text_head.parameters()), "lr": t["lr"], "base_lr": t["lr"]}]
    if extra is not None:
        groups.append({"params": list(extra.parameters()), "lr": t["lr"], "base_lr": t["lr"], "weight_decay": 0.0})
    return torch.optim.AdamW(groups, weight_decay=t["weight_decay"])


def ssl_optimizer(model, head, cfg):
    s = cfg["ssl"]
    return torch.optim.AdamW([{"params": _ssl_params(model, head), "lr": s["lr"], "base_lr": s["lr"]}],
                             weight_decay=s["weight_decay"])


def _set_lr(optim, factor):
    for g in optim.param_groups:
        g["lr"] = g["base_lr"] * factor


def run_ssl_epoch(model, head, optim, images, cfg, epoch, device, aug, total_steps, step0):
    s = cfg["ssl"]
    bs = min(int(s["batch_size"]), len(images))
    gen = torch.Generator().manual_seed(seed_for(cfg["train"]["seed"], "ssl", epoch))
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
        _set_lr(optim, schedule(step0 + b, total_steps, warm))
        z = F.normalize(head(model.image_encoder(torch.cat([v1, v2]))), dim=-1)
        loss = nt_xent(z[:len(idx)], z[len(idx):], float(s["temperature"]))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return float(np.mean(losses)) if losses else float("nan"), nb * bs * 2


class ConceptTerm(nn.Module):
    """The concept loss's data and its one trained parameter (a temperature), for `run_align_epoch`.

    Parameters
    ----------
    targets : torch.Tensor
        ``(N, K)`` relevance of every alignment galaxy for every concept
        (`~astro_semsearch.training.concepts.concept_targets`; NaN unknown).
    concept_ids : list of numpy.ndarray
        Per concept, the caption-string ids of its wordings (one is drawn per step).
    lens_concept : int
        Column of the "lens" concept: a simulated lens is relevant (1) for it
        and unknown for every other concept.
    temperature : float
        Initial softmax temperature of the concept loss (trained, within 0.01-1).
    """

    def __init__(self, targets: torch.Tensor, concept_ids: list, lens_concept: int, temperature: float = 0.05):
        super().__init__()
        self.targets, self.concept_ids, self.lens_concept = targets, concept_ids, int(lens_concept)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(0.0, math.log(100.0)).exp()


def sampling_weights(targets: torch.Tensor, rare: list[int], voted_weight: float, rare_boost: float) -> torch.Tensor:
    """Per-image sampling weights of the ``"weighted"`` sampler.

    ``1`` for a galaxy without votes, ``voted_weight`` with votes, plus
    ``rare_boost`` times its largest relevance among the ``rare`` concept
    columns, so rings, lenses, mergers and dust lanes appear in many batches.

    >>> t = torch.tensor([[float("nan"), float("nan")], [0.0, 0.1], [0.0, 0.9]])
    >>> sampling_weights(t, [1], voted_weight=3.0, rare_boost=10.0).tolist()
    [1.0, 4.0, 12.0]
    """
    voted = torch.isfinite(targets).any(1)
    r = torch.nan_to_num(targets[:, rare], nan=0.0).max(1).values if rare else torch.zeros(len(targets))
    return torch.where(voted, float(voted_weight), 1.0) + float(rare_boost) * r


class AlignData:
    """Everything stage 2 samples from: images, caption ids per galaxy, lens bank, concept term, sampler."""

    def __init__(self, images, caption_lists, strings, feats, lens=None, symbols=None, concepts=None,
                 weights=None):
        self.images = images                  # (N, S, S, 3) uint8, galaxies with captions
        self.caption_lists = caption_lists    # list of lists of caption ids
        self.strings = strings
        self.feats = torch.from_numpy(feats)  # (U, 384)
        self.lens = lens                      # None or dict(hosts, arcs, caption_ids, injector)
        self.symbols = symbols                # None or _symbol_bank(...)
        self.concepts = concepts              # None or ConceptTerm
        self.weights = weights                # None (each galaxy once per epoch) or (N,) sampling weights
        self.last_symbol_loss = float("nan")  # mean symbol term of the last epoch (for the log)
        self.last_concept_loss = float("nan")
        self.anchor = None                    # stage 3: (old text embeddings (U, D), which strings to keep, weight)


def jitter_features(feats: torch.Tensor, length: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit text features moved by a random vector of about ``length``, then put back on the sphere.

    The text head is trained on some thirty thousand caption strings; a query
    a user types sits about 0.4-0.5 (in MiniLM's unit feature space) from its
    nearest training string, farther than training strings sit from each other
    (about 0.3; ``data/recipes/text_neighbour_distances.py``). Training on a random point near each string teaches the head the
    neighbourhood, not the string alone. ``length = 0`` returns ``feats``.

    >>> f = torch.nn.functional.normalize(torch.randn(4, 384), dim=-1)
    >>> g = jitter_features(f, 0.3, torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(g.norm(dim=-1), torch.ones(4))), bool((f - g).norm(dim=-1).mean() > 0.2)
    (True, True)
    """
    if length <= 0:
        return feats
    noise = torch.randn(feats.shape, generator=generator).to(feats.device)
    return F.normalize(feats + noise * (float(length) / math.sqrt(feats.shape[-1])), dim=-1)


def anchor_term(z: torch.Tensor, ids: np.ndarray, anchor) -> torch.Tensor:
    """Stage 3's memory: ``1 - cos`` between the text head's embeddings and the ones it had before the
    stage, over the strings it was trained on before (new wordings are free to move)."""
    old, keep, _ = anchor
    sel = torch.from_numpy(keep[ids]).to(z.device)
    if not bool(sel.any()):
        return z.new_zeros(())
    prev = old[torch.from_numpy(ids).to(old.device)[sel.to(old.device)]].to(z.device)
    return (1.0 - (z[sel] * prev).sum(-1)).mean()


def run_align_epoch(model, optim, data: AlignData, cfg, epoch, device, aug, total_steps, step0, *,
                    stage: str = "align", freeze_image: bool = False):
    """One epoch of the caption (CLIP) and concept losses; ``freeze_image``: stage 3, where only the
    text side learns (image embeddings under ``no_grad``, BatchNorm statistics untouched, no symbols)."""
    a = cfg["align"]
    n = len(data.images)
    bs = min(int(a["batch_size"]), n)
    seed = seed_for(cfg["train"]["seed"], stage, epoch)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    if data.weights is not None:  # rare kinds drawn more often (with replacement), as many draws per epoch
        perm = torch.multinomial(data.weights, n, replacement=True, generator=gen).numpy()
    else:
        perm = torch.randperm(n, generator=gen).numpy()
    nb = n // bs
    con = data.concepts
    w_con = float(a.get("concept_weight", 0.0)) if con is not None else 0.0
    # stage 3 trains on the clean features: its anchor compares them with stage 2's clean embeddings
    noise = 0.0 if freeze_image else float(a.get("text_noise", 0.0))
    gain_power = float(a.get("concept_gain_power", 1.0))
    con_losses = []
    model.train()
    if freeze_image:
        model.image_encoder.eval()
        model.image_head.eval()
    warm = int(cfg["train"]["warmup_fraction"] * total_steps)
    p_lens = float(a.get("lens_probability", 0.0)) if data.lens is not None else 0.0
    sym = data.symbols
    sc = cfg.get("symbols", {})
    w_sym = float(sc.get("weight", 0.0)) if sym is not None and not freeze_image else 0.0
    losses, sym_losses = [], []
    bar = progress(range(nb), desc=f"{stage} epoch {epoch + 1}", leave=False)
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
        t = jitter_features(data.feats[cap], noise, gen).to(device)
        cid = torch.from_numpy(cap).to(device) if a.get("mask_duplicate_captions", True) else None
        _set_lr(optim, schedule(step0 + b, total_steps, warm))
        scale = model.clamped_logit_scale().exp()
        with torch.no_grad() if freeze_image else nullcontext():
            zi = model.encode_image_tensor(x)
        zt = model.encode_text_features(t)
        loss = clip_loss(zi, zt, scale, cid)
        if w_con > 0:
            # One wording of every concept must rank the batch by that concept's relevance.
            tg = con.targets[idx].clone()
            if len(swap):  # a simulated lens: relevant for "lens", unknown for everything else
                tg[swap] = float("nan")
                if con.lens_concept >= 0:
                    tg[swap, con.lens_concept] = 1.0
            words = np.array([ids[rng.integers(len(ids))] for ids in con.concept_ids])
            zc = model.encode_text_features(jitter_features(data.feats[words], noise, gen).to(device))
            c_loss = concept_loss(zi, zc, tg.to(device), con.scale(), gain_power)
            loss = loss + w_con * c_loss
            con_losses.append(c_loss.item())
        if data.anchor is not None:
            zs, ids = (torch.cat([zt, zc]), np.concatenate([cap, words])) if w_con > 0 else (zt, cap)
            loss = loss + data.anchor[2] * anchor_term(zs, ids, data.anchor)
        if w_sym > 0:
            loss = loss + w_sym * symbol_term(model, sym, idx, swap, zi, zt, scale, sc, rng, gen, aug, device,
                                               sym_losses)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", T=f"{model.temperature:.3f}")
    data.last_symbol_loss = float(np.mean(sym_losses)) if sym_losses else float("nan")
    data.last_concept_loss = float(np.mean(con_losses)) if con_losses else float("nan")
    return float(np.mean(losses)) if losses else float("nan"), nb * bs


def symbol_term(model, sym, idx, swap, zi, zt, scale, sc, rng, gen, aug, device, log) -> torch.Tensor:
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
