"""A drift run at a glance (docs/drift.md): per population, each profile set's NDCG on the next round with its
95% interval, round by round, and the prompt tokens each set read that round.

    python benchmarks/plot_drift.py benchmarks/results/drift-synthetic-switch.json \\
        benchmarks/results/drift-authors-long.json --groups switch keep all --out docs/figure-drift.png

Reads the reports ``bench_drift.py`` writes (any number; one column per population), prints the plotted
figures as a table, and writes one PNG.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bump_profiles.data.atomic import atomic_write_bytes
from bump_profiles.errors import DataError


def drift_series(population: dict[str, Any], judge: str = "lexical", group: str = "all",
                 direction: str = "ndcg_a", sets: list[str] | None = None) -> dict[str, dict[str, list[float]]]:
    """Set name -> ``round`` (profiles after it), ``mean``, ``lo``, ``hi`` and ``tokens``, over the rounds that
    judge scored; only ``sets`` when given (a report holds up to eight)."""
    out: dict[str, dict[str, list[float]]] = {}
    for entry in population["rounds"]:
        scored = entry["judges"].get(judge, {}).get(group)
        if scored is None:
            continue
        for name, row in scored["rows"].items():
            if sets is not None and name not in sets:
                continue
            s = out.setdefault(name, {"round": [], "mean": [], "lo": [], "hi": [], "tokens": []})
            s["round"].append(entry["round"])
            for k in ("mean", "lo", "hi"):
                s[k].append(row[direction][k])
            s["tokens"].append(entry["prompt_tokens_mean"][name])
    if not out:
        raise DataError(f"no round of this report was scored by the {judge} judge for '{group}'"
                        + (f" with any of the sets {', '.join(sets)}" if sets else ""))
    return out


def drift_png(columns: dict[str, dict[str, dict[str, list[float]]]], direction: str) -> bytes:
    """Two rows (NDCG with intervals; prompt tokens) and one column per ``{title: drift_series(...)}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bump_profiles.evaluation.report import figure_png

    fig, axes = plt.subplots(2, len(columns), figsize=(4.6 * len(columns), 6.2), squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1]})
    names = list(dict.fromkeys(name for series in columns.values() for name in series))  # one colour a set, every column
    handles = {}
    for col, (title, series) in enumerate(columns.items()):
        top, bottom = axes[0][col], axes[1][col]
        for i, (name, s) in enumerate(series.items()):
            x = [r + 0.06 * (i - len(series) / 2) for r in s["round"]]  # spread the bars so they do not hide each other
            err = [[m - lo for m, lo in zip(s["mean"], s["lo"], strict=True)], [hi - m for m, hi in zip(s["mean"], s["hi"], strict=True)]]
            colour = f"C{names.index(name) % 10}"
            handles[name] = top.errorbar(x, s["mean"], yerr=err, marker="o", ms=3, capsize=2, color=colour, label=name)
            if any(s["tokens"]):  # history@notes is pasted, not generated: it reads nothing
                bottom.plot(s["round"], s["tokens"], marker="o", ms=3, color=colour, label=name)
        top.set_title(title, fontsize=9)
        if col == 0:
            top.set_ylabel(f"{direction.upper().replace('_', ' ')} on the next round")
            bottom.set_ylabel("prompt tokens read")
        bottom.set_xlabel("profile after round")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0][0].legend(list(handles.values()), list(handles), fontsize=7)
    png = figure_png(fig)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reports", nargs="+", type=Path, help="bench_drift.py JSON reports")
    p.add_argument("--judge", default="lexical")
    p.add_argument("--groups", nargs="+", default=["all"], help="'all', synthetic kinds, authors' groups (shifting, "
                   "...): a column for each population that reports the group")
    p.add_argument("--direction", choices=["ndcg_a", "ndcg_b"], default="ndcg_a")
    p.add_argument("--sets", nargs="+", help="the profile sets to draw (default: every set a report holds)")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args(argv)
    columns = {}
    for path in args.reports:
        try:
            report = json.loads(path.read_text())
            for name, population in report["populations"].items():
                for group in [g for g in args.groups if g == "all" or g in population.get("groups", {})]:
                    size = population["users"] if group == "all" else population["groups"][group]
                    columns[f"{path.stem}\n{name}, {group}: {size} users, {args.judge} judge"] = \
                        drift_series(population, args.judge, group, args.direction, args.sets)
        except (OSError, ValueError, KeyError, DataError) as e:
            print(f"error: {path}: {e!r}", file=sys.stderr)
            return 2
    if not columns:
        print(f"error: no population reports any of the groups {args.groups}", file=sys.stderr)
        return 2
    print(f"| population | set | {args.direction} per round (mean [95% CI]) | prompt tokens per round |")
    print("|---|---|---|---|")
    for title, series in columns.items():
        population = title.replace("\n", ": ")
        for name, s in series.items():
            cells = ", ".join(f"r{r}: {m:.3f} [{lo:.3f}, {hi:.3f}]" for r, m, lo, hi in zip(s["round"], s["mean"], s["lo"], s["hi"], strict=True))
            print(f"| {population} | {name} | {cells} | {', '.join(f'{t:.0f}' for t in s['tokens'])} |")
    atomic_write_bytes(args.out, drift_png(columns, args.direction))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
