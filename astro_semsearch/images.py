"""Read galaxy images and turn them into what the model expects.

The model works on RGB composites. Two kinds of input are accepted:

* RGB images (PNG/JPEG files, or ``HxWx3`` arrays, uint8 0-255 or float
  0-1), e.g. SDSS gri composites or Legacy Survey ``jpeg-cutout`` images.
* Multi-band float images (``CxHxW``, e.g. a Legacy Survey g,r,z FITS cutout
  in nanomaggies). These are turned into RGB with the Legacy Survey viewer's
  own mapping (`to_rgb`), so a FITS cutout and the viewer's JPEG of the same
  galaxy look alike to the model.

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

__all__ = ["load_image", "to_rgb", "is_blank", "preprocess", "find_image", "is_image_path", "LEGACY_RGB_SCALES",
           "FITS_SUFFIXES", "IMAGE_SUFFIXES"]

#: Legacy Survey viewer RGB mapping: band -> (output plane, scale). Plane 0 is red.
LEGACY_RGB_SCALES = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2), "i": (0, 1.0), "u": (2, 1.5)}

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


def to_rgb(image, bands: str = "grz") -> np.ndarray:
    """Convert an image to ``HxWx3`` float32 RGB in [0, 1].

    Parameters
    ----------
    image : numpy.ndarray
        ``HxWx3`` uint8 RGB (divided by 255), ``HxWx3`` float RGB (taken as
        0-1 and clipped; values above 1.5 are taken as 0-255), or ``CxHxW``
        float band images in nanomaggies, mapped with the Legacy Survey
        viewer's asinh scheme (scales g: 6.0, r: 3.4, z: 2.2, m=0.03, Q=20).
        NaNs (masked pixels) count as zero flux.
    bands : str
        Band names of a ``CxHxW`` input, one letter each (default ``"grz"``).

    Examples
    --------
    >>> import numpy as np
    >>> float(to_rgb(np.full((4, 4, 3), 255, np.uint8)).max())
    1.0
    """
    img = np.asarray(image)
    if img.ndim != 3:
        raise InvalidInputError(f"expected an HxWx3 RGB or CxHxW band image, got shape {img.shape}")
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
