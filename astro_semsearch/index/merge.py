"""Many indexes written as one, streaming: what a sharded or Dask build becomes with ``merge=True``.

`write_merged` writes the merged index directory; `~astro_semsearch.index.GalaxyIndex.merge`
writes it and opens it.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from astropy.table import vstack

from ..exceptions import InvalidInputError
from .kinds import check_knobs, new_faiss_index, pq_training_need, set_search_knobs, train
from .mapped import sequential_reads
from .storage import model_record, new_manifest, write_index

__all__ = ["write_merged"]


def write_merged(
    parts,
    out: str | os.PathLike,
    *,
    kind: str = "auto",
    model=None,
    name: str | None = None,
    survey: str | None = None,
    overwrite: bool = False,
    manifest_extra: dict | None = None,
    chunk: int = 1 << 18,
    **knobs: Any,
) -> None:
    """Write several indexes (shards, Dask partitions) as one saved index, streaming.

    Rows keep the order of ``parts``. Unlike ``build(np.concatenate(...))``
    the full-precision vectors never sit in RAM together: the IVF
    quantiser is trained on a random sample of rows, then each part's
    memory-mapped vectors are added and written to ``out/vectors.npy``
    ``chunk`` rows at a time. Only the catalogue (tens of bytes a row) is
    gathered in memory.

    Parameters
    ----------
    parts : sequence of `GalaxyIndex`
        Same dimension, same catalogue columns, no shared ``object_id``.
    out : path
        Directory of the merged index (written atomically).
    kind, **knobs
        As in `~astro_semsearch.index.GalaxyIndex.build` (``kind="auto"`` picks by the total size).
    model : optional
        Recorded in the manifest (default: the first part's model record).
    name, survey, overwrite, manifest_extra
        Manifest name/survey, replace an existing ``out``, extra manifest entries.

    """
    parts = list(parts)
    if not parts:
        raise InvalidInputError("nothing to merge: no parts given")
    dim = parts[0].dim
    for p in parts[1:]:
        if p.dim != dim:
            raise InvalidInputError(f"cannot merge indexes of dimension {dim} and {p.dim}")
        if list(p.table.colnames) != list(parts[0].table.colnames):
            raise InvalidInputError(f"cannot merge catalogues with columns {parts[0].table.colnames} and "
                             f"{p.table.colnames}")
    check_knobs(knobs)
    table = vstack([p.catalog() for p in parts], join_type="exact", metadata_conflicts="silent")
    n = len(table)
    ids = np.asarray(table["object_id"])
    if len(np.unique(ids)) != n:
        uniq, counts = np.unique(ids, return_counts=True)
        raise InvalidInputError(f"duplicate object_id values across the parts: {uniq[counts > 1][:5].tolist()}")
    index, kind, factory, knobs = new_faiss_index(kind, n, dim, knobs)
    offsets = np.cumsum([0] + [p.ntotal for p in parts])
    if not index.is_trained:
        def sample(size: int) -> np.ndarray:
            rows = np.sort(np.random.default_rng(0).choice(n, size=size, replace=False))
            which = np.searchsorted(offsets, rows, side="right") - 1
            return np.concatenate([parts[i].vectors(rows[which == i] - offsets[i]) for i in np.unique(which)])

        train(index, knobs, n, pq_training_need(factory, knobs), sample)
    set_search_knobs(index, knobs)
    for p in parts:
        vec = p.vectors_array()
        with sequential_reads(vec):  # one pass over all rows: let the kernel read ahead
            for s in range(0, p.ntotal, chunk):
                index.add(np.ascontiguousarray(vec[s:s + chunk], dtype=np.float32))
    model_rec = parts[0].manifest.get("model") if model is None else model_record(model, dim)
    manifest = new_manifest(kind=kind, factory=factory, dim=dim, count=n, knobs=knobs, model=model_rec, name=name,
                            survey=survey)
    manifest.update(manifest_extra or {})
    # write_index streams the parts' memory-mapped vectors into one vectors.npy.
    write_index(out, index, [p.vectors_array() for p in parts], table, manifest, overwrite=overwrite)
