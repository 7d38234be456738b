"""Which judge does not reward copying? Plain MiniLM, the copy-masked judge, and a projected-out one.

A judge for evaluation must score true-interest profiles high, must not let pasted history
win by copying, and must not penalise a summary in the profile's own words. Three candidates:

- ``plain``: the embedding judge (MiniLM cosine), the reference;
- ``copymask``: :class:`bump_profiles.judges.copymask.CopyMaskedJudge` over the plain judge (words in
  spans of 4+ words found in any evaluated user's history are removed before scoring);
- ``project``: the profile embedding with its own user's mean history embedding projected out, then
  cosine (the "residual" candidate of the issue; computed here only, as it was not chosen).

Profile sets, per user. Synthetic users (truth known): true interests, a paraphrase of them, the history
cut to 32 and 64 tokens, the full history, a generic sentence, another user's true interests (shuffled
control), true interests followed by pasted history@32, and history@64 with every 4th word dropped (an
edited copy). Real LaMP_1 users (12, k=2 recent): 8 most recent titles pasted, a keyword summary (12
most distinctive history words, not verbatim spans), history@32/64, full history, generic, another
user's keywords. Tokens are counted with MiniLM's tokenizer. Every set is ranked all users at once,
with and without double-centring, beside the random expectation.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_honest_judge.py [--users 40] [--seed 1]``
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bump_profiles.judges.calibration import CALIBRATIONS as CALIBRATION_MODES

REPO = Path(__file__).resolve().parents[1]
LAMP_1 = REPO.parent / "shared" / "data" / "lamp-samples" / "LaMP_1"
CALIBRATIONS = tuple(CALIBRATION_MODES)  # the one registry, bump_profiles.judges.calibration.CALIBRATIONS
GENERIC = "This user likes many things."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Plain vs copy-masked vs projected embedding judge on copy-prone profiles.")
    p.add_argument("--users", type=int, default=40, help="synthetic users (default 40)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "honest_judge.json")
    return p.parse_args(argv)


def derangement(n: int, seed: int) -> list[int]:
    """A permutation with no fixed point: user i gets user perm[i]'s profile."""
    rng = random.Random(seed)
    perm = list(range(n))
    while any(i == j for i, j in enumerate(perm)):
        rng.shuffle(perm)
    return perm


def drop_every(text: str, k: int) -> str:
    """Every k-th word removed: a copy edited just enough to break k-word spans."""
    return " ".join(w for i, w in enumerate(text.split(), 1) if i % k)


def keywords(splits: list[Any], n: int = 12) -> dict[str, str]:
    """Each user's most distinctive history words (count x idf over users): a summary with no copied span."""
    from bump_profiles.profiles.stats import words

    counts = {s.user.id: Counter(w for it in s.history for w in words(it.text) if len(w) > 3 and w.isalpha()) for s in splits}
    df = Counter(w for c in counts.values() for w in c)
    out = {}
    for uid, c in counts.items():
        top = sorted(c, key=lambda w: (-c[w] * math.log(len(counts) / df[w]), w))[:n]
        out[uid] = "Research interests: " + ", ".join(top) + "."
    return out


def synthetic_sets(splits: list[Any], count, seed: int) -> dict[str, dict[str, str]]:
    from bump_profiles.data.synthetic import TOPICS, interests_profile
    from bump_profiles.profiles.baselines import budget_history, full_history

    ids = [s.user.id for s in splits]
    truth = {s.user.id: interests_profile(s.user) for s in splits}
    para = {s.user.id: "Spends free time on " + " and ".join(s.user.extra["interests"]) + "; often mentions "
            + ", ".join(w for t in s.user.extra["interests"] for w in TOPICS[t][4:7]) + "." for s in splits}
    h32, h64 = (budget_history(splits, dict.fromkeys(ids, b), count) for b in (32, 64))
    perm = derangement(len(ids), seed)
    return {
        "true interests": truth,
        "paraphrased interests": para,
        "history@32": h32,
        "history@64": h64,
        "full history": full_history(splits),
        "generic": dict.fromkeys(ids, GENERIC),
        "shuffled true interests": {u: truth[ids[perm[i]]] for i, u in enumerate(ids)},
        "true interests + history@32": {u: truth[u] + "\n" + h32[u] for u in ids},
        "history@64, every 4th word dropped": {u: drop_every(h64[u], 4) for u in ids},
    }


def lamp_sets(splits: list[Any], count, seed: int) -> dict[str, dict[str, str]]:
    from bump_profiles.evaluation.intrinsic import pseudo_profiles
    from bump_profiles.profiles.baselines import budget_history, full_history

    ids = [s.user.id for s in splits]
    kw = keywords(splits)
    perm = derangement(len(ids), seed)
    return {
        "keywords": kw,
        "8 titles (copied)": pseudo_profiles(splits, "history-titles", 8),
        "history@32": budget_history(splits, dict.fromkeys(ids, 32), count),
        "history@64": budget_history(splits, dict.fromkeys(ids, 64), count),
        "full history": full_history(splits),
        "generic": dict.fromkeys(ids, GENERIC),
        "shuffled keywords": {u: kw[ids[perm[i]]] for i, u in enumerate(ids)},
    }


def projected_metrics(splits: list[Any], profiles: dict[str, str], encode, history_mean: np.ndarray) -> dict:
    """The rejected candidate: cosine of (profile - its projection on the user's mean history) and the item."""
    from bump_profiles.evaluation.intrinsic import ScoredGroup, ranking_metrics
    from bump_profiles.rewards.scoring import NULL_TEXT, RawScores

    users = [s.user.id for s in splits]
    p = encode([profiles[u] for u in users])
    p = p - (p * history_mean).sum(1, keepdims=True) * history_mean
    p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    x = encode([it.text for s in splits for it in s.heldout])
    null = encode([NULL_TEXT])[0]  # the null profile / item, unprojected (it has no user)
    raw = RawScores(p @ x.T, x @ p.T, item_null=x @ null, profile_null=p @ null)
    group = ScoredGroup(users, [s.user.id for s in splits for _ in s.heldout], raw)
    return {c: ranking_metrics([group], c) for c in CALIBRATIONS}


def run_dataset(name: str, splits: list[Any], sets: dict[str, dict[str, str]], model, count) -> dict:
    from tqdm import tqdm

    from bump_profiles.evaluation.intrinsic import evaluate_profiles
    from bump_profiles.judges.copymask import CopyMaskedJudge
    from bump_profiles.judges.embedding import EmbeddingJudge

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False).astype(np.float64)

    plain = EmbeddingJudge(model)
    masked = CopyMaskedJudge(plain).with_history(it.text for s in splits for it in s.history)
    history_mean = np.stack([encode([it.text for it in s.history]).mean(0) for s in tqdm(splits, desc="history embeddings")])
    history_mean /= np.linalg.norm(history_mean, axis=1, keepdims=True)
    rows = {}
    for row, profiles in tqdm(sets.items(), desc=f"{name} profile sets"):
        ev = {j: evaluate_profiles(splits, profiles, judge, calibrations=CALIBRATIONS, count_tokens=count)
              for j, judge in (("plain", plain), ("copymask", masked))}
        rows[row] = {"stats": ev["plain"]["profile_stats"], "metrics": {j: e["metrics"] for j, e in ev.items()}}
        rows[row]["metrics"]["project"] = projected_metrics(splits, profiles, encode, history_mean)
    return {"users": len(splits), "items": sum(len(s.heldout) for s in splits), "rows": rows}


def print_table(name: str, result: dict) -> None:
    judges = ("plain", "copymask", "project")
    print(f"\n{name}: {result['users']} users, {result['items']} held-out items; NDCG A/B, ranked all at once")
    head = f"{'profile set':36}{'tok':>5}{'cp4':>5}" + "".join(f"{j + ' ' + c:>17}" for j in judges for c in CALIBRATIONS)
    print(head)
    for row, r in result["rows"].items():
        cells = "".join(f"{r['metrics'][j][c]['ndcg_a']:>9.3f}/{r['metrics'][j][c]['ndcg_b']:.3f}" for j in judges for c in CALIBRATIONS)
        print(f"{row:36}{r['stats']['tokens_mean']:5.0f}{r['stats']['copy_rate_4']:5.2f}{cells}")
    m = next(iter(result["rows"].values()))["metrics"]["plain"]["none"]
    print(f"{'random':46}" + f"{m['ndcg_a_random']:>9.3f}/{m['ndcg_b_random']:.3f}" * len(judges) * len(CALIBRATIONS))


def main(argv: list[str] | None = None) -> None:
    from bump_profiles.data import load_users, split_users
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.data.synthetic import make_users
    from bump_profiles.engines.models import load_sentence_transformer

    args = parse_args(argv)
    t0 = time.perf_counter()
    model = load_sentence_transformer("minilm")
    tok = model.tokenizer

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    results = {}
    synth = split_users(make_users(args.users, seed=args.seed), args.k).users
    results["synthetic"] = run_dataset("synthetic", synth, synthetic_sets(synth, count, args.seed), model, count)
    print_table(f"synthetic (make_users({args.users}, seed={args.seed}), k={args.k})", results["synthetic"])
    if LAMP_1.is_dir():
        users = [u for part in ("train", "dev", "test") for u in load_users(LAMP_1 / f"{part}_questions.json")]
        lamp = split_users(users, args.k).users
        results["lamp_1"] = run_dataset("LaMP_1", lamp, lamp_sets(lamp, count, args.seed), model, count)
        print_table(f"LaMP_1 samples (k={args.k} recent)", results["lamp_1"])
    else:
        print(f"\n{LAMP_1} is absent: LaMP_1 skipped")
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
               "loadavg": os.getloadavg()}
    atomic_write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine,
                                 "seconds": round(time.perf_counter() - t0, 1), "results": results})
    print(f"\nwrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
