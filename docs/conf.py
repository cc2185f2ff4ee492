# Sphinx configuration for astro_semsearch.
import datetime
from importlib.metadata import version as _version

project = "astro_semsearch"
author = "The astro_semsearch developers"
copyright = f"{datetime.date.today().year}, {author}"
release = _version("astro_semsearch")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
try:  # sphinx-astropy brings automodapi; fall back gracefully without it
    import sphinx_automodapi  # noqa: F401

    extensions += ["sphinx_automodapi.automodapi", "sphinx_automodapi.smart_resolver"]
    numpydoc_show_class_members = False
except ImportError:  # pragma: no cover
    pass

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "astropy": ("https://docs.astropy.org/en/stable/", None),
}
exclude_patterns = ["_build"]
# `name` in the docs and docstrings is a cross-reference (to a Python object), as in astropy.
default_role = "obj"
html_theme = "alabaster"
nitpicky = False
# Attributes sections as field lists: automodapi already documents each property on its own page.
napoleon_use_ivar = True
