"""Profiles that follow a person over rounds: stale vs regenerated vs incremental, judged on the next round.

Every user's log is cut into ``--rounds`` rounds of ``--per-round`` items in time order
(:mod:`bump_profiles.evaluation.drift`); with ``--first-round N`` round 1 holds N (a long-lived user's older
history: what a regeneration reads again every round, and the setting where an update saves reading). After
round r (r = 1 .. rounds-1) each user has three profiles, all from the same generator (greedy):

- ``stale``: written from round 1 only and never updated;
- ``regenerated``: from scratch over rounds 1..r, within ``--scratch-tokens`` (the newest items first);
- ``incremental``: the update prompt on the previous round's incremental profile plus round r's items
  only (round 1: the scratch profile, the same text as the other two);
- ``trained`` (with ``--trained-model``): the same chain with another update writer (round 1 shared);
- ``notes`` (with ``--notes K``): rolling notes. Each round's new items get a note of their own (the
  scratch prompt over that round only, written once and kept), and the profile is the merge of the
  latest K notes (``PORTRAIT_MERGE_INSTRUCTION``): an update reads the new items and K short notes, never
  its own previous profile, so nothing is a summary of a summary, and a round's note leaves the profile
  K rounds later (round 1: the note is the scratch profile, the same text as the others);
- ``notes-trained`` (with ``--notes K --merge-model``): the same notes, merged by another model (a run of
  ``configs/update-writer-notes.yaml``), paired with ``notes``.
- ``history@notes`` (with ``--notes K``) and ``history@trained`` (with ``--trained-model``): no profile, the
  adversary of that set: each user's rounds so far, newest first, cut to that set's profile's token count
  (what pasting the history scores at that length).

Each is judged on round r+1's items, which no profile has read (checked with the provenance hashes),
ranking all users of a population at once (calibration none) under each of ``--judges``: ``lexical``
(TF-IDF cosine; its IDF is fitted on texts outside the population: other synthetic users, the news
authors not sampled) and ``likelihood`` (SmolLM2 PMI, slow on CPU: ``--likelihood-rounds``, ``--likelihood-sets``
and ``--likelihood-group G``, ranking within groups of G users, bound its cost). Printed per round: NDCG_A / NDCG_B
with 95% bootstrap intervals over users, the paired differences incremental - stale and incremental -
regenerated (same resamples), the mean prompt tokens each set read that round. Synthetic users (kinds
keep / add / drop / shift, their true topics known per round) also get the recall of the current true
topics and the share of dropped topics still mentioned; news authors are reported all, shifting
(category mix of the first and last round apart by total variation >= ``--shift-threshold``) and stable,
and with ``--fresh-from N`` the first N of the draw and the rest (a fresh sample for a pre-registered check).
``--spliced N`` adds a population of real text with a drift made at a known time: N users of one author's
first round and another author's later rounds (:func:`~bump_profiles.evaluation.drift.splice_authors`),
ranked beside N unspliced authors and reported apart (``spliced``, ``single``).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_drift.py --synthetic 32 --authors 32 \
        --rounds 5 --per-round 6 --judges lexical

Generations are kept per population, round and set beside ``--out`` (``<out stem>-<population>/``):
re-running the same command resumes (a changed command is refused); delete that folder to start over.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_incremental: its cached generation and scoring
from bench_incremental import generate, per_user_ndcg, weights_digest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AUTHORS = REPO.parent / "shared" / "data" / "huffpost-authors" / "interactions.jsonl"
DIRECTIONS = ("ndcg_a", "ndcg_b")
PASTED_AGAINST = ("notes", "trained")  # the sets that get a pasted-history adversary at their length


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from bump_profiles.evaluation.drift import ALL_KINDS, KINDS

    p = argparse.ArgumentParser(description="Drift over rounds: stale vs regenerated vs incremental profiles.")
    p.add_argument("--model", default="smollm2-135m", help="generator (bundled name, path or hub id)")
    p.add_argument("--trained-model", help="a trained update writer (a run's final/): adds the 'trained' chain")
    p.add_argument("--notes", type=int, metavar="K", help="adds the 'notes' chain: a note per round, the profile "
                   "merged from the latest K notes")
    p.add_argument("--merge-model", help="with --notes: a trained merge (a run's final/): adds 'notes-trained', the "
                   "same notes merged by it")
    p.add_argument("--backend", choices=["transformers", "vllm", "openai"], default="transformers")
    p.add_argument("--base-url")
    p.add_argument("--api-model")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--synthetic", type=int, default=32, help="synthetic drift users (0: none)")
    p.add_argument("--synthetic-seed", type=int, default=9101, help="a seed no training config uses")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=ALL_KINDS, help="synthetic kinds, cycled")
    p.add_argument("--authors", type=int, default=32, help="HuffPost authors, sampled with --seed (0: none)")
    p.add_argument("--spliced", type=int, default=0, metavar="N", help="N spliced authors (one author's first round, "
                   "another's later rounds) and, as their control, the first N of the --authors draw unspliced")
    p.add_argument("--min-splice-shift", type=float, default=0.5, help="--spliced: category TV distance between the two authors")
    p.add_argument("--rounds", type=int, default=5, help="rounds of items; profiles after rounds 1..rounds-1")
    p.add_argument("--per-round", type=int, default=6, help="items per round (authors: their newest rounds*per_round)")
    p.add_argument("--first-round", type=int, metavar="N", help="items in round 1 (default --per-round): a long-lived "
                   "user's older history, which a regeneration reads again every round and an update never does")
    p.add_argument("--fresh-from", type=int, metavar="N", help="authors: also report the authors drawn after the first "
                   "N apart ('fresh': a sample no earlier run of the first N saw; the draw is prefix-stable)")
    p.add_argument("--shift-threshold", type=float, default=0.5, help="authors: category TV distance that counts as shifting")
    p.add_argument("--scratch-tokens", type=int, default=1500, help="history budget of a regeneration")
    p.add_argument("--no-regeneration", action="store_true", help="leave out the regenerated chain (most of a long "
                   "first round's cost): enough to compare a trained writer with the untrained one and the stale profile")
    p.add_argument("--update-tokens", type=int, default=400, help="budget of the new items in an update")
    p.add_argument("--max-words", type=int, default=60)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--judges", nargs="+", choices=["lexical", "likelihood"], default=["lexical"])
    p.add_argument("--likelihood-rounds", type=int, nargs="*", help="rounds the likelihood judge scores (default all)")
    p.add_argument("--likelihood-sets", nargs="+", help="profile sets the likelihood judge scores (default all)")
    p.add_argument("--likelihood-group", type=int, metavar="G", help="the likelihood judge ranks within consecutive "
                   "groups of G users instead of all at once (G/n of the pairs; default all at once)")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "drift.json")
    args = p.parse_args(argv)
    if args.notes is not None and args.notes < 1:
        p.error(f"--notes takes K >= 1 (notes merged into a profile), got {args.notes}")
    if args.merge_model and not args.notes:
        p.error("--merge-model goes with --notes K")
    return args


def populations(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Name -> ``users`` (User list), ``rounds`` ({user id: rounds of items}) and ``idf`` (corpus texts
    from outside the population, for the lexical judge)."""
    from bump_profiles.authors.data import load_authors
    from bump_profiles.evaluation.drift import (
        authors_used,
        cut_rounds,
        items_needed,
        make_drift_users,
        sample_authors,
        spliced_population,
    )

    def population(users: list[Any], idf: list[str], **extra: Any) -> dict[str, Any]:
        return {"users": users, "idf": idf, **extra, "rounds": {
            u.id: cut_rounds(u.interactions, args.rounds, args.per_round, args.first_round) for u in users}}

    def texts_outside(users: list[Any]) -> list[str]:  # the IDF corpus of an author population
        chosen = authors_used(users)
        return [x.text for u in every if u.id not in chosen for x in u.interactions]

    out: dict[str, dict[str, Any]] = {}
    if args.synthetic:
        users = make_drift_users(args.synthetic, rounds=args.rounds, per_round=args.per_round,
                                 seed=args.synthetic_seed, kinds=args.kinds, first_round=args.first_round,
                                 distinct=True)
        others = make_drift_users(200, rounds=args.rounds, per_round=args.per_round, seed=args.synthetic_seed + 1)
        out["synthetic"] = population(users, [x.text for u in others for x in u.interactions])
    if (args.authors or args.spliced) and not AUTHORS.exists():
        print(f"skipping the news authors: {AUTHORS} is absent", file=sys.stderr)
        return out
    every = load_authors(AUTHORS) if args.authors or args.spliced else []
    if args.authors:
        users, eligible = sample_authors(every, args.authors, seed=args.seed,
                                         min_items=items_needed(args.rounds, args.per_round, args.first_round))
        out["huffpost-authors"] = population(users, texts_outside(users), eligible=eligible)
    if args.spliced:
        users, eligible = spliced_population(every, args.spliced, rounds=args.rounds, per_round=args.per_round,
                                             first=args.first_round, min_shift=args.min_splice_shift, seed=args.seed)
        out["spliced-authors"] = population(users, texts_outside(users), eligible=eligible)
    return out


def author_groups(ids: list[str], shifts: dict[str, float], threshold: float, fresh_from: int | None) -> dict[str, list[str]]:
    """The authors reported apart: shifting / stable by category shift and, with ``fresh_from`` N, the first N
    of the draw and the rest ('fresh')."""
    groups = {"shifting": [u for u in ids if shifts[u] >= threshold], "stable": [u for u in ids if shifts[u] < threshold]}
    if fresh_from:
        groups.update({f"first {fresh_from}": ids[:fresh_from], "fresh": ids[fresh_from:]})
    return groups


def chains(pop: dict[str, Any], backends: dict[str, Any], args: argparse.Namespace,
           cache: Path) -> Iterator[tuple[int, dict[str, list[list[Any]]]]]:
    """After each round r: (r, set name -> per round so far (index 0 = after round 1) the completions of
    every user, in user order)."""
    from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt

    base = backends["base"]
    count = base.count_tokens if base.count_tokens("probe") is not None else None
    scratch = ProfilePrompt(max_words=args.max_words, history_items=None, history_tokens=args.scratch_tokens)
    update = UpdatePrompt(max_words=args.max_words, history_items=None, history_tokens=args.update_tokens)
    rounds = [pop["rounds"][u.id] for u in pop["users"]]
    first = generate(base, [scratch.messages(r[0], count) for r in rounds], args, cache / "round1-scratch.json")
    out: dict[str, list[list[Any]]] = {"stale": [first], "incremental": [first],
                                       **({} if args.no_regeneration else {"regenerated": [first]})}
    writers = {"incremental": base, **({"trained": backends["trained"]} if "trained" in backends else {})}
    digest = {name: weights_digest(path) for name, path in (("trained", args.trained_model), ("notes-trained", args.merge_model))
              if path}  # kept texts name the weights that wrote them
    for name in writers:
        out.setdefault(name, [first])
    notes = [first]  # per round, every user's note on that round's items (round 1's is the scratch profile)
    mergers = {"notes": base, **({"notes-trained": backends["merge"]} if "merge" in backends else {})} if args.notes else {}
    for name in mergers:
        out[name] = [first]
    adversaries = [name for name in PASTED_AGAINST if name in out]
    for name in adversaries:
        out[f"history@{name}"] = [pasted(pop, first, 1, count)]
    yield 1, out
    for r in range(2, args.rounds):
        out["stale"].append(first)
        if "regenerated" in out:
            history = [[x for rnd in ur[:r] for x in rnd] for ur in rounds]
            out["regenerated"].append(generate(base, [scratch.messages(h, count) for h in history], args,
                                               cache / f"round{r}-regenerated.json"))
        for name, writer in writers.items():
            msgs = [update.messages(prev.text, ur[r - 1], count) for prev, ur in zip(out[name][-1], rounds, strict=True)]
            out[name].append(generate(writer, msgs, args, cache / f"round{r}-{name}.json", digest.get(name)))
        if args.notes:
            notes.append(generate(base, [scratch.messages(ur[r - 1], count) for ur in rounds], args,
                                  cache / f"round{r}-note.json"))
            for name, merger in mergers.items():
                out[name].append(merge_notes(merger, notes[-args.notes:], args, cache / f"round{r}-{name}.json",
                                             digest.get(name)))
        for name in adversaries:
            out[f"history@{name}"].append(pasted(pop, out[name][-1], r, count))
        yield r, out


def pasted(pop: dict[str, Any], profiles: list[Any], r: int, count: Any) -> list[Any]:
    """The adversary of the notes: each user's rounds 1..r, newest first, cut to their notes profile's
    token count (what pasting the history would score at the same length); no prompt, no generation."""
    from bump_profiles.data.split import UserSplit
    from bump_profiles.engines.backends import Completion
    from bump_profiles.profiles.baselines import budget_history

    count = count or (lambda t: len(t.split()))
    splits = [UserSplit(u, [x for rnd in pop["rounds"][u.id][:r] for x in rnd], []) for u in pop["users"]]
    cut = budget_history(splits, {u.id: count(p.text) for u, p in zip(pop["users"], profiles, strict=True)}, count)
    return [Completion(cut[u.id], 0, None, False) for u in pop["users"]]


def merge_notes(backend: Any, window: list[list[Any]], args: argparse.Namespace, cache: Path,
                model: str | None = None) -> list[Any]:
    """Every user's profile merged from their notes in ``window`` (rounds oldest first, users in order); a
    merged completion's prompt tokens count the newest note's prompt too (the older notes were paid for
    in their rounds)."""
    from bump_profiles.engines.backends import Completion
    from bump_profiles.profiles.chunked import ChunkedPrompt
    from bump_profiles.profiles.prompts import PORTRAIT_MERGE_INSTRUCTION, ProfilePrompt

    merge = ChunkedPrompt(ProfilePrompt(max_words=args.max_words), merge_template=PORTRAIT_MERGE_INSTRUCTION)
    msgs = [merge.merge_messages([n.text for n in user_notes]) for user_notes in zip(*window, strict=True)]
    merged = generate(backend, msgs, args, cache, model)
    return [Completion(m.text, None if m.prompt_tokens is None or n.prompt_tokens is None else m.prompt_tokens + n.prompt_tokens,
                       m.completion_tokens, m.hit_limit) for m, n in zip(merged, window[-1], strict=True)]


def read_by(pop: dict[str, Any], name: str, r: int) -> dict[str, list[Any]]:
    """What each user's profile of set ``name`` after round ``r`` (1-based) accounts for."""
    rounds = [pop["rounds"][u.id] for u in pop["users"]]
    upto = 1 if name == "stale" else r
    return {u.id: [x for rnd in ur[:upto] for x in rnd] for u, ur in zip(pop["users"], rounds, strict=True)}


def check_unread(pop: dict[str, Any], name: str, r: int) -> None:
    """Refuse (DataError) a profile whose provenance holds an item of the round it is judged on."""
    from bump_profiles.profiles.provenance import record, refuse_seen

    reads = {uid: record(items) for uid, items in read_by(pop, name, r).items()}
    refuse_seen(f"{name} after round {r}", reads, {u.id: pop["rounds"][u.id][r] for u in pop["users"]})


def topic_scores(pop: dict[str, Any], profiles: dict[str, str], r: int) -> dict[str, list[float | None]]:
    """Per user, for the profile after round ``r`` (1-based): recall of the topics true in round r, and
    the share of topics dropped by round r that it still mentions (None when that user dropped none)."""
    from bump_profiles.evaluation.drift import dropped_mentions, dropped_topics, topic_recall

    recall, dropped = [], []
    for u in pop["users"]:
        schedule = u.extra["topics"]
        recall.append(topic_recall(profiles[u.id], schedule[r - 1]))
        dropped.append(dropped_mentions(profiles[u.id], dropped_topics(schedule, r - 1)))
    return {"topic_recall": recall, "dropped_mentions": dropped}


def judge_round(pop: dict[str, Any], sets: dict[str, list[list[Any]]], r: int, judge: Any,
                draws: np.ndarray, group_size: int | None = None) -> dict[str, Any]:
    """One round under one judge: per set NDCG intervals, paired differences, and for subsets of users
    (synthetic kinds, shifting/stable authors) the same; users ranked all at once or in groups of ``group_size``."""
    from bump_profiles.data.split import UserSplit

    users = pop["users"]
    ids = [u.id for u in users]
    splits = [UserSplit(u, [x for rnd in pop["rounds"][u.id][:r] for x in rnd], pop["rounds"][u.id][r]) for u in users]
    per: dict[str, dict[str, dict[str, float]]] = {}
    for name, rounds in sets.items():
        check_unread(pop, name, r)
        profiles = {u: c.text for u, c in zip(ids, rounds[r - 1], strict=True)}
        a, b = per_user_ndcg(splits, profiles, judge, group_size)
        per[name] = {"ndcg_a": dict(zip(ids, a, strict=True)), "ndcg_b": dict(zip(ids, b, strict=True))}
    out: dict[str, Any] = {"ranked": f"groups of {group_size}" if group_size and group_size < len(ids) else "all at once",
                           "all": _summary(per, ids, draws)}
    for group, members in pop["groups"].items():
        if len(members) >= 2:
            rng_draws = np.random.default_rng(len(members)).integers(0, len(members), size=(draws.shape[0], len(members)))
            out[group] = _summary(per, members, rng_draws)
    out["per_user"] = per
    return out


def _summary(per: dict[str, dict[str, dict[str, float]]], units: list[str], draws: np.ndarray) -> dict[str, Any]:
    from bump_profiles.authors.stats import interval, paired_difference

    rows = {name: {d: interval([v[d][u] for u in units], draws) for d in DIRECTIONS} for name, v in per.items()}
    diffs = {}
    for name in [n for n in per if n not in ("stale", "regenerated")]:
        # the trained writer and the notes are also paired with the untrained update (another writer or chain)
        for other in ("stale", "regenerated", *(("incremental",) if name != "incremental" else ()),
                      *(("notes",) if name == "notes-trained" else ()), *((f"history@{name}",) if name in PASTED_AGAINST else ())):
            if other in per:  # a judge may score a subset of the sets (--likelihood-sets)
                diffs[f"{name}-{other}"] = {d: paired_difference(per[name][d], per[other][d], units, draws) for d in DIRECTIONS}
    within = {name: {d: rows["regenerated"][d]["lo"] <= rows[name][d]["mean"] <= rows["regenerated"][d]["hi"]
                     for d in DIRECTIONS} for name in per if name not in ("stale", "regenerated") and "regenerated" in per}
    return {"users": len(units), "rows": rows, "paired": diffs, "within_regenerated_ci": within}


def run_population(name: str, pop: dict[str, Any], backends: dict[str, Any], judges: dict[str, Any],
                   args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Generate and judge round by round; ``save`` gets the population's report after every round, so a
    run stopped for time keeps the rounds it finished (and a rerun resumes from the kept generations)."""
    from bump_profiles.evaluation.drift import category_shift
    from bump_profiles.judges.ranking import random_ndcg

    cache = args.out.parent / f"{args.out.stem}-{name}"
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ids = [u.id for u in pop["users"]]
    shifts = None
    if name == "synthetic":
        pop["groups"] = {k: [u.id for u in pop["users"] if u.extra["kind"] == k] for k in args.kinds}
    else:
        shifts = {u.id: category_shift(pop["rounds"][u.id][0], pop["rounds"][u.id][-1]) for u in pop["users"]}
        pop["groups"] = author_groups(ids, shifts, args.shift_threshold, args.fresh_from)
        pop["groups"].update({k: [u.id for u in pop["users"] if u.extra.get("kind") == k]
                              for k in sorted({u.extra.get("kind") for u in pop["users"]} - {None})})
    draws = np.random.default_rng(args.seed).integers(0, len(ids), size=(args.bootstrap, len(ids)))
    report: dict[str, Any] = {
        "users": len(ids), "user_ids": ids, "random_ndcg_a": float(random_ndcg(len(ids) * args.per_round, args.per_round)),
        "groups": {g: len(m) for g, m in pop["groups"].items()}, "category_shift": shifts,
        "eligible_authors": pop.get("eligible"), "rounds": []}
    for r, sets in chains(pop, backends, args, cache):
        entry = judge_all(name, pop, sets, r, judges, draws, args)
        report["rounds"].append(entry)
        report["profiles"] = {s: [[x.text for x in rc] for rc in c] for s, c in sets.items()}
        report["seconds_this_invocation"] = round(time.perf_counter() - t0, 1)
        report["loadavg_1m_after_round"] = [*report.get("loadavg_1m_after_round", []), round(os.getloadavg()[0], 2)]
        save(report)
        print(table(name, entry), flush=True)
    return report


def judge_all(name: str, pop: dict[str, Any], sets: dict[str, list[list[Any]]], r: int, judges: dict[str, Any],
              draws: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Round r under every judge, the prompt tokens each set read that round, and (synthetic) topics."""
    from bump_profiles.authors.stats import interval, paired_difference

    ids = [u.id for u in pop["users"]]
    tokens = {s: _mean_tokens(c[r - 1]) if (s != "stale" or r == 1) else 0.0 for s, c in sets.items()}
    entry: dict[str, Any] = {"round": r, "judged_on_round": r + 1, "prompt_tokens_mean": tokens,
                             "token_ratio_regenerated_over_incremental":
                                 tokens["regenerated"] / tokens["incremental"]
                                 if r > 1 and tokens["incremental"] and "regenerated" in tokens else None,
                             "unchanged_from_previous_round": {
                                 s: float(np.mean([a.text == b.text for a, b in zip(c[r - 2], c[r - 1], strict=True)]))
                                 for s, c in sets.items() if r > 1},
                             "judges": {}}
    for jname, judge in judges.items():
        if jname == "likelihood" and args.likelihood_rounds and r not in args.likelihood_rounds:
            continue
        if jname == "likelihood":
            chosen = {s: c for s, c in sets.items() if not args.likelihood_sets or s in args.likelihood_sets}
            entry["judges"][jname] = judge_round(pop, chosen, r, judge, draws, args.likelihood_group)
        else:
            entry["judges"][jname] = judge_round(pop, sets, r, judge[name], draws)
    if name == "synthetic":
        entry["topics"], recalls = {}, {}
        for s, c in sets.items():
            t = topic_scores(pop, {u: x.text for u, x in zip(ids, c[r - 1], strict=True)}, r)
            dropped = [v for v in t["dropped_mentions"] if v is not None]
            recalls[s] = dict(zip(ids, t["topic_recall"], strict=True))
            entry["topics"][s] = {
                "topic_recall": interval(t["topic_recall"], draws),
                "dropped_mentions": float(np.mean(dropped)) if dropped else None, "users_with_dropped": len(dropped)}
        entry["topic_recall_paired"] = {f"{s}-{o}": paired_difference(recalls[s], recalls[o], ids, draws)
                                        for s in recalls if s not in ("stale", "regenerated")
                                        for o in ("stale", "regenerated", "incremental") if o != s and o in recalls}
    return entry


def _mean_tokens(completions: list[Any]) -> float:
    vals = [c.prompt_tokens for c in completions if c.prompt_tokens is not None]
    return float(np.mean(vals)) if vals else float("nan")


def table(name: str, e: dict[str, Any]) -> str:
    f = lambda t: f"{t['mean']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}]"  # noqa: E731
    lines = [f"### {name}: profiles after round {e['round']}, judged on round {e['judged_on_round']}"]
    for jname, j in e["judges"].items():
        for group in [g for g in j if g not in ("per_user", "ranked")]:
            s = j[group]
            lines += ["", f"{jname} judge, {group} ({s['users']} users, ranked {j.get('ranked', 'all at once')})", "",
                      "| profiles | NDCG_A | NDCG_B | prompt tokens |", "|---|---|---|---|"]
            for set_name, row in s["rows"].items():
                lines.append(f"| {set_name} | {f(row['ndcg_a'])} | {f(row['ndcg_b'])} | {e['prompt_tokens_mean'][set_name]:.0f} |")
            for pair, d in s["paired"].items():
                lines.append(f"| {pair} (paired) | {f(d['ndcg_a'])} | {f(d['ndcg_b'])} | |")
    if e["unchanged_from_previous_round"]:
        lines.append("- profile text unchanged since the previous round: " + ", ".join(
            f"{s} {v:.0%}" for s, v in e["unchanged_from_previous_round"].items()))
    for set_name, t in e.get("topics", {}).items():
        dm = "n/a" if t["dropped_mentions"] is None else f"{t['dropped_mentions']:.2f}"
        lines.append(f"- {set_name}: topic recall {f(t['topic_recall'])}, dropped topics still mentioned {dm} "
                     f"({t['users_with_dropped']} users)")
    for pair, d in e.get("topic_recall_paired", {}).items():
        lines.append(f"- topic recall {pair} (paired): {f(d)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bump_profiles.commands.profile import _backend
    from bump_profiles.data.atomic import atomic_write_json
    from bump_profiles.judges.lexical import LexicalJudge

    def backend_for(model: str) -> Any:
        return _backend(argparse.Namespace(
            backend=args.backend, model=model, base_url=args.base_url, api_model=args.api_model,
            api_key_env="OPENAI_API_KEY", timeout=60.0, max_retries=4, batch_size=args.batch_size, seed=args.seed,
            dtype=args.dtype, top_p=1.0))

    pops = populations(args)
    backends = {"base": backend_for(args.model)}
    if args.trained_model:
        backends["trained"] = backend_for(args.trained_model)
    if args.merge_model:
        backends["merge"] = backend_for(args.merge_model)
    judges: dict[str, Any] = {}
    if "lexical" in args.judges:
        judges["lexical"] = {name: LexicalJudge.fitted(p["idf"]) for name, p in pops.items()}
    if "likelihood" in args.judges:
        from bump_profiles.judges import JudgeConfig, make_judge

        judges["likelihood"] = make_judge(JudgeConfig(kind="likelihood", calibration="none"))
    report: dict[str, Any] = {"generator": backends["base"].name, "trained": args.trained_model, "merge": args.merge_model,
                              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                          "loadavg_1m_start": round(os.getloadavg()[0], 2)}, "populations": {}}

    def save(name: str, pop_report: dict[str, Any]) -> None:
        report["populations"][name] = pop_report
        atomic_write_json(args.out, report)

    for name, pop in pops.items():
        run_population(name, pop, backends, judges, args, lambda r, name=name: save(name, r))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
