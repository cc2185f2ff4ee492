"""Shared pytest configuration.

Tests never read ``../shared``, never touch the user's astropy cache, and
never reach the network unless marked ``remote_data``. They see the
package's default configuration, not the developer's ``astro_semsearch.cfg``
(the root ``conftest.py`` points astropy's configuration directory at an
empty one).
"""
import os

import pytest

# No progress bars in test logs, and no hub look-ups by transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

try:
    from pytest_astropy_header.display import PYTEST_HEADER_MODULES

    PYTEST_HEADER_MODULES.clear()
    PYTEST_HEADER_MODULES.update(
        {"astropy": "astropy", "astroquery": "astroquery", "numpy": "numpy", "torch": "torch", "faiss": "faiss"}
    )
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def _isolated_astropy_cache(tmp_path_factory, monkeypatch):
    """Point astropy's download cache at a per-session temporary directory."""
    from astropy.config import paths

    cache = tmp_path_factory.getbasetemp() / "astropy-cache"
    cache.mkdir(exist_ok=True)
    with paths.set_temp_cache(str(cache)):
        yield


@pytest.fixture(autouse=True)
def _quiet_progress():
    from astro_semsearch import conf

    with conf.set_temp("show_progress", False):
        yield


#: The architecture of the tiny real model the CLI tests use (random weights, a few kB).
TINY_MODEL_CONFIG = {"name": "tiny", "dim": 8, "stem_channels": 4, "channels": [8, 8, 8], "head_hidden": 16}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A real `GalaxyModel` (tiny, random weights) saved to a directory, as a user's trained model would be."""
    from astro_semsearch.model import GalaxyModel

    path = tmp_path_factory.mktemp("models") / "tiny"
    GalaxyModel.from_config(TINY_MODEL_CONFIG, seed=0).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """The tiny real model, loaded once."""
    from astro_semsearch.model import load_model

    return load_model(tiny_model_dir)


@pytest.fixture(scope="session")
def make_tiny_index(tmp_path_factory, tiny_model):
    """``make(n, seed, name, survey, **columns)``: an index of ``n`` random 32 px images embedded by the tiny
    model, at RA 150-151, Dec 2-3 deg, with extra catalogue ``columns`` (callables of the generator and ``n``)."""
    import numpy as np
    from astropy import units as u
    from astropy.table import Table

    from astro_semsearch.index import GalaxyIndex

    def make(n: int, seed: int, name: str, survey: str = "SDSS", **columns):
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
        t = Table({"object_id": [f"G{i:02d}" for i in range(n)], "ra": rng.uniform(150, 151, n) * u.deg,
                   "dec": rng.uniform(2, 3, n) * u.deg})
        for col, values in columns.items():
            t[col] = values(rng, n)
        idx = GalaxyIndex.build(tiny_model.embed_images(images), t, model=tiny_model, name=name, survey=survey)
        return idx.save(tmp_path_factory.mktemp(name) / name)

    return make
