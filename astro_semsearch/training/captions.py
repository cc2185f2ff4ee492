"""Turn Galaxy Zoo votes into natural-language captions for image-text training.

The aligned model learns from (image, caption) pairs. Real astronomers will
type queries such as "barred spiral", "two galaxies merging" or "edge-on disc
with a dust lane", so the captions must cover the same ideas in many
wordings. This module writes them from the Galaxy Zoo 2 (GZ2) weighted vote
fractions (Willett et al. 2013):

* Each attribute (smooth or disk, edge-on, bar, spiral arms, their number and
  winding, bulge, roundness, the odd features) is mentioned with a
  probability tied to the volunteers' vote fraction, using *conditional*
  fractions, e.g. ``P(bar | disk) = Class3.1 / (Class3.1 + Class3.2)``.
  Fractions below `MIN_FRACTION` are treated as noise and never captioned.
* Rare odd features (ring, lens/arc, disturbed, irregular, merger, dust lane)
  are the needles people search for, so they are captioned with probability
  ``clip(2 * fraction, 0, 1)`` and often put first in the sentence.
* Captions never use negations ("no bar", "not a spiral"): a frozen sentence
  encoder maps "no bar" close to "bar" (AION-Search found negation-free text
  trains better). A caption only describes what is there.
* Wording varies: synonyms, astronomer and plain-language phrasings, several
  sentence frames and word orders. The vocabulary is kept finite so that the
  number of distinct strings stays small enough to embed once on a CPU.

A different labelling scheme (or a vision-language model that describes
unlabelled images) plugs in through the `Captioner` protocol: any callable
``captioner(record, rng, n) -> list[str]`` works with `caption_table`.

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.training.captions import GalaxyZooCaptioner
>>> record = {"n_vote_columns": 37, "Class1.1": 0.1, "Class1.2": 0.9, "Class1.3": 0.0,
...           "Class2.1": 0.0, "Class2.2": 0.9, "Class3.1": 0.8, "Class3.2": 0.1,
...           "Class4.1": 0.9, "Class4.2": 0.0}
>>> caps = GalaxyZooCaptioner()(record, np.random.default_rng(1), n=4)
>>> len(caps)
4
>>> any(" no " in f" {c} " for c in caps)
False
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..exceptions import InvalidInputError, InvalidTypeError
from . import vocabulary as vocab

__all__ = [
    "Captioner",
    "GalaxyZooCaptioner",
    "KeywordCaptioner",
    "lens_captions",
    "caption_table",
    "MIN_FRACTION",
]

#: Conditional vote fractions below this are volunteer noise: never captioned.
MIN_FRACTION = 0.1


@runtime_checkable
class Captioner(Protocol):
    """Anything that describes one catalogue record in words.

    A captioner is called with one record (a mapping, e.g. a row of
    `~astro_semsearch.training.data.load_gz2` as a dict, with at least the
    image ``path``), a `numpy.random.Generator` and the number of captions
    wanted. It returns a list of up to ``n`` strings; an empty list means "I
    cannot describe this object" and the object is then used only for
    image-only (self-supervised) training.

    To caption unlabelled images with your own vision-language model, wrap it
    in a class with this ``__call__``::

        class MyVLMCaptioner:
            def __init__(self, vlm):
                self.vlm = vlm          # e.g. a local LLaVA / Florence model

            def __call__(self, record, rng, n=1):
                text = self.vlm.describe(record["path"])   # one description
                return [text] * n if text else []

    and pass it to `caption_table` (or the ``captioner`` of the training
    configuration). Keep descriptions negation-free and about morphology.
    """

    def __call__(self, record: Mapping[str, Any], rng: np.random.Generator, n: int = 1) -> list[str]:
        ...


def _article(phrase: str) -> str:
    """English indefinite article for a noun phrase ("" for plurals)."""
    if phrase.startswith(vocab.PLURAL):
        return ""
    if phrase.startswith(("SB ", "E0 ")):
        return "an"
    return "an" if phrase[:1].lower() in "aeiou" and not phrase.startswith(("one", "uni")) else "a"


def _with_article(phrase: str) -> str:
    a = _article(phrase)
    return f"{a} {phrase}" if a else phrase


def _get(record: Mapping[str, Any], key: str) -> float:
    """Vote fraction from a record, NaN when missing or masked."""
    try:
        value = record[key]
    except (KeyError, IndexError, ValueError):
        return math.nan
    try:
        value = float(value)
    except (TypeError, ValueError):  # masked or text
        return math.nan
    return value


def _cond(record: Mapping[str, Any], keys: Sequence[str]) -> np.ndarray | None:
    """Conditional fractions of one question's answers (sum 1), or None if unknown."""
    v = np.array([_get(record, k) for k in keys], dtype=float)
    if not np.all(np.isfinite(v)) or v.sum() <= 1e-6:
        return None
    v = np.clip(v, 0.0, None)
    return v / v.sum()


def _choice(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _pick_answer(rng: np.random.Generator, probs: np.ndarray | None, names: Sequence[str]) -> str | None:
    """Draw one answer in proportion to its conditional fraction, ignoring noise-level answers."""
    if probs is None:
        return None
    p = np.where(probs >= MIN_FRACTION, probs, 0.0)
    if p.sum() <= 0:
        return None
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _bernoulli(rng: np.random.Generator, p: float | None) -> bool:
    if p is None or not np.isfinite(p) or p < MIN_FRACTION:
        return False
    return bool(rng.random() < p)


def _join_with(clauses: list[str], rng: np.random.Generator) -> str:
    if not clauses:
        return ""
    if len(clauses) == 1:
        body = clauses[0]
    else:
        body = ", ".join(clauses[:-1]) + " and " + clauses[-1]
    return " " + _choice(rng, ["with", "with", "showing", "that has"]) + " " + body


_COARSE = {
    "completely round smooth": ("smooth", "round"),
    "in between smooth": ("smooth", "between"),
    "cigar-shaped smooth": ("smooth", "cigar"),
    "edge-on": ("edge", None),
    "spiral": ("spiral", None),
}


class GalaxyZooCaptioner:
    """Caption Galaxy Zoo 2 records (weighted vote fractions or a coarse label).

    Parameters
    ----------
    odd_boost : float
        Rare odd features are mentioned with probability
        ``clip(odd_boost * fraction, 0, 1)`` (default 2): over-sampling the
        needles astronomers search for.
    max_details : int
        At most this many secondary details (bar, arm count, winding, bulge,
        roundness) per caption, so captions stay short and readable.

    Notes
    -----
    A record is a mapping with keys ``"Class1.1"`` ... ``"Class11.6"``
    (weighted fractions, NaN or absent when unknown), ``"n_vote_columns"``
    and ``"coarse_label"``, e.g. ``dict(zip(t.colnames, row))`` for a row of
    `~astro_semsearch.training.data.load_gz2`. Rows with no votes and no
    coarse label give ``[]``.

    Examples
    --------
    >>> import numpy as np
    >>> cap = GalaxyZooCaptioner()
    >>> cap({"coarse_label": "edge-on"}, np.random.default_rng(0), n=2)  # doctest: +SKIP
    ['edge-on disc', 'an image of a galaxy viewed side-on']
    >>> cap({"coarse_label": ""}, np.random.default_rng(0), n=3)
    []
    """

    def __init__(self, odd_boost: float = 2.0, max_details: int = 2) -> None:
        if odd_boost <= 0:
            raise InvalidInputError(f"odd_boost must be positive, got {odd_boost}")
        if max_details < 0:
            raise InvalidInputError(f"max_details must be >= 0, got {max_details}")
        self.odd_boost = float(odd_boost)
        self.max_details = int(max_details)

    # -- public ------------------------------------------------------------
    def __call__(self, record: Mapping[str, Any], rng: np.random.Generator, n: int = 1) -> list[str]:
        if n < 0:
            raise InvalidInputError(f"n must be >= 0, got {n}")
        has_votes = np.isfinite(_get(record, "Class1.1"))
        coarse = str(record.get("coarse_label", "") if hasattr(record, "get") else _safe(record, "coarse_label"))
        coarse = coarse.strip().lower()
        if not has_votes and coarse not in _COARSE:
            return []
        out = []
        for _ in range(n):
            out.append(self._one(record, rng) if has_votes else self._one_coarse(coarse, rng))
        return out

    # -- internals ---------------------------------------------------------
    def _one_coarse(self, coarse: str, rng: np.random.Generator) -> str:
        kind, shape = _COARSE[coarse]
        if kind == "smooth":
            np_ = _choice(rng, vocab.SMOOTH[shape])
        elif kind == "edge":
            np_ = _choice(rng, vocab.EDGE_ON)
        else:
            np_ = _choice(rng, vocab.SPIRAL)
        return self._frame(np_, rng)

    def _one(self, record: Mapping[str, Any], rng: np.random.Generator) -> str:
        main = _pick_answer(rng, _cond(record, ["Class1.1", "Class1.2", "Class1.3"]), ["smooth", "disk", "star"])
        odd = self._odd_features(record, rng)
        if main is None and not odd:
            return self._frame(_choice(rng, ["galaxy", "galaxy image"]), rng)
        details: list[str] = []
        prefix = ""
        if main == "star":
            head = _choice(rng, vocab.STAR)
        elif main == "smooth":
            shape = _pick_answer(rng, _cond(record, ["Class7.1", "Class7.2", "Class7.3"]),
                                 ["round", "between", "cigar"])
            head = _choice(rng, vocab.SMOOTH[shape or "any"])
        elif main == "disk":
            head, prefix, details = self._disk(record, rng)
        else:
            head = ""
        # Odd features: often first ("ring galaxy, a barred spiral ..."),
        # otherwise as a "with" clause after the morphology.
        odd_first = None
        odd_with: list[str] = []
        for i, key in enumerate(odd):
            standalone, with_forms = vocab.ODD[key]
            if i == 0 and (not head or rng.random() < 0.6):
                odd_first = _choice(rng, standalone)
            else:
                odd_with.append(_choice(rng, with_forms))
        if len(details) > self.max_details:
            idx = rng.choice(len(details), size=self.max_details, replace=False)
            details = [details[i] for i in sorted(idx)]
        elif details:
            # Randomly drop details so short captions are common too.
            keep = int(rng.integers(0, len(details) + 1))
            details = details[:keep] if rng.random() < 0.5 else details[len(details) - keep:]
        if head:
            np_ = (prefix + " " + head).strip() + _join_with(odd_with + details if rng.random() < 0.5
                                                             else details + odd_with, rng)
            if odd_first:
                sep = _choice(rng, [", ", ": ", " - "])
                if rng.random() < 0.5:
                    return odd_first + sep + _with_article(np_)
                lead = _choice(rng, ["", "looks like ", "likely "])
                return self._frame(np_, rng) + ", " + lead + _with_article(odd_first)
            return self._frame(np_, rng)
        return self._frame(odd_first + _join_with(odd_with, rng), rng)

    def _disk(self, record: Mapping[str, Any], rng: np.random.Generator) -> tuple[str, str, list[str]]:
        """Head noun, prefix and 'with' details for a galaxy drawn as a disk."""
        edge = _cond(record, ["Class2.1", "Class2.2"])
        if edge is not None and edge[0] >= MIN_FRACTION and rng.random() < edge[0]:
            details = []
            bulge = _pick_answer(rng, _cond(record, ["Class9.1", "Class9.2", "Class9.3"]), ["rounded", "boxy", "none"])
            if bulge:
                details.append(_choice(rng, vocab.EDGE_BULGE[bulge]))
            return _choice(rng, vocab.EDGE_ON), "", details

        bar_p = _cond(record, ["Class3.1", "Class3.2"])
        spiral_p = _cond(record, ["Class4.1", "Class4.2"])
        barred = _bernoulli(rng, None if bar_p is None else bar_p[0])
        spiral = _bernoulli(rng, None if spiral_p is None else spiral_p[0])
        details: list[str] = []
        prefix = ""
        if spiral:
            head = _choice(rng, vocab.BARRED_SPIRAL if barred else vocab.SPIRAL)
            count = _pick_answer(rng, _cond(record, [f"Class11.{i}" for i in range(1, 6)]),
                                 ["one", "two", "three", "four", "many"])
            wind = _pick_answer(rng, _cond(record, ["Class10.1", "Class10.2", "Class10.3"]),
                                ["tight", "medium", "loose"])
            if count and wind and rng.random() < 0.5:
                arms = "arm" if count == "one" else "arms"
                details.append(f"{vocab.COUNT_WORD[count]} {_choice(rng, vocab.WIND_WORD[wind])} {arms}")
            else:
                if count and count in vocab.ARMS_PREFIX and rng.random() < 0.35:
                    prefix = _choice(rng, vocab.ARMS_PREFIX[count])
                    if prefix.startswith("grand design") and "spiral" not in head:
                        prefix = "two-armed"
                elif count:
                    details.append(_choice(rng, vocab.ARMS_COUNT[count]))
                if wind:
                    details.append(_choice(rng, vocab.WINDING[wind]))
        elif barred:
            head = _choice(rng, vocab.BARRED_DISK)
        else:
            head = _choice(rng, vocab.DISK)
        bulge = _pick_answer(rng, _cond(record, ["Class5.1", "Class5.2", "Class5.3", "Class5.4"]),
                             ["none", "small", "obvious", "dominant"])
        if bulge:
            details.append(_choice(rng, vocab.BULGE[bulge]))
        return head, prefix, details

    def _odd_features(self, record: Mapping[str, Any], rng: np.random.Generator) -> list[str]:
        """Odd features to mention, the most voted first; at most two."""
        fr = np.array([_get(record, f"Class8.{i}") for i in range(1, 8)], dtype=float)
        if not np.any(np.isfinite(fr)):
            return []
        fr = np.nan_to_num(fr)
        picked = []
        for i in np.argsort(-fr, kind="stable"):
            key = vocab.ODD_KEYS[i]
            # "other" is vague: plain proportional; the named rare features boosted.
            p = fr[i] if key == "other" else min(1.0, self.odd_boost * fr[i])
            if fr[i] >= MIN_FRACTION / 2 and rng.random() < p:
                picked.append(key)
        return picked[:2]

    @staticmethod
    def _frame(np_: str, rng: np.random.Generator) -> str:
        return " ".join(_choice(rng, vocab.FRAMES).format(np=np_, a=_article(np_)).split())


def _safe(record, key):
    try:
        return record[key]
    except (KeyError, IndexError, ValueError):
        return ""


class KeywordCaptioner:
    """Caption objects from a single class-label column (e.g. your own survey's labels).

    Parameters
    ----------
    column : str
        Record key holding the label.
    phrases : mapping
        Label -> list of wordings. Unknown labels give ``[]``.

    Examples
    --------
    >>> import numpy as np
    >>> cap = KeywordCaptioner("label", {"ring": ["ring galaxy", "galaxy with a ring"]})
    >>> cap({"label": "ring"}, np.random.default_rng(0), n=2)[0] in ("ring galaxy", "galaxy with a ring")
    True
    >>> cap({"label": "spiral"}, np.random.default_rng(0))
    []
    """

    def __init__(self, column: str, phrases: Mapping[str, Sequence[str]]) -> None:
        self.column = column
        self.phrases = {str(k): list(v) for k, v in phrases.items()}
        for k, v in self.phrases.items():
            if not v:
                raise InvalidInputError(f"label {k!r} has no phrasings")

    def __call__(self, record: Mapping[str, Any], rng: np.random.Generator, n: int = 1) -> list[str]:
        label = str(_safe(record, self.column))
        options = self.phrases.get(label)
        if not options:
            return []
        return [_choice(rng, options) for _ in range(n)]


def lens_captions(rng: np.random.Generator, n: int = 1) -> list[str]:
    """Captions for a smooth galaxy with injected strong-lensing arcs.

    Examples
    --------
    >>> import numpy as np
    >>> caps = lens_captions(np.random.default_rng(0), n=3)
    >>> len(caps), all(isinstance(c, str) and c for c in caps)
    (3, True)
    """
    if n < 0:
        raise InvalidInputError(f"n must be >= 0, got {n}")
    out = []
    for _ in range(n):
        text = _choice(rng, vocab.LENS)
        if rng.random() < 0.3:
            text = _choice(rng, ["an image of ", "this is ", "SDSS image of "]) + text
        out.append(text)
    return out


def _as_record(table, i: int) -> Mapping[str, Any]:
    if isinstance(table, Sequence) and not hasattr(table, "colnames"):
        return table[i]
    row = table[i]
    return {name: row[name] for name in table.colnames}


def caption_table(table, captioner: Captioner | None = None, n_per_object: int = 8, seed: int = 0) -> list[list[str]]:
    """Caption every row of a table, reproducibly.

    Parameters
    ----------
    table : `~astropy.table.Table` or sequence of mappings
        E.g. the output of `~astro_semsearch.training.data.load_gz2`.
    captioner : Captioner, optional
        Default `GalaxyZooCaptioner()`.
    n_per_object : int
        Captions drawn per row.
    seed : int
        Row ``i`` uses ``numpy.random.default_rng([seed, i])``, so the result
        does not depend on how the table is processed.

    Returns
    -------
    list of list of str
        One list per row (empty for rows the captioner cannot describe).

    Examples
    --------
    >>> caps = caption_table([{"coarse_label": "spiral"}, {"coarse_label": ""}], n_per_object=2)
    >>> [len(c) for c in caps]
    [2, 0]
    >>> caps == caption_table([{"coarse_label": "spiral"}, {"coarse_label": ""}], n_per_object=2)
    True
    """
    if n_per_object < 0:
        raise InvalidInputError(f"n_per_object must be >= 0, got {n_per_object}")
    captioner = GalaxyZooCaptioner() if captioner is None else captioner
    if not callable(captioner):
        raise InvalidTypeError(f"captioner must be callable (record, rng, n) -> list[str], got {type(captioner).__name__}")
    out = []
    for i in range(len(table)):
        rng = np.random.default_rng([int(seed), i])
        out.append(list(captioner(_as_record(table, i), rng, n_per_object)))
    return out
