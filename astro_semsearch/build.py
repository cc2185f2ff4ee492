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
``skipped.ecsv`` in the index directory and counted in
``index.manifest["build"]``.

Long builds are resumable. The work is done in chunks of ``chunk_size`` rows;
each finished chunk is written atomically to ``<out>.partial/chunk-NNNNN.npz``
next to a manifest holding the sha256 of the catalogue content and the model
fingerprint. Kill the job at any time and run the same command again: the
finished chunks are reused (nothing is fetched or embedded twice, nothing is
lost) and chunks from another catalogue or model are refused. At the end the
index is saved atomically to ``out`` and the work directory is removed.

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
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy import units as u
from astropy.table import Table

from ._utils import atomic_write_bytes, column_degrees, find_column, read_catalog
from ._utils import progress as _progress
from .config import conf

__all__ = ["build_index", "add_cli"]

log = logging.getLogger(__name__)

_WORK_FORMAT = 1
_RA_NAMES = ("ra", "ra_deg", "raj2000", "_raj2000", "ra_icrs", "radeg", "alpha")
_DEC_NAMES = ("dec", "dec_deg", "dej2000", "_dej2000", "decj2000", "de_icrs", "dec_icrs", "dedeg", "decdeg", "delta")
_FILE_NAMES = ("file", "filename", "file_name", "path", "image", "image_path")


# --------------------------------------------------------------------------- catalogue handling
def _content_sha256(table: Table, columns: Sequence[str]) -> str:
    """sha256 of the catalogue content that the build depends on (column names and values)."""
    h = hashlib.sha256()
    for name in columns:
        col = table[name]
        arr = np.asarray(col.filled() if hasattr(col, "filled") else col)
        if arr.dtype.kind == "O":
            arr = arr.astype(str)
        h.update(name.encode() + b"\0" + str(arr.dtype.str).encode() + b"\0" + str(getattr(col, "unit", "")).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- images of one chunk
def _local_images(directory: Path, files: Sequence[str]):
    """Load local files; return (list of arrays or None, list of reasons)."""
    from .cutouts import _is_blank
    from .images import load_image

    arrays, reasons = [], []
    for fn in files:
        path = directory / str(fn)
        if not path.is_file():
            arrays.append(None)
            reasons.append(f"file not found: {path.name}")
            continue
        try:
            arr = load_image(str(path))
        except Exception as exc:
            arrays.append(None)
            reasons.append(f"cannot read {path.name}: {exc}")
            continue
        if _is_blank(arr):
            arrays.append(None)
            reasons.append(f"blank image (no signal): {path.name}")
            continue
        arrays.append(arr)
        reasons.append("")
    return arrays, reasons


def _remote_images(source, ra, dec, *, size, pixscale, layer, bands, format):
    t = source.get_cutouts((ra, dec), size=size, pixscale=pixscale, layer=layer, bands=bands, format=format,
                           errors="flag", progress=False)
    arrays, reasons = [], []
    for row_ok, in_fp, err, img in zip(t["ok"], t["in_footprint"], t["error"], t["image"]):
        if not row_ok:
            arrays.append(None)
            reasons.append(str(err) or "cutout failed")
        elif not in_fp:
            arrays.append(None)
            reasons.append("outside the survey footprint (blank cutout)")
        else:
            arrays.append(np.asarray(img))
            reasons.append("")
    return arrays, reasons


def _stack(arrays: list) -> Any:
    """A single (N, ...) array when all images share a shape (faster), else the list."""
    if arrays and all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    return arrays


# --------------------------------------------------------------------------- work directory
def _chunk_path(work: Path, k: int) -> Path:
    return work / f"chunk-{k:05d}.npz"


def _write_chunk(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _read_chunk(path: Path, lo: int, hi: int, dim: int) -> dict | None:
    """A finished chunk's content, or None if it is unreadable or inconsistent (then it is redone)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:  # truncated by a crash of another tool, disk full, ...
        log.warning("work file %s is unreadable (%s); redoing that chunk", path, exc)
        return None
    try:
        rows, emb, srows = d["rows"], d["embeddings"], d["skipped_rows"]
        good = (len(rows) == len(emb) and (emb.ndim == 2 and (len(emb) == 0 or emb.shape[1] == dim))
                and len(rows) + len(srows) == hi - lo
                and np.all((rows >= lo) & (rows < hi)) and np.all((srows >= lo) & (srows < hi)))
    except KeyError:
        good = False
    if not good:
        log.warning("work file %s does not match its chunk; redoing it", path)
        return None
    return d


def _open_work_dir(work: Path, expected: dict) -> None:
    manifest = work / "manifest.json"
    if work.is_dir() and not manifest.is_file() and not any(work.iterdir()):
        # Killed between creating the directory and writing its manifest.
        work.rmdir()
    if work.exists():
        if not manifest.is_file():
            raise ValueError(f"{work} exists but is not an astro_semsearch build work directory (no manifest.json); "
                             "move it away or delete it")
        found = json.loads(manifest.read_text(encoding="utf-8"))
        diffs = [k for k in expected if found.get(k) != expected[k]]
        if diffs:
            detail = "; ".join(f"{k}: work dir has {found.get(k)!r}, this build {expected[k]!r}" for k in diffs)
            raise ValueError(
                f"the unfinished build in {work} was made from a different catalogue, model or settings "
                f"({detail}). Refusing to mix them: delete {work} to start again, or rerun with the same inputs."
            )
        return
    work.mkdir(parents=True)
    atomic_write_bytes(manifest, (json.dumps(expected, indent=2) + "\n").encode())


# --------------------------------------------------------------------------- the build
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
    size: int = 256,
    pixscale: float = 0.262,
    layer: str | None = None,
    bands: str = "grz",
    format: str | None = None,
    images: str | os.PathLike | None = None,
    file_column: str | None = None,
    name: str | None = None,
    survey: str | None = None,
    kind: str = "auto",
    overwrite: bool = False,
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
    source : {"legacysurvey", "hips2fits"} or cutout service, optional
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
        ``source="hips2fits"``, whose default HiPS is a colour one).
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
    progress : bool, optional
        Progress bar over chunks (default ``conf.show_progress``).

    Returns
    -------
    `~astro_semsearch.GalaxyIndex`
        The saved index; ``index.manifest["build"]`` holds the counts, the
        skipped rows (first 100) and the throughput (cutouts/s, embeddings/s).

    Raises
    ------
    FileExistsError
        ``out`` exists and ``overwrite`` is False.
    ValueError
        A column is missing, identifiers are not unique, the work directory
        belongs to another catalogue or model, or no row could be indexed.
    """
    from .index import GalaxyIndex

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass overwrite=True to replace it)")
    if isinstance(batch_size, bool) or int(batch_size) < 1 or isinstance(chunk_size, bool) or int(chunk_size) < 1:
        raise ValueError(f"batch_size and chunk_size must be positive integers, got {batch_size}, {chunk_size}")
    chunk_size = int(chunk_size)

    # ---- catalogue
    catalog, cat_path = read_catalog(catalog)
    if id_column not in catalog.colnames:
        raise ValueError(f"id column {id_column!r} is not in the catalogue; it has {catalog.colnames} "
                         "(pass id_column=...)")
    ra_col = find_column(catalog, ra_column, _RA_NAMES, "RA")
    dec_col = find_column(catalog, dec_column, _DEC_NAMES, "Dec")
    ra, dec = column_degrees(catalog[ra_col], ra_col), column_degrees(catalog[dec_col], dec_col)
    if ((ra < 0) | (ra >= 360)).any() or ((dec < -90) | (dec > 90)).any():
        bad = np.flatnonzero((ra < 0) | (ra >= 360) | (dec < -90) | (dec > 90))
        raise ValueError(f"RA must be in [0, 360) and Dec in [-90, 90] deg; bad rows {bad[:5].tolist()}")
    ids = np.asarray(catalog[id_column]).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"identifiers in {id_column!r} must be unique; repeated: {uniq[counts > 1][:5].tolist()}")
    fcol = None
    if images is not None:
        images = Path(images)
        if not images.is_dir():
            raise FileNotFoundError(f"image directory {images} does not exist")
        fcol = find_column(catalog, file_column, _FILE_NAMES, "file")
    used = {id_column, ra_col, dec_col} | ({fcol} if fcol else set())
    if keep_columns is None:
        # Plain columns only: object and mixin columns (SkyCoord, Time) do not go into a FITS catalogue.
        keep = [c for c in catalog.colnames
                if c not in used and getattr(getattr(catalog[c], "dtype", None), "kind", "O") != "O"]
        if fcol:
            keep.append(fcol)
    else:
        keep = list(keep_columns)
        missing = [c for c in keep if c not in catalog.colnames]
        if missing:
            raise ValueError(f"keep_columns not in the catalogue: {missing}; it has {catalog.colnames}")
    keep = [c for c in keep if c not in (id_column, ra_col, dec_col)]
    clash = [c for c in keep if c in ("object_id", "ra", "dec")]
    if clash:
        raise ValueError(f"catalogue columns {clash} would clash with the index's own object_id/ra/dec; "
                         "drop them with keep_columns")

    # ---- model and source
    if model is None:
        from .model import load_model

        model = load_model()
    dim = int(model.dim)
    fingerprint = str(getattr(model, "fingerprint", ""))
    if images is None:
        from .cutouts import _resolve_source

        src = source if (source is not None and hasattr(source, "get_cutouts")) else _resolve_source(source)
        from .cutouts import Hips2FitsCutouts, LegacySurvey

        # The service (not a subclass's name) decides what the cutouts look like.
        src_name = next((c.__name__ for c in (LegacySurvey, Hips2FitsCutouts) if isinstance(src, c)),
                        type(src).__name__)
        if format is None:
            # A colour HiPS is RGB already: its JPEG is what the model expects.
            format = "jpeg" if isinstance(src, Hips2FitsCutouts) else "fits"
    else:
        src, src_name = None, f"local:{images.resolve().name}"

    n = len(catalog)
    nchunks = -(-n // chunk_size)
    expected = {
        "work_format": _WORK_FORMAT,
        "catalog_sha256": _content_sha256(catalog, sorted(used | set(keep))),
        "catalog_rows": n,
        "model_fingerprint": fingerprint,
        "model_dim": dim,
        "chunk_size": chunk_size,
        "request": {"source": src_name, "size": int(size), "pixscale": float(pixscale), "layer": layer,
                    "bands": bands, "format": format},
        # Where the images were, so thumbnails/plots can show them later.
        "images": None if images is None else {"directory": str(images.resolve()), "file_column": fcol},
    }
    work = out.parent / f"{out.name}.partial"
    _open_work_dir(work, expected)

    # ---- chunks
    t_fetch = t_embed = 0.0
    n_fetched = n_embedded = n_resumed = 0
    show = conf.show_progress if progress is None else bool(progress)
    for k in _progress(range(nchunks), desc="build index", unit="chunk", disable=not show):
        lo, hi = k * chunk_size, min(n, (k + 1) * chunk_size)
        path = _chunk_path(work, k)
        if path.exists() and _read_chunk(path, lo, hi, dim) is not None:
            n_resumed += 1
            continue
        t0 = time.perf_counter()
        if images is not None:
            arrays, reasons = _local_images(images, [str(v) for v in catalog[fcol][lo:hi]])
        else:
            arrays, reasons = _remote_images(src, ra[lo:hi], dec[lo:hi], size=size, pixscale=pixscale,
                                             layer=layer, bands=bands, format=format)
        t1 = time.perf_counter()
        good = [i for i, a in enumerate(arrays) if a is not None]
        if good:
            emb = np.asarray(model.embed_images(_stack([arrays[i] for i in good]), batch_size=int(batch_size)),
                             dtype=np.float32)
        else:
            emb = np.zeros((0, dim), np.float32)
        t2 = time.perf_counter()
        if emb.shape != (len(good), dim):
            raise ValueError(f"the model returned embeddings of shape {emb.shape}, expected {(len(good), dim)}")
        bad = [i for i in range(hi - lo) if arrays[i] is None]
        _write_chunk(
            path,
            rows=np.asarray(good, dtype=np.int64) + lo,
            embeddings=emb,
            skipped_rows=np.asarray(bad, dtype=np.int64) + lo,
            skipped_reasons=np.asarray([reasons[i] for i in bad], dtype=str) if bad else np.zeros(0, "U1"),
        )
        t_fetch += t1 - t0
        t_embed += t2 - t1
        n_fetched += hi - lo
        n_embedded += len(good)

    # ---- assemble
    rows_l, emb_l, srows_l, sreason_l = [], [], [], []
    for k in range(nchunks):
        lo, hi = k * chunk_size, min(n, (k + 1) * chunk_size)
        d = _read_chunk(_chunk_path(work, k), lo, hi, dim)
        if d is None:  # pragma: no cover - only if the work dir is damaged during this very run
            raise ValueError(f"work file {_chunk_path(work, k)} became unreadable; rerun build_index to redo it")
        rows_l.append(d["rows"])
        emb_l.append(d["embeddings"])
        srows_l.append(d["skipped_rows"])
        sreason_l.append(d["skipped_reasons"])
    rows = np.concatenate(rows_l)
    embeddings = np.concatenate(emb_l) if rows.size else np.zeros((0, dim), np.float32)
    srows = np.concatenate(srows_l)
    sreasons = np.concatenate(sreason_l).astype(str) if srows.size else np.zeros(0, "U1")

    skipped = Table({"object_id": ids[srows], "ra": ra[srows] * u.deg, "dec": dec[srows] * u.deg,
                     "reason": sreasons})
    if rows.size == 0:
        reasons_seen = sorted(set(sreasons.tolist()))[:3]
        raise ValueError(f"none of the {n} catalogue rows could be indexed; reasons include {reasons_seen} "
                         f"(finished chunks are kept in {work})")

    table = Table()
    table["object_id"] = ids[rows]
    table["ra"] = ra[rows] * u.deg
    table["dec"] = dec[rows] * u.deg
    for c in keep:
        table[c] = catalog[c][rows]

    index = GalaxyIndex.build(embeddings, table, kind=kind, model=model, name=name or out.name, survey=survey)
    stats = {
        "cutouts_per_s": (n_fetched / t_fetch) if t_fetch > 0 else None,
        "embeddings_per_s": (n_embedded / t_embed) if t_embed > 0 else None,
        "fetch_seconds": round(t_fetch, 3),
        "embed_seconds": round(t_embed, 3),
        "rows_processed_this_run": n_fetched,
        "chunks_resumed": n_resumed,
    }
    index.manifest["build"] = {
        "catalog": cat_path.name if cat_path is not None else None,
        "catalog_sha256": expected["catalog_sha256"],
        "request": expected["request"],
        "images": expected["images"],
        "n_input": n,
        "n_indexed": int(rows.size),
        "n_skipped": int(srows.size),
        "skipped": [{"object_id": str(i), "reason": str(r)} for i, r in zip(ids[srows][:100], sreasons[:100])],
        "throughput": stats,
    }
    index.save(out, overwrite=overwrite)
    # Written after the atomic save: the full list of skipped rows, beside the index files.
    buf = io.StringIO()
    skipped.write(buf, format="ascii.ecsv")
    atomic_write_bytes(out / "skipped.ecsv", buf.getvalue().encode())
    shutil.rmtree(work, ignore_errors=True)

    def _fmt(v):
        return "n/a" if v is None else f"{v:.1f}"

    log.info("built index %s: %d galaxies indexed, %d skipped; %s cutouts/s, %s embeddings/s",
             out, rows.size, srows.size, _fmt(stats["cutouts_per_s"]), _fmt(stats["embeddings_per_s"]))
    return index


# --------------------------------------------------------------------------- command line
def _cli_build(args) -> int:
    model = None
    if args.model:
        from .model import load_model

        model = load_model(args.model)
    index = build_index(
        args.catalog, out=args.out, source=args.source, model=model, batch_size=args.batch_size,
        chunk_size=args.chunk_size, id_column=args.id_column, ra_column=args.ra_column, dec_column=args.dec_column,
        size=args.size, pixscale=args.pixscale, layer=args.layer, bands=args.bands, format=args.format,
        images=args.images, file_column=args.file_column, name=args.name, kind=args.kind, overwrite=args.overwrite,
    )
    b = index.manifest["build"]
    tp = b["throughput"]

    def _fmt(v):
        return "n/a" if v is None else f"{v:.1f}"

    print(f"wrote {args.out}: {b['n_indexed']} galaxies indexed, {b['n_skipped']} skipped"
          + (f" (see {Path(args.out) / 'skipped.ecsv'})" if b["n_skipped"] else ""))
    print(f"throughput: {_fmt(tp['cutouts_per_s'])} cutouts/s, {_fmt(tp['embeddings_per_s'])} embeddings/s"
          + (f"; {tp['chunks_resumed']} chunk(s) resumed from an earlier run" if tp["chunks_resumed"] else ""))
    return 0


def add_cli(subparsers) -> None:
    """Register ``astro-semsearch build-index``."""
    p = subparsers.add_parser(
        "build-index",
        help="embed a catalogue's galaxies (Legacy Survey cutouts or local images) into a searchable index",
        description="Fetch a cutout for every row of CATALOG (or read it from --images), embed it and write an "
                    "index directory. Rerun the same command after an interruption to resume.",
    )
    p.add_argument("catalog", help="catalogue file (ECSV, FITS, VOTable, CSV) with an id column and RA/Dec in deg")
    p.add_argument("--out", required=True, help="index directory to write")
    p.add_argument("--images", default=None, help="read images from this directory instead of fetching cutouts")
    p.add_argument("--file-column", default=None, help="catalogue column with each row's file name (with --images)")
    p.add_argument("--id-column", default="object_id", help="identifier column (default: object_id)")
    p.add_argument("--ra-column", default=None, help="RA column (default: found by name)")
    p.add_argument("--dec-column", default=None, help="Dec column (default: found by name)")
    p.add_argument("--size", type=int, default=256, help="cutout size in pixels (default 256, at most 3000)")
    p.add_argument("--pixscale", type=float, default=0.262, help="arcsec per pixel (default 0.262)")
    p.add_argument("--layer", default=None, help="survey layer (default ls-dr10) or HiPS id for hips2fits")
    p.add_argument("--bands", default="grz", help="FITS bands (default grz)")
    p.add_argument("--format", choices=["fits", "jpeg"], default=None,
                   help="cutout format (default fits; jpeg with hips2fits)")
    p.add_argument("--source", choices=["legacysurvey", "hips2fits"], default=None, help="cutout service")
    p.add_argument("--model", default=None, help="model name or directory (default: conf.default_model)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--chunk-size", type=int, default=256, help="rows per resumable chunk (default 256)")
    p.add_argument("--name", default=None, help="index name (default: the --out directory's name)")
    p.add_argument("--kind", default="auto", help="index kind: auto, flat, hnsw, ivfpq (default auto)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    p.set_defaults(func=_cli_build)
