"""Small stand-ins shared by several test modules (no torch, no weights)."""
import numpy as np


class MeanColourModel:
    """Enough of a GalaxyModel for build_index: an image's mean colour (+1) as a unit vector."""

    name, dim, fingerprint = "fake", 4, "f" * 64

    def embed_images(self, images, batch_size=256, progress=False):
        a = np.asarray(images, np.float32).reshape(len(images), -1, 3).mean(axis=1)
        v = np.concatenate([a, np.ones((len(a), 1), np.float32)], axis=1)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
