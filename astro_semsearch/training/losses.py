"""The contrastive losses: SimCLR's NT-Xent (image views) and CLIP's symmetric InfoNCE (image-text)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent", "clip_loss"]


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
