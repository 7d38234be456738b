"""Scoring stages of benchmarks/bench_alignment.py: every reward option on the same candidates, the
held-out judges, within-author Spearman, and the pick vs references with paired intervals."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench_alignment")
N_BOOT = 1000
# configs/authors-cpu.yaml's reward shaping (length, repetition and copy guards): "today's reward" is
# that config's reward; every option below changes one thing at a time from it.
SHAPING = {"length_target": 40, "length_penalty": 0.01, "repetition_penalty": 0.5, "copy_threshold": 0.2,
           "copy_penalty": 2.0, "max_copied_span": 8, "span_penalty": 1.0}
COPY_GUARDS = {k: SHAPING[k] for k in ("copy_threshold", "copy_penalty", "max_copied_span", "span_penalty")}
BASE = {"judge": "embedding", "m": 4, "spread": False, "group": 4, "bank": 0, "hard": 0.0, "queue": 0, "shaping": True}
OPTIONS: dict[str, dict[str, Any]] = {
    "today (embedding, m=4 first, B=4)": {},
    "no shaping": {"shaping": False},
    "copy guards only (no length, repetition penalty)": {"shaping": "copy"},
    "m=4 spread over 16": {"m": 4, "spread": True},
    "m=8 spread": {"m": 8, "spread": True},
    "m=16": {"m": 16, "spread": True},
    "all 32 at once": {"group": None},
    "bank: all 64 other users": {"bank": 64},
    "bank 16 users, random": {"bank": 16},
    "bank 16 users, half hard": {"bank": 16, "hard": 0.5},
    "queue 64": {"queue": 64},
    "lexical judge": {"judge": "lexical"},
    "ensemble emb+lex": {"judge": "ensemble"},
    "lexical, m=16": {"judge": "lexical", "m": 16, "spread": True},
    "ensemble, m=16": {"judge": "ensemble", "m": 16, "spread": True},
    "m=16, no shaping": {"m": 16, "spread": True, "shaping": False},
    "m=16, copy guards only": {"m": 16, "spread": True, "shaping": "copy"},
    "m=16, no shaping, bank 16 half hard": {"m": 16, "spread": True, "shaping": False, "bank": 16, "hard": 0.5},
    "ensemble, m=16, no shaping": {"judge": "ensemble", "m": 16, "spread": True, "shaping": False},
    "lexical, m=16, no shaping": {"judge": "lexical", "m": 16, "spread": True, "shaping": False},
}
HELDOUT_JUDGES = ("lexical", "embedding")  # embedding is the reward's own judge in most options: marked, not held out
BANK_ITEMS = 8  # each bank user's most recent articles


def text_of(it) -> str:
    return it.text


def make_judges(layouts, train, eval_ids):
    from bump_profiles.judges import JudgeConfig, make_judge
    from bump_profiles.judges.ensemble import EnsembleJudge
    from bump_profiles.judges.lexical import LexicalJudge

    held = {text_of(it) for a in layouts for it in (*a.near, *a.far)}
    corpus = [it.text for u in train for it in u.interactions if it.text not in held]  # no held-out text, no evaluation author
    assert not set(eval_ids) & {u.id for u in train}
    emb = make_judge(JudgeConfig(kind="embedding"))
    emb.cache_size = 100_000  # the same texts are scored under many options
    lex = LexicalJudge.fitted(corpus)
    return {"embedding": emb, "lexical": lex, "ensemble": EnsembleJudge([emb, lex])}


def bank_for(layouts, train):
    """The other training authors' (not among the 32) most recent articles, and everyone's nearest users."""
    from bump_profiles.rewards.contrast import nearest_users

    picked = {a.user_id for a in layouts}
    others = [u for u in train if u.id not in picked]
    items = {u.id: [it.text for it in u.interactions[-BANK_ITEMS:]] for u in others}
    histories = {a.user_id: [it.text for it in a.read] for a in layouts}
    histories.update({u.id: [it.text for it in u.interactions[:-BANK_ITEMS]] for u in others})
    return items, nearest_users(histories)


def option_rewards(option: dict, layouts, cands, judges, bank_data, count) -> tuple[dict[str, list[float]], list[dict]]:
    """Every candidate's reward under one option (groups in layout order), and each call's metrics."""
    from bump_profiles.rewards.alignment import reward_items
    from bump_profiles.rewards.bestof import score_candidates
    from bump_profiles.rewards.bump import BumpReward
    from bump_profiles.rewards.contrast import PopulationBank, ProfileQueue

    o = {**BASE, **option}
    bank = None
    if o["bank"]:
        bank = PopulationBank(bank_data[0], users=o["bank"], hard_share=o["hard"], neighbours=bank_data[1], seed=0)
    reward = BumpReward(judges[o["judge"]], count_tokens=count, min_users=2, bank=bank,
                        queue=ProfileQueue(o["queue"]) if o["queue"] else None,
                        **{True: SHAPING, False: {}, "copy": COPY_GUARDS}[o["shaping"]])
    users = [a.user_id for a in layouts]
    size = o["group"] or len(users)
    scores: dict[str, list[float]] = {}
    metrics = []
    for start in range(0, len(users), size):
        group = [a for a in layouts[start : start + size]]
        pos = {a.user_id: [it.text for it in reward_items(a.horizon, o["m"], o["spread"])] for a in group}
        hist = {a.user_id: [it.text for it in a.read] for a in group}
        s, m = score_candidates(reward, {a.user_id: cands[a.user_id].texts for a in group}, pos, hist)
        scores.update(s)
        metrics.append(m)
    return scores, metrics


def heldout_scores(layouts, cands, judge, horizon: str) -> dict[str, list[float]]:
    """Each candidate's held-out BUMP score (no shaping): its author's near/far items ranked among all
    32 authors' (A) and ranking it among the other authors' candidates (B)."""
    from bump_profiles.rewards.bestof import score_candidates
    from bump_profiles.rewards.bump import BumpReward

    reward = BumpReward(judge, min_users=2)
    pos = {a.user_id: [it.text for it in getattr(a, horizon)] for a in layouts}
    return score_candidates(reward, {a.user_id: cands[a.user_id].texts for a in layouts}, pos)[0]


def set_scores(layouts, profiles: dict[str, str], judge, horizon: str) -> dict[str, float]:
    """Per author, (NDCG_A + NDCG_B) / 2 of one profile set, all 32 authors ranked at once."""
    from bump_profiles.authors.stats import per_author_ndcg
    from bump_profiles.data.schema import User
    from bump_profiles.data.split import UserSplit
    from bump_profiles.evaluation.intrinsic import score_groups

    splits = [UserSplit(User(a.user_id, []), a.read, getattr(a, horizon)) for a in layouts]
    per = per_author_ndcg(score_groups(splits, profiles, judge, None, null=False), "none")
    return {u: (v["ndcg_a"] + v["ndcg_b"]) / 2 for u, v in per.items()}


def reference_sets(layouts, cands, greedy, picks: dict[str, int], count) -> dict[str, dict[str, str]]:
    from bump_profiles.data.schema import User
    from bump_profiles.data.split import UserSplit
    from bump_profiles.profiles.baselines import budget_history

    rng = random.Random(0)
    rand = {a.user_id: rng.randrange(len(cands[a.user_id].texts)) for a in layouts}
    pick = {u: cands[u].texts[i] for u, i in picks.items()}
    splits = [UserSplit(User(a.user_id, []), a.read, []) for a in layouts]
    sets = {"pick": pick, "random candidate": {u: cands[u].texts[i] for u, i in rand.items()},
            "greedy": {a.user_id: greedy[a.user_id].texts[0] for a in layouts if a.user_id in greedy},
            "history@budget": budget_history(splits, {u: count(p) for u, p in pick.items()}, count)}
    if len(sets["greedy"]) < len(layouts):  # greedy profiles come after every author's samples: maybe not yet
        del sets["greedy"]
    return sets


def summarize(values: dict[str, float], units: list[str], draws) -> dict[str, float]:
    from bump_profiles.authors.stats import interval

    return {k: round(v, 4) for k, v in interval([values[u] for u in units], draws).items()}


def run_scoring(out: Path, layouts, train, eval_ids, windows: list[str], results: Path) -> None:
    from bump_profiles.authors.stats import paired_difference, resamples
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.models import load_tokenizer
    from bump_profiles.profiles.stats import profile_stats
    from bump_profiles.rewards.alignment import picked, within_user_spearman
    from bump_profiles.rewards.bestof import load_candidates

    tok = load_tokenizer("smollm2-135m")

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    judges = make_judges(layouts, train, eval_ids)
    bank_data = bank_for(layouts, train)
    report: dict[str, Any] = json.loads(results.read_text()) if results.exists() else {}
    report.setdefault("windows", {})  # windows scored earlier and not named now are kept
    report.update({"authors": len(layouts), "samples": 8, "temperature": 1.0, "machine": {
        "cpu_count": os.cpu_count(), "threads": os.environ.get("OMP_NUM_THREADS")}})
    for key in windows:
        window, _, limit = key.partition(":")
        cands = load_candidates(out / f"candidates-{window}.jsonl", repair=False)  # the generator may still be writing
        greedy = load_candidates(out / f"greedy-{window}.jsonl", repair=False)
        lays = [a for a in layouts[: int(limit) if limit else None] if a.user_id in cands]
        lays = lays[: len(lays) // 4 * 4]  # whole groups of 4
        units = [a.user_id for a in lays]
        draws = resamples(len(units), N_BOOT, seed=0)
        t0 = time.perf_counter()
        held = {(j, h): heldout_scores(lays, cands, judges[j], h) for j in HELDOUT_JUDGES for h in ("near", "far")}
        rows: dict[str, Any] = {}
        for name, option in OPTIONS.items():
            t1 = time.perf_counter()
            scores, metrics = option_rewards(option, lays, cands, judges, bank_data, count)
            picks = picked(scores)
            sets = reference_sets(lays, cands, greedy, picks, count)
            row: dict[str, Any] = {"option": {**BASE, **option}, "spearman": {}, "sets": {}, "differences": {},
                                   "missing_spearman": {}, "reward_seconds": round(time.perf_counter() - t1, 1)}
            flat = np.array([v for u in units for v in scores[u]])
            row["reward"] = {"mean": round(float(flat.mean()), 4), "at_max_share": round(float(np.mean(flat >= 1 - 1e-12)), 4),
                             "group_spread": round(float(np.mean([np.std(scores[u]) for u in units])), 4),
                             "queue_age": [m.get("queue_age") for m in metrics if "queue_age" in m][-1:] or None}
            for (j, h), judged in held.items():
                rho = within_user_spearman({u: scores[u] for u in units}, judged)
                row["missing_spearman"][f"{j}/{h}"] = len(units) - len(rho)
                kept = [u for u in units if u in rho]
                row["spearman"][f"{j}/{h}"] = summarize(rho, kept, resamples(len(kept), N_BOOT, seed=0))
                per_set = {s: set_scores(lays, p, judges[j], h) for s, p in sets.items()}
                row["sets"][f"{j}/{h}"] = {s: summarize(v, units, draws) for s, v in per_set.items()}
                row["differences"][f"{j}/{h}"] = {
                    f"pick - {s}": {k: (round(v, 4) if isinstance(v, float) else v)
                                    for k, v in paired_difference(per_set["pick"], per_set[s], units, draws).items()}
                    for s in per_set if s != "pick"}
            row["profiles"] = {s: {k: v for k, v in profile_stats([p[u] for u in units], [[it.text for it in a.read] for a in lays],
                                                                  count_tokens=count).items()
                                   if k in ("tokens_mean", "copy_rate_4", "copy_rate_8", "empty_share")} for s, p in sets.items()}
            rows[name] = row
            log.info("%s %s: spearman lexical far %.3f, pick - history@budget lexical far %+.3f (%.0fs)", window, name,
                     row["spearman"]["lexical/far"]["mean"], row["differences"]["lexical/far"]["pick - history@budget"]["mean"],
                     time.perf_counter() - t1)
        hit = np.mean([h for u in units for h in cands[u].hit_limit])
        report["windows"][key] = {"authors": len(units), "options": rows, "scoring_seconds": round(time.perf_counter() - t0, 1),
                                     "load_1min_at_end": os.getloadavg()[0], "candidates_hit_limit_share": round(float(hit), 4)}
        atomic_write_json(results, report)
        print_table(key, report["windows"][key])


def print_table(window: str, res: dict) -> None:
    print(f"\n## read window {window}: {res['authors']} training authors, 8 candidates each (load {res['load_1min_at_end']:.1f})")
    print("| option | Spearman lexical near | Spearman lexical far | Spearman embedding far | pick - history@budget, lexical far | "
          "pick - random, lexical far | pick tokens |")
    print("|---|---|---|---|---|---|---|")
    for name, row in res["options"].items():
        def cell(d):
            return f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
        diff = row["differences"]["lexical/far"]
        print(f"| {name} | {cell(row['spearman']['lexical/near'])} | {cell(row['spearman']['lexical/far'])} | "
              f"{cell(row['spearman']['embedding/far'])} | {cell(diff['pick - history@budget'])} | "
              f"{cell(diff['pick - random candidate'])} | {row['profiles']['pick']['tokens_mean']:.1f} |")


def run_likelihood(out: Path, layouts, train, eval_ids, windows: list[str], results: Path, n_authors: int,
                   options: list[str] | None = None) -> None:
    """The likelihood judge (never in any reward option), far horizon, on the first ``n_authors``:
    each profile ranks its author's 6 far items among theirs plus the next author's 6 (NDCG A). Per
    candidate (within-author Spearman with each option's reward) and per final set (pick of each
    option vs random, greedy, history@budget), with paired intervals. Contrasting with one other
    author only keeps it to ~100 pairs an author on a shared 2-core CPU. ``options``: the reward options
    scored (default all; each option's history@budget is another text to score per author)."""
    from bump_profiles.authors.stats import paired_difference, resamples
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.engines.models import load_tokenizer
    from bump_profiles.judges import JudgeConfig, make_judge
    from bump_profiles.judges.ranking import multi_positive_ndcg
    from bump_profiles.rewards.alignment import picked, within_user_spearman
    from bump_profiles.rewards.bestof import load_candidates

    tok = load_tokenizer("smollm2-135m")

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    judge = make_judge(JudgeConfig(kind="likelihood", dtype="auto"))  # bfloat16 only where native (6x slower without)
    judges, bank_data = make_judges(layouts, train, eval_ids), bank_for(layouts, train)
    report = json.loads(results.read_text())
    key = windows[0]
    window, _, _ = key.partition(":")
    cands = load_candidates(out / f"candidates-{window}.jsonl", repair=False)
    greedy = load_candidates(out / f"greedy-{window}.jsonl", repair=False)
    lays = [a for a in layouts if a.user_id in cands][:n_authors]
    units = [a.user_id for a in lays]
    t0 = time.perf_counter()

    def ndcg(profiles: list[str], i: int) -> list[float]:
        a, other = lays[i], lays[(i + 1) % len(lays)]
        docs = [it.text for it in (*a.far, *other.far)]
        pos = np.array([True] * len(a.far) + [False] * len(other.far))
        m = judge.score(profiles, docs, "A")
        return [multi_positive_ndcg(row, pos) for row in m]

    per_candidate = {}
    for i, a in enumerate(lays):
        per_candidate[a.user_id] = ndcg(cands[a.user_id].texts, i)
        log.info("likelihood: %s candidates (%.0fs)", a.user_id, time.perf_counter() - t0)
    draws = resamples(len(units), N_BOOT, seed=0)
    res: dict[str, Any] = {"authors": len(units), "window": key, "options": {}}
    cache: dict[tuple[str, str], float] = {}
    cand_texts = {u: set(cands[u].texts) for u in units}
    rows = report["windows"][key]["options"]
    unknown = sorted(set(options or ()) - set(rows))
    if unknown:
        raise SystemExit(f"--likelihood-options: unknown option(s) {', '.join(unknown)} (known: {', '.join(rows)})")
    for name, row in rows.items():
        if options and name not in options:
            continue
        scores, _ = option_rewards(row["option"], lays, cands, judges, bank_data, count)
        rho = within_user_spearman({u: scores[u] for u in units}, per_candidate)
        kept = [u for u in units if u in rho]
        picks = picked(scores)
        sets = reference_sets(lays, cands, greedy, picks, count)
        per_set = {}
        for s, profiles in sets.items():
            vals = {}
            for i, u in enumerate(units):
                text = profiles[u]  # a candidate's score is already known; a reference is scored once
                if text in cand_texts[u]:
                    vals[u] = per_candidate[u][cands[u].texts.index(text)]
                else:
                    if (u, text) not in cache:
                        cache[(u, text)] = ndcg([text], i)[0]
                    vals[u] = cache[(u, text)]
            per_set[s] = vals
        res["options"][name] = {
            "spearman": summarize(rho, kept, resamples(len(kept), N_BOOT, seed=0)), "missing_spearman": len(units) - len(kept),
            "sets": {s: summarize(v, units, draws) for s, v in per_set.items()},
            "differences": {f"pick - {s}": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in
                                            paired_difference(per_set["pick"], per_set[s], units, draws).items()}
                            for s in per_set if s != "pick"}}
        log.info("likelihood %s: spearman %.3f, pick - history@budget %+.3f", name, res["options"][name]["spearman"]["mean"],
                 res["options"][name]["differences"]["pick - history@budget"]["mean"])
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["load_1min_at_end"] = os.getloadavg()[0]
    report.setdefault("likelihood", {})[key] = res
    atomic_write_json(results, report)


def markdown(results: Path) -> str:
    """The tables of docs/alignment.md from the results JSON."""
    report = json.loads(results.read_text())

    def cell(d: dict) -> str:
        return f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]"

    out = []
    for key, res in report["windows"].items():
        out.append(f"\n**Read window {key}**: {res['authors']} training authors x 8 candidates; candidates cut at the "
                   f"64-token limit: {res['candidates_hit_limit_share']:.0%}; scoring {res['scoring_seconds']:.0f} s "
                   f"(load {res['load_1min_at_end']:.1f} at the end).\n")
        out.append("| reward option | Spearman w/ lexical, near | Spearman w/ lexical, far | Spearman w/ embedding, far | "
                   "pick - history@budget, lexical far | pick - random, lexical far | pick - greedy, lexical far | "
                   "pick - history@budget, lexical near | pick tokens / copy 4-gram |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for name, row in res["options"].items():
            d, n = row["differences"]["lexical/far"], row["differences"]["lexical/near"]
            prof = row["profiles"]["pick"]
            out.append(f"| {name} | {cell(row['spearman']['lexical/near'])} | {cell(row['spearman']['lexical/far'])} | "
                       f"{cell(row['spearman']['embedding/far'])} | {cell(d['pick - history@budget'])} | "
                       f"{cell(d['pick - random candidate'])} | {cell(d['pick - greedy']) if 'pick - greedy' in d else 'n/a'} | "
                       f"{cell(n['pick - history@budget'])} | "
                       f"{prof['tokens_mean']:.0f} / {prof['copy_rate_4']:.2f} |")
        first = next(iter(res["options"].values()))
        sets = first["sets"]["lexical/far"]
        out.append("\nHeld-out lexical judge, far horizon, all authors at once, (NDCG A + B) / 2 of the sets of the first "
                   "option: " + "; ".join(f"{s} {v['mean']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]" for s, v in sets.items()))
    for key, res in report.get("likelihood", {}).items():
        out.append(f"\n**Likelihood judge (never in any reward), far horizon, read window {key}**: {res['authors']} authors; "
                   f"each profile ranks its author's 6 far items among those plus the next author's 6 (NDCG A); "
                   f"{res['seconds']:.0f} s (load {res['load_1min_at_end']:.1f} at the end).\n")
        out.append("| reward option | Spearman w/ likelihood, far | pick - history@budget | pick - random | pick - greedy |")
        out.append("|---|---|---|---|---|")
        for name, row in res["options"].items():
            d = row["differences"]
            out.append(f"| {name} | {cell(row['spearman'])} | {cell(d['pick - history@budget'])} | "
                       f"{cell(d['pick - random candidate'])} | {cell(d['pick - greedy']) if 'pick - greedy' in d else 'n/a'} |")
    return "\n".join(out) + "\n"
