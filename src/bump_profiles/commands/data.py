"""``bump-profiles data``: inspect and split interaction data."""

from __future__ import annotations

import argparse
import json
import statistics

from bump_profiles.commands import Choices


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect and split user interaction data")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    stats = dsub.add_parser("stats", help="print users and interactions per user as JSON")
    stats.add_argument("path", help="a LaMP questions .json or a JSONL log")
    stats.add_argument("--format", choices=Choices("bump_profiles.data", "FORMATS"), help="default: from the extension")
    stats.set_defaults(func=cmd_stats)

    split = dsub.add_parser("split", help="write a history/held-out split as JSONL")
    split.add_argument("path")
    split.add_argument("--format", choices=Choices("bump_profiles.data", "FORMATS"))
    split.add_argument("--k", type=int, default=2, help="held-out interactions per user (default 2)")
    split.add_argument("--strategy", choices=Choices("bump_profiles.data.split", "STRATEGIES"), default="recent")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--out", required=True, help="output JSONL: user_id, history, heldout")
    split.set_defaults(func=cmd_split)


def cmd_stats(args: argparse.Namespace) -> int:
    from bump_profiles.data import guess_format, load_jsonl, load_lamp_questions

    fmt = args.format or guess_format(args.path)
    out: dict = {"path": args.path, "format": fmt}
    if fmt == "lamp":
        lamp = load_lamp_questions(args.path)
        users = lamp.users
        out.update(task=lamp.task, questions=lamp.n_questions)
    else:
        users = load_jsonl(args.path)
    counts = [len(u.interactions) for u in users]
    out.update(
        users=len(users),
        interactions=sum(counts),
        interactions_per_user={"min": min(counts), "median": statistics.median(counts), "max": max(counts)},
        per_user={u.id: len(u.interactions) for u in users},
    )
    print(json.dumps(out, indent=2))
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from bump_profiles.data import load_users, split_users
    from bump_profiles.data.atomic import atomic_write_text

    users = load_users(args.path, args.format)
    split = split_users(users, args.k, strategy=args.strategy, seed=args.seed)
    lines = [
        json.dumps({
            "user_id": s.user.id,
            "history": [{"id": it.id, "text": it.text, "timestamp": it.date} for it in s.history],
            "heldout": [{"id": it.id, "text": it.text, "timestamp": it.date} for it in s.heldout],
        }, ensure_ascii=False)
        for s in split.users
    ]
    atomic_write_text(args.out, "\n".join(lines) + ("\n" if lines else ""))
    print(json.dumps({"out": args.out, "users": len(split.users), "skipped": len(split.skipped), "k": args.k, "strategy": args.strategy}))
    return 0
