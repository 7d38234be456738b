"""Incremental update vs regeneration from scratch, on held-out users, under a judge not trained on.

For every user: the ``--k`` most recent interactions are held out (never shown to any generator);
the rest of the history is split into an older part and the ``--recent`` newest items. Three
profiles per user, all from the same generator:

- ``previous``: from scratch over the older part (what the store held before the new items came);
- ``updated``: the update prompt, reading ``previous`` plus the recent items only;
- ``regenerated``: from scratch over the whole history (older + recent), within ``--scratch-tokens``.

Scored by ranking all users of a set at once (calibration none) with the copy-masked MiniLM judge
(``copymask``: the generator is never trained on it, and text pasted from any history earns nothing).
Printed: NDCG_A / NDCG_B per profile set with 95% bootstrap intervals over users, the paired
difference updated - regenerated with its interval, and the prompt tokens the generator read per
update and per regeneration (their ratio). ``previous`` (stale) is the adversary row: if it scores as
well as ``updated``, the update added nothing measurable. Users: synthetic users from a seed no
config trains on (``--synthetic``), and the real HuffPost authors in ../shared (``--authors``;
skipped when absent).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_incremental.py --model smollm2-135m \
        --synthetic 48 --authors 48            # the full measurement (hours on a 2-core CPU)
    ... --synthetic 4 --authors 4 --max-new-tokens 32   # a quick check

Generations are kept batch by batch beside ``--out`` (``<out stem>-<set>/``): re-running the same
command resumes (a changed command is refused); delete that folder to start over.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
AUTHORS = REPO.parent / "shared" / "data" / "huffpost-authors" / "interactions.jsonl"
SETS = ("previous", "updated", "regenerated")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Incremental update vs regeneration from scratch (held-out users).")
    p.add_argument("--model", default="smollm2-135m", help="generator (bundled name, path or hub id)")
    p.add_argument("--backend", choices=["transformers", "vllm", "openai"], default="transformers")
    p.add_argument("--base-url")
    p.add_argument("--api-model")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--synthetic", type=int, default=48, help="held-out synthetic users (0: none)")
    p.add_argument("--synthetic-seed", type=int, default=9001, help="a seed no training config uses")
    p.add_argument("--synthetic-interactions", type=int, nargs=2, default=[30, 50])
    p.add_argument("--authors", type=int, default=48, help="HuffPost authors, sampled with --seed (0: none)")
    p.add_argument("--authors-min-items", type=int, default=0,
                   help="sample only authors with at least this many articles (updates matter for long histories)")
    p.add_argument("--k", type=int, default=2, help="held-out interactions per user")
    p.add_argument("--recent", type=int, default=4, help="new interactions per update")
    p.add_argument("--scratch-tokens", type=int, default=1500, help="history budget of a regeneration")
    p.add_argument("--update-tokens", type=int, default=400, help="budget of the new items in an update")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "incremental.json")
    return p.parse_args(argv)


def user_sets(args: argparse.Namespace) -> dict[str, list[Any]]:
    """Name -> users long enough for k held out, ``recent`` new and at least 2 older interactions."""
    from bump_profiles.data import load_users
    from bump_profiles.data.synthetic import make_users

    need = args.k + args.recent + 2
    sets: dict[str, list[Any]] = {}
    if args.synthetic:
        sets["synthetic"] = make_users(args.synthetic, seed=args.synthetic_seed,
                                       interactions=tuple(args.synthetic_interactions))
    if args.authors and AUTHORS.exists():
        least = max(need, args.authors_min_items)
        authors = sorted((u for u in load_users(AUTHORS, "jsonl") if len(u.interactions) >= least), key=lambda u: u.id)
        sets["huffpost-authors"] = random.Random(args.seed).sample(authors, min(args.authors, len(authors)))
    elif args.authors:
        print(f"skipping the news authors: {AUTHORS} is absent", file=sys.stderr)
    return {name: [u for u in users if len(u.interactions) >= need] for name, users in sets.items()}


def generate(backend: Any, messages: list[Any], args: argparse.Namespace, cache: Path,
             model: str | None = None) -> list[Any]:
    """Greedy completions, batch by batch; finished batches are kept in ``cache`` with a hash of each
    prompt, so a stopped run resumes, and a changed run (other users or budgets) is refused, not mixed.
    ``model`` (e.g. :func:`weights_digest` of a trained adapter) is kept too: the same prompts written by
    another model are refused, since a trained writer's first prompts are the untrained one's."""
    import hashlib
    from dataclasses import asdict

    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.backends import Completion

    keys = [hashlib.sha256(json.dumps(m, sort_keys=True).encode()).hexdigest()[:16] for m in messages]
    kept = json.loads(cache.read_text()) if cache.exists() else {"prompts": [], "completions": [], "model": model}
    if kept["prompts"] != keys[: len(kept["prompts"])]:
        raise SystemExit(f"{cache} holds generations of other prompts (another --seed, user count or budget): "
                         f"delete {cache.parent} to start over")
    if kept.get("model") != model:
        raise SystemExit(f"{cache} holds generations of another model ({kept.get('model')}, not {model}): "
                         f"delete {cache} to start over")
    out = [Completion(**c) for c in kept["completions"]]
    for b in range(len(out), len(messages), args.batch_size):
        out += backend.complete(messages[b : b + args.batch_size], max_new_tokens=args.max_new_tokens, temperature=0.0)
        atomic_write_json(cache, {"prompts": keys[: len(out)], "completions": [asdict(c) for c in out], "model": model})
    return out


def weights_digest(model_dir: str) -> str:
    """A short hash of a trained model folder's weight files (a LoRA adapter's, or a full model's), so kept
    generations name the weights that wrote them, not a path that a later run may reuse."""
    import hashlib

    files = sorted(p for p in Path(model_dir).glob("*.safetensors") if p.is_file())
    if not files:
        raise SystemExit(f"{model_dir}: no *.safetensors weights to fingerprint")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def per_user_ndcg(splits: list[Any], profiles: dict[str, str], judge: Any,
                  group_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NDCG_A and NDCG_B (mean over the user's held-out items) per user, in split order: all users ranked at
    once, or within consecutive groups of ``group_size`` (a slow judge's bound on the pairs it scores)."""
    from bump_profiles.evaluation.intrinsic import score_groups
    from bump_profiles.judges.ranking import multi_positive_ndcg

    a_all, b_all = [], []
    for g in score_groups(splits, profiles, judge, group_size, null=False):
        profile_to_item, item_to_profile = g.raw.calibrated("none")  # raw scores, as this benchmark was measured
        users, item_users = np.asarray(g.users), np.asarray(g.item_users)
        a_all += [multi_positive_ndcg(row, item_users == u) for row, u in zip(profile_to_item, users, strict=True)]
        b_items = np.array([multi_positive_ndcg(row, users == u) for row, u in zip(item_to_profile, item_users, strict=True)])
        b_all += [b_items[item_users == u].mean() for u in users]
    return np.array(a_all), np.array(b_all)


def bootstrap(values: np.ndarray, n: int, rng: np.random.Generator) -> tuple[float, float, float]:
    idx = rng.integers(0, len(values), size=(n, len(values)))
    means = values[idx].mean(axis=1)
    return float(values.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def run_set(name: str, users: list[Any], backend: Any, judge_base: Any, args: argparse.Namespace) -> dict[str, Any]:
    from bump_profiles.data import split_users
    from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt

    splits = split_users(users, args.k, strategy="recent").users
    count = backend.count_tokens if backend.count_tokens("probe") is not None else None
    scratch = ProfilePrompt(history_items=None, history_tokens=args.scratch_tokens)
    update = UpdatePrompt(history_items=None, history_tokens=args.update_tokens)
    cache = args.out.parent / f"{args.out.stem}-{name}"
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    prev = generate(backend, [scratch.messages(s.history[: -args.recent], count) for s in splits], args, cache / "previous.json")
    upd = generate(backend, [update.messages(p.text, s.history[-args.recent :], count) for s, p in zip(splits, prev, strict=True)],
                   args, cache / "updated.json")
    reg = generate(backend, [scratch.messages(s.history, count) for s in splits], args, cache / "regenerated.json")
    seconds = time.perf_counter() - t0
    completions = dict(zip(SETS, (prev, upd, reg), strict=True))
    judge = judge_base.with_history([it.text for s in splits for it in s.history])
    rng = np.random.default_rng(args.seed)
    rows: dict[str, Any] = {}
    per: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for set_name, comps in completions.items():
        profiles = {s.user.id: c.text for s, c in zip(splits, comps, strict=True)}
        a, b = per_user_ndcg(splits, profiles, judge)
        per[set_name] = (a, b)
        tokens = [c.prompt_tokens for c in comps if c.prompt_tokens is not None]
        rows[set_name] = {"ndcg_a": bootstrap(a, args.bootstrap, rng), "ndcg_b": bootstrap(b, args.bootstrap, rng),
                          "prompt_tokens_mean": float(np.mean(tokens)) if tokens else None,
                          "empty_profiles": sum(not c.text.strip() for c in comps)}
    diff = {d: bootstrap(per["updated"][i] - per["regenerated"][i], args.bootstrap, rng) for i, d in enumerate(("ndcg_a", "ndcg_b"))}
    within = {d: rows["regenerated"][d][1] <= rows["updated"][d][0] <= rows["regenerated"][d][2] for d in ("ndcg_a", "ndcg_b")}
    n_items = len(splits[0].heldout)
    n = len(splits)
    tok_u, tok_r = rows["updated"]["prompt_tokens_mean"], rows["regenerated"]["prompt_tokens_mean"]
    return {"users": n, "rows": rows, "updated_minus_regenerated": diff, "updated_within_regenerated_ci": within,
            "prompt_token_ratio": (tok_r / tok_u) if tok_u and tok_r else None,
            "random_ndcg_a": _random_a(n, n_items), "generation_seconds_this_invocation": round(seconds, 1)}


def _random_a(n_users: int, k: int) -> float:
    from bump_profiles.judges.ranking import random_ndcg

    return float(random_ndcg(n_users * k, k))


def table(name: str, r: dict[str, Any]) -> str:
    f = lambda t: f"{t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]"  # noqa: E731
    lines = [f"### {name} ({r['users']} users; random NDCG_A {r['random_ndcg_a']:.3f})", "",
             "| profiles | NDCG_A (95% CI) | NDCG_B (95% CI) | prompt tokens / user |", "|---|---|---|---|"]
    for s in SETS:
        row = r["rows"][s]
        tok = "n/a" if row["prompt_tokens_mean"] is None else f"{row['prompt_tokens_mean']:.0f}"
        lines.append(f"| {s} | {f(row['ndcg_a'])} | {f(row['ndcg_b'])} | {tok} |")
    d = r["updated_minus_regenerated"]
    ratio = "n/a" if r["prompt_token_ratio"] is None else f"{r['prompt_token_ratio']:.2f}x"
    lines += ["", f"updated - regenerated: NDCG_A {f(d['ndcg_a'])}, NDCG_B {f(d['ndcg_b'])}; "
              f"updated mean within regenerated's interval: A {r['updated_within_regenerated_ci']['ndcg_a']}, "
              f"B {r['updated_within_regenerated_ci']['ndcg_b']}; prompt tokens regenerated / updated: {ratio}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bump_profiles.commands.profile import _backend
    from bump_profiles.judges import JudgeConfig, make_judge

    backend = _backend(argparse.Namespace(
        backend=args.backend, model=args.model, base_url=args.base_url, api_model=args.api_model,
        api_key_env="OPENAI_API_KEY", timeout=60.0, max_retries=4, batch_size=args.batch_size, seed=args.seed,
        dtype=args.dtype, top_p=1.0))
    judge = make_judge(JudgeConfig(kind="copymask", calibration="none"))
    report: dict[str, Any] = {"generator": backend.name, "judge": "copymask (MiniLM), calibration none",
                              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                          "loadavg_1m": round(os.getloadavg()[0], 2)}, "sets": {}}
    for name, users in user_sets(args).items():
        if len(users) < 2:
            print(f"skipping {name}: fewer than 2 users long enough", file=sys.stderr)
            continue
        report["sets"][name] = run_set(name, users, backend, judge, args)
        print(table(name, report["sets"][name]) + "\n", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
