"""Profile generation throughput: users/second batched against one user at a time (transformers).

The same users, prompts and ``max_new_tokens`` go through :func:`bump_profiles.profiles.generate.generate_profiles`
twice, end to end (prompt building, tokenization, generation, the flushed JSONL writes): once with
``--batch-size`` users per batch (length-sorted, left-padded) and once one user at a time. To say
where the time goes, the prompt forward pass alone (prefill, no generation) is timed the same two
ways; the rest of each run is decoding and overhead. The process CPU time of each run is recorded
beside the wall time: on a machine shared with other jobs, wall time follows their load while CPU
time mostly does not, so the CPU-time ratio is the steadier comparison there.

Users: real LaMP_1 users from ``../shared/data/lamp-samples`` when present (long abstracts, so the
prompt fills the history budget), else synthetic users. Prints a table and writes JSON with a
machine description.

Run: ``.venv/bin/python benchmarks/bench_generate.py [--users 8] [--max-new-tokens 96] [--threads 1] [--dtype bfloat16]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LAMP_1 = REPO.parent / "shared" / "data" / "lamp-samples" / "LaMP_1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Profile generation: users/s batched against one at a time.")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--synthetic", action="store_true", help="synthetic users (short prompts) even when LaMP samples exist")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "generate.json")
    return p.parse_args(argv)


def bench_users(n: int, synthetic: bool) -> tuple[list, str]:
    """``n`` users to profile, and where they came from."""
    if LAMP_1.exists() and not synthetic:
        from bump_profiles.data import load_lamp_questions

        users = []
        for name in ("dev", "train", "test"):
            users += load_lamp_questions(LAMP_1 / f"{name}_questions.json").users
        if len(users) >= n:
            return users[:n], "LaMP_1 samples"
    from bump_profiles.data.synthetic import make_users

    return make_users(n, seed=0), "synthetic users"


def prefill_seconds(model: Any, tokenizer: Any, prompts: list[str], batch_size: int) -> float:
    """Wall time of the prompts' forward pass alone, in length-sorted left-padded batches."""
    import torch

    ordered = sorted(prompts, key=lambda p: len(tokenizer(p)["input_ids"]))
    start = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(ordered), batch_size):
            enc = tokenizer(ordered[b : b + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            model(**enc, logits_to_keep=1)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.backends import TransformersBackend
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer
    from bump_profiles.profiles.generate import generate_profiles
    from bump_profiles.profiles.prompts import ProfilePrompt

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from bench_judges import machine  # benchmarks/ is on sys.path (script dir, or bump-profiles bench)

    info = machine()
    users, source = bench_users(args.users, args.synthetic)
    model = load_causal_lm(args.model, dtype=args.dtype)
    tokenizer = load_tokenizer(args.model)
    prompt = ProfilePrompt()
    warm = TransformersBackend(model, tokenizer, name=args.model)
    warm.complete([prompt.messages(users[0].interactions, warm.count_tokens)], max_new_tokens=4, temperature=0.0)
    prompts = [tokenizer.apply_chat_template(prompt.messages(u.interactions, warm.count_tokens), tokenize=False,
                                             add_generation_prompt=True) for u in users]

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, batch_size in (("one at a time", 1), (f"batch {args.batch_size}", args.batch_size)):
            backend = TransformersBackend(model, tokenizer, batch_size=batch_size, name=args.model)
            out = Path(tmp) / f"profiles-{batch_size}.jsonl"
            cpu_start = time.process_time()
            summary = generate_profiles(users, backend, prompt, out, batch_size=batch_size,
                                        max_new_tokens=args.max_new_tokens, progress=False)
            cpu_seconds = time.process_time() - cpu_start
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            runs[label] = {
                "batch_size": batch_size,
                "seconds": round(summary.seconds, 2),
                "users_per_second": round(summary.users_per_second, 4),
                "cpu_seconds": round(cpu_seconds, 3),
                "prefill_seconds": round(prefill_seconds(model, tokenizer, prompts, batch_size), 2),
                "mean_prompt_tokens": round(sum(r["prompt_tokens"] for r in rows) / len(rows), 1),
                "mean_profile_tokens": round(sum(r["profile_tokens"] for r in rows) / len(rows), 1),
                "hit_limit": summary.hit_limit,
            }
    single, batched = runs["one at a time"], runs[f"batch {args.batch_size}"]
    speedup = batched["users_per_second"] / single["users_per_second"]
    cpu_speedup = single["cpu_seconds"] / batched["cpu_seconds"] if batched["cpu_seconds"] > 0 else None

    print(f"profile generation, {args.model} ({args.dtype}), {len(users)} {source}, max_new_tokens={args.max_new_tokens}")
    print(f"{'mode':<14} {'seconds':>8} {'users/s':>8} {'cpu s':>7} {'prefill s':>10} {'prompt tok':>11} {'profile tok':>12} {'hit limit':>10}")
    for label, r in runs.items():
        print(f"{label:<14} {r['seconds']:>8.1f} {r['users_per_second']:>8.3f} {r['cpu_seconds']:>7.0f} {r['prefill_seconds']:>10.1f} "
              f"{r['mean_prompt_tokens']:>11.0f} {r['mean_profile_tokens']:>12.1f} {r['hit_limit']:>10}")
    cpu_text = f"{cpu_speedup:.2f}x" if cpu_speedup is not None else "n/a"
    print(f"batched / one at a time: {speedup:.2f}x in wall time, {cpu_text} in CPU time (target >= 4x)")

    result = {
        "benchmark": "generate",
        "model": args.model,
        "dtype": args.dtype,
        "users": len(users),
        "source": source,
        "max_new_tokens": args.max_new_tokens,
        "runs": runs,
        "speedup": round(speedup, 2),
        "cpu_time_speedup": None if cpu_speedup is None else round(cpu_speedup, 2),
        "target_speedup": 4.0,
        "machine": {**info, "load_average_at_end": list(os.getloadavg())},
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
