"""The training configuration: the shipped ``default_config.toml``, updated by a file or a dict.

Examples
--------
>>> from astro_semsearch.training.config import load_config
>>> load_config({"align": {"epochs": 1}})["align"]["epochs"]
1
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import os
import tomllib
from importlib import resources
from pathlib import Path

from .._validate import check_int, check_number
from ..exceptions import InvalidInputError

__all__ = ["load_config", "to_toml", "concepts_of", "check_text_stage", "DEFAULT_CONFIG_PATH"]

#: Where the default configuration lives in a source tree (for the ``train --config`` help text).
DEFAULT_CONFIG_PATH = "astro_semsearch/training/default_config.toml"


def _default_config() -> dict:
    text = (resources.files("astro_semsearch.training") / "default_config.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


#: Settings that are read when present but have no line in default_config.toml (their defaults live in code).
_OPTIONAL = {"align": {"concepts", "rare_concepts", "aug_shift"}}


def _check_keys(base: dict, over: dict, where: str) -> None:
    """Refuse a section or setting the training does not read: a misspelt one would be silently ignored."""
    for section, values in over.items():
        if section not in base:
            raise InvalidInputError(f"{where}: unknown section [{section}]{_close(section, base)}; "
                                    f"the sections are {', '.join(f'[{k}]' for k in base)}")
        if not isinstance(values, dict):
            raise InvalidInputError(f"{where}: [{section}] must be a table of settings, got {values!r}")
        known = set(base[section]) | _OPTIONAL.get(section, set())
        for key in values:
            if key not in known:
                raise InvalidInputError(f"{where}: [{section}] has no setting {key!r}{_close(key, known)} "
                                        f"(the settings and their defaults: {DEFAULT_CONFIG_PATH})")


def _close(name: str, known) -> str:
    near = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _check_values(cfg: dict) -> dict:
    """Refuse values the training would only trip over deep inside a run, naming the setting."""
    check_number(cfg["align"].get("text_noise", 0.0), "[align] text_noise", 0.0)
    r = cfg["readout"]
    if check_int(r["steps"], "[readout] steps", 0) == 0:
        return cfg
    check_int(r["batch_size"], "[readout] batch_size", 1)
    check_int(r["min_galaxies"], "[readout] min_galaxies", 2)
    check_number(r["lr"], "[readout] lr", 0.0, low_open=True)
    for key in ("weight_decay", "anchor_weight", "text_noise"):
        check_number(r[key], f"[readout] {key}", 0.0)
    check_number(r["lens_fraction"], "[readout] lens_fraction", 0.0, 1.0)
    check_number(r["pull"], "[readout] pull", 0.0, 1.0, low_open=True)
    check_number(r["caption_pull"], "[readout] caption_pull", 0.0, 1.0)
    if not float(cfg["align"].get("concept_weight", 0)) > 0:
        raise InvalidInputError("[readout] steps > 0 trains the concepts' wordings, which exist only with "
                                "[align] concept_weight > 0")
    return cfg


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(config: str | os.PathLike | dict | None = None) -> dict:
    """The training configuration: the shipped defaults updated by ``config``.

    Parameters
    ----------
    config : path-like, dict or None
        A TOML file or a (possibly partial, nested) dict of overrides. A
        section or setting the training does not read (a misspelling such
        as ``[align] epoch``) raises `InvalidInputError`, before any work.

    Examples
    --------
    >>> cfg = load_config({"align": {"epochs": 1}})
    >>> cfg["align"]["epochs"], cfg["model"]["dim"]
    (1, 128)
    """
    base = _default_config()
    if config is None:
        return base
    if isinstance(config, dict):
        _check_keys(base, config, "training config")
        return _check_values(_merge(base, config))
    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    with open(path, "rb") as f:
        try:
            over = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise InvalidInputError(f"{path} is not valid TOML: {err}") from err
    _check_keys(base, over, str(path))
    return _check_values(_merge(base, over))


def to_toml(cfg: dict) -> str:
    """A configuration dict as TOML text (what the model card shows)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = []
    for section, items in cfg.items():
        if isinstance(items, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {val(v)}" for k, v in items.items()]
            lines.append("")
    return "\n".join(lines)


def concepts_of(a: dict) -> tuple:
    """The concepts ``[align] concepts`` names (default: all of `~astro_semsearch.training.concepts.CONCEPTS`)."""
    from .concepts import CONCEPTS

    wanted = a.get("concepts")
    if wanted is None:
        return CONCEPTS
    known = {c.id: c for c in CONCEPTS}
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise InvalidInputError(f"[align] concepts has unknown ids {unknown}; known: {sorted(known)}")
    return tuple(known[c] for c in wanted)


def check_text_stage(cfg: dict) -> tuple | None:
    """Check ``[text]`` before anything runs (stage 3 starts after stages 1-2, maybe an hour later); return
    the concepts stage 3 words (with the extra wordings), or None when there is no stage 3."""
    t = cfg.get("text", {})
    epochs = t.get("epochs", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise InvalidInputError(f"[text] epochs must be a whole number >= 0, got {epochs!r}")
    if epochs == 0:
        return None
    for key, low in (("lr", 0.0), ("weight_decay", None), ("anchor_weight", None)):
        v = t.get(key, 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
                v <= low if low is not None else v < 0):
            raise InvalidInputError(f"[text] {key} must be a number {'> 0' if low is not None else '>= 0'}, "
                                    f"got {v!r}")
    a = cfg["align"]
    concepts = concepts_of(a)
    if t.get("extra_wordings"):
        from .concepts import with_extra_wordings

        if float(a.get("concept_weight", 0)) <= 0 and int(a.get("concept_captions_per_object", 0)) <= 0:
            raise InvalidInputError("[text] extra_wordings needs [align] concept_weight > 0 or "
                                    "concept_captions_per_object > 0: otherwise no wording is ever trained")
        concepts = with_extra_wordings(concepts, t["extra_wordings"])
    return concepts
