"""Stage 4, the read-out: each concept's wordings pulled to where a linear read-out of the image tower points.

After stage 2 the image embeddings know more than text queries reach: a
ridge regression from the image embedding to a concept's vote fraction
(the evaluation's *probe*, `astro_semsearch.evaluation.probe`) ranks
held-out galaxies better than the concept's own words do. Measured on
galclip-v3, the text embedding of a concept wording and that concept's
ridge direction have a mean cosine of only 0.20 (0.205): the contrastive and
listwise losses of stage 2 teach the text head a direction that ranks the
top of a batch, not the direction in which the concept grows.

This stage fits those directions on the training split, with the image
tower as stage 2 left it (it does not change here), and trains the text
head alone so that every wording of a concept, jittered as in stage 2
(`~astro_semsearch.training.stages.jitter_features`), embeds along its
concept's direction. An anchor pulls every training string (the sentence
captions and lens captions, and the wordings too, which the first term
outweighs) towards where the text head had it before the stage; with
``caption_pull`` > 0 a galaxy caption's anchor moves part of the way
towards where the read-out places the galaxies it captions
(`caption_targets`), so the sentences between the concepts' wordings
follow the read-out too. A query a
user types is none of these strings; it inherits the direction of the
wordings near it in the sentence encoder's space.

The "lens" concept's read-out is fitted with arcs: a share of the lens
hosts is added twice, once with an arc of the training simulator
(relevance 1) and once without (0), beside the rare Galaxy Zoo "lens or
arc" votes, so its direction is that of a visible arc.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> emb = rng.normal(size=(300, 4))
>>> emb /= np.linalg.norm(emb, axis=1, keepdims=True)
>>> targets = np.stack([emb[:, 0], np.full(300, np.nan)], 1)
>>> d = readout_directions(emb, targets)
>>> round(float(d[0, 0]), 3), bool(np.abs(d[0, 1:]).max() < 1e-3), bool(np.isnan(d[1]).all())
(1.0, True, True)
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from .._io import progress
from ..evaluation.probe import ridge_fit
from ..exceptions import InvalidInputError
from ..images import image_problem
from .stages import jitter_features

__all__ = ["readout_directions", "caption_targets", "lensed_rows", "run_readout", "readout_stage"]


def readout_directions(emb: np.ndarray, targets: np.ndarray, *, min_rows: int = 50, seed: int = 0) -> np.ndarray:
    """Per concept, the unit direction of a ridge regression from the embeddings to its relevance.

    Parameters
    ----------
    emb : numpy.ndarray
        ``(N, D)`` image embeddings.
    targets : numpy.ndarray
        ``(N, K)`` relevance of every galaxy for every concept, NaN unknown
        (`~astro_semsearch.training.concepts.concept_targets`).
    min_rows : int
        A concept with fewer known relevances, or a constant one, gets no direction.
    seed : int
        Seed of the ridge penalty's cross-validation folds.

    Returns
    -------
    numpy.ndarray
        ``(K, D)`` float32 unit vectors; a row of NaN where a concept has no direction.
    """
    if int(min_rows) < 2:
        raise InvalidInputError(f"readout_directions needs min_rows >= 2 (a regression needs two galaxies), "
                                f"got {min_rows}")
    emb = np.asarray(emb, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    out = np.full((targets.shape[1], emb.shape[1]), np.nan, dtype=np.float32)
    for k in range(targets.shape[1]):
        known = np.isfinite(targets[:, k])
        if known.sum() < min_rows or np.ptp(targets[known, k]) <= 0:
            continue
        w, _, _ = ridge_fit(emb[known], targets[known, k], seed=seed)
        norm = np.linalg.norm(w)
        if norm > 0:
            out[k] = w / norm
    return out


def caption_targets(directions: np.ndarray, targets: np.ndarray, captions: list, n_strings: int) -> np.ndarray:
    """Per string, where the read-out says the galaxies it captions lie: ``(n_strings, D)``, NaN where none.

    Galaxy ``i``'s point is ``sum_k z_ik d_k`` over the concepts with a
    direction ``d_k`` and a known relevance, ``z_ik`` the relevance
    standardised over the galaxies (so a rare feature a galaxy has weighs
    more than a common one); a string's target is the unit mean of the
    points of the galaxies it captions. A string carried by galaxies of
    every kind has a mean near zero, whose unit vector says little.

    Examples
    --------
    >>> d = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, np.nan]])
    >>> ct = caption_targets(d, t, [[0], [1], [0, 2]], 4)  # galaxy 2 is captioned by strings 0 and 2
    >>> [[round(float(x), 2) for x in row] for row in ct[:3]], bool(np.isnan(ct[3]).all())
    ([[0.82, -0.58], [-0.82, 0.58], [1.0, 0.0]], True)
    """
    targets = np.asarray(targets, dtype=np.float64)
    use = np.isfinite(directions[:, 0])
    known = np.isfinite(targets)
    n = np.maximum(known.sum(0), 1)  # a concept nobody has a relevance for gets z = 0, not a warning
    mu = np.where(known, targets, 0).sum(0) / n
    sd = np.sqrt(np.where(known, (targets - mu) ** 2, 0).sum(0) / n)
    z = np.where(known & use & (sd > 0), (targets - mu) / np.where(sd > 0, sd, 1), 0.0)
    points = z @ np.nan_to_num(np.asarray(directions, dtype=np.float64))
    total = np.zeros((n_strings, points.shape[1]))
    count = np.zeros(n_strings)
    for i, ids in enumerate(captions):
        np.add.at(total, np.asarray(ids, dtype=np.int64), points[i])
        np.add.at(count, np.asarray(ids, dtype=np.int64), 1)
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return np.where((count[:, None] > 0) & (norm > 0), total / np.where(norm > 0, norm, 1), np.nan).astype(np.float32)


def lensed_rows(lens: dict, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``fraction`` of the lens bank's hosts, each with a random arc of the bank injected, and the same hosts
    without (uint8 images): the pair the "lens" read-out contrasts."""
    hosts = lens["hosts"]
    n = round(float(fraction) * len(hosts))
    if n < 1:
        return hosts[:0], hosts[:0]
    pick = rng.choice(len(hosts), n, replace=False)
    arcs = lens["arcs"][rng.integers(len(lens["arcs"]), size=n)]
    return lens["injector"].inject(hosts[pick], arcs, rng=rng), hosts[pick]


def run_readout(model, feats: torch.Tensor, concept_of: np.ndarray, directions: np.ndarray, anchor: torch.Tensor,
                r: dict, generator: torch.Generator) -> dict:
    """Train the text head: wordings -> their concept's direction, every string -> its old embedding.

    Parameters
    ----------
    model : GalaxyModel
        Only ``model.text_head`` is trained.
    feats : torch.Tensor
        ``(U, 384)`` unit MiniLM features of every training string.
    concept_of : numpy.ndarray
        ``(U,)`` the concept row of ``directions`` each string words, -1 for the others.
    directions : numpy.ndarray
        ``(K, D)`` `readout_directions` (NaN rows are not trained towards).
    anchor : torch.Tensor
        ``(U, D)`` where each string is held: the text head's embedding of it
        before the stage (`readout_stage` moves the sentence captions' with
        ``caption_pull``).
    r : dict
        The ``[readout]`` settings: ``steps``, ``batch_size``, ``lr``,
        ``weight_decay``, ``anchor_weight``, ``text_noise`` and ``pull``
        (optional, default 1: each wording's target is its direction; below
        1, the unit vector of ``pull x direction + (1 - pull) x`` its
        embedding before the stage).
    generator : torch.Generator
        Draws the batches and the jitter.

    Returns
    -------
    dict
        ``loss`` (mean of the last 100 steps), ``cos_before`` / ``cos_after``
        (mean cosine of the wordings to their directions) and
        ``anchor_cos`` (mean cosine of every string that is not one of those
        wordings to its anchor, after the stage).
    """
    dev = feats.device
    dirs = torch.from_numpy(np.nan_to_num(directions)).float().to(dev)
    ok = np.flatnonzero((concept_of >= 0) & np.isfinite(directions[np.maximum(concept_of, 0), 0]))
    if len(ok) == 0:
        return {"loss": float("nan"), "cos_before": float("nan"), "cos_after": float("nan"), "anchor_cos": 1.0}
    others = torch.from_numpy(np.setdiff1d(np.arange(len(feats)), ok)).to(dev)
    words = torch.from_numpy(ok).to(dev)
    direction = dirs[torch.from_numpy(concept_of[ok]).to(dev)]
    target, pull = direction, float(r.get("pull", 1.0))
    if pull < 1:  # part of the way: between each wording's own embedding and its concept's direction
        target = F.normalize(pull * direction + (1 - pull) * anchor[words], dim=-1)
    head = model.text_head
    optim = torch.optim.AdamW(head.parameters(), lr=float(r["lr"]), weight_decay=float(r["weight_decay"]))

    def cos_to_direction() -> float:
        with torch.no_grad():
            return float((model.encode_text_features(feats[words]) * direction).sum(-1).mean())

    head.eval()
    before = cos_to_direction()
    head.train()
    bs, noise, w_anchor = int(r["batch_size"]), float(r["text_noise"]), float(r["anchor_weight"])
    losses = []
    bar = progress(range(int(r["steps"])), desc="read-out", leave=False)
    for _ in bar:
        i = torch.randint(len(words), (bs,), generator=generator).to(dev)
        j = torch.randint(len(feats), (bs,), generator=generator).to(dev)
        z = model.encode_text_features(jitter_features(feats[words[i]], noise, generator))
        loss = (1 - (z * target[i]).sum(-1)).mean()
        if w_anchor > 0:
            za = model.encode_text_features(feats[j])
            loss = loss + w_anchor * (1 - (za * anchor[j]).sum(-1)).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    head.eval()
    with torch.no_grad():
        kept = torch.cat([(model.encode_text_features(feats[i]) * anchor[i]).sum(-1) for i in others.split(4096)])
    return {"loss": float(np.mean(losses[-100:])) if losses else float("nan"), "cos_before": before,
            "cos_after": cos_to_direction(), "anchor_cos": float(kept.mean()) if len(kept) else 1.0}


def readout_stage(model, images: np.ndarray, targets: np.ndarray, concept_ids: list, feats: torch.Tensor, r: dict,
                  seed: int, lens: dict | None = None, lens_concept: int = -1, captions: list | None = None) -> dict:
    """The whole of stage 4: fit the directions, then `run_readout`; returns its log entry.

    ``images`` are the decoded training galaxies with ``targets`` (``(N, K)``, NaN
    unknown) their concepts' relevance; ``concept_ids`` lists, per concept, the
    rows of ``feats`` that word it (a string that words two concepts is
    trained towards the first, with a warning); ``lens`` is a lens bank
    (`~astro_semsearch.training.data.lens_bank`, drawn as for stage 2):
    ``[readout] lens_fraction`` of its hosts are added with an arc (relevance
    1 for ``lens_concept``) and without (0). ``captions`` lists, per galaxy
    of ``images``, the rows of ``feats`` that caption it: with ``[readout]
    caption_pull`` > 0 each caption's anchor moves that far towards its
    `caption_targets`.
    """
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    voted = np.flatnonzero(np.isfinite(targets).any(1))
    # Skipped as index builds skip them, not refused by embed_images at the end of a long run.
    blank = np.array([image_problem(images[i]) is not None for i in voted], dtype=bool)
    if blank.any():
        warnings.warn(f"[readout]: {int(blank.sum())} training images carry no signal (blank, constant); "
                      "the read-out is fitted without them", stacklevel=2)
        voted = voted[~blank]
    captions = None if captions is None else [captions[i] for i in voted]
    emb = model.embed_images(images[voted])
    targets = np.asarray(targets[voted], dtype=np.float64)
    galaxy_targets = targets.copy()  # before the lensed rows: those have no captions
    n_lensed = 0
    if lens is None and lens_concept >= 0 and float(r["lens_fraction"]) > 0:
        warnings.warn("[readout]: no lens bank (lens injection off or unavailable), so the lens read-out is "
                      "fitted on the Galaxy Zoo votes alone", stacklevel=2)
    if lens is not None and lens_concept >= 0 and float(r["lens_fraction"]) > 0:
        arcs, plain = lensed_rows(lens, float(r["lens_fraction"]), rng)
        n_lensed = len(arcs)
        if n_lensed:  # the same hosts with (1) and without (0) an arc; unknown for every other concept
            extra = np.full((2 * n_lensed, targets.shape[1]), np.nan)
            extra[:n_lensed, lens_concept], extra[n_lensed:, lens_concept] = 1.0, 0.0
            emb = np.concatenate([emb, model.embed_images(np.concatenate([arcs, plain]))])
            targets = np.concatenate([targets, extra])
    directions = readout_directions(emb, targets, min_rows=int(r["min_galaxies"]), seed=seed)
    if not np.isfinite(directions[:, 0]).any():
        warnings.warn(f"[readout]: no concept has {int(r['min_galaxies'])} training galaxies with known, varied "
                      "relevances (min_galaxies); stage 4 leaves the text head as it was", stacklevel=2)
    concept_of = np.full(len(feats), -1, dtype=np.int64)
    shared = 0
    for k, ids in reversed(list(enumerate(concept_ids))):  # reversed: a shared string keeps its first concept
        ids = np.asarray(ids, dtype=np.int64)
        shared += int((concept_of[ids] >= 0).sum())
        concept_of[ids] = k
    if shared:
        warnings.warn(f"[readout]: {shared} strings word more than one concept; each is trained towards the "
                      "first concept listing it", stacklevel=2)
    with torch.no_grad():
        model.text_head.eval()
        anchor = torch.cat([model.encode_text_features(f) for f in feats.split(4096)])
    n_moved, p = 0, float(r.get("caption_pull", 0.0))
    if p > 0 and captions is not None:  # the captions' anchors part of the way to their galaxies' read-out
        ct = caption_targets(directions, galaxy_targets, captions, len(feats))
        move = np.flatnonzero(np.isfinite(ct[:, 0]) & (concept_of < 0))
        idx, n_moved = torch.from_numpy(move).to(anchor.device), len(move)
        anchor[idx] = F.normalize(p * torch.from_numpy(ct[move]).to(anchor) + (1 - p) * anchor[idx], dim=-1)
    out = run_readout(model, feats, concept_of, directions, anchor, r, gen)
    return {**out, "n_galaxies": len(voted), "n_lensed": n_lensed, "n_captions_moved": n_moved,
            "n_directions": int(np.isfinite(directions[:, 0]).sum())}
