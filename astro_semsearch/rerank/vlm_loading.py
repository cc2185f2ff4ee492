"""Where a vision-language model comes from and what it runs on (for `~astro_semsearch.rerank.vlm.VLMReranker`).

A model is a local transformers directory (checked for ``config.json``) or
a hub name, which is only ever read from the local Hugging Face cache: the
package downloads nothing at run time.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..exceptions import InvalidInputError, InvalidTypeError, ModelLoadError

__all__ = ["model_source", "torch_dtype", "pick_device", "looks_like_path"]


def looks_like_path(name: str) -> bool:
    """True for strings that can only be file-system paths, not hub ids ("org/name")."""
    return (
        name.startswith((".", "/", "~", "\\"))
        or "\\" in name
        or ":" in name
        or name.count("/") > 1
        or name.endswith("/")
    )


def model_source(model: str | os.PathLike) -> tuple[str, bool]:
    """``(what to pass to from_pretrained, is_local_directory)``; ModelLoadError for a bad path."""
    if not isinstance(model, (str, os.PathLike)):
        raise InvalidTypeError(f"model must be a directory path or a hub name, not {type(model).__name__}")
    name = os.fspath(model)
    if not name.strip():
        raise ModelLoadError("model is an empty string; pass the directory of a vision-language model")
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"VLM model {path} is a file; pass the model's directory (with config.json)")
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"VLM model directory {path} has no config.json, so it is not a transformers model directory"
            )
        return str(path), True
    if isinstance(model, os.PathLike) or looks_like_path(name):
        raise ModelLoadError(f"VLM model directory {path} does not exist")
    return name, False


def torch_dtype(dtype, device):
    """The torch dtype to load with: ``dtype`` checked, or float32 on CPU and half precision on accelerators."""
    import torch

    if dtype is None:
        # float32 is exact and fast enough on CPU; half precision on accelerators.
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return "auto"
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise InvalidInputError(f"dtype {dtype!r} is not a torch dtype (use e.g. 'float32', 'bfloat16' or 'auto')")
    return value


def pick_device(device):
    """``device`` as a `torch.device`, or the best one available (CUDA, then Apple MPS, then CPU)."""
    import torch

    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
