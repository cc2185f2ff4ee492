"""A FAISS vector index of galaxy embeddings with its catalogue, on disk and in memory.

A `GalaxyIndex` holds three things that always stay row-aligned:

* a FAISS index over the L2-normalised embeddings (inner product on unit
  vectors is the cosine similarity),
* the full-precision vectors, ``vectors.npy`` (memory-mapped on load, so an
  index larger than RAM still opens instantly; used by `similar_to` to look up
  an object's own vector and by the refinement stage of compressed indexes),
* an `astropy.table.Table` catalogue with at least ``object_id``, ``ra`` and
  ``dec`` (degrees) plus any columns you chose to keep.

The on-disk layout is described in `astro_semsearch.index.storage`, the
index kinds (exact, HNSW, IVF-PQ with refinement) in
`astro_semsearch.index.kinds`.

Examples
--------
>>> import numpy as np
>>> from astropy.table import Table
>>> from astro_semsearch.index import GalaxyIndex
>>> rng = np.random.default_rng(0)
>>> vectors = rng.normal(size=(100, 16)).astype("float32")
>>> table = Table({"object_id": [f"G{i}" for i in range(100)],
...                "ra": rng.uniform(0, 360, 100), "dec": rng.uniform(-60, 60, 100)})
>>> index = GalaxyIndex.build(vectors, table, name="toy")
>>> index.kind, index.ntotal, index.dim
('flat', 100, 16)
>>> scores, rows = index.search(vectors[:1], k=3)
>>> int(rows[0, 0])                  # a vector's nearest neighbour is itself
0
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from astropy.utils.exceptions import AstropyUserWarning

from .._validate import check_int
from ..exceptions import InvalidInputError, ModelMismatchError
from . import storage as _storage
from ._checks import as_unit_matrix, gather_rows, normalise_catalog
from ._search import exact_search, refine, search_params
from .archive import load_archive_index
from .integrity import FULL_CHECK_ROWS, check_unique_sorted
from .kinds import new_faiss_index, pq_training_need, set_search_knobs, train, training_sample
from .mapped import MappedFiles
from .merge import write_merged
from .sampling import BackgroundSample
from .storage import decode_bytes_columns, model_record, new_manifest, read_index, write_index

__all__ = ["GalaxyIndex"]

#: A filtered search over at most this many rows is done exactly with numpy
#: on those rows (faster and exact, whatever the index kind).
EXACT_SUBSET_LIMIT = 50_000


class GalaxyIndex(MappedFiles, BackgroundSample):
    """Embeddings of galaxies, searchable by cosine similarity, with their catalogue.

    Build one with `GalaxyIndex.build` (or `astro_semsearch.build_index`,
    which makes the embeddings from images), open one with `GalaxyIndex.load`
    or `open_index`. Rows are numbered 0..ntotal-1 in insertion order; row
    ``i`` of `table` is the galaxy whose vector is row ``i``.

    Attributes
    ----------
    table : `~astropy.table.Table`
        The catalogue: ``object_id``, ``ra``, ``dec`` (deg) and kept columns.
    manifest : dict
        Provenance and integrity information (see the module docstring).
    path : `pathlib.Path` or None
        The directory this index was loaded from or last saved to.
    """

    def __init__(self, faiss_index, vectors: np.ndarray, table: Table, manifest: dict, path: Path | None = None):
        self._index = faiss_index
        self._parts = [vectors]  # full-precision vectors, possibly several add() batches
        self._table = table
        self._mapped = []  # memory-mapped files checked against truncation (MappedFiles)
        self.manifest = manifest
        self.path = path
        self._id_order: np.ndarray | None = None
        self._skycoord: SkyCoord | None = None  # all positions, built on first use
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- build

    @classmethod
    def build(
        cls,
        embeddings,
        table,
        *,
        kind: str = "auto",
        model=None,
        name: str | None = None,
        survey: str | None = None,
        metric: str = "ip",
        **knobs: Any,
    ) -> "GalaxyIndex":
        """Build an index from embeddings and their catalogue.

        Parameters
        ----------
        embeddings : array-like, shape (n, dim)
            One vector per galaxy (normalised here to unit length).
        table : `~astropy.table.Table`
            ``n`` rows with ``object_id`` (unique), ``ra`` and ``dec``
            (degrees, or angle Quantities); other columns are kept.
        kind : str
            ``"auto"``, ``"flat"``, ``"hnsw"``, ``"ivfpq"`` or a FAISS factory
            string (see the module docstring).
        model : `~astro_semsearch.GalaxyModel`, optional
            The model that made the embeddings: its name, fingerprint and
            dimension are recorded so that searches use the same model.
        name, survey : str, optional
            Recorded in the manifest (``survey`` selects the survey paper in
            `~astro_semsearch.cite`), e.g. ``"DESI Legacy Imaging Surveys DR5"``.
        metric : {"ip"}
            Only inner product on unit vectors (cosine) is supported.
        **knobs
            ``nlist``, ``m``, ``nbits``, ``nprobe``, ``M``, ``ef_construction``,
            ``ef_search``, ``refine_factor``, ``train_size`` (vectors the IVF
            k-means is trained on; default ``64 * nlist``, a random subset).

        Returns
        -------
        GalaxyIndex
        """
        if metric not in ("ip", "cosine"):
            raise InvalidInputError(f"metric must be 'ip' (cosine on unit vectors), got {metric!r}")
        model_dim = getattr(model, "dim", None) if model is not None else None
        vectors = as_unit_matrix(embeddings, model_dim)
        n, dim = vectors.shape
        cat = normalise_catalog(table, n)
        index, kind, factory, knobs = new_faiss_index(kind, n, dim, knobs)
        if not index.is_trained:
            # IVF / PQ need k-means training: once, on this first batch.
            need = pq_training_need(factory, knobs)
            if n < need:
                raise InvalidInputError(
                    f"index {factory!r} needs at least {need} vectors to train, got {n}; "
                    "use kind='flat' (exact) for small collections or lower nlist/nbits"
                )
            train(index, knobs, n, need, lambda size: training_sample(vectors, size))
        set_search_knobs(index, knobs)
        index.add(vectors)
        manifest = new_manifest(kind=kind, factory=factory, dim=dim, count=n, knobs=knobs,
                                model=model_record(model, dim), name=name, survey=survey)
        return cls(index, vectors, cat, manifest)

    @classmethod
    def merge(cls, parts, out: str | os.PathLike, **kwargs: Any) -> "GalaxyIndex":
        """Write several indexes (shards, Dask partitions) as one saved index, streaming; open it.

        See `astro_semsearch.index.merge.write_merged` for the parameters.
        The vectors are never all in memory: the result is opened with its
        vectors memory-mapped.
        """
        write_merged(parts, out, **kwargs)
        return cls.load(out, verify=False)

    def add(self, embeddings, table) -> None:
        """Append galaxies (the IVF quantiser trained at build time is reused).

        Parameters
        ----------
        embeddings : array-like, shape (n, dim)
        table : `~astropy.table.Table`
            Same required columns as in `build`; ``object_id`` values must be
            new, and the kept columns must match the existing catalogue.

        Notes
        -----
        The new vectors stay in memory until `save`; the first search that
        needs full-precision vectors afterwards concatenates them with the
        memory-mapped ones (in RAM). For very large collections use shards
        (`astro_semsearch.index.ShardedIndex`).
        """
        vectors = as_unit_matrix(embeddings, self.dim)
        cat = normalise_catalog(table, len(vectors))
        if set(cat.colnames) != set(self.table.colnames):
            raise InvalidInputError(
                f"the new table's columns {cat.colnames} differ from the index catalogue's {self.table.colnames}"
            )
        clash = self.rows_of(np.asarray(cat["object_id"])) >= 0
        if clash.any():
            raise InvalidInputError(f"object_id(s) already in the index: {np.asarray(cat['object_id'])[clash][:5].tolist()}")
        with self._lock:
            self._index.add(vectors)
            self._parts.append(vectors)
            old = self.catalog() if any(self.table[c].dtype.kind == "S" for c in self.table.colnames) else self.table
            self.table = vstack([old, cat[old.colnames]], join_type="exact", metadata_conflicts="silent")
            self._id_order = None
            self._skycoord = None
            self._background = None
            self.manifest["count"] = int(self._index.ntotal)
            self.manifest["files"] = {}  # no longer describes a saved state

    # ------------------------------------------------------------- accessors
    @property
    def table(self) -> Table:
        """The catalogue (memory-mapped for large loaded indexes; checked against truncation on access)."""
        if self._mapped:
            self._guard()
        return self._table

    @table.setter
    def table(self, value: Table) -> None:
        self._table = value

    @property
    def ntotal(self) -> int:
        """Number of indexed galaxies."""
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self._index.d)

    @property
    def name(self) -> str | None:
        """The index name from the manifest."""
        return self.manifest.get("name")

    @property
    def kind(self) -> str:
        """``"flat"``, ``"hnsw"``, ``"ivfpq"`` or ``"factory"``."""
        return self.manifest["kind"]

    @property
    def knobs(self) -> dict:
        """The index's build and search parameters."""
        return self.manifest.setdefault("knobs", {})

    def vectors_array(self) -> np.ndarray:
        """All full-precision vectors as one (possibly memory-mapped) array, without a copy."""
        if self._mapped:
            self._guard()
        if len(self._parts) > 1:
            with self._lock:
                if len(self._parts) > 1:
                    self._parts = [np.concatenate([np.asarray(p) for p in self._parts])]
        return self._parts[0]

    def vectors(self, rows=None) -> np.ndarray:
        """Full-precision unit vectors of the given rows (all rows if None), float32."""
        vec = self.vectors_array()
        if rows is None:
            return np.asarray(vec, dtype=np.float32)
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= self.ntotal):
            raise IndexError(f"row numbers must be in [0, {self.ntotal}), got {rows.min()}..{rows.max()}")
        return gather_rows(vec, rows)

    def _rows(self, rows) -> np.ndarray | slice:
        if rows is None:
            return slice(None)
        rows = np.asarray(rows)
        if rows.dtype == bool:
            return np.flatnonzero(rows)
        rows = np.atleast_1d(rows).astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= self.ntotal):
            raise IndexError(f"row numbers must be in [0, {self.ntotal}), got {rows.min()}..{rows.max()}")
        return rows

    def catalog(self, rows=None) -> Table:
        """Catalogue rows as an in-memory `~astropy.table.Table` with text as ``str``.

        `table` of a large loaded index is memory-mapped (text kept as bytes);
        this reads just the requested rows.
        """
        sel = self._rows(rows)
        # Rows picked by number are already a copy; a slice would be a view of the catalogue.
        part = self.table[sel]
        return decode_bytes_columns(part.copy() if isinstance(sel, slice) else part)

    def object_ids(self, rows=None) -> np.ndarray:
        """``object_id`` of the given rows (all if None) as a ``str`` array."""
        ids = np.asarray(self.table["object_id"][self._rows(rows)])
        return np.char.decode(ids, "utf-8") if ids.dtype.kind == "S" else ids.astype(str)

    def coords(self, rows=None) -> SkyCoord:
        """Sky positions of the given rows (all if None; that one is cached for the next call)."""
        if rows is None and self._skycoord is not None:
            return self._skycoord
        sel = self._rows(rows)
        coords = SkyCoord(np.asarray(self.table["ra"][sel], dtype=np.float64) * u.deg,
                          np.asarray(self.table["dec"][sel], dtype=np.float64) * u.deg)
        if rows is None:
            self._skycoord = coords
        return coords

    def rows_of(self, object_ids) -> np.ndarray:
        """Row numbers of the given object ids; -1 where an id is not in the index."""
        ids = np.atleast_1d(np.asarray(object_ids).astype(str))
        all_ids = np.asarray(self.table["object_id"])
        if all_ids.dtype.kind == "S":  # memory-mapped bytes: compare as bytes, decode nothing
            ids = np.char.encode(ids, "utf-8")
        if self._id_order is None:
            order = np.argsort(all_ids, kind="stable")
            if len(all_ids) > FULL_CHECK_ROWS:  # smaller catalogues were checked at load
                check_unique_sorted(all_ids[order], f"index {self.name!r}")
            self._id_order = order
        sorted_ids = all_ids[self._id_order]
        pos = np.clip(np.searchsorted(sorted_ids, ids), 0, max(len(sorted_ids) - 1, 0))
        found = sorted_ids[pos] == ids
        return np.where(found, self._id_order[pos], -1).astype(np.int64)

    def set_knobs(
        self, *, nprobe: int | None = None, ef_search: int | None = None, refine_factor: int | None = None
    ) -> None:
        """Change the search-time knobs (speed/recall trade-off) of a loaded index."""
        given = dict(nprobe=nprobe, ef_search=ef_search, refine_factor=refine_factor)
        new = {k: v for k, v in given.items() if v is not None}
        for key, value in new.items():
            check_int(value, key)
        self.knobs.update(new)
        set_search_knobs(self._index, self.knobs)

    # ---------------------------------------------------------------- search
    def search(self, vectors, k: int, *, subset=None) -> tuple[np.ndarray, np.ndarray]:
        """Find the ``k`` most similar indexed vectors to each query vector.

        Parameters
        ----------
        vectors : array-like, shape (n, dim) or (dim,)
            Query vectors (normalised here).
        k : int
            Neighbours per query. Above the index size (or the subset size) it
            is clipped, with an `~astropy.utils.exceptions.AstropyUserWarning`.
        subset : array-like of bool (ntotal,) or of row numbers, optional
            Search only these rows (e.g. a sky region). Small subsets are
            searched exactly with numpy; large ones through a FAISS
            ``IDSelector`` inside the index, so results are never scanned.

        Returns
        -------
        scores : ndarray, shape (n, k)
            Cosine similarities, best first (``-inf`` where no row was found).
        rows : ndarray, shape (n, k)
            Row numbers into `table`; ``-1`` past the end of the results.
        """
        k = check_int(k, "k")
        queries = as_unit_matrix(vectors, self.dim, what="query vectors")
        rows_subset = None
        if subset is not None:
            rows_subset = np.asarray(subset)
            if rows_subset.dtype == bool:
                if rows_subset.shape != (self.ntotal,):
                    raise InvalidInputError(
                        f"a boolean subset needs one entry per indexed row ({self.ntotal}), got {rows_subset.shape}"
                    )
                rows_subset = np.flatnonzero(rows_subset)
            else:
                rows_subset = np.unique(rows_subset.astype(np.int64))
                if rows_subset.size and (rows_subset[0] < 0 or rows_subset[-1] >= self.ntotal):
                    raise InvalidInputError(f"subset row numbers must be in [0, {self.ntotal})")
        available = self.ntotal if rows_subset is None else rows_subset.size
        if available == 0:
            return np.full((len(queries), 0), -np.inf, np.float32), np.full((len(queries), 0), -1, np.int64)
        if k > available:
            warnings.warn(
                f"k={k} is larger than the {available} searchable galaxies; returning all of them",
                AstropyUserWarning,
                stacklevel=2,
            )
            k = available
        if rows_subset is not None and rows_subset.size <= EXACT_SUBSET_LIMIT:
            return exact_search(self.vectors_array(), queries, k, rows_subset)
        factor = int(self.knobs.get("refine_factor") or 1)
        k_index = min(k * factor, available) if factor > 1 else k
        params = (search_params(self.kind, self.knobs, self.ntotal, rows_subset)
                  if rows_subset is not None else None)
        if params is None and rows_subset is not None:
            return exact_search(self.vectors_array(), queries, k, rows_subset)  # this kind cannot filter
        with self._lock:  # the index is not thread-safe while add() runs
            if params is not None:
                scores, rows = self._index.search(queries, k_index, params=params)
            else:
                scores, rows = self._index.search(queries, k_index)
        rows = rows.astype(np.int64)
        if factor > 1:
            scores, rows = refine(self.vectors_array(), queries, rows, k)
        scores = np.where(rows < 0, -np.inf, scores).astype(np.float32)
        return scores, rows

    # ------------------------------------------------------------ model check
    def check_model(self, model) -> None:
        """Raise `ModelMismatchError` unless ``model`` made this index's embeddings.

        The dimension must match; the fingerprint (sha256 of the weights) must
        match when the index recorded one.
        """
        dim = getattr(model, "dim", None)
        recorded = self.manifest.get("model") or {}
        name = recorded.get("name")
        fp = recorded.get("fingerprint")
        mfp = getattr(model, "fingerprint", None)
        if dim is not None and int(dim) != self.dim:
            raise ModelMismatchError(
                f"index {self.name!r} holds {self.dim}-d vectors (model {name!r}) but model "
                f"{getattr(model, 'name', None)!r} makes {dim}-d embeddings"
            )
        if fp and mfp and fp != mfp:
            raise ModelMismatchError(
                f"index {self.name!r} was built by model {name!r} (sha256 {fp[:12]}...), you are using "
                f"{getattr(model, 'name', None)!r} (sha256 {mfp[:12]}...); their embeddings are not comparable. "
                "Use the index's own model (model=None) or rebuild the index with yours."
            )

    # ------------------------------------------------------------- save/load
    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the index to ``directory`` atomically (all files or nothing).

        Returns the directory. The manifest records the size and sha256 of
        every file so `load` can detect a truncated or altered copy. See
        `~astro_semsearch.index.storage.write_index` (lock, free space, no
        memory maps, the old or the new index always at ``directory``).

        Raises
        ------
        LockedError
            Another process or thread is writing to ``directory``.
        FileExistsError
            ``directory`` exists and ``overwrite`` is False.
        OSError
            Not enough free space, or a write failed.
        """
        directory = Path(directory)
        self.manifest = write_index(directory, self._index, self._parts, self.table, self.manifest,
                                    overwrite=overwrite)
        self.path = directory
        return directory

    @classmethod
    def load(
        cls, dir_or_url: str | os.PathLike, mmap: bool = True, sha256: str | None = None, verify: bool = True
    ) -> "GalaxyIndex":
        """Open a saved index, checking its integrity.

        Parameters
        ----------
        dir_or_url : str or path
            An index directory, or the URL of a ``.tar.gz``/``.tgz``/``.zip``
            archive of one (fetched once into the astropy download cache).
        mmap : bool
            Memory-map ``vectors.npy`` instead of reading it into RAM.
        sha256 : str, optional
            Expected sha256 of the archive; required for a URL.
        verify : bool
            Check the sha256 of every file (``False`` checks sizes only, for
            very large indexes you trust). An index from a URL is always
            verified (`astro_semsearch.index.archive`).

        Raises
        ------
        IndexIntegrityError
            A file is missing, truncated or altered, or the parts disagree.
        """
        source = str(dir_or_url)
        if "://" in source:
            directory, (index, vectors, table, manifest) = load_archive_index(source, sha256, mmap=mmap)
        else:
            directory = Path(dir_or_url).expanduser()
            if sha256 is not None:
                raise InvalidInputError("sha256= is for URLs; a directory is checked against its own manifest")
            index, vectors, table, manifest = read_index(directory, mmap=mmap, verify=verify)
        out = cls(index, vectors, table, manifest, path=directory)
        if mmap:
            out._watch_mapped_files([Path(directory) / f for f in ((_storage.VECTORS_FILE, _storage.CATALOG_FILE)
                                     if len(table) > _storage.CATALOG_DECODE_LIMIT else (_storage.VECTORS_FILE,))])
        return out

    def __repr__(self) -> str:
        model = (self.manifest.get("model") or {}).get("name")
        return (
            f"<GalaxyIndex {self.name!r}: {self.ntotal} galaxies, dim {self.dim}, "
            f"kind {self.kind} ({self.manifest.get('factory')}), model {model!r}>"
        )

    def __len__(self) -> int:
        return self.ntotal
