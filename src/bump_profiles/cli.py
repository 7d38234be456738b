"""The ``bump-profiles`` command. Each subcommand lives in ``bump_profiles.commands.<name>`` and
imports heavy libraries only when it runs, so ``bump-profiles --help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from bump_profiles import __version__
from bump_profiles.engines.console import quiet_libraries
from bump_profiles.errors import BumpError

# Modules under bump_profiles.commands, each with ``register(subparsers)``.
COMMANDS = ["demo", "data", "models", "train", "profile", "judge", "eval", "report", "bench", "serve", "refresh"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bump-profiles",
        description="Train LLMs to write user profiles from interaction logs (BUMP) and evaluate them.",
    )
    parser.add_argument("--version", action="version", version=f"bump-profiles {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"bump_profiles.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries(args.verbose)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BumpError as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
