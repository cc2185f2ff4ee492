"""The text side of a saved model in numpy (`TextModel`): what a text query needs, without torch.

A text search needs MiniLM and the model's small trained text head
(`~astro_semsearch.model.ResidualHead`: a linear map plus a residual MLP),
nothing of the image side. With the ONNX text backend, `TextModel` runs the
head in numpy, so that ``semantic_search("ring galaxy")`` in a new process
imports neither torch nor transformers (about a second saved of a first
search). Its embeddings equal `GalaxyModel.embed_text
<astro_semsearch.model.GalaxyModel.embed_text>`'s to float32 rounding (the
tests hold them to 1e-5); `~astro_semsearch.search.semantic_search` uses it
only for a text-only query with the ONNX backend, and the whole
`~astro_semsearch.model.GalaxyModel` otherwise.

Examples
--------
>>> from astro_semsearch.model.textmodel import load_text_model
>>> load_text_model().embed_text("ring galaxy").shape        # doctest: +SKIP
(1, 128)
"""
from __future__ import annotations

import copy
import math
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from ..exceptions import InvalidInputError, InvalidTypeError, ModelLoadError
from .configuration import check_config, fingerprint_of
from .files import (
    BANK_FILE,
    DEFAULT_CONFIG,
    WEIGHTS_FILE,
    load_bank,
    load_cached,
    read_model_files,
)
from .files import check_text_model as check_text_model_sha
from .text import encode_sentences, text_backend, text_list

__all__ = ["TextModel", "load_text_model"]

#: The text head's tensors in a saved model (`~astro_semsearch.model.ResidualHead` under ``text_head``).
HEAD_TENSORS = ("proj.weight", "proj.bias", "norm.weight", "norm.bias", "mlp.0.weight", "mlp.0.bias",
                "mlp.2.weight", "mlp.2.bias")
#: torch.nn.LayerNorm's default epsilon (what the head was trained with).
LAYER_NORM_EPS = 1e-5

# Exact GELU, as torch's nn.GELU(): x * Phi(x) with the error function from the C library
# (a rational approximation would drift from torch by more than float32 rounding).
_ERF = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)).astype(np.float64))


class TextModel:
    """The text side of a saved `~astro_semsearch.model.GalaxyModel`, in numpy.

    It has what searching by text uses of a model: `embed_text`,
    `text_similarity`, ``name``, ``dim``, ``fingerprint`` (the whole model's,
    from the sha256 of ``model.safetensors`` and the preprocessing), ``config`` and
    ``text_bank``. Open one with `load_text_model` (or `TextModel.load`).
    """

    def __init__(self, config: dict, head: dict[str, np.ndarray], fingerprint: str,
                 text_bank: np.ndarray | None = None, path: Path | None = None):
        cfg = copy.deepcopy(DEFAULT_CONFIG)
        cfg.update(copy.deepcopy(config))
        self.config = cfg
        self.name = str(cfg["name"])
        self.dim = int(cfg["dim"])
        self.fingerprint = fingerprint
        self.text_bank = text_bank
        self.path = path
        # float64 for the arithmetic: the result then rounds to what torch's float32 head gives.
        self._head = {k: np.asarray(head[k], dtype=np.float64) for k in HEAD_TENSORS}

    @property
    def text_backend(self) -> str:
        """What `embed_text` runs MiniLM with now: ``"onnx"`` or ``"torch"``."""
        return text_backend()

    def project(self, feats: np.ndarray) -> np.ndarray:
        """``(N, 384)`` MiniLM sentence embeddings -> ``(N, dim)`` unit vectors: the trained text head.

        ``y = W x + b``, then ``y + MLP(LayerNorm(y))`` with a GELU MLP, then
        unit length, as `~astro_semsearch.model.ResidualHead` and
        `GalaxyModel.encode_text_features` compute it.
        """
        h = self._head
        y = np.asarray(feats, dtype=np.float64) @ h["proj.weight"].T + h["proj.bias"]
        mu = y.mean(axis=1, keepdims=True)
        var = y.var(axis=1, keepdims=True)
        z = (y - mu) / np.sqrt(var + LAYER_NORM_EPS) * h["norm.weight"] + h["norm.bias"]
        z = _gelu(z @ h["mlp.0.weight"].T + h["mlp.0.bias"]) @ h["mlp.2.weight"].T + h["mlp.2.bias"]
        out = y + z
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def embed_text(self, texts: str | Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed descriptions such as ``"a barred spiral galaxy"``, as `GalaxyModel.embed_text` does.

        Returns
        -------
        numpy.ndarray
            ``(N, dim)`` float32 unit vectors (``(1, dim)`` for one string).
        """
        texts = text_list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        feats = encode_sentences(texts, batch_size=batch_size, max_length=int(self.config["text_max_length"]))
        return self.project(feats)

    def text_similarity(self, texts: str | Sequence[str]) -> np.ndarray | None:
        """How close each text is to the phrases the model was trained on (see `GalaxyModel.text_similarity`)."""
        if self.text_bank is None:
            return None
        texts = [texts] if isinstance(texts, str) else list(texts)
        feats = encode_sentences(texts, max_length=int(self.config["text_max_length"]))
        return (feats @ self.text_bank.astype(np.float32).T).max(axis=1)

    @classmethod
    def load(cls, directory: str | os.PathLike, check_text_model: bool = True) -> "TextModel":
        """The text side of a model directory written by `GalaxyModel.save`, with the same checks.

        Raises
        ------
        ModelLoadError
            A file is missing, the weights are corrupt or truncated, or the
            text head's tensors are missing or of the wrong shape.
        """
        from safetensors.numpy import load as np_load

        directory = Path(directory)
        cfg, data, digest = read_model_files(directory)
        wpath = directory / WEIGHTS_FILE
        try:
            state = np_load(data)
        except Exception as err:  # noqa: BLE001 - any decoding failure is a corrupt file
            raise ModelLoadError(f"{wpath} is not a valid safetensors file (corrupt or truncated): {err}") from err
        full = copy.deepcopy(DEFAULT_CONFIG)
        full.update(cfg)
        try:
            check_config(full)
        except (InvalidInputError, InvalidTypeError) as err:
            raise ModelLoadError(f"{directory / 'config.json'} does not describe a valid model: {err}") from err
        din, dout, hidden = int(full["text_dim"]), int(full["dim"]), int(full["head_hidden"])
        shapes = {"proj.weight": (dout, din), "proj.bias": (dout,), "norm.weight": (dout,), "norm.bias": (dout,),
                  "mlp.0.weight": (hidden, dout), "mlp.0.bias": (hidden,), "mlp.2.weight": (dout, hidden),
                  "mlp.2.bias": (dout,)}
        head = {}
        for name, shape in shapes.items():
            tensor = state.get(f"text_head.{name}")
            if tensor is None or tensor.shape != shape:
                got = "missing" if tensor is None else f"of shape {tensor.shape}"
                raise ModelLoadError(f"{wpath} does not match config.json: tensor 'text_head.{name}' is {got}, "
                                     f"the config (dim={dout}) needs {shape}")
            head[name] = tensor
        model = cls(cfg, head, fingerprint_of(digest, full), load_bank(directory / BANK_FILE, cfg.get("text_bank_sha256")), directory)
        if check_text_model:
            check_text_model_sha(cfg)
        return model

    def __repr__(self) -> str:
        return f"<TextModel {self.name!r}: dim {self.dim}, text backend {self.text_backend}>"


_CACHE: dict[Path, TextModel] = {}
_CACHE_LOCK = threading.Lock()


def load_text_model(name_or_path: str | os.PathLike | None = None) -> TextModel:
    """The text side of a model, by name or directory, as `~astro_semsearch.model.load_model` finds it (cached).

    Raises
    ------
    ModelLoadError
        The model does not exist or its files are missing or corrupt.
    """
    return load_cached(name_or_path, TextModel.load, _CACHE, _CACHE_LOCK)
