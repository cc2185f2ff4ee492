"""Stand-in models shared by the test modules (no torch, no weights, answers worked out by hand).

* `WordModel`: each word of a small vocabulary is a basis direction of the
  text side; an image embeds as its channel means. Enough for search,
  negatives, ``like=`` and re-ranking tests whose expected order follows
  from the words.
* `BrightnessModel`: a 2-d model whose image direction follows the image
  brightness; text points along brightness (or a fixed tilt), so a correct
  evaluation pipeline ranks a brightness-ordered pool perfectly.
* `MeanColourModel`: an image's mean colour (+1) as a unit vector; records
  the shapes it was given (for build and cutout tests).
* `ModelRecord`: only the name, dimension and fingerprint an index records.
"""
from __future__ import annotations

import numpy as np


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class ModelRecord:
    """What an index manifest records about a model, and nothing else."""

    def __init__(self, dim=16, fingerprint="a" * 64, name="toy"):
        self.dim, self.fingerprint, self.name = dim, fingerprint, name


class WordModel:
    """Words of ``vocab`` map to basis directions; an image maps to its channel means."""

    def __init__(self, vocab: dict[str, int], dim: int, *, name="toy", fingerprint="7" * 64, base=0.05):
        self.vocab, self.dim, self.name, self.fingerprint, self.base = vocab, dim, name, fingerprint, base
        self.text_calls: list[list[str]] = []

    def text_vector(self, text: str) -> np.ndarray:
        v = np.full(self.dim, self.base)
        for word, i in self.vocab.items():
            if word in text:
                v[i] += 1.0
        return unit(v)

    def embed_text(self, texts, batch_size=256):
        texts = [texts] if isinstance(texts, str) else list(texts)
        self.text_calls.append(texts)
        return np.array([self.text_vector(t) for t in texts], dtype=np.float32)

    def image_vector(self, image) -> np.ndarray:
        from astropy.io import fits

        if isinstance(image, str):
            image = fits.getdata(image)
        if isinstance(image, fits.HDUList):
            image = image[0].data
        if isinstance(image, (fits.PrimaryHDU, fits.ImageHDU)):
            image = image.data
        a = np.asarray(image, dtype=float)
        chans = a.reshape(-1, 3).mean(0) if a.shape[-1] == 3 else a.reshape(a.shape[0], -1).mean(1)
        v = np.zeros(self.dim)
        v[: len(chans)] = chans
        v[-1] = 0.01
        return unit(v)

    def embed_images(self, images, batch_size=256, progress=False):
        if isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.ndim == 4):
            return np.array([self.image_vector(im) for im in images], dtype=np.float32)
        return np.array([self.image_vector(images)], dtype=np.float32)


class BrightnessModel:
    """Image brightness -> a direction in 2-d; text along brightness for ``bright_words``, else ``tilt``."""

    dim = 2

    def __init__(self, *, name="oracle", fingerprint="0" * 64, bright_words=("spiral", "ring"), tilt=None):
        self.name, self.fingerprint, self.bright_words, self.tilt = name, fingerprint, bright_words, tilt

    def embed_images(self, images, batch_size=256, progress=False):
        b = np.asarray(images, dtype=float).mean(axis=(1, 2, 3)) / 255.0
        return unit(np.stack([b, 1 - b], 1)).astype(np.float32)

    def embed_text(self, texts, batch_size=256):
        texts = [texts] if isinstance(texts, str) else list(texts)
        if self.tilt is not None:
            return np.array([unit(self.tilt) for _ in texts], dtype=np.float32)
        return np.array([[1.0, 0.0] if any(w in t for w in self.bright_words) else [0.0, 1.0] for t in texts],
                        dtype=np.float32)


class MeanColourModel:
    """Enough of a GalaxyModel for build_index: an image's mean colour (+1) as a unit vector."""

    def __init__(self, name="fake", dim=4, fingerprint="f" * 64):
        self.name, self.dim, self.fingerprint = name, dim, fingerprint
        self.seen: list[tuple] = []

    def embed_images(self, images, batch_size=256, progress=False):
        arr = np.asarray(images, np.float32)
        self.seen.append(arr.shape)
        a = arr.reshape(len(images), -1, 3).mean(axis=1) if arr.ndim == 4 else arr.reshape(1, -1, 3).mean(axis=1)
        v = np.concatenate([a, np.ones((len(a), 1), np.float32)], axis=1)[:, : self.dim]
        return v / np.linalg.norm(v, axis=1, keepdims=True)
