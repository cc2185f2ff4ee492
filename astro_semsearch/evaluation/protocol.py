"""The evaluation protocol: the query classes, where their relevance comes from, the pools and phrasings.

Everything that decides *what* is measured lives here, so that every
evaluation (`~astro_semsearch.evaluation.evaluate`, with or without
re-rankers, and the symbols recipe) ranks the same galaxies with the same
relevances and phrasings.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..exceptions import InvalidInputError, InvalidTypeError

__all__ = ["EvalClass", "CLASSES", "DEFAULT_QUERIES", "load_queries", "gz2_pool", "parse_reranker"]

#: Default location of the evaluation queries (package data).
DEFAULT_QUERIES = Path(__file__).resolve().parent.parent / "data" / "eval_queries.toml"


@dataclass(frozen=True)
class EvalClass:
    """One query class: its id, display name and where its relevance comes from.

    ``simulator`` names the lens simulator of an ``"injected"`` class (a class
    of `astro_semsearch.lensing`): ``"ArcInjector"`` is the one training
    uses, ``"RayTracedLensSimulator"`` the independent one.
    """

    id: str
    name: str
    source: str          # "gz2", "decals" or "injected"
    column: str | None   # the GZ2 vote-fraction column (or DECaLS column)
    needs_37: bool = False
    simulator: str | None = None  # for "injected": the astro_semsearch.lensing simulator class


#: The query classes, in table order.
CLASSES: tuple[EvalClass, ...] = (
    EvalClass("spiral", "spiral", "gz2", "Class4.1", needs_37=True),
    EvalClass("edge_on", "edge-on", "gz2", "Class2.1"),
    EvalClass("bar", "bar", "gz2", "Class3.1", needs_37=True),
    EvalClass("smooth", "round/smooth", "gz2", "Class1.1"),
    EvalClass("merger", "merger", "gz2", "Class8.6"),
    EvalClass("ring", "ring", "gz2", "Class8.1"),
    EvalClass("irregular", "irregular", "gz2", "Class8.4"),
    EvalClass("disturbed", "disturbed", "gz2", "Class8.3"),
    EvalClass("lens", "lens/arc", "gz2", "Class8.2"),
    EvalClass("dust_lane", "dust lane", "gz2", "Class8.7"),
    EvalClass("decals_ring", "DECaLS ring", "decals", "ring"),
    EvalClass("injected_lens", "injected lens (synthetic)", "injected", None, simulator="ArcInjector"),
    EvalClass("injected_lens_independent", "injected lens (independent sim)", "injected", None,
              simulator="RayTracedLensSimulator"),
)

def load_queries(queries: str | os.PathLike | Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Read the per-class query phrasings (a TOML file ``class_id = [...]`` or a mapping)."""
    if queries is None:
        queries = DEFAULT_QUERIES
    if isinstance(queries, Mapping):
        data = dict(queries)
    else:
        path = Path(queries)
        if not path.is_file():
            raise FileNotFoundError(f"query file {path} not found (pass queries= / --queries with a TOML file "
                                    "mapping class ids to lists of phrasings)")
        with open(path, "rb") as f:
            data = tomllib.load(f)
    out = {}
    for key, value in data.items():
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
            raise InvalidInputError(f"queries for class {key!r} must be a non-empty list of strings")
        out[str(key)] = list(value)
    return out


def gz2_pool(gz2, c: EvalClass, in_split: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Galaxy Zoo 2 galaxies ranked for class ``c``, and their relevance.

    The pool is every galaxy of the split with votes and a finite vote
    fraction in ``c.column`` (for classes asked only in the full decision
    tree, ``c.needs_37``, those with all 37 vote columns); the relevance is
    that vote fraction, clipped to [0, 1]. Shared by every evaluation and
    the symbols comparison recipe, so that every number is computed on the
    same galaxies.

    Returns
    -------
    rows : ndarray of int
        Row numbers into ``gz2``.
    rel : ndarray of float
    """
    n_cols = np.asarray(gz2["n_vote_columns"])
    frac = np.asarray(gz2[c.column], dtype=float)
    sel = np.asarray(in_split, dtype=bool) & (n_cols > 0) & np.isfinite(frac)
    if c.needs_37:
        sel &= n_cols == 37
    rows = np.flatnonzero(sel)
    return rows, np.clip(frac[rows], 0, 1)


def parse_reranker(spec) -> tuple[str, object]:
    """``(label, reranker)`` from a command-line spec ``NAME[:key=value,...]`` or a `Reranker`.

    ``"feedback..."`` gives ``(label, dict_of_options)``: the simulated user
    builds one `~astro_semsearch.rerank.FeedbackReranker` per query.

    Examples
    --------
    >>> parse_reranker("expansion:n=5,weight=0.3")
    ('expansion:n=5,weight=0.3', ExpansionReranker(n=5, weight=0.3))
    >>> parse_reranker("galaxidnet:weights=(0,0,1)")[1]
    GalaxIDNetReranker(weights=[0.0, 0.0, 1.0])
    """
    import ast

    from ..search import Reranker, get_reranker

    if isinstance(spec, Reranker):
        if spec.name == "feedback":
            raise InvalidInputError("evaluate simulates the feedback user itself; pass 'feedback' (with options) by name")
        return spec.name, spec
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidTypeError(f"a re-ranker spec must be a name like 'expansion:n=5' or a Reranker, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    options = {}
    if rest.strip():
        try:
            call = ast.parse(f"f({rest})", mode="eval").body
            if call.args:
                raise InvalidInputError("positional values")
            options = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as exc:
            raise InvalidInputError(f"cannot read the options of re-ranker spec {spec!r}: write NAME:key=value,... "
                             f"({exc})") from None
    if name == "vlm" and "model" not in options:
        raise InvalidInputError("the VLM re-ranker needs a vision-language model: vlm:model='DIR' "
                                "(see the VLM re-ranking docs)")
    if name == "feedback":
        from ..rerank import FeedbackReranker

        # Validate the options now (a dummy mark), build the real re-ranker per query later.
        FeedbackReranker(good=np.ones((1, 2), np.float32), **options)
        return spec.strip(), options
    return spec.strip(), get_reranker(name, **options)
