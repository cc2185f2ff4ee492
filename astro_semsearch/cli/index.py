"""``astro-semsearch index info``: what an index (single or sharded) holds."""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parser"]


def _format_manifest(index) -> str:
    if getattr(index, "kind", None) == "sharded":
        return _format_sharded(index)
    m = index.manifest
    model = m.get("model") or {}
    lines = [
        f"index        {m.get('name')}",
        f"location     {index.path}",
        f"survey       {m.get('survey')}",
        f"galaxies     {m.get('count')}",
        f"dimension    {m.get('dim')}",
        f"kind         {m.get('kind')} ({m.get('factory')}, metric {m.get('metric')})",
        f"knobs        {json.dumps(m.get('knobs') or {})}",
        f"model        {model.get('name')} (sha256 {model.get('fingerprint')})",
        f"created      {m.get('created')} with astro_semsearch {m.get('package_version')}",
        f"columns      {', '.join(index.table.colnames)}",
        "files",
    ]
    for fn, info in (m.get("files") or {}).items():
        lines.append(f"  {fn:<12} {info['bytes']:>12,d} bytes  sha256 {info['sha256']}")
    return "\n".join(lines)


def _format_sharded(index) -> str:
    m = index.manifest
    model = m.get("model") or {}
    by = m.get("by")
    lines = [
        f"index        {m.get('name')} (sharded by {by}"
        + (f", HEALPix order {m.get('healpix_order')}" if by == "healpix" else "") + ")",
        f"location     {index.path}",
        f"survey       {m.get('survey')}",
        f"galaxies     {index.ntotal}",
        f"dimension    {m.get('dim')}",
        f"model        {model.get('name')} (sha256 {model.get('fingerprint')})",
        f"created      {m.get('created')} with astro_semsearch {m.get('package_version')}",
        f"shards       {index.nshards}",
    ]
    for rec in m.get("shards", []):
        pixel = f"  pixel {rec['healpix_pixel']}" if "healpix_pixel" in rec else ""
        lines.append(f"  {rec['directory']:<20} {rec['count']:>12,d} galaxies  {rec.get('kind')}{pixel}  "
                     f"manifest sha256 {rec['manifest_sha256']}")
    return "\n".join(lines)


def _damaged(target, error: Exception) -> int:
    """What can still be read of an index that does not open, and what is wrong with it."""
    import sys

    print(f"index        {target}")
    for name in ("manifest.json", "shards.json"):
        path = Path(str(target)) / name
        if not path.is_file():
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            print(f"{name:<13}unreadable: {exc}")
            continue
        if isinstance(manifest, dict):
            for key in ("name", "survey", "count", "dim", "kind", "factory", "by"):
                if key in manifest:
                    print(f"{key:<13}{manifest[key]}")
            model = manifest.get("model") if isinstance(manifest.get("model"), dict) else {}
            if model:
                print(f"model        {model.get('name')} (sha256 {model.get('fingerprint')})")
            for fn, info in (manifest.get("files") or {}).items() if isinstance(manifest.get("files"), dict) else []:
                here = (Path(str(target)) / fn).stat().st_size if (Path(str(target)) / fn).is_file() else "missing"
                print(f"  {fn:<12} recorded {info.get('bytes') if isinstance(info, dict) else info} bytes, "
                      f"on disk {here}")
    print(f"astro-semsearch index: error: the index does not open: {error}", file=sys.stderr)
    return 2


def _cli_info(args) -> int:
    from ..exceptions import IndexIntegrityError
    from ..index import open_index

    try:
        index = open_index(args.index)
    except IndexIntegrityError as exc:
        if args.index is None or "://" in str(args.index) or not Path(str(args.index)).exists():
            raise  # nothing on disk to describe: the error alone
        return _damaged(args.index, exc)
    if args.json:
        print(json.dumps(index.manifest, indent=2))
    else:
        print(_format_manifest(index))
    return 0


def add_parser(subparsers) -> None:
    """Register ``index info [DIR]``."""
    p = subparsers.add_parser("index", help="inspect an index")
    sub = p.add_subparsers(dest="index_command", metavar="{info}")
    sub.required = True
    info = sub.add_parser("info", help="print an index's manifest (default: the shipped index)")
    info.add_argument("index", nargs="?", default=None,
                      help="index name, directory or URL#sha256=HEX (default: conf.default_index)")
    info.add_argument("--json", action="store_true", help="print the raw manifest as JSON")
    info.set_defaults(func=_cli_info)
