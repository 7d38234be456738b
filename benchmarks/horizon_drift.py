"""Far horizons of a drift report: each profile after round r judged on every later round r + k, not only the
next one (``bench_drift.py`` judges k = 1), since a profile that only restates this round's items is flattered by
the next round and a profile lives for weeks (docs/drift.md).

    PYTHONPATH=src python benchmarks/horizon_drift.py benchmarks/results/drift-authors-long-spliced-trained.json \\
        trained stale --groups all

The report's population is drawn again from its own arguments (``pair_drift.redraw``); the profiles are the
report's texts; the judge is the lexical one of the benchmark (IDF from outside the population), all users
ranked at once on round r + k's items; NDCG_A per user, paired 95% intervals over users with the benchmark's
resampling. A profile is refused if it read an item of the round it is judged on. k = 1 reproduces the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_drift import read_by  # noqa: E402
from bench_incremental import per_user_ndcg  # noqa: E402
from pair_drift import group_draws, kinds_of, redraw  # noqa: E402

from bump_profiles.authors.stats import paired_difference  # noqa: E402


def horizon_scores(pop: dict[str, Any], profiles: dict[str, list[list[str]]], judge: Any) -> dict[str, dict]:
    """Set -> (r, t) -> {user id: NDCG_A of the profile after round r on round t's items}, for every t > r the
    population has (rounds 1-based; ``profiles[set][r - 1]`` is the texts after round r, in user order)."""
    from bump_profiles.data.split import UserSplit
    from bump_profiles.profiles.provenance import record, refuse_seen

    users = pop["users"]
    ids = [u.id for u in users]
    n_rounds = len(pop["rounds"][ids[0]])
    out: dict[str, dict] = {}
    for name, per_round in profiles.items():
        out[name] = {}
        for r in range(1, len(per_round) + 1):
            reads = {uid: record(items) for uid, items in read_by(pop, name, r).items()}
            for t in range(r + 1, n_rounds + 1):
                refuse_seen(f"{name} after round {r}", reads, {u.id: pop["rounds"][u.id][t - 1] for u in users})
                splits = [UserSplit(u, [x for rnd in pop["rounds"][u.id][:r] for x in rnd], pop["rounds"][u.id][t - 1])
                          for u in users]
                a, _ = per_user_ndcg(splits, dict(zip(ids, per_round[r - 1], strict=True)), judge)
                out[name][r, t] = dict(zip(ids, map(float, a), strict=True))
    return out


def paired_table(scores: dict[str, dict], set_a: str, set_b: str, members: list[str],
                 draws: np.ndarray) -> dict[tuple[int, int], dict[str, float]]:
    """(r, k) -> ``set_a - set_b`` over ``members`` (mean, lo, hi) for the profile after round r on round r + k."""
    return {(r, t - r): paired_difference(scores[set_a][r, t], scores[set_b][r, t], members, draws)
            for (r, t) in scores[set_a]}


def horizon_png(tables: dict[str, dict[tuple[int, int], dict[str, float]]], title: str) -> bytes:
    """One panel a group: the paired difference (95% interval) against rounds ahead k, one line a round r >= 2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bump_profiles.evaluation.report import figure_png

    fig, axes = plt.subplots(1, len(tables), figsize=(4.6 * len(tables), 3.6), squeeze=False, sharey=True)
    for ax, (group, table) in zip(axes[0], tables.items(), strict=True):
        for r in sorted({r for r, _ in table if r > 1}):
            ks = sorted(k for rr, k in table if rr == r)
            d = [table[r, k] for k in ks]
            x = [k + 0.06 * (r - 3) for k in ks]  # rounds side by side, not on top of each other
            ax.errorbar(x, [v["mean"] for v in d], yerr=[[v["mean"] - v["lo"] for v in d], [v["hi"] - v["mean"] for v in d]],
                        marker="o", capsize=3, label=f"after round {r}")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(title=group, xlabel="rounds ahead k (1 = the next round)")
        ax.set_xticks(sorted({k for r, k in table if r > 1}))
    axes[0][0].set_ylabel(f"{title}\nNDCG_A difference (95% CI)")
    axes[0][-1].legend(fontsize=8)
    return figure_png(fig)


def main(argv: list[str] | None = None) -> int:
    from bump_profiles.data.atomic import atomic_write_bytes
    from bump_profiles.judges.lexical import LexicalJudge

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", type=Path)
    p.add_argument("a", help="a profile set of the report (e.g. trained)")
    p.add_argument("b", help="the set subtracted (e.g. stale)")
    p.add_argument("--population", help="default: the report's only (first) population")
    p.add_argument("--groups", nargs="+", default=["all"])
    p.add_argument("--plot", type=Path, metavar="PNG", help="also draw the differences, one panel a group")
    args = p.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        population = args.population or next(iter(report["populations"]))
        pop = redraw(report, population)
        members = kinds_of(pop["users"])
        missing = [g for g in args.groups if g not in members]
        if missing:
            raise ValueError(f"no group {', '.join(missing)} (the population has {', '.join(members)})")
        texts = report["populations"][population]["profiles"]
        absent = [s for s in (args.a, args.b) if s not in texts]
        if absent:
            raise ValueError(f"no profile set {', '.join(absent)} in {args.report} (it has {', '.join(texts)})")
        scores = horizon_scores(pop, {s: texts[s] for s in (args.a, args.b)}, LexicalJudge.fitted(pop["idf"]))
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.report}: {e!r}", file=sys.stderr)
        return 2
    horizons = sorted({t - r for r, t in scores[args.a]})
    tables = {}
    for group in args.groups:
        ids = members[group]
        draws = group_draws(group, len(ids), report["args"]["seed"], report["args"]["bootstrap"])
        table = tables[f"{population}, {group} ({len(ids)} users)"] = paired_table(scores, args.a, args.b, ids, draws)
        print(f"\n{population}, {group} ({len(ids)} users): {args.a} - {args.b}, NDCG_A on round r + k (lexical)")
        print(f"| after round r | {' | '.join(f'k = {k}' for k in horizons)} |\n|---|{'---|' * len(horizons)}")
        for r in sorted({r for r, _ in table}):
            cells = [f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" if (d := table.get((r, k))) else ""
                     for k in horizons]
            print(f"| {r} | {' | '.join(cells)} |")
        print(f"\n| after round r | {' | '.join(f'k = {k}: {args.a} / {args.b}' for k in horizons)} |\n|---|{'---|' * len(horizons)}")
        for r in sorted({r for r, _ in table}):
            cells = [" / ".join(f"{np.mean([scores[s][r, r + k][u] for u in ids]):.3f}" for s in (args.a, args.b))
                     if (r, k) in table else "" for k in horizons]
            print(f"| {r} | {' | '.join(cells)} |")
    if args.plot:
        atomic_write_bytes(args.plot, horizon_png(tables, f"{args.a} - {args.b}"))
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
