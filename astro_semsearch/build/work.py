"""The work directory of a resumable build: one atomically written file per finished chunk.

A build works in chunks of rows; each finished chunk is written atomically
to ``<out>.partial/chunk-NNNNN.npz`` next to a manifest naming the
catalogue content, the model and the settings. A rerun reuses the finished
chunks of the same inputs and refuses a work directory of other inputs.
"""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from ..exceptions import InvalidInputError

__all__ = ["chunk_path", "write_chunk", "read_chunk", "open_work_dir", "WORK_FORMAT"]

log = logging.getLogger(__name__)

#: Version of the work-directory layout.
WORK_FORMAT = 1


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
