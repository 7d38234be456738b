"""The likelihood judge ranking all evaluation authors at once: today's path beside the packed one.

What the news-authors evaluation pays per profile set (``intrinsic.score_groups`` with one group):
``scoring.raw_scores(judge, 32 profiles, 64 held-out items)``, i.e. every profile against every
item, the null profile against the items and every profile against the null item. Two paths of
``LikelihoodJudge.mean_logprobs`` run it:

- ``old``: the path this benchmark's commit replaced, kept here verbatim in substance: documents in
  right-padded, length-sorted batches under ``batch_tokens``, each batch row on its own copy of the
  prefix's KV cache (``DynamicCache`` concatenates the expanded prefix per row);
- ``new``: the library's path, documents packed after one copy of the prefix (4-D mask).

Data: ../shared/data/huffpost-authors, split as configs/authors-cpu.yaml (seed 0, 32 evaluation
authors, k=2, 100 most recent articles). Trained profiles cannot be generated here in minutes, so
the generated sets are **stand-ins of the same token lengths**: the author's history cut to
``STANDIN_TOKENS`` tokens (zero-shot 40, BUMP 30, task-reward 35, history@budget 30 = BUMP's);
keywords are the real keyword profiles (20 words) and full history the real 1,024-token rendering.

Scopes: ``subset`` = the first ``--subset`` profiles of each set against all 64 items, both paths
(alternating which runs first), scores compared; ``full`` = all 32 profiles, the new path only (the
old one took about 90 minutes for the six sets). Each measurement records wall and process-CPU
seconds, the load average, and where the time went (prefix runs, the neutral term, the documents).
Results are written after every measurement; re-running skips the ones already in ``--out``. ``prefix
runs`` is also counted inside the part that made the run.

Run: ``PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/bench_likelihood.py --dtype float32 --threads 2``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "huffpost-authors" / "interactions.jsonl"
SETS = ("full history", "zero-shot", "keywords", "BUMP", "task-reward", "history@budget")  # the costliest first
STANDIN_TOKENS = {"zero-shot": 40, "BUMP": 30, "task-reward": 35, "history@budget": 30}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Likelihood judge all at once: old (prefix copy per row) vs packed path.")
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="bfloat16", help="eval.judge_dtype of authors-cpu.yaml")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--subset", type=int, default=4, help="profiles per set timed on both paths")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--scopes", nargs="+", choices=["subset", "full"], default=["subset", "full"])
    p.add_argument("--batch-tokens", type=int, default=4096, help="JudgeConfig.batch_tokens (the default)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "likelihood.json"))
    return p.parse_args(argv)


def load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]] if Path("/proc/loadavg").exists() else []


def machine(threads: int) -> dict[str, Any]:
    import torch
    import transformers

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "torch": torch.__version__, "transformers": transformers.__version__, "torch_threads": threads,
            "platform": platform.platform()}


def matmul_gflops(dtype: Any, seconds: float = 1.0) -> float:
    """A [256, 576] x [576, 1536] matmul (SmolLM2's MLP shape) in ``dtype``: what this CPU does per second."""
    import torch

    a, w = torch.randn(256, 576, dtype=dtype), torch.randn(1536, 576, dtype=dtype)
    torch.nn.functional.linear(a, w)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.nn.functional.linear(a, w)
        n += 1
    return n * 2 * 256 * 576 * 1536 / (time.perf_counter() - start) / 1e9


# --- inputs --------------------------------------------------------------------------------------


def profile_sets(path: str, count: Callable[[str], int]) -> tuple[dict[str, list[str]], list[str]]:
    """The six sets (32 profiles each, evaluation authors in split order) and the 64 held-out items."""
    from bump_profiles.authors.data import load_authors, split_authors
    from bump_profiles.authors.keywords import keyword_profiles
    from bump_profiles.data.render import render_history

    split = split_authors(load_authors(path), eval_authors=32, k=2, seed=0, cap=100)
    evals = split.eval
    sets = {name: [render_history(s.history, max_tokens=n, count_tokens=count, bullet="") for s in evals]
            for name, n in STANDIN_TOKENS.items()}
    keywords = keyword_profiles(evals, split.train, 20)
    sets["keywords"] = [keywords[s.user.id] for s in evals]
    sets["full history"] = [render_history(s.history, max_tokens=1024, count_tokens=count, bullet="") for s in evals]
    return sets, [it.text for s in evals for it in s.heldout]


# --- the replaced path ---------------------------------------------------------------------------


def prefix_batches(lengths: Sequence[int], budget: int, fixed: int) -> list[list[int]]:
    """The old grouping: longest first, ``rows * (prefix + longest) <= budget``."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * (fixed + lengths[batches[-1][0]]) <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def old_mean_logprobs(judge: Any, parts: Any, documents: Sequence[str], run_prefix: Callable) -> np.ndarray:
    """``LikelihoodJudge.mean_logprobs`` before packing: each batch row continues its own copy of the prefix."""
    import torch
    from transformers import DynamicCache

    from bump_profiles.judges.likelihood import _mean_logprob
    from bump_profiles.judges.lm import encode, pad_id

    prefix_ids = encode(judge.tokenizer, parts.prefix, special=True)
    docs = [encode(judge.tokenizer, parts.gap + d + parts.tail) for d in documents]
    out = np.zeros(len(docs), dtype=np.float64)
    with torch.inference_mode():
        prefix = run_prefix(judge.model, prefix_ids)
        first = torch.log_softmax(prefix.last_logits.float(), dim=-1)
        for batch in prefix_batches([len(d) for d in docs], judge.batch_tokens, prefix.length):
            seqs = [docs[j] for j in batch]
            rows, width = len(seqs), max(len(s) for s in seqs)
            ids = torch.full((rows, width), pad_id(judge.tokenizer), dtype=torch.long)
            mask = torch.zeros((rows, width), dtype=torch.long)
            for i, seq in enumerate(seqs):
                ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[i, : len(seq)] = 1
            position_ids = prefix.length + (mask.cumsum(-1) - 1).clamp(min=0)
            mask = torch.cat([torch.ones((rows, prefix.length), dtype=mask.dtype), mask], dim=1)
            cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in prefix.layers],
                                 config=judge.model.config)
            logits = judge.model(input_ids=ids, attention_mask=mask, position_ids=position_ids, past_key_values=cache,
                                 use_cache=True, logits_to_keep=0).logits
            for row, (j, seq) in enumerate(zip(batch, seqs, strict=True)):
                out[j] = _mean_logprob(first, logits[row, : len(seq) - 1], seq)
    return out


# --- timing --------------------------------------------------------------------------------------


class Clock:
    """Wall and CPU seconds per part; a prefix run is also counted apart (``prefix runs``)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}

    @contextmanager
    def part(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            spent = self.parts.setdefault(name, [0.0, 0.0, 0])
            spent[0] += time.perf_counter() - wall
            spent[1] += time.process_time() - cpu
            spent[2] += 1


# What one ``raw_scores`` call runs, by ``mean_logprobs`` call: the parts that do not grow with the
# number of profiles (the neutral term, the null profile against the items) and the ones that do.
FIXED = ("neutral term", "null profile x items")
PER_PROFILE = ("profiles x items", "profiles x null item")


def measure(judge: Any, path: str, profiles: list[str], items: list[str]) -> tuple[dict[str, Any], Any]:
    """``raw_scores`` of ``profiles`` x ``items`` on ``path``, its time split by kind of call."""
    import bump_profiles.judges.likelihood as likelihood
    from bump_profiles.rewards.scoring import NULL_TEXT, raw_scores

    clock = Clock()
    original_prefix = likelihood.run_prefix

    def run_prefix(model: Any, ids: Sequence[int]) -> Any:
        with clock.part("prefix runs"):
            return original_prefix(model, ids)

    neutral, null = judge.parts(None), judge.parts(NULL_TEXT)
    new_mean = type(judge).mean_logprobs

    def mean_logprobs(parts: Any, documents: Sequence[str]) -> np.ndarray:
        kind = ("neutral term" if parts == neutral else "null profile x items" if parts == null
                else "profiles x items" if list(documents) == items else "profiles x null item")
        with clock.part(kind):
            if path == "old":
                return old_mean_logprobs(judge, parts, documents, run_prefix)
            return new_mean(judge, parts, documents)

    likelihood.run_prefix = run_prefix
    judge.mean_logprobs = mean_logprobs
    try:
        before = load()
        with clock.part("total"):
            scores = raw_scores(judge, profiles, items, null=True)
    finally:
        likelihood.run_prefix = original_prefix
        del judge.mean_logprobs
    parts = {k: {"wall_s": v[0], "cpu_s": v[1], "calls": v[2]} for k, v in clock.parts.items() if k != "total"}
    total = clock.parts["total"]
    result = {"wall_s": total[0], "cpu_s": total[1], "profiles": len(profiles), "items": len(items),
              "breakdown": parts, "load_before": before, "load_after": load()}
    for unit in ("wall_s", "cpu_s"):  # the same call at 32 profiles: fixed parts once, the others x 32 / n
        result[f"projected_32_{unit}"] = (sum(parts[k][unit] for k in FIXED if k in parts)
                                          + 32 / len(profiles) * sum(parts[k][unit] for k in PER_PROFILE if k in parts))
    return result, scores


def token_counts(judge: Any, profiles: list[str], items: list[str]) -> dict[str, int]:
    from bump_profiles.judges.lm import encode

    parts = [judge.parts(p) for p in profiles]
    doc = sum(len(encode(judge.tokenizer, parts[0].gap + d + parts[0].tail)) for d in items)
    return {"prefix_tokens": sum(len(encode(judge.tokenizer, p.prefix, special=True)) for p in parts),
            "document_tokens": doc * len(profiles)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.models import load_tokenizer
    from bump_profiles.judges import JudgeConfig, make_judge

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if result.get("args", {}).get("dtype", args.dtype) != args.dtype:
        raise SystemExit(f"{out} holds a {result['args']['dtype']} run: pass another --out")
    result.update({"benchmark": "likelihood", "args": vars(args), "machine": machine(args.threads),
                   "standins": {"generated sets": STANDIN_TOKENS, "note": "zero-shot, BUMP, task-reward and history@budget are "
                                "the author's history cut to these token counts, not generated profiles"}})
    result.setdefault("matmul_gflops", {d: matmul_gflops(getattr(torch, d)) for d in ("float32", "bfloat16")})
    runs: dict[str, Any] = result.setdefault("runs", {})

    tok = load_tokenizer("smollm2-135m")
    sets, items = profile_sets(args.data, lambda t: len(tok(t, add_special_tokens=False)["input_ids"]))
    judge = make_judge(JudgeConfig(kind="likelihood", dtype=args.dtype, batch_tokens=args.batch_tokens))

    def save() -> None:
        atomic_write_json(out, result)

    for scope in args.scopes:
        for k, name in enumerate(args.sets):
            profiles = sets[name][: args.subset] if scope == "subset" else sets[name]
            paths = ["new"] if scope == "full" else (["old", "new"] if k % 2 == 0 else ["new", "old"])
            scores = {}
            for path in paths:
                key = f"{scope}/{name}/{path}"
                if key in runs:
                    continue
                print(f"{key}: {len(profiles)} profiles x {len(items)} items ... load {load()}", flush=True)
                run, raw = measure(judge, path, profiles, items)
                run.update(token_counts(judge, profiles, items))
                runs[key] = run
                scores[path] = raw.profile_to_item
                print(f"  {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU (32 profiles: {run['projected_32_cpu_s']:.0f} s CPU "
                      "projected); CPU s by part: " + ", ".join(f"{p} {v['cpu_s']:.1f}" for p, v in run["breakdown"].items()), flush=True)
                save()
            if len(scores) == 2:
                runs[f"{scope}/{name}/max_abs_diff"] = float(np.abs(scores["old"] - scores["new"]).max())
                save()
    result["summary"] = summary(runs, args.sets)
    save()
    print(json.dumps(result["summary"], indent=1))
    return 0


def summary(runs: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Per set and for the sets measured on both paths: the subset ratio and the 32-profile totals
    (measured in full where the new path ran in full, else projected from the subset's parts)."""
    out: dict[str, Any] = {"per_set": {}}
    both = [n for n in names if f"subset/{n}/old" in runs and f"subset/{n}/new" in runs]
    for unit in ("wall_s", "cpu_s"):
        for n in both:
            old, new, full = runs[f"subset/{n}/old"], runs[f"subset/{n}/new"], runs.get(f"full/{n}/new")
            out["per_set"].setdefault(n, {})[unit] = {
                "subset_old": old[unit], "subset_new": new[unit], "subset_ratio": old[unit] / new[unit],
                "all_32_old_projected": old[f"projected_32_{unit}"], "all_32_new_projected": new[f"projected_32_{unit}"],
                "all_32_new_measured": full[unit] if full else None}
        if both:
            per = [out["per_set"][n][unit] for n in both]
            out[f"sets_on_both_paths_{unit}"] = {
                "sets": both,
                "median_subset_ratio": float(np.median([p["subset_ratio"] for p in per])),
                "all_32_old_projected": sum(p["all_32_old_projected"] for p in per),
                "all_32_new_projected": sum(p["all_32_new_projected"] for p in per)}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
