"""What a model's ``config.json`` may hold, and the fingerprint that names a model's embeddings.

`check_config` validates every architecture and preprocessing value when a
model is made or loaded (`GalaxyModel.load` turns its errors into
`~astro_semsearch.exceptions.ModelLoadError` naming ``config.json``), so
that a bad value is refused with its field name instead of producing
different embeddings or a shape error deep inside torch.

The fingerprint
---------------
Indexes record ``model.fingerprint`` and refuse a model with another one.
The embeddings depend on the weights *and* on the preprocessing that
``config.json`` sets (`PREPROCESSING_KEYS`: the crop, the input size, the
band mapping, the text length), so both enter it (`fingerprint_of`):

* a model whose preprocessing is `LEGACY_PREPROCESSING` (the values every
  model had before they entered the fingerprint, e.g. the shipped
  ``galclip-v1``) keeps the sha256 of its weights file as fingerprint, so
  every index built before stays valid;
* any other preprocessing gives ``sha256(canonical JSON of the weights'
  sha256 and the preprocessing values)``, so changing ``crop_fraction``
  changes the fingerprint.

The input normalisation (``mean``, ``std``) is stored in the weights, so it
is covered by their sha256 already.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from .._validate import check_int, check_number
from ..exceptions import InvalidInputError, InvalidTypeError

__all__ = ["check_config", "fingerprint_of", "preprocessing_of", "PREPROCESSING_KEYS", "LEGACY_PREPROCESSING",
           "MIN_IMAGE_SIZE"]

#: The ``config.json`` values besides the weights that change a model's embeddings.
PREPROCESSING_KEYS = ("image_size", "crop_fraction", "bands", "text_max_length")
#: Preprocessing whose models keep the weights-only fingerprint (the shipped models have it).
LEGACY_PREPROCESSING = {"image_size": 64, "crop_fraction": 0.8, "bands": "grz", "text_max_length": 64}
#: Smallest input side the network accepts (``image_size``).
MIN_IMAGE_SIZE = 16

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _numbers(value: Any, name: str, n: int, *, positive: bool = False) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise InvalidInputError(f"{name} must be a list of {n} numbers, got {value!r:.80}")
    out = [check_number(v, f"{name}[{i}]", 0.0 if positive else None, None, low_open=positive)
           for i, v in enumerate(value)]
    return out


def _sha(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not _HEX64.match(value)):
        raise InvalidInputError(f"{name} must be a sha256 (64 lower-case hex digits) or null, got {value!r:.80}")


def _bands(value: Any) -> None:
    from ..images import LEGACY_RGB_SCALES

    if not isinstance(value, str) or not value:
        raise InvalidTypeError(f"bands must be a string of band letters such as 'grz', got {value!r:.80}")
    unknown = sorted(set(value) - set(LEGACY_RGB_SCALES))
    if unknown or len(set(value)) != len(value):
        raise InvalidInputError(f"bands must be distinct letters among {''.join(sorted(LEGACY_RGB_SCALES))}, "
                                f"got {value!r}")


def check_config(cfg: dict) -> None:
    """Raise `InvalidInputError` / `InvalidTypeError` naming the first invalid field of a model config.

    ``cfg`` is a complete config (`DEFAULT_CONFIG` updated with a model's
    ``config.json``); keys not described here (provenance) are allowed.
    """
    from .text import TEXT_DIM

    if not isinstance(cfg.get("name"), str) or not cfg["name"].strip():
        raise InvalidTypeError(f"name must be a non-empty string, got {cfg.get('name')!r:.80}")
    if cfg.get("format_version", 1) != 1 or isinstance(cfg.get("format_version"), bool):
        raise InvalidInputError(f"format_version must be 1, got {cfg.get('format_version')!r:.40}")
    check_int(cfg.get("dim"), "dim", minimum=2, maximum=65536)
    channels = cfg.get("channels")
    if not isinstance(channels, (list, tuple)) or not channels:
        raise InvalidTypeError(f"channels must be a non-empty list of integers, got {channels!r:.80}")
    for i, c in enumerate(channels):
        check_int(c, f"channels[{i}]", minimum=1, maximum=8192)
    check_int(cfg.get("stem_channels"), "stem_channels", minimum=1, maximum=8192)
    check_int(cfg.get("head_hidden"), "head_hidden", minimum=1, maximum=65536)
    check_int(cfg.get("image_size"), "image_size", minimum=max(MIN_IMAGE_SIZE, 2 ** (1 + len(channels))),
              maximum=1024)
    check_number(cfg.get("crop_fraction"), "crop_fraction", 0.3, 1.0, low_open=True)
    _bands(cfg.get("bands"))
    _numbers(cfg.get("mean"), "mean", 3)
    _numbers(cfg.get("std"), "std", 3, positive=True)
    if not isinstance(cfg.get("text_model"), str) or not cfg["text_model"]:
        raise InvalidTypeError(f"text_model must be a string, got {cfg.get('text_model')!r:.80}")
    if check_int(cfg.get("text_dim"), "text_dim") != TEXT_DIM:
        raise InvalidInputError(f"text_dim must be {TEXT_DIM} (the sentence encoder's size), got {cfg['text_dim']}")
    check_int(cfg.get("text_max_length"), "text_max_length", minimum=1, maximum=512)
    check_number(cfg.get("logit_scale_max"), "logit_scale_max", 1.0, 1e6, low_open=True)
    for key in ("weights_sha256", "text_model_sha256", "text_bank_sha256"):
        _sha(cfg.get(key), key)


def preprocessing_of(cfg: dict) -> dict:
    """The `PREPROCESSING_KEYS` values of a config, canonical (ints, a float, a string)."""
    return {"image_size": int(cfg["image_size"]), "crop_fraction": float(cfg["crop_fraction"]),
            "bands": str(cfg["bands"]), "text_max_length": int(cfg["text_max_length"])}


def _is_legacy(pre: dict) -> bool:
    return (pre["image_size"] == LEGACY_PREPROCESSING["image_size"]
            and math.isclose(pre["crop_fraction"], LEGACY_PREPROCESSING["crop_fraction"], rel_tol=1e-9)
            and pre["bands"] == LEGACY_PREPROCESSING["bands"]
            and pre["text_max_length"] == LEGACY_PREPROCESSING["text_max_length"])


def fingerprint_of(weights_sha256: str, cfg: dict) -> str:
    """The model fingerprint from its weights' sha256 and its preprocessing (see the module docstring).

    Examples
    --------
    >>> w = "ab" * 32
    >>> fingerprint_of(w, LEGACY_PREPROCESSING) == w
    True
    >>> fingerprint_of(w, {**LEGACY_PREPROCESSING, "crop_fraction": 0.6}) == w
    False
    """
    pre = preprocessing_of(cfg)
    if _is_legacy(pre):
        return weights_sha256
    canonical = json.dumps({"preprocessing": pre, "weights_sha256": weights_sha256}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
