"""``astro-semsearch search`` (text) and ``astro-semsearch similar`` (example)."""
from __future__ import annotations

from ..exceptions import InvalidInputError
from ._output import emit_table, refuse_existing

__all__ = ["add_parser"]


def _parse_target(words: list[str]):
    """'RA DEC' in degrees (one or two words), an existing image path, or an object id."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    parts = " ".join(words).replace(",", " ").split()
    if len(parts) == 2:
        try:
            ra, dec = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            if not (0 <= ra <= 360) or not (-90 <= dec <= 90):
                raise InvalidInputError(f"RA/Dec out of range: RA {ra} must be in [0, 360], Dec {dec} in [-90, 90] deg")
            return SkyCoord(ra * u.deg, dec * u.deg)
    if len(words) != 1:
        raise InvalidInputError(f"give one target: an object id, 'RA DEC' in degrees, or an image file; got {words}")
    return words[0]


def _emit(table, args) -> int:
    html = getattr(args, "html", None)
    # Checked before anything is written, so a refused run leaves no half of its outputs.
    refuse_existing(html, args.overwrite)
    status = emit_table(table, args.output, args.overwrite)
    if html:
        from ..report import write_html

        write_html(table, html, images=getattr(args, "images", None), overwrite=args.overwrite)
        print(f"wrote an HTML report of {len(table)} hits to {html}")
    return status


def _cli_reranker(args):
    """The re-ranker asked for on the command line (None without --rerank)."""
    name = getattr(args, "rerank", None)
    if (getattr(args, "good", None) or getattr(args, "bad", None)) and name != "feedback":
        raise InvalidInputError("--good/--bad mark hits for relevance feedback; add --rerank feedback")
    if name is None:
        return None
    from ..search import get_reranker

    if name == "feedback":
        return get_reranker("feedback", good=args.good or None, bad=args.bad or None)
    if name == "vlm" and getattr(args, "vlm_model", None):
        return get_reranker("vlm", model=args.vlm_model)
    return get_reranker(name)


def _cli_search(args) -> int:
    from astropy import units as u

    from ..search import semantic_search

    hits = semantic_search(
        args.query if len(args.query) > 1 else args.query[0],
        k=args.k,
        index=args.index,
        model=args.model,
        negative=(args.negative if len(args.negative) > 1 else args.negative[0]) if args.negative else None,
        negative_weight=args.negative_weight,
        min_separation=args.min_separation * u.arcsec,
        rerank=_cli_reranker(args),
        rerank_top_n=args.rerank_top_n,
    )
    return _emit(hits, args)


def _cli_similar(args) -> int:
    from astropy import units as u

    from ..search import similar_to

    hits = similar_to(
        _parse_target(args.target),
        k=args.k,
        index=args.index,
        model=args.model,
        min_separation=args.min_separation * u.arcsec,
        max_distance=args.max_distance * u.arcsec,
    )
    return _emit(hits, args)


def _common(p) -> None:
    p.add_argument("-k", type=int, default=20, help="number of galaxies to return (default 20)")
    p.add_argument("--index", default=None,
                   help="index name, directory, or archive URL#sha256=HEX (default: the shipped index)")
    p.add_argument("--model", default=None, help="model name or directory (default: the index's own model)")
    p.add_argument("--min-separation", type=float, default=5.0, metavar="ARCSEC",
                   help="drop hits closer than this to a better hit (arcsec, default 5; 0 keeps all)")
    p.add_argument("-o", "--output", default=None,
                   help="write the table here (format from the extension: .ecsv, .fits, .csv, .vot ...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--html", default=None, metavar="FILE",
                   help="also write a self-contained HTML report with thumbnails and sky-viewer links")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="for --html: local images named <object_id>.jpg/.png/.fits (default: the index's own "
                        "images, else Legacy Survey cutouts)")


def add_parser(subparsers) -> None:
    """Register the ``search`` and ``similar`` subcommands."""
    p = subparsers.add_parser("search", help="find galaxies matching a description")
    p.add_argument("query", nargs="+", help="description(s), e.g. \"ring galaxy\"; several are averaged")
    p.add_argument("--negative", action="append", default=[], metavar="TEXT", help="steer away from TEXT (repeatable)")
    p.add_argument("--negative-weight", type=float, default=0.5, help="strength of --negative (default 0.5)")
    p.add_argument("--rerank", default=None, choices=["feedback", "expansion", "galaxidnet", "vlm"],
                   help="re-rank the first --rerank-top-n hits (see the Re-ranking docs for which help)")
    p.add_argument("--rerank-top-n", type=int, default=100, metavar="N",
                   help="how many hits the re-ranker sees (default 100)")
    p.add_argument("--good", action="append", default=[], metavar="ID",
                   help="with --rerank feedback: an object id you judge a good hit (repeatable)")
    p.add_argument("--bad", action="append", default=[], metavar="ID",
                   help="with --rerank feedback: an object id you judge a bad hit (repeatable)")
    p.add_argument("--vlm-model", default=None, metavar="NAME_OR_PATH",
                   help="with --rerank vlm: the local vision-language model (transformers name or directory)")
    _common(p)
    p.set_defaults(func=_cli_search)

    p = subparsers.add_parser("similar", help="find galaxies that look like an example")
    p.add_argument("target", nargs="+", help="an object id, \"RA DEC\" in degrees, or an image file (FITS/JPEG/PNG)")
    p.add_argument("--max-distance", type=float, default=1.0, metavar="ARCSEC",
                   help="for RA DEC: how far the nearest indexed galaxy may be (arcsec, default 1)")
    _common(p)
    p.set_defaults(func=_cli_similar)
