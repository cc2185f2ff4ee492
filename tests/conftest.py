"""Shared pytest configuration.

Tests never read ``../shared``, never touch the user's astropy cache or
config, and never reach the network unless marked ``remote_data``.
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
