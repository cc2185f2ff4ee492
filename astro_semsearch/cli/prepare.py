"""``astro-semsearch prepare-text-encoder``: export MiniLM for ONNX Runtime once, so searches start faster."""
from __future__ import annotations

__all__ = ["add_parser"]


def _cli_prepare(args) -> int:
    import time

    from ..model.onnx_text import META_FILE, ONNX_FILE, prepare_text_encoder
    from ..model.text import text_backend

    t0 = time.perf_counter()
    directory = prepare_text_encoder(force=args.force)
    print(f"ONNX text encoder ready in {time.perf_counter() - t0:.1f} s: {directory / ONNX_FILE}")
    print(f"  record: {directory / META_FILE}")
    print(f"  text backend now: {text_backend()} (conf.text_backend)")
    return 0


def add_parser(subparsers) -> None:
    """Register ``prepare-text-encoder [--force]``."""
    p = subparsers.add_parser(
        "prepare-text-encoder",
        help="export the MiniLM text encoder for ONNX Runtime (needs astro_semsearch[fast]); text queries then "
             "run about three times faster and start without torch",
    )
    p.add_argument("--force", action="store_true", help="export again even if a valid export exists")
    p.set_defaults(func=_cli_prepare)
