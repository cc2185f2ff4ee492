"""Negation in a text query: "galaxy without a ring" searches for a galaxy, away from rings.

A sentence encoder maps "no bar" close to "bar", so a negated phrase searched
as it is finds exactly what it excludes. `split_negation` rewrites a query
into what is wanted and what is not, which the search then combines as
``q = unit(text(wanted)) - negative_weight * unit(text(unwanted))``
(`~astro_semsearch.search.query.query_vector`).

Forms understood (any case):

* ``without X``, ``with no X``, ``no X``, ``not X``, ``never X``, ``lacking X``,
  ``free of X`` — X runs to the end of the clause (a comma, a semicolon,
  ``but``, ``and`` followed by a new clause, or the end); ``X, Y or Z``
  gives three unwanted terms; "sign of", "trace of", "any", "at all" and
  articles are dropped;
* ``non-X`` / ``non X`` (one word, or a hyphenated compound such as
  ``non-edge-on``);
* ``un``-words that negate a feature: ``unbarred``, ``unringed``,
  ``undisturbed``, ``unlensed``, ``non-interacting``, ``isolated``-style
  words are left alone (they are positive descriptions).

Words that merely contain these letters ("nothing", "nova", "featureless",
"uniform", "annotated") are not negations. If nothing wanted remains
("not smooth"), the wanted part is ``"a galaxy"``.

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

__all__ = ["split_negation", "NEGATED_WORDS"]

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

_CUE = r"(?:without|with\s+no|no|not|never|lacking|free\s+of|isn't|is\s+not)"
# The unwanted phrase runs to the end of its clause.
_CLAUSE_END = (r"(?=\s*(?:[;.]|,(?![^,;.]*\b(?:or|nor)\b[^,;.]*(?:[;.]|$))|\bbut\b|\bwhile\b|\bwhereas\b|"
               r"\band\s+(?:a|an|the|with|has|is|its|no|not|without)\b|$))")
_NEG_RE = re.compile(rf"(?:^|(?<=[\s,;(]))({_CUE})\s+(.+?){_CLAUSE_END}", re.IGNORECASE)
_NON_RE = re.compile(r"(?:^|(?<=[\s,;(]))non[-\s]((?:[a-z]+)(?:-[a-z]+)*)", re.IGNORECASE)
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
    wanted = _tidy(rest)
    if not unwanted:
        return text.strip(), []
    return (wanted or "a galaxy"), unwanted
