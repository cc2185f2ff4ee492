"""FAISS indexes of galaxy embeddings with their catalogues: single, sharded, on disk and in memory.

* `GalaxyIndex` (`astro_semsearch.index.galaxy_index`): one FAISS index, the
  full-precision vectors and the catalogue, row-aligned; kinds in
  `astro_semsearch.index.kinds`, files in `astro_semsearch.index.storage`.
* `ShardedIndex` (`astro_semsearch.index.sharded`): many `GalaxyIndex`
  directories searched in parallel as one.
* `open_index` (`astro_semsearch.index.open`): the one way every stage
  opens an index from a name, directory or URL.
* `GalaxyIndex.merge` (`astro_semsearch.index.merge`): many indexes written as one, streaming.

Examples
--------
>>> from astro_semsearch.index import open_index
>>> index = open_index()          # the default index shipped with the package
>>> index.ntotal > 0, index.manifest["model"]["name"] is not None
(True, True)
"""
from .galaxy_index import GalaxyIndex
from .open import is_index, load_index, load_sharded_index, open_index
from .sharded import ShardedIndex
from .sharding import SHARDS_FILE, healpix_pixels, is_sharded
from .storage import FORMAT_VERSION

__all__ = ["GalaxyIndex", "ShardedIndex", "open_index", "load_index", "load_sharded_index",
           "is_index", "is_sharded", "healpix_pixels", "FORMAT_VERSION", "SHARDS_FILE"]
