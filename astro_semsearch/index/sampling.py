"""A fixed random sample of an index's vectors: the background a query's scores are compared with."""
from __future__ import annotations

import numpy as np

__all__ = ["BackgroundSample", "BACKGROUND_SIZE"]

#: Vectors in the background sample (all of them for smaller indexes).
BACKGROUND_SIZE = 4096


class BackgroundSample:
    """Mixed into the index classes: `background_sample`, cached until the index changes."""

    _background: np.ndarray | None = None

    def background_sample(self, n: int = BACKGROUND_SIZE) -> np.ndarray:
        """Up to ``n`` of the index's unit vectors, the same ones every call (seeded; all if fewer).

        `astro_semsearch.search.scores` ranks a query's scores against the
        scores of these galaxies, so that a score means the same for every
        query and every index.
        """
        if self._background is None or len(self._background) != min(n, self.ntotal):
            rows = np.arange(self.ntotal)
            if self.ntotal > n:
                rows = np.sort(np.random.default_rng(0).choice(self.ntotal, size=n, replace=False))
            self._background = np.asarray(self.vectors(rows), dtype=np.float32)
        return self._background
