"""Cutouts resampled from the survey's own brick coadds: a bulk source for building large indexes.

The Legacy Surveys publish their stacked images one file per brick and
band, ``coadd/<ddd>/<brick>/legacysurvey-<brick>-image-<band>.fits.fz``: a
RICE-compressed 3600 x 3600 image at 0.262"/pixel (nanomaggies per pixel) on
a TAN projection centred on the brick (0.25 deg a side, so neighbouring
images overlap by about 20"). `LegacySurveyBricks` cuts stamps out of them
locally instead of asking the viewer for one cutout per galaxy:

* **Where the files are.** A local directory laid out as on a survey mirror
  (``<root>/coadd/<ddd>/<brick>/...``; ``<root>/<ddd>/<brick>/``,
  ``<root>/<brick>/`` and a flat ``<root>/`` are accepted too), or a base
  URL (``url=``, default ``conf.legacysurvey_bricks_url``) from which each
  brick file is fetched once into astropy's download cache.
* **Which brick.** A bricks table (``bricks=``, or ``survey-bricks.fits.gz``
  / ``survey-bricks.fits`` / ``survey-bricks.ecsv`` found in ``root``) tells
  which brick holds a position; without one the survey's tiling rule does
  (`astro_semsearch.cutouts.brickgrid`).
* **One open per brick.** Rows are grouped by brick and each brick's files
  are opened once (the compressed HDU, memory-mapped) and kept open for the
  source's life (``max_bricks`` of them at a time): the first stamps of a
  brick decompress only the rows they need (``section``), and once as many
  rows as the image has have been read the whole plane is decompressed once
  and kept.
* **Resampling.** Each stamp is a TAN projection centred on the galaxy at
  its own pixel scale (framing by size: `astro_semsearch.cutouts.framing`),
  bands stacked in the order asked. The stamp is interpolated bilinearly,
  as `reproject.reproject_interp` does, computing the same values about
  twice as fast (the pixel mapping is evaluated exactly every 16 stamp
  pixels and interpolated in between; tests check it against
  ``reproject_interp``). For a stamp coarser than 1.5x the native scale the
  brick pixels are first averaged in ``b x b`` blocks (``b`` the nearest
  whole ratio of the scales), as the viewer's coarser image levels are, so
  that every brick pixel under a stamp pixel counts: bilinear interpolation
  alone would read four of them and alias. ``resample="adaptive"`` uses
  `reproject.reproject_adaptive` (DeForest's anti-aliased kernel) instead,
  the more exact anti-aliasing, but its cost grows with the square of the
  scale ratio (0.36 s for a 256-pixel stamp at 1.6x, 4 s at 5x on the
  benchmark machine), too slow for a 30-arcmin galaxy or a bulk build;
  ``resample="interp"`` uses `reproject.reproject_interp` at every scale.
  Pixel values stay surface brightnesses (nanomaggies per native pixel), as
  in the viewer's cutouts, so the viewer's colour mapping
  (`astro_semsearch.images.to_rgb`) applies unchanged.
* **Brick edges.** A stamp reaching past its brick's image is completed
  from the neighbouring bricks' files; when one of them is missing the row
  gets ``ok=False`` and an error naming the brick and the edge (or, with
  ``missing_neighbour="zero"``, zeros there, as the viewer gives at the
  survey's edge). A position whose brick has no files is outside the survey:
  an all-zero stamp, ``in_footprint=False``, as the viewer answers.

`get_cutouts` returns the table `LegacySurvey.get_cutouts` returns for
``format="fits"`` (``index, ra, dec, ok, in_footprint, error, image`` with
``(n_bands, size, size)`` float32 images), so ``build_index(source=...)`` and
``build_index_dask(source=..., partition_by="brick")`` take it unchanged.
JPEG is not made: the stamps are fluxes; `~astro_semsearch.images.to_rgb`
turns them into the viewer's colours.

Examples
--------
>>> from astro_semsearch.cutouts import LegacySurveyBricks
>>> src = LegacySurveyBricks(url="https://example.org/dr10/south")
>>> src.bricks_of(([150.1, 0.1], [2.2, -0.2])).tolist()
['1501p022', '0001m002']
>>> src.file_url("1501p022", "g")
'https://example.org/dr10/south/coadd/150/1501p022/legacysurvey-1501p022-image-g.fits.fz'
"""
from __future__ import annotations

import collections
import io
import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from .._io import progress as _progress
from .._validate import check_choice, check_int
from ..catalog import as_skycoord
from ..config import conf
from ..exceptions import CutoutError, InvalidInputError, ServiceUnreachableError
from ..images import is_blank
from ._cache import cached_path, store_in_cache
from ._stamps import BrickFiles, bilinear, binned, direction, stamp_wcs
from .brickgrid import BrickGrid, brick_directory
from .http import Limits, fetch
from .service import _check_pixscales, _check_size_pixscale

__all__ = ["LegacySurveyBricks"]

log = logging.getLogger(__name__)

_TABLE_NAMES = ("survey-bricks.fits.gz", "survey-bricks.fits", "survey-bricks.ecsv")
_INTERP_MAX_RATIO = 1.5  # above this stamp/brick pixel-scale ratio, bin the brick pixels first


def _fits_bytes(body: bytes) -> bytes:
    """The body itself, if it is a FITS file (a proxy's HTML page with status 200 is not)."""
    if not body.startswith(b"SIMPLE  ="):
        raise ValueError("not a FITS file (no SIMPLE card at the start)")
    return body


def _file_name(brick: str, band: str) -> str:
    return f"legacysurvey-{brick}-image-{band}.fits.fz"


class LegacySurveyBricks:
    """Stamps resampled from Legacy Surveys brick coadds (local mirror or download cache).

    Parameters
    ----------
    root : path, optional
        Local directory of brick files (mirror layout or flat).
    url : str, optional
        Base URL of a data release's region, e.g.
        ``https://portal.nersc.gov/cfs/cosmo/data/legacysurvey/dr10/south``
        (default ``conf.legacysurvey_bricks_url`` when ``root`` is not given).
    bricks : `~astropy.table.Table` or path, optional
        Bricks table (``brickname, ra1, ra2, dec1, dec2``); default: one
        named ``survey-bricks.*`` in ``root``, else the survey's tiling rule.
    brick_size : int
        Pixels a side of a brick image (3600 in DR9/DR10); a file of another
        size is refused, and a file without a WCS gets the survey's.
    layer : str
        Recorded in the result's meta (the files decide what the data are).
    resample : {"auto", "interp", "adaptive"}
        See the module description (``"auto"``: bilinear, from brick pixels
        binned to about the stamp's scale when it is coarser than 1.5x
        native; ``"interp"``: `reproject_interp` at every scale;
        ``"adaptive"``: `reproject_adaptive` at every scale).
    missing_neighbour : {"flag", "zero"}
        A stamp reaching into a brick without files: flag the row, or take
        zeros there.
    max_bricks : int
        Bricks kept open at a time (decompressed grz planes of a 3600-pixel
        brick take 150 MB).
    """

    def __init__(self, root: str | os.PathLike | None = None, *, url: str | None = None, bricks=None,
                 brick_size: int = 3600, layer: str = "ls-dr10", resample: str = "auto",
                 missing_neighbour: str = "flag", max_bricks: int = 4):
        if root is not None and url is not None:
            raise InvalidInputError("give root= (local brick files) or url= (fetch them), not both")
        self.root = None if root is None else Path(root)
        if self.root is not None and not self.root.is_dir():
            raise FileNotFoundError(f"brick directory {self.root} does not exist")
        self.url = None if self.root is not None else str(url or conf.legacysurvey_bricks_url).rstrip("/")
        if bricks is None and self.root is not None:
            bricks = next((self.root / n for n in _TABLE_NAMES if (self.root / n).is_file()), None)
        self.grid = BrickGrid(bricks)
        self.brick_size = check_int(brick_size, "brick_size", minimum=2)
        self.layer = str(layer)
        self.resample = check_choice(resample, "resample", ("auto", "interp", "adaptive"))
        self.missing_neighbour = check_choice(missing_neighbour, "missing_neighbour", ("flag", "zero"))
        self.max_bricks = check_int(max_bricks, "max_bricks")
        #: How many times each brick file was opened (a build opens each once).
        self.opened: collections.Counter = collections.Counter()
        self._init_state()

    def _init_state(self) -> None:
        self._cache: collections.OrderedDict[str, BrickFiles] = collections.OrderedDict()
        self._lock = threading.RLock()

    # Open files do not travel to Dask workers: each copy opens its own.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_lock", "_local")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_state()

    def __repr__(self) -> str:
        where = f"root={str(self.root)!r}" if self.root is not None else f"url={self.url!r}"
        return f"LegacySurveyBricks({where}, brick_size={self.brick_size})"

    # ------------------------------------------------------------------ files
    def bricks_of(self, coordinates) -> np.ndarray:
        """The brick holding each position (``""`` outside every brick of a bricks table)."""
        c = as_skycoord(coordinates)
        return self.grid.locate(c.ra.deg, c.dec.deg)

    def file_url(self, brick: str, band: str) -> str:
        """Where a brick's image in one band is fetched from (with ``url=``)."""
        return f"{self.url}/coadd/{brick_directory(brick)}/{brick}/{_file_name(brick, band)}"

    def _local_file(self, brick: str, band: str) -> Path | None:
        name, ddd = _file_name(brick, band), brick_directory(brick)
        for d in (self.root / "coadd" / ddd / brick, self.root / ddd / brick, self.root / brick, self.root):
            for candidate in (d / name, d / name[: -len(".fz")]):
                if candidate.is_file():
                    return candidate
        return None

    def _remote_file(self, brick: str, band: str, cache: bool) -> str | io.BytesIO | None:
        """The brick file fetched once (astropy's download cache; in memory with ``cache=False``).

        None when the server has no such file (HTTP 404: a brick outside the
        survey). The request has the cutout services' limits (`~astro_semsearch.cutouts.http`):
        total deadline, body cap, capped retries, fast failure when unreachable.
        """
        url = self.file_url(brick, band)
        if cache:
            path = cached_path(url)
            if path is not None:
                return path
        try:
            _, body = fetch(self._http_session(), url, {}, label=f"brick {brick} band {band}", parse=_fits_bytes,
                            limits=Limits.from_conf(), hint="check conf.legacysurvey_bricks_url and the network")
        except CutoutError as exc:
            if exc.status == 404:
                return None
            raise
        if not cache:
            return io.BytesIO(body)
        try:
            store_in_cache(url, body)
        except OSError as exc:  # a full disk: use the file from memory this time
            log.warning("could not cache brick file %s: %s", url, exc)
            return io.BytesIO(body)
        return cached_path(url) or io.BytesIO(body)

    def _http_session(self):
        """One `requests.Session` per thread (sessions are not thread-safe)."""
        import requests

        local = self.__dict__.setdefault("_local", threading.local())
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
        return local.session

    def _open_band(self, brick: BrickFiles, band: str, cache: bool) -> None:
        """Open one band file of a brick (memory-mapped, compressed HDU), or note that it has none."""
        name = brick.name
        path = self._local_file(name, band) if self.root is not None else self._remote_file(name, band, cache)
        if path is None:
            brick.hdus[band] = None
            return
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
        self.opened[str(path) if isinstance(path, (str, os.PathLike)) else self.file_url(name, band)] += 1
        hdu = next((h for h in hdul if h.is_image and h.shape and len(h.shape) == 2), None)
        if hdu is None:
            hdul.close()
            raise CutoutError(f"brick file {path} holds no 2-D image")
        if tuple(hdu.shape) != (self.brick_size, self.brick_size):
            hdul.close()
            raise CutoutError(f"brick file {path} is {hdu.shape[1]} x {hdu.shape[0]} pixels, not "
                              f"{self.brick_size} x {self.brick_size}; pass brick_size= to match the files")
        brick.add(band, hdul, hdu, self._brick_wcs(name, hdu.header))

    def _brick_wcs(self, brick: str, header) -> WCS:
        if header.get("CTYPE1", "").startswith("RA---"):
            return WCS(header, naxis=2)
        ra, dec = self.grid.centre(brick)  # no WCS in the file: the survey's brick projection
        return stamp_wcs(ra, dec, 0.262, self.brick_size)

    def _brick(self, name: str, bands: str, cache: bool = True) -> BrickFiles | None:
        """A brick with ``bands`` open (least recently used ones closed beyond ``max_bricks``); None: no files."""
        if not name:
            return None
        with self._lock:
            b = self._cache.get(name)
            if b is None:
                b = self._cache[name] = BrickFiles(name)
                while len(self._cache) > self.max_bricks:
                    self._cache.popitem(last=False)[1].close()
            self._cache.move_to_end(name)
            for band in bands:
                if band not in b.hdus:
                    self._open_band(b, band, cache)
            return b if b.has_data else None

    def close(self) -> None:
        """Close every open brick file."""
        with self._lock:
            for b in self._cache.values():
                b.close()
            self._cache.clear()

    # ------------------------------------------------------------------ one stamp
    def _fill(self, brick: BrickFiles, wcs: WCS, size: int, bands: str, img: np.ndarray, covered: np.ndarray) -> None:
        """Resample the part of ``brick`` under the stamp into the pixels not covered yet."""
        from reproject import reproject_adaptive, reproject_interp

        ratio = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0) / brick.pixscale
        t = np.linspace(-0.5, size - 0.5, 17)
        edge = np.full(17, -0.5), np.full(17, size - 0.5)
        bx, by = np.concatenate([t, t, edge[0], edge[1]]), np.concatenate([edge[0], edge[1], t, t])
        x, y = brick.wcs.world_to_pixel_values(*wcs.pixel_to_world_values(bx, by))
        margin = 3 + int(np.ceil(3 * max(ratio, 1.0)))
        h, w = brick.shape
        x0, x1 = max(0, int(np.floor(x.min())) - margin), min(w, int(np.ceil(x.max())) + margin + 1)
        y0, y1 = max(0, int(np.floor(y.min())) - margin), min(h, int(np.ceil(y.max())) + margin + 1)
        b = 1 if self.resample != "auto" or ratio <= _INTERP_MAX_RATIO else int(round(ratio))
        x0, y0 = x0 - x0 % b, y0 - y0 % b  # whole blocks of the brick's own grid
        x1, y1 = x0 + (x1 - x0) // b * b, y0 + (y1 - y0) // b * b
        if x0 >= x1 or y0 >= y1:
            return
        data = brick.window(bands, y0, y1, x0, x1)
        sub = brick.wcs[y0:y1, x0:x1]
        if self.resample == "auto":
            if b > 1:
                data, sub = binned(data, brick.wcs, x0, y0, b)
            out, new = bilinear(data, sub, wcs, size)
            new &= ~covered
            img[:, new] = out[:, new]
            covered |= new
            return
        adaptive = self.resample == "adaptive"
        if adaptive:
            out, fp = reproject_adaptive((data, sub), wcs, shape_out=(size, size), conserve_flux=False,
                                         roundtrip_coords=False, boundary_mode="ignore_threshold")
        else:
            out, fp = reproject_interp((data, sub), wcs, shape_out=(size, size), order="bilinear",
                                       roundtrip_coords=False)
        fp = fp if fp.ndim == 2 else fp.reshape(-1, size, size)[0]
        new = ~covered & (fp > 0.5) & np.isfinite(out).all(axis=0)
        if x0 == 0 or y0 == 0 or x1 == w or y1 == h:
            # At the image's edge reproject extrapolates the last half pixel: only what lies between pixel
            # centres (a kernel's reach inside, when averaging) counts; a neighbour brick covers the rest.
            yy, xx = np.nonzero(new)
            px, py = brick.wcs.world_to_pixel_values(*wcs.pixel_to_world_values(xx, yy))
            k = ratio if adaptive else 0.0
            inside = (px >= k) & (px <= w - 1 - k) & (py >= k) & (py <= h - 1 - k)
            new[yy[~inside], xx[~inside]] = False
        img[:, new] = out[:, new]
        covered |= new

    def _stamp(self, ra: float, dec: float, pixscale: float, size: int, bands: str, primary: str,
               cache: bool) -> tuple[np.ndarray, str]:
        """One stamp and "" (or its error): completed from neighbouring bricks where it leaves its own."""
        brick = self._brick(primary, bands, cache)
        if brick is None:  # outside the survey: blank, as the viewer answers
            return np.zeros((len(bands), size, size), np.float32), ""
        wcs = stamp_wcs(ra, dec, pixscale, size)
        img = np.full((len(bands), size, size), np.nan, np.float32)
        covered = np.zeros((size, size), bool)
        self._fill(brick, wcs, size, bands, img, covered)
        missing = []
        if not covered.all():
            yy, xx = np.nonzero(~covered)
            names = sorted(set(self.grid.locate(*wcs.pixel_to_world_values(xx, yy)).tolist()) - {primary})
            for name in names:
                other = self._brick(name, bands, cache)
                if other is None:
                    missing.append(name or "(no brick)")
                else:
                    self._fill(other, wcs, size, bands, img, covered)
        if covered.all():
            return img, ""
        if self.missing_neighbour == "zero":
            img[:, ~covered] = 0.0
            return img, ""
        yy, xx = np.nonzero(~covered)
        return img, (f"the stamp crosses the {direction(xx, yy, size)} edge of brick {primary}; the part beyond it "
                     f"lies in brick {', '.join(missing) or '(none)'}, whose image files are not available "
                     f"({self.root if self.root is not None else self.url})")

    # ------------------------------------------------------------------ public interface
    def get_cutouts(self, coordinates, *, size: int = 256, pixscale=0.262, layer: str | None = None,
                    bands: str = "grz", format: str = "fits", cache: bool = True, errors: str = "raise",
                    progress: bool | None = None, bricknames=None) -> Table:
        """Stamps for many positions, in input order, as `LegacySurvey.get_cutouts` returns them.

        Parameters
        ----------
        coordinates, size, pixscale, bands, errors, progress
            As for `LegacySurvey.get_cutouts`; ``pixscale`` may be one value
            per position (framing by size).
        layer : str, optional
            Recorded in the meta (default: the source's ``layer``).
        format : {"fits"}
            Only flux stamps are made (see the module description).
        cache : bool
            With ``url=``: keep fetched brick files in astropy's download cache.
        bricknames : array of str, optional
            The brick of each row (a catalogue's ``brickname``), instead of
            finding it from the position.

        Returns
        -------
        `~astropy.table.Table`
            ``index, ra, dec, ok, in_footprint, error, image``: see
            `LegacySurvey.get_cutouts` (``image`` is ``(len(bands), size,
            size)`` float32, NaN where ``ok`` is False).
        """
        check_choice(errors, "errors", ("raise", "flag"))
        if not isinstance(format, str) or format.lower() != "fits":
            raise InvalidInputError(f"LegacySurveyBricks makes FITS flux stamps only, got format={format!r}; use "
                                    "LegacySurvey for the viewer's JPEG cutouts")
        if not isinstance(bands, str) or not re.fullmatch(r"[grzi]+", bands):
            raise InvalidInputError(f"bands must be letters of the brick files' bands (g, r, z, i), got {bands!r}")
        c = as_skycoord(coordinates)
        n = len(c)
        pix = _check_pixscales(pixscale, n) if np.ndim(pixscale) > 0 else None
        size, scalar = _check_size_pixscale(size, 0.262 if pix is not None else pixscale)
        pix = np.full(n, scalar) if pix is None else pix
        ra, dec = c.ra.deg.astype(float), c.dec.deg.astype(float)
        primary = self.grid.locate(ra, dec) if bricknames is None else np.char.strip(np.asarray(bricknames, "U8"))
        if primary.shape != (n,):
            raise InvalidInputError(f"bricknames has {primary.size} entries but there are {n} positions")
        images = np.full((n, len(bands), size, size), np.nan, np.float32)
        errs, kinds = [""] * n, [""] * n
        show = conf.show_progress if progress is None else bool(progress)
        for i in _progress(np.argsort(primary, kind="stable"), total=n, desc="brick stamps", unit="img",
                           disable=not show):
            label = f"RA={ra[i]:.6f} Dec={dec[i]:+.6f} (row {i})"
            kind = "permanent"  # a missing neighbour, a broken file: asking again gives the same
            try:
                img, err = self._stamp(ra[i], dec[i], float(pix[i]), size, bands, str(primary[i]), cache)
            except ServiceUnreachableError:
                raise  # one error for the whole call, as the HTTP services do
            except CutoutError as exc:
                img, err, kind = None, str(exc), exc.kind
            if err and errors == "raise":
                raise CutoutError(f"stamp at {label} failed: {err}", kind=kind)
            if err:
                errs[i], kinds[i] = f"stamp at {label}: {err}", kind
            else:
                images[i] = img
        return self._table(images, errs, kinds, ra, dec, size=size,
                           pixscale=scalar if np.ndim(pixscale) == 0 else None, layer=layer or self.layer,
                           bands=bands)

    def _table(self, images, errs, kinds, ra, dec, *, size, pixscale, layer, bands) -> Table:
        ok = np.array([not e for e in errs], dtype=bool)
        t = Table()
        t["index"] = np.arange(len(ra))
        t["ra"] = ra * u.deg
        t["dec"] = dec * u.deg
        t["ok"] = ok
        t["in_footprint"] = np.array([bool(o) and not is_blank(im) for o, im in zip(ok, images)], dtype=bool)
        t["error"] = np.array(errs, dtype=str) if len(errs) else np.array([], dtype="U1")
        t["error_kind"] = np.array(kinds, dtype="U11")
        t["image"] = images
        t.meta["astro_semsearch"] = {
            "service": type(self).__name__, "url": str(self.root) if self.root is not None else self.url,
            "size": size, "pixscale": "per-row" if pixscale is None else pixscale, "layer": layer, "bands": bands,
            "format": "fits", "resample": self.resample,
        }
        return t

    def get_cutout(self, coordinate, *, size: int = 256, pixscale=0.262, bands: str = "grz",
                   cache: bool = True) -> fits.HDUList:
        """One stamp as an `~astropy.io.fits.HDUList` (primary HDU: the bands, with the stamp's TAN WCS)."""
        t = self.get_cutouts(coordinate, size=size, pixscale=pixscale, bands=bands, cache=cache, progress=False)
        if len(t) != 1:
            raise InvalidInputError(f"get_cutout takes one position, got {len(t)}; use get_cutouts")
        header = stamp_wcs(float(t["ra"][0]), float(t["dec"][0]), float(u.Quantity(pixscale, u.arcsec).value),
                            int(t.meta["astro_semsearch"]["size"])).to_header()
        return fits.HDUList([fits.PrimaryHDU(np.asarray(t["image"][0]), header=header)])
