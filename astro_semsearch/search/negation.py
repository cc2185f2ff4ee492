"""Negation in a text query: "galaxy without a ring" searches for a galaxy, away from rings.

A sentence encoder maps "no bar" close to "bar", so a negated phrase searched
as it is finds exactly what it excludes. `split_negation` rewrites a query
into what is wanted and what is not, which the search then combines as
``q = unit(text(wanted)) - negative_weight * unit(text(unwanted))``
(`~astro_semsearch.search.query.query_vector`).

Forms understood (any case):

* ``without X``, ``with no X``, ``no X``, ``not X``, ``never X``, ``lacking X``,
  ``free of X``, ``isn't X``, ``aren't X``, ``doesn't have X`` — X runs to the
  end of the clause (a comma, a semicolon, a spaced dash,
  ``but``, ``and`` followed by a new clause, or the end); ``X, Y or Z``
  gives three unwanted terms; "sign of", "trace of", "any", "at all" and
  articles are dropped;
* ``non-X`` / ``non X`` (one word, or a hyphenated compound such as
  ``non-edge-on``) and ``X-free`` (``bar-free``);
* ``un``-words that negate a feature: ``unbarred``, ``unringed``,
  ``undisturbed``, ``unlensed``, ``non-interacting``, ``isolated``-style
  words are left alone (they are positive descriptions).

Words that merely contain these letters ("nothing", "nova", "featureless",
"uniform", "annotated") are not negations. If nothing wanted remains
("not smooth"), the wanted part is ``"a galaxy"``.

**Yes/no questions.** Where the negated feature is one answer of a Galaxy Zoo
yes/no question ("spiral arms", "edge-on", "smooth" or "elliptical"), saying
"no" to it *is* the other answer, which the model was trained on: a disk with
no spiral arms is an S0, a disk that is not edge-on is face-on. Such a term
is searched as that answer's wordings (`opposite_answer`), added to the
wanted part with equal weight, and not subtracted. Subtracting it would
instead drift towards whatever lacks the feature for another reason:
"disk galaxy" minus "spiral arms" ranks ellipticals first, which are no
disks at all. The bar and the odd features have no trained "no" answer and
stay negatives.

Examples
--------
>>> split_negation("galaxy without a ring")
('galaxy', ['ring'])
>>> split_negation("unbarred spiral")
('spiral', ['bar'])
>>> split_negation("non-edge-on discs")
('discs', ['edge-on'])
>>> split_negation("regular galaxy, not irregular or odd in any way")
('regular galaxy', ['irregular', 'odd in any way'])
>>> split_negation("barred spiral")
('barred spiral', [])
"""
from __future__ import annotations

import re

__all__ = ["split_negation", "opposite_answer", "NEGATED_WORDS", "OPPOSITE_ANSWERS", "ANSWER_WORDINGS"]

#: ``un``-words that negate a morphological feature, and the feature they exclude.
NEGATED_WORDS = {
    "unbarred": "bar",
    "unringed": "ring",
    "undisturbed": "disturbed",
    "unlensed": "gravitational lens",
    "uninteracting": "interacting galaxies",
    "non-interacting": "interacting galaxies",
    "armless": "spiral arms",
    "bulgeless": "bulge",
}

_CUE = (r"(?:without|with\s+no|no|not|never|lacking|free\s+of|isn't|is\s+not|aren't|are\s+not|"
        r"(?:does|do)(?:n't|\s+not)\s+have)")
# The unwanted phrase runs to the end of its clause.
_CLAUSE_END = (r"(?=\s*(?:[;.]|\s-\s|,(?![^,;.]*\b(?:or|nor)\b[^,;.]*(?:[;.]|$))|\bbut\b|\bwhile\b|\bwhereas\b|"
               r"\band\s+(?:a|an|the|with|has|is|its|no|not|without)\b|$))")
_NEG_RE = re.compile(rf"(?:^|(?<=[\s,;(]))({_CUE})\s+(.+?){_CLAUSE_END}", re.IGNORECASE)
_NON_RE = re.compile(r"(?:^|(?<=[\s,;(]))non[-\s]((?:[a-z]+)(?:-[a-z]+)*)", re.IGNORECASE)
_FREE_RE = re.compile(r"(?:^|(?<=[\s,;(]))([a-z]+(?:-[a-z]+)*)-free\b", re.IGNORECASE)
_FILLER = re.compile(r"^(?:(?:any|a|an|the|obvious|visible|clear|signs?|traces?|evidence|hint)\s+|of\s+)+",
                     re.IGNORECASE)
_DANGLING = re.compile(r"(?:\s*(?:,|;|\band\b|\bbut\b|\bwith\b|\bthat\s+is\b|\bthat\s+has\b|\bwhich\s+is\b|"
                       r"\bthat\b|\bshowing\b|\bhaving\b|\bis\b))+$", re.IGNORECASE)
_LEADING = re.compile(r"^(?:\s*(?:,|;|\band\b|\bbut\b))+", re.IGNORECASE)


def _clean_unwanted(phrase: str) -> list[str]:
    """Split ``"X or Y"`` and drop fillers ("any sign of a merger" -> "merger")."""
    phrase = re.sub(r"\s+at\s+all$", "", phrase.strip(), flags=re.IGNORECASE)
    parts = re.split(r"\s*(?:,|\bor\b|\bnor\b|/)\s*", phrase, flags=re.IGNORECASE)
    out = []
    for part in parts:
        part = _FILLER.sub("", part.strip()).strip(" ,;.")
        if part:
            out.append(part)
    return out


def _tidy(text: str) -> str:
    text = re.sub(r"\s+-\s+", ", ", f" {text} ")  # a spaced dash ends a clause like a comma
    text = re.sub(r"\s+([,;.])", r"\1", re.sub(r"\s+", " ", text)).strip(" ,;.")
    text = _DANGLING.sub("", text)
    return _LEADING.sub("", text).strip(" ,;.")


def split_negation(text: str) -> tuple[str, list[str]]:
    """``(wanted, unwanted)``: a query with its negated parts taken out.

    Parameters
    ----------
    text : str
        One query phrasing.

    Returns
    -------
    wanted : str
        What is searched for (``"a galaxy"`` if the query only says what is
        not wanted).
    unwanted : list of str
        The negated features, in order; empty when there is no negation.
    """
    unwanted: list[str] = []
    words = []
    for word in re.split(r"(\s+)", text):
        key = word.lower().strip(",;.")
        if key in NEGATED_WORDS:
            unwanted.append(NEGATED_WORDS[key])
            words.append(word[len(word.rstrip(",;.")):])  # keep the punctuation only
        else:
            words.append(word)
    rest = "".join(words)

    def take(match: re.Match) -> str:
        unwanted.extend(_clean_unwanted(match.group(2)))
        # "with no arms and a bulge" -> "with a bulge": the wanted clause after "and" keeps its "with"
        return " \0with " if match.group(1).lower().startswith("with") else " \0 "

    rest = _NEG_RE.sub(take, rest)
    rest = re.sub(r"\0with\s+and\b", "with", rest)
    rest = rest.replace("\0with", "").replace("\0", "")

    def take_non(match: re.Match) -> str:
        unwanted.append(match.group(1))
        return " "

    rest = _NON_RE.sub(take_non, rest)
    rest = _FREE_RE.sub(take_non, rest)  # "bar-free", "dust-free"
    wanted = _tidy(rest)
    if not unwanted:
        return text.strip(), []
    return (wanted or "a galaxy"), unwanted


#: The yes/no questions of the Galaxy Zoo decision tree, as pairs of answers: "no" to one asks for
#: the other (Q1 smooth or featured, its star/artefact answer aside; Q2 edge-on or not; Q4 spiral
#: arms or none). Q3 (bar) and Q6 (anything odd) have no trained wordings for their "no" answer.
OPPOSITE_ANSWERS = {"smooth": "features", "features": "smooth", "edge_on": "face_on", "face_on": "edge_on",
                    "spiral": "no_arms", "no_arms": "spiral"}

#: Each answer's wordings the model was trained with (those of `astro_semsearch.training.concepts`
#: that are not an evaluation query: tests/test_negation.py checks both).
ANSWER_WORDINGS = {
    "no_arms": ("lenticular", "S0", "S0 galaxy", "lenticular galaxy", "armless disk", "smooth disk galaxy",
                "featureless disk", "disk with a smooth envelope"),
    "face_on": ("face-on", "face-on galaxy", "disk seen face-on", "disk viewed from above"),
    "features": ("disk galaxy", "disc galaxy", "featured galaxy", "late-type galaxy", "galaxy with structure",
                 "disky galaxy", "galaxy with a disk and visible features", "disk", "disc", "late type"),
    "spiral": ("spiral galaxy", "galaxy with spiral arms", "spiral structure", "spiral disk",
               "face-on spiral", "arms", "late-type spiral", "a disk galaxy with arms winding out from the centre",
               "whirlpool-like galaxy", "spiral pattern", "S galaxy"),
    "edge_on": ("edge on", "edge-on galaxy", "edge-on disk", "edge-on spiral", "disk seen side-on",
                "thin edge-on disc", "galaxy viewed edge-on", "flat disk seen from the side", "spindle galaxy",
                "edge-on lenticular", "a thin streak of light, a disk seen edge-on", "highly inclined disk"),
    "smooth": ("smooth galaxy", "elliptical galaxy", "early type", "spheroidal galaxy", "featureless galaxy",
               "smooth elliptical", "giant elliptical", "red elliptical galaxy",
               "smooth featureless elliptical galaxy", "ellipticals", "smooth, rounded galaxy",
               "a smooth galaxy with light fading evenly from the centre", "E galaxy", "spheroid"),
}

# The answers' plainest names, held out of training because the evaluation asks for them.
_NAMES = {"spiral": "spiral", "spirals": "spiral", "spiral arms": "spiral", "edge-on": "edge_on",
          "side-on disk": "edge_on", "needle galaxy": "edge_on", "elliptical": "smooth", "smooth": "smooth",
          "early-type galaxy": "smooth", "face-on disk": "face_on", "face-on disk galaxy": "face_on",
          "pinwheel galaxy": "spiral"}


def _normal(phrase: str) -> str:
    phrase = " ".join(phrase.lower().replace("disc", "disk").split())
    return phrase.removeprefix("a ").removeprefix("an ").removeprefix("the ")


# normalised wording (and its plural) -> the answer it names
_ANSWER_OF = {_normal(w) + plural: a for a, ws in ANSWER_WORDINGS.items() for w in ws for plural in ("", "s")}
_ANSWER_OF.update({_normal(w): a for w, a in _NAMES.items()})


def opposite_answer(term: str) -> tuple[str, tuple[str, ...]] | None:
    """``(answer, wordings)`` a negated term asks for, or None (it stays a negative).

    ``"spiral arms"`` names the Galaxy Zoo answer "spiral arms: yes", so
    "a disk with no spiral arms" asks for the answer "no" (S0s, lenticulars,
    armless disks): its id in `OPPOSITE_ANSWERS` and its `ANSWER_WORDINGS`.
    The term's longest leading run of words that names an answer counts
    ("edge-on view" names "edge-on").

    Examples
    --------
    >>> opposite_answer("edge-on view")[0]
    'face_on'
    >>> "lenticular" in opposite_answer("spiral arms")[1]
    True
    >>> opposite_answer("bar") is None   # no trained "no bar" answer
    True
    """
    words = _normal(term).split()
    named = next((_ANSWER_OF[k] for n in range(len(words), 0, -1) if (k := " ".join(words[:n])) in _ANSWER_OF),
                 None)
    if named is None:
        return None
    other = OPPOSITE_ANSWERS[named]
    return other, ANSWER_WORDINGS[other]
