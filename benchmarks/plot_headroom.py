"""The reward's headroom per training step, several runs side by side (docs/alignment.md).

    python benchmarks/plot_headroom.py --run "today's reward, fold 0=runs/authors-folds/fold-0/train-bump" \\
        --run "chosen reward, fold 0=runs/authors-folds-aligned/fold-0/train-bump" --out docs/figure-headroom.png

Each ``--run LABEL=DIR`` reads ``DIR/metrics.jsonl``; prints, per run, each headroom metric at the first
and the last step and its mean, and writes one panel per metric.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import mean

from bump_profiles.data.atomic import atomic_write_bytes
from bump_profiles.evaluation.report import HEADROOM, headroom_png, read_run_rows, series


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", help="a training run directory and its label")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args(argv)
    runs = {}
    for item in args.run:
        label, sep, folder = item.rpartition("=")
        if not sep or not label:
            p.error(f"--run {item!r}: expected LABEL=DIR")
        rows = read_run_rows(Path(folder) / "metrics.jsonl")
        if not rows:
            p.error(f"{folder}/metrics.jsonl: no steps logged")
        runs[label] = rows
    print("| run | steps | " + " | ".join(f"{label}: first / last / mean" for _, label in HEADROOM) + " |")
    print("|---|---|" + "---|" * len(HEADROOM))
    for label, rows in runs.items():
        cells = []
        for key, _ in HEADROOM:
            ys = series(rows, key)[1]
            cells.append(f"{ys[0]:.3f} / {ys[-1]:.3f} / {mean(ys):.3f}" if ys else "")
        print(f"| {label} | {len(rows)} | " + " | ".join(cells) + " |")
    png = headroom_png(runs)
    if png is None:
        p.error("none of these runs logged headroom (at_max_share)")
    atomic_write_bytes(args.out, png)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
