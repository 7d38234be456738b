"""The training acceptance experiment: does BUMP training make profiles better for users
it never trained on, as judged by judges it was not trained with?

1. Profiles of the evaluation users (kept out of training) from the untrained policy (greedy).
2. GRPO training with the config's reward (bump_profiles.train.train).
3. Profiles of the same users from the trained policy (greedy).
4. Intrinsic bidirectional NDCG of every profile set in groups of B users (as in training) and over
   all evaluation users at once, under the training judge and under judges it was not trained with
   (the copy-masked MiniLM judge, which scores only the words a profile did not copy from a history,
   and a TF-IDF cosine judge), beside two references: the history
   truncated to each user's trained-profile token count, and (synthetic users) the true interests.
5. The reward over the first and last 20% of steps, and profile statistics (length, copy rates).

    python scripts/train_experiment.py --config configs/demo-cpu.yaml --out runs/experiment

Writes OUT/results.json (everything, with timings) and prints a markdown summary.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bump_profiles.config import load_config, to_dict
from bump_profiles.data import UserSplit
from bump_profiles.data.atomic import atomic_write_json
from bump_profiles.data.profiles import load_profiles
from bump_profiles.data.synthetic import interests_profile
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.judges import JudgeConfig, make_judge
from bump_profiles.profiles.baselines import budget_history
from bump_profiles.profiles.generate import generate_profiles
from bump_profiles.profiles.stats import profile_stats, words
from bump_profiles.rewards.bump import BumpReward
from bump_profiles.rewards.rows import RewardRow
from bump_profiles.train import train
from bump_profiles.train.data import prepare_data


class TfidfJudge:
    """Cosine of TF-IDF word vectors (IDF from a fixed corpus): a lexical judge with no training."""

    symmetric = True

    def __init__(self, corpus: Sequence[str]):
        df = Counter(w for text in corpus for w in set(words(text)))
        self.idf = {w: math.log((1 + len(corpus)) / (1 + n)) + 1 for w, n in df.items()}

    def _vec(self, text: str) -> dict[str, float]:
        tf = Counter(words(text))
        v = {w: c * self.idf.get(w, 0.0) for w, c in tf.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
        q = [self._vec(t) for t in queries]
        d = [self._vec(t) for t in documents]
        return np.array([[sum(x * b.get(w, 0.0) for w, x in a.items()) for b in d] for a in q], dtype=np.float64)


def intrinsic(judge, splits: list[UserSplit], profiles: dict[str, str], group: int) -> dict[str, float]:
    """Mean NDCG_A, NDCG_B and reward of the profiles, in fixed groups of ``group`` users and all at once."""
    rows = [RewardRow(s.user.id, [it.text for it in s.heldout], None, profiles[s.user.id]) for s in splits]
    scorer = BumpReward(judge, min_users=2)  # the default, leak-free calibration
    out = {}
    for name, chunks in (("groups", [rows[i : i + group] for i in range(0, len(rows), group)]), ("all", [rows])):
        # A group with fewer than two non-empty profiles has no negatives: it scores 0, as empty profiles do.
        parts = [scorer.score_rows(c) if sum(bool(r.profile.strip()) for r in c) >= 2
                 else ([0.0] * len(c), {"ndcg_a": 0.0, "ndcg_b": 0.0}) for c in chunks if len(c) >= 2]
        out[f"{name}_reward"] = statistics.fmean(r for rewards, _ in parts for r in rewards)
        out[f"{name}_ndcg_a"] = statistics.fmean(m["ndcg_a"] for _, m in parts)
        out[f"{name}_ndcg_b"] = statistics.fmean(m["ndcg_b"] for _, m in parts)
    return out


def make_profiles(model, tokenizer, splits, prompt, path: Path, max_new_tokens: int) -> dict[str, str]:
    backend = TransformersBackend(model, tokenizer, batch_size=8, name=str(path.stem))
    generate_profiles(splits, backend, prompt, path, batch_size=8, max_new_tokens=max_new_tokens)
    return load_profiles(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo-cpu.yaml")
    parser.add_argument("--out", default="runs/experiment")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true", help="resume the training run in OUT/run")
    args = parser.parse_args(argv)

    import torch

    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(args.config, [*args.overrides, f"output_dir={out / 'run'}"])
    timings: dict[str, float] = {}
    stale = ["profiles_after.jsonl"] if args.resume else ["profiles_before.jsonl", "profiles_after.jsonl"]
    for name in stale:  # generate_profiles skips users already written: never reuse another run's profiles
        (out / name).unlink(missing_ok=True)
    data = prepare_data(config)
    splits = sorted(data.eval, key=lambda s: s.user.id)
    prompt = config.prompt  # a ProfilePrompt
    tokenizer = load_tokenizer(config.policy.model)
    max_new = config.grpo.max_completion_length

    t = time.perf_counter()
    base = load_causal_lm(config.policy.model, dtype=config.policy.dtype)
    before = make_profiles(base, tokenizer, splits, prompt, out / "profiles_before.jsonl", max_new)
    timings["profiles_before_s"] = time.perf_counter() - t

    t = time.perf_counter()
    result = train(config, resume=args.resume, overwrite=not args.resume)
    timings["train_s"] = time.perf_counter() - t
    if result.interrupted:
        print("training was interrupted: rerun with --resume", file=sys.stderr)
        return 130

    t = time.perf_counter()
    if config.policy.lora:
        from peft import PeftModel

        trained = PeftModel.from_pretrained(base, result.final_dir).merge_and_unload()
    else:
        trained = load_causal_lm(result.final_dir, dtype=config.policy.dtype)
    after = make_profiles(trained, tokenizer, splits, prompt, out / "profiles_after.jsonl", max_new)
    timings["profiles_after_s"] = time.perf_counter() - t

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    histories = {s.user.id: [it.text for it in s.history] for s in splits}
    sets = {
        "untrained": before,
        "trained": after,
        "history_same_tokens": budget_history(splits, {u: max(count(p), 1) for u, p in after.items()}, count),
    }
    if all("interests" in s.user.extra for s in splits):
        sets["true_interests"] = {s.user.id: interests_profile(s.user) for s in splits}

    t = time.perf_counter()
    corpus = [text for s in splits for text in histories[s.user.id] + [it.text for it in s.heldout]]
    judges = {
        f"train:{config.judge.kind}": make_judge(config.judge),
        "copymask": make_judge(JudgeConfig(kind="copymask")).with_history(
            [text for s in splits for text in histories[s.user.id]]),
        "tfidf": TfidfJudge(corpus),
    }
    scores = {j: {name: intrinsic(judge, splits, profs, config.reward.users_per_call) for name, profs in sets.items()}
              for j, judge in judges.items()}
    timings["judging_s"] = time.perf_counter() - t
    stats = {name: profile_stats([profs[s.user.id] for s in splits], [histories[s.user.id] for s in splits],
                                 count_tokens=count, max_tokens=max_new) for name, profs in sets.items()}

    metrics = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rewards = [m["reward"] for m in metrics]
    fifth = max(1, len(rewards) // 5)
    curve = {
        "steps": len(rewards),
        "first_20pct_reward": statistics.fmean(rewards[:fifth]),
        "last_20pct_reward": statistics.fmean(rewards[-fifth:]),
        "first_20pct_ndcg_a": statistics.fmean(m["ndcg_a"] for m in metrics[:fifth]),
        "last_20pct_ndcg_a": statistics.fmean(m["ndcg_a"] for m in metrics[-fifth:]),
        "first_20pct_ndcg_b": statistics.fmean(m["ndcg_b"] for m in metrics[:fifth]),
        "last_20pct_ndcg_b": statistics.fmean(m["ndcg_b"] for m in metrics[-fifth:]),
        "mean_step_time_s": statistics.fmean(m["step_time"] for m in metrics),
        "rewards": rewards,
    }
    results = {
        "command": " ".join([sys.executable, *sys.argv]),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {platform.platform()}",
        "config": to_dict(config),
        "eval_users": [s.user.id for s in splits],
        "train_users": len(data.train),
        "reward_curve": curve,
        "intrinsic": scores,
        "profile_stats": stats,
        "examples": {name: {uid: profs[uid] for uid in list(profs)[:2]} for name, profs in sets.items()},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    atomic_write_json(out / "results.json", results)
    print(summary(results))
    return 0


def summary(results: dict) -> str:
    """The results as markdown tables."""
    c = results["reward_curve"]
    lines = [
        f"steps {c['steps']}, mean step {c['mean_step_time_s']:.1f} s; reward first 20% {c['first_20pct_reward']:.3f} "
        f"-> last 20% {c['last_20pct_reward']:.3f} (NDCG_A {c['first_20pct_ndcg_a']:.3f} -> {c['last_20pct_ndcg_a']:.3f}, "
        f"NDCG_B {c['first_20pct_ndcg_b']:.3f} -> {c['last_20pct_ndcg_b']:.3f})",
        "",
        "| judge | profiles | groups NDCG_A | groups NDCG_B | groups reward | all NDCG_A | all NDCG_B |",
        "|---|---|---|---|---|---|---|",
    ]
    for judge, per in results["intrinsic"].items():
        for name, s in per.items():
            lines.append(f"| {judge} | {name} | {s['groups_ndcg_a']:.3f} | {s['groups_ndcg_b']:.3f} | "
                         f"{s['groups_reward']:.3f} | {s['all_ndcg_a']:.3f} | {s['all_ndcg_b']:.3f} |")
    lines += ["", "| profiles | tokens | words | copy 4-gram | copy 8-gram | cut at limit |", "|---|---|---|---|---|---|"]
    for name, s in results["profile_stats"].items():
        lines.append(f"| {name} | {s['tokens_mean']:.1f} | {s['words_mean']:.1f} | {s['copy_rate_4']:.3f} | "
                     f"{s['copy_rate_8']:.3f} | {s['truncated_share']:.2f} |")
    lines += ["", f"timings (s): {results['timings_s']}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
