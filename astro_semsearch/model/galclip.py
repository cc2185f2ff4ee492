"""The aligned image-text model (`GalaxyModel`) and `load_model`."""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .._io import atomic_directory
from .._io import progress as _progress
from ..exceptions import InvalidInputError, InvalidTypeError, ModelLoadError
from ..images import image_label
from .configuration import check_config, fingerprint_of, preprocessing_of
from .files import (
    BANK_FILE,
    CARD_FILE,
    CONFIG_FILE,
    DEFAULT_CONFIG,
    MODELS_DIR,
    WEIGHTS_FILE,
    load_bank,
    load_cached,
    read_model_files,
)
from .files import check_text_model as check_text_model_sha
from .networks import ImageEncoder, ResidualHead
from .text import encode_sentences, minilm_sha256, text_backend, text_list

__all__ = ["GalaxyModel", "load_model", "DEFAULT_CONFIG", "MODELS_DIR"]


def _as_image_list(images) -> list:
    """Split the accepted inputs into a list of single images (arrays, paths or HDUs)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    if isinstance(images, (str, os.PathLike)):
        return [images]
    try:
        from astropy.io import fits

        if isinstance(images, (fits.HDUList, fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            return [images]
    except ImportError:  # pragma: no cover
        pass
    if isinstance(images, np.ndarray):
        if images.ndim in (2, 3):
            return [images]
        if images.ndim == 4:
            return list(images)
        raise InvalidInputError(f"cannot interpret an array of shape {images.shape} as image(s)")
    if isinstance(images, Sequence):
        return list(images)
    raise InvalidTypeError(f"cannot embed images given as {type(images).__name__}")


class GalaxyModel(nn.Module):
    """Aligned image-text model: `embed_images` and `embed_text` into one space.

    Use `load_model` to get the shipped, trained model; `from_config` makes a
    randomly initialised one (for tests and for training).

    Attributes
    ----------
    name : str
        Model name (the directory name for a shipped model).
    dim : int
        Dimension of the shared embedding space.
    image_size : int
        Side in pixels of the model's input (after centre crop and resize).
    fingerprint : str
        sha256 of ``model.safetensors`` (for an unsaved model: of the
        serialized weights), combined with the preprocessing values of the
        config when they are not the legacy ones
        (`astro_semsearch.model.configuration`). Indexes record it to detect
        a model mismatch.
    weights_sha256 : str
        sha256 of the weights alone.
    config : dict
        Architecture and provenance (what ``config.json`` holds).
    """

    def __init__(self, config: dict | None = None):
        super().__init__()
        cfg = copy.deepcopy(DEFAULT_CONFIG)
        cfg.update(copy.deepcopy(config or {}))
        check_config(cfg)
        self.config = cfg
        self.name = str(cfg["name"])
        self.dim = int(cfg["dim"])
        self.image_encoder = ImageEncoder(cfg["stem_channels"], cfg["channels"], cfg["mean"], cfg["std"])
        self.image_head = ResidualHead(self.image_encoder.out_dim, self.dim, int(cfg["head_hidden"]))
        self.text_head = ResidualHead(int(cfg["text_dim"]), self.dim, int(cfg["head_hidden"]))
        # CLIP's learnable temperature, stored as log(1/T), starting at T=0.07.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self._weights_sha256: str | None = None
        #: MiniLM features (float16, unit rows) of the phrases the model was trained on, or None
        #: (`text_similarity`: how close a query is to what the model knows).
        self.text_bank: np.ndarray | None = None
        self.eval()

    # ---- construction
    @classmethod
    def from_config(cls, config: dict | None = None, seed: int = 0) -> "GalaxyModel":
        """A randomly initialised model (deterministic for a given ``seed``).

        Examples
        --------
        >>> a = GalaxyModel.from_config({"dim": 8}, seed=1)
        >>> b = GalaxyModel.from_config({"dim": 8}, seed=1)
        >>> a.fingerprint == b.fingerprint
        True
        """
        gen_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            model = cls(config)
        finally:
            torch.random.set_rng_state(gen_state)
        return model

    # ---- properties
    @property
    def image_size(self) -> int:
        """Side in pixels of the network's input (``config["image_size"]``)."""
        return int(self.config["image_size"])

    @property
    def weights_sha256(self) -> str:
        """sha256 of ``model.safetensors`` (for an unsaved model: of the serialized weights)."""
        if self._weights_sha256 is None:
            self._weights_sha256 = hashlib.sha256(self._serialize()).hexdigest()
        return self._weights_sha256

    @property
    def preprocessing(self) -> dict:
        """The config values besides the weights that change the embeddings (they enter `fingerprint`)."""
        return preprocessing_of(self.config)

    @property
    def fingerprint(self) -> str:
        """What indexes record to detect another model: the weights' sha256, combined with the preprocessing
        when that differs from the legacy values (`astro_semsearch.model.configuration.fingerprint_of`)."""
        return fingerprint_of(self.weights_sha256, self.config)

    @property
    def text_backend(self) -> str:
        """What `embed_text` runs MiniLM with now: ``"onnx"`` or ``"torch"`` (`conf.text_backend
        <astro_semsearch.config.Conf>`; a model on a GPU always uses torch)."""
        return text_backend(next(self.parameters()).device)

    @property
    def temperature(self) -> float:
        """Softmax temperature ``1 / exp(logit_scale)`` (clamped as in training)."""
        return 1.0 / float(self.clamped_logit_scale().detach().exp())

    def clamped_logit_scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(0.0, math.log(float(self.config["logit_scale_max"])))

    def invalidate_fingerprint(self) -> None:
        """Forget the cached weights digest (call after changing the weights)."""
        self._weights_sha256 = None

    def _state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous().float() if v.is_floating_point() else v.detach().cpu().contiguous()
                for k, v in self.state_dict().items()}

    def _serialize(self) -> bytes:
        from safetensors.torch import save

        # One metadata key only: safetensors writes a multi-key metadata map in
        # arbitrary order, which would make the fingerprint non-deterministic.
        return save(self._state(), metadata={"format": "pt"})

    # ---- forward pieces used by training
    def encode_image_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` RGB tensor in [0, 1] -> ``(N, dim)`` unit vectors."""
        return nn.functional.normalize(self.image_head(self.image_encoder(x)), dim=-1)

    def encode_text_features(self, feats: torch.Tensor) -> torch.Tensor:
        """``(N, 384)`` MiniLM sentence embeddings -> ``(N, dim)`` unit vectors."""
        return nn.functional.normalize(self.text_head(feats), dim=-1)

    # ---- public embedding API
    def _prepare(self, image, where: str) -> np.ndarray:
        """One image as the network's input, refused (naming it as ``where``) when it carries no signal."""
        from ..images import image_problem, load_image, preprocess, to_rgb

        arr = load_image(image)
        problem = image_problem(arr)
        if problem is not None:
            raise InvalidInputError(f"{where} {problem}; it cannot be embedded")
        rgb = to_rgb(arr, bands=self.config.get("bands", "grz"))
        return preprocess(rgb, size=self.image_size, crop_fraction=float(self.config["crop_fraction"]))

    @torch.no_grad()
    def embed_images(self, images, batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Embed galaxy images.

        Parameters
        ----------
        images
            One image or many: an ``HxWx3`` uint8/float RGB array, an
            ``(N, H, W, 3)`` stack, a ``CxHxW`` / ``(N, C, H, W)`` float band
            image (g, r, z in nanomaggies, mapped to RGB as the Legacy Survey
            viewer does), file paths (JPEG/PNG/FITS), astropy HDUs, or a list
            mixing these. Any size: the central 80% is resized to the input.
            A single plane (``HxW`` or ``1xHxW``, a one-plane FITS) is
            embedded as a grey image (`astro_semsearch.images.to_rgb`).
            Images that carry no signal are refused
            (`astro_semsearch.images.image_problem`: blank, constant, all or
            mostly NaN, any infinity, smaller than 8 pixels a side).
        batch_size : int
            Images per forward pass.
        progress : bool
            Show a progress bar.

        Returns
        -------
        numpy.ndarray
            ``(N, dim)`` float32 unit vectors (``(1, dim)`` for one image).

        Raises
        ------
        InvalidInputError
            An image carries no signal; the message names it (its position
            in the batch and its file).
        """
        items = _as_image_list(images)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        try:
            starts = range(0, len(items), batch_size)
            for s in _progress(starts, desc="embed images", disable=not progress, total=len(starts)):
                batch = np.stack([self._prepare(im, image_label(im, s + j, len(items)))
                                  for j, im in enumerate(items[s:s + batch_size])])
                x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().to(device)
                out[s:s + len(batch)] = self.encode_image_tensor(x).float().cpu().numpy()
        finally:
            self.train(was_training)
        return out

    @torch.no_grad()
    def embed_text(self, texts: str | Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed descriptions such as ``"a barred spiral galaxy"``.

        Returns
        -------
        numpy.ndarray
            ``(N, dim)`` float32 unit vectors (``(1, dim)`` for one string).
        """
        texts = text_list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        device = next(self.parameters()).device
        feats = encode_sentences(texts, batch_size=batch_size, max_length=int(self.config["text_max_length"]),
                                 device=device)
        was_training = self.training
        self.eval()
        try:
            out = self.encode_text_features(torch.from_numpy(feats).to(device))
        finally:
            self.train(was_training)
        return out.float().cpu().numpy()

    def text_similarity(self, texts: str | Sequence[str]) -> np.ndarray | None:
        """How close each text is to the phrases the model was trained on: the largest cosine
        similarity of its MiniLM features to `text_bank` (None when the model has no bank).

        Off-topic text ("a photo of my cat") scores low; a description of a
        galaxy scores high, however it is worded.
        """
        if self.text_bank is None:
            return None
        texts = [texts] if isinstance(texts, str) else list(texts)
        feats = encode_sentences(texts, max_length=int(self.config["text_max_length"]))
        return (feats @ self.text_bank.astype(np.float32).T).max(axis=1)

    # ---- persistence
    def save(self, directory: str | os.PathLike, model_card: str | None = None, overwrite: bool = True) -> Path:
        """Write ``model.safetensors``, ``config.json`` (and ``MODEL_CARD.md``) atomically.

        Returns the directory. The model's `fingerprint` becomes the sha256 of
        the written weights file.
        """
        data = self._serialize()
        digest = hashlib.sha256(data).hexdigest()
        cfg = copy.deepcopy(self.config)
        cfg["weights_sha256"] = digest
        if cfg.get("text_model_sha256") is None:
            try:
                cfg["text_model_sha256"] = minilm_sha256()
            except Exception:  # noqa: BLE001 - recorded when available
                pass
        bank = None
        if self.text_bank is not None:
            from safetensors.numpy import save as np_save

            bank = np_save({"bank": np.ascontiguousarray(self.text_bank, dtype=np.float16)})
            cfg["text_bank_sha256"] = hashlib.sha256(bank).hexdigest()
        directory = Path(directory)
        with atomic_directory(directory, overwrite=overwrite) as tmp:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a model directory is not
            (tmp / WEIGHTS_FILE).write_bytes(data)
            (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            if model_card is not None:
                (tmp / CARD_FILE).write_text(model_card, encoding="utf-8")
            elif (directory / CARD_FILE).is_file():  # keep an existing card
                (tmp / CARD_FILE).write_bytes((directory / CARD_FILE).read_bytes())
            if bank is not None:
                (tmp / BANK_FILE).write_bytes(bank)
        self.config = cfg
        self._weights_sha256 = digest
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, check_text_model: bool = True) -> "GalaxyModel":
        """Load a model directory written by `save` (never unpickles).

        Raises
        ------
        ModelLoadError
            If a file is missing, the weights are corrupt or truncated, or do
            not match ``config.json``.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load as st_load

        directory = Path(directory)
        cfg, data, digest = read_model_files(directory)
        wpath, cpath = directory / WEIGHTS_FILE, directory / CONFIG_FILE
        try:
            state = st_load(data)
        except (SafetensorError, Exception) as err:  # noqa: BLE001
            raise ModelLoadError(f"{wpath} is not a valid safetensors file (corrupt or truncated): {err}") from err
        try:
            model = cls(cfg)
        except Exception as err:  # noqa: BLE001
            raise ModelLoadError(f"{cpath} does not describe a valid model: {err}") from err
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise ModelLoadError(
                f"{wpath} does not match {cpath}: missing tensors {missing[:5]}, unexpected tensors {extra[:5]}"
            )
        for k, v in state.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise ModelLoadError(
                    f"{wpath} does not match {cpath}: tensor {k!r} has shape {tuple(v.shape)}, the config "
                    f"(dim={cfg.get('dim')}) needs {tuple(own[k].shape)}"
                )
        model.load_state_dict(state)
        model.eval()
        model._weights_sha256 = digest
        model.text_bank = load_bank(directory / BANK_FILE, cfg.get("text_bank_sha256"))
        if check_text_model:
            check_text_model_sha(cfg)
        return model


_CACHE: dict[Path, GalaxyModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(name_or_path: str | os.PathLike | None = None) -> GalaxyModel:
    """Load a model by name (``astro_semsearch/data/models/<name>/``) or directory path.

    ``None`` gives the default model (``conf.default_model``, ``galclip-v5``).
    Models are cached per resolved path, so repeated calls are cheap.

    Raises
    ------
    ModelLoadError
        If the model does not exist or its files are missing/corrupt.

    Examples
    --------
    >>> from astro_semsearch import load_model
    >>> model = load_model()                              # doctest: +SKIP
    >>> model.embed_text("a ring galaxy").shape           # doctest: +SKIP
    (1, 128)
    """
    return load_cached(name_or_path, GalaxyModel.load, _CACHE, _CACHE_LOCK)
