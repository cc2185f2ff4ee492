"""A result table's provenance (``Table.meta``) through files that cannot hold nested values.

Search results record how they were made in ``meta["astro_semsearch"]`` (and
cross-matches in ``meta["crossmatch"]``) as nested dicts. ECSV, HDF5 and
Parquet keep them as they are; FITS headers hold only flat values, so
`write_table` stores each nested value as JSON text (a long-string HIERARCH
card), and a VOTable gets each section as JSON text in an ``INFO`` element of
its ``TABLE`` (astropy's VOTable writer keeps no meta but ``description``);
`meta_section` / `read_results` read every form back. CSV and the other text
formats keep no table metadata (`meta_kind` is None).

>>> from astropy.table import Table
>>> t = flat_meta(Table({"a": [1]}, meta={"astro_semsearch": {"query": "ring galaxy"}}))
>>> t.meta["astro_semsearch"]
'{"query": "ring galaxy"}'
>>> meta_section(t)["query"]
'ring galaxy'
>>> meta_kind("hits.fits.gz"), meta_kind("hits.ecsv"), meta_kind("hits.csv")
('flat', 'nested', None)
>>> meta_kind("hits.vot", "votable")  # astropy writes a VOTable only when asked by name
'flat'
"""
from __future__ import annotations

import json
import os
import warnings

__all__ = ["SECTIONS", "identified_format", "meta_kind", "flat_meta", "write_table", "meta_section", "read_results"]

#: The meta sections this package writes (nested dicts).
SECTIONS = ("astro_semsearch", "crossmatch")

# astropy format names, by what their writers keep of a table's meta.
_NESTED_FORMATS = ("ascii.ecsv", "ecsv", "hdf5", "parquet")  # YAML header / serialised metadata
_FLAT_FORMATS = ("fits", "votable")  # header cards / INFO elements: flat values only


def identified_format(path) -> str | None:
    """The format astropy identifies for writing ``path`` by its suffix (None if none or several)."""
    from astropy.io import registry
    from astropy.table import Table

    found = registry.identify_format("write", Table, str(path), None, [], {})
    return found[0] if len(found) == 1 else None


def meta_kind(path, fmt: str | None = None) -> str | None:
    """What writing to ``path`` (in ``fmt``, else the format astropy identifies by the suffix) keeps of the meta.

    ``"nested"`` (as it is), ``"flat"`` (flat values: the provenance goes as JSON text) or None (nothing).
    """
    fmt = fmt or identified_format(path)
    return "nested" if fmt in _NESTED_FORMATS else "flat" if fmt in _FLAT_FORMATS else None


def flat_meta(table):
    """A copy (data shared) whose dict meta values are JSON text; display settings dropped.

    Lists such as ``comments`` and ``history`` stay lists, which FITS writes card by card.
    """
    out = table.copy(copy_data=False)
    out.meta.pop("__attributes__", None)  # pprint_exclude_names and the like: display, not data
    for key, value in list(out.meta.items()):
        if isinstance(value, dict) or (key in SECTIONS and isinstance(value, list)):
            out.meta[key] = json.dumps(value, default=str, sort_keys=True)
    return out


def write_table(table, *args, **kwargs) -> None:
    """``Table.write(*args, **kwargs)``, keeping the provenance where the format can hold it.

    FITS gets it as JSON text (`flat_meta`), a VOTable as JSON text in
    ``INFO`` elements (`write_votable`); HDF5 is asked to serialise the meta
    (and given a table path unless the caller gave one); other formats are
    written as astropy writes them.
    """
    from astropy.table.connect import TableWrite

    path, fmt = (args[0] if args else kwargs.get("output")), kwargs.get("format")
    kind = None if path is None else meta_kind(path, fmt)
    if kind == "flat":
        table = flat_meta(table)
        if (fmt or identified_format(path)) == "votable":
            from astropy.table.info import serialize_method_as

            kwargs.pop("format", None)
            with serialize_method_as(table, kwargs.pop("serialize_method", None)):  # as Table.write does
                return write_votable(table, *args, **kwargs)
    elif kind == "nested" and (fmt or identified_format(path)) == "hdf5":
        kwargs.setdefault("serialize_meta", True)
        if len(args) < 2:  # HDF5's path may come second, positionally
            kwargs.setdefault("path", "results")
    with warnings.catch_warnings():
        # FITS keeps a long key as a HIERARCH card, which is what is wanted
        warnings.filterwarnings("ignore", message="Keyword name .* is greater than 8 characters")
        TableWrite(table, type(table))(*args, **kwargs)  # astropy's own writer, not a subclass's override


def write_votable(table, output, table_id: str | None = None, overwrite: bool = False,
                  tabledata_format: str | None = None) -> None:
    """astropy's VOTable writer, with each provenance section of ``table.meta`` an ``INFO`` element of the TABLE.

    The value is the section as JSON text (`flat_meta`), so any VOTable
    reader (TOPCAT, pyvo) shows it and `read_results` turns it back into a
    dict. Arguments as for ``Table.write(..., format="votable")``.
    """
    import io

    from astropy.io.votable import parse
    from astropy.io.votable.connect import write_table_votable
    from astropy.io.votable.tree import Info

    if isinstance(output, (str, os.PathLike)) and os.path.exists(output) and not overwrite:
        raise OSError(f"File {output} already exists. If you mean to replace it then use the argument "
                      "\"overwrite=True\".")  # astropy's own wording
    buffer = io.BytesIO()
    write_table_votable(table, buffer, table_id=table_id, tabledata_format=tabledata_format)
    buffer.seek(0)
    votable = parse(buffer)  # astropy's own output, so the tree is what its writer made
    infos = votable.get_first_table().infos
    for key in SECTIONS:
        value = table.meta.get(key)
        if value is not None:
            infos.append(Info(name=key, value=value if isinstance(value, str) else json.dumps(value, default=str)))
    votable.to_xml(os.fspath(output) if isinstance(output, os.PathLike) else output, tabledata_format=tabledata_format)


def meta_section(table, key: str = "astro_semsearch") -> dict:
    """``table.meta[key]`` as a dict, whether it was kept nested or as JSON text (``{}`` if absent or unreadable)."""
    value = getattr(table, "meta", {}).get(key)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _is_votable(path) -> bool:
    from astropy.io import registry
    from astropy.table import Table

    return "votable" in registry.identify_format("read", Table, str(path), None, [], {})


def read_results(path):
    """A result table read from ``path`` (any format astropy reads), its provenance sections dicts again."""
    from astropy.table import Table

    table = Table.read(path)
    if _is_votable(path):  # astropy's reader drops the INFO elements that hold the provenance
        from astropy.io.votable import parse_single_table

        infos = {info.name: info.value for info in parse_single_table(path).infos}
        table.meta.update({key: infos[key] for key in SECTIONS if key in infos})
    for key in SECTIONS:
        if isinstance(table.meta.get(key), str):
            section = meta_section(table, key)
            if section:
                table.meta[key] = section
    return table
