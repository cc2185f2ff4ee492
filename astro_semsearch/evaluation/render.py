"""The evaluation table as Markdown and as RST (for the docs and the model card)."""
from __future__ import annotations

import numpy as np

__all__ = ["to_markdown", "to_rst", "format_value", "summary"]


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


def summary(table) -> dict:
    """The headline numbers of an `~astro_semsearch.evaluation.evaluate` table.

    Means of the text, image, probe and random nDCG@10 columns over the
    rows; how many rows have text within 0.05 of the probe, text above image
    similarity, text at least 3x random; and per row the worst over the best
    query phrasing (from ``meta["text_ndcg10_per_query"]``).
    """
    def col(name):
        return np.array([float(v) for v in table[name]]) if name in table.colnames else np.full(len(table), np.nan)

    text, image, probe, rnd = col("ndcg10_text"), col("ndcg10_image"), col("ndcg10_probe"), col("ndcg10_random")
    ratio = {}
    for cls, scores in table.meta.get("text_ndcg10_per_query", {}).items():
        v = np.array([x for x in scores.values() if x is not None and np.isfinite(x)], dtype=float)
        ratio[cls] = round(float(v.min() / v.max()), 3) if len(v) and v.max() > 0 else float("nan")
    return {
        "rows": len(table),
        "mean_text": round(float(np.nanmean(text)), 3) if len(table) else float("nan"),
        "mean_image": round(float(np.nanmean(image)), 3) if len(table) else float("nan"),
        "mean_probe": round(float(np.nanmean(probe)), 3) if np.isfinite(probe).any() else float("nan"),
        "mean_random": round(float(np.nanmean(rnd)), 3) if len(table) else float("nan"),
        "text_within_0.05_of_probe": int(np.sum(text >= probe - 0.05)),
        "text_beats_image": int(np.sum(text > image)),
        "text_at_least_3x_random": int(np.sum(text >= 3 * rnd)),
        "phrasing_worst_over_best": ratio,
    }
