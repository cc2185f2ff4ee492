"""Writing a command's result table: to a file (format from the extension) or aligned on the terminal."""
from __future__ import annotations

from pathlib import Path

__all__ = ["emit_table", "refuse_existing"]


def refuse_existing(path, overwrite: bool) -> None:
    """Refuse an existing output before any work is done (so a refused run writes nothing)."""
    if path is not None and Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (add --overwrite to replace it)")


def emit_table(table, output=None, overwrite: bool = False, summary: str | None = None) -> int:
    """Write ``table`` to ``output`` (format from the extension) or print it aligned."""
    if output is None:
        table.pprint_all()
        return 0
    refuse_existing(output, overwrite)
    table.write(output, overwrite=overwrite)
    print(summary or f"wrote {len(table)} rows to {output}")
    return 0
