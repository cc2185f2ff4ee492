"""The evaluation table as Markdown and as RST (for the docs and the model card)."""
from __future__ import annotations

import numpy as np

__all__ = ["to_markdown", "to_rst", "format_value"]


def format_value(v) -> str:
    """A table cell as text: floats to 3 decimals, NaN as a dash."""
    if isinstance(v, (float, np.floating)):
        return "—" if not np.isfinite(v) else f"{v:.3f}"
    return str(v)


def to_markdown(table) -> str:
    """The evaluation table as a GitHub-flavoured Markdown table."""
    names = table.colnames
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    for row in table:
        lines.append("| " + " | ".join(format_value(row[n]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def to_rst(table) -> str:
    """The evaluation table as an RST ``list-table`` (for the docs)."""
    names = table.colnames
    out = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [names] + [[format_value(row[n]) for n in names] for row in table]:
        out.append("   * - " + cells[0])
        out.extend("     - " + c for c in cells[1:])
    return "\n".join(out) + "\n"
