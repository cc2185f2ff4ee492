"""Cross-match search results with a catalogue on the sky.

`crossmatch` appends the matching catalogue's columns and a ``separation``
column (arcsec) to a result table, using astropy's own coordinate matching
(`~astropy.coordinates.match_coordinates_sky` for the nearest counterpart,
`~astropy.coordinates.search_around_sky` for every counterpart within the
radius). The catalogue can be an `~astropy.table.Table` with RA/Dec columns,
a `~astropy.coordinates.SkyCoord`, ``"lenscat"`` (the compilation of known
strong lenses in the PyPI package ``lenscat``), a file astropy can read, or a
VizieR catalogue id (queried with astroquery; needs the network).

Examples
--------
>>> import numpy as np, astropy.units as u
>>> from astropy.table import Table
>>> from astro_semsearch.crossmatch import crossmatch
>>> hits = Table({"object_id": ["a", "b"], "ra": [10.0, 20.0] * u.deg, "dec": [1.0, 2.0] * u.deg})
>>> cat = Table({"name": ["X"], "RAJ2000": [10.0001], "DEJ2000": [1.0]})
>>> out = crossmatch(hits, cat, radius=2 * u.arcsec)
>>> out["name"].filled("").tolist()
['X', '']
>>> round(float(out["separation"][0]), 2)
0.36
"""
from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky
from astropy.table import MaskedColumn, Table

from ._validate import check_angle
from .catalog import DEC_NAMES, RA_NAMES, column_degrees, find_column
from .exceptions import InvalidInputError, InvalidTypeError, MissingDependencyError, ServiceUnreachableError

__all__ = ["crossmatch", "crossmatch_lsdb", "looks_like_path", "RA_NAMES", "DEC_NAMES", "VIZIER_ID", "TABLE_SUFFIXES"]


def _coords_of(table: Table, ra_col: str, dec_col: str, label: str) -> SkyCoord:
    """SkyCoord from two columns; no unit means degrees (the usual catalogue convention)."""
    ra, dec = (column_degrees(table[c], c, label) * u.deg for c in (ra_col, dec_col))
    if ((ra.value < 0) | (ra.value > 360)).any():
        raise InvalidInputError(f"{label} RA out of range [0, 360] deg in column {ra_col!r}")
    if ((dec.value < -90) | (dec.value > 90)).any():
        raise InvalidInputError(f"{label} Dec out of range [-90, 90] deg in column {dec_col!r}")
    return SkyCoord(ra, dec)


#: A VizieR catalogue id: a category (J for journals, B, or a Roman numeral I-IX) and "/"-separated parts.
VIZIER_ID = re.compile(r"^(?:J|B|I{1,3}|IV|V|VI{1,3}|IX)/[A-Za-z0-9+&._-]+(?:/[A-Za-z0-9+&._-]+)*$")
#: File endings taken as catalogue files (a string ending so is never sent to VizieR).
TABLE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fz", ".csv", ".ecsv", ".tsv", ".txt", ".dat", ".vot",
                  ".votable", ".xml", ".hdf5", ".h5", ".parquet", ".pq", ".json", ".asdf", ".tbl", ".ipac")


def looks_like_path(text: str) -> bool:
    """True if ``text`` names a file rather than a VizieR catalogue (the rule `crossmatch` uses).

    A string is a file name when it ends with a table file suffix
    (`TABLE_SUFFIXES`, any case), starts with ``.``, ``~`` or ``/``, holds a
    backslash, or holds a ``/`` without being a VizieR id (`VIZIER_ID`: a
    category such as ``J``, ``B``, ``II`` and ``/``-separated parts, e.g.
    ``J/ApJS/243/17``, ``II/246``, ``I/355/gaiadr3``). Anything else (a
    VizieR id or a catalogue keyword) is sent to VizieR.

    Examples
    --------
    >>> [looks_like_path(s) for s in ("J/ApJS/243/17", "II/246", "lenses.csv", "data/lenses", "./x", "2MASS")]
    [False, False, True, True, True, False]
    """
    t = text.strip()
    if t.lower().endswith(TABLE_SUFFIXES) or t.startswith((".", "~", "/")) or "\\" in t:
        return True
    return (os.sep in t or "/" in t) and not VIZIER_ID.match(t)


def _read_lenscat() -> Table:
    """The lenscat compilation, read from the package's data file.

    Importing ``lenscat`` itself is slow (it loads pandas and ligo.skymap) and
    emits warnings, so the CSV shipped inside the package is read directly.
    """
    import importlib.util

    spec = importlib.util.find_spec("lenscat")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("crossmatch(..., 'lenscat') needs the lenscat package: pip install lenscat")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "catalog.csv"
    if not path.is_file():
        raise MissingDependencyError(
            f"the installed lenscat has no catalogue file at {path}; reinstall it: pip install -U lenscat"
        )
    table = Table.read(path, format="ascii.csv")
    # lenscat writes units in the column names, e.g. "RA [deg]".
    for col in list(table.colnames):
        if "[" in col and col.endswith("]"):
            name, unit = col[:-1].split("[", 1)
            table.rename_column(col, name.strip())
            table[name.strip()].unit = u.Unit(unit.strip())
    if "zlens" in table.colnames:
        table["zlens"] = np.asarray(table["zlens"]).astype(str)  # "0.4", "-" or "not measured": keep as text
    table.meta["catalog_name"] = "lenscat"
    return table


def _query_vizier(catalog_id: str, results_coords: SkyCoord, radius: u.Quantity) -> Table:
    """Fetch the rows of a VizieR catalogue near the results (network)."""
    from astroquery.vizier import Vizier

    import requests

    viz = Vizier(columns=["**", "_RAJ2000", "_DEJ2000"], row_limit=-1)
    try:
        tables = viz.query_region(results_coords, radius=radius, catalog=catalog_id)
    except requests.exceptions.RequestException as exc:
        nearby = sorted(p.name for p in Path(".").glob(f"{glob.escape(catalog_id)}.*") if p.is_file())
        hint = (f"did you mean the file {nearby[0]}? A local catalogue is given by its file name with its suffix"
                if nearby else "a local catalogue is given by its file name with its suffix (e.g. mycat.ecsv); "
                "for VizieR, check the network")
        raise ServiceUnreachableError(
            f"{catalog_id!r} was taken as a VizieR catalogue id, and VizieR cannot be reached "
            f"({type(exc).__name__}); {hint}", url=str(getattr(viz, "VIZIER_SERVER", "")),
        ) from exc
    if len(tables) == 0:
        return Table({"_RAJ2000": np.zeros(0) * u.deg, "_DEJ2000": np.zeros(0) * u.deg})
    table = tables[0]
    if "_q" in table.colnames:
        table.remove_column("_q")
    return table


def _catalog_table(catalog, results_coords, radius, ra_column, dec_column):
    """Return (table, SkyCoord, name) for any accepted catalogue input."""
    if isinstance(catalog, SkyCoord):
        if catalog.isscalar:
            catalog = catalog.reshape((1,))
        table = Table({"catalog_index": np.arange(len(catalog))})
        return table, catalog.icrs, "catalog"
    if isinstance(catalog, str) and catalog.strip().lower() == "lenscat":
        table = _read_lenscat()
        name = "lenscat"
    elif isinstance(catalog, (str, os.PathLike)) and Path(catalog).expanduser().is_file():
        table = Table.read(Path(catalog).expanduser())
        name = Path(catalog).stem
    elif isinstance(catalog, os.PathLike) or (isinstance(catalog, str) and looks_like_path(catalog)):
        raise FileNotFoundError(
            f"catalogue file {os.fspath(catalog)} does not exist (a name with a file suffix, a path separator or a "
            "leading '.', '~' or '/' is taken as a file; VizieR ids look like J/ApJS/243/17 or II/246)")
    elif isinstance(catalog, str):
        if not catalog.strip():
            raise InvalidInputError("catalog is an empty string")
        table = _query_vizier(catalog.strip(), results_coords, radius)
        name = catalog.strip().replace("/", "_")
    elif isinstance(catalog, Table):
        table = catalog
        name = "catalog"
    else:
        raise InvalidTypeError(
            "catalog must be an astropy Table, a SkyCoord, 'lenscat', a catalogue file or a VizieR id, "
            f"got {type(catalog).__name__}"
        )
    ra_col = find_column(table, ra_column, RA_NAMES, "right ascension", option="ra_column")
    dec_col = find_column(table, dec_column, DEC_NAMES, "declination", option="dec_column")
    return table, _coords_of(table, ra_col, dec_col, "catalogue"), name


def crossmatch(
    results: Table,
    catalog,
    radius: u.Quantity = 1 * u.arcsec,
    *,
    nearest: bool = True,
    join_type: str = "left",
    ra_column: str | None = None,
    dec_column: str | None = None,
    catalog_name: str | None = None,
) -> Table:
    """Append the columns of catalogue counterparts within ``radius`` of each result.

    Parameters
    ----------
    results : `~astropy.table.Table`
        A result table (or any table with ``ra``/``dec`` in degrees).
    catalog : Table, SkyCoord, str or path
        An astropy Table with RA/Dec columns (found automatically: ``ra``,
        ``RA``, ``RAJ2000``, ``ra_deg``, ... or named with ``ra_column`` and
        ``dec_column``; degrees if the column has no unit), a SkyCoord,
        ``"lenscat"``, a file astropy can read, or a VizieR catalogue id
        such as ``"J/ApJS/243/17"`` (network). A string that looks like a
        file name (`looks_like_path`) but is not a file raises
        `FileNotFoundError` and is never sent to VizieR.
    radius : `~astropy.units.Quantity` (angle)
        Maximum separation of a match.
    nearest : bool
        True: at most one counterpart per result, the nearest one.
        False: every counterpart within ``radius`` (one row per pair).
    join_type : {"left", "inner"}
        ``"left"`` keeps unmatched results (catalogue columns masked);
        ``"inner"`` keeps matched results only.
    ra_column, dec_column : str, optional
        The catalogue's coordinate columns.
    catalog_name : str, optional
        Prefix for catalogue columns whose names clash with result columns
        (default: ``"lenscat"``, the file name, the VizieR id or ``"catalog"``).

    Returns
    -------
    `~astropy.table.Table`
        The result columns, then the catalogue's columns, then
        ``separation`` (arcsec; masked where there is no match). Result rows
        keep their order.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.table import Table
    >>> hits = Table({"object_id": ["a", "b"], "ra": [10.0, 20.0] * u.deg, "dec": [1.0, 2.0] * u.deg})
    >>> known = Table({"name": ["X"], "RAJ2000": [20.0], "DEJ2000": [2.0002]})
    >>> crossmatch(hits, known, radius=1 * u.arcsec, join_type="inner")["object_id", "name"].pformat()
    ['object_id name', '--------- ----', '        b    X']
    >>> known_lenses = crossmatch(hits, "lenscat", radius=2 * u.arcsec)   # doctest: +SKIP
    """
    results, radius = _check_request(results, radius, join_type)
    # The results' columns cannot be named (ra_column/dec_column are the catalogue's): say how to fix them.
    where = "results table (give it ra and dec columns in degrees)"
    rcoords = _coords_of(results, find_column(results, None, RA_NAMES, "right ascension", label=where),
                         find_column(results, None, DEC_NAMES, "declination", label=where), "results")
    table, ccoords, default_name = _catalog_table(catalog, rcoords, radius, ra_column, dec_column)
    if len(ccoords) == 0 or len(results) == 0:
        ri = ci = np.zeros(0, dtype=np.int64)
        sep = np.zeros(0)
    elif nearest:
        idx, sep2d, _ = match_coordinates_sky(rcoords, ccoords)
        ok = sep2d <= radius
        ri, ci, sep = np.flatnonzero(ok), np.asarray(idx)[ok], sep2d[ok].to_value(u.arcsec)
    else:
        ri, ci, sep2d, _ = search_around_sky(rcoords, ccoords, radius)
        order = np.lexsort((sep2d.value, ri))  # results order, nearest counterpart first
        ri, ci, sep = ri[order], ci[order], sep2d[order].to_value(u.arcsec)
    return _join(results, table, ri, ci, sep, join_type=join_type, prefix=catalog_name or default_name,
                 record={"radius_arcsec": float(radius.to_value(u.arcsec)), "nearest": bool(nearest)})


def _check_request(results, radius, join_type: str):
    if not isinstance(results, Table):
        raise InvalidTypeError(f"results must be an astropy Table (e.g. from semantic_search), "
                               f"got {type(results).__name__}")
    radius = check_angle(radius, "radius", allow_none=False, positive=True)
    if join_type not in ("left", "inner"):
        raise InvalidInputError(f"join_type must be 'left' or 'inner', got {join_type!r}")
    return results, radius


def _join(results: Table, table: Table, ri: np.ndarray, ci: np.ndarray, sep: np.ndarray, *, join_type: str,
          prefix: str, record: dict) -> Table:
    """Result rows ``ri`` joined with catalogue rows ``ci`` (``sep`` arcsec apart): the cross-match table.

    With ``join_type="left"`` every unmatched result keeps one row whose
    catalogue columns are masked. Catalogue columns named like a result
    column (or ``separation``) get ``prefix`` + ``_``.
    """
    n = len(results)
    if join_type == "left":
        matched = np.zeros(n, dtype=bool)
        matched[ri] = True
        extra = np.flatnonzero(~matched)
        all_ri = np.concatenate([ri, extra])
        all_ci = np.concatenate([ci, np.full(extra.size, -1)])
        all_sep = np.concatenate([sep, np.full(extra.size, np.nan)])
        order = np.argsort(all_ri, kind="stable")
        ri, ci, sep = all_ri[order], all_ci[order], all_sep[order]
    out = type(results)(results[ri] if len(ri) else results[:0], masked=False, copy=True)
    missing = ci < 0
    safe_ci = np.where(missing, 0, ci)
    for name in table.colnames:
        col = table[name]
        new = f"{prefix}_{name}" if name in out.colnames or name == "separation" else name
        if len(table) == 0:
            data = np.zeros(len(ci), dtype=col.dtype if col.dtype.kind != "O" else float)
        else:
            data = np.asarray(col)[safe_ci] if len(ci) else np.asarray(col)[:0]
            if data.dtype.kind == "O":
                data = np.asarray([("" if v is None else str(v)) for v in data])
        mask = missing.copy()
        if hasattr(col, "mask") and len(table):
            mask |= np.asarray(col.mask)[safe_ci]
        out[new] = MaskedColumn(data, mask=mask, unit=getattr(col, "unit", None),
                                description=getattr(col.info, "description", None))
    out["separation"] = MaskedColumn(np.where(missing, 0.0, sep), mask=missing, unit=u.arcsec, format=".3f")
    out.meta = dict(results.meta)
    out.meta["crossmatch"] = {"catalog": prefix, **record, "join_type": join_type,
                              "n_matched": int((~missing).sum()),  # matched rows (pairs, with nearest=False)
                              "n_results_matched": int(np.unique(ri[~missing]).size)}
    return out


def crossmatch_lsdb(
    results: Table,
    hats_catalog,
    radius=None,
    *,
    join_type: str = "left",
    columns: list[str] | None = None,
    margin_cache: str | os.PathLike | None = None,
    catalog_name: str | None = None,
) -> Table:
    """Cross-match a result table with a HATS catalogue too large for memory (through lsdb).

    Only the HATS partitions (HEALPix pixels) that the results fall in are
    read, so a billion-row catalogue on disk or in an object store costs no
    more than the pixels your hits touch. The work runs on the current Dask
    client if there is one.

    Parameters
    ----------
    results : `~astropy.table.Table`
        A result table (``ra``/``dec`` in degrees), e.g. from `semantic_search`.
    hats_catalog : path, URL or `lsdb.Catalog`
        A HATS catalogue directory (``lsdb.open_catalog`` is used on paths).
    radius : `~astropy.units.Quantity` (angle)
        Maximum separation (default 1 arcsec).
    join_type : {"left", "inner"}
        Keep unmatched results (catalogue columns masked) or drop them.
    columns : list of str, optional
        Catalogue columns to read (default: all).
    margin_cache : path, optional
        The catalogue's HATS margin cache. Without one, a counterpart lying
        across a HEALPix partition boundary from its result can be missed
        (lsdb warns); with one, matches near boundaries are complete.
    catalog_name : str, optional
        Prefix for catalogue columns whose names clash with result columns
        (default: the catalogue's name).

    Returns
    -------
    `~astropy.table.Table`
        Like `crossmatch` with ``nearest=True``: the result columns in their
        order, the catalogue columns, then ``separation`` (arcsec, masked
        where there is no match).

    Examples
    --------
    >>> hits = semantic_search("ring galaxy", k=1000)                        # doctest: +SKIP
    >>> matched = crossmatch_lsdb(hits, "hats/gaia_dr3", 1 * u.arcsec)      # doctest: +SKIP
    """
    try:
        import lsdb
    except ImportError:  # pragma: no cover - optional dependency
        raise MissingDependencyError("crossmatch_lsdb needs the optional package lsdb (pip install lsdb)") from None
    results, radius = _check_request(results, 1 * u.arcsec if radius is None else radius, join_type)
    ra = column_degrees(results["ra"], "ra", "results") if "ra" in results.colnames else None
    dec = column_degrees(results["dec"], "dec", "results") if "dec" in results.colnames else None
    if ra is None or dec is None:
        raise InvalidInputError(f"results need ra and dec columns (degrees); they have {results.colnames}")
    cat, default_name = _open_hats(lsdb, hats_catalog, columns, margin_cache)
    cat_cols = list(cat.columns)
    ri = ci = np.zeros(0, np.int64)
    sep = np.zeros(0)
    table = Table({name: np.zeros(0) for name in cat_cols})
    if len(results):
        matched = _lsdb_pairs(lsdb, cat, ra, dec, radius)
        ri = matched["_row_left"].to_numpy().astype(np.int64)
        order = np.argsort(ri, kind="stable")
        matched = matched.iloc[order]
        ri, ci = ri[order], np.arange(len(ri))
        sep = matched["_dist_arcsec"].to_numpy()
        table = Table({name: matched[f"{name}_right"].to_numpy() for name in cat_cols})
    return _join(results, table, ri, ci, sep, join_type=join_type, prefix=catalog_name or default_name,
                 record={"radius_arcsec": float(radius.to_value(u.arcsec)), "nearest": True, "engine": "lsdb"})


def _open_hats(lsdb, hats_catalog, columns, margin_cache):
    """``(lsdb catalogue, default name)`` from a path/URL or an open catalogue."""
    if isinstance(hats_catalog, (str, os.PathLike)):
        opener = getattr(lsdb, "open_catalog", None) or lsdb.read_hats
        kw = {"columns": columns} if columns else {}
        if margin_cache is not None:
            kw["margin_cache"] = str(margin_cache)
        return opener(str(hats_catalog), **kw), Path(str(hats_catalog)).name
    name = getattr(getattr(hats_catalog, "hc_structure", None), "catalog_name", None) or "catalog"
    return hats_catalog, name


def _lsdb_pairs(lsdb, cat, ra: np.ndarray, dec: np.ndarray, radius):
    """The nearest counterpart of each result within ``radius`` (a pandas frame, one row per match)."""
    import warnings

    import pandas as pd

    left = lsdb.from_dataframe(pd.DataFrame({"_row": np.arange(len(ra)), "ra": ra, "dec": dec}),
                               ra_column="ra", dec_column="dec", catalog_name="results",
                               should_generate_moc=False, margin_threshold=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        xm = left.crossmatch(cat, radius_arcsec=float(radius.to_value(u.arcsec)), n_neighbors=1,
                             suffixes=("_left", "_right"), suffix_method="all_columns")
        return xm.compute()
