"""Sharded galaxy indexes: many `GalaxyIndex` directories searched as one.

A survey-sized collection does not have to live in one index. A
`ShardedIndex` is a directory of ordinary `~astro_semsearch.index.GalaxyIndex`
shards plus a small manifest (``shards.json``). Shards are cut either

* by **row range** (``by="rows"``): consecutive blocks of the catalogue, the
  natural output of a distributed build (`astro_semsearch.distributed`), or
* by **HEALPix pixel** (``by="healpix"``, nested ordering, ``order`` chosen by
  you): every galaxy goes to the shard of the pixel it falls in, so a search
  restricted to a patch of sky only opens the shards that touch it.

A query is sent to every shard at once from a thread pool (FAISS releases the
GIL, so the shards really are searched in parallel) and the per-shard top-k
lists are merged into one ranking. Each shard keeps its own index kind, so a
small shard can be exact while a big one is IVF-PQ with refinement.

Rows of a `ShardedIndex` are numbered globally: shard 0's rows first, then
shard 1's, and so on (``shard offset + row in shard``). The object exposes the
methods `~astro_semsearch.search.semantic_search` and
`~astro_semsearch.search.similar_to` use (``search``, ``vectors``,
``rows_of``, ``table``, ``manifest``, ``check_model``), so it can be passed
wherever an index is expected.

Adding galaxies never rebuilds the shards that are not touched: `add_shard`
writes one new shard, `add` routes new rows to their HEALPix shards (or to one
new row-range shard) and rewrites only those.

Files on disk::

    my-index/
        shards.json          # format, name, partitioning, model, and per shard:
                             # directory, count, pixel/row range, manifest sha256
        shard-00000/         # a GalaxyIndex directory (index.faiss, vectors.npy,
        shard-00001/         #   catalog.fits, manifest.json)
        ...

Examples
--------
>>> import numpy as np, tempfile
>>> from astropy.table import Table
>>> from astro_semsearch.shards import ShardedIndex
>>> rng = np.random.default_rng(0)
>>> vec = rng.normal(size=(300, 16)).astype("float32")
>>> cat = Table({"object_id": [f"G{i}" for i in range(300)],
...              "ra": rng.uniform(0, 360, 300), "dec": rng.uniform(-60, 60, 300)})
>>> with tempfile.TemporaryDirectory() as tmp:
...     sharded = ShardedIndex.build(vec, cat, f"{tmp}/idx", shard_size=100)
...     scores, rows = sharded.search(vec[:1], k=3)
...     (sharded.nshards, sharded.ntotal, int(rows[0, 0]))
(3, 300, 0)
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy.table import Table, vstack
from astropy.utils.exceptions import AstropyUserWarning

from ._utils import atomic_write_bytes, read_json, sha256_file
from .exceptions import IndexIntegrityError, ModelMismatchError
from .index import MANIFEST_FILE, GalaxyIndex, _as_matrix, _check_int, _normalise_table

__all__ = ["ShardedIndex", "is_sharded", "healpix_pixels", "load_sharded_index"]

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

    order = _check_int(order, "order", minimum=0)
    if order > 29:
        raise ValueError(f"HEALPix order must be <= 29, got {order}")
    hp = HEALPix(nside=2**order, order="nested")
    return np.asarray(hp.lonlat_to_healpix(np.asarray(ra, float) * u.deg, np.asarray(dec, float) * u.deg), dtype=np.int64)


def _model_record(model) -> dict | None:
    if model is None:
        return None
    return {"name": getattr(model, "name", None), "fingerprint": getattr(model, "fingerprint", None),
            "dim": getattr(model, "dim", None)}


class ShardedIndex:
    """A directory of `GalaxyIndex` shards searched in parallel as one index.

    Create one with `ShardedIndex.build` (from embeddings), `ShardedIndex.create`
    (empty, then `add_shard`), or `astro_semsearch.distributed.build_index_dask`;
    open one with `ShardedIndex.load`.

    Attributes
    ----------
    path : `pathlib.Path`
        The directory.
    manifest : dict
        The content of ``shards.json`` (see the module docstring).
    shards : list of `GalaxyIndex`
        The open shards, in global row order.
    """

    kind = "sharded"

    def __init__(self, path: Path, manifest: dict, shards: list[GalaxyIndex], max_workers: int | None = None):
        self.path = Path(path)
        self.manifest = manifest
        self.shards = shards
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._table: Table | None = None
        self._id_order: np.ndarray | None = None
        self._offsets = self._compute_offsets()

    # ------------------------------------------------------------ creation
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
            raise ValueError(f"by must be 'rows' or 'healpix', got {by!r}")
        if by == "healpix":
            if order is None:
                raise ValueError("by='healpix' needs a HEALPix order (nside = 2**order), e.g. order=3")
            order = _check_int(order, "order", minimum=0)
        elif order is not None:
            raise ValueError("order= is only for by='healpix'")
        directory = Path(directory)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise FileExistsError(f"{directory} already exists and is not an empty directory")
        directory.mkdir(parents=True, exist_ok=True)
        from .index import _package_version, _utcnow

        manifest = {
            "format": "astro_semsearch-sharded",
            "format_version": SHARDS_FORMAT_VERSION,
            "name": name or directory.name,
            "survey": survey,
            "by": by,
            "healpix_order": order,
            "dim": None,
            "model": _model_record(model),
            "package_version": _package_version(),
            "created": _utcnow(),
            "shards": [],
        }
        self = cls(directory, manifest, [])
        self._write_manifest()
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
        vectors = _as_matrix(embeddings, getattr(model, "dim", None) if model is not None else None)
        cat = _normalise_table(table, len(vectors))
        if by == "rows":
            if shard_size is None:
                raise ValueError("by='rows' needs shard_size (rows per shard)")
            shard_size = _check_int(shard_size, "shard_size")
        elif shard_size is not None:
            raise ValueError("shard_size= is only for by='rows'")
        self = cls.create(directory, name=name, by=by, order=order, survey=survey, model=model)
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
        return self

    # ------------------------------------------------------------ load/save
    @classmethod
    def load(cls, directory: str | os.PathLike, *, mmap: bool = True, verify: bool = True,
             max_workers: int | None = None) -> "ShardedIndex":
        """Open a sharded index; every shard is checked like `GalaxyIndex.load`.

        Parameters
        ----------
        mmap, verify
            Passed to `GalaxyIndex.load` for each shard.
        max_workers : int, optional
            Threads used to search shards in parallel (default: one per
            shard, at most the number of CPUs).

        Raises
        ------
        IndexIntegrityError
            ``shards.json`` is missing or invalid, a shard is missing, or a
            shard's manifest differs from the one recorded.
        """
        directory = Path(directory)
        mpath = directory / SHARDS_FILE
        if not mpath.is_file():
            raise IndexIntegrityError(f"{directory} is not a sharded index: {SHARDS_FILE} is missing")
        manifest = read_json(mpath, IndexIntegrityError)
        if manifest.get("format_version") != SHARDS_FORMAT_VERSION:
            raise IndexIntegrityError(
                f"{mpath}: sharded format version {manifest.get('format_version')!r} is not supported "
                f"(this package reads version {SHARDS_FORMAT_VERSION})")
        shards = []
        for rec in manifest.get("shards", []):
            sdir = directory / rec["directory"]
            if not (sdir / MANIFEST_FILE).is_file():
                raise IndexIntegrityError(f"shard {rec['directory']} of {directory} is missing")
            if sha256_file(sdir / MANIFEST_FILE) != rec["manifest_sha256"]:
                raise IndexIntegrityError(
                    f"shard {rec['directory']} of {directory} was changed outside this ShardedIndex "
                    "(its manifest.json does not match shards.json)")
            shard = GalaxyIndex.load(sdir, mmap=mmap, verify=verify)
            if shard.ntotal != rec["count"]:
                raise IndexIntegrityError(f"shard {rec['directory']}: {shard.ntotal} galaxies, shards.json says {rec['count']}")
            shards.append(shard)
        return cls(directory, manifest, shards, max_workers=max_workers)

    def _write_manifest(self) -> None:
        self.manifest["count"] = self.ntotal
        data = (json.dumps(self.manifest, indent=2) + "\n").encode("utf-8")
        atomic_write_bytes(self.path / SHARDS_FILE, data)

    # ------------------------------------------------------------ adding
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
            raise ValueError("cannot add an empty shard")
        self._check_compatible(index)
        by = self.manifest["by"]
        if by == "healpix":
            if pixel is None:
                raise ValueError("this index is partitioned by HEALPix: pass pixel=")
            pixel = _check_int(pixel, "pixel", minimum=0)
            if pixel in self._pixels():
                raise ValueError(f"HEALPix pixel {pixel} already has a shard; use add() to append rows to it")
            pix = healpix_pixels(index.table["ra"], index.table["dec"], self.manifest["healpix_order"])
            if (pix != pixel).any():
                raise ValueError(f"{int((pix != pixel).sum())} galaxies of this shard are not in HEALPix pixel {pixel}")
        elif pixel is not None:
            raise ValueError("pixel= is only for indexes partitioned by HEALPix")
        clash = self.rows_of(np.asarray(index.table["object_id"])) >= 0 if self.shards else np.zeros(1, bool)
        if clash.any():
            ids = np.asarray(index.table["object_id"])[clash][:5].tolist()
            raise ValueError(f"object_id(s) already in another shard: {ids}")
        sname = (f"hpx{self.manifest['healpix_order']}-{pixel:07d}" if by == "healpix"
                 else f"shard-{self._next_number():05d}")
        target = self.path / sname
        if source_dir is not None and move:
            if not (source_dir / "manifest.json").is_file() or index.manifest.get("files") in (None, {}):
                raise ValueError(f"{source_dir} is not a saved index")
            os.rename(source_dir, target)
        elif source_dir is not None:
            shutil.copytree(source_dir, target)
        else:
            index.save(target)
        shard = GalaxyIndex.load(target, verify=False)
        self._register(shard, sname, pixel)
        return shard

    def add(self, embeddings, table, *, kind: str = "auto", model=None, **knobs: Any) -> None:
        """Add galaxies, touching only the shards they belong to.

        By HEALPix: each row goes to its pixel's shard (an existing shard is
        extended with `GalaxyIndex.add` and rewritten; a new pixel gets a new
        shard). By rows: all rows become one new shard.
        ``kind`` and ``knobs`` apply to new shards only.
        """
        vectors = _as_matrix(embeddings, self.dim if self.shards else None)
        cat = _normalise_table(table, len(vectors))
        if self.manifest["by"] == "rows":
            self.add_shard(GalaxyIndex.build(vectors, cat, kind=kind, model=model, survey=self.manifest.get("survey"),
                                             name=f"{self.name}/{self._next_number():05d}", **knobs))
            return
        if self.shards:
            clash = self.rows_of(np.asarray(cat["object_id"])) >= 0
            if clash.any():
                raise ValueError(f"object_id(s) already in the index: {np.asarray(cat['object_id'])[clash][:5].tolist()}")
        pix = healpix_pixels(cat["ra"], cat["dec"], self.manifest["healpix_order"])
        existing = self._pixels()
        for p in np.unique(pix):
            sel = np.flatnonzero(pix == p)
            if int(p) in existing:
                i = existing[int(p)]
                rec = self.manifest["shards"][i]
                shard = GalaxyIndex.load(self.path / rec["directory"], mmap=False, verify=False)
                shard.add(vectors[sel], cat[sel])
                shard.save(self.path / rec["directory"], overwrite=True)
                shard = GalaxyIndex.load(self.path / rec["directory"], verify=False)
                with self._lock:
                    self.shards[i] = shard
                    rec["count"] = shard.ntotal
                    rec["manifest_sha256"] = sha256_file(self.path / rec["directory"] / MANIFEST_FILE)
                    self._changed()
                    self._write_manifest()
            else:
                self.add_shard(GalaxyIndex.build(vectors[sel], cat[sel], kind=kind, model=model,
                                                 survey=self.manifest.get("survey"),
                                                 name=f"{self.name}/hpx{int(p)}", **knobs), pixel=int(p))

    def _check_compatible(self, index: GalaxyIndex) -> None:
        dim = self.manifest.get("dim")
        if dim is not None and index.dim != dim:
            raise ValueError(f"the new shard has dimension {index.dim}, the sharded index {dim}")
        rec = self.manifest.get("model") or {}
        new = index.manifest.get("model") or {}
        if rec.get("fingerprint") and new.get("fingerprint") and rec["fingerprint"] != new["fingerprint"]:
            raise ModelMismatchError(
                f"the new shard was embedded by model {new.get('name')!r} (sha256 {new['fingerprint'][:12]}...), "
                f"the sharded index by {rec.get('name')!r} (sha256 {rec['fingerprint'][:12]}...)")
        if self.shards and list(index.table.colnames) != list(self.shards[0].table.colnames):
            raise ValueError(f"the new shard's catalogue columns {index.table.colnames} differ from the other "
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
            self._write_manifest()

    def _changed(self) -> None:
        self._table = None
        self._id_order = None
        self._offsets = self._compute_offsets()
        if hasattr(self, "_skycoord"):
            del self._skycoord  # search.py caches coordinates on the index object

    def _next_number(self) -> int:
        nums = [int(r["directory"].split("-")[-1]) for r in self.manifest["shards"] if r["directory"].startswith("shard-")]
        return max(nums, default=-1) + 1

    def _pixels(self) -> dict[int, int]:
        return {int(r["healpix_pixel"]): i for i, r in enumerate(self.manifest["shards"]) if "healpix_pixel" in r}

    def _compute_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([s.ntotal for s in self.shards], dtype=np.int64)]).astype(np.int64)

    # ------------------------------------------------------------ accessors
    @property
    def ntotal(self) -> int:
        """Number of galaxies over all shards."""
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return self.ntotal

    @property
    def nshards(self) -> int:
        return len(self.shards)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        if self.manifest.get("dim") is None:
            raise ValueError("the sharded index has no shards yet")
        return int(self.manifest["dim"])

    @property
    def name(self) -> str | None:
        return self.manifest.get("name")

    @property
    def knobs(self) -> dict:
        return {}

    @property
    def offsets(self) -> np.ndarray:
        """Global row number of each shard's first row (plus the total at the end)."""
        return self._offsets.copy()

    @property
    def table(self) -> Table:
        """The catalogues of all shards stacked in global row order (built on first use)."""
        if self._table is None:
            with self._lock:
                if self._table is None:
                    if not self.shards:
                        raise ValueError("the sharded index has no shards yet")
                    self._table = vstack([s.table for s in self.shards], join_type="exact", metadata_conflicts="silent")
        return self._table

    def _split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global rows -> (shard number, local row)."""
        shard = np.searchsorted(self._offsets, rows, side="right") - 1
        return shard, rows - self._offsets[shard]

    def vectors(self, rows=None) -> np.ndarray:
        """Full-precision unit vectors of global rows (all rows if None)."""
        if rows is None:
            return np.concatenate([s.vectors() for s in self.shards])
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        shape = rows.shape
        rows = rows.reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.ntotal):
            raise IndexError(f"row numbers must be in [0, {self.ntotal}), got {rows.min()}..{rows.max()}")
        out = np.empty((rows.size, self.dim), np.float32)
        shard, local = self._split(rows)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self.shards[s].vectors(local[sel])
        return out.reshape(*shape, self.dim)

    def catalog(self, rows=None) -> Table:
        """Catalogue rows (global row numbers; all if None) as an in-memory Table."""
        if rows is None:
            return vstack([s.catalog() for s in self.shards], join_type="exact", metadata_conflicts="silent")
        rows = np.atleast_1d(np.asarray(rows))
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= self.ntotal):
            raise IndexError(f"row numbers must be in [0, {self.ntotal}), got {rows.min()}..{rows.max()}")
        if rows.size == 0:
            return self.shards[0].catalog([])
        shard, local = self._split(rows)
        parts, order = [], []
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            parts.append(self.shards[s].catalog(local[sel]))
            order.append(sel)
        out = vstack(parts, join_type="exact", metadata_conflicts="silent")
        return out[np.argsort(np.concatenate(order), kind="stable")]

    def object_ids(self, rows=None) -> np.ndarray:
        """``object_id`` of global rows (all if None) as a ``str`` array."""
        return np.asarray(self.catalog(rows)["object_id"]).astype(str)

    def coords(self, rows=None):
        """Sky positions (SkyCoord) of global rows (all if None)."""
        from astropy.coordinates import SkyCoord
        from astropy import units as u

        cat = self.catalog(rows)
        return SkyCoord(np.asarray(cat["ra"], float) * u.deg, np.asarray(cat["dec"], float) * u.deg)

    def rows_of(self, object_ids) -> np.ndarray:
        """Global row numbers of object ids; -1 where an id is not in the index."""
        ids = np.atleast_1d(np.asarray(object_ids).astype(str))
        if not self.shards:
            return np.full(len(ids), -1, np.int64)
        out = np.full(len(ids), -1, np.int64)
        for s, shard in enumerate(self.shards):
            local = shard.rows_of(ids)
            hit = (local >= 0) & (out < 0)
            out[hit] = local[hit] + self._offsets[s]
        return out

    def check_model(self, model) -> None:
        """Raise `ModelMismatchError` unless ``model`` made the shards' embeddings."""
        for shard in self.shards[:1] or []:
            shard.check_model(model)
        rec = self.manifest.get("model") or {}
        fp, mfp = rec.get("fingerprint"), getattr(model, "fingerprint", None)
        if fp and mfp and fp != mfp:
            raise ModelMismatchError(f"sharded index {self.name!r} was built by model {rec.get('name')!r}, "
                                     f"not {getattr(model, 'name', None)!r}")

    def set_knobs(self, **knobs) -> None:
        """Set search knobs (nprobe, ef_search, refine_factor) on every shard that has them."""
        for shard in self.shards:
            shard.set_knobs(**{k: v for k, v in knobs.items() if shard.kind in ("ivfpq", "hnsw", "factory")})

    def pixels_in_cone(self, center, radius) -> list[int]:
        """HEALPix pixels with a shard that overlap a cone (for ``search(..., pixels=...)``).

        Parameters
        ----------
        center : `~astropy.coordinates.SkyCoord`
            One position.
        radius : `~astropy.units.Quantity` (angle)

        Examples
        --------
        >>> pix = sharded.pixels_in_cone(SkyCoord(150 * u.deg, 2 * u.deg), 1 * u.deg)  # doctest: +SKIP
        >>> scores, rows = sharded.search(qvec, 50, pixels=pix)                         # doctest: +SKIP
        """
        from astropy_healpix import HEALPix

        if self.manifest["by"] != "healpix":
            raise ValueError("pixels_in_cone needs an index partitioned by HEALPix")
        hp = HEALPix(nside=2 ** self.manifest["healpix_order"], order="nested")
        icrs = center.icrs
        touched = set(np.asarray(hp.cone_search_lonlat(icrs.ra, icrs.dec, radius)).tolist())
        return sorted(p for p in self._pixels() if p in touched)

    # ------------------------------------------------------------ search
    def search(self, vectors, k: int, *, subset=None, pixels: Sequence[int] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Search every shard in parallel and merge into one ranking.

        Parameters
        ----------
        vectors : array-like, shape (n, dim) or (dim,)
        k : int
            Neighbours per query (clipped with a warning to what is searchable).
        subset : array-like of bool (ntotal,) or global row numbers, optional
            Search only these rows; shards holding none of them are skipped.
        pixels : list of int, optional
            HEALPix pixels (of the index's order) to search; only for indexes
            partitioned by HEALPix. Other shards are not searched at all.

        Returns
        -------
        scores, rows : ndarray, shape (n, k)
            Best first; rows are global row numbers (``-1`` past the end).
        """
        k = _check_int(k, "k")
        if not self.shards:
            raise ValueError("the sharded index has no shards yet")
        queries = _as_matrix(vectors, self.dim, what="query vectors")
        per_shard: list[np.ndarray | None] = [None] * self.nshards  # None = the whole shard
        active = list(range(self.nshards))
        if pixels is not None:
            if self.manifest["by"] != "healpix":
                raise ValueError("pixels= needs an index partitioned by HEALPix")
            wanted = {int(p) for p in np.atleast_1d(pixels)}
            active = [i for i, r in enumerate(self.manifest["shards"]) if r.get("healpix_pixel") in wanted]
        if subset is not None:
            sub = np.asarray(subset)
            if sub.dtype == bool:
                if sub.shape != (self.ntotal,):
                    raise ValueError(f"a boolean subset needs one entry per indexed row ({self.ntotal}), got {sub.shape}")
                sub = np.flatnonzero(sub)
            sub = np.unique(sub.astype(np.int64))
            if sub.size and (sub[0] < 0 or sub[-1] >= self.ntotal):
                raise ValueError(f"subset row numbers must be in [0, {self.ntotal})")
            shard_of, local = self._split(sub)
            keep = []
            for i in active:
                rows_i = local[shard_of == i]
                if rows_i.size:
                    per_shard[i] = rows_i
                    keep.append(i)
            active = keep
        available = sum(self.shards[i].ntotal if per_shard[i] is None else len(per_shard[i]) for i in active)
        if available == 0:
            return np.full((len(queries), 0), -np.inf, np.float32), np.full((len(queries), 0), -1, np.int64)
        if k > available:
            warnings.warn(f"k={k} is larger than the {available} searchable galaxies; returning all of them",
                          AstropyUserWarning, stacklevel=2)
            k = available

        def one(i: int):
            shard = self.shards[i]
            n_i = shard.ntotal if per_shard[i] is None else len(per_shard[i])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyUserWarning)
                s, r = shard.search(queries, min(k, n_i), subset=per_shard[i])
            return s, np.where(r >= 0, r + self._offsets[i], -1)

        if len(active) == 1:
            results = [one(active[0])]
        else:
            workers = self.max_workers or min(len(active), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(one, active))
        scores = np.concatenate([r[0] for r in results], axis=1)
        rows = np.concatenate([r[1] for r in results], axis=1)
        scores = np.where(rows < 0, -np.inf, scores)
        # Merge: best score first; equal scores in global row order (deterministic).
        order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores.astype(np.float64)))[:, :k]
        return (np.take_along_axis(scores, order, axis=1).astype(np.float32),
                np.take_along_axis(rows, order, axis=1))

    def merge(self, out: str | os.PathLike, *, kind: str = "auto", overwrite: bool = False, **knobs: Any) -> GalaxyIndex:
        """Write all shards as one `GalaxyIndex` (rows in global order) to ``out``.

        The vectors are copied exactly, streamed from the memory-mapped shards
        (`GalaxyIndex.merge`); the FAISS structure is rebuilt with
        ``kind``/``knobs`` over all rows (an IVF quantiser needs all of them).
        """
        if not self.shards:
            raise ValueError("the sharded index has no shards yet")
        return GalaxyIndex.merge(self.shards, out, kind=kind, name=self.name, survey=self.manifest.get("survey"),
                                 overwrite=overwrite, model=None, **knobs)

    def __repr__(self) -> str:
        return (f"<ShardedIndex {self.name!r}: {self.ntotal} galaxies in {self.nshards} shards "
                f"(by {self.manifest['by']}), dim {self.manifest.get('dim')}>")


_CACHE: dict[tuple[str, str], ShardedIndex] = {}
_CACHE_LOCK = threading.Lock()


def load_sharded_index(directory: str | os.PathLike) -> ShardedIndex:
    """Open a sharded index, cached per directory (and per ``shards.json`` content).

    This is what `~astro_semsearch.semantic_search` and
    `~astro_semsearch.similar_to` use when ``index=`` is a sharded-index
    directory. The cache entry is refreshed when ``shards.json`` changes
    (a shard was added by another process).
    """
    path = Path(directory).expanduser().resolve()
    mpath = path / SHARDS_FILE
    if not mpath.is_file():
        raise IndexIntegrityError(f"{path} is not a sharded index: {SHARDS_FILE} is missing")
    key = (str(path), sha256_file(mpath))
    with _CACHE_LOCK:
        if key not in _CACHE:
            for old in [k for k in _CACHE if k[0] == key[0]]:
                del _CACHE[old]
            _CACHE[key] = ShardedIndex.load(path)
        return _CACHE[key]
