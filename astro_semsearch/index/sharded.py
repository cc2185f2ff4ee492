"""Sharded galaxy indexes: many `GalaxyIndex` directories searched as one.

A survey-sized collection does not have to live in one index. A
`ShardedIndex` is a directory of ordinary `~astro_semsearch.index.GalaxyIndex`
shards plus a small manifest (``shards.json``). Shards are cut either

* by **row range** (``by="rows"``): consecutive blocks of the catalogue, the
  natural output of a distributed build (`astro_semsearch.build.build_index_dask`), or
* by **HEALPix pixel** (``by="healpix"``, nested ordering, ``order`` chosen by
  you): every galaxy goes to the shard of the pixel it falls in, so a search
  restricted to a patch of sky only opens the shards that touch it.

A query is sent to every shard at once from a thread pool (FAISS releases the
GIL, so the shards really are searched in parallel) and the per-shard top-k
lists are merged into one ranking. Each shard keeps its own index kind, so a
small shard can be exact while a big one is IVF-PQ with refinement.

Rows of a `ShardedIndex` are numbered globally: shard 0's rows first, then
shard 1's, and so on (``shard offset + row in shard``). The object exposes the
methods `~astro_semsearch.semantic_search` and
`~astro_semsearch.similar_to` use (``search``, ``vectors``,
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
>>> from astro_semsearch.index import ShardedIndex
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

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy.table import Table, vstack
from astropy.utils.exceptions import AstropyUserWarning

from .._io import sha256_file
from .._validate import check_int
from ..exceptions import IndexIntegrityError, InvalidInputError, ModelMismatchError
from ._checks import as_unit_matrix
from .galaxy_index import GalaxyIndex
from .integrity import check_shards_manifest
from .sampling import BackgroundSample
from .sharding import SHARDS_FILE, SHARDS_FORMAT_VERSION, ShardWriter, healpix_pixels, is_sharded
from .storage import MANIFEST_FILE, read_manifest

__all__ = ["ShardedIndex", "is_sharded", "healpix_pixels", "SHARDS_FILE"]


class ShardedIndex(ShardWriter, BackgroundSample):
    """A directory of `GalaxyIndex` shards searched in parallel as one index.

    Create one with `ShardedIndex.build` (from embeddings), `ShardedIndex.create`
    (empty, then `add_shard`), or `astro_semsearch.build.build_index_dask`;
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
        self._skycoord = None  # all positions, built on first use
        self._offsets = self._compute_offsets()

    # ------------------------------------------------------------ creation

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
            ``shards.json`` is missing or invalid (every field is
            type-checked; shard directories must be plain names inside the
            index), a shard is missing, or a shard's manifest differs from
            the one recorded.
        """
        directory = Path(directory)
        manifest = read_manifest(directory, SHARDS_FILE, SHARDS_FORMAT_VERSION, "sharded index")
        check_shards_manifest(manifest, directory / SHARDS_FILE, SHARDS_FORMAT_VERSION)
        root = directory.resolve()
        shards = []
        for rec in manifest["shards"]:
            sdir = directory / rec["directory"]
            if root not in sdir.resolve().parents:
                raise IndexIntegrityError(f"shard {rec['directory']} of {directory} leads outside the index "
                                          f"(to {sdir.resolve()}); refused")
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

    def _changed(self) -> None:
        self._table = None
        self._id_order = None
        self._offsets = self._compute_offsets()
        self._skycoord = None
        self._background = None

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
            raise InvalidInputError("the sharded index has no shards yet")
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
                        raise InvalidInputError("the sharded index has no shards yet")
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
        """Sky positions (SkyCoord) of global rows (all if None; that one is cached)."""
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        if rows is None and self._skycoord is not None:
            return self._skycoord
        cat = self.catalog(rows)
        coords = SkyCoord(np.asarray(cat["ra"], float) * u.deg, np.asarray(cat["dec"], float) * u.deg)
        if rows is None:
            self._skycoord = coords
        return coords

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
            raise InvalidInputError("pixels_in_cone needs an index partitioned by HEALPix")
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
        k = check_int(k, "k")
        if not self.shards:
            raise InvalidInputError("the sharded index has no shards yet")
        queries = as_unit_matrix(vectors, self.dim, what="query vectors")
        per_shard: list[np.ndarray | None] = [None] * self.nshards  # None = the whole shard
        active = list(range(self.nshards))
        if pixels is not None:
            if self.manifest["by"] != "healpix":
                raise InvalidInputError("pixels= needs an index partitioned by HEALPix")
            wanted = {int(p) for p in np.atleast_1d(pixels)}
            active = [i for i, r in enumerate(self.manifest["shards"]) if r.get("healpix_pixel") in wanted]
        if subset is not None:
            sub = np.asarray(subset)
            if sub.dtype == bool:
                if sub.shape != (self.ntotal,):
                    raise InvalidInputError(f"a boolean subset needs one entry per indexed row ({self.ntotal}), got {sub.shape}")
                sub = np.flatnonzero(sub)
            sub = np.unique(sub.astype(np.int64))
            if sub.size and (sub[0] < 0 or sub[-1] >= self.ntotal):
                raise InvalidInputError(f"subset row numbers must be in [0, {self.ntotal})")
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
            raise InvalidInputError("the sharded index has no shards yet")
        return GalaxyIndex.merge(self.shards, out, kind=kind, name=self.name, survey=self.manifest.get("survey"),
                                 overwrite=overwrite, model=None, **knobs)

    def __repr__(self) -> str:
        return (f"<ShardedIndex {self.name!r}: {self.ntotal} galaxies in {self.nshards} shards "
                f"(by {self.manifest['by']}), dim {self.manifest.get('dim')}>")
