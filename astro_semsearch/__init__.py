"""astro_semsearch: search galaxy images by meaning.

Describe what you are looking for in words (``semantic_search``), give an
example galaxy (``similar_to``), and cross-match the hits with a catalogue
(``crossmatch``). Every function returns an `astropy.table.Table` with units,
coordinates and provenance in ``Table.meta["astro_semsearch"]``.

Examples
--------
>>> from astro_semsearch import semantic_search
>>> hits = semantic_search("ring galaxy", k=5)   # doctest: +SKIP
"""
from __future__ import annotations

from importlib import resources as _resources
from importlib.metadata import PackageNotFoundError as _PNF
from importlib.metadata import version as _version

try:
    __version__ = _version("astro_semsearch")
except _PNF:  # running from a source tree that was not installed
    __version__ = "0.0.0.dev0"

from ._lazy import lazy_exports  # noqa: E402
from .config import conf  # noqa: E402

__citation__ = __bibtex__ = (_resources.files(__name__) / "CITATION").read_text(encoding="utf-8")

# The public API is imported lazily: ``import astro_semsearch`` stays fast and
# does not load torch or FAISS until a function that needs them is used.
_LAZY = {
    "semantic_search": "search",
    "similar_to": "search",
    "crossmatch": "crossmatch",
    "GalaxyIndex": "index",
    "ShardedIndex": "index",
    "open_index": "index",
    "load_model": "model",
    "GalaxyModel": "model",
    "classify": "classify",
    "cite": "citation",
    "build_index": "build",
    "LegacySurvey": "cutouts",
    "plot_results": "plotting",
    "write_html": "report",
    "show": "report",
    "result_images": "thumbnails",
    "feedback_search": "rerank",
    "draw_symbol": "sketch",
    "NoGoodMatchWarning": "exceptions",
}

__all__ = ["conf", "__version__", "__citation__", "__bibtex__", *_LAZY]


def _register_html_writer() -> None:
    """Make ``table.write("hits.html", format="semsearch-html")`` work after ``import astro_semsearch``."""
    try:
        from . import report  # noqa: F401  (registers the writer with astropy.io.registry)
    except ImportError:  # pragma: no cover - astropy.table missing is a broken install anyway
        pass


_register_html_writer()


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
