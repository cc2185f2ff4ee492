"""Build a searchable index from a catalogue: coordinates (or files) -> cutouts -> embeddings -> index.

`build_index` (`astro_semsearch.build.single`) does it in one process, in
resumable chunks (`astro_semsearch.build.work`), each chunk's images read or
fetched by `astro_semsearch.build.images`; `build_index_dask`
(`astro_semsearch.build.distributed`) runs one `build_index` per catalogue
partition on a Dask cluster and merges the results.

Examples
--------
>>> from astro_semsearch.build import build_index, build_index_dask
"""
from .distributed import build_index_dask
from .single import build_index

__all__ = ["build_index", "build_index_dask"]
