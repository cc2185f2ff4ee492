"""Galaxy Zoo concepts: every answer of the decision tree, its words, and its relevance.

A *concept* is one thing an astronomer may type into the search box ("bar",
"barred spiral", "SBb", "edge-on disk with a boxy bulge", "merger") together
with the number that says how much a galaxy *is* that thing: a function of
its Galaxy Zoo 2 weighted vote fractions (Willett et al. 2013). For the
plain answers it is the answer's weighted fraction itself (``Class3.1`` for
"bar"), which is exactly the relevance the evaluation ranks by
(`astro_semsearch.evaluation`); for Hubble types it is a product of the
fractions involved (an "Sc" is a spiral with a small bulge and loose arms).

Training uses the concepts twice (`astro_semsearch.training.stages`):

* the **concept loss**: for each concept, one of its wordings (a single word,
  a short or a long phrase, a Hubble type, put into a random frame such as
  "an image of a {}") is embedded by the text head and must rank the
  batch's galaxies by the concept's relevance (a listwise soft-target
  InfoNCE, text -> images), so every wording of a concept learns to point
  along the direction in which that concept grows in the image embedding;
* `ConceptCaptioner`: short captions written from the concepts (one word,
  Hubble types, two or three concepts joined), mixed with the sentences of
  `~astro_semsearch.training.captions.GalaxyZooCaptioner` for the caption
  (CLIP) loss.

All wordings are negation-free ("unbarred" and "no bar" do not occur): a
frozen sentence encoder maps "no bar" close to "bar"; negation is handled at
query time by the search code.

Examples
--------
>>> import numpy as np
>>> from astro_semsearch.training.concepts import CONCEPTS, concept_targets
>>> record = {"n_vote_columns": 37, "Class3.1": 0.4, "Class3.2": 0.2}
>>> t = concept_targets([record])
>>> round(float(t[0, [c.id for c in CONCEPTS].index("bar")]), 3)
0.4
"""
from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..datasets import GZ2_COLUMNS
from ..exceptions import InvalidInputError

__all__ = ["Concept", "CONCEPTS", "FRAMES", "RARE_CONCEPTS", "concept_targets", "concept_strings", "vote_matrix",
           "ConceptCaptioner", "held_out_texts", "with_extra_wordings"]

_COL = {c: i for i, c in enumerate(GZ2_COLUMNS)}


def _w(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The weighted fraction of one answer."""
    i = _COL[name]
    return lambda F: F[:, i]


def _cond(question: int, answer: int, F: np.ndarray) -> np.ndarray:
    """Conditional fraction of an answer among its question's answers (NaN when nobody answered)."""
    cols = [i for c, i in _COL.items() if c.startswith(f"Class{question}.")]
    tot = F[:, cols].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 1e-6, F[:, _COL[f"Class{question}.{answer}"]] / tot, np.nan)


def _hubble(bulge: Sequence[tuple[int, float]], winding: int) -> Callable[[np.ndarray], np.ndarray]:
    """Sa/Sb/Sc: spiral fraction x mean of (bulge prominence, winding) conditional fractions."""
    def f(F):
        b = sum(w * _cond(5, a, F) for a, w in bulge)
        return F[:, _COL["Class4.1"]] * 0.5 * (np.nan_to_num(b) + np.nan_to_num(_cond(10, winding, F)))
    return f


@dataclass(frozen=True)
class Concept:
    """One searchable idea: its id, relevance function of the (N, 37) vote matrix, and wordings."""

    id: str
    target: Callable[[np.ndarray], np.ndarray]
    words: tuple[str, ...]


def _c(id_, target, *words):
    return Concept(id_, target, tuple(words))


#: Every Galaxy Zoo 2 answer (all 11 questions) plus Hubble types, in many wordings.
CONCEPTS: tuple[Concept, ...] = (
    # Q1 smooth / features / star
    _c("smooth", _w("Class1.1"), "elliptical", "smooth", "smooth galaxy", "elliptical galaxy", "early-type galaxy",
       "early type", "spheroidal galaxy", "featureless galaxy", "smooth elliptical", "giant elliptical",
       "red elliptical galaxy", "smooth featureless elliptical galaxy", "ellipticals", "smooth, rounded galaxy",
       "a smooth galaxy with light fading evenly from the centre", "E galaxy", "spheroid"),
    _c("features", _w("Class1.2"), "disk galaxy", "disc galaxy", "featured galaxy", "late-type galaxy",
       "galaxy with structure", "disky galaxy", "galaxy with a disk and visible features", "disk", "disc",
       "late type"),
    _c("star", _w("Class1.3"), "star", "artifact", "foreground star", "imaging artifact", "bright star",
       "point source", "star or artifact", "satellite trail or artifact"),
    # Q2 edge-on
    _c("edge_on", _w("Class2.1"), "edge-on", "edge on", "edge-on galaxy", "edge-on disk", "edge-on spiral",
       "side-on disk", "disk seen side-on", "thin edge-on disc", "needle galaxy", "galaxy viewed edge-on",
       "flat disk seen from the side", "spindle galaxy", "edge-on lenticular", "a thin streak of light, a disk seen "
       "edge-on", "highly inclined disk"),
    _c("face_on", _w("Class2.2"), "face-on", "face-on disk", "face-on galaxy", "disk seen face-on",
       "face-on disc galaxy", "disk viewed from above"),
    # Q3 bar
    _c("bar", _w("Class3.1"), "bar", "barred", "barred spiral", "SB", "SB galaxy", "SBb spiral", "SBc galaxy",
       "barred disk", "galaxy with a bar", "central bar", "stellar bar", "bar-shaped centre", "strong bar",
       "spiral with a central bar", "a bar across the nucleus", "barred lenticular", "barred spiral galaxy",
       "a disk galaxy with a bar of stars through its centre", "bars", "SBa"),
    # Q4 spiral arms / none
    _c("spiral", _w("Class4.1"), "spiral", "spiral galaxy", "spiral arms", "galaxy with spiral arms",
       "spiral structure", "pinwheel galaxy", "spiral disk", "face-on spiral", "arms", "spirals",
       "late-type spiral", "a disk galaxy with arms winding out from the centre", "whirlpool-like galaxy",
       "spiral pattern", "S galaxy"),
    _c("no_arms", _w("Class4.2"), "lenticular", "S0", "S0 galaxy", "lenticular galaxy", "armless disk",
       "smooth disk galaxy", "featureless disk", "disk with a smooth envelope"),
    # Q5 bulge prominence
    _c("bulge_none", _w("Class5.1"), "bulgeless", "bulgeless disk", "pure disk galaxy", "Sd galaxy",
       "disk with a tiny faint centre", "Sd"),
    _c("bulge_small", _w("Class5.2"), "small bulge", "just noticeable bulge", "disk with a small bulge",
       "faint central bulge"),
    _c("bulge_obvious", _w("Class5.3"), "obvious bulge", "prominent bulge", "bright bulge",
       "disk with an obvious bulge"),
    _c("bulge_dominant", _w("Class5.4"), "dominant bulge", "bulge-dominated", "big bulge", "bulge-dominated disk",
       "huge central bulge"),
    # Q6 odd
    _c("odd", _w("Class6.1"), "peculiar", "odd", "peculiar galaxy", "unusual galaxy", "odd galaxy", "anomaly",
       "galaxy with odd features", "weird galaxy", "strange galaxy"),
    # Q7 roundness (of smooth galaxies)
    _c("round", _w("Class7.1"), "round", "circular", "E0", "E1", "completely round", "round elliptical",
       "spherical galaxy", "circular elliptical", "E0 elliptical", "perfectly round galaxy"),
    _c("in_between", _w("Class7.2"), "oval", "E3", "E4", "slightly elongated", "oval elliptical",
       "E3 elliptical", "moderately flattened elliptical", "elliptical of intermediate roundness"),
    _c("cigar", _w("Class7.3"), "cigar", "cigar-shaped", "elongated", "E6", "E7", "flattened elliptical",
       "cigar-shaped galaxy", "highly elongated galaxy", "E7 elliptical", "very elongated smooth galaxy"),
    # Q8 odd features
    _c("ring", _w("Class8.1"), "ring", "ringed", "ring galaxy", "ring-shaped", "ring structure", "inner ring",
       "outer ring", "ring around the bulge", "collisional ring", "polar ring", "ringed spiral", "annular galaxy",
       "ring of stars", "star-forming ring", "resonance ring", "rings", "galaxy with a bright ring around its core",
       "ringed galaxy", "a circle of stars around the centre"),
    _c("lens", _w("Class8.2"), "lens", "arc", "lensed", "gravitational arc", "lensing", "gravitational lensing",
       "arc around a galaxy", "strong lens", "lensed galaxy", "Einstein arc", "lens or arc", "arclet",
       "lens galaxy", "arcs", "lensed background galaxy", "a thin curved arc of light"),
    _c("disturbed", _w("Class8.3"), "disturbed", "distorted", "perturbed", "tidally disturbed", "asymmetric galaxy",
       "disturbed morphology", "lopsided", "warped", "tidal debris", "morphologically disturbed galaxy",
       "distorted galaxy", "asymmetric", "a galaxy with a messy, disturbed shape", "tidal disturbance"),
    _c("irregular", _w("Class8.4"), "irregular", "Irr", "clumpy", "clumpy galaxy", "shapeless", "amorphous galaxy",
       "patchy", "Magellanic irregular", "chaotic galaxy", "irregular shape", "irregulars", "irregular dwarf",
       "clumpy irregular galaxy", "a galaxy of irregular, patchy light", "Im galaxy"),
    _c("other", _w("Class8.5"), "something odd", "strange object", "other odd feature", "odd object"),
    _c("merger", _w("Class8.6"), "merger", "merging", "merging galaxies", "interacting", "interacting galaxies",
       "galaxy merger", "colliding galaxies", "collision", "galaxy pair", "tidal tails", "double nucleus",
       "close pair", "major merger", "merger remnant", "two galaxies", "interaction", "mergers",
       "two galaxies in collision", "galaxies interacting with tidal tails", "pair of galaxies merging"),
    _c("dust_lane", _w("Class8.7"), "dust", "dust lane", "dusty", "dark lane", "dust band", "dusty disk",
       "obscuring dust", "dust lane across the disk", "edge-on with dust", "dark stripe of dust",
       "absorption lane", "dust lanes", "dark dust lane", "a dark band of dust cutting across the galaxy",
       "dust-obscured disk"),
    # Q9 bulge of edge-on disks
    _c("eo_bulge_round", _w("Class9.1"), "rounded bulge", "round central bulge", "edge-on disk with a round bulge",
       "edge-on galaxy with a bulge"),
    _c("eo_bulge_boxy", _w("Class9.2"), "boxy bulge", "peanut bulge", "box-shaped bulge", "X-shaped bulge",
       "boxy/peanut bulge", "edge-on disk with a boxy bulge"),
    _c("eo_bulge_none", _w("Class9.3"), "razor-thin", "thin disk", "superthin galaxy", "flat edge-on disk",
       "razor-thin edge-on disk", "pure thin disk seen edge-on"),
    # Q10 winding
    _c("tight", _w("Class10.1"), "tightly wound", "tight arms", "tightly wound spiral", "tightly wound arms",
       "tightly wrapped spiral arms"),
    _c("medium", _w("Class10.2"), "moderately wound", "medium-wound arms", "moderately wound spiral",
       "medium winding"),
    _c("loose", _w("Class10.3"), "loosely wound", "open arms", "loose spiral", "wide open arms",
       "loosely wound spiral", "open spiral arms"),
    # Q11 number of arms
    _c("arms1", _w("Class11.1"), "one-armed", "one arm", "single spiral arm", "one-armed spiral"),
    _c("arms2", _w("Class11.2"), "two-armed", "two arms", "grand design", "grand design spiral",
       "two-armed spiral", "two spiral arms"),
    _c("arms3", _w("Class11.3"), "three arms", "three-armed spiral", "three spiral arms"),
    _c("arms4", _w("Class11.4"), "four arms", "four-armed spiral", "four spiral arms"),
    _c("arms_many", _w("Class11.5"), "many arms", "flocculent", "multi-armed", "flocculent spiral",
       "many spiral arms", "multi-armed spiral"),
    # Hubble types (compound relevances)
    _c("Sa", _hubble([(4, 1.0), (3, 0.5)], 1), "Sa", "Sa galaxy", "Sa spiral", "early-type spiral",
       "spiral with a big bulge and tight arms"),
    _c("Sb", _hubble([(3, 1.0), (2, 0.5)], 2), "Sb", "Sb galaxy", "Sb spiral", "intermediate spiral"),
    _c("Sc", _hubble([(1, 1.0), (2, 1.0)], 3), "Sc", "Sc galaxy", "Sc spiral", "late-type spiral with loose arms",
       "spiral with a small bulge and open arms"),
)

#: Concepts whose galaxies are rare (weighted fraction > 0.5 in well under 1-4% of the data).
RARE_CONCEPTS = ("ring", "lens", "disturbed", "irregular", "merger", "dust_lane", "bar", "edge_on", "odd")

#: Sentence frames for wordings. "{a}" is the article of the wording (or nothing).
FRAMES = ("{w}", "{w}", "{w}", "{a}{w}", "{w} galaxy", "an image of {a}{w}", "this is {a}{w}", "{w} in SDSS",
          "galaxies: {w}", "{a}{w} seen in a survey image", "{w}, a galaxy image", "show me {w}")


_VOWEL_SOUND = ("E0", "E1", "E3", "E4", "E6", "E7", "E ", "S0", "SB", "Sa", "Sb", "Sc", "Sd", "S ", "Irr", "Im ",
                "X-shaped")


def _article(w: str) -> str:
    """``"a "``, ``"an "`` or ``""`` (plurals, counts) for a wording.

    >>> [_article(w) for w in ("bar", "edge-on disk", "SBb spiral", "tidal tails", "lens", "two arms")]
    ['a ', 'an ', 'an ', '', 'a ', '']
    """
    last = w.split()[-1].strip(",;")
    if w.startswith(("two ", "three ", "four ", "many ", "galaxies")) or (
            last.endswith("s") and last not in ("lens", "nucleus", "SBs") and len(last) > 2):
        return ""
    if w.startswith(_VOWEL_SOUND) or w == "E" or w[:1].lower() in "aeiou":
        return "an "
    return "a "


def with_extra_wordings(concepts: Sequence[Concept], path: str | os.PathLike) -> tuple[Concept, ...]:
    r"""The concepts with more wordings, read from a TOML file of ``[concept_id] words = [...]`` tables.

    A wording a concept already has (case-insensitive) is not repeated;
    concepts the file does not name keep their wordings, and tables for
    concepts not in ``concepts`` (a subset of `CONCEPTS`) are ignored.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "extra.toml"
    >>> _ = f.write_text('[bar]\nwords = ["Bar", "bar-shaped galaxy"]\n')
    >>> bar = [c for c in with_extra_wordings(CONCEPTS, f) if c.id == "bar"][0]
    >>> bar.words[-1], len(bar.words) - len([c for c in CONCEPTS if c.id == "bar"][0].words)
    ('bar-shaped galaxy', 1)
    """
    try:
        with open(path, "rb") as f:
            extra = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"extra wordings file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise InvalidInputError(f"{path} is not valid TOML: {err}") from err
    known = {c.id for c in CONCEPTS} | {c.id for c in concepts}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise InvalidInputError(f"{path}: unknown concept ids {unknown}; known: {sorted(known)}")
    out = []
    for c in concepts:
        table = extra.get(c.id, {"words": []})
        words = table.get("words") if isinstance(table, dict) else None
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise InvalidInputError(f"{path}: [{c.id}] needs words = a list of non-empty strings")
        have = {w.lower() for w in c.words}
        new = []
        for w in (" ".join(w.split()) for w in words):
            if w.lower() not in have:
                have.add(w.lower())
                new.append(w)
        out.append(Concept(c.id, c.target, c.words + tuple(new)))
    return tuple(out)


def concept_strings(concept: Concept, exclude: Sequence[str] = ()) -> list[str]:
    """Every (wording x frame) string of a concept, sorted, without the ``exclude`` strings (case-insensitive)."""
    ex = {e.strip().lower() for e in exclude}
    out = set()
    for w in concept.words:
        for f in FRAMES:
            if f == "{w} galaxy" and ("galax" in w or len(w.split()) > 2):
                continue  # "... galaxy galaxy", "a disk with ... centre galaxy"
            s = " ".join(f.format(w=w, a=_article(w)).split())
            if s.lower() not in ex:
                out.add(s)
    return sorted(out)


def vote_matrix(table) -> np.ndarray:
    """``(N, 37)`` float64 weighted vote fractions of a table or list of records (NaN where unknown)."""
    if hasattr(table, "colnames"):
        return np.stack([np.asarray(table[c], dtype=float) if c in table.colnames else np.full(len(table), np.nan)
                         for c in GZ2_COLUMNS], 1) if len(table) else np.zeros((0, len(GZ2_COLUMNS)))

    def get(r, c):
        try:
            return float(r[c])
        except (KeyError, TypeError, ValueError):
            return math.nan
    return np.array([[get(r, c) for c in GZ2_COLUMNS] for r in table], dtype=float).reshape(-1, len(GZ2_COLUMNS))


def concept_targets(table, concepts: Sequence[Concept] = CONCEPTS) -> np.ndarray:
    """``(N, K)`` float32 relevance of every galaxy for every concept, NaN where its votes are unknown.

    A relevance is unknown when the answer's question was not in the
    galaxy's votes (e.g. the bar of a 17-column record); compound (Hubble)
    relevances need all 37 columns.
    """
    F = vote_matrix(table)
    out = np.full((len(F), len(concepts)), np.nan, dtype=np.float32)
    if not len(F):
        return out
    full = np.all(np.isfinite(F), axis=1)
    with np.errstate(invalid="ignore"):
        for k, c in enumerate(concepts):
            v = np.asarray(c.target(np.nan_to_num(F)), dtype=float)
            probe = c.target(F)  # NaN wherever an input column is unknown
            known = np.isfinite(probe) & (full if c.id in ("Sa", "Sb", "Sc") else True)
            out[:, k] = np.where(known, np.clip(v, 0.0, 1.0), np.nan)
    return out


def held_out_texts() -> list[str]:
    """Every query text of the evaluation sets, kept out of the training strings so evaluation stays honest.

    The phrasings of ``data/eval_queries.toml`` and the wordings (and their
    positive counterparts) of ``data/eval_wordings.toml`` and
    ``data/eval_wordings_third.toml``: a concept string
    or concept caption equal to one of them (case-insensitive) is dropped, so
    no evaluated query is ever a verbatim training string.
    """
    from ..evaluation.protocol import load_queries
    from ..evaluation.wordings import DEFAULT_WORDINGS, THIRD_WORDINGS, load_wordings

    texts = {q for v in load_queries().values() for q in v}
    for path in (DEFAULT_WORDINGS, THIRD_WORDINGS):
        data = load_wordings(path)
        for q in data["query"]:
            texts.add(q["text"])
            if q.get("opposite_positive"):
                texts.add(q["opposite_positive"])
        texts |= set(data["on_topic_generic"])
    return sorted(texts)


class ConceptCaptioner:
    """Short captions written from the concepts: one word, Hubble types, two or three concepts.

    For each caption the galaxy's concepts are drawn with probability equal
    to their (weighted) relevance times ``boost`` for the rare ones, at most
    ``max_concepts``, and one wording of each is used, joined in one of a
    few simple ways ("barred spiral, Sb", "merger; disturbed", "edge-on disk
    with a boxy bulge"). Records without votes give ``[]`` (the sentence
    captioner covers their coarse labels).

    Examples
    --------
    >>> import numpy as np
    >>> rec = {"n_vote_columns": 17, "Class1.1": 0.1, "Class1.2": 0.9, "Class1.3": 0.0, "Class6.1": 0.9,
    ...        "Class8.6": 0.8}
    >>> caps = ConceptCaptioner()(rec, np.random.default_rng(0), n=5)
    >>> len(caps), all(isinstance(c, str) and c for c in caps)
    (5, True)
    """

    def __init__(self, concepts: Sequence[Concept] = CONCEPTS, boost: float = 2.0, max_concepts: int = 3,
                 min_relevance: float = 0.15, exclude: Sequence[str] = ()) -> None:
        self.concepts = tuple(concepts)
        self.boost = float(boost)
        self.max_concepts = int(max_concepts)
        self.min_relevance = float(min_relevance)
        self.exclude = {e.strip().lower() for e in exclude}

    def __call__(self, record: Mapping[str, Any], rng: np.random.Generator, n: int = 1) -> list[str]:
        t = concept_targets([record], self.concepts)[0]
        t = np.nan_to_num(t)
        if not np.any(t >= self.min_relevance):
            return []
        p = np.array([min(1.0, (self.boost if c.id in RARE_CONCEPTS else 1.0) * v) if v >= self.min_relevance
                      else 0.0 for c, v in zip(self.concepts, t)])
        out = []
        for _ in range(n):
            for _try in range(8):
                pick = np.flatnonzero(rng.random(len(p)) < p)
                if len(pick) == 0:
                    pick = np.array([int(np.argmax(t))])
                if len(pick) > self.max_concepts:
                    pick = rng.choice(pick, self.max_concepts, replace=False)
                # Most relevant first.
                pick = pick[np.argsort(-t[pick], kind="stable")]
                words = [self.concepts[i].words[int(rng.integers(len(self.concepts[i].words)))] for i in pick]
                sep = [", ", "; ", " and ", " with ", ", "][int(rng.integers(5))] if len(words) > 1 else ""
                text = sep.join(words) if sep != " with " else words[0] + " with " + ", ".join(words[1:])
                if rng.random() < 0.3:
                    text = FRAMES[int(rng.integers(len(FRAMES)))].format(w=text, a=_article(text))
                text = " ".join(text.split())
                if text.lower() not in self.exclude:
                    break
            out.append(text)
        return out
