"""The images of one chunk of a build: local files or fetched cutouts, each row's skip reason and kind.

A row that cannot be embedded is skipped with a reason naming its file or
cutout, and a kind: ``"permanent"`` (asked again only with
``--retry-skipped``) or ``"network"`` (asked again whenever the build is
resumed). One bad row never stops a build.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..images import IMAGE_SUFFIXES, find_image, image_problem, load_image

__all__ = ["local_images", "remote_images", "stack_images"]


def local_images(directory: Path, ids: Sequence[str], files: Sequence[str] | None):
    """Load each row's file (its file name, else ``<object_id>.<suffix>``); return (arrays or None, reasons, kinds).

    A row is skipped, with a reason naming its file, when the file is not
    there, cannot be read or is an image the model cannot embed
    (`~astro_semsearch.images.image_problem`): one bad file never stops the build.
    """
    arrays, reasons = [], []
    for k, object_id in enumerate(ids):
        name = None if files is None else files[k]
        path = find_image(directory, str(object_id), name)
        arr, reason = None, ""
        if path is None:
            tried = [name] if name else []
            tried.append(f"{object_id}.{{{','.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}}}")
            reason = f"file not found in {directory}: looked for {' and '.join(tried)}"
        else:
            try:
                arr = load_image(str(path))
                problem = image_problem(arr)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is this row's skip, not the build's end
                arr, problem = None, f"cannot be read: {exc}"
            if problem:
                arr, reason = None, f"{path.name} {problem}"
        arrays.append(arr)
        reasons.append(reason)
    return arrays, reasons, ["permanent" if a is None else "" for a in arrays]


def remote_images(source, ra, dec, *, size, pixscale, layer, bands, format):
    """Fetch cutouts; return (list of arrays or None, list of reasons, list of skip kinds)."""
    t = source.get_cutouts((ra, dec), size=size, pixscale=pixscale, layer=layer, bands=bands, format=format,
                           errors="flag", progress=False)
    # A source without error kinds (another CutoutService-like object): a failed fetch is asked for again.
    error_kinds = t["error_kind"] if "error_kind" in t.colnames else ["network"] * len(t)
    arrays, reasons, kinds = [], [], []
    for row_ok, in_fp, err, err_kind, img in zip(t["ok"], t["in_footprint"], t["error"], error_kinds, t["image"]):
        if not row_ok:
            arrays.append(None)
            reasons.append(str(err) or "cutout failed")
            kinds.append("permanent" if err_kind == "permanent" else "network")
        elif not in_fp:
            arrays.append(None)
            reasons.append("outside the survey footprint (blank cutout)")
            kinds.append("permanent")
        elif (problem := image_problem(img)) is not None:
            arrays.append(None)
            reasons.append(f"the cutout {problem}")
            kinds.append("permanent")
        else:
            arrays.append(np.asarray(img))
            reasons.append("")
            kinds.append("")
    return arrays, reasons, kinds


def stack_images(arrays: list) -> Any:
    """A single (N, ...) array when all images share a shape (faster), else the list."""
    if arrays and all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    return arrays
