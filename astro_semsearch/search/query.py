"""The query: what a search looks for, as words, examples and weights, and the one vector they make.

A `Query` is built once, by `~astro_semsearch.semantic_search` or
`~astro_semsearch.similar_to`, and travels with the results: the result
table's ``meta`` records it (`Query.to_meta`) and a re-ranker or a second
round of feedback rebuilds exactly the same vector from there
(`Query.from_meta`). The recipe for the vector is written once, here:

``q = unit(mean(text(query)))``; for a negation that asks for the other
answer of a Galaxy Zoo yes/no question ("disk without spiral arms"),
``q = unit(q + unit(mean(text(answer))))``; with an example image,
``q = unit((1 - like_weight) q + like_weight unit(image))``; with
negatives, ``q = unit(q - negative_weight unit(mean(text(negative))))``.

Examples
--------
>>> from astro_semsearch.search import Query
>>> q = Query("ring galaxy", [3.0, 4.0])
>>> q.text, q.vector.tolist()
(['ring galaxy'], [0.6, 0.8])
>>> q.to_meta()["query"]          # what a result table's meta records
'ring galaxy'

`Query.from_meta` rebuilds a query from that record (with the model that
embeds its text again).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .._validate import check_number, check_texts, unit_vector
from ..exceptions import InvalidInputError
from .negation import opposite_answer, split_negation

__all__ = ["Query", "query_vector"]


def query_vector(model, texts: Sequence[str] | None, *, negative: Sequence[str] | None = None,
                 negative_weight: float = 0.5, like_vector: np.ndarray | None = None,
                 like_weight: float = 0.5, answer: Sequence[str] | None = None) -> np.ndarray:
    """The unit query vector for texts, an optional example embedding and optional negatives.

    ``texts`` may be None for an example-only query (then ``like_vector`` is
    the query). ``model`` embeds the texts (``model.embed_text``).
    ``answer`` are the wordings of the answer a negation asks for, added to
    the texts with equal weight.
    """
    texts, answer, negative = list(texts or []), list(answer or []) if texts else [], list(negative or [])
    # one forward pass of the text encoder for every string of the query
    emb = np.asarray(model.embed_text(texts + answer + negative), dtype=np.float64) if texts or negative else None

    def mean_of(start: int, n: int, what: str) -> np.ndarray:
        return unit_vector(emb[start:start + n].mean(axis=0), what)

    if texts:
        q = mean_of(0, len(texts), "text query")
        if answer:
            q = unit_vector(q + mean_of(len(texts), len(answer), "answer"), "text query")
        if like_vector is not None:
            q = (1.0 - like_weight) * q + like_weight * unit_vector(like_vector, "example embedding")
    elif like_vector is not None:
        q = unit_vector(like_vector, "example embedding")
    else:
        raise InvalidInputError("a query needs text, an example, or both")
    if negative:
        nvec = mean_of(len(texts) + len(answer), len(negative), "negative query")
        q = unit_vector(q, "query") - negative_weight * nvec
        if not np.isfinite(np.linalg.norm(q)) or np.linalg.norm(q) < 1e-12:
            raise InvalidInputError("the query vector has no direction (zero length): the query and the "
                                    "negative cancel out; lower negative_weight")
    return unit_vector(q, "query").astype(np.float32)


@dataclass
class Query:
    """A search query: its words, its example, its weights and the unit vector they make.

    Parameters
    ----------
    text : str, list of str or None
        The positive phrasings (averaged), or None for an example-only search.
    vector : array-like
        The ``(dim,)`` query vector (normalised on creation).
    negative : list of str, optional
        Phrasings steered away from.
    negative_weight : float, optional
        Strength of the negative term.
    like : str, optional
        A description of the example mixed in (or searched with).
    like_weight : float, optional
        Weight of the example.
    example_object_id : str, optional
        The example's ``object_id`` when it is an indexed galaxy (then the
        query can be rebuilt from the index alone).
    parsed_negative : list of str, optional
        What `~astro_semsearch.search.negation.split_negation` took out of
        the phrasings ("galaxy without a ring" -> ``["ring"]``). None when
        negation parsing was off.
    opposite_answers : list of str, optional
        The Galaxy Zoo answers those negations ask for, where a negated term
        names one answer of a yes/no question ("no spiral arms" ->
        ``["no_arms"]``,
        `~astro_semsearch.search.negation.opposite_answer`): these terms
        are searched as that answer's wordings instead of as negatives.
    like_vector : numpy.ndarray, optional
        The example's embedding, kept (and written to ``meta``) when the
        example is not an indexed galaxy, so the query can be rebuilt.
    """

    text: list[str] | None
    vector: np.ndarray = field(repr=False)
    negative: list[str] | None = None
    negative_weight: float | None = None
    like: str | None = None
    like_weight: float | None = None
    example_object_id: str | None = None
    parsed_negative: list[str] | None = None
    opposite_answers: list[str] | None = None
    like_vector: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if isinstance(self.text, str):
            self.text = [self.text]
        elif self.text is not None:
            self.text = [str(t) for t in self.text]
        if isinstance(self.negative, str):
            self.negative = [self.negative]
        self.vector = unit_vector(self.vector)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_text(cls, model, text, *, negative=None, negative_weight: float = 0.5, like_vector=None,
                  like: str | None = None, like_weight: float = 0.5, example_object_id: str | None = None,
                  negation: bool = True) -> "Query":
        """Embed the words with ``model`` (and mix in an example embedding) into a `Query`.

        With ``negation`` (the default) negated parts of the phrasings
        ("without a ring", "unbarred") are searched as negatives
        (`~astro_semsearch.search.negation.split_negation`), or as the other
        answer where they name one answer of a Galaxy Zoo yes/no question.
        """
        texts = check_texts(text, "query")
        negatives = check_texts(negative, "negative") if negative is not None else []
        negative_weight = check_number(negative_weight, "negative_weight", 0.0)
        like_weight = check_number(like_weight, "like_weight", 0.0, 1.0)
        wanted, parsed, subtract, answers, answer_words = texts, None, [], [], []
        if negation:
            split = [split_negation(t) for t in texts]
            wanted = list(dict.fromkeys(w for w, _ in split))
            parsed = [n for _, ns in split for n in ns]
            for term in parsed:
                other = opposite_answer(term)
                if other is None:
                    subtract.append(term)
                elif other[0] not in answers:
                    answers.append(other[0])
                    answer_words.extend(other[1])
        vec = query_vector(model, wanted, negative=negatives + subtract, negative_weight=negative_weight,
                           like_vector=like_vector, like_weight=like_weight, answer=answer_words)
        return cls(texts, vec, negative=negatives or None,
                   negative_weight=negative_weight if negatives or parsed else None,
                   like=like if like_vector is not None else None,
                   like_weight=like_weight if like_vector is not None else None,
                   example_object_id=example_object_id if like_vector is not None else None,
                   parsed_negative=parsed, opposite_answers=answers or None,
                   like_vector=None if like_vector is None or example_object_id is not None
                   else np.asarray(like_vector, dtype=np.float64).reshape(-1))

    @classmethod
    def from_example(cls, vector, description: str, example_object_id: str | None = None) -> "Query":
        """The query of an example-only search (`~astro_semsearch.similar_to`)."""
        return cls(None, vector, like=description, example_object_id=example_object_id)

    # ------------------------------------------------------------------ meta
    def to_meta(self) -> dict[str, Any]:
        """What a result table's ``meta`` records about the query (JSON-able).

        Single phrasings are recorded as a string, several as a list, as the
        caller wrote them.
        """
        def one_or_list(v):
            return None if not v else (v[0] if len(v) == 1 else list(v))

        meta = {"query": one_or_list(self.text) if self.text is not None else self.like,
                "negative": one_or_list(self.negative), "negative_weight": self.negative_weight,
                "like": self.like if self.text is not None else None, "like_weight": self.like_weight}
        if self.example_object_id is not None:
            meta["example_object_id"] = self.example_object_id
        if self.parsed_negative is not None:
            meta["negation"] = True
            meta["parsed_negative"] = list(self.parsed_negative)
        if self.opposite_answers:
            meta["opposite_answers"] = list(self.opposite_answers)
        if self.text is None:
            meta["vector"] = [round(float(v), 7) for v in self.vector]
        elif self.like_vector is not None:  # an example not in the index: keep it so the query can be rebuilt
            meta["like_vector"] = [round(float(v), 7) for v in self.like_vector]
        return meta

    @classmethod
    def from_meta(cls, meta: dict, model=None, index=None) -> "Query":
        """Rebuild the query a result table was searched with, from its ``meta``.

        ``model`` embeds the text again (the index's model); ``index`` gives
        the vector of an indexed example; an example that is not indexed is
        read from ``meta["like_vector"]`` (results written before it was
        recorded cannot be rebuilt).

        Raises
        ------
        InvalidInputError
            The meta records no query, or not enough to rebuild it.
        """
        text = meta.get("query") if meta.get("function", "semantic_search") != "similar_to" else None
        texts = [text] if isinstance(text, str) else (list(text) if text else None)
        like_vector, oid = None, meta.get("example_object_id") or meta.get("target_object_id")
        if oid and index is not None:
            row = int(index.rows_of([oid])[0])
            if row < 0:
                raise InvalidInputError(f"the example {oid!r} of these results is not in index {index.name!r}")
            like_vector = index.vectors([row])[0]
        elif meta.get("vector") is not None:
            like_vector = np.asarray(meta["vector"], dtype=np.float64)
        elif meta.get("like_vector") is not None:
            like_vector = np.asarray(meta["like_vector"], dtype=np.float64)
        if texts is None:
            if like_vector is None:
                raise InvalidInputError("the results' meta records neither a text query nor an indexed example; "
                                        "pass query=... (text, vector or Query)")
            return cls.from_example(like_vector, str(meta.get("query") or oid), oid)
        if meta.get("like") and like_vector is None:
            raise InvalidInputError("these results mixed an example image into the query (like=...), which the "
                                    "meta cannot reproduce; pass query=Query(text, vector) or the query vector")
        if model is None:
            raise InvalidInputError("rebuilding a text query needs the model that embeds it; pass model=...")
        negative = meta.get("negative")
        weight = meta.get("negative_weight")
        like_weight = meta.get("like_weight")
        return cls.from_text(model, texts, negative=negative, negative_weight=0.5 if weight is None else weight,
                             like_vector=like_vector, like=meta.get("like"),
                             like_weight=0.5 if like_weight is None else like_weight, example_object_id=oid,
                             negation=bool(meta.get("negation", False)))
