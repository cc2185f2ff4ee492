"""Train the aligned image-text model: ``astro-semsearch train --config CFG --out DIR``.

Two stages, both contrastive, and two optional ones for the text side:

1. **Self-supervised pretraining** (SimCLR, NT-Xent loss) of the image
   encoder on every training-split image, labelled or not: two random
   galaxy-safe views of the same galaxy (`~astro_semsearch.training.augment.Augment`) must map close
   together and away from the other galaxies of the batch.
2. **Alignment** of images with captions (CLIP / AION-Search style symmetric
   InfoNCE with a learnable temperature). Captions are generated from the
   Galaxy Zoo votes by a captioner (`astro_semsearch.training.captions`),
   embedded once by the frozen MiniLM sentence encoder, and one of several
   captions per galaxy is drawn at each step. A small fraction of samples is
   replaced by a real smooth galaxy with a simulated lensed arc injected
   (`astro_semsearch.lensing`) and a lens caption, because the data
   hold no real strong lenses. In-batch pairs sharing a caption string are
   not used as negatives (they are not wrong matches). With ``[align]
   concept_weight`` > 0 a second, *listwise* term
   (`~astro_semsearch.training.losses.concept_loss`) makes one wording of
   every Galaxy Zoo concept (`astro_semsearch.training.concepts`: every
   answer and the Hubble types, in one-word, short, long and Hubble-type
   forms) rank the batch's galaxies by that concept's vote fraction, so that
   every way of asking for a class points where the class grows in the
   image embedding. ``sampler = "weighted"`` draws galaxies with votes, and
   the rare kinds (rings, lenses, mergers, dust lanes...), more often.

   Optionally (``[symbols] enabled = true``, GalaxAlign's three-way
   alignment), a schematic symbol drawn for each galaxy's Galaxy Zoo label
   (`astro_semsearch.training.symbols`, `astro_semsearch.sketch`) is embedded by the same image
   encoder and contrastively aligned with the galaxy image and with its
   caption. ``[train] init_model`` starts from a trained model's weights
   (fine-tuning) instead of a random initialisation.
3. **Vocabulary** (``[text] epochs`` > 0): the same losses again, with the
   concepts' wordings extended by ``[text] extra_wordings`` (a TOML file of
   ``[concept_id] words = [...]``), but only the text head learns. The image
   encoder, its head and the temperature stay as stage 2 left them, so the
   new words cost no image-side drift, and every image embedding (of an
   index too) is the same as before the stage.
4. **Read-out** (``[readout] steps`` > 0; `astro_semsearch.training.readout`):
   the text head alone learns to point each concept's wordings where a ridge
   read-out of the (unchanged) image embeddings points for that concept.

After every epoch a training monitor, GalaxIDNet's *mini-search loose
accuracy* (`~astro_semsearch.training.monitor.mini_search_loose_accuracy`), searches a small fixed gallery of
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

    astro-semsearch train --config astro_semsearch/training/default_config.toml --out runs/galclip-v2
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_bytes
from ..exceptions import InvalidInputError
from ..model import GalaxyModel, minilm_sha256
from .augment import Augment, center_crop
from .card import model_card
from .checkpoints import Checkpoints
from .concepts import held_out_texts
from .config import check_text_stage, concepts_of, load_config
from .data import embed_captions, get_captioner, init_model, lens_bank, preload, seed_for, symbol_bank, train_table
from .losses import clip_loss, nt_xent
from .monitor import make_monitor, mini_search_loose_accuracy
from .stages import (AlignData, ConceptTerm, align_optimizer, run_align_epoch, run_ssl_epoch, sampling_weights, ssl_head,
                     text_optimizer,
                     ssl_optimizer)

__all__ = ["train", "load_config", "mini_search_loose_accuracy", "nt_xent", "clip_loss"]


def _json_dump(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _write_metrics(out: Path, epochs: list[dict]) -> None:
    """``metrics.jsonl``: one JSON object per finished epoch (rewritten whole, so resumes never duplicate)."""
    lines = "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in epochs)
    atomic_write_bytes(out / "metrics.jsonl", lines.encode())


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
    cfg = load_config(config)
    text_concepts = check_text_stage(cfg)
    threads = torch.get_num_threads()  # [train] threads applies to this run only, not to the caller's session
    try:
        run = _Run(cfg, Path(out), _pick_device(device))
        run.text_concepts = text_concepts
        run.prepare()
        run.resume(resume)
        run.stage_ssl()
        run.stage_align()
        run.stage_text()
        run.stage_readout()
        return run.finish()
    finally:
        torch.set_num_threads(threads)


class _Run:
    """One training run: its data, model, log and checkpoints, stage by stage."""

    def __init__(self, cfg: dict, out: Path, dev: torch.device):
        self.t_start = time.time()
        self.cfg, self.out, self.dev = cfg, out, dev
        out.mkdir(parents=True, exist_ok=True)
        if dev.type == "cpu" and cfg["train"].get("threads"):
            torch.set_num_threads(int(cfg["train"]["threads"]))
        self.seed = int(cfg["train"]["seed"])
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        self.ssl_epochs, self.align_epochs = int(cfg["ssl"]["epochs"]), int(cfg["align"]["epochs"])
        self.text_epochs = int(cfg.get("text", {}).get("epochs", 0))
        self.text_concepts: tuple | None = None
        self.text_captioned = False  # stage 3's strings replaced stage 2's
        self.done = 0  # epochs completed (ssl, align, text, then 1 for the read-out)
        self.latest: Path | None = None
        self.ckpts = Checkpoints(out)

    # ---- setting up
    def prepare(self) -> None:
        """Load the data, build the model, caption the galaxies, start the log and the monitor."""
        cfg = self.cfg
        self.table = train_table(cfg)
        if len(self.table) == 0:
            raise InvalidInputError(f"no training images found under {cfg['data']['gz2_root']}")
        self.images = preload(self.table, cfg, self.out)
        self.model, self.init = self._model()
        self.head = ssl_head(self.model.image_encoder.out_dim).to(self.dev)
        self._captions()
        self.log = {"config": cfg, "device": str(self.dev), "epochs": [], "n_ssl_images": int(len(self.images)),
                    "n_align_images": int(self.keep.sum()), "n_unique_captions": len(self.strings),
                    "torch": torch.__version__, "platform": platform.platform(),
                    "threads": torch.get_num_threads()}
        if self.concepts is not None:
            self.log["concepts"] = {"n": len(self.concept_ids), "n_strings": int(sum(len(v) for v in self.concept_ids)),
                                    "n_with_targets": int(torch.isfinite(self.concepts.targets).any(1).sum())}
        if self.init is not None:
            self.log["init_model"] = {"path": str(cfg["train"]["init_model"]), "name": self.init.name,
                                      "sha256": self.init.fingerprint}
        self.monitor = make_monitor(cfg, self.out, self.model)
        if self.monitor is not None:
            labels, counts = np.unique(self.monitor.labels, return_counts=True)
            self.log["monitor"] = {"metric": f"mini-search loose accuracy@{self.monitor.k}",
                                   "n_gallery": len(self.monitor.labels), "split": "val",
                                   "labels": {str(c): int(n) for c, n in zip(labels, counts)}}

    def _model(self):
        """A new model (input normalised by the training images' statistics), or the one fine-tuned from."""
        cfg = self.cfg
        crop = center_crop(torch.from_numpy(self.images[: min(len(self.images), 4096)]),
                           int(cfg["model"]["image_size"]), float(cfg["model"]["crop_fraction"]))
        mean = crop.mean(dim=(0, 2, 3)).tolist()
        std = crop.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()
        torch.manual_seed(self.seed)
        init = init_model(cfg)
        if init is None:
            model = GalaxyModel.from_config(_model_config(cfg, mean, std), seed=self.seed).to(self.dev)
        else:  # fine-tuning: the architecture and input normalisation come with the weights
            # The text bank and score calibration belong to the old text head: recalibrate after training.
            mcfg = {k: v for k, v in copy.deepcopy(init.config).items()
                    if k not in ("weights_sha256", "text_bank_sha256", "score_calibration")}
            mcfg["name"] = cfg["model"]["name"]
            model = GalaxyModel(mcfg)
            model.load_state_dict(init.state_dict())
            model = model.to(self.dev)
        model.config["text_model_sha256"] = minilm_sha256()
        return model, init

    def _captions(self, concepts: tuple | None = None, strings_file: str = "caption_strings.txt") -> None:
        """Captions per galaxy and concept wordings (needed for the step count of stage 2 even when resuming).

        ``concepts``: the concepts to word (default: ``[align] concepts``); stage 3 passes them with its
        extra wordings and lists its strings in ``strings_file``, beside stage 2's.

        Every string an evaluation asks for (`~astro_semsearch.training.concepts.held_out_texts`) is
        kept out of the captions and concept wordings; ``caption_strings.txt`` in the run
        directory lists every training string, one a line, so anyone can check a query's overlap.
        """
        a = self.cfg["align"]
        captioner, caption_table, lens_captions = get_captioner()
        rng = np.random.default_rng(seed_for(self.seed, "captions"))
        per_obj = caption_table(self.table, captioner, int(a["captions_per_object"]), self.seed)
        use_concepts = float(a.get("concept_weight", 0)) > 0
        n_concept_caps = int(a.get("concept_captions_per_object", 0))
        concept_strs: list[list[str]] = []
        concepts = concepts_of(a) if concepts is None else concepts
        exclude = held_out_texts()
        if use_concepts or n_concept_caps > 0:
            from .concepts import ConceptCaptioner, concept_strings

            if n_concept_caps > 0:
                extra = caption_table(self.table, ConceptCaptioner(concepts, exclude=exclude), n_concept_caps,
                                      self.seed + 1)
                per_obj = [x + y for x, y in zip(per_obj, extra)]
            if use_concepts:
                concept_strs = [concept_strings(c, exclude) for c in concepts]
        # No evaluated query is ever a verbatim training string, whichever captioner wrote it.
        held = {t.lower() for t in exclude}
        per_obj = [[c for c in caps if c.lower() not in held] for caps in per_obj]
        self.keep = np.array([len(c) > 0 for c in per_obj], dtype=bool)
        self.lens_caps = [c for c in lens_captions(rng, int(a.get("n_lens_captions", 64))) if c.lower() not in held]
        self.strings = sorted({c for caps in per_obj for c in caps} | set(self.lens_caps)
                              | {x for v in concept_strs for x in v})
        self.sid = {s: i for i, s in enumerate(self.strings)}
        self.caption_lists = [[self.sid[c] for c in caps] for caps, k in zip(per_obj, self.keep) if k]
        self.concept_ids = [np.array([self.sid[x] for x in v], dtype=np.int64) for v in concept_strs]
        atomic_write_bytes(self.out / strings_file, ("\n".join(self.strings) + "\n").encode())
        self.concepts = None
        if use_concepts:
            from .concepts import concept_targets

            targets = torch.from_numpy(concept_targets(self.table, concepts)[self.keep])
            ids = [c.id for c in concepts]
            self.concepts = ConceptTerm(targets, self.concept_ids, ids.index("lens") if "lens" in ids else -1,
                                        float(a.get("concept_temperature", 0.05))).to(self.dev)

    def _modules(self) -> dict:
        """What a checkpoint holds (the concept term's temperature too, when there is one)."""
        return {"model": self.model, "ssl_head": self.head, **({"concepts": self.concepts} if self.concepts else {})}

    def resume(self, resume: bool) -> None:
        """Continue from the last complete checkpoint, if asked and there is one."""
        self.latest = self.ckpts.latest() if resume else None
        if self.latest is None:
            return
        state = Checkpoints.load(self.latest, self._modules(), self.dev)
        if state.get("config") != json.loads(json.dumps(self.cfg, default=str)):
            warnings.warn("resuming a run whose checkpoint was written with a different config", stacklevel=3)
        self.done = int(state["epochs_done"])
        self.log["epochs"] = state.get("log_epochs", [])
        self.log["resumed_from"] = self.latest.name
        if state.get("text_stage"):
            self.log["text_stage"] = state["text_stage"]
        print(f"resuming from {self.latest} ({self.done} epochs done)")

    # ---- after every epoch
    def _watch(self, entry: dict) -> None:
        """Run the monitor after an epoch, add it to the log entry and print it."""
        if self.monitor is None:
            return
        t0 = time.time()
        r = self.monitor(self.model, self.dev)
        entry.update({"loose_acc": r["loose_accuracy"], "loose_acc_macro": r["macro"],
                      "loose_acc_chance": r["chance"], "loose_acc_per_class": r["per_class"],
                      "monitor_seconds": time.time() - t0})
        print(f"  mini-search loose accuracy@{r['k']} on {r['n']} val galaxies: {r['loose_accuracy']:.3f} "
              f"(per-class mean {r['macro']:.3f}, random {r['chance']:.3f})")

    def _end_epoch(self, entry: dict, done: int, optim) -> None:
        self._watch(entry)
        self.log["epochs"].append(entry)
        self.done = done
        self.ckpts.save(done, self._modules(), optim,
                        {"epochs_done": done, "config": self.cfg, "log_epochs": self.log["epochs"],
                         **({"text_stage": self.log["text_stage"]} if "text_stage" in self.log else {})})
        _json_dump(self.out / "training_log.json", self.log)
        _write_metrics(self.out, self.log["epochs"])

    def _augment(self, **kw) -> Augment:
        return Augment(out_size=self.model.image_size, crop_fraction=float(self.cfg["model"]["crop_fraction"]), **kw)

    # ---- the stages
    def stage_ssl(self) -> None:
        """Stage 1: SimCLR on every train-split image."""
        if self.done >= self.ssl_epochs:
            return
        a = self.cfg["augment"]
        aug = self._augment(scale=tuple(a["scale"]), shift=float(a["shift"]), blur_sigma=tuple(a["blur_sigma"]),
                            noise=float(a["noise"]), brightness=float(a["brightness"]))
        optim = ssl_optimizer(self.model, self.head, self.cfg)
        if self.latest is not None:
            Checkpoints.load_optimizer(self.latest, optim, self.dev)
        steps_per = len(self.images) // min(int(self.cfg["ssl"]["batch_size"]), len(self.images))
        for epoch in range(self.done, self.ssl_epochs):
            t0 = time.time()
            loss, n_views = run_ssl_epoch(self.model, self.head, optim, self.images, self.cfg, epoch, self.dev, aug,
                                          steps_per * self.ssl_epochs, steps_per * epoch)
            dt = time.time() - t0
            print(f"ssl epoch {epoch + 1}/{self.ssl_epochs}: loss {loss:.4f}, {dt:.0f} s, "
                  f"{n_views / max(dt, 1e-9):.0f} views/s")
            self._end_epoch({"stage": "ssl", "epoch": epoch + 1, "loss": loss, "seconds": dt,
                             "images_per_s": n_views / max(dt, 1e-9)}, epoch + 1, optim)
        self.latest = None  # the stage-2 optimiser starts fresh

    def _align_data(self, concepts: tuple | None = None) -> AlignData:
        cfg = self.cfg
        a = cfg["align"]
        feats = embed_captions(self.strings, self.out, self.dev)
        lens = None
        if float(cfg["align"].get("lens_probability", 0)) > 0:
            lens = lens_bank(self.table, self.images, cfg, self.sid, self.lens_caps)
        symbols = None
        if cfg.get("symbols", {}).get("enabled", False) and float(cfg["symbols"].get("weight", 0)) > 0:
            t0 = time.time()
            symbols = symbol_bank(self.table, self.keep, cfg, with_lens=lens is not None)
            if symbols is not None:
                self.log["symbols"] = {"classes": len(symbols["keys"]), "variants": int(symbols["bank"].shape[1]),
                                       "n_with_symbol": int((symbols["key_of"] >= 0).sum()),
                                       "seconds": time.time() - t0}
        weights = None
        if a.get("sampler", "uniform") == "weighted":
            from .concepts import RARE_CONCEPTS, concept_targets

            concepts = concepts_of(a) if concepts is None else concepts
            targets = torch.from_numpy(concept_targets(self.table, concepts)[self.keep])
            rare = [i for i, c in enumerate(concepts) if c.id in a.get("rare_concepts", RARE_CONCEPTS)]
            weights = sampling_weights(targets, rare, float(a.get("voted_weight", 1.0)), float(a.get("rare_boost", 0.0)))
        elif a.get("sampler", "uniform") != "uniform":
            raise InvalidInputError(f"[align] sampler must be 'uniform' or 'weighted', got {a['sampler']!r}")
        return AlignData(self.images[self.keep], self.caption_lists, self.strings, feats, lens, symbols,
                         concepts=self.concepts, weights=weights)

    def stage_align(self) -> None:
        """Stage 2: image <-> caption alignment."""
        if self.done >= self.ssl_epochs + self.align_epochs:
            return
        data = self._align_data()
        aug = self._align_augment()
        optim = align_optimizer(self.model, self.cfg, self.concepts)
        if self.latest is not None and self.done > self.ssl_epochs:
            Checkpoints.load_optimizer(self.latest, optim, self.dev)
        steps_per = max(1, len(data.images) // min(int(self.cfg["align"]["batch_size"]), len(data.images)))
        for epoch in range(self.done - self.ssl_epochs, self.align_epochs):
            t0 = time.time()
            loss, n_img = run_align_epoch(self.model, optim, data, self.cfg, epoch, self.dev, aug,
                                          steps_per * self.align_epochs, steps_per * epoch)
            dt = time.time() - t0
            entry = {"stage": "align", "epoch": epoch + 1, "loss": loss, "seconds": dt,
                     "images_per_s": n_img / max(dt, 1e-9), "temperature": self.model.temperature}
            extra = ""
            if data.symbols is not None:
                entry["symbol_loss"] = data.last_symbol_loss
                extra = f" (symbol term {data.last_symbol_loss:.4f})"
            if data.concepts is not None:
                entry["concept_loss"] = data.last_concept_loss
                extra += f" (concept term {data.last_concept_loss:.4f})"
            print(f"align epoch {epoch + 1}/{self.align_epochs}: loss {loss:.4f}{extra}, {dt:.0f} s, "
                  f"{n_img / max(dt, 1e-9):.0f} img/s, T={self.model.temperature:.4f}")
            self._end_epoch(entry, self.ssl_epochs + epoch + 1, optim)

    def _align_augment(self) -> Augment:
        # Alignment uses milder views than SimCLR (the caption describes the galaxy as framed), but its
        # zoom range ([align] aug_scale, sky padding past the field) teaches framing robustness.
        a = self.cfg["align"]
        return self._augment(scale=tuple(a.get("aug_scale", (0.9, 1.12))), shift=float(a.get("aug_shift", 0.04)),
                             blur_sigma=(0.0, 0.8), blur_prob=0.3, noise=0.02, brightness=0.1,
                             pad=str(a.get("aug_pad", "reflection")))

    def _text_anchor(self, feats: torch.Tensor, first: int) -> torch.Tensor:
        """The text embeddings of every string as stage 2 left the text head, kept in the run directory
        so that a resumed stage 3 anchors to them, not to its own half-trained head."""
        key = hashlib.sha256("\n".join(self.strings).encode()).hexdigest()[:16]
        path = self.out / f"text_anchor_{key}.npy"  # one row per stage-3 string, in this order
        if self.done > first:
            if not path.is_file():
                raise InvalidInputError(f"cannot resume stage 3: {path} (the text anchor of these strings) is "
                                        "missing; were the extra wordings changed since the run began?")
            old = np.load(path, allow_pickle=False)
            if old.shape[0] != len(self.strings):
                raise InvalidInputError(f"{path} has {old.shape[0]} rows for {len(self.strings)} strings")
            return torch.from_numpy(old).to(self.dev)
        with torch.no_grad():
            self.model.text_head.eval()
            old = torch.cat([self.model.encode_text_features(c.to(self.dev)) for c in feats.split(4096)])
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, old.cpu().numpy(), allow_pickle=False)
        os.replace(tmp, path)
        return old

    def stage_text(self) -> None:
        """Stage 3: the text head alone learns the concepts' wordings plus ``[text] extra_wordings``."""
        first = self.ssl_epochs + self.align_epochs
        if self.text_epochs <= 0 or self.done >= first + self.text_epochs:
            return
        t = self.cfg["text"]
        concepts = self.text_concepts  # checked, extra wordings and all, before stage 1 (config.check_text_stage)
        concept_state = self.concepts.state_dict() if self.concepts is not None else None
        before = set(self.strings)  # what stages 1-2 trained on
        self._captions(concepts, strings_file="caption_strings_text_stage.txt")
        self.text_captioned = True
        if self.concepts is not None and concept_state is not None:  # the trained temperature carries on
            self.concepts.load_state_dict(concept_state)
        self.log["text_stage"] = {"n_unique_captions": len(self.strings),
                                  "n_concept_strings": int(sum(len(v) for v in self.concept_ids)),
                                  "extra_wordings": str(t.get("extra_wordings", ""))}
        data = self._align_data(concepts)
        if float(t.get("anchor_weight", 0)) > 0:
            data.anchor = (self._text_anchor(data.feats, first), np.array([x in before for x in self.strings]),
                           float(t["anchor_weight"]))
        for p in list(self.model.image_encoder.parameters()) + list(self.model.image_head.parameters()):
            p.requires_grad_(False)
        self.model.logit_scale.requires_grad_(False)
        optim = text_optimizer(self.model, self.cfg, self.concepts)
        if self.latest is not None and self.done > first:
            Checkpoints.load_optimizer(self.latest, optim, self.dev)
        aug = self._align_augment()
        steps_per = max(1, len(data.images) // min(int(self.cfg["align"]["batch_size"]), len(data.images)))
        for epoch in range(self.done - first, self.text_epochs):
            t0 = time.time()
            loss, n_img = run_align_epoch(self.model, optim, data, self.cfg, epoch, self.dev, aug,
                                          steps_per * self.text_epochs, steps_per * epoch, stage="text",
                                          freeze_image=True)
            dt = time.time() - t0
            print(f"text epoch {epoch + 1}/{self.text_epochs}: loss {loss:.4f} "
                  f"(concept term {data.last_concept_loss:.4f}), {dt:.0f} s")
            self._end_epoch({"stage": "text", "epoch": epoch + 1, "loss": loss, "seconds": dt,
                             "concept_loss": data.last_concept_loss, "images_per_s": n_img / max(dt, 1e-9)},
                            first + epoch + 1, optim)

    def stage_readout(self) -> None:
        """Stage 4 (``[readout] steps`` > 0): each concept's wordings to its read-out direction (readout.py)."""
        first = self.ssl_epochs + self.align_epochs + self.text_epochs
        r = self.cfg["readout"]
        if int(r["steps"]) <= 0 or self.done > first:
            return
        from .readout import readout_stage  # lazy: it brings in the evaluation package (its ridge fit)
        t0 = time.time()
        lens = (lens_bank(self.table, self.images, self.cfg, self.sid, self.lens_caps)
                if float(self.cfg["align"].get("lens_probability", 0)) > 0 else None)
        if self.text_epochs > 0 and not self.text_captioned:  # resumed after stage 3: its strings, as uninterrupted
            state = self.concepts.state_dict()
            self._captions(self.text_concepts, strings_file="caption_strings_text_stage.txt")
            self.concepts.load_state_dict(state)
        feats = torch.from_numpy(embed_captions(self.strings, self.out, self.dev)).to(self.dev)
        targets = self.concepts.targets.cpu().numpy()
        voted = np.isfinite(targets).any(1)  # only these are embedded (no copy of every decoded image)
        rows = np.flatnonzero(self.keep)[voted]
        entry = readout_stage(self.model, self.images[rows], targets[voted], self.concept_ids, feats, r,
                              seed_for(self.seed, "readout"), lens, self.concepts.lens_concept,
                              [self.caption_lists[i] for i in np.flatnonzero(voted)])
        print(f"read-out: {r['steps']} steps, wordings' cosine to their directions {entry['cos_before']:.3f} -> "
              f"{entry['cos_after']:.3f}, other strings kept at {entry['anchor_cos']:.3f}, {time.time() - t0:.0f} s")
        self._end_epoch({"stage": "readout", "epoch": 1, "seconds": time.time() - t0, **entry}, first + 1, None)

    def finish(self) -> Path:
        """Save the final model with its card; return its directory."""
        model = self.model.cpu().eval()
        model.invalidate_fingerprint()
        self.log["total_seconds"] = time.time() - self.t_start
        self.log["final_loss"] = self.log["epochs"][-1]["loss"] if self.log["epochs"] else None
        final = self.out / "model"
        model.save(final, model_card=model_card(self.cfg, self.log, model))
        self.log["model_sha256"] = model.fingerprint
        _json_dump(self.out / "training_log.json", self.log)
        print(f"model saved to {final} (sha256 {model.fingerprint[:12]}...)")
        return final
