"""A result table's provenance (``Table.meta``) through files that cannot hold nested values.

Search results record how they were made in ``meta["astro_semsearch"]`` (and
cross-matches in ``meta["crossmatch"]``) as nested dicts. ECSV, HDF5 and
Parquet keep them as they are; FITS headers hold only flat values, so
`flat_meta` stores each nested value as JSON text (a long-string HIERARCH
card), and `meta_section` reads either form back.

>>> from astropy.table import Table
>>> t = flat_meta(Table({"a": [1]}, meta={"astro_semsearch": {"query": "ring galaxy"}}))
>>> t.meta["astro_semsearch"]
'{"query": "ring galaxy"}'
>>> meta_section(t)["query"]
'ring galaxy'
"""
from __future__ import annotations

import json

__all__ = ["flat_meta", "meta_section", "read_results", "keeps_nested_meta", "keeps_flat_meta", "needs_flat_meta",
           "write_options"]

#: The meta sections this package writes (nested dicts).
SECTIONS = ("astro_semsearch", "crossmatch")

# Formats whose writers keep a nested meta as it is (ECSV's YAML header, HDF5 and Parquet metadata).
_NESTED_SUFFIXES = (".ecsv", ".hdf5", ".h5", ".parquet")
_NESTED_FORMATS = ("ascii.ecsv", "ecsv", "hdf5", "parquet")
# Formats that keep flat meta values (FITS header cards); the text, HTML and VOTable writers keep none.
_FLAT_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_FLAT_FORMATS = ("fits",)


def keeps_nested_meta(path, fmt: str | None = None) -> bool:
    """Whether writing to ``path`` (in ``fmt``, else by its suffix) keeps nested meta values as they are."""
    return fmt in _NESTED_FORMATS if fmt else str(path).lower().endswith(_NESTED_SUFFIXES)


def keeps_flat_meta(path, fmt: str | None = None) -> bool:
    """Whether the format keeps the provenance at all (nested as it is, or as the JSON text of `flat_meta`)."""
    if keeps_nested_meta(path, fmt):
        return True
    return fmt in _FLAT_FORMATS if fmt else str(path).lower().endswith(_FLAT_SUFFIXES)


def needs_flat_meta(path, fmt: str | None = None) -> bool:
    """Whether the format keeps flat meta values only (FITS): the provenance must go as JSON text."""
    return keeps_flat_meta(path, fmt) and not keeps_nested_meta(path, fmt)


def write_options(path, fmt: str | None = None, given_args: int = 1, given: dict | None = None) -> dict:
    """Extra ``Table.write`` options that keep the meta: HDF5 drops it unless asked to serialise it.

    ``given_args`` and ``given`` are the caller's positional count and keywords: what they set is left alone
    (HDF5's ``path`` may come second, positionally).
    """
    given = given or {}
    if fmt == "hdf5" or (not fmt and str(path).lower().endswith((".hdf5", ".h5"))):
        out = {"serialize_meta": True}
        if given_args < 2 and "path" not in given:
            out["path"] = "results"
        return {k: v for k, v in out.items() if k not in given}
    return {}


def flat_meta(table):
    """A copy (data shared) whose nested meta values are JSON text; display settings dropped.

    Dicts (the provenance sections) become JSON text; lists such as
    ``comments`` and ``history`` stay lists, which FITS writes card by card.
    """
    out = table.copy(copy_data=False)
    out.meta.pop("__attributes__", None)  # pprint_exclude_names and the like: display, not data
    for key, value in list(out.meta.items()):
        if isinstance(value, dict) or (key in SECTIONS and isinstance(value, list)):
            out.meta[key] = json.dumps(value, default=str, sort_keys=True)
    return out


def meta_section(table, key: str = "astro_semsearch") -> dict:
    """``table.meta[key]`` as a dict, whether it was kept nested or as JSON text (``{}`` if absent or unreadable)."""
    value = getattr(table, "meta", {}).get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def read_results(path):
    """A result table read from ``path`` (any format astropy reads), its provenance sections dicts again."""
    from astropy.table import Table

    table = Table.read(path)
    for key in SECTIONS:
        if isinstance(table.meta.get(key), str) and meta_section(table, key):
            table.meta[key] = meta_section(table, key)
    return table
