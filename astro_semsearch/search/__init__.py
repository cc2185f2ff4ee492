"""Search an index by text (`semantic_search`) or by example (`similar_to`), and re-rank the hits.

Modules
-------
api
    `semantic_search` and `similar_to`, the public functions.
query
    `Query`: texts, negatives, an example and their weights, the one vector
    they make, and how it is recorded in (and rebuilt from) a result's meta.
targets
    Everything `similar_to` accepts as an example, turned into a vector.
engine
    A query vector in, a ranked, de-duplicated result table out.
reranking
    The `Reranker` interface, the registry of re-ranker names and `rerank`
    (the re-rankers themselves are in `astro_semsearch.rerank`).

Examples
--------
>>> from astro_semsearch import semantic_search, similar_to
>>> hits = semantic_search("ring galaxy", k=10)          # doctest: +SKIP
>>> twins = similar_to(hits[0], k=5)                     # doctest: +SKIP
"""
from ..cutouts import viewer_urls
from .api import semantic_search, similar_to
from .query import Query
from .reranking import Reranker, get_reranker, rerank, reranker_names

__all__ = ["semantic_search", "similar_to", "Query", "Reranker", "rerank", "get_reranker", "reranker_names",
           "viewer_urls"]
