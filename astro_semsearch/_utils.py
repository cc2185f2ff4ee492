"""Small helpers shared by the pipeline stages (not public API)."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["sha256_file", "atomic_directory", "atomic_write_bytes", "progress"]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks (files may be GBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary directory that is renamed to ``final`` on success.

    The temporary directory lives beside ``final`` (same filesystem, so the
    rename is atomic). On error it is removed and ``final`` is untouched.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists (pass overwrite=True to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    # mkdtemp makes the directory private (0700); give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        if final.exists():
            # Move the old one aside first so there is never a moment without a
            # complete directory at ``final``... except between these renames.
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.rename(final, old / "d")
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that respects ``conf.show_progress``."""
    from tqdm.auto import tqdm

    from .config import conf

    kwargs.setdefault("disable", not conf.show_progress)
    return tqdm(iterable, **kwargs)


def find_column(table, given, names, what: str) -> str:
    """Name of the ``what`` column of ``table``: ``given`` if set, else the first of ``names`` (any case).

    A numeric match is preferred: VizieR gives ``RAJ2000`` as sexagesimal text
    and ``_RAJ2000`` in degrees, for example.
    """
    import numpy as np

    if given is not None:
        if given not in table.colnames:
            raise ValueError(f"{what} column {given!r} is not in the catalogue; it has {table.colnames}")
        return given
    lower = {c.lower(): c for c in table.colnames}
    found = [lower[n] for n in names if n in lower]
    for col in found:
        if np.asarray(table[col]).dtype.kind in "fiu":
            return col
    if found:
        return found[0]
    raise ValueError(
        f"cannot find a {what} column in the catalogue; looked for {list(names)} (any case), "
        f"it has {table.colnames}. Name it explicitly."
    )


def column_degrees(col, name: str, label: str = "catalogue"):
    """Values of a catalogue angle column in degrees (no unit means degrees).

    Raises a clear error for masked, non-numeric, non-angle or non-finite values.
    """
    import numpy as np
    from astropy import units as u

    if np.any(getattr(col, "mask", False)):
        raise ValueError(f"{label} column {name!r} has missing (masked) values")
    try:
        values = np.asarray(getattr(col, "value", col), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{label} column {name!r} must hold numbers in degrees (sexagesimal strings are not read)"
        ) from None
    unit = getattr(col, "unit", None)
    if unit is not None:
        if not u.Unit(unit).is_equivalent(u.deg):
            raise u.UnitTypeError(f"{label} column {name!r} has unit {unit}, which is not an angle")
        values = (values * u.Unit(unit)).to_value(u.deg)
    if not np.isfinite(values).all():
        raise ValueError(f"{label} column {name!r} has NaN or infinite values")
    return values


def read_catalog(catalog):
    """``(Table, path or None)`` from a Table or a catalogue file astropy can read; empty is an error."""
    from astropy.table import Table

    path = None
    if not isinstance(catalog, Table):
        path = Path(catalog)
        if not path.is_file():
            raise FileNotFoundError(f"catalogue file {path} does not exist")
        catalog = Table.read(path)
    if len(catalog) == 0:
        raise ValueError("the catalogue is empty")
    return catalog, path


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError) -> dict:
    """A JSON object from ``path``; ``error`` (naming the file) if it is not valid JSON or not an object."""
    import json

    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise error(f"{path} must hold a JSON object")
    return value


def emit_table(table, output=None, overwrite: bool = False, summary: str | None = None) -> int:
    """CLI output: write ``table`` to ``output`` (format from the extension) or print it aligned."""
    if output is None:
        table.pprint_all()
        return 0
    if Path(output).exists() and not overwrite:
        raise FileExistsError(f"{output} already exists (add --overwrite to replace it)")
    table.write(output, overwrite=overwrite)
    print(summary or f"wrote {len(table)} rows to {output}")
    return 0


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or a TypeError/ValueError naming ``name`` (bools are refused)."""
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def finite_or_none(value) -> float | None:
    """A finite float, or None for masked / NaN / missing / non-numeric values."""
    import math

    import numpy as np

    if value is None or np.ma.is_masked(value):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None
