"""``astro-semsearch build-index``: a catalogue's galaxies embedded into an index."""
from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser"]


def _cli_build(args) -> int:
    from ..build import build_index

    source = args.source
    if source == "bricks":
        from ..cutouts import LegacySurveyBricks

        where = args.bricks or None
        remote = where is not None and "://" in where
        source = LegacySurveyBricks(None if remote else where, url=where if remote else None,
                                    bricks=args.bricks_table, brick_size=args.brick_size)
    model = None
    if args.model:
        from ..model import load_model

        model = load_model(args.model)
    index = build_index(
        args.catalog, out=args.out, source=source, model=model, batch_size=args.batch_size,
        chunk_size=args.chunk_size, id_column=args.id_column, ra_column=args.ra_column, dec_column=args.dec_column,
        size=args.size, pixscale=args.pixscale, layer=args.layer,
        size_column=False if args.fixed_framing else args.size_column, bands=args.bands, format=args.format,
        images=args.images, file_column=args.file_column, name=args.name, kind=args.kind, overwrite=args.overwrite,
        retry_skipped=args.retry_skipped,
    )
    b = index.manifest["build"]
    tp = b["throughput"]

    def _fmt(v):
        return "n/a" if v is None else f"{v:.1f}"

    print(f"wrote {args.out}: {b['n_indexed']} galaxies indexed, {b['n_skipped']} skipped"
          + (f" (see {Path(args.out) / 'skipped.ecsv'})" if b["n_skipped"] else ""))
    fr = b.get("framing")
    if fr:
        print(f"framing by {index.manifest['build']['request']['framing']['size_column']}: {fr['size']} framed by "
              f"size, {fr['min']} at the native scale, {fr['max']} cut to the widest field, {fr['fixed']} without a "
              "size (fixed request)")
    if b.get("n_skipped_network"):
        print(f"{b['n_skipped_network']} of the skipped rows failed for network reasons: run the same command with "
              "--overwrite to fetch them again (the finished work is kept)")
    print(f"throughput: {_fmt(tp['cutouts_per_s'])} cutouts/s, {_fmt(tp['embeddings_per_s'])} embeddings/s"
          + (f"; {tp['chunks_resumed']} chunk(s) resumed from an earlier run" if tp["chunks_resumed"] else ""))
    return 0


def add_parser(subparsers) -> None:
    """Register ``astro-semsearch build-index``."""
    p = subparsers.add_parser(
        "build-index",
        help="embed a catalogue's galaxies (Legacy Survey cutouts or local images) into a searchable index",
        description="Fetch a cutout for every row of CATALOG (or read it from --images), embed it and write an "
                    "index directory. Rerun the same command after an interruption (or a network outage) to "
                    "resume; rows skipped for network reasons are fetched again.",
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
    p.add_argument("--size-column", default=None,
                   help="column of galaxy sizes to frame each cutout by (default: found by name: shape_r, "
                        "petroR90_r, D26); each cutout spans the model's frame_r90 (6.4) x R90")
    p.add_argument("--fixed-framing", action="store_true",
                   help="ask for --size and --pixscale for every galaxy, whatever its size (no warning)")
    p.add_argument("--layer", default=None, help="survey layer (default ls-dr10) or HiPS id for hips2fits")
    p.add_argument("--bands", default="grz", help="FITS bands (default grz)")
    p.add_argument("--format", choices=["fits", "jpeg"], default=None,
                   help="cutout format (default fits; jpeg with hips2fits)")
    p.add_argument("--source", choices=["legacysurvey", "hips2fits", "bricks"], default=None,
                   help="cutout service, or 'bricks': stamps resampled from the survey's brick images (--bricks)")
    p.add_argument("--bricks", default=None,
                   help="with --source bricks: a local mirror of brick images, or a base URL to fetch them from "
                        "(default: conf.legacysurvey_bricks_url)")
    p.add_argument("--bricks-table", default=None, help="with --source bricks: the survey-bricks table (FITS/ECSV)")
    p.add_argument("--brick-size", type=int, default=3600, help="with --source bricks: pixels a side of a brick "
                                                                     "image (default 3600)")
    p.add_argument("--model", default=None, help="model name or directory (default: conf.default_model)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--chunk-size", type=int, default=256, help="rows per resumable chunk (default 256)")
    p.add_argument("--name", default=None, help="index name (default: the --out directory's name)")
    p.add_argument("--kind", default="auto", help="index kind: auto, flat, hnsw, ivfpq (default auto)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    p.add_argument("--retry-skipped", action="store_true",
                   help="when resuming, fetch again every row skipped for any reason (blank, HTTP 4xx, unreadable); "
                        "rows skipped for network reasons are always fetched again")
    p.set_defaults(func=_cli_build)
