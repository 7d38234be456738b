"""Judge throughput on this machine, with the bundled models (SmolLM2-135M, MiniLM).

One batch as the reward sees it: P profiles against I held-out items (default 8 x 16; the items are
2 per profile's user). Measured, median of ``--repeats`` runs after a warm-up:

- pairs/second of ``yesno`` (efficient: shared prefix cache, length-sorted batches, last-position
  logits), of the naive one-pair-at-a-time forward on the same pairs (and the largest difference
  between their scores), with ``--breakdown`` of ``yesno`` batched without the prefix cache (where
  the speed-up comes from), of ``likelihood`` and of ``embedding``;
- tokens/second of each LLM judge over the tokens it actually runs, against the model's plain
  forward-pass ceiling measured in the same run: the same token sequences (each prefix once, each
  document continuation) as independent, length-sorted batches under the same budget, no cache,
  last-position logits only (every position's for the likelihood judge, which needs them).

Both wall and process-CPU seconds are recorded; targets are judged on CPU time, which other jobs on
a shared machine do not stretch.

Text: seeded synthetic users (see ``batch_texts``). Prints a table and writes JSON with a machine
description.

Run: ``.venv/bin/python benchmarks/bench_judges.py [--dtype bfloat16] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bump_profiles.judges.likelihood import LikelihoodJudge
    from bump_profiles.judges.yesno import YesNoJudge

REPO = Path(__file__).resolve().parents[1]
PROFILE_WORDS = 60
# prompts.YESNO_B with its two texts swapped: the profile leads, so its prefix is shared across items.
PROFILE_FIRST_B = (
    "User profile: {document}\n\nInteraction: {query}\n\n"
    "Does this profile describe the user who produced the interaction? Answer yes or no."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Judge throughput: pairs/s and tokens/s against the forward-pass ceiling.")
    p.add_argument("--profiles", type=int, default=8)
    p.add_argument("--items", type=int, default=16, help="held-out items, 2 per profile's user")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    p.add_argument("--naive-repeats", type=int, default=None,
                   help="timed runs of the two slow paths without a prefix cache (default: --repeats)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--batch-tokens", type=int, default=4096)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--directions", nargs="+", choices=["A", "B"], default=["A", "B"], help="yes/no directions to time")
    p.add_argument("--profile-first-b", action="store_true",
                   help="direction B with the profile before the interaction (PROFILE_FIRST_B), so the profile's prefix is shared")
    p.add_argument("--breakdown", action="store_true", help="also time yes/no batched without the prefix cache")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "judges.json")
    return p.parse_args(argv)


def batch_texts(n_profiles: int, n_items: int) -> tuple[list[str], list[str], str]:
    """Profile stand-ins and held-out items of ``n_profiles`` seeded synthetic users, and their source.

    A profile stand-in is the user's earlier interactions cut to 60 words (the generator's default
    length); the items are the user's last interactions (about 10 words each). Synthetic users because
    the LaMP samples hold too few users (LaMP_2_news: 5) for an 8-user batch.
    """
    from bump_profiles.data.synthetic import make_users

    per_user = max(1, n_items // n_profiles)
    profiles, items = [], []
    for user in make_users(n_profiles, seed=0):
        texts = [it.text for it in user.interactions]
        items += texts[-per_user:]
        profiles.append(" ".join(" ".join(texts[:-per_user]).split()[:PROFILE_WORDS]))
    return profiles, items[:n_items], "synthetic users (make_users seed 0)"


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any]:
    """Wall and process-CPU seconds of each run, and the last result (the models are warmed up once before).

    CPU seconds matter on a shared machine: other jobs stretch wall time, not the work done.
    """
    result = None
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu, result


def machine() -> dict[str, Any]:
    import torch
    import transformers

    cpuinfo = Path("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")), None) if cpuinfo.exists() else None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu": model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


def judge_token_seqs(judge: YesNoJudge, queries: list[str], documents: list[str], direction: str) -> list[list[int]]:
    """The sequences the efficient yes/no judge runs: each query's prefix once, each continuation."""
    ids = judge.pair_ids(queries, documents, direction)
    return ids.prefixes + [c for row in ids.continuations for c in row]


def likelihood_token_seqs(judge: LikelihoodJudge, queries: list[str], documents: list[str]) -> list[list[int]]:
    """The sequences the likelihood judge runs: the neutral and each query prefix once, each document after each."""
    from bump_profiles.judges.lm import encode

    seqs = []
    for parts in [judge.parts(None)] + [judge.parts(q) for q in queries]:
        seqs.append(encode(judge.tokenizer, parts.prefix, special=True))
        seqs += [encode(judge.tokenizer, parts.gap + d + parts.tail) for d in documents]
    return seqs


def plain_forward(model: Any, seqs: list[list[int]], pad_id: int, budget: int, *, all_logits: bool = False) -> None:
    """The ceiling: independent length-sorted batches, no cache; last-position logits, or every position's
    (the likelihood judge needs the latter: its ceiling includes the vocabulary projection of every token)."""
    import torch

    from bump_profiles.judges.lm import run_batch, token_batches

    with torch.inference_mode():
        for batch in token_batches([len(s) for s in seqs], budget):
            run_batch(model, [seqs[i] for i in batch], pad_id, pad_left=not all_logits, logits_to_keep=0 if all_logits else 1)


def yesno_batched_full_prompts(judge: YesNoJudge, queries: list[str], documents: list[str], direction: str) -> None:
    """The yes/no judge without the prefix cache: full prompts, length-sorted batches, last-position logits."""
    import torch

    from bump_profiles.judges.lm import run_batch, token_batches

    ids = judge.pair_ids(queries, documents, direction)
    seqs = [p + c for p, row in zip(ids.prefixes, ids.continuations, strict=True) for c in row]
    with torch.inference_mode():
        for batch in token_batches([len(s) for s in seqs], judge.batch_tokens):
            judge.answer_scores(run_batch(judge.model, [seqs[i] for i in batch], judge.pad_id)[:, -1])


def row(name: str, wall: list[float], cpu: list[float], pairs: int, tokens: int | None = None) -> dict[str, Any]:
    median, median_cpu = statistics.median(wall), statistics.median(cpu)
    out = {"name": name, "seconds": [round(s, 4) for s in wall], "median_s": round(median, 4),
           "cpu_seconds": [round(s, 4) for s in cpu], "median_cpu_s": round(median_cpu, 4), "pairs": pairs,
           "pairs_per_s": round(pairs / median, 2), "pairs_per_cpu_s": round(pairs / median_cpu, 2)}
    if tokens is not None:
        out.update(tokens=tokens, tokens_per_s=round(tokens / median, 1), tokens_per_cpu_s=round(tokens / median_cpu, 1))
    return out


def ratio(rows: list[dict[str, Any]], num: str, den: str, key: str) -> dict[str, float]:
    """``num / den`` of a field between two named rows, by wall time and by CPU time."""
    by_name = {r["name"]: r for r in rows}
    return {clock: round(by_name[num][k] / by_name[den][k], 3) for clock, k in (("wall", key), ("cpu", key.replace("_s", "_cpu_s")))}


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer
    from bump_profiles.judges import JudgeConfig, make_judge

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    naive_repeats = args.naive_repeats or args.repeats
    profiles, items, source = batch_texts(args.profiles, args.items)
    pairs = len(profiles) * len(items)
    info = machine()
    tok = load_tokenizer("smollm2-135m")
    model = load_causal_lm("smollm2-135m", dtype=args.dtype).eval()
    config = {"dtype": args.dtype, "batch_tokens": args.batch_tokens}
    yesno = make_judge(JudgeConfig(kind="yesno", **config), model=model, tokenizer=tok)
    if args.profile_first_b:
        yesno.templates = {**yesno.templates, "B": PROFILE_FIRST_B}
    likelihood = make_judge(JudgeConfig(kind="likelihood", **config), model=model, tokenizer=tok)
    embedding = make_judge(JudgeConfig(kind="embedding"))
    rows: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for judge in (yesno, likelihood, embedding):  # warm-up: first calls allocate and load kernels
        judge.score(profiles[:1], items[:2], "A")

    def measure(name: str, fn: Callable[[], Any], tokens: int | None = None, repeats: int = args.repeats) -> Any:
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        wall, cpu, result = timed(fn, repeats)
        rows.append(row(name, wall, cpu, pairs, tokens))
        return result

    for direction, (q, d) in {"A": (profiles, items), "B": (items, profiles)}.items():
        if direction not in args.directions:
            continue
        seqs = judge_token_seqs(yesno, q, d, direction)
        ids = yesno.pair_ids(q, d, direction)
        full_tokens = sum(len(p) + len(c) for p, row in zip(ids.prefixes, ids.continuations, strict=True) for c in row)
        names = {k: f"yesno {direction} {k}" for k in ("ceiling", "efficient", "batched", "naive")}
        names["ceiling"] = f"ceiling: plain forward, yesno {direction} tokens"
        names["batched"] = f"yesno {direction} batched, no prefix cache"
        names["naive"] = f"yesno {direction} naive per pair"
        measure(names["ceiling"], lambda s=seqs: plain_forward(model, s, yesno.pad_id, args.batch_tokens), tokens=sum(map(len, seqs)))
        fast = measure(names["efficient"], lambda q=q, d=d, r=direction: yesno.score(q, d, r), tokens=sum(map(len, seqs)))
        if args.breakdown:
            measure(names["batched"], lambda q=q, d=d, r=direction: yesno_batched_full_prompts(yesno, q, d, r),
                    tokens=full_tokens, repeats=naive_repeats)
        naive = measure(names["naive"], lambda q=q, d=d, r=direction: yesno.score_naive(q, d, r), tokens=full_tokens, repeats=naive_repeats)
        checks[f"yesno_{direction}_max_abs_diff_efficient_vs_naive"] = float(np.abs(fast - naive).max())
        checks[f"yesno_{direction}_speedup_vs_naive"] = ratio(rows, names["efficient"], names["naive"], "pairs_per_s")
        checks[f"yesno_{direction}_tokens_per_s_vs_ceiling"] = ratio(rows, names["efficient"], names["ceiling"], "tokens_per_s")

    seqs = likelihood_token_seqs(likelihood, profiles, items)
    ceiling, judged = "ceiling: plain forward, likelihood tokens, all logits", "likelihood (serves A and B)"
    measure(ceiling, lambda: plain_forward(model, seqs, likelihood.pad_id, args.batch_tokens, all_logits=True), tokens=sum(map(len, seqs)))
    measure(judged, lambda: likelihood.score(profiles, items, "A"), tokens=sum(map(len, seqs)))
    checks["likelihood_tokens_per_s_vs_ceiling"] = ratio(rows, judged, ceiling, "tokens_per_s")
    measure("embedding minilm (serves A and B)", lambda: embedding.score(profiles, items, "A"))

    targets = {  # judged on CPU time: on a shared machine wall time measures the neighbours too
        "yesno_efficient_at_least_3x_naive": all(checks[f"yesno_{r}_speedup_vs_naive"]["cpu"] >= 3 for r in args.directions),
        "llm_judges_within_2x_of_ceiling": all(v["cpu"] >= 0.5 for k, v in checks.items() if k.endswith("vs_ceiling")),
    }
    report = {
        "benchmark": "judges",
        "command": "benchmarks/bench_judges.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info,
        "setup": {"profiles": len(profiles), "items": len(items), "pairs": pairs, "text": source, "judge_model": "smollm2-135m",
                  "embedding_model": "minilm", "repeats": args.repeats, "threads": torch.get_num_threads(),
                  "yesno_b_template": PROFILE_FIRST_B if args.profile_first_b else "prompts.YESNO_B", "naive_repeats": naive_repeats, **config,
                  "profile_words": PROFILE_WORDS, "mean_item_words": round(statistics.mean(len(t.split()) for t in items), 1)},
        "results": rows,
        "checks": checks,
        "targets_met": targets,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    print(f"\n{len(profiles)} profiles x {len(items)} items = {pairs} pairs; {source}; SmolLM2-135M {args.dtype}; "
          f"{info['cpu_count']} CPUs, torch {info['torch']}")
    print(f"{'measurement':54} {'wall s':>8} {'CPU s':>8} {'pairs/s':>8} {'tok/s':>8} {'tok/CPU-s':>9}")
    for r in rows:
        print(f"{r['name']:54} {r['median_s']:8.2f} {r['median_cpu_s']:8.2f} {r['pairs_per_s']:8.2f} "
              f"{r.get('tokens_per_s', float('nan')):8.1f} {r.get('tokens_per_cpu_s', float('nan')):9.1f}")
    for key, value in {**checks, **targets}.items():
        print(f"{key}: {value}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
