"""Measure search quality on labelled galaxies the model never saw.

Modules
-------
protocol
    The query classes, their relevance columns, the Galaxy Zoo pools and the
    query phrasings (`CLASSES`, `gz2_pool`, `load_queries`, `parse_reranker`).
metrics
    nDCG@k, recall@k and their expectation for a random ranking.
pools
    The galaxies each class is ranked on, embedded once.
evaluate
    `evaluate` (text, image similarity, random, re-rankers) and
    `evaluate_vlm` (the same loop with a vision-language re-ranker).
render
    The table as Markdown or RST.

Examples
--------
>>> from astro_semsearch.evaluation import ndcg_at_k
>>> ndcg_at_k([1.0, 0.0], [0.0, 1.0], k=2)
1.0
"""
from .evaluate import evaluate, evaluate_vlm
from .metrics import RELEVANT, expected_random, ndcg_at_k, recall_at_k
from .protocol import CLASSES, DEFAULT_QUERIES, EvalClass, gz2_pool, load_queries, parse_reranker
from .render import to_markdown, to_rst

__all__ = ["CLASSES", "EvalClass", "ndcg_at_k", "recall_at_k", "expected_random", "load_queries", "gz2_pool",
           "evaluate", "evaluate_vlm", "parse_reranker", "to_markdown", "to_rst", "RELEVANT", "DEFAULT_QUERIES"]
