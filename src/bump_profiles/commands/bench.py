"""``bump-profiles bench [STAGE] [ARGS...]``: run a performance script from the checkout's ``benchmarks/``.

The scripts live beside the package, not inside it (they are measurements, not library code), so
they are loaded by path from the source checkout; an installed wheel has no ``benchmarks/`` folder
and this command says so. Arguments after the stage go to the script unchanged
(``bump-profiles bench reward --help`` lists them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Stage -> script in benchmarks/, each with ``main(argv)``; ``all`` runs them in this order, with defaults.
STAGES = {
    "judges": "bench_judges.py",
    "reward": "bench_reward.py",
    "step": "bench_step.py",
    "generate": "bench_generate.py",
    "memory": "bench_memory.py",
    "serve": "bench_serve.py",
    "bf16": "bench_bf16.py",
}
# src/bump_profiles/commands/bench.py -> the repository root is three folders up from commands/.
DEFAULT_DIR = Path(__file__).resolve().parents[3] / "benchmarks"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure the cost of each stage (judges, reward, GRPO step, generation, memory)",
                       description="Run a benchmark script; each prints a table and writes benchmarks/results/<stage>.json.")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the benchmarks folder (default: the checkout's)")
    p.add_argument("stage", nargs="?", default="all", choices=[*STAGES, "all"], help="what to measure (default: all)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the stage's script")
    p.set_defaults(func=cmd_bench)


def script_path(directory: Path, stage: str) -> Path:
    """The stage's script, or a clear error when this is not a source checkout."""
    from bump_profiles.errors import ConfigError

    path = directory / STAGES[stage]
    if not path.is_file():
        raise ConfigError(
            f"benchmark script not found: {path}. `bump-profiles bench` runs from a source checkout "
            "(the benchmarks/ folder is not installed with the package); pass --dir to point at it"
        )
    return path


def load_script(directory: Path, stage: str):
    """Import ``benchmarks/<script>`` by path; its folder goes on ``sys.path`` so scripts can share helpers."""
    import importlib.util
    import sys

    path = script_path(directory, stage)
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cmd_bench(args: argparse.Namespace) -> int:
    from bump_profiles.errors import ConfigError

    directory = args.dir.resolve()
    if args.stage == "all":
        if args.args:
            raise ConfigError("bench all runs every stage with its defaults: pass arguments to one stage instead")
        stages = list(STAGES)
        for stage in stages:  # fail on a missing script before hours of measuring
            script_path(directory, stage)
    else:
        stages = [args.stage]
    for stage in stages:
        result = load_script(directory, stage).main(list(args.args))
        if isinstance(result, int) and result != 0:  # some scripts return their report instead of a code
            return result
    return 0
