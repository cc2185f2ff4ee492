"""``astro-semsearch search`` (text) and ``astro-semsearch similar`` (example).

The words of ``search`` form ONE query (``search ring galaxy`` looks for
"ring galaxy"); ``-q TEXT`` adds another phrasing, averaged with it.
Wherever a galaxy is named (``similar TARGET``, ``--like``) it may be an
object id, "RA Dec" in degrees (``150.1 2.2``, ``150.1,2.2``) or
sexagesimal (``"14:30:10.47 +03:36:49.6"``, ``14h30m10.47s +03d36m49.6s``),
or an image file.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..exceptions import InvalidInputError
from ._output import add_output_options, emit_table, output_format, refuse_existing

__all__ = ["add_parser", "parse_target"]

_SEXAGESIMAL = re.compile(r"[:hmsd°'\"]", re.IGNORECASE)


def parse_target(words: list[str]):
    """A `~astropy.coordinates.SkyCoord` for "RA Dec" (degrees or sexagesimal), else the object id / file name."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    text = " ".join(words).strip()
    if len(words) == 1 and Path(text).is_file():
        return text
    parts = text.replace(",", " ").split()
    if len(parts) == 2:
        try:
            ra, dec = float(parts[0]), float(parts[1])
        except ValueError:
            ra = dec = None
        if ra is not None:
            if not (0 <= ra <= 360) or not (-90 <= dec <= 90):
                raise InvalidInputError(f"RA/Dec out of range: RA {ra} must be in [0, 360], Dec {dec} in [-90, 90] "
                                        "deg")
            return SkyCoord(ra * u.deg, dec * u.deg)
    if _SEXAGESIMAL.search(text) and len(parts) in (2, 6):
        try:
            return SkyCoord(text, unit=(u.hourangle, u.deg))
        except ValueError as exc:
            raise InvalidInputError(f"cannot read {text!r} as a sky position: {exc}") from None
    if len(words) != 1:
        raise InvalidInputError(f"give one target: an object id, 'RA DEC' (degrees or sexagesimal) or an image "
                                f"file; got {words}")
    return words[0]


def _check_r90_target(target, r90, flag: str, what: str) -> None:
    """Refuse an R90 for an object id or image file in flag words (the API's own refusal names keywords)."""
    from astropy.coordinates import SkyCoord

    if r90 is not None and target is not None and not isinstance(target, SkyCoord):
        kind = "an image file" if Path(str(target)).is_file() else "an object id"
        raise InvalidInputError(f"{flag} frames the cutout fetched for an 'RA DEC' position; {what} {target!r} is "
                                f"{kind}, embedded as it is: leave {flag} out")


def _check_outputs(args) -> None:
    """Every output checked before any work: existing files, the table format, the image directory."""
    refuse_existing(args.output, args.overwrite)
    refuse_existing(args.html, args.overwrite)
    output_format(args.output, args.format)
    if args.images is not None and not Path(args.images).is_dir():
        raise FileNotFoundError(f"--images {args.images}: no such directory")
    if args.html is not None and Path(args.html).is_dir():
        raise IsADirectoryError(f"--html {args.html} is a directory; give a file name such as hits.html")


def _emit(table, args) -> int:
    status = emit_table(table, args.output, args.overwrite, fmt=args.format)
    if args.html:
        from ..report import write_html

        write_html(table, args.html, images=args.images, overwrite=args.overwrite)
        print(f"wrote an HTML report of {len(table)} hits to {args.html}")
    return status


def _cli_reranker(args):
    """The re-ranker asked for on the command line (None without --rerank)."""
    name = args.rerank
    if (args.good or args.bad) and name != "feedback":
        raise InvalidInputError("--good/--bad mark hits for relevance feedback; add --rerank feedback")
    if name is None:
        return None
    from ..search import get_reranker

    if name == "feedback":
        return get_reranker("feedback", good=args.good or None, bad=args.bad or None)
    if name == "vlm" and args.vlm_model:
        return get_reranker("vlm", model=args.vlm_model)
    return get_reranker(name)


def _queries(args) -> str | list[str]:
    phrases = ([" ".join(args.words)] if args.words else []) + list(args.query)
    if not phrases:
        raise InvalidInputError("give a description to search for, e.g. astro-semsearch search ring galaxy")
    return phrases[0] if len(phrases) == 1 else phrases


def _cli_search(args) -> int:
    from astropy import units as u

    from ..search import semantic_search

    query = _queries(args)
    _check_outputs(args)
    if args.like_r90 is not None and not args.like:
        raise InvalidInputError("--like-r90 frames the cutout of a --like position; give --like as well")
    like = parse_target(args.like.split()) if args.like else None
    _check_r90_target(like, args.like_r90, "--like-r90", "--like")
    like_r90 = None if args.like_r90 is None else args.like_r90 * u.arcsec
    hits = semantic_search(
        query, k=args.k, index=args.index, model=args.model,
        negative=(args.negative if len(args.negative) > 1 else args.negative[0]) if args.negative else None,
        negative_weight=args.negative_weight, like=like, like_weight=args.like_weight,
        like_r90=like_r90,
        min_separation=args.min_separation * u.arcsec, rerank=_cli_reranker(args), rerank_top_n=args.rerank_top_n,
        negation=not args.no_negation,
    )
    return _emit(hits, args)


def _cli_similar(args) -> int:
    from astropy import units as u

    from ..search import similar_to

    target = parse_target(args.target)
    _check_r90_target(target, args.r90, "--r90", "the target")
    _check_outputs(args)
    hits = similar_to(target, k=args.k, index=args.index, model=args.model,
                      min_separation=args.min_separation * u.arcsec, max_distance=args.max_distance * u.arcsec,
                      r90=None if args.r90 is None else args.r90 * u.arcsec)
    return _emit(hits, args)


def _common(p) -> None:
    p.add_argument("-k", type=int, default=None,
                   help="number of galaxies to return (default: conf.default_k, 20)")
    p.add_argument("--index", default=None,
                   help="index name, directory (single or sharded), or archive URL#sha256=HEX (default: the "
                        "shipped index)")
    p.add_argument("--model", default=None, help="model name or directory (default: the index's own model)")
    p.add_argument("--min-separation", type=float, default=5.0, metavar="ARCSEC",
                   help="drop hits closer than this to a better hit (arcsec, default 5; 0 keeps all)")
    add_output_options(p)
    p.add_argument("--html", default=None, metavar="FILE",
                   help="also write a self-contained HTML report with thumbnails and sky-viewer links")
    p.add_argument("--images", default=None, metavar="DIR",
                   help="for --html: local images named <object_id>.jpg/.png/.fits (default: the index's own "
                        "images, else Legacy Survey cutouts)")


def add_parser(subparsers) -> None:
    """Register the ``search`` and ``similar`` subcommands."""
    p = subparsers.add_parser("search", help="find galaxies matching a description",
                              description="Find the galaxies whose images best match a description. The words "
                                          "form one query; -q adds more phrasings (averaged).")
    p.add_argument("words", nargs="*", metavar="WORD",
                   help="the description, e.g. ring galaxy (quotes are not needed)")
    p.add_argument("-q", "--query", action="append", default=[], metavar="TEXT",
                   help="another phrasing of the query, averaged with the others (repeatable)")
    p.add_argument("--negative", action="append", default=[], metavar="TEXT",
                   help="steer away from TEXT (repeatable)")
    p.add_argument("--negative-weight", type=float, default=0.5,
                   help="strength of --negative and of negations in the query (default 0.5)")
    p.add_argument("--no-negation", action="store_true",
                   help="search the words as written: do not read 'without X', 'no X', 'non-X' as negatives")
    p.add_argument("--like", default=None, metavar="TARGET",
                   help="mix an example galaxy into the query: an object id, 'RA DEC' or an image file")
    p.add_argument("--like-weight", type=float, default=0.5, help="weight of --like in [0, 1] (default 0.5)")
    p.add_argument("--like-r90", type=float, default=None, metavar="ARCSEC",
                   help="for a --like position that is not indexed: its R90 (arcsec; about 2.5 x a Tractor "
                        "shape_r), to frame the fetched cutout as the model was trained")
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

    p = subparsers.add_parser("similar", help="find galaxies that look like an example",
                              description="Find the galaxies that look most like an example galaxy.")
    p.add_argument("target", nargs="+",
                   help="an object id, 'RA DEC' in degrees or sexagesimal (e.g. 14:30:10.47 +03:36:49.6), or an "
                        "image file (FITS/JPEG/PNG)")
    p.add_argument("--max-distance", type=float, default=1.0, metavar="ARCSEC",
                   help="for a position: how far the nearest indexed galaxy may be (arcsec, default 1)")
    p.add_argument("--r90", type=float, default=None, metavar="ARCSEC",
                   help="for a position that is not indexed: the galaxy's R90 (arcsec; about 2.5 x a Tractor "
                        "shape_r), to frame the fetched cutout as the model was trained")
    _common(p)
    p.set_defaults(func=_cli_similar)
