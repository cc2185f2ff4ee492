"""Isolation shared by every test pytest collects here: ``tests/``, the docs and the package's doctests.

* **Configuration.** A user's ``astro_semsearch.cfg`` (``text_backend``,
  ``max_concurrency``, ``unreachable_after``...) must not change what the
  tests see, so ``ASTROPY_CONFIG_DIR`` points at an empty directory for the
  whole session (subprocesses such as the CLI tests inherit it). astropy's
  ``set_temp_config`` would do the same per test but holds a lock for its
  whole block, too coarse for tests that start threads.
* **Temporary files of doctests.** The examples call ``tempfile.mkdtemp()``
  as a user would; inside a doctest that directory is the doctest's own
  ``tmp_path``, so pytest prunes it with every other test's files.
"""
import os
import shutil
import tempfile

import pytest

pytest_plugins = ["pytester"]  # tests/test_isolation.py runs this file in a fresh pytest

_CONFIG_DIR = tempfile.mkdtemp(prefix="astro_semsearch-test-config-")
os.environ["ASTROPY_CONFIG_DIR"] = _CONFIG_DIR


def pytest_configure(config):
    # astropy caches a package's configuration file once read; read it again from the empty directory
    from astropy.config import reload_config

    reload_config("astro_semsearch")


def pytest_unconfigure(config):
    shutil.rmtree(_CONFIG_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def _doctest_tempdir(request, monkeypatch):
    """Inside a doctest, ``tempfile`` makes its files under the doctest's ``tmp_path``."""
    from _pytest.doctest import DoctestItem

    if isinstance(request.node, DoctestItem):
        monkeypatch.setattr(tempfile, "tempdir", str(request.getfixturevalue("tmp_path")))
    yield
