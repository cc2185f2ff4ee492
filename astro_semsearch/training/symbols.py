"""Galaxy Zoo 2 records as coarse labels and as schematic symbols (GalaxAlign's third modality).

`gz2_label` gives a record's coarse class (`GZ2_LABELS`), used by the
training monitor; `gz2_symbol` the `astro_semsearch.sketch` symbol kind and
parameters that depict it, drawn for every galaxy when training aligns
symbols with images and captions (``[symbols]`` in the training config).

Examples
--------
>>> from astro_semsearch.training.symbols import gz2_label, gz2_symbol
>>> gz2_label({"coarse_label": "edge-on"}), gz2_symbol({"coarse_label": "edge-on"})
('edge-on', ('edge_on', {}))
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..sketch import EDGE_BULGES

__all__ = ["GZ2_LABELS", "ODD_THRESHOLD", "gz2_label", "gz2_symbol"]

#: Coarse classes `gz2_label` assigns (Galaxy10-like; "disturbed" is merged into "irregular").
GZ2_LABELS: tuple[str, ...] = (
    "round smooth", "in-between smooth", "cigar-shaped smooth", "edge-on", "disk", "spiral",
    "barred spiral", "ring", "merger", "lens", "irregular",
)

#: A rare feature (ring, lens, merger, irregular/disturbed) decides the label when its
#: weighted Galaxy Zoo vote fraction (``Class8.x``) is at least this.
ODD_THRESHOLD = 0.4


def _get(record: Mapping[str, Any], key: str) -> float:
    try:
        value = float(record[key])
    except (KeyError, IndexError, ValueError, TypeError):
        return math.nan
    return value


def _cond(record: Mapping[str, Any], keys) -> np.ndarray | None:
    """Conditional fractions of one question's answers (sum 1), None when unknown."""
    v = np.array([_get(record, k) for k in keys], dtype=float)
    if not np.all(np.isfinite(v)) or v.sum() <= 1e-6:
        return None
    v = np.clip(v, 0.0, None)
    return v / v.sum()


_COARSE = {
    "completely round smooth": "round smooth",
    "in between smooth": "in-between smooth",
    "cigar-shaped smooth": "cigar-shaped smooth",
    "edge-on": "edge-on",
    "spiral": "spiral",
}

def _coarse(record: Mapping[str, Any]) -> str:
    try:
        return str(record["coarse_label"]).strip().lower()
    except (KeyError, IndexError, ValueError, TypeError):
        return ""


# Rare features (GZ2 question 8) that define a label on their own.
_ODD = (("Class8.1", "ring"), ("Class8.2", "lens"), ("Class8.3", "irregular"), ("Class8.4", "irregular"),
        ("Class8.6", "merger"))


def _classify(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(label, symbol parameters from the details the votes know) or None."""
    if np.isfinite(_get(record, "Class1.1")):
        fr = [(np.nan_to_num(_get(record, col)), lab) for col, lab in _ODD]
        best, lab = max(fr, key=lambda t: t[0])
        bar = _cond(record, ["Class3.1", "Class3.2"])
        barred = bar is not None and bar[0] >= 0.5
        if best >= ODD_THRESHOLD:
            return lab, ({"bar": True} if lab == "ring" and barred else {})
        main = _cond(record, ["Class1.1", "Class1.2", "Class1.3"])
        if main is None or int(np.argmax(main)) == 2:  # star or artefact
            return None
        if int(np.argmax(main)) == 0:
            shape = _cond(record, ["Class7.1", "Class7.2", "Class7.3"])
            i = 1 if shape is None else int(np.argmax(shape))
            return ("round smooth", "in-between smooth", "cigar-shaped smooth")[i], {}
        edge = _cond(record, ["Class2.1", "Class2.2"])
        if edge is not None and edge[0] >= 0.5:
            b = _cond(record, ["Class9.1", "Class9.2", "Class9.3"])
            return "edge-on", ({} if b is None else {"bulge": EDGE_BULGES[[1, 2, 0][int(np.argmax(b))]]})
        params: dict[str, Any] = {}
        arms = _cond(record, [f"Class11.{i}" for i in range(1, 6)])
        if arms is not None:
            params["n_arms"] = (1, 2, 3, 4, 4)[int(np.argmax(arms))]
        wind = _cond(record, ["Class10.1", "Class10.2", "Class10.3"])
        if wind is not None:
            params["winding"] = ("tight", "medium", "loose")[int(np.argmax(wind))]
        spiral = _cond(record, ["Class4.1", "Class4.2"])
        if spiral is None:  # 17-column record: no spiral question, use the coarse label if any
            coarse = _coarse(record)
            return ("spiral", {}) if coarse == "spiral" else ("disk", {})
        if spiral[0] >= 0.5:
            return ("barred spiral" if barred else "spiral"), params
        if barred:
            return "barred spiral", {"n_arms": 0}
        bulge = _cond(record, ["Class5.1", "Class5.2", "Class5.3", "Class5.4"])
        return "disk", ({} if bulge is None else {"bulge": (0.1, 0.18, 0.26, 0.36)[int(np.argmax(bulge))]})
    lab = _COARSE.get(_coarse(record))
    return None if lab is None else (lab, {})


def gz2_label(record: Mapping[str, Any]) -> str | None:
    """The coarse class (one of `GZ2_LABELS`) of a Galaxy Zoo 2 record, or None.

    Rules, in order (vote fractions are the weighted GZ2 fractions):

    1. A rare feature with a weighted vote fraction of at least
       `ODD_THRESHOLD` gives "ring" (``Class8.1``), "lens" (``8.2``),
       "merger" (``8.6``) or "irregular" (irregular ``8.4`` or disturbed
       ``8.3``), the most voted one.
    2. Otherwise the most voted answer of question 1: star/artefact -> None;
       smooth -> "round", "in-between" or "cigar-shaped smooth" by question 7;
       disk -> "edge-on" when the conditional edge-on fraction is >= 0.5, else
       "spiral" / "barred spiral" (conditional spiral and bar fractions >= 0.5;
       a barred disk without arms is also "barred spiral"), else "disk". A
       17-column record (no spiral question) with coarse label "spiral" is
       "spiral", otherwise "disk".
    3. A record without votes uses its coarse label (``completely round
       smooth``, ``In between smooth``, ``Cigar-shaped smooth``, ``edge-on``,
       ``spiral``); no label -> None.

    Examples
    --------
    >>> gz2_label({"coarse_label": "In between smooth"})
    'in-between smooth'
    >>> gz2_label({"Class1.1": 0.2, "Class1.2": 0.8, "Class1.3": 0.0, "Class8.1": 0.6})
    'ring'
    >>> gz2_label({"coarse_label": ""}) is None
    True
    """
    got = _classify(record)
    return None if got is None else got[0]


_LABEL_KIND = {
    "round smooth": ("elliptical", {"axis_ratio": (0.8, 1.0)}),
    "in-between smooth": ("elliptical", {"axis_ratio": (0.5, 0.8)}),
    "cigar-shaped smooth": ("elliptical", {"axis_ratio": (0.2, 0.45)}),
    "edge-on": ("edge_on", {}),
    "disk": ("disk", {}),
    "spiral": ("spiral", {}),
    "barred spiral": ("barred_spiral", {}),
    "ring": ("ring", {}),
    "merger": ("merger", {}),
    "lens": ("lens", {}),
    "irregular": ("irregular", {}),
}


def gz2_symbol(record: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The symbol kind and parameters that depict a Galaxy Zoo 2 record, or None.

    The kind follows `gz2_label`; details the votes know are passed on as
    parameters (number of arms and their winding from questions 11 and 10,
    the edge-on bulge shape from question 9, the bulge size from question 5,
    a bar across a ring). ``draw_symbol(kind, **params)`` draws it.

    Examples
    --------
    >>> gz2_symbol({"coarse_label": "Cigar-shaped smooth"})
    ('elliptical', {'axis_ratio': (0.2, 0.45)})
    >>> rec = {"Class1.1": 0.1, "Class1.2": 0.9, "Class1.3": 0.0, "Class2.1": 0.0, "Class2.2": 0.9,
    ...        "Class3.1": 0.1, "Class3.2": 0.8, "Class4.1": 0.8, "Class4.2": 0.1,
    ...        "Class10.1": 0.6, "Class10.2": 0.1, "Class10.3": 0.1,
    ...        "Class11.1": 0.0, "Class11.2": 0.7, "Class11.3": 0.1, "Class11.4": 0.0, "Class11.5": 0.0}
    >>> gz2_symbol(rec)
    ('spiral', {'n_arms': 2, 'winding': 'tight'})
    """
    got = _classify(record)
    if got is None:
        return None
    label, details = got
    kind, params = _LABEL_KIND[label]
    return kind, {**params, **details}
