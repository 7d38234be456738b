"""Paired differences between two profile sets of drift reports, round by round, from their per-user scores
(docs/drift.md: the trained writer against the notes of another run, the regeneration against the stale profile).

    PYTHONPATH=src python benchmarks/pair_drift.py benchmarks/results/drift-synthetic-switch-trained.json:trained \\
        benchmarks/results/drift-synthetic-switch.json:notes --groups switch keep all

NDCG_A of a user depends only on that user's profile and the round's items, so two runs over the same users,
items and judge pair in it; NDCG_B ranks a set's profiles against each other, so ``--direction ndcg_b`` pairs
two sets of one report only. The users and their groups (``kind``: synthetic switch/keep, spliced/single) are
drawn again from the first report's own arguments (``bench_drift.populations``) and must be the reports' users;
intervals resample users as ``bench_drift.py`` does (the same draws).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_drift import parse_args, populations  # noqa: E402

from bump_profiles.authors.stats import paired_difference  # noqa: E402


def redraw(report: dict[str, Any], population: str) -> dict[str, Any]:
    """The report's population (``bench_drift.populations``: users, rounds, IDF corpus) drawn again with the
    report's own arguments; refused (ValueError) when its users are not the report's."""
    argv = [x for k, v in report["args"].items() if v is not None and v is not False and k != "out"
            for x in ([f"--{k.replace('_', '-')}"] + ([] if v is True else [str(y) for y in (v if isinstance(v, list) else [v])]))]
    pop = populations(parse_args(argv))[population]
    if [u.id for u in pop["users"]] != report["populations"][population]["user_ids"]:
        raise ValueError(f"the {population} users drawn from the report's arguments are not the report's users")
    return pop


def kinds_of(users: list[Any]) -> dict[str, list[str]]:
    """'all' and each ``kind`` (synthetic switch/keep, spliced/single) -> the user ids, in order."""
    ids = [u.id for u in users]
    kinds = sorted({u.extra["kind"] for u in users if "kind" in u.extra})
    return {"all": ids, **{k: [u.id for u in users if u.extra.get("kind") == k] for k in kinds}}


def group_draws(group: str, n: int, seed: int, bootstrap: int) -> np.ndarray:
    """``bench_drift.py``'s bootstrap resamples of a group of ``n`` users: seeded with ``--seed`` for 'all', with
    the group's size otherwise, so a paired interval here is the report's own."""
    return np.random.default_rng(seed if group == "all" else n).integers(0, n, size=(bootstrap, n))


def pair(a: dict[str, Any], set_a: str, b: dict[str, Any], set_b: str, members: dict[str, list[str]],
         judge: str, direction: str, seed: int, bootstrap: int) -> list[dict[str, Any]]:
    """Per round both reports judged: ``set_a - set_b`` per group, with ``bench_drift.py``'s resampling."""
    out = []
    rounds_b = {e["round"]: e for e in b["rounds"]}
    for ea in a["rounds"]:
        eb = rounds_b.get(ea["round"])
        if eb is None or judge not in ea["judges"] or judge not in eb["judges"]:
            continue
        sa, sb = ea["judges"][judge]["per_user"][set_a][direction], eb["judges"][judge]["per_user"][set_b][direction]
        row = {"round": ea["round"]}
        for group, ids in members.items():
            row[group] = paired_difference(sa, sb, ids, group_draws(group, len(ids), seed, bootstrap))
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="REPORT.json:SET")
    p.add_argument("b", help="REPORT.json:SET (subtracted)")
    p.add_argument("--population", help="default: the first report's only population")
    p.add_argument("--groups", nargs="+", default=["all"])
    p.add_argument("--judge", default="lexical")
    p.add_argument("--direction", choices=["ndcg_a", "ndcg_b"], default="ndcg_a")
    args = p.parse_args(argv)
    (path_a, set_a), (path_b, set_b) = (x.rsplit(":", 1) for x in (args.a, args.b))
    try:
        ra, rb = json.loads(Path(path_a).read_text()), json.loads(Path(path_b).read_text())
        if args.direction == "ndcg_b" and Path(path_a).resolve() != Path(path_b).resolve():
            raise ValueError("NDCG_B ranks a set's profiles against each other: pair two sets of one report")
        population = args.population or next(iter(ra["populations"]))
        if ra["populations"][population]["user_ids"] != rb["populations"][population]["user_ids"]:
            raise ValueError(f"the two reports' {population} users differ")
        members = kinds_of(redraw(ra, population)["users"])
        missing = [g for g in args.groups if g not in members]
        if missing:
            raise ValueError(f"no group {', '.join(missing)} (the population has {', '.join(members)})")
        rows = pair(ra["populations"][population], set_a, rb["populations"][population], set_b,
                    {g: members[g] for g in args.groups}, args.judge, args.direction,
                    ra["args"]["seed"], ra["args"]["bootstrap"])
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e!r}", file=sys.stderr)
        return 2
    print(f"| after round | {' | '.join(args.groups)} |\n|---|{'---|' * len(args.groups)}")
    for row in rows:
        cells = [f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" for d in (row[g] for g in args.groups)]
        print(f"| {row['round']} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
