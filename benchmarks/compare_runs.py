"""Paired comparisons across authors-benchmark runs on the same authors (ablations on one fold).

A run ranks its own sets, and its history@budget is cut to its own generator's lengths, so two runs'
generators are compared through their gaps to their own history@budget, paired by author:

    python benchmarks/compare_runs.py --judge lexical --grouping "far, all at once" \\
        --term "today's reward=runs/authors-folds/fold-0:BUMP - history@budget" \\
        --term "chosen reward=runs/authors-folds-aligned/fold-0:BUMP - history@budget"

``--term LABEL=RUN_DIR:SET`` or ``LABEL=RUN_DIR:SET - SET`` reads the per-author NDCG of
``RUN_DIR/intrinsic/<judge>.json`` (a folds run's pooled 128 authors: ``RUN_DIR`` = ``<run>/pooled``,
``--judge lexical-all --grouping "far, all authors at once"``). Prints each term (mean [95% bootstrap
interval over authors]) and each term minus the first, A and B, over the authors every term has (the same
resamples throughout).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bump_profiles.authors.stats import interval, paired_difference, resamples


def read_term(spec: str, judge: str, grouping: str) -> tuple[str, dict[str, dict[str, float]]]:
    """``(label, {author: {"a", "b"}})`` of one ``LABEL=RUN_DIR:SET[ - SET]``."""
    label, sep, rest = spec.partition("=")
    run, sep2, sets = rest.rpartition(":")
    if not (sep and sep2 and label and run and sets):
        raise SystemExit(f"--term {spec!r}: expected LABEL=RUN_DIR:SET or LABEL=RUN_DIR:SET - SET")
    path = Path(run) / "intrinsic" / f"{judge}.json"
    if not path.exists():
        raise SystemExit(f"{path}: no such file (run the judges stage with this judge)")
    data = json.loads(path.read_text())
    groupings = data.get("groupings", data)  # a pooled run's <judge>-all.json is the groupings mapping itself
    if grouping not in groupings:
        raise SystemExit(f"{path}: no grouping {grouping!r} (it has: {', '.join(groupings)})")
    per = groupings[grouping]["per_author"]
    names = [s.strip() for s in sets.split(" - ")]
    missing = [n for n in names if n not in per]
    if len(names) > 2 or missing:
        raise SystemExit(f"{path} {grouping!r}: {sets!r} needs one set or two joined by ' - ' among: {', '.join(per)}")
    first, second = per[names[0]], (per[names[1]] if len(names) == 2 else None)
    return label, {u: {d: v[f"ndcg_{d}"] - (second[u][f"ndcg_{d}"] if second else 0.0) for d in "ab"}
                   for u, v in first.items() if second is None or u in second}


def fmt(d: dict[str, float]) -> str:
    return f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--term", action="append", required=True, help="LABEL=RUN_DIR:SET or LABEL=RUN_DIR:SET - SET")
    p.add_argument("--judge", default="lexical")
    p.add_argument("--grouping", default="far, all at once")
    p.add_argument("--bootstrap", type=int, default=1000)
    args = p.parse_args(argv)
    terms = dict(read_term(t, args.judge, args.grouping) for t in args.term)
    units = sorted(set.intersection(*(set(v) for v in terms.values())))
    if not units:
        raise SystemExit("the terms share no author")
    draws = resamples(len(units), args.bootstrap)
    print(f"{args.judge}, {args.grouping}: {len(units)} authors; mean [95% bootstrap interval over authors]\n")
    first = next(iter(terms))
    print(f"| term | A | B | A minus {first} | B minus {first} |\n|---|---|---|---|---|")
    for label, v in terms.items():
        cells = [fmt(interval([v[u][d] for u in units], draws)) for d in "ab"]
        cells += ["" if label == first else fmt(paired_difference({u: v[u][d] for u in units}, {u: terms[first][u][d] for u in units},
                                                                  units, draws)) for d in "ab"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
