"""Zero-shot classification of galaxy images with the aligned model.

Each label is turned into a sentence ("a galaxy image showing a barred
spiral"), embedded by the text side, and every image gets a probability per
label: a softmax over its similarities to the label sentences, at the
model's own learned temperature (the same scoring the model was trained
with). No training on the labels is needed, so any list of labels works —
but the model only knows what its captions taught it (see the model card).

Examples
--------
>>> from astro_semsearch import classify
>>> table = classify(images, ["spiral", "elliptical", "merger", "edge-on disk"])  # doctest: +SKIP
>>> table["best_label"][0]                                                        # doctest: +SKIP
'spiral'
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from astropy.table import Table

from .exceptions import InvalidInputError, InvalidTypeError

__all__ = ["classify", "DEFAULT_TEMPLATE"]

#: Default sentence a label is put into; ``{}`` is replaced by the label and ``{a}`` by its article.
DEFAULT_TEMPLATE = "a galaxy image showing {a} {}"


def _article(label: str) -> str:
    """"a" or "an" before a singular label; nothing before a plural or an already-determined one.

    >>> [_article(x) for x in ("elliptical", "spiral", "merging galaxies", "the ring", "edge-on disk")]
    ['an', 'a', '', '', 'an']
    """
    first = label.split()[0].lower() if label.split() else ""
    if first in ("a", "an", "the", "two", "some") or (label.endswith("s") and not label.endswith(("ss", "us"))):
        return ""
    return "an" if first[:1] in "aeiou" else "a"


def _prompt(template: str, label: str) -> str:
    return " ".join(template.format(label, a=_article(label)).split())


def _column_name(label: str, taken: set[str]) -> str:
    name = f"p_{label}"
    i = 2
    while name in taken:
        name = f"p_{label}_{i}"
        i += 1
    taken.add(name)
    return name


def classify(images, labels: Sequence[str], *, model=None, template: str | None = DEFAULT_TEMPLATE,
             batch_size: int = 256) -> Table:
    """Assign each image a probability for each label.

    Parameters
    ----------
    images
        Anything `~astro_semsearch.model.GalaxyModel.embed_images` accepts
        (arrays, file paths, FITS HDUs, or a list of them).
    labels : sequence of str
        At least two distinct labels, e.g. ``["spiral", "elliptical", "merger"]``.
    model : `~astro_semsearch.model.GalaxyModel`, name or directory, optional
        Default: `~astro_semsearch.model.load_model` ().
    template : str or None
        Sentence with ``{}`` for the label (and optionally ``{a}`` for its
        article, "a"/"an" or none for a plural); ``None`` uses the labels as
        given.
    batch_size : int
        Images per forward pass.

    Returns
    -------
    `~astropy.table.Table`
        One row per image: ``file`` (the file name, when the images were given as paths),
        ``best_label``, ``best_probability``, then one
        ``p_<label>`` column per label (they sum to 1 along a row).
        ``meta["labels"]``, ``meta["prompts"]``, ``meta["model"]`` and
        ``meta["model_sha256"]`` record how it was made.

    Raises
    ------
    ValueError
        If fewer than two labels are given, a label is repeated or empty,
        or the template has no ``{}``.
    InvalidInputError
        An image carries no signal (blank, constant, all or mostly NaN, any
        infinity, tiny: `astro_semsearch.images.image_problem`); the message
        names it. Such an image has no label to give.

    Examples
    --------
    >>> t = classify(["cutouts/a.png", "cutouts/b.fits"], ["spiral", "elliptical", "merger"])  # doctest: +SKIP
    >>> t["best_label"], t["p_spiral"]                                                         # doctest: +SKIP
    """
    if isinstance(labels, str):
        raise InvalidTypeError("labels must be a sequence of strings, e.g. ['spiral', 'elliptical']")
    labels = [str(lab) for lab in labels]
    if len(labels) < 2:
        raise InvalidInputError(f"classify needs at least two labels, got {labels}")
    if any(not lab.strip() for lab in labels):
        raise InvalidInputError("labels must be non-empty strings")
    if len(set(labels)) != len(labels):
        raise InvalidInputError(f"labels must be distinct, got {labels}")
    if template is not None and "{}" not in template:
        raise InvalidInputError(f"template must contain '{{}}' where the label goes, got {template!r}")
    if model is None or isinstance(model, (str, os.PathLike)):
        from .model import load_model

        model = load_model(model)

    prompts = [_prompt(template, lab) if template is not None else lab for lab in labels]
    img = model.embed_images(images, batch_size=batch_size)
    txt = model.embed_text(prompts)
    logits = (img @ txt.T).astype(np.float64) / model.temperature
    logits -= logits.max(axis=1, keepdims=True)  # stable softmax
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)

    best = prob.argmax(axis=1) if len(prob) else np.empty(0, dtype=int)
    table = Table()
    if isinstance(images, (str, os.PathLike)) or (isinstance(images, (list, tuple)) and images
                                                  and all(isinstance(i, (str, os.PathLike)) for i in images)):
        files = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        table["file"] = [os.path.basename(os.fspath(f)) for f in files]
    table["best_label"] = np.array([labels[i] for i in best], dtype=str) if len(best) else np.array([], dtype=str)
    table["best_probability"] = prob[np.arange(len(best)), best] if len(best) else np.empty(0)
    table["best_probability"].format = ".3f"
    taken = set(table.colnames)
    for j, lab in enumerate(labels):
        name = _column_name(lab, taken)
        table[name] = prob[:, j]
        table[name].format = ".3f"
    table.meta.update({"labels": labels, "prompts": prompts, "model": model.name,
                       "model_sha256": model.fingerprint, "temperature": model.temperature})
    return table
