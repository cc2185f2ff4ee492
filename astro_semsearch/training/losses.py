"""The contrastive losses: SimCLR's NT-Xent (image views), CLIP's symmetric InfoNCE (image-text) and the
listwise concept loss (text -> images ranked by Galaxy Zoo relevance)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent", "clip_loss", "concept_loss"]


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


def concept_loss(img: torch.Tensor, concept_txt: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor,
                 gain_power: float = 1.0) -> torch.Tensor:
    """Listwise soft-target InfoNCE from concept wordings to the batch's images.

    For every concept wording (row of ``concept_txt``, ``(K, D)``) the batch's
    images (``img``, ``(B, D)``) are ranked by similarity (a softmax over the
    images whose relevance is known) and matched to the target distribution
    ``gain ** gain_power``, normalised, with the nDCG gain ``2**rel - 1`` of
    each image's relevance for that concept (``targets``, ``(B, K)``, NaN =
    unknown). A ``gain_power`` above 1 sharpens the target towards the most
    relevant images, as nDCG@10 weighs the top. Concepts with no gain in the
    batch are skipped. The optimum puts each wording's embedding along the
    direction in which its concept's relevance grows: what a text query
    needs to rank like a linear probe of the image embeddings.

    Returns the mean over the usable concepts (0 if none).

    Examples
    --------
    >>> img = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    >>> rel = torch.tensor([[0.9], [0.0]])
    >>> good = concept_loss(img, torch.tensor([[1.0, 0.0]]), rel, torch.tensor(10.0))
    >>> bad = concept_loss(img, torch.tensor([[0.0, 1.0]]), rel, torch.tensor(10.0))
    >>> bool(good < bad)
    True
    """
    known = torch.isfinite(targets)
    gain = (torch.exp2(torch.nan_to_num(targets, nan=0.0).clamp(0, 1)) - 1).clamp(min=0) ** gain_power
    gain = gain * known
    tot = gain.sum(0)
    ok = (tot > 1e-6) & (known.sum(0) >= 2)
    if not bool(ok.any()):
        return img.new_zeros(())
    logits = (scale * img @ concept_txt.T).masked_fill(~known, float("-inf"))
    logp = torch.where(known, torch.log_softmax(logits, dim=0), torch.zeros_like(logits))
    per = -(gain / tot.clamp(min=1e-9) * logp).sum(0)
    return per[ok].mean()
