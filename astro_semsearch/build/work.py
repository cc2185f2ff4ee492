"""The work directory of a resumable build: one atomically written file per finished chunk.

A build works in chunks of rows; each finished chunk is written atomically
to ``<out>.partial/chunk-NNNNN.npz`` next to a manifest naming the
catalogue content, the model and the settings. A rerun reuses the finished
chunks of the same inputs and refuses a work directory of other inputs.

A chunk file holds the catalogue rows embedded (``rows``, ``embeddings``)
and those skipped (``skipped_rows``, ``skipped_reasons``, ``skipped_kind``).
A skip is ``"network"`` (a connection error, a time-out, HTTP 5xx/429 after
the retries: asking again later may work, and a resumed build does) or
``"permanent"`` (outside the footprint, HTTP 4xx, an unreadable image: only
``retry_skipped`` asks again). Chunk files written before kinds were
recorded get them from their reasons (`infer_kind`).
"""
from __future__ import annotations

import functools
import io
import json
import logging
import re
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, output_lock
from ..exceptions import InvalidInputError

__all__ = ["chunk_path", "write_chunk", "read_chunk", "open_work_dir", "infer_kind", "rows_to_redo", "merge_chunk",
           "locked_output", "WORK_FORMAT", "SKIP_KINDS"]

log = logging.getLogger(__name__)

#: Version of the work-directory layout (``skipped_kind`` is optional in it: see `infer_kind`).
WORK_FORMAT = 1

#: Why a row was skipped: a resumed build fetches ``"network"`` rows again, ``"permanent"`` ones only when asked.
SKIP_KINDS = ("network", "permanent")

def locked_output(build):
    """Run ``build(..., out=...)`` holding the lock of ``out``: one build per output directory at a time.

    A second build into the same ``out`` (another process, another thread)
    gets `~astro_semsearch.exceptions.LockedError` naming the first, before
    it touches the work directory; the index save inside re-enters the same
    lock (`astro_semsearch._io.output_lock`).
    """
    @functools.wraps(build)
    def locked(*args, **kwargs):
        if kwargs.get("out") is None:  # the build itself says that out is required
            return build(*args, **kwargs)
        with output_lock(Path(kwargs["out"])):
            return build(*args, **kwargs)

    return locked


_PERMANENT = re.compile(r"http 4(?!08|29)\d\d|footprint|blank|file not found|cannot read|corrupt|too large")


def chunk_path(work: Path, k: int) -> Path:
    return work / f"chunk-{k:05d}.npz"


def write_chunk(path: Path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_chunk(path: Path, lo: int, hi: int, dim: int) -> dict | None:
    """A finished chunk's content, or None if it is unreadable or inconsistent (then it is redone)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as exc:  # truncated by a crash of another tool, disk full, ...
        log.warning("work file %s is unreadable (%s); redoing that chunk", path, exc)
        return None
    try:
        rows, emb, srows, reasons = d["rows"], d["embeddings"], d["skipped_rows"], d["skipped_reasons"]
        kinds = d.get("skipped_kind")
        good = (len(rows) == len(emb) and (emb.ndim == 2 and (len(emb) == 0 or emb.shape[1] == dim))
                and len(rows) + len(srows) == hi - lo and len(reasons) == len(srows)
                and (kinds is None or len(kinds) == len(srows))
                and np.all((rows >= lo) & (rows < hi)) and np.all((srows >= lo) & (srows < hi)))
    except KeyError:
        good = False
    if not good:
        log.warning("work file %s does not match its chunk; redoing it", path)
        return None
    if kinds is None:  # written before skips had kinds: a failed download is not a permanent skip
        d["skipped_kind"] = np.array([infer_kind(str(r)) for r in reasons], dtype="U9")
    return d


def infer_kind(reason: str) -> str:
    """``"permanent"`` for a skip that asking again will not change (footprint, HTTP 4xx, unreadable), else ``"network"``."""
    return "permanent" if _PERMANENT.search(reason.lower()) else "network"


def rows_to_redo(done: dict, retry_skipped: bool) -> np.ndarray:
    """The skipped rows of a finished chunk to fetch again: the network ones, or all with ``retry_skipped``."""
    srows = np.asarray(done["skipped_rows"], dtype=np.int64)
    return srows if retry_skipped else srows[np.asarray(done["skipped_kind"]) != "permanent"]


def merge_chunk(done: dict | None, redo: np.ndarray, *, rows, embeddings, skipped_rows, reasons, kinds,
                dim: int) -> dict:
    """A chunk's arrays once ``redo`` was fetched again: ``done``'s results for its other rows, in row order."""
    empty = {"rows": np.zeros(0, np.int64), "embeddings": np.zeros((0, dim), np.float32),
             "skipped_rows": np.zeros(0, np.int64), "skipped_reasons": np.zeros(0, "U1"),
             "skipped_kind": np.zeros(0, "U9")}
    done = empty if done is None else done
    keep = ~np.isin(done["skipped_rows"], redo)
    all_rows = np.concatenate([done["rows"], np.asarray(rows, np.int64)])
    all_emb = np.concatenate([np.asarray(done["embeddings"], np.float32).reshape(-1, dim),
                              np.asarray(embeddings, np.float32).reshape(-1, dim)])
    srows = np.concatenate([done["skipped_rows"][keep], np.asarray(skipped_rows, np.int64)])
    sreasons = np.concatenate([done["skipped_reasons"][keep].astype(str), np.asarray(reasons, dtype=str)])
    skinds = np.concatenate([done["skipped_kind"][keep].astype(str), np.asarray(kinds, dtype=str)])
    order, sorder = np.argsort(all_rows, kind="stable"), np.argsort(srows, kind="stable")
    return {"rows": all_rows[order], "embeddings": all_emb[order], "skipped_rows": srows[sorder],
            "skipped_reasons": sreasons[sorder] if srows.size else np.zeros(0, "U1"),
            "skipped_kind": skinds[sorder].astype("U9") if srows.size else np.zeros(0, "U9")}


def open_work_dir(work: Path, expected: dict) -> None:
    manifest = work / "manifest.json"
    if work.is_dir() and not manifest.is_file() and not any(work.iterdir()):
        # Killed between creating the directory and writing its manifest.
        work.rmdir()
    if work.exists():
        if not manifest.is_file():
            raise InvalidInputError(f"{work} exists but is not an astro_semsearch build work directory (no manifest.json); "
                             "move it away or delete it")
        found = json.loads(manifest.read_text(encoding="utf-8"))
        diffs = [k for k in expected if found.get(k) != expected[k]]
        if diffs:
            detail = "; ".join(f"{k}: work dir has {found.get(k)!r}, this build {expected[k]!r}" for k in diffs)
            raise InvalidInputError(
                f"the unfinished build in {work} was made from a different catalogue, model or settings "
                f"({detail}). Refusing to mix them: delete {work} to start again, or rerun with the same inputs."
            )
        return
    work.mkdir(parents=True)
    atomic_write_bytes(manifest, (json.dumps(expected, indent=2) + "\n").encode())


# --------------------------------------------------------------------------- the build
