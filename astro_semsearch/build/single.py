"""Build a searchable `GalaxyIndex` from a catalogue: coordinates (or files) -> cutouts -> embeddings.

`build_index` takes your catalogue (an astropy `~astropy.table.Table` or any
file `Table.read` understands: ECSV, FITS, VOTable, CSV) and either

* fetches a cutout for every row from the DESI Legacy Imaging Surveys viewer
  (`~astro_semsearch.cutouts.LegacySurvey`, or ``source="hips2fits"``), or
* reads the row's image from a local directory (``images=DIR`` plus a
  column naming the file: FITS, PNG or JPEG),

embeds the images with the model and writes an index directory that
`~astro_semsearch.similar_to` and `~astro_semsearch.semantic_search` can use.
Your catalogue columns are kept in the index.

Rows outside the survey footprint (blank cutouts), failed downloads and
unreadable files are skipped, never embedded; they are listed in
``skipped.ecsv`` in the index directory (the catalogue ``row``, ``object_id``,
``ra``, ``dec``, ``reason`` and ``kind``) and counted in
``index.manifest["build"]``. A download that failed for network reasons
(connection error, time-out, HTTP 5xx/429 after the retries) is
``kind="network"``: never a final answer, it is fetched again by the next run
(see below). A service that cannot be reached at all stops the build with one
`~astro_semsearch.exceptions.ServiceUnreachableError` naming its URL.

Long builds are resumable. The work is done in chunks of ``chunk_size`` rows;
each finished chunk is written atomically to ``<out>.partial/chunk-NNNNN.npz``
next to a manifest holding the sha256 of the catalogue content and the model
fingerprint. Kill the job at any time (or let it stop on a network outage)
and run the same command again: the finished chunks are reused (nothing is
fetched or embedded twice, nothing is lost), the rows they skipped for
network reasons are fetched again (all their skipped rows with
``retry_skipped=True``), and chunks from another catalogue or model are
refused. At the end the index is saved atomically to ``out`` and the work
directory is removed, unless rows are still skipped for network reasons:
then it is kept, and the same command with ``overwrite=True`` fetches them
again and replaces the index.

Examples
--------
>>> from astropy.table import Table
>>> from astro_semsearch import build_index
>>> cat = Table({"object_id": ["a", "b"], "ra": [150.1, 150.2], "dec": [2.2, 2.3]})
>>> index = build_index(cat, out="my-index", size=128)   # doctest: +REMOTE_DATA
>>> index.manifest["build"]["n_indexed"]                 # doctest: +REMOTE_DATA
2

From the command line::

    astro-semsearch build-index catalog.ecsv --out my-index
    astro-semsearch build-index catalog.ecsv --out my-index --images cutouts/ --file-column file
    astro-semsearch build-index catalog.ecsv --out my-index --retry-skipped   # ask again for every skipped row
"""
from __future__ import annotations

import io
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy import units as u
from astropy.table import Table

from .._io import atomic_write_bytes
from .._io import progress as _progress
from .._validate import check_bool, check_int
from ..catalog import DEC_NAMES, FILE_NAMES, RA_NAMES, column_degrees, content_sha256, find_column, read_catalog
from ..config import conf
from ..cutouts import Hips2FitsCutouts, LegacySurvey, resolve_source
from ..cutouts.framing import FIXED_SIZE, NATIVE_PIXSCALE
from ..exceptions import AstroSemsearchError, CutoutError, InvalidInputError, ServiceUnreachableError
from ..index import GalaxyIndex
from .images import local_images, remote_images, stack_images
from .sizes import frame_rows, size_column_of, warn_unknown_framing
from .work import (WORK_FORMAT, chunk_path, locked_output, merge_chunk, open_work_dir, read_chunk, rows_to_redo,
                   write_chunk)

__all__ = ["build_index"]

log = logging.getLogger(__name__)


@locked_output
def build_index(
    catalog,
    *,
    out: str | os.PathLike,
    source=None,
    model=None,
    batch_size: int = 256,
    chunk_size: int = 256,
    id_column: str = "object_id",
    ra_column: str | None = None,
    dec_column: str | None = None,
    keep_columns: Sequence[str] | None = None,
    size: int = FIXED_SIZE,
    pixscale: float = NATIVE_PIXSCALE,
    size_column: str | bool | None = None,
    layer: str | None = None,
    bands: str = "grz",
    format: str | None = None,
    images: str | os.PathLike | None = None,
    file_column: str | None = None,
    name: str | None = None,
    survey: str | None = None,
    kind: str = "auto",
    overwrite: bool = False,
    retry_skipped: bool = False,
    progress: bool | None = None,
):
    """Fetch (or read), embed and index every galaxy of a catalogue.

    Parameters
    ----------
    catalog : `~astropy.table.Table` or path
        One row per galaxy with an identifier and RA/Dec (degrees, or columns
        with angle units).
    out : path
        Directory to write the index to (see `GalaxyIndex.save`).
    source : {"legacysurvey", "hips2fits"} or `~astro_semsearch.cutouts.CutoutService`, optional
        Where cutouts come from (default `LegacySurvey`); ignored with ``images``.
    model : `~astro_semsearch.GalaxyModel`, optional
        Default: `~astro_semsearch.load_model` ().
    batch_size : int
        Images per forward pass of the model.
    chunk_size : int
        Rows per resumable unit of work (256: about 200 MB of 256-pixel
        grz FITS cutouts in memory at a time).
    id_column, ra_column, dec_column : str
        Catalogue columns (RA/Dec found by name when not given: ra/dec,
        RAJ2000/DEJ2000, ...). The identifiers become ``object_id`` (strings,
        unique).
    keep_columns : list of str, optional
        Catalogue columns to keep in the index (default: all of them).
    size, pixscale, layer, bands, format
        Cutout request (see `LegacySurvey.get_cutouts`); default 256 pixels
        of 0.262 arcsec, layer ``"ls-dr10"``, FITS ``grz`` fluxes (JPEG for
        ``source="hips2fits"``, whose default HiPS is a colour one). With a
        size column, ``pixscale`` is only the fallback of rows without a size.
    size_column : str, None or False
        Frame each galaxy by its size: the column of sizes (default: found by
        name, Tractor ``shape_r``, SDSS ``petroR90_r``, SGA ``D26``, see
        `astro_semsearch.catalog.SIZE_COLUMNS`; another column must have an
        angle unit and is taken as R90). Each cutout then spans the model's
        ``frame_r90`` (6.4) x R90, at no finer than 0.262"/pixel and at most
        30 arcmin across (`astro_semsearch.cutouts.framing`); the index
        catalogue gets ``pixscale`` (arcsec/pixel) and ``framing`` (``size``,
        ``min``, ``max`` or ``fixed``) columns. Without one every galaxy gets
        the fixed request and one `AstropyUserWarning` says so; ``False``
        asks for the fixed request knowingly (no warning).
    images : path, optional
        Read images from this directory instead of fetching cutouts; the
        ``file_column`` (default: a column named file/filename/path) holds
        each row's file name relative to it.
    name, survey : str, optional
        Recorded in the index manifest (``name`` defaults to ``out``'s name).
    kind : str
        FAISS index kind (see `GalaxyIndex.build`).
    overwrite : bool
        Replace an existing index at ``out``.
    retry_skipped : bool
        When resuming, fetch (or read) again every row the finished chunks
        skipped, for any reason (a blank cutout, an HTTP 4xx, an unreadable
        file), not only those skipped for network reasons.
    progress : bool, optional
        Progress bar over chunks (default ``conf.show_progress``).

    Returns
    -------
    `~astro_semsearch.GalaxyIndex`
        The saved index; ``index.manifest["build"]`` holds the counts
        (``n_skipped_network``: skipped rows a rerun fetches again), the
        skipped rows (first 100: catalogue ``row``, ``object_id``, ``reason``,
        ``kind``) and the throughput (cutouts/s, embeddings/s).

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    ValueError
        A column is missing, identifiers are not unique, the work directory
        belongs to another catalogue or model, or no row could be indexed.
    ServiceUnreachableError
        The cutout service cannot be reached (or fails every request); the
        finished chunks are kept: rerun the same call to resume.

    Examples
    --------
    A catalogue with ``ra``, ``dec`` and a size column (Tractor ``shape_r``)
    becomes a searchable index (cutouts from the Legacy Survey; network):

    >>> index = build_index("my_galaxies.ecsv", out="my_index")              # doctest: +SKIP
    >>> hits = semantic_search("ring galaxy", index="my_index")             # doctest: +SKIP
    """
    out = Path(out)
    work = out.parent / f"{out.name}.partial"
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True, --overwrite on the command line, to "
                              "replace it"
                              + (f"; {work} holds rows skipped for network reasons that such a rerun fetches "
                                 "again)" if work.is_dir() else ")"))
    batch_size = check_int(batch_size, "batch_size")
    chunk_size = check_int(chunk_size, "chunk_size")
    retry_skipped = check_bool(retry_skipped, "retry_skipped")
    plan = _plan(catalog, id_column=id_column, ra_column=ra_column, dec_column=dec_column,
                 keep_columns=keep_columns, images=images, file_column=file_column, size_column=size_column)
    if model is None:
        from ..model import load_model

        model = load_model()
    src, src_name, format = _source(source, plan.images, format)
    framing = None if plan.images is not None else frame_rows(plan.catalog, plan.size_col, model=model,
                                                                 size=size, pixscale=pixscale)
    if plan.images is None and framing is None and size_column is not False:
        warn_unknown_framing(size, pixscale)
    expected = {
        "work_format": WORK_FORMAT,
        "catalog_sha256": content_sha256(plan.catalog, sorted(plan.used | set(plan.keep))),
        "catalog_rows": plan.n,
        "model_fingerprint": str(getattr(model, "fingerprint", "")),
        "model_dim": int(model.dim),
        "chunk_size": chunk_size,
        "request": {"source": src_name, "size": int(size), "pixscale": float(pixscale), "layer": layer,
                    "bands": bands, "format": format, **({"framing": framing.rule} if framing else {})},
        # Where the images were, so thumbnails/plots can show them later.
        "images": None if plan.images is None else {"directory": str(plan.images.resolve()),
                                                     "file_column": plan.fcol},
    }
    open_work_dir(work, expected)
    request = dict(size=size, pixscale=pixscale, layer=layer, bands=bands, format=format)
    show = conf.show_progress if progress is None else bool(progress)
    try:
        stats = _run_chunks(plan, work, model, src, request, chunk_size, batch_size, show, retry_skipped,
                            None if framing is None else framing.pixscale)
    except (AstroSemsearchError, OSError) as exc:
        if not isinstance(exc, ServiceUnreachableError):  # whose message already says how to resume
            exc.add_note(f"the finished chunks are kept in {work}: once this is fixed, run the same command "
                         f"again to resume, or delete {work} to start over")
        raise
    rows, embeddings, skipped = _assemble(plan, work, chunk_size, int(model.dim))
    n_network = int((skipped["kind"] == "network").sum())
    table = _index_catalog(plan, rows)
    if framing is not None:
        table["pixscale"] = framing.pixscale[rows] * (u.arcsec / u.pix)
        table["framing"] = framing.status[rows]
    index = GalaxyIndex.build(embeddings, table, kind=kind, model=model, name=name or out.name, survey=survey)
    index.manifest["build"] = {
        "catalog": plan.path.name if plan.path is not None else None,
        "catalog_sha256": expected["catalog_sha256"],
        "request": expected["request"],
        "images": expected["images"],
        "n_input": plan.n,
        "n_indexed": int(rows.size),
        "n_skipped": len(skipped),
        "n_skipped_network": n_network,
        "skipped": [{"row": int(r["row"]), "object_id": str(r["object_id"]), "reason": str(r["reason"]),
                     "kind": str(r["kind"])} for r in skipped[:100]],
        "throughput": stats,
        **({"framing": framing.counts()} if framing else {}),
    }
    _save(index, out, overwrite, skipped, work, n_network)
    log.info("built index %s: %d galaxies indexed, %d skipped; %s cutouts/s, %s embeddings/s", out, rows.size,
             len(skipped), _fmt(stats["cutouts_per_s"]), _fmt(stats["embeddings_per_s"]))
    return index


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.1f}"


def _save(index, out: Path, overwrite: bool, skipped: Table, work: Path, n_network: int) -> None:
    """The index, then its ``skipped.ecsv``; the work directory removed unless rows wait to be fetched again."""
    index.save(out, overwrite=overwrite)
    # Written after the atomic save: the full list of skipped rows, beside the index files.
    buf = io.StringIO()
    skipped.write(buf, format="ascii.ecsv")
    atomic_write_bytes(out / "skipped.ecsv", buf.getvalue().encode())
    if n_network:
        log.warning("%d rows of %s were skipped for network reasons; %s is kept: run the same command with "
                    "overwrite=True (--overwrite) to fetch them again", n_network, out, work)
    else:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Plan:
    """The checked catalogue: what is embedded, under which ids, and which columns are kept."""

    catalog: Table
    path: Path | None
    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    keep: list[str]
    used: set[str]
    images: Path | None
    fcol: str | None
    size_col: str | None = None

    @property
    def n(self) -> int:
        return len(self.catalog)


def _plan(catalog, *, id_column, ra_column, dec_column, keep_columns, images, file_column,
          size_column=None) -> _Plan:
    """Read and check the catalogue: ids unique, positions valid, image directory and columns there."""
    catalog, cat_path = read_catalog(catalog)
    if id_column not in catalog.colnames:
        raise InvalidInputError(f"id column {id_column!r} is not in the catalogue; it has {catalog.colnames} "
                                "(name it with id_column=..., --id-column on the command line)")
    ra_col = find_column(catalog, ra_column, RA_NAMES, "RA", option="ra_column")
    dec_col = find_column(catalog, dec_column, DEC_NAMES, "Dec", option="dec_column")
    ra, dec = column_degrees(catalog[ra_col], ra_col), column_degrees(catalog[dec_col], dec_col)
    if ((ra < 0) | (ra >= 360)).any() or ((dec < -90) | (dec > 90)).any():
        bad = np.flatnonzero((ra < 0) | (ra >= 360) | (dec < -90) | (dec > 90))
        raise InvalidInputError(f"RA must be in [0, 360) and Dec in [-90, 90] deg; bad rows {bad[:5].tolist()}")
    ids = np.asarray(catalog[id_column]).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InvalidInputError(f"identifiers in {id_column!r} must be unique; repeated: "
                                f"{uniq[counts > 1][:5].tolist()}")
    fcol = None
    if images is not None:
        images = Path(images)
        if not images.is_dir():
            raise FileNotFoundError(f"image directory {images} does not exist")
        # Without a file column each row's image is <object_id>.<suffix> in the directory.
        fcol = (find_column(catalog, file_column, FILE_NAMES, "file", option="file_column")
                if file_column is not None or any(c.lower() in FILE_NAMES for c in catalog.colnames) else None)
    size_col = size_column_of(catalog, size_column) if images is None else None
    used = {id_column, ra_col, dec_col} | ({fcol} if fcol else set())
    keep = _kept_columns(catalog, keep_columns, used, fcol)
    keep = [c for c in keep if c not in (id_column, ra_col, dec_col)]
    used |= {size_col} if size_col else set()  # part of what the work directory was made from
    own = ("object_id", "ra", "dec") + (("pixscale", "framing") if size_col else ())
    clash = [c for c in keep if c in own]
    if clash:
        raise InvalidInputError(f"catalogue columns {clash} would clash with the index's own {'/'.join(own)}; "
                                "drop them with keep_columns")
    return _Plan(catalog, cat_path, ids, ra, dec, keep, used, images, fcol, size_col)


def _kept_columns(catalog: Table, keep_columns, used: set[str], fcol: str | None) -> list[str]:
    if keep_columns is None:
        # Plain columns only: object and mixin columns (SkyCoord, Time) do not go into a FITS catalogue.
        keep = [c for c in catalog.colnames
                if c not in used and getattr(getattr(catalog[c], "dtype", None), "kind", "O") != "O"]
        return keep + ([fcol] if fcol else [])
    keep = list(keep_columns)
    missing = [c for c in keep if c not in catalog.colnames]
    if missing:
        raise InvalidInputError(f"keep_columns not in the catalogue: {missing}; it has {catalog.colnames}")
    return keep


def _source(source, images: Path | None, format: str | None):
    """``(cutout service or None, its name in the manifest, format)``."""
    if images is not None:
        return None, f"local:{images.resolve().name}", format
    src = source if (source is not None and hasattr(source, "get_cutouts")) else resolve_source(source)
    # The service (not a subclass's name) decides what the cutouts look like.
    name = next((c.__name__ for c in (LegacySurvey, Hips2FitsCutouts) if isinstance(src, c)), type(src).__name__)
    if format is None:
        # A colour HiPS is RGB already: its JPEG is what the model expects.
        format = "jpeg" if isinstance(src, Hips2FitsCutouts) else "fits"
    return src, name, format


def _run_chunks(plan: _Plan, work: Path, model, src, request: dict, chunk_size: int, batch_size: int,
                show: bool, retry_skipped: bool = False, pixscales: np.ndarray | None = None) -> dict:
    """Fetch (or read) and embed every chunk not finished yet, and the skipped rows to ask again for.

    Returns the throughput record.
    """
    t_fetch = t_embed = 0.0
    n_fetched = n_embedded = n_resumed = n_retried = 0
    dim = int(model.dim)
    nchunks = -(-plan.n // chunk_size)
    for k in _progress(range(nchunks), desc="build index", unit="chunk", disable=not show):
        lo, hi = k * chunk_size, min(plan.n, (k + 1) * chunk_size)
        path = chunk_path(work, k)
        done = read_chunk(path, lo, hi, dim) if path.exists() else None
        todo = np.arange(lo, hi) if done is None else rows_to_redo(done, retry_skipped)
        n_resumed += done is not None
        if todo.size == 0:
            continue
        t0 = time.perf_counter()
        if plan.images is not None:
            files = None if plan.fcol is None else [str(v) for v in plan.catalog[plan.fcol][todo]]
            arrays, reasons, kinds = local_images(plan.images, plan.ids[todo], files)
        else:
            req = request if pixscales is None else dict(request, pixscale=pixscales[todo])
            try:
                arrays, reasons, kinds = remote_images(src, plan.ra[todo], plan.dec[todo], **req)
            except ServiceUnreachableError as exc:
                raise ServiceUnreachableError(f"{exc}; the build stopped at chunk {k + 1} of {nchunks}, the "
                                              f"finished chunks are kept in {work}: rerun the same command to "
                                              "resume", kind=exc.kind, url=exc.url) from None
        t1 = time.perf_counter()
        good = [i for i, a in enumerate(arrays) if a is not None]
        emb = (np.asarray(model.embed_images(stack_images([arrays[i] for i in good]), batch_size=batch_size),
                          dtype=np.float32) if good else np.zeros((0, dim), np.float32))
        t2 = time.perf_counter()
        if emb.shape != (len(good), dim):
            raise InvalidInputError(f"the model returned embeddings of shape {emb.shape}, expected "
                                    f"{(len(good), dim)}")
        bad = [i for i in range(todo.size) if arrays[i] is None]
        write_chunk(path, **merge_chunk(done, todo, rows=todo[good], embeddings=emb, skipped_rows=todo[bad],
                                        reasons=[reasons[i] for i in bad], kinds=[kinds[i] for i in bad],
                                        dim=dim))
        t_fetch += t1 - t0
        t_embed += t2 - t1
        n_fetched += todo.size
        n_embedded += len(good)
        n_retried += todo.size if done is not None else 0
    return {"cutouts_per_s": (n_fetched / t_fetch) if t_fetch > 0 else None,
            "embeddings_per_s": (n_embedded / t_embed) if t_embed > 0 else None,
            "fetch_seconds": round(t_fetch, 3), "embed_seconds": round(t_embed, 3),
            "rows_processed_this_run": n_fetched, "chunks_resumed": n_resumed,
            "skipped_rows_retried_this_run": n_retried}


def _assemble(plan: _Plan, work: Path, chunk_size: int, dim: int):
    """``(indexed rows, their embeddings, table of skipped rows)`` from the finished chunk files."""
    rows_l, emb_l, srows_l, sreason_l, skind_l = [], [], [], [], []
    for k in range(-(-plan.n // chunk_size)):
        lo, hi = k * chunk_size, min(plan.n, (k + 1) * chunk_size)
        d = read_chunk(chunk_path(work, k), lo, hi, dim)
        if d is None:  # pragma: no cover - only if the work dir is damaged during this very run
            raise InvalidInputError(f"work file {chunk_path(work, k)} became unreadable; rerun build_index to "
                                    "redo it")
        rows_l.append(d["rows"])
        emb_l.append(d["embeddings"])
        srows_l.append(d["skipped_rows"])
        sreason_l.append(d["skipped_reasons"])
        skind_l.append(d["skipped_kind"])
    rows = np.concatenate(rows_l)
    embeddings = np.concatenate(emb_l) if rows.size else np.zeros((0, dim), np.float32)
    srows = np.concatenate(srows_l)
    sreasons = np.concatenate(sreason_l).astype(str) if srows.size else np.zeros(0, "U1")
    skinds = np.concatenate(skind_l).astype("U9") if srows.size else np.zeros(0, "U9")
    if rows.size == 0:
        network = sreasons[skinds == "network"]
        if network.size:  # not an answer about the catalogue: the next run asks again
            raise CutoutError(f"no catalogue row was indexed: {network.size} of {plan.n} were skipped for network "
                              f"reasons (e.g. {network[0]}); {work} is kept: rerun the same command to fetch them "
                              "again", kind="network")
        reasons_seen = sorted(set(sreasons.tolist()))[:3]
        raise InvalidInputError(f"none of the {plan.n} catalogue rows could be indexed; reasons include "
                                f"{reasons_seen} (finished chunks are kept in {work})")
    skipped = Table({"row": srows, "object_id": plan.ids[srows], "ra": plan.ra[srows] * u.deg,
                     "dec": plan.dec[srows] * u.deg, "reason": sreasons, "kind": skinds})
    skipped["row"].description = "catalogue row (0-based)"
    return rows, embeddings, skipped


def _index_catalog(plan: _Plan, rows: np.ndarray) -> Table:
    table = Table()
    table["object_id"] = plan.ids[rows]
    table["ra"] = plan.ra[rows] * u.deg
    table["dec"] = plan.dec[rows] * u.deg
    for c in plan.keep:
        table[c] = plan.catalog[c][rows]
    return table
