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

import os
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky
from astropy.table import MaskedColumn, Table

from ._utils import column_degrees, emit_table, find_column

__all__ = ["crossmatch", "RA_NAMES", "DEC_NAMES"]

#: Column names tried (case-insensitively, in this order) for right ascension.
RA_NAMES = ("ra", "raj2000", "ra_icrs", "ra_deg", "radeg", "_raj2000", "ra_j2000", "alpha_j2000", "ra2000", "ramean")
#: Column names tried (case-insensitively, in this order) for declination.
DEC_NAMES = ("dec", "dej2000", "decj2000", "de_icrs", "dec_icrs", "dec_deg", "decdeg", "dedeg", "_dej2000",
             "dec_j2000", "delta_j2000", "dec2000", "decmean")


def _coords_of(table: Table, ra_col: str, dec_col: str, label: str) -> SkyCoord:
    """SkyCoord from two columns; no unit means degrees (the usual catalogue convention)."""
    ra, dec = (column_degrees(table[c], c, label) * u.deg for c in (ra_col, dec_col))
    if ((ra.value < 0) | (ra.value > 360)).any():
        raise ValueError(f"{label} RA out of range [0, 360] deg in column {ra_col!r}")
    if ((dec.value < -90) | (dec.value > 90)).any():
        raise ValueError(f"{label} Dec out of range [-90, 90] deg in column {dec_col!r}")
    return SkyCoord(ra, dec)


def _read_lenscat() -> Table:
    """The lenscat compilation, read from the package's data file.

    Importing ``lenscat`` itself is slow (it loads pandas and ligo.skymap) and
    emits warnings, so the CSV shipped inside the package is read directly.
    """
    import importlib.util

    spec = importlib.util.find_spec("lenscat")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("crossmatch(..., 'lenscat') needs the lenscat package: pip install lenscat")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "catalog.csv"
    if not path.is_file():
        raise ImportError(
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

    viz = Vizier(columns=["**", "_RAJ2000", "_DEJ2000"], row_limit=-1)
    tables = viz.query_region(results_coords, radius=radius, catalog=catalog_id)
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
    elif isinstance(catalog, (str, os.PathLike)) and Path(catalog).is_file():
        table = Table.read(catalog)
        name = Path(catalog).stem
    elif isinstance(catalog, str):
        if not catalog.strip():
            raise ValueError("catalog is an empty string")
        table = _query_vizier(catalog.strip(), results_coords, radius)
        name = catalog.strip().replace("/", "_")
    elif isinstance(catalog, Table):
        table = catalog
        name = "catalog"
    else:
        raise TypeError(
            "catalog must be an astropy Table, a SkyCoord, 'lenscat', a catalogue file or a VizieR id, "
            f"got {type(catalog).__name__}"
        )
    ra_col = find_column(table, ra_column, RA_NAMES, "right ascension")
    dec_col = find_column(table, dec_column, DEC_NAMES, "declination")
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
        such as ``"J/ApJS/243/17"`` (network).
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
    """
    if not isinstance(results, Table):
        raise TypeError(f"results must be an astropy Table (e.g. from semantic_search), got {type(results).__name__}")
    if not isinstance(radius, u.Quantity):
        raise TypeError(f"radius must be an angle with units, e.g. 2 * u.arcsec, got {radius!r}")
    if not radius.unit.is_equivalent(u.deg):
        raise u.UnitTypeError(f"radius must be an angle, got unit {radius.unit}")
    if not radius.isscalar or not np.isfinite(radius.value) or radius.value <= 0:
        raise ValueError(f"radius must be one positive angle, got {radius}")
    if join_type not in ("left", "inner"):
        raise ValueError(f"join_type must be 'left' or 'inner', got {join_type!r}")
    res_ra = find_column(results, None, RA_NAMES, "right ascension")
    res_dec = find_column(results, None, DEC_NAMES, "declination")
    rcoords = _coords_of(results, res_ra, res_dec, "results")

    table, ccoords, default_name = _catalog_table(catalog, rcoords, radius, ra_column, dec_column)
    prefix = catalog_name or default_name

    n = len(results)
    if len(ccoords) == 0 or n == 0:
        ri = np.zeros(0, dtype=np.int64)
        ci = np.zeros(0, dtype=np.int64)
        sep = np.zeros(0) * u.arcsec
    elif nearest:
        idx, sep2d, _ = match_coordinates_sky(rcoords, ccoords)
        ok = sep2d <= radius
        ri, ci, sep = np.flatnonzero(ok), np.asarray(idx)[ok], sep2d[ok]
    else:
        ri, ci, sep2d, _ = search_around_sky(rcoords, ccoords, radius)
        order = np.lexsort((sep2d.value, ri))  # results order, nearest counterpart first
        ri, ci, sep = ri[order], ci[order], sep2d[order]

    if join_type == "left":
        # Unmatched results keep one row with masked catalogue columns.
        matched = np.zeros(n, dtype=bool)
        matched[ri] = True
        extra = np.flatnonzero(~matched)
        all_ri = np.concatenate([ri, extra])
        all_ci = np.concatenate([ci, np.full(extra.size, -1)])
        all_sep = np.concatenate([sep.to_value(u.arcsec), np.full(extra.size, np.nan)])
        order = np.argsort(all_ri, kind="stable")
        ri, ci, sepv = all_ri[order], all_ci[order], all_sep[order]
    else:
        sepv = sep.to_value(u.arcsec)

    out = results[ri] if len(ri) else results[:0]
    out = Table(out, masked=False, copy=True)
    missing = ci < 0
    safe_ci = np.where(missing, 0, ci)
    for name in table.colnames:
        col = table[name]
        new = f"{prefix}_{name}" if name in out.colnames or name == "separation" else name
        if len(table) == 0:
            data = np.zeros(len(ci), dtype=col.dtype if col.dtype.kind != "O" else float)
        else:
            data = np.asarray(col)[safe_ci] if len(ci) else np.asarray(col)[:0]
        mask = missing.copy()
        if hasattr(col, "mask") and len(table):
            mask |= np.asarray(col.mask)[safe_ci]
        out[new] = MaskedColumn(data, mask=mask, unit=getattr(col, "unit", None),
                                description=getattr(col.info, "description", None))
    out["separation"] = MaskedColumn(np.where(missing, 0.0, sepv), mask=missing, unit=u.arcsec, format=".3f")
    out.meta = dict(results.meta)
    out.meta["crossmatch"] = {
        "catalog": prefix,
        "radius_arcsec": float(radius.to_value(u.arcsec)),
        "nearest": bool(nearest),
        "join_type": join_type,
        "n_matched": int((~missing).sum()),
    }
    return out


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def _cli_crossmatch(args) -> int:
    try:
        radius = u.Quantity(args.radius)
    except (TypeError, ValueError):
        raise ValueError(f"--radius {args.radius!r} is not an angle such as 2arcsec or 0.5arcmin") from None
    if radius.unit == u.dimensionless_unscaled:
        raise ValueError(f"--radius {args.radius!r} has no unit; write e.g. 2arcsec")
    if args.output and Path(args.output).exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} already exists (add --overwrite to replace it)")
    if not Path(args.results).is_file():
        raise FileNotFoundError(f"no result table at {args.results}")
    results = Table.read(args.results)
    out = crossmatch(
        results,
        args.catalog,
        radius,
        nearest=not args.all,
        join_type=args.join,
        ra_column=args.ra_column,
        dec_column=args.dec_column,
    )
    summary = f"wrote {len(out)} rows ({out.meta['crossmatch']['n_matched']} matched) to {args.output}"
    return emit_table(out, args.output, args.overwrite, summary)


def add_cli(subparsers) -> None:
    """Register the ``crossmatch`` subcommand."""
    p = subparsers.add_parser("crossmatch", help="cross-match a result table with a catalogue")
    p.add_argument("results", help="result table file (e.g. hits.ecsv)")
    p.add_argument("catalog", help="catalogue file, 'lenscat', or a VizieR catalogue id")
    p.add_argument("--radius", default="1arcsec", help="match radius with unit (default 1arcsec)")
    p.add_argument("--all", action="store_true", help="every counterpart within the radius, not only the nearest")
    p.add_argument("--join", choices=("left", "inner"), default="left", help="keep unmatched results (left) or not")
    p.add_argument("--ra-column", default=None, help="catalogue RA column (default: auto-detect)")
    p.add_argument("--dec-column", default=None, help="catalogue Dec column (default: auto-detect)")
    p.add_argument("-o", "--output", default=None, help="output table file (format from the extension)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_cli_crossmatch)
