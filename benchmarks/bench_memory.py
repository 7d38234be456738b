"""Peak memory (resident set size) of one GRPO training step and of the demo, each in its own process.

Each measurement runs a fresh ``python`` child and reads its peak RSS (``ru_maxrss``) from the
resource usage that ``os.wait4`` returns for that child alone, so one run's peak never leaks into
the next. Runs (``--runs``):

- ``imports``: Python importing torch, transformers, TRL, PEFT and sentence-transformers (the floor);
- ``step``: ``bump-profiles train`` on ``configs/demo-cpu.yaml`` for one step (SmolLM2-135M policy
  with LoRA in float32, the MiniLM judge, B=4 x G=4 rollouts), model loading and final save included;
- ``step-yesno``: the same with the yes/no judge (a second SmolLM2 copy as the judge);
- ``demo``: ``bump-profiles demo --steps N`` (training, zero-shot and trained profiles, intrinsic
  and downstream evaluation, report).

Prints a table and writes JSON with a machine description and the load average before each run.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--runs imports step demo] [--demo-steps 2]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RUNS = ("imports", "step", "step-yesno", "demo")
IMPORTS = "import torch, transformers, trl, peft, sentence_transformers"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=Path(__file__).name, description="Peak RSS of one GRPO step and of the demo, each in a fresh process.")
    p.add_argument("--runs", nargs="+", choices=RUNS, default=["imports", "step", "demo"])
    p.add_argument("--config", type=Path, default=REPO / "configs" / "demo-cpu.yaml", help="training config of the step runs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override of the step runs (repeatable)")
    p.add_argument("--demo-steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS of the children (torch's CPU threads; default: torch's own choice)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "memory.json")
    return p.parse_args(argv)


def commands(args: argparse.Namespace, tmp: Path) -> dict[str, list[str]]:
    """The child command line of each requested run."""
    cli = [sys.executable, "-m", "bump_profiles.cli"]

    def step(kind: str) -> list[str]:
        sets = [f"judge.kind={kind}", "grpo.max_steps=1", "grpo.save_steps=2", f"output_dir={tmp / ('step-' + kind)}", *args.overrides]
        return [*cli, "train", "--config", str(args.config), "--overwrite", *[a for s in sets for a in ("--set", s)]]

    every = {
        "imports": [sys.executable, "-c", IMPORTS],
        "step": step("embedding"),
        "step-yesno": step("yesno"),
        "demo": [*cli, "demo", "--steps", str(args.demo_steps), "--out", str(tmp / "demo"), "--overwrite"],
    }
    return {name: every[name] for name in args.runs}


def peak_rss(command: list[str], log_path: Path, threads: int | None = None) -> dict[str, Any]:
    """Run ``command`` to completion; its peak RSS (from ``os.wait4``), wall time and exit status."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    load = list(os.getloadavg())
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
    out = {"peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "seconds": round(time.perf_counter() - start, 1),
           "exit_code": child.returncode, "load_average_before": load, "command": " ".join(command[1:])}
    if child.returncode != 0:
        out["log_tail"] = log_path.read_text(errors="replace")[-2000:]
    return out


def main(argv: list[str] | None = None) -> int:
    from bench_judges import machine

    from bump_profiles.data.atomic import atomic_write_json

    args = parse_args(argv)
    info = machine()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for name, command in commands(args, Path(tmp)).items():
            print(f"measuring {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
            results[name] = peak_rss(command, Path(tmp) / f"{name}.log", args.threads)
            if results[name]["exit_code"] != 0:
                print(f"{name} failed (exit {results[name]['exit_code']}):\n{results[name]['log_tail']}", file=sys.stderr)
    report = {
        "benchmark": "memory",
        "command": "benchmarks/bench_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {**info, "load_average_at_end": list(os.getloadavg())},
        "child_threads": args.threads,
        "results": results,
    }
    atomic_write_json(args.out, report)

    print(f"\npeak resident memory, each run in a fresh process; {info['cpu_count']} CPUs, torch {info['torch']}")
    print(f"{'run':11} {'peak RSS MiB':>12} {'seconds':>8} {'exit':>4}")
    for name, r in results.items():
        print(f"{name:11} {r['peak_rss_mib']:>12.0f} {r['seconds']:>8.1f} {r['exit_code']:>4}")
    print(f"wrote {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
