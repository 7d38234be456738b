"""Alignment of reward options with held-out judges, on TRAINING authors, before any training (docs/alignment.md).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_alignment.py --out runs/alignment
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_alignment.py --out runs/alignment --stages likelihood

The authors are split as configs/authors-cpu.yaml splits them (seed 0, 32 evaluation authors left out
entirely, 100 most recent articles each); the first 32 training authors (in the split's seeded order)
with at least 40 articles are laid out as [read | 16 reward horizon | 2 near | 6 far]
(bump_profiles.rewards.alignment). The untrained bundled SmolLM2-135M samples 8 profiles per author at
temperature 1.0 from the read window (the benchmark's prompt) plus one greedy profile; every reward
option scores the same candidates. Per option, near and far: pick vs a random candidate vs greedy vs
history@budget (the read window cut to the pick's tokens) under each held-out judge, ranking all 32
authors at once, with paired bootstrap intervals over authors; and the within-author Spearman between
the reward and each held-out judge over the 8 candidates.

Stages (each resumable; outputs under --out): ``generate`` (candidates JSONL per read window, one
line per author as it is done), ``score`` (lexical and embedding judges; writes
benchmarks/results/alignment.json), ``likelihood`` (the likelihood judge, far horizon, first 12 authors), ``table``
(the markdown tables of docs/alignment.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

DATA = "../shared/data/huffpost-authors/interactions.jsonl"
AUTHORS_CPU = "configs/authors-cpu.yaml"
N_AUTHORS, MIN_ARTICLES, N_SAMPLES, TEMPERATURE, MAX_NEW_TOKENS = 32, 40, 8, 1.0, 64
# What the generator reads: the benchmark's prompt (12 items, 240 tokens), a longer window, and chunked
# reading (a greedy note on each of 4 chunks of 12 items / 240 tokens, then the N samples merge the notes).
READ_WINDOWS = {"w12": {"history_items": 12, "history_tokens": 240}, "w48": {"history_items": 48, "history_tokens": 960},
                "c4x12": {"history_items": 12, "history_tokens": 240, "chunks": 4}}

log = logging.getLogger("bench_alignment")


def benchmark_prompt(window: str):
    """configs/authors-cpu.yaml's prompt with the read window's item and token budgets."""
    import yaml

    from bump_profiles.profiles.prompts import ProfilePrompt

    p = yaml.safe_load(Path(AUTHORS_CPU).read_text())["train"]["prompt"]
    budgets = {k: v for k, v in READ_WINDOWS[window].items() if k != "chunks"}
    return ProfilePrompt(template=p["template"], max_words=p["max_words"], **budgets)


def window_prompts(out: Path, backend, layouts, window: str) -> dict[str, list[dict[str, str]]]:
    """Each author's prompt for the window; a chunked window's notes are written first (greedy, kept in
    ``notes-<window>.chunks.jsonl`` one chunk a line, so a stopped run resumes) and its prompt merges them."""
    from bump_profiles.profiles.chunked import ChunkedPrompt, write_notes

    prompt = benchmark_prompt(window)
    chunks = READ_WINDOWS[window].get("chunks")
    if chunks is None:
        return {a.user_id: prompt.messages(a.read, count_tokens=backend.count_tokens) for a in layouts}
    chunked = ChunkedPrompt(prompt, chunks=chunks, per_chunk=prompt.history_items)
    write_notes(backend, chunked, {a.user_id: a.read for a in layouts}, max_new_tokens=MAX_NEW_TOKENS,
                path=out / f"notes-{window}.chunks.jsonl", slice_size=chunks, progress=True)  # a stop loses one author's
    return {a.user_id: chunked.messages(a.read) for a in layouts}


def authors(data: str):
    """(layouts of the 32 picked training authors, every training author's items, the evaluation author ids)."""
    from bump_profiles.authors.data import load_authors, split_authors
    from bump_profiles.rewards.alignment import layout

    split = split_authors(load_authors(data), eval_authors=32, k=2, seed=0, cap=100)
    train = [s.user for s in split.train]
    eligible = [u for u in train if len(u.interactions) >= MIN_ARTICLES]
    picked = [layout(u.id, u.interactions) for u in eligible[:N_AUTHORS]]
    return picked, train, [s.user.id for s in split.eval]


def stage_generate(out: Path, layouts, windows: list[str], greedy_only: bool = False) -> None:
    from bump_profiles.engines.backends import TransformersBackend
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer
    from bump_profiles.rewards.bestof import load_candidates, sample_all

    tok = load_tokenizer("smollm2-135m")
    backend = TransformersBackend(load_causal_lm("smollm2-135m"), tok, batch_size=N_SAMPLES, name="smollm2-135m")
    for window in windows:
        t0 = time.perf_counter()
        prompts = window_prompts(out, backend, layouts, window)
        done0 = len(load_candidates(out / f"candidates-{window}.jsonl"))
        if not greedy_only:
            sample_all(backend, prompts, out / f"candidates-{window}.jsonl", n=N_SAMPLES, seed=0, temperature=TEMPERATURE,
                       max_new_tokens=MAX_NEW_TOKENS, progress=lambda u, w=window: log.info("%s: sampled %s", w, u))
        greedy = load_candidates(out / f"greedy-{window}.jsonl")
        sample_all(backend, {u: m for u, m in prompts.items() if u not in greedy}, out / f"greedy-{window}.jsonl", n=1,
                   seed=0, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS,
                   progress=lambda u, w=window: log.info("%s: greedy %s", w, u))
        seconds = time.perf_counter() - t0
        timing = {"window": window, "authors_sampled_now": len(layouts) - done0, "seconds": round(seconds, 1),
                  "load_1min": os.getloadavg()[0], "threads": os.environ.get("OMP_NUM_THREADS")}
        with (out / "timings.jsonl").open("a") as handle:
            handle.write(json.dumps(timing) + "\n")
        log.info("generate %s: %s", window, timing)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/alignment", help="working directory (resumable)")
    p.add_argument("--data", default=DATA)
    p.add_argument("--stages", default="generate,score", help="generate, score, likelihood, table (comma-separated)")
    p.add_argument("--windows", default="w12,w48", help=f"read windows: {', '.join(READ_WINDOWS)}; score: NAME:N scores "
                   "the first N authors only (w12:12 beside a w48 generated with --limit 12)")
    p.add_argument("--greedy-only", action="store_true", help="generate: the greedy profiles only (beside a sampling run)")
    p.add_argument("--limit", type=int, help="generate: only the first N authors (a longer read window costs more)")
    p.add_argument("--likelihood-authors", type=int, default=12, help="likelihood stage: the first N authors")
    p.add_argument("--likelihood-options", help="likelihood stage: the reward options scored, '|'-separated (default all)")
    p.add_argument("--results", default="benchmarks/results/alignment.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    layouts, train, eval_ids = authors(args.data)
    stages = args.stages.split(",")
    windows = args.windows.split(",")
    if "generate" in stages:
        stage_generate(out, layouts[: args.limit], windows, args.greedy_only)
    if "score" in stages:
        from alignment_scoring import run_scoring  # benchmarks/alignment_scoring.py

        run_scoring(out, layouts, train, eval_ids, windows, Path(args.results))
    if "table" in stages:
        from alignment_scoring import markdown

        print(markdown(Path(args.results)))
    if "likelihood" in stages:
        from alignment_scoring import run_likelihood

        options = args.likelihood_options.split("|") if args.likelihood_options else None
        run_likelihood(out, layouts, train, eval_ids, windows, Path(args.results), args.likelihood_authors, options)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
