"""The re-rankers: a second, more careful score for the top of a search result.

A re-ranker looks again at the first hits of a search and gives each a new
score (`astro_semsearch.search.reranking` describes what `rerank` does to
the result table). These are the package's own re-rankers:

Re-rankers
----------
``"feedback"`` -- `FeedbackReranker`
    Relevance feedback (Rocchio): you mark some hits good or bad; the query
    vector moves toward the good hits and away from the bad ones, and the
    candidates are re-scored by cosine similarity with the moved query.
    `feedback_search` searches the *whole index* with the moved query instead.
``"expansion"`` -- `ExpansionReranker`
    Pseudo-relevance feedback: the query is mixed with the mean image
    embedding of its own top ``n`` hits (no user input needed).
``"galaxidnet"`` -- `GalaxIDNetReranker`
    GalaxIDNet's similarity score: weighted cosine + 1/(1 + L2) + 1/(1 + L3)
    (`galaxidnet_similarity`).
``"vlm"`` -- `VLMReranker`
    Asks a local vision-language model a yes/no question about each
    candidate's image (imported lazily; needs ``transformers`` and a model).

Which of these actually help is measured on the Galaxy Zoo 2 validation split
(``astro-semsearch evaluate --rerank ...``); see the *Re-ranking* page of the
documentation for the numbers.

The interface (`Reranker`), the registry of names (`get_reranker`) and the
step that applies a re-ranker to a result table (`rerank`) are in
`astro_semsearch.search.reranking`, and re-exported here.

Examples
--------
>>> from astro_semsearch.rerank import get_reranker
>>> get_reranker("galaxidnet")
GalaxIDNetReranker(weights=[1.0, 1.0, 1.0])
"""
from ..search.query import Query
from ..search.reranking import Reranker, get_reranker, rerank, reranker_names
from .expansion import ExpansionReranker, expand_query
from .feedback import FeedbackReranker, feedback_search, rocchio
from .galaxidnet import GalaxIDNetReranker, galaxidnet_similarity
from .vlm import VLMReranker

#: The query a re-ranker sees: the search's `~astro_semsearch.search.Query` (the old name, kept).
RerankQuery = Query

#: Names accepted wherever a re-ranker may be given as a string (the registered ones).
RERANKERS = reranker_names()

__all__ = ["Reranker", "rerank", "get_reranker", "reranker_names", "RerankQuery", "RERANKERS", "FeedbackReranker",
           "feedback_search", "rocchio", "ExpansionReranker", "expand_query", "GalaxIDNetReranker",
           "galaxidnet_similarity", "VLMReranker"]
