"""The RST tables of docs/evaluation.rst from what `evaluate_release.py` wrote, so no number is typed by hand.

    python data/recipes/release_tables.py runs/eval/galclip-v2 [--compare runs/eval/galclip-v1] > tables.rst

Prints, as RST ``list-table`` blocks: the targets of the release (from
``summary.json``), the wordings (``wordings.ecsv``), the one lens query over
seeds (``lenses.json``), the third author's wordings (``wordings_third.ecsv``,
where the run has it; with ``--compare``, the other model's beside), the framing (``framing.ecsv``; with ``--compare``,
the other model's means beside) and the flag rates (``flags.json``). The
main table is ``evaluate.rst`` itself.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np


def list_table(title: str, header: list[str], rows: list[list]) -> str:
    """One RST ``list-table`` (numbers with three decimals, NaN as a dash)."""
    def cell(v):
        if isinstance(v, float):
            return "—" if math.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {cell(row[0])}")
        lines += [f"     - {cell(v)}" for v in row[1:]]
    return "\n".join(lines) + "\n"


def targets(s: dict, impossible_3x: int = 0, negated_wordings: tuple[int, int] | None = None) -> list[list]:
    """The issue's "done when" items against what was measured.

    ``impossible_3x``: rows whose random nDCG@10 is above 1/3, which no
    ranking can beat three times over. ``negated_wordings``: (wordings at
    0.8x or more of their positive wording, all negated wordings).
    """
    e, w, f = s["evaluate"], s["wordings"], s["flags"]
    n = e["rows"]
    ratios = [v["worst_over_best"] for v in w.values()]
    neg = [v["negated_ratio"] for v in w.values() if not math.isnan(v["negated_ratio"])]
    lens = s["lenses"]["mean_recall100"]["injected lens (independent sim)"]

    def verdict(ok):
        return "met" if ok else "**not met**"

    return [
        ["text within 0.05 of the probe on >= 8 rows", f"{e['text_within_0.05_of_probe']} of {n}",
         verdict(e["text_within_0.05_of_probe"] >= 8)],
        ["text beats image similarity on >= 10 rows", f"{e['text_beats_image']} of {n}",
         verdict(e["text_beats_image"] >= 10)],
        ["mean text nDCG@10 >= 0.55", f"{e['mean_text']:.3f} (image {e['mean_image']:.3f}, probe "
         f"{e['mean_probe']:.3f}, random {e['mean_random']:.3f})", verdict(e["mean_text"] >= 0.55)],
        ["every row >= 3x random", f"{e['text_at_least_3x_random']} of {n}"
         + (f" ({impossible_3x} cannot: random nDCG@10 above 1/3)" if impossible_3x else ""),
         verdict(e["text_at_least_3x_random"] == n)],
        ["worst wording >= 0.6 x best, every class", f"{sum(r >= 0.6 for r in ratios)} of {len(ratios)}",
         verdict(all(r >= 0.6 for r in ratios))],
        ["negated >= 0.8 x a positive wording of the opposite answer", f"{sum(r >= 0.8 for r in neg)} of {len(neg)} "
         "classes" + (f" ({negated_wordings[0]} of {negated_wordings[1]} wordings one by one)" if negated_wordings else ""),
         verdict(all(r >= 0.8 for r in neg))],
        [">= 90% of off-topic phrases flagged", f"{100 * f['off_topic_flagged']:.1f}% of {f['n_off_topic']}",
         verdict(f["off_topic_flagged"] >= 0.9)],
        ["<= 5% of on-topic wordings flagged", f"{100 * f['on_topic_flagged']:.1f}% of {f['n_on_topic']}",
         verdict(f["on_topic_flagged"] <= 0.05)],
        ['"strong lens arcs" recall@100 >= 0.6 (independent simulator, 1%)',
         f"{lens:.3f} (mean of {len(s['lenses']['per_seed'])} seeds)", verdict(lens >= 0.6)],
    ]


def main(argv=None) -> int:
    from astropy.table import Table

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="directory written by evaluate_release.py")
    p.add_argument("--compare", default=None,
                   help="another model's directory: its framing means beside, and the paired lens-recall difference")
    args = p.parse_args(argv)
    run = Path(args.run)
    for d in filter(None, (run, args.compare and Path(args.compare))):
        missing = [f for f in ("summary.json", "evaluate.ecsv", "wordings.ecsv", "framing.ecsv") if not (d / f).is_file()]
        if missing:
            p.error(f"{d} lacks {', '.join(missing)}: give a directory written by data/recipes/evaluate_release.py")
    s = json.loads((run / "summary.json").read_text())
    name = s["model"]
    main_table = Table.read(run / "evaluate.ecsv")
    impossible = int(np.sum(np.asarray(main_table["ndcg10_random"], dtype=float) > 1 / 3))
    words = Table.read(run / "wordings.ecsv")
    negated = [r for r in words.meta["per_wording"] if r["kind"] == "negated"]
    paired = [r for r in negated if r.get("ndcg10_opposite_positive")]
    counts = (sum(r["ndcg10"] >= 0.8 * r["ndcg10_opposite_positive"] for r in paired), len(paired))
    out = [list_table(f"{name}: the targets", ["target", "measured", "status"], targets(s, impossible, counts))]
    raw = s["wordings"]
    out.append(list_table(
        f"{name}: wordings (data/eval_wordings.toml)",
        ["class", "wordings", "mean", "worst", "best", "worst / best", "worst wording", "negated / opposite",
         "same, negation not parsed"],
        [[r["class"], int(r["n_wordings"]), float(r["mean"]), float(r["worst"]), float(r["best"]),
          float(r["worst_over_best"]), r["worst_wording"], float(r["negated_ratio"]),
          float(raw[r["class"]]["negated_ratio_without_parsing"])] for r in words]))

    if (run / "wordings_third.ecsv").is_file():
        third = Table.read(run / "wordings_third.ecsv")
        before = None
        header = ["class", "wordings", "mean", "worst", "best", "worst / best", "worst wording"]
        if args.compare and (Path(args.compare) / "wordings_third.ecsv").is_file():
            before = {r["class"]: r for r in Table.read(Path(args.compare) / "wordings_third.ecsv")}
            other_name = json.loads((Path(args.compare) / "summary.json").read_text())["model"]
            header += [f"mean, {other_name}", f"worst / best, {other_name}"]
        rows = []
        for r in third:
            row = [r["class"], int(r["n_wordings"]), float(r["mean"]), float(r["worst"]), float(r["best"]),
                   float(r["worst_over_best"]), r["worst_wording"]]
            if before is not None:
                b = before.get(r["class"])
                row += [float(b["mean"]), float(b["worst_over_best"])] if b is not None else [math.nan, math.nan]
            rows.append(row)
        ok = sum(float(r["worst_over_best"]) >= 0.6 for r in third)
        rows.append(["classes with worst >= 0.6 x best", "", "", "", "", f"{ok} of {len(third)}", "",
                     *([f"{sum(float(b['worst_over_best']) >= 0.6 for b in before.values())} of {len(before)}", ""]
                       if before is not None else [])])
        out.append(list_table(f"{name}: the third author's wordings (data/eval_wordings_third.toml)", header, rows))

    out.append(list_table(
        f"{name}: every negated wording against a positive wording of the answer it asks for",
        ["class", "set", "negated wording", "nDCG@10", "positive wording", "nDCG@10 ", "ratio"],
        [[r["class"], r.get("set", "first"), r["text"], float(r["ndcg10"]), r["opposite_positive"],
          float(r["ndcg10_opposite_positive"]),
          float(r["ndcg10"] / r["ndcg10_opposite_positive"]) if r["ndcg10_opposite_positive"] else float("nan")]
         for r in negated]))

    lenses = s["lenses"]
    rows = [[seed, v["injected lens (synthetic)"]["recall100"], v["injected lens (independent sim)"]["recall100"],
             v["injected lens (synthetic)"]["ndcg10"], v["injected lens (independent sim)"]["ndcg10"]]
            for seed, v in enumerate(lenses["per_seed"])]
    per = np.array([r[1:] for r in rows], dtype=float)
    rows.append(["mean", *per.mean(axis=0).tolist()])
    if len(per) > 1:
        rows.append(["standard error of the mean", *(per.std(axis=0, ddof=1) / np.sqrt(len(per))).tolist()])
    out.append(list_table(f'{name}: "{lenses["query"]}" at 1% prevalence (22 lenses a seed)',
                          ["seed", "recall@100 training sim", "recall@100 independent sim", "nDCG@10 training sim",
                           "nDCG@10 independent sim"], rows))

    other = json.loads((Path(args.compare) / "summary.json").read_text()) if args.compare else None
    if other and other.get("lenses"):
        # paired seed by seed (the same injection seeds): the difference's standard error, not each mean's
        key = "injected lens (independent sim)"
        mine = np.array([v[key]["recall100"] for v in lenses["per_seed"]])
        theirs = np.array([v[key]["recall100"] for v in other["lenses"]["per_seed"]])
        if len(mine) == len(theirs) and len(mine) > 1:
            d = mine - theirs
            out.append(f'"{lenses["query"]}" recall@100, independent sim: {name} minus {other["model"]}, '
                       f"paired over {len(d)} seeds: {d.mean():+.3f} (standard error "
                       f"{d.std(ddof=1) / np.sqrt(len(d)):.3f})\n")

    framing = Table.read(run / "framing.ecsv")
    header = ["class", "text zoom 0.5", "text zoom 1", "text zoom 2", "probe zoom 0.5", "probe zoom 1", "probe zoom 2"]
    rows = []
    for cls in dict.fromkeys(framing["class"]):
        sel = framing[framing["class"] == cls]
        by = {float(r["zoom"]): r for r in sel}
        rows.append([cls, *[float(by[z]["ndcg10_text"]) for z in (0.5, 1.0, 2.0)],
                     *[float(by[z]["ndcg10_probe"]) for z in (0.5, 1.0, 2.0)]])
    rows.append([f"mean, {name}", *[float(s["framing"][f"zoom {z:g}"]["mean_text"]) for z in (0.5, 1.0, 2.0)],
                 *[float(s["framing"][f"zoom {z:g}"]["mean_probe"]) for z in (0.5, 1.0, 2.0)]])
    if other:
        rows.append([f"mean, {other['model']}", *[float(other["framing"][f"zoom {z:g}"]["mean_text"]) for z in (0.5, 1.0, 2.0)],
                     *[float(other["framing"][f"zoom {z:g}"]["mean_probe"]) for z in (0.5, 1.0, 2.0)]])
    out.append(list_table(f"{name}: nDCG@10 with every image re-framed (zoom 0.5: the galaxy fills about 20% "
                          "of the frame; 2: about 80%)", header, rows))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
