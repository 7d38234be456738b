"""``bump-profiles report RUN_DIR``: report.md and a self-contained report.html with plots."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write report.md and report.html (with plots) for a run directory")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bump_profiles.errors import BumpError
    from bump_profiles.evaluation.report import write_report

    if not Path(args.run_dir).is_dir():
        raise BumpError(f"{args.run_dir}: no such run directory")
    md, page = write_report(args.run_dir)
    print(f"wrote {md} and {page}")
    return 0
