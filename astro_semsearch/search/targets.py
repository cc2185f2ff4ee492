"""Examples to search around: everything `~astro_semsearch.similar_to` (and ``like=``) accepts, as a vector.

A target is a result row, an ``object_id``, a `~astropy.coordinates.SkyCoord`
(the nearest indexed galaxy, or a cutout of that position fetched and
embedded), an image (array, FITS/JPEG/PNG file, FITS HDU) or an embedding.
`resolve_target` turns it into a `Target`: its vector, its row in the index
(if it is indexed), its position and a description for the result's meta.
Images are read here and refused at the door by the one rule of
`astro_semsearch.images.image_problem` (blank, constant, NaN, infinities,
tiny), whatever model embeds them; a single plane (``HxW``, a one-plane
FITS) is accepted (`astro_semsearch.images.to_rgb`).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from astropy.io import fits
from astropy.table import Row
from astropy.utils.exceptions import AstropyUserWarning

from ..cutouts import fetch_and_embed
from ..cutouts.framing import (FIXED_SIZE, MAX_FIELD, NATIVE_PIXSCALE, frame_pixscale, model_frame_r90,
                               unknown_framing_message)
from ..exceptions import CutoutError, InvalidInputError, InvalidTypeError, TargetNotFoundError
from ..images import image_problem, is_image_path, load_image

__all__ = ["Target", "resolve_target"]

_HDUS = (fits.HDUList, fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)


@dataclass
class Target:
    """An example resolved for searching.

    Attributes
    ----------
    vector : numpy.ndarray
        Its ``(dim,)`` embedding.
    row : int or None
        Its row in the index when it is an indexed galaxy.
    coord : SkyCoord or None
        Its position, when known (used to leave it and its close neighbours out).
    description : str
        How the result's meta names it.
    """

    vector: np.ndarray
    row: int | None
    coord: SkyCoord | None
    description: str


def _indexed(index, object_id: str, description: str | None = None) -> Target:
    row = int(index.rows_of([object_id])[0])
    if row < 0:
        raise TargetNotFoundError(
            f"object_id {object_id!r} is not in index {index.name!r} ({index.ntotal} galaxies). "
            "Give a SkyCoord, an image or a FITS file to search around something not indexed."
        )
    return Target(index.vectors([row])[0], row, index.coords([row])[0], description or str(object_id))


def _position(target: SkyCoord, index, model: Callable, max_distance: u.Quantity, r90=None,
              where: str = "similar_to") -> Target:
    """The indexed galaxy at a position, or a cutout of the position (framed by ``r90``) fetched and embedded."""
    if not target.isscalar:
        raise InvalidInputError(f"give one position, got a SkyCoord of shape {target.shape}")
    label = target.to_string("decimal", precision=6)
    idx, sep, _ = match_coordinates_sky(target, index.coords())
    if sep <= max_distance:
        return _indexed(index, str(index.object_ids([int(idx)])[0]), label)
    m = model()
    size, pixscale = FIXED_SIZE, NATIVE_PIXSCALE  # the fixed request of fetch_and_embed and build_index
    own = where == "similar_to"  # its hints name max_distance= and r90=; semantic_search's hints name like_r90=
    # to the user's line: past this function, resolve_target and the API function (semantic_search's wrapper too)
    level = 4 if own else 5
    name, flag = ("r90", "--r90") if own else ("like_r90", "--like-r90")
    framed = ""
    request = _build_request(index)
    fixed_index = request is not None and "framing" not in request  # its galaxies were not framed by size either
    if r90 is None and not fixed_index:
        fix = (f"Pass {name}= (the target's R90 as an angle, e.g. {name}=12 * u.arcsec, or {flag} 12 on the "
               "command line; for a Tractor shape_r use 2.5 x shape_r) to frame the cutout by the galaxy's size.")
        warnings.warn(unknown_framing_message(size, pixscale, where=where, fix=fix), AstropyUserWarning,
                      stacklevel=level)
    elif r90 is not None:
        arcsec = float(r90.to_value(u.arcsec))
        framing = frame_pixscale([arcsec], size=size, frame_r90=model_frame_r90(m), fixed_pixscale=pixscale)
        pixscale = float(framing.pixscale[0])
        # say when the framing rule's limits, not the R90, set the scale: a small galaxy is cut at the native scale
        limit = {"min": f", at the native {NATIVE_PIXSCALE}\"/px (too small to frame finer)",
                 "max": f", cut to a {MAX_FIELD.to_value(u.arcmin):g}' field"}.get(str(framing.status[0]), "")
        framed = f", framed by R90 {arcsec:g} arcsec{limit}"
        if fixed_index:
            warnings.warn(f"index {index.name!r} was built with the fixed request ({request.get('size')} px at "
                          f"{request.get('pixscale')}\"/px), not framed by size, so this cutout framed by R90 is "
                          f"embedded unlike its galaxies; leave {name} out to fetch it as they were",
                          AstropyUserWarning, stacklevel=level)
    near = float(np.squeeze(sep.to_value(u.arcsec)))
    # within 30" the user probably meant the indexed galaxy: say why it was not taken, whether or not the fetch works
    nearest = str(index.object_ids([int(idx)])[0])
    fix = (f"pass max_distance={np.ceil(near):g} * u.arcsec (--max-distance {np.ceil(near):g} on the command line)"
           if own else f"pass like={nearest!r}")
    near_miss = None if near >= 30 else (
        f"the nearest indexed galaxy, {nearest}, is {near:.2f} arcsec away, beyond "
        f"{'max_distance' if own else 'the match radius'} "
        f"({float(max_distance.to_value(u.arcsec)):g} arcsec); {fix} to search from it without fetching a cutout")
    try:
        vec = np.asarray(fetch_and_embed(target, m, size=size, pixscale=pixscale), dtype=np.float32).reshape(-1)
    except CutoutError as exc:
        if near_miss:
            exc.add_note(near_miss)
        raise
    if near_miss:
        warnings.warn(f"{where} searched from a cutout fetched at {label}: {near_miss}", AstropyUserWarning,
                      stacklevel=level)
    return Target(vec, None, target, f"cutout at {label}{framed}")


def _build_request(index) -> dict | None:
    """The cutout request an index was built with (``manifest["build"]["request"]``), if it records one."""
    build = (getattr(index, "manifest", None) or {}).get("build") or {}
    request = build.get("request")
    return request if isinstance(request, dict) else None


def _image(arr: np.ndarray, index, model: Callable, label: str | None = None) -> Target:
    """An embedding (1-D) searched as is, or an image checked by `image_problem` and embedded."""
    if arr.ndim == 1:
        # An embedding computed elsewhere (same model): searched as is.
        if arr.shape[0] != index.dim:
            raise InvalidInputError(
                f"a 1-D target is taken as an embedding and needs {index.dim} values, got {arr.shape[0]}"
            )
        return Target(np.asarray(arr, np.float32), None, None, "embedding vector")
    if not (arr.ndim == 2 or (arr.ndim == 3 and (arr.shape[-1] in (3, 4) or arr.shape[0] <= 16))):
        raise InvalidInputError("an image target must be HxWx3 RGB, CxHxW bands or an HxW single plane (one "
                                f"image), got shape {arr.shape}")
    label = label or f"image array {arr.shape}"
    if arr.ndim == 3 and arr.shape[-1] == 4 and arr.shape[0] > 16:
        arr = arr[..., :3]  # RGBA: the alpha plane carries no light (an RGBA file is read the same way)
    if arr.ndim == 2:
        arr = arr[None]  # a single plane, as a one-plane FITS is read
    problem = image_problem(arr)
    if problem is not None:
        raise InvalidInputError(f"the image target ({label}) {problem}; give an image with signal")
    return Target(np.asarray(model().embed_images(arr), dtype=np.float32)[0], None, None, label)


def _loaded(source, label: str, index, model: Callable) -> Target:
    """A file or FITS HDU target: read, checked and embedded."""
    return _image(np.asarray(load_image(source)), index, model, label)


def _row(target: Row) -> Any:
    """A result row: its object_id, else its position."""
    cols = target.colnames
    if "object_id" in cols:
        return str(target["object_id"])
    if "ra" in cols and "dec" in cols:
        ra, dec = target["ra"], target["dec"]
        return SkyCoord(ra if isinstance(ra, u.Quantity) else ra * u.deg,
                        dec if isinstance(dec, u.Quantity) else dec * u.deg)
    raise InvalidInputError(f"a table row target needs an object_id column or ra/dec columns; it has {cols}")


def resolve_target(target: Any, index, model: Callable, max_distance: u.Quantity, r90=None,
                   where: str = "similar_to") -> Target:
    """Turn anything `~astro_semsearch.similar_to` accepts into a `Target`.

    Parameters
    ----------
    target
        See `~astro_semsearch.similar_to`.
    index
        The index searched (for indexed targets and positions).
    model : callable
        Returns the model when called; only called if an image must be
        embedded (an indexed target needs no model at all).
    max_distance : angle
        How far a position may be from an indexed galaxy to count as it.
    r90 : angle, optional
        R90 of a position target that is not indexed: its cutout is framed
        to the model's ``frame_r90`` x R90 (`astro_semsearch.cutouts.framing`).
    where : str
        The caller as the user wrote it, for messages: ``"similar_to"`` (whose
        hints name ``max_distance`` and ``r90``) or ``"semantic_search(like=)"``
        (whose hints name ``like_r90``).
    """
    if isinstance(target, Row):
        target = _row(target)
        if isinstance(target, str):
            return _indexed(index, target)
    if isinstance(target, SkyCoord):
        return _position(target, index, model, max_distance, r90, where)
    if r90 is not None:
        name = "r90" if where == "similar_to" else "like_r90"
        raise InvalidInputError(f"{name}= frames the cutout fetched for a position (a SkyCoord); this target is "
                                f"a {type(target).__name__}, embedded as it is: leave {name} out")
    if isinstance(target, _HDUS):
        return _loaded(target, f"{type(target).__name__} image", index, model)
    if isinstance(target, os.PathLike) or (isinstance(target, str) and is_image_path(target)):
        path = Path(target)
        if not path.is_file():
            raise TargetNotFoundError(f"image file {path} does not exist")
        return _loaded(path, path.name, index, model)
    if isinstance(target, str):
        if not target.strip():
            raise InvalidInputError("target is an empty string; give an object_id, a SkyCoord, an image or a file")
        if Path(target).is_file():
            return _loaded(Path(target), Path(target).name, index, model)
        return _indexed(index, target.strip())
    if isinstance(target, np.ndarray):
        return _image(target, index, model)
    raise InvalidTypeError(
        "target must be a result row, an object_id string, a SkyCoord, an image array, a FITS/JPEG/PNG file "
        f"path or a FITS HDU, got {type(target).__name__}"
    )
