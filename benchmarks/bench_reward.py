"""Cost of one BUMP reward call as the batch grows: B users x G rollouts against B x k held-out items.

For each judge and each B in ``--users`` (default 4, 8, 16, 32; G=4, k=2 as in the demo config), one
:class:`bump_profiles.rewards.bump.BumpReward` call is timed end to end, median of ``--repeats`` runs (``--llm-repeats``,
default 1, for the LLM judges) after one warm-up call per judge, and split into:

- **judge**: time inside ``judge.score`` (embedding: MiniLM encodes B*G + B*k texts once, linear in
  B; LLM judges run a forward pass per pair, B*G x B*k pairs a direction, quadratic in B; ``yesno``
  is asymmetric and scores both directions, ``likelihood`` and ``embedding`` one matrix);
- **ranking**: the rest of the call (calibration, the bidirectional NDCG loops, length metrics).

The growth from the smallest to the largest B is reported as an exponent: time ~ B^x. The LLM judges
run only up to ``--llm-max-users`` (default 8): their pairs grow as B^2 * G * k and a B=32 call would
take many minutes on a 2-core CPU.

Text: the demo's synthetic users (``make_users``), the k most recent interactions held out; a
rollout stand-in is ``--profile-words`` words (the demo prompt's budget) drawn from the user's
history, a different draw per rollout. Both wall and process-CPU seconds are recorded (CPU time is
what other jobs on a shared machine do not stretch). Prints a table and writes JSON with a machine
description.

Run: ``.venv/bin/python benchmarks/bench_reward.py [--judges embedding yesno likelihood] [--users 4 8 16 32]``
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from bump_profiles.judges import Judge

REPO = Path(__file__).resolve().parents[1]
JUDGE_KINDS = ("embedding", "likelihood", "yesno")


class TimedJudge:
    """A judge wrapper that adds up the wall and CPU seconds spent in ``score`` (and counts the calls)."""

    def __init__(self, judge: Judge):
        self.judge = judge
        self.symmetric = judge.symmetric
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0

    def reset(self) -> None:
        self.seconds, self.cpu_seconds, self.calls = 0.0, 0.0, 0

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return self.judge.score(queries, documents, direction)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - start_cpu
            self.calls += 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=Path(__file__).name, description="One BumpReward call for growing B: where the time goes, per judge.")
    p.add_argument("--judges", nargs="+", choices=JUDGE_KINDS, default=list(JUDGE_KINDS))
    p.add_argument("--users", nargs="+", type=int, default=[4, 8, 16, 32], help="B values (users per reward call)")
    p.add_argument("--generations", type=int, default=4, help="G: rollouts per user")
    p.add_argument("--k", type=int, default=2, help="held-out items per user")
    p.add_argument("--llm-max-users", type=int, default=8, help="largest B run with the LLM judges (pairs grow as B^2)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per (judge, B); the median is reported")
    p.add_argument("--llm-repeats", type=int, default=1,
                   help="timed calls per B for the LLM judges (one takes tens of seconds on a 2-core CPU)")
    p.add_argument("--profile-words", type=int, default=40)
    p.add_argument("--judge-model", default=None, help="model of the LLM judges (default: bundled SmolLM2-135M)")
    p.add_argument("--embedding-model", default=None, help="model of the embedding judge (default: bundled MiniLM)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="LLM judge dtype")
    p.add_argument("--batch-tokens", type=int, default=4096)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "reward.json")
    args = p.parse_args(argv)
    if min(args.users) < 2 or args.generations < 1 or args.k < 1 or min(args.repeats, args.llm_repeats) < 1:
        p.error("need B >= 2, G >= 1, k >= 1 and at least one repeat")
    return args


def reward_batch(n_users: int, generations: int, k: int, words: int, seed: int) -> dict[str, list]:
    """TRL-style columns of one reward call: ``n_users`` synthetic users, ``generations`` rollouts each."""
    from bump_profiles.data import split_users
    from bump_profiles.data.synthetic import make_users
    from bump_profiles.errors import ConfigError

    split = split_users(make_users(n_users, seed=seed), k, strategy="recent")
    rng = random.Random(seed)
    batch: dict[str, list] = {"prompts": [], "completions": [], "user_id": [], "heldout": []}
    for s in split.users:
        history = [it.text for it in s.history]
        for _ in range(generations):
            draw = " ".join(rng.sample(history, len(history))).split()[:words]
            batch["prompts"].append([{"role": "user", "content": "(prompt)"}])
            batch["completions"].append([{"role": "assistant", "content": " ".join(draw)}])
            batch["user_id"].append(s.user.id)
            batch["heldout"].append([it.text for it in s.heldout])
    if len(split.users) != n_users:
        raise ConfigError(f"--k {k}: only {len(split.users)} of {n_users} synthetic users have more than k interactions")
    return batch


def build_judges(args: argparse.Namespace) -> dict[str, Any]:
    """The judges to time; the two LLM judges share one model."""
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer
    from bump_profiles.judges import JudgeConfig, make_judge

    judges = {}
    if "embedding" in args.judges:
        judges["embedding"] = make_judge(JudgeConfig(kind="embedding", model=args.embedding_model))
    llm = [kind for kind in args.judges if kind != "embedding"]
    if llm:
        name = args.judge_model or "smollm2-135m"
        model, tok = load_causal_lm(name, dtype=args.dtype).eval(), load_tokenizer(name)
        for kind in llm:
            config = JudgeConfig(kind=kind, model=name, dtype=args.dtype, batch_tokens=args.batch_tokens)
            judges[kind] = make_judge(config, model=model, tokenizer=tok)
    return judges


def time_call(reward: Any, judge: TimedJudge, batch: dict[str, list], repeats: int) -> dict[str, Any]:
    """Median wall/CPU seconds of the whole call and of its judge part, over ``repeats`` calls."""
    wall, cpu, judge_wall, judge_cpu = [], [], [], []
    for _ in range(repeats):
        judge.reset()
        start, start_cpu = time.perf_counter(), time.process_time()
        rewards = reward(**batch)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        judge_wall.append(judge.seconds)
        judge_cpu.append(judge.cpu_seconds)
    total, judge_s = statistics.median(wall), statistics.median(judge_wall)
    return {
        "seconds": [round(s, 4) for s in wall],
        "median_s": round(total, 4),
        "median_cpu_s": round(statistics.median(cpu), 4),
        "judge_s": round(judge_s, 4),
        "judge_cpu_s": round(statistics.median(judge_cpu), 4),
        "ranking_s": round(total - judge_s, 4),
        "judge_share": round(judge_s / total, 4),
        "judge_calls": judge.calls,
        "mean_reward": round(float(np.mean(rewards)), 4),
    }


def growth(rows: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    """Exponent x of time ~ B^x between the smallest and largest B of one judge, and the plain ratio."""
    if len(rows) < 2:
        return None
    lo, hi = rows[0], rows[-1]
    ratio = hi[key] / lo[key]
    return {"from_users": lo["users"], "to_users": hi["users"], "ratio": round(ratio, 2),
            "exponent": round(math.log(ratio) / math.log(hi["users"] / lo["users"]), 2)}


def main(argv: list[str] | None = None) -> int:
    from bench_judges import machine

    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.rewards.bump import BumpReward

    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    info = machine()
    judges = build_judges(args)
    rows: list[dict[str, Any]] = []
    for kind, judge in judges.items():
        timed = TimedJudge(judge)
        sizes = sorted(b for b in args.users if kind == "embedding" or b <= args.llm_max_users)
        repeats = args.repeats if kind == "embedding" else args.llm_repeats
        for i, b in enumerate(sizes):
            batch = reward_batch(b, args.generations, args.k, args.profile_words, args.seed)
            reward = BumpReward(timed, min_users=b)
            if i == 0:
                reward(**batch)  # warm-up, once per judge: first calls allocate and load kernels
            print(f"timing {kind} B={b} ...", file=sys.stderr, flush=True)
            rollouts, items = b * args.generations, b * args.k
            rows.append({"judge": kind, "users": b, "rollouts": rollouts, "items": items,
                         "pairs_per_direction": rollouts * items, "directions_scored": 1 if judge.symmetric else 2,
                         **time_call(reward, timed, batch, repeats)})

    by_judge = {kind: [r for r in rows if r["judge"] == kind] for kind in judges}
    growths = {kind: {"total": growth(rs, "median_s"), "judge": growth(rs, "judge_s"), "ranking": growth(rs, "ranking_s")}
               for kind, rs in by_judge.items()}
    from bump_profiles.judges.calibration import DEFAULT_CALIBRATION

    report = {
        "benchmark": "reward",
        "command": "benchmarks/bench_reward.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {**info, "load_average_at_end": list(os.getloadavg())},
        "setup": {"generations": args.generations, "k": args.k, "profile_words": args.profile_words,
                  "text": "synthetic users (make_users), k most recent held out", "judge_model": args.judge_model or "smollm2-135m",
                  "embedding_model": args.embedding_model or "minilm", "dtype": args.dtype, "batch_tokens": args.batch_tokens,
                  "repeats": args.repeats, "llm_repeats": args.llm_repeats, "llm_max_users": args.llm_max_users,
                  "calibration": DEFAULT_CALIBRATION},
        "results": rows,
        "growth": growths,
    }
    atomic_write_json(args.out, report)

    print(f"\nBumpReward call, G={args.generations}, k={args.k}; judges {', '.join(judges)}; LLM judges {args.dtype}, "
          f"B <= {args.llm_max_users}; {info['cpu_count']} CPUs, torch {info['torch']}, {info['torch_threads']} threads")
    print(f"{'judge':11} {'B':>3} {'pairs/dir':>9} {'dirs':>4} {'total s':>9} {'CPU s':>9} {'judge s':>9} {'ranking s':>9} {'judge %':>7}")
    for r in rows:
        print(f"{r['judge']:11} {r['users']:>3} {r['pairs_per_direction']:>9} {r['directions_scored']:>4} {r['median_s']:>9.3f} "
              f"{r['median_cpu_s']:>9.3f} {r['judge_s']:>9.3f} {r['ranking_s']:>9.4f} {100 * r['judge_share']:>6.1f}%")
    for kind, g in growths.items():
        if g["total"]:
            print(f"{kind}: B {g['total']['from_users']} -> {g['total']['to_users']}: total x{g['total']['ratio']} "
                  f"(~B^{g['total']['exponent']}), judge ~B^{g['judge']['exponent']}, ranking ~B^{g['ranking']['exponent']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
