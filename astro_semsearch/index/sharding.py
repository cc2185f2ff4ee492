"""Writing a sharded index: how rows are split into shards, and shards added without touching the others.

`ShardWriter` is the writing half of `~astro_semsearch.index.ShardedIndex`
(which inherits it): `create` an empty sharded index, `build` one from
embeddings, `add_shard` one `~astro_semsearch.index.GalaxyIndex`, `add`
rows routed to their HEALPix shards. Every change rewrites ``shards.json``
atomically.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._io import atomic_write_bytes, output_lock, sha256_file
from .._validate import check_int
from ..exceptions import IndexIntegrityError, InvalidInputError, ModelMismatchError
from ._checks import as_unit_matrix, normalise_catalog
from .galaxy_index import GalaxyIndex
from .integrity import plain_name
from .storage import MANIFEST_FILE, model_record, package_version, utcnow

if TYPE_CHECKING:  # annotations only
    from .sharded import ShardedIndex

__all__ = ["ShardWriter", "is_sharded", "healpix_pixels", "SHARDS_FILE", "SHARDS_FORMAT_VERSION"]

#: Name of the sharded-index manifest inside its directory.
SHARDS_FILE = "shards.json"
#: Version of the ``shards.json`` layout.
SHARDS_FORMAT_VERSION = 1


def is_sharded(path: str | os.PathLike) -> bool:
    """True if ``path`` is a sharded-index directory (holds ``shards.json``)."""
    return (Path(path) / SHARDS_FILE).is_file()


def healpix_pixels(ra, dec, order: int) -> np.ndarray:
    """Nested HEALPix pixel numbers of positions (degrees) at ``order`` (nside = 2**order).

    Examples
    --------
    >>> healpix_pixels([0.0, 180.0], [89.9, -89.9], order=0).tolist()
    [0, 10]
    """
    from astropy import units as u
    from astropy_healpix import HEALPix

    order = check_int(order, "order", minimum=0)
    if order > 29:
        raise InvalidInputError(f"HEALPix order must be <= 29, got {order}")
    hp = HEALPix(nside=2**order, order="nested")
    return np.asarray(hp.lonlat_to_healpix(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg), dtype=np.int64)


def _model_record(model) -> dict | None:
    dim = getattr(model, "dim", None)
    return model_record(model, dim) if dim is not None else (
        None if model is None else {"name": getattr(model, "name", None),
                                    "fingerprint": getattr(model, "fingerprint", None), "dim": None})


def _locked(method):
    """Run a writing method holding the sharded index's ``<directory>.lock`` (one writer at a time)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with output_lock(self.path):
            return method(self, *args, **kwargs)
    return wrapper


class ShardWriter:
    """Creating and extending a sharded index (mixed into `~astro_semsearch.index.ShardedIndex`).

    Every change holds ``<directory>.lock`` (`~astro_semsearch._io.output_lock`):
    a second writer gets a `~astro_semsearch.exceptions.LockedError`, and
    shards are only ever written to plain-named directories inside the index.
    """

    @classmethod
    def create(cls, directory: str | os.PathLike, *, name: str | None = None, by: str = "rows",
               order: int | None = None, survey: str | None = None, model=None) -> "ShardedIndex":
        """Make an empty sharded index directory (fill it with `add_shard` or `add`).

        Parameters
        ----------
        directory : path
            Must not exist yet, or be an empty directory.
        name, survey : str, optional
            Recorded in the manifest (``name`` defaults to the directory name).
        by : {"rows", "healpix"}
            How rows are assigned to shards.
        order : int
            HEALPix order (nside = 2**order) when ``by="healpix"``.
        model : `GalaxyModel`, optional
            Recorded; every shard must then come from this model.
        """
        if by not in ("rows", "healpix"):
            raise InvalidInputError(f"by must be 'rows' or 'healpix', got {by!r}")
        if by == "healpix":
            if order is None:
                raise InvalidInputError("by='healpix' needs a HEALPix order (nside = 2**order), e.g. order=3")
            order = check_int(order, "order", minimum=0)
        elif order is not None:
            raise InvalidInputError("order= is only for by='healpix'")
        directory = Path(directory)
        with output_lock(directory):
            return cls._create(directory, name=name, by=by, order=order, survey=survey, model=model)

    @classmethod
    def _create(cls, directory: Path, *, name, by, order, survey, model) -> "ShardedIndex":
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise FileExistsError(f"{directory} already exists and is not an empty directory")
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": "astro_semsearch-sharded",
            "format_version": SHARDS_FORMAT_VERSION,
            "name": name or directory.name,
            "survey": survey,
            "by": by,
            "healpix_order": order,
            "dim": None,
            "model": _model_record(model),
            "package_version": package_version(),
            "created": utcnow(),
            "shards": [],
        }
        self = cls(directory, manifest, [])
        self.write_manifest()
        return self

    @classmethod
    def build(
        cls,
        embeddings,
        table,
        directory: str | os.PathLike,
        *,
        by: str = "rows",
        shard_size: int | None = None,
        order: int | None = None,
        kind: str = "auto",
        model=None,
        name: str | None = None,
        survey: str | None = None,
        **knobs: Any,
    ) -> "ShardedIndex":
        """Split embeddings + catalogue into shards and write them.

        Parameters
        ----------
        embeddings : array-like, shape (n, dim)
        table : `~astropy.table.Table`
            ``object_id``, ``ra``, ``dec`` (+ kept columns), as for `GalaxyIndex.build`.
        directory : path
            The new sharded-index directory.
        by : {"rows", "healpix"}
            ``"rows"``: consecutive blocks of ``shard_size`` rows.
            ``"healpix"``: one shard per occupied HEALPix pixel of ``order``.
        kind, model, name, survey, **knobs
            Passed to `GalaxyIndex.build` for every shard.

        Examples
        --------
        >>> sharded = ShardedIndex.build(vec, cat, "idx", by="healpix", order=2)  # doctest: +SKIP
        """
        vectors = as_unit_matrix(embeddings, getattr(model, "dim", None) if model is not None else None)
        cat = normalise_catalog(table, len(vectors))
        if by == "rows":
            if shard_size is None:
                raise InvalidInputError("by='rows' needs shard_size (rows per shard)")
            shard_size = check_int(shard_size, "shard_size")
        elif shard_size is not None:
            raise InvalidInputError("shard_size= is only for by='rows'")
        with output_lock(directory):
            self = cls.create(directory, name=name, by=by, order=order, survey=survey, model=model)
            self._fill(vectors, cat, by, shard_size, kind=kind, model=model, survey=survey, **knobs)
        return self

    def _fill(self, vectors, cat, by: str, shard_size: int | None, *, kind, model, survey, **knobs) -> None:
        """Write the shards of a new sharded index (`build`); remove the directory on error."""
        try:
            if by == "rows":
                for lo in range(0, len(vectors), shard_size):
                    sl = slice(lo, lo + shard_size)
                    self.add_shard(GalaxyIndex.build(vectors[sl], cat[sl], kind=kind, model=model, survey=survey,
                                                     name=f"{self.name}/{len(self.shards):05d}", **knobs))
            else:
                self.add(vectors, cat, kind=kind, model=model, **knobs)
        except BaseException:
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    # ------------------------------------------------------------ load/save

    def write_manifest(self) -> None:
        """Write ``shards.json`` (atomically) from `manifest`, e.g. after adding an entry to it."""
        self.manifest["count"] = self.ntotal
        data = (json.dumps(self.manifest, indent=2) + "\n").encode("utf-8")
        atomic_write_bytes(self.path / SHARDS_FILE, data)

    # ------------------------------------------------------------ adding
    def _shard_dir(self, rec: dict) -> Path:
        """The directory of a shard record: a plain name inside the index, never anywhere else."""
        name = rec.get("directory")
        if not plain_name(name):
            raise IndexIntegrityError(f"{self.path / SHARDS_FILE}: shard directory {name!r:.80} is not a plain "
                                      "name inside the index; refused")
        return self.path / name

    @_locked
    def add_shard(self, index: GalaxyIndex | str | os.PathLike, *, pixel: int | None = None,
                  move: bool = False) -> GalaxyIndex:
        """Add one `GalaxyIndex` as a new shard; the other shards are not touched.

        Parameters
        ----------
        index : `GalaxyIndex` or path
            An index in memory (saved into this directory) or a saved index
            directory (copied, or moved with ``move=True``).
        pixel : int, optional
            The HEALPix pixel the shard covers (required when the index is
            partitioned by HEALPix; every galaxy must lie in it).

        Returns
        -------
        `GalaxyIndex`
            The new shard, opened from its place in this directory.

        Raises
        ------
        ValueError
            Dimension, model or catalogue columns differ from the other
            shards, object ids already exist, or the pixel is wrong/taken.
        """
        source_dir = None
        if not isinstance(index, GalaxyIndex):
            source_dir = Path(index)
            index = GalaxyIndex.load(source_dir)
        if index.ntotal == 0:
            raise InvalidInputError("cannot add an empty shard")
        self._check_compatible(index)
        by = self.manifest["by"]
        if by == "healpix":
            if pixel is None:
                raise InvalidInputError("this index is partitioned by HEALPix: pass pixel=")
            pixel = check_int(pixel, "pixel", minimum=0)
            if pixel in self._pixels():
                raise InvalidInputError(f"HEALPix pixel {pixel} already has a shard; use add() to append rows to it")
            pix = healpix_pixels(index.table["ra"], index.table["dec"], self.manifest["healpix_order"])
            if (pix != pixel).any():
                raise InvalidInputError(f"{int((pix != pixel).sum())} galaxies of this shard are not in HEALPix pixel {pixel}")
        elif pixel is not None:
            raise InvalidInputError("pixel= is only for indexes partitioned by HEALPix")
        clash = self.rows_of(np.asarray(index.table["object_id"])) >= 0 if self.shards else np.zeros(1, bool)
        if clash.any():
            ids = np.asarray(index.table["object_id"])[clash][:5].tolist()
            raise InvalidInputError(f"object_id(s) already in another shard: {ids}")
        sname = (f"hpx{self.manifest['healpix_order']}-{pixel:07d}" if by == "healpix"
                 else f"shard-{self._next_number():05d}")
        target = self.path / sname
        if source_dir is not None and move:
            if not (source_dir / "manifest.json").is_file() or index.manifest.get("files") in (None, {}):
                raise InvalidInputError(f"{source_dir} is not a saved index")
            os.rename(source_dir, target)
        elif source_dir is not None:
            shutil.copytree(source_dir, target)
        else:
            index.save(target)
        shard = GalaxyIndex.load(target, verify=False)
        self._register(shard, sname, pixel)
        return shard

    @_locked
    def add(self, embeddings, table, *, kind: str = "auto", model=None, **knobs: Any) -> None:
        """Add galaxies, touching only the shards they belong to.

        By HEALPix: each row goes to its pixel's shard (an existing shard is
        extended with `GalaxyIndex.add` and rewritten; a new pixel gets a new
        shard). By rows: all rows become one new shard.
        ``kind`` and ``knobs`` apply to new shards only.
        """
        vectors = as_unit_matrix(embeddings, self.dim if self.shards else None)
        cat = normalise_catalog(table, len(vectors))
        if self.manifest["by"] == "rows":
            self.add_shard(GalaxyIndex.build(vectors, cat, kind=kind, model=model, survey=self.manifest.get("survey"),
                                             name=f"{self.name}/{self._next_number():05d}", **knobs))
            return
        if self.shards:
            clash = self.rows_of(np.asarray(cat["object_id"])) >= 0
            if clash.any():
                raise InvalidInputError(f"object_id(s) already in the index: {np.asarray(cat['object_id'])[clash][:5].tolist()}")
        pix = healpix_pixels(cat["ra"], cat["dec"], self.manifest["healpix_order"])
        existing = self._pixels()
        for p in np.unique(pix):
            sel = np.flatnonzero(pix == p)
            if int(p) in existing:
                i = existing[int(p)]
                rec = self.manifest["shards"][i]
                sdir = self._shard_dir(rec)
                shard = GalaxyIndex.load(sdir, mmap=False, verify=False)
                shard.add(vectors[sel], cat[sel])
                shard.save(sdir, overwrite=True)
                shard = GalaxyIndex.load(sdir, verify=False)
                with self._lock:
                    self.shards[i] = shard
                    rec["count"] = shard.ntotal
                    rec["manifest_sha256"] = sha256_file(sdir / MANIFEST_FILE)
                    self._changed()
                    self.write_manifest()
            else:
                self.add_shard(GalaxyIndex.build(vectors[sel], cat[sel], kind=kind, model=model,
                                                 survey=self.manifest.get("survey"),
                                                 name=f"{self.name}/hpx{int(p)}", **knobs), pixel=int(p))

    def _check_compatible(self, index: GalaxyIndex) -> None:
        dim = self.manifest.get("dim")
        if dim is not None and index.dim != dim:
            raise InvalidInputError(f"the new shard has dimension {index.dim}, the sharded index {dim}")
        rec = self.manifest.get("model") or {}
        new = index.manifest.get("model") or {}
        if rec.get("fingerprint") and new.get("fingerprint") and rec["fingerprint"] != new["fingerprint"]:
            raise ModelMismatchError(
                f"the new shard was embedded by model {new.get('name')!r} (sha256 {new['fingerprint'][:12]}...), "
                f"the sharded index by {rec.get('name')!r} (sha256 {rec['fingerprint'][:12]}...)")
        if self.shards and list(index.table.colnames) != list(self.shards[0].table.colnames):
            raise InvalidInputError(f"the new shard's catalogue columns {index.table.colnames} differ from the other "
                             f"shards' {self.shards[0].table.colnames}")

    def _register(self, shard: GalaxyIndex, sname: str, pixel: int | None) -> None:
        with self._lock:
            rec = {"directory": sname, "count": shard.ntotal, "kind": shard.kind,
                   "manifest_sha256": sha256_file(self.path / sname / MANIFEST_FILE)}
            if pixel is not None:
                rec["healpix_pixel"] = int(pixel)
            self.manifest["shards"].append(rec)
            self.shards.append(shard)
            if self.manifest.get("dim") is None:
                self.manifest["dim"] = shard.dim
            if not self.manifest.get("model") and shard.manifest.get("model"):
                self.manifest["model"] = dict(shard.manifest["model"])
            self._changed()
            self.write_manifest()

    def _next_number(self) -> int:
        nums = [int(m[1]) for r in self.manifest["shards"] if (m := re.match(r"^shard-(\d+)$", str(r["directory"])))]
        return max(nums, default=-1) + 1
