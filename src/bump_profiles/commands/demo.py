"""``bump-profiles demo``: the whole pipeline on the CPU with the bundled models (what `make demo` runs)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from bump_profiles.evaluation.demo import DemoConfig

    p = sub.add_parser("demo", help="run the whole BUMP pipeline on synthetic users, then write a report")
    defaults = DemoConfig()
    for name, f in DemoConfig.__dataclass_fields__.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(getattr(defaults, name), bool):
            p.add_argument(flag, action="store_true", help=f.metadata["help"])
        else:
            p.add_argument(flag, type=type(getattr(defaults, name)), default=getattr(defaults, name),
                           help=f"{f.metadata['help']} (default: %(default)s)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bump_profiles.evaluation.demo import DemoConfig, print_summary, run_demo

    cfg = DemoConfig(**{name: getattr(args, name) for name in DemoConfig.__dataclass_fields__})
    summary = run_demo(cfg)
    print_summary(summary, Path(cfg.out))
    return 0
