"""A self-contained HTML report of search results, to look at in a browser.

`write_html` writes one HTML file with a card per hit: the thumbnail
(embedded in the file as a base64 ``data:`` URI, so the report opens offline,
can be mailed or attached to a logbook), rank, ``score`` (and
``rerank_score``), ``object_id``, RA/Dec, the other catalogue columns, and a
link to the Legacy Survey sky viewer (the table's ``viewer_url`` column).
The header shows how the table was made, from
``results.meta["astro_semsearch"]``: the query, the model and its sha256, the
index and its sha256, the re-ranker if one ran, the time and the package
version; the whole meta is also embedded as JSON
(``<script type="application/json" id="astro-semsearch-meta">``).

All text from the table is HTML-escaped, links other than http(s) are not
made into links, and the page carries a Content-Security-Policy that allows
no scripts and no remote content: a hostile ``object_id`` cannot run code or
make the page call out.

Importing this module registers the ``"semsearch-html"`` format with
astropy's unified I/O, so any result table can be written with
``hits.write("hits.html", format="semsearch-html")``. (It is not made the
default for ``.html`` files: astropy's own ``ascii.html`` table writer
already claims that extension.)

Examples
--------
>>> from astro_semsearch.report import write_html
>>> hits = semantic_search("ring galaxy", k=20)                        # doctest: +SKIP
>>> write_html(hits, "rings.html")                                    # doctest: +SKIP
>>> hits.write("rings.html", format="semsearch-html", overwrite=True)  # doctest: +SKIP

From the command line::

    astro-semsearch search "ring galaxy" -k 20 --html rings.html
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Row, Table

from ._io import atomic_write_bytes
from ._meta import meta_section
from ._validate import check_int
from ._validate import finite_or_none as _number
from .catalog import column_degrees
from .exceptions import InvalidInputError, InvalidTypeError

__all__ = ["write_html", "render_html", "show", "FORMAT"]

FORMAT = "semsearch-html"
"""Name of the astropy unified-I/O format: ``table.write(path, format=FORMAT)``."""

# Columns shown in a card's own lines; the others go to its "catalogue" list.
_MAIN_COLUMNS = ("rank", "object_id", "ra", "dec", "score", "rerank_score", "search_rank", "viewer_url")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.2em;
       color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.35em; margin: 0 0 .4em 0; }
dl.provenance { display: grid; grid-template-columns: max-content auto; gap: .15em 1em; font-size: .85em;
                margin: 0 0 1.2em 0; }
dl.provenance dt { font-weight: 600; color: #555; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85em; }
.hits { display: grid; grid-template-columns: repeat(auto-fill, minmax(%(card)dpx, 1fr)); gap: 12px; }
.hit { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; font-size: .8em; }
.hit .thumb { display: block; width: %(thumb)dpx; height: %(thumb)dpx; margin: 0 auto 6px auto; }
.hit img { width: %(thumb)dpx; height: %(thumb)dpx; display: block; image-rendering: auto; }
.hit .missing { background: #e0e0e0; color: #555; display: flex; align-items: center; justify-content: center; }
.hit h2 { font-size: 1em; margin: 0 0 2px 0; overflow-wrap: anywhere; }
.hit p { margin: 1px 0; }
.hit .rank { color: #777; font-weight: 400; }
.hit details { margin-top: 4px; }
.hit table { border-collapse: collapse; font-size: .95em; }
.hit td { padding: 0 .6em 0 0; vertical-align: top; overflow-wrap: anywhere; }
footer { margin-top: 1.5em; font-size: .75em; color: #666; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _safe_url(url) -> str | None:
    """The URL if it is an http(s) link (never ``javascript:`` and friends), else None."""
    if url is None or np.ma.is_masked(url):
        return None
    url = str(url).strip()
    return url if url.lower().startswith(("https://", "http://")) else None


def _data_uri(rgb: np.ndarray, image_format: str) -> str:
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    if image_format == "png":
        im.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        im.save(buf, format="JPEG", quality=90)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _fmt_value(col, value) -> str:
    if np.ma.is_masked(value):
        return "--"
    fmt = getattr(col, "format", None)
    if isinstance(value, (float, np.floating)):
        if fmt:
            try:
                return format(value, fmt.lstrip("{:").rstrip("}")) if "{" in fmt else format(value, fmt)
            except (ValueError, TypeError):
                pass
        return f"{value:.4g}"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _provenance(meta: dict) -> list[tuple[str, str]]:
    """(label, escaped HTML) pairs for the header."""
    items: list[tuple[str, str]] = []

    def add(label, text):
        if text not in (None, "", []):
            items.append((label, text))

    q = meta.get("query")
    if q is not None:
        qs = q if isinstance(q, (list, tuple)) else [q]
        add("Query", " + ".join(f"&ldquo;{_esc(s)}&rdquo;" for s in qs))
    if meta.get("negative"):
        neg = meta["negative"] if isinstance(meta["negative"], (list, tuple)) else [meta["negative"]]
        add("Negative", " + ".join(f"&ldquo;{_esc(s)}&rdquo;" for s in neg)
            + (f" (weight {_esc(meta.get('negative_weight'))})" if meta.get("negative_weight") is not None else ""))
    if meta.get("like"):
        add("Like", _esc(meta["like"]) + (f" (weight {_esc(meta.get('like_weight'))})"
                                            if meta.get("like_weight") is not None else ""))
    if meta.get("function"):
        add("Search", f"<code>{_esc(meta['function'])}</code>" + (f", k = {_esc(meta['k'])}" if "k" in meta else ""))
    model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    if model:
        add("Model", _esc(model.get("name") or "unnamed")
            + (f" &middot; sha256 <code>{_esc(model['sha256'])}</code>" if model.get("sha256") else ""))
    index = meta.get("index") if isinstance(meta.get("index"), dict) else {}
    if index:
        text = _esc(index.get("name") or "unnamed")
        if index.get("count") is not None:
            text += f" ({_esc(index['count'])} galaxies)"
        if index.get("sha256"):
            text += f" &middot; sha256 <code>{_esc(index['sha256'])}</code>"
        add("Index", text)
    add("Survey", _esc(meta["survey"]) if meta.get("survey") else None)
    rr = meta.get("rerank") if isinstance(meta.get("rerank"), dict) else None
    if rr:
        text = f"<code>{_esc(rr.get('name', '?'))}</code>"
        if rr.get("top_n") is not None:
            text += f" on the top {_esc(rr['top_n'])}"
        if rr.get("seconds") is not None:
            text += f" ({_esc(round(float(rr['seconds']), 2))} s)"
        if rr.get("parameters"):
            text += f" &middot; <code>{_esc(json.dumps(rr['parameters'], default=str, sort_keys=True))}</code>"
        add("Re-ranked", text)
    add("Made", _esc(meta["time"]) if meta.get("time") else None)
    add("astro_semsearch", _esc(meta["package_version"]) if meta.get("package_version") else None)
    return items


def _card(table: Table, i: int, thumb: np.ndarray | None, image_format: str, thumb_size: int,
          viewer: str | None) -> str:
    row = table[i]
    cols = table.colnames
    oid = str(row["object_id"]) if "object_id" in cols else f"row {i}"
    rank = row["rank"] if "rank" in cols else i + 1
    link = _safe_url(viewer)
    parts = [f'<article class="hit" id="hit-{i + 1}" data-rank="{_esc(rank)}" data-object-id="{_esc(oid)}">']
    if thumb is not None:
        img = (f'<img src="{_data_uri(thumb, image_format)}" alt="{_esc(oid)}" '
               f'width="{thumb_size}" height="{thumb_size}">')
        parts.append(f'<a class="thumb" href="{_esc(link)}">{img}</a>' if link else f'<span class="thumb">{img}</span>')
    else:
        parts.append('<div class="thumb missing">no image</div>')
    parts.append(f'<h2><span class="rank">#{_esc(rank)}</span> <span class="object-id">{_esc(oid)}</span></h2>')
    scores = []
    rr = _number(row["rerank_score"]) if "rerank_score" in cols else None
    if rr is not None:
        scores.append(f'rerank_score <b class="rerank-score">{rr:.4f}</b>')
    sc = _number(row["score"]) if "score" in cols else None
    if sc is not None:
        scores.append(f'score <b class="score">{sc:.4f}</b>')
    if "search_rank" in cols and _number(row["search_rank"]) is not None:
        scores.append(f"search rank {_esc(row['search_rank'])}")
    if scores:
        parts.append(f'<p class="scores">{" &middot; ".join(scores)}</p>')
    ra = _number(row["ra"]) if "ra" in cols else None
    dec = _number(row["dec"]) if "dec" in cols else None
    if ra is not None and dec is not None:
        parts.append(f'<p class="coords">RA {ra:.6f}&deg; Dec {dec:+.6f}&deg;</p>')
    if link:
        parts.append(f'<p><a class="viewer" href="{_esc(link)}">Legacy Survey viewer</a></p>')
    extra = [c for c in cols if c not in _MAIN_COLUMNS and getattr(table[c], "ndim", 1) == 1]
    if extra:
        rows = "".join(f"<tr><td>{_esc(c)}</td><td>{_esc(_fmt_value(table[c], row[c]))}</td></tr>" for c in extra)
        parts.append(f"<details><summary>catalogue</summary><table>{rows}</table></details>")
    parts.append("</article>")
    return "".join(parts)


def render_html(results: Table, thumbs: list, *, title: str | None = None, thumb_size: int = 160,
                image_format: str = "jpeg") -> str:
    """The report as a string (what `write_html` writes), from thumbnails already in hand."""
    meta = meta_section(results)  # nested, or JSON text from a FITS file
    if title is None:
        q = meta.get("query")
        q = " + ".join(map(str, q)) if isinstance(q, (list, tuple)) else q
        title = f"astro_semsearch: {q}" if q else "astro_semsearch results"
    if "viewer_url" in results.colnames:
        urls = [None if np.ma.is_masked(v) else str(v) for v in results["viewer_url"]]
    elif "ra" in results.colnames and "dec" in results.colnames:
        from .cutouts import viewer_urls  # astroquery is imported only when links must be made

        urls = list(viewer_urls(column_degrees(results["ra"], "ra", "results"),
                                column_degrees(results["dec"], "dec", "results")))
    else:
        urls = [None] * len(results)
    from . import __version__

    css = _CSS % {"card": thumb_size + 60, "thumb": thumb_size}
    prov = "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in _provenance(meta))
    cards = "\n".join(_card(results, i, thumbs[i], image_format, thumb_size, urls[i]) for i in range(len(results)))
    # JSON inside <script>: escape "<" so no "</script>" in a value can end the block early.
    meta_json = json.dumps(meta, default=str, indent=1, sort_keys=True).replace("<", "\\u003c")
    n_missing = sum(t is None for t in thumbs)
    missing_note = f" ({n_missing} without image)" if n_missing else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="astro_semsearch {_esc(__version__)}">
<title>{_esc(title)}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{_esc(title)}</h1>
<dl class="provenance">{prov}<dt>Hits</dt><dd>{len(results)}{missing_note}</dd></dl>
</header>
<main class="hits">
{cards}
</main>
<footer>Made with astro_semsearch {_esc(__version__)}. Images: DESI Legacy Imaging Surveys (or the index's own
image source); links open the Legacy Survey sky viewer.</footer>
<script type="application/json" id="astro-semsearch-meta">{meta_json}</script>
</body>
</html>
"""


def write_html(
    results: Table,
    path: str | os.PathLike | Any,
    *,
    images: Any = None,
    index: Any = None,
    source: Any = None,
    title: str | None = None,
    thumb_size: int = 160,
    image_format: str = "jpeg",
    overwrite: bool = False,
    progress: bool | None = None,
) -> Path | None:
    """Write search results as a self-contained HTML page with thumbnails and links.

    Parameters
    ----------
    results : `~astropy.table.Table`
        A search result (or any table with ``object_id`` and ``ra``/``dec``).
    path : str, path or writable file object
        Where to write. A file is written atomically (no half-written
        report if interrupted).
    images, index, source
        Where the thumbnails come from, see
        `~astro_semsearch.thumbnails.result_images` (``images`` may also be
        its output, one array or None per row).
    title : str, optional
        Page title (default: the query).
    thumb_size : int
        Thumbnail side in pixels (default 160).
    image_format : {"jpeg", "png"}
        Encoding of the embedded thumbnails (JPEG: about 5 kB each).
    overwrite : bool
        Replace an existing file.
    progress : bool, optional
        Progress bar while fetching cutouts.

    Returns
    -------
    pathlib.Path or None
        The file written (None for a file object).

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=20)           # doctest: +SKIP
    >>> write_html(hits, "hits.html", images="cutouts/")   # doctest: +SKIP
    """
    from .thumbnails import result_images

    if isinstance(results, Row):
        results = results.table[results.index : results.index + 1]
    if not isinstance(results, Table):
        raise InvalidTypeError(f"results must be an astropy Table, got {type(results).__name__}")
    if image_format not in ("jpeg", "png"):
        raise InvalidInputError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")
    thumb_size = check_int(thumb_size, "thumb_size", minimum=8, maximum=1024)
    is_file_object = hasattr(path, "write")
    if not is_file_object:
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists (pass overwrite=True, --overwrite on the command line, to replace it)")
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory; give a file name such as hits.html")
    thumbs = (result_images(results, index=index, size=int(thumb_size), source=source, images=images,
                            progress=progress) if len(results) else [])
    text = render_html(results, thumbs, title=title, thumb_size=int(thumb_size), image_format=image_format)
    if is_file_object:
        try:
            path.write(text)
        except TypeError:  # a binary stream
            path.write(text.encode("utf-8"))
        return None
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


class Cards:
    """The report's cards of a result table, shown inline by a Jupyter notebook (`show`)."""

    def __init__(self, html: str):
        self.html = html

    def _repr_html_(self) -> str:
        # The page's own <style> and cards, without the document shell a notebook does not want.
        body = self.html[self.html.index("<style>"):self.html.index("</style>") + 8]
        main = self.html[self.html.index('<main class="hits">'):self.html.index("</main>") + 7]
        return f'<div class="astro-semsearch">{body}{main}</div>'

    def __repr__(self) -> str:
        return f"<Cards: {self.html.count('<article')} hits>"


def show(results: Table, *, images: Any = None, index: Any = None, source: Any = None, thumb_size: int = 128,
         progress: bool | None = None) -> Cards:
    """The hits as cards with thumbnails, for a notebook: ``show(hits)`` as the last line of a cell.

    The same cards as `write_html` (thumbnail, rank, scores, identifier,
    position, sky-viewer link); thumbnails come from `~astro_semsearch.thumbnails.result_images`.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> hits = Table({"rank": [1], "object_id": ["a"], "ra": [1.0], "dec": [2.0], "score": [0.5]})
    >>> cards = show(hits, images=[np.zeros((8, 8, 3), np.uint8)])
    >>> cards, "data:image/jpeg;base64" in cards._repr_html_()
    (<Cards: 1 hits>, True)
    """
    from .thumbnails import result_images

    if isinstance(results, Row):
        results = results.table[results.index : results.index + 1]
    thumb_size = check_int(thumb_size, "thumb_size", minimum=8, maximum=1024)
    thumbs = result_images(results, index=index, size=thumb_size, source=source, images=images, progress=progress)
    return Cards(render_html(results, thumbs, thumb_size=thumb_size))


# --------------------------------------------------------------------------- astropy unified I/O
def _unified_writer(table: Table, output, overwrite: bool = False, **kwargs) -> None:
    """``Table.write(output, format="semsearch-html", ...)``: the table comes first, as astropy calls it."""
    write_html(table, output, overwrite=overwrite, **kwargs)


def _register() -> None:
    from astropy.io import registry

    try:
        registry.register_writer(FORMAT, Table, _unified_writer)
    except registry.IORegistryError:  # already registered (module reloaded)
        pass


_register()
