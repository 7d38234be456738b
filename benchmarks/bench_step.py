"""Where one GRPO step goes on this machine: generation, reward, forward/backward, per judge.

Runs :func:`bump_profiles.train.train` on ``configs/demo-cpu.yaml`` (SmolLM2-135M with LoRA, B=4
synthetic users x G=4 rollouts of up to 64 tokens, micro-batches of 4) for ``--steps`` steps
(default 2: the first pays one-off costs, the last is reported) once per judge, and times TRL's
phases by wrapping ``GRPOTrainer`` methods for the duration of the run:

- **generation**: ``_generate`` (prompt tokenization and ``model.generate`` of all B*G rollouts);
- **reward**: ``_calculate_rewards`` (the BUMP reward call), of which **judge** is the time inside
  ``judge.score``;
- **scoring rest**: the rest of ``_generate_and_score_completions`` (padding, advantages, logging);
- **forward/backward**: ``training_step`` minus the generation it triggers (the loss of each
  micro-batch and its backward pass);
- **optimizer and rest**: the step (``on_step_begin`` to ``on_step_end``) minus all of the above.

The reward's share of the step is compared with the targets (at most 10% with the
embedding judge, at most 50% with ``yesno``) by wall time and by process-CPU time (which other jobs
on a shared machine do not stretch; use ``--threads 1`` there). Model loading and the final save
are outside every step. Prints a table and writes JSON with a machine description.

Run: ``.venv/bin/python benchmarks/bench_step.py [--judges embedding yesno] [--steps 2] [--set KEY=VALUE]``
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench_reward import TimedJudge

REPO = Path(__file__).resolve().parents[1]
TARGET_SHARE = {"embedding": 0.10, "yesno": 0.50}
# GRPOTrainer methods timed, and the phase each one's time is added to.
TIMED_METHODS = {
    "_generate": "generation",
    "_calculate_rewards": "reward",
    "_generate_and_score_completions": "generate_and_score",
    "training_step": "training_step",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=Path(__file__).name, description="One GRPO step on this machine: generation, reward and forward/backward time per judge.")
    p.add_argument("--config", type=Path, default=REPO / "configs" / "demo-cpu.yaml")
    p.add_argument("--judges", nargs="+", choices=["embedding", "likelihood", "yesno"], default=["embedding", "yesno"])
    p.add_argument("--steps", type=int, default=2, help="GRPO steps per judge; the last one is reported")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run, e.g. judge.dtype=bfloat16 (repeatable)")
    p.add_argument("--compare", nargs="+", default=None, metavar="KEY=VALUE",
                   help="side by side: also run a baseline with these overrides (e.g. today's float32 settings), "
                        "same seed and users, and print both reward curves with a parity check")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "step.json")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    return args


class PhaseTimer:
    """Wall and process-CPU seconds per (step, phase), from wrapped ``GRPOTrainer`` methods and a step callback.

    Use as a context manager: the methods are wrapped on entry and restored on exit. A phase is
    charged to the step that is running (``state.global_step + 1``).
    """

    def __init__(self, judge: TimedJudge):
        self.judge = judge  # a TimedJudge: its seconds are read and reset at each step's end
        self.seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.cpu_seconds: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.logs: dict[int, dict[str, Any]] = {}
        self._originals: dict[str, Any] = {}

    def __enter__(self) -> PhaseTimer:
        from trl import GRPOTrainer

        for method, phase in TIMED_METHODS.items():
            original = getattr(GRPOTrainer, method)
            self._originals[method] = original
            setattr(GRPOTrainer, method, self._wrap(original, phase))
        return self

    def __exit__(self, *exc: object) -> None:
        from trl import GRPOTrainer

        for method, original in self._originals.items():
            setattr(GRPOTrainer, method, original)

    def _wrap(self, fn: Any, phase: str) -> Any:
        @functools.wraps(fn)
        def timed(trainer: Any, *args: Any, **kwargs: Any) -> Any:
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                return fn(trainer, *args, **kwargs)
            finally:
                self.seconds[trainer.state.global_step + 1][phase] += time.perf_counter() - start
                self.cpu_seconds[trainer.state.global_step + 1][phase] += time.process_time() - start_cpu

        return timed

    def callback(self) -> Any:
        from transformers import TrainerCallback

        timer = self

        class StepClock(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                self.start, self.start_cpu = time.perf_counter(), time.process_time()
                timer.judge.reset()

            def on_step_end(self, args, state, control, **kwargs):
                # global_step was already advanced: this is the step that just ran.
                timer.seconds[state.global_step]["step"] = time.perf_counter() - self.start
                timer.cpu_seconds[state.global_step]["step"] = time.process_time() - self.start_cpu
                timer.seconds[state.global_step]["judge"] = timer.judge.seconds
                timer.cpu_seconds[state.global_step]["judge"] = timer.judge.cpu_seconds

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "reward" in logs:
                    timer.logs[state.global_step] = dict(logs)

        return StepClock()

    def breakdown(self, step: int) -> dict[str, float]:
        """The step's phases, adding up to its time: wall seconds (``*_s``) and process-CPU seconds (``*_cpu_s``)."""
        out: dict[str, Any] = {}
        for clock, times in (("s", self.seconds[step]), ("cpu_s", self.cpu_seconds[step])):
            parts = {
                "step": times["step"],
                "generation": times["generation"],
                "reward": times["reward"],
                "judge": times["judge"],
                "scoring_rest": times["generate_and_score"] - times["generation"] - times["reward"],
                "forward_backward": times["training_step"] - times["generate_and_score"],
                "optimizer_and_rest": times["step"] - times["training_step"],
            }
            out.update({f"{name}_{clock}": round(v, 3) for name, v in parts.items()})
        out["reward_share"] = round(self.seconds[step]["reward"] / self.seconds[step]["step"], 4)
        out["reward_share_cpu"] = round(self.cpu_seconds[step]["reward"] / self.cpu_seconds[step]["step"], 4)
        log = self.logs.get(step, {})
        out["completion_tokens"] = log.get("completions/mean_length")
        out["clipped_ratio"] = log.get("completions/clipped_ratio")
        out["mean_reward"] = log.get("reward")
        return out


def run_judge(kind: str, args: argparse.Namespace, run_dir: Path, extra: list[str] | None = None,
              label: str | None = None) -> dict[str, Any]:
    """Train ``args.steps`` steps with ``kind``'s judge (plus ``extra`` overrides); the breakdown of every step."""
    from bench_reward import TimedJudge

    from bump_profiles.config import load_config
    from bump_profiles.judges import make_judge
    from bump_profiles.train import train
    from bump_profiles.train.trl_config import use_bf16

    overrides = [f"judge.kind={kind}", f"grpo.max_steps={args.steps}", f"grpo.save_steps={args.steps + 1}",
                 "grpo.logging_steps=1", f"output_dir={run_dir}", *args.overrides, *(extra or [])]
    config = load_config(args.config, overrides)
    bf16, why = use_bf16(config, cuda=False)
    judge = TimedJudge(make_judge(config.judge))
    timer = PhaseTimer(judge)
    with timer:
        train(config, overwrite=True, judge=judge, callbacks=[timer.callback()], progress=False)
    steps = [{"step": step, **timer.breakdown(step)} for step in range(1, args.steps + 1)]
    return {"judge": label or kind, "overrides": extra or [], "bf16_autocast": bf16, "bf16_why": why, "judge_model": config.judge.model_name, "judge_dtype": config.judge.dtype, "steps": steps,
            "reported": steps[-1], "target_share": TARGET_SHARE.get(kind),
            "setup": {"users_per_call": config.reward.users_per_call, "num_generations": config.grpo.num_generations,
                      "max_completion_length": config.grpo.max_completion_length,
                      "micro_batch_size": config.grpo.micro_batch_size, "lora": config.policy.lora,
                      "policy": config.policy.model, "policy_dtype": config.policy.dtype, "bf16_autocast": bf16,
                      "history_tokens": config.prompt.history_tokens, "history_items": config.prompt.history_items,
                      "gradient_checkpointing": config.grpo.gradient_checkpointing}}


def compare(baseline: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """Speed-up and reward-curve parity of two runs over the same steps (same seed, same users).

    Speed: the median step time from step 2 on (step 1 pays one-off costs), wall and CPU. Parity:
    no reward is NaN, and the two runs' mean rewards differ by less than twice the standard error of
    that difference (per-step rewards as the samples: each is a mean over B*G rollouts)."""
    import math
    import statistics

    def median_of(run: dict[str, Any], key: str) -> float:
        values = [s[key] for s in run["steps"][1:]] or [run["steps"][0][key]]
        return statistics.median(values)

    curves = {name: [s["mean_reward"] for s in run["steps"]] for name, run in (("baseline", baseline), ("default", default))}
    finite = all(r is not None and math.isfinite(r) for c in curves.values() for r in c)
    out: dict[str, Any] = {"baseline": baseline["judge"], "default": default["judge"], "reward_curves": curves,
                           "finite": finite}
    for clock in ("s", "cpu_s"):
        out[f"baseline_step_{clock}"] = round(median_of(baseline, f"step_{clock}"), 2)
        out[f"default_step_{clock}"] = round(median_of(default, f"step_{clock}"), 2)
        out[f"speedup_{clock}"] = round(out[f"baseline_step_{clock}"] / out[f"default_step_{clock}"], 2)
    for phase in ("generation", "reward", "forward_backward"):
        out[f"baseline_{phase}_s"] = round(median_of(baseline, f"{phase}_s"), 2)
        out[f"default_{phase}_s"] = round(median_of(default, f"{phase}_s"), 2)
    if finite and len(curves["baseline"]) > 1:
        a, b = curves["baseline"], curves["default"]
        diff = statistics.fmean(b) - statistics.fmean(a)
        se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
        out.update(mean_reward_baseline=round(statistics.fmean(a), 4), mean_reward_default=round(statistics.fmean(b), 4),
                   mean_reward_diff=round(diff, 4), diff_standard_error=round(se, 4), within_noise=abs(diff) < 2 * se)
    else:
        out["within_noise"] = False
    out["parity"] = finite and out["within_noise"]
    out["speedup_at_least_2x"] = out["speedup_s"] >= 2.0
    return out


def print_comparison(c: dict[str, Any]) -> None:
    print(f"\n{c['baseline']} vs {c['default']}: median step from step 2 on, wall {c['baseline_step_s']:.1f} s -> "
          f"{c['default_step_s']:.1f} s ({c['speedup_s']:.2f}x), CPU {c['baseline_step_cpu_s']:.1f} s -> "
          f"{c['default_step_cpu_s']:.1f} s ({c['speedup_cpu_s']:.2f}x)")
    for phase in ("generation", "reward", "forward_backward"):
        print(f"  {phase:17} {c[f'baseline_{phase}_s']:7.2f} s -> {c[f'default_{phase}_s']:7.2f} s")
    print(f"  {'step':>4} {'reward baseline':>16} {'reward default':>15}")
    for i, (a, b) in enumerate(zip(c["reward_curves"]["baseline"], c["reward_curves"]["default"], strict=True), 1):
        print(f"  {i:>4} {a if a is not None else float('nan'):>16.4f} {b if b is not None else float('nan'):>15.4f}")
    if "mean_reward_diff" in c:
        print(f"  mean reward {c['mean_reward_baseline']:.4f} vs {c['mean_reward_default']:.4f}: difference "
              f"{c['mean_reward_diff']:+.4f}, 2 x standard error {2 * c['diff_standard_error']:.4f}")
    print(f"  parity (no NaN, mean reward within noise): {c['parity']}   speed-up >= 2x: {c['speedup_at_least_2x']}")


def main(argv: list[str] | None = None) -> int:
    from bench_judges import machine

    from bump_profiles.data.atomic import atomic_write_json

    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    info = machine()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-step-") as tmp:
        for kind in args.judges:
            if args.compare:
                print(f"timing {args.steps} GRPO step(s), {kind} judge, baseline {' '.join(args.compare)} ...",
                      file=sys.stderr, flush=True)
                runs.append(run_judge(kind, args, Path(tmp) / f"{kind}-baseline", args.compare, f"{kind} baseline"))
            print(f"timing {args.steps} GRPO step(s) with the {kind} judge ...", file=sys.stderr, flush=True)
            runs.append(run_judge(kind, args, Path(tmp) / kind, label=f"{kind} default" if args.compare else kind))
    comparisons = [compare(runs[i], runs[i + 1]) for i in range(0, len(runs), 2)] if args.compare else []
    targets = {f"reward_share_{r['judge'].split()[0]}_at_most_{r['target_share']:.0%}": {
                   "wall": r["reported"]["reward_share"] <= r["target_share"],
                   "cpu": r["reported"]["reward_share_cpu"] <= r["target_share"]}
               for r in runs if r["target_share"] is not None}
    report = {
        "benchmark": "step",
        "command": "benchmarks/bench_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
        "overrides": args.overrides,
        "machine": {**info, "load_average_at_end": list(os.getloadavg())},
        "runs": runs,
        "comparisons": comparisons,
        "targets_met": targets,
    }
    atomic_write_json(args.out, report)

    setup = runs[0]["setup"]
    print(f"\nGRPO step, {args.config.name}: {setup['policy']} {setup['policy_dtype']}, B={setup['users_per_call']} x "
          f"G={setup['num_generations']}, <= {setup['max_completion_length']} tokens, micro-batch {setup['micro_batch_size']}; "
          f"{info['cpu_count']} CPUs, torch {info['torch']}, {info['torch_threads']} threads (wall seconds unless noted; last step reported)")
    print(f"{'judge':11} {'step':>4} {'total':>7} {'generate':>9} {'reward':>7} {'(judge)':>8} {'score rest':>10} "
          f"{'fwd/bwd':>8} {'optim+rest':>10} {'reward %':>8} {'CPU s':>7} {'reward % CPU':>12} {'tokens':>6}")
    for r in runs:
        for s in r["steps"]:
            print(f"{r['judge']:11} {s['step']:>4} {s['step_s']:>7.1f} {s['generation_s']:>9.1f} {s['reward_s']:>7.2f} "
                  f"{s['judge_s']:>8.2f} {s['scoring_rest_s']:>10.2f} {s['forward_backward_s']:>8.1f} "
                  f"{s['optimizer_and_rest_s']:>10.2f} {100 * s['reward_share']:>7.1f}% {s['step_cpu_s']:>7.1f} "
                  f"{100 * s['reward_share_cpu']:>11.1f}% {s['completion_tokens'] or 0:>6.1f}")
    for key, met in targets.items():
        print(f"{key}: {met}")
    for c in comparisons:
        print_comparison(c)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
