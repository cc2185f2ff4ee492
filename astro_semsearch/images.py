"""Read galaxy images and turn them into what the model expects.

The model works on RGB composites. Two kinds of input are accepted:

* RGB images (PNG/JPEG files, or ``HxWx3`` arrays, uint8 0-255 or float
  0-1), e.g. SDSS gri composites or Legacy Survey ``jpeg-cutout`` images.
* Multi-band float images (``CxHxW``, e.g. a Legacy Survey g,r,z FITS cutout
  in nanomaggies). These are turned into RGB with the Legacy Survey viewer's
  own mapping (`to_rgb`), so a FITS cutout and the viewer's JPEG of the same
  galaxy look alike to the model.
* Single planes (``HxW`` arrays, one-plane FITS): stretched like one band of
  that mapping and shown as grey (`to_rgb`).

`image_problem` is the one rule that refuses images carrying no signal
(blank, constant, NaN, infinities, tiny) before they are embedded.

`preprocess` then keeps the central 80% of the field and resizes it to 64 x 64
pixels. The model was trained on Galaxy Zoo images in which the galaxy fills
roughly the central half of the field; give it cutouts framed the same way.

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.images import to_rgb, preprocess
>>> rgb = to_rgb(np.zeros((3, 100, 100), np.float32))
>>> rgb.shape, rgb.dtype
((100, 100, 3), dtype('float32'))
>>> preprocess(rgb).shape
(64, 64, 3)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .exceptions import InvalidInputError, InvalidTypeError

__all__ = ["load_image", "to_rgb", "is_blank", "image_problem", "image_label", "preprocess", "find_image",
           "is_image_path", "LEGACY_RGB_SCALES", "FITS_SUFFIXES", "IMAGE_SUFFIXES", "MIN_IMAGE_SIDE",
           "MAX_NAN_FRACTION", "GREY_BAND"]

#: Legacy Survey viewer RGB mapping: band -> (output plane, scale). Plane 0 is red.
LEGACY_RGB_SCALES = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2), "i": (0, 1.0), "u": (2, 1.5)}

#: Smallest image side (pixels) that is embedded; smaller images are refused (`image_problem`).
MIN_IMAGE_SIDE = 8
#: Largest fraction of NaN (masked) pixels an image may have and still be embedded.
MAX_NAN_FRACTION = 0.5
#: The band a single float plane is taken as when ``bands`` does not name exactly one band.
GREY_BAND = "r"

#: File name endings read as FITS.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")
#: Every image file ending this package reads (JPEG and PNG first, then FITS), in the order
#: ``<object_id><suffix>`` is tried in an image directory.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png") + FITS_SUFFIXES


def _from_hdu(hdu) -> np.ndarray:
    from astropy.io import fits

    hdus = list(hdu) if isinstance(hdu, fits.HDUList) else [hdu]
    for h in hdus:
        data = getattr(h, "data", None)
        if data is not None and np.ndim(data) in (2, 3):
            data = np.asarray(data, dtype=np.float32)
            return data[None] if data.ndim == 2 else data
    raise InvalidInputError("the FITS input has no 2-D or 3-D image data")


def load_image(source) -> np.ndarray:
    """Load one image.

    Parameters
    ----------
    source : path-like, `~astropy.io.fits.HDUList`, HDU or numpy.ndarray
        A JPEG/PNG file, a FITS file (``.fits``, ``.fits.gz``, ...), an astropy
        HDU/HDUList, or an array (returned unchanged).

    Returns
    -------
    numpy.ndarray
        ``HxWx3`` uint8 RGB for image files; ``CxHxW`` float32 bands for FITS
        (a single 2-D plane gives ``1xHxW``).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be decoded as an image.
    """
    if isinstance(source, np.ndarray):
        return source
    try:
        from astropy.io import fits

        if isinstance(source, (fits.HDUList, fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            return _from_hdu(source)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidTypeError(f"cannot load an image from {type(source).__name__}; give a path, HDU or array")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.name.lower().endswith(FITS_SUFFIXES):
        from astropy.io import fits

        with fits.open(path, memmap=False) as hdul:
            return _from_hdu(hdul)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise InvalidInputError(f"cannot decode image {path}: {err}") from err


def _bands_to_rgb(bands_img: np.ndarray, bands: str, m: float = 0.03, Q: float = 20.0) -> np.ndarray:
    """Legacy Survey ``sdss_rgb`` (DR2-style) asinh mapping of band images to RGB."""
    img = np.nan_to_num(np.asarray(bands_img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    H, W = img.shape[1:]
    scaled = []
    for plane_img, band in zip(img, bands):
        plane, scale = LEGACY_RGB_SCALES[band]
        scaled.append((plane, np.maximum(0.0, plane_img * scale + m)))
    intensity = sum(s for _, s in scaled) / len(scaled)
    fI = np.arcsinh(Q * intensity) / np.sqrt(Q)
    intensity = intensity + (intensity == 0.0) * 1e-6
    rgb = np.zeros((H, W, 3), np.float32)
    for plane, s in scaled:
        rgb[:, :, plane] = s * fI / intensity
    return np.clip(rgb, 0.0, 1.0)


def _grey(plane: np.ndarray, bands: str) -> np.ndarray:
    """One plane as a grey ``HxWx3`` image: uint8 divided by 255, float stretched like one band of `to_rgb`."""
    if plane.dtype == np.uint8:
        grey = plane.astype(np.float32) / 255.0
    else:
        band = bands if len(bands) == 1 else GREY_BAND
        if band not in LEGACY_RGB_SCALES:
            raise InvalidInputError(f"no RGB mapping for band {band!r}; known: {sorted(LEGACY_RGB_SCALES)}")
        grey = _bands_to_rgb(plane[None], band)[:, :, LEGACY_RGB_SCALES[band][0]]
    return np.repeat(grey[:, :, None], 3, axis=2).astype(np.float32)


def to_rgb(image, bands: str = "grz") -> np.ndarray:
    """Convert an image to ``HxWx3`` float32 RGB in [0, 1].

    Parameters
    ----------
    image : numpy.ndarray
        ``HxWx3`` uint8 RGB (divided by 255), ``HxWx3`` float RGB (taken as
        0-1 and clipped; values above 1.5 are taken as 0-255), ``CxHxW``
        float band images in nanomaggies, mapped with the Legacy Survey
        viewer's asinh scheme (scales g: 6.0, r: 3.4, z: 2.2, m=0.03, Q=20),
        or a single plane (``HxW`` or ``1xHxW``, e.g. a one-plane FITS).
        A single plane becomes a grey image: uint8 is divided by 255; a
        float plane is taken as the band ``bands`` names when it names one,
        else the r band (`GREY_BAND`), stretched exactly as that band is in
        the three-band mapping, and copied to all three RGB planes.
        NaNs (masked pixels) count as zero flux.
    bands : str
        Band names of a ``CxHxW`` input, one letter each (default ``"grz"``).

    Examples
    --------
    >>> import numpy as np
    >>> float(to_rgb(np.full((4, 4, 3), 255, np.uint8)).max())
    1.0
    >>> grey = to_rgb(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    >>> grey.shape, bool(np.allclose(grey[..., 0], grey[..., 2]))
    ((8, 8, 3), True)
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise InvalidInputError(f"expected an HxWx3 RGB, CxHxW band or HxW single-plane image, got shape {img.shape}")
    if img.shape[0] == 1:
        return _grey(img[0], bands)
    if img.shape[-1] == 3 and (img.dtype == np.uint8 or img.shape[0] != 3 or len(bands) != 3):
        if img.dtype == np.uint8:
            return img.astype(np.float32) / 255.0
        rgb = np.nan_to_num(img.astype(np.float32), nan=0.0)
        if rgb.max(initial=0.0) > 1.5:
            rgb = rgb / 255.0
        return np.clip(rgb, 0.0, 1.0)
    if img.shape[0] != len(bands):
        raise InvalidInputError(f"a band image with {img.shape[0]} planes needs {img.shape[0]} band names, got bands={bands!r}")
    unknown = set(bands) - set(LEGACY_RGB_SCALES)
    if unknown:
        raise InvalidInputError(f"no RGB mapping for band(s) {sorted(unknown)}; known: {sorted(LEGACY_RGB_SCALES)}")
    return _bands_to_rgb(img, bands)


def is_blank(image) -> bool:
    """True if an image carries no signal: all NaN, all zero or constant.

    Cutouts outside a survey's footprint come back like this.

    Examples
    --------
    >>> import numpy as np
    >>> is_blank(np.zeros((3, 8, 8))), is_blank(np.random.default_rng(0).random((3, 8, 8)))
    (True, False)
    """
    img = np.asarray(image, dtype=np.float64)
    if img.size == 0 or not np.isfinite(img).any():
        return True
    finite = img[np.isfinite(img)]
    return bool(finite.max() == finite.min())


def _planes(img: np.ndarray) -> np.ndarray | None:
    """``CxHxW`` view of an image laid out as `to_rgb` reads it (None if it is not an image)."""
    if img.ndim == 2:
        return img[None]
    if img.ndim != 3:
        return None
    if img.shape[0] != 1 and img.shape[-1] == 3 and (img.dtype == np.uint8 or img.shape[0] != 3):
        return np.moveaxis(img, -1, 0)
    return img


def _constant(plane: np.ndarray) -> bool:
    """No variation at all (integers), or none beyond float rounding."""
    lo, hi = float(plane.min()), float(plane.max())
    return hi - lo <= 1e-6 * max(abs(lo), abs(hi))


def image_problem(image) -> str | None:
    """Why an image cannot be embedded, or None: the one rule every stage uses to refuse images at the door.

    An image is refused when it is empty or not an image, smaller than
    `MIN_IMAGE_SIDE` pixels a side, has no finite pixel (all NaN), any
    infinite pixel, more than `MAX_NAN_FRACTION` NaN (masked) pixels, or no
    variation in any plane (blank, all zero, one flat colour): such images
    embed to vectors that "match" real galaxies. `similar_to`,
    `GalaxyModel.embed_images` and `classify` refuse them with
    `~astro_semsearch.exceptions.InvalidInputError`; builds skip them.

    Returns
    -------
    str or None
        A phrase to follow the image's name, e.g. ``"is blank: every pixel is 0"``.

    Examples
    --------
    >>> import numpy as np
    >>> image_problem(np.zeros((32, 32, 3), np.uint8))
    'is blank: every pixel is 0'
    >>> image_problem(np.random.default_rng(0).random((3, 32, 32))) is None
    True
    >>> image_problem(np.ones((3, 4, 4)))
    'is 4x4 pixels, too small (at least 8 a side)'
    """
    img = np.asarray(image)
    if img.dtype == object or not (np.issubdtype(img.dtype, np.number) or img.dtype == bool):
        return f"is not a numeric image (dtype {img.dtype})"
    planes = _planes(img)
    if planes is None:
        return f"has shape {img.shape}, not an image (HxW, HxWx3 or CxHxW)"
    if planes.size == 0:
        return "is empty (no pixels)"
    h, w = planes.shape[1:]
    if min(h, w) < MIN_IMAGE_SIDE:
        return f"is {h}x{w} pixels, too small (at least {MIN_IMAGE_SIDE} a side)"
    if np.issubdtype(planes.dtype, np.inexact):
        finite = np.isfinite(planes)
        n_finite = int(finite.sum())
        if n_finite == 0:
            return "has no finite pixel values (all NaN)"
        n_inf = int(np.isinf(planes).sum())
        if n_inf:
            return f"has {n_inf} infinite pixel value(s)"
        nan_fraction = 1.0 - n_finite / planes.size
        if nan_fraction > MAX_NAN_FRACTION:
            return f"is mostly masked: {nan_fraction:.0%} of its pixels are NaN"
        planes = [p[np.isfinite(p)] for p in planes]
    if all(p.size == 0 or _constant(p) for p in planes):
        values = np.concatenate([np.ravel(p) for p in planes])
        if _constant(values):
            return f"is blank: every pixel is {values.flat[0]:g}"
        return "carries no structure: every plane is constant (a flat colour)"
    return None


def image_label(source, position: int | None = None, total: int | None = None) -> str:
    """How an error message names an image: ``"image at index 3 of 5 (file g3.png)"`` or ``"the image (...)"``."""
    if isinstance(source, (str, os.PathLike)):
        what = f"file {os.fspath(source)}"
    elif isinstance(source, np.ndarray):
        what = f"array of shape {source.shape}"
    else:
        what = type(source).__name__
    if position is None or not total or total == 1:
        return f"the image ({what})"
    return f"image at index {position} of {total} ({what})"


def preprocess(rgb, size: int = 64, crop_fraction: float = 0.8) -> np.ndarray:
    """Centre-crop and resize an RGB image to the model's input.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``HxWx3`` RGB (anything `to_rgb` accepts).
    size : int
        Output side in pixels (the model's ``image_size``).
    crop_fraction : float
        Fraction of the shorter side kept around the centre (0.8 as in
        training).

    Returns
    -------
    numpy.ndarray
        ``size x size x 3`` float32 in [0, 1].
    """
    import torch
    import torch.nn.functional as F

    rgb = to_rgb(rgb)
    H, W = rgb.shape[:2]
    side = max(1, int(round(min(H, W) * crop_fraction)))
    y0, x0 = (H - side) // 2, (W - side) // 2
    crop = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])
    if side == size:
        return crop
    t = torch.from_numpy(crop).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)


def is_image_path(text: str) -> bool:
    """True if ``text`` ends like an image file this package reads (any case).

    Examples
    --------
    >>> is_image_path("J1234+5678.FITS.gz"), is_image_path("J1234+5678")
    (True, False)
    """
    return str(text).lower().endswith(IMAGE_SUFFIXES)


def find_image(directory: str | os.PathLike, object_id: str | None = None, filename: str | None = None):
    """The image of one object in ``directory``: ``filename`` if given and there, else ``<object_id><suffix>``.

    ``filename`` is taken relative to ``directory``; if it already starts with
    the directory's own name (a catalogue holding ``images/J1.jpg`` used with
    ``images=".../images"``), that leading part is not doubled. Names that
    would leave the directory (absolute paths, ``..``) are never followed.

    Returns
    -------
    pathlib.Path or None

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "images"; d.mkdir()
    >>> _ = (d / "G1.png").write_bytes(b"")
    >>> find_image(d, "G1").name, find_image(d, None, "images/G1.png").name, find_image(d, "G2")
    ('G1.png', 'G1.png', None)
    """
    directory = Path(directory)

    def inside(name: str) -> Path | None:
        parts = Path(name).parts
        if not name or Path(name).is_absolute() or ".." in parts or name in (".", ".."):
            return None
        path = directory / name
        return path if path.is_file() else None

    if filename:
        filename = str(filename)
        found = inside(filename)
        parts = Path(filename).parts
        if found is None and len(parts) > 1 and parts[0] == directory.name:
            found = inside(str(Path(*parts[1:])))
        if found is not None:
            return found
    if object_id and "/" not in object_id and "\\" not in object_id:
        for suffix in IMAGE_SUFFIXES:
            found = inside(object_id + suffix)
            if found is not None:
                return found
    return None
