"""Every author evaluated: cross-fitted folds, near and far horizons, and the pooled report (tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from authors_fixture import write_authors
from fakes import load_script, save_tiny
from test_authors_bench import OwnerJudge

from bump_profiles.authors.data import load_authors, split_authors
from bump_profiles.authors.evaluate import horizon_mask
from bump_profiles.authors.stats import per_author_ndcg
from bump_profiles.data.schema import Interaction
from bump_profiles.evaluation.intrinsic import score_groups, select_items

REPO = Path(__file__).resolve().parents[1]


def test_folds_evaluate_every_author_once_and_train_on_the_others(tmp_path):
    users = load_authors(write_authors(tmp_path / "a.jsonl", n_authors=9))
    splits = [split_authors(users, eval_authors=2, k=2, seed=3, folds=3, fold=i, horizon=6, min_history=3) for i in range(3)]
    evaluated = [s.user.id for sp in splits for s in sp.eval]
    assert sorted(evaluated) == sorted(u.id for u in users)  # each author in exactly one fold
    for sp in splits:
        assert not {s.user.id for s in sp.train} & {s.user.id for s in sp.eval}
        assert len(sp.train) + len(sp.eval) == 9
        for s in sp.eval:
            n = len(s.user.interactions)
            assert len(s.heldout) == min(6, n - 3) and len(s.history) >= 3  # few articles: fewer far ones
            assert s.history + s.heldout == s.user.interactions  # the history is everything before the held-out
        near, far = sp.horizons()["near"], sp.horizons()["far"]
        assert all(len(s.heldout) == 2 for s in near)
        assert all(a.heldout + b.heldout == s.heldout for a, b, s in zip(near, far, sp.eval, strict=True))
        assert all(len(s.heldout) == 2 for s in sp.train)  # training authors: the reward's k
    # fold 0 of a folded split evaluates exactly the authors the plain split with eval_authors = n / folds does
    plain = split_authors(users, eval_authors=3, k=2, seed=3)
    assert [s.user.id for s in plain.eval] == [s.user.id for s in splits[0].eval]


def test_a_horizon_ranks_its_own_items_only(tmp_path):
    """Items tagged with their author on the near horizon only: a profile naming its author is perfect on
    near and no better than random on far; a profile that says nothing is no better than random on either."""
    users = load_authors(write_authors(tmp_path / "a.jsonl", n_authors=5))
    split = split_authors(users, eval_authors=4, k=2, seed=0, horizon=5)
    for n, s in enumerate(split.eval):
        s.heldout = [Interaction(f"{n}-{i}", {"title": f"u{n} near {i}" if i < 2 else f"far {i} item"}) for i in range(5)]
    ids = {s.user.id: f"u{n}" for n, s in enumerate(split.eval)}

    def ndcg(profiles, horizon):
        groups = score_groups(split.eval, profiles, OwnerJudge(), None)
        return per_author_ndcg([select_items(g, horizon_mask(g, split.near, horizon)) for g in groups], "none")

    named = {u: f"{t} profile" for u, t in ids.items()}
    assert all(v["ndcg_a"] == pytest.approx(1) and v["ndcg_b"] == pytest.approx(1) for v in ndcg(named, "near").values())
    for horizon, profiles in (("far", named), ("near", dict.fromkeys(ids, "")), ("far", dict.fromkeys(ids, ""))):
        scores = ndcg(profiles, horizon)
        assert set(scores) == set(ids)
        assert all(v["ndcg_a"] <= v["random_a"] + 1e-9 and v["ndcg_b"] <= v["random_b"] + 1e-9 for v in scores.values())
    assert all(v["random_a"] < 0.6 for v in ndcg(named, "far").values())  # 3 far items of 4 authors: 12 candidates


def fold_args(tmp_path: Path, model: Path, run_dir: Path) -> list[str]:
    args = ["--config", str(REPO / "configs" / "authors-folds.yaml")]
    for item in [f"out={run_dir}", f"data.path={write_authors(tmp_path / 'authors.jsonl', n_authors=6)}", "data.folds=2",
                 "data.horizon=4", "data.min_history=3", "data.history_cap=12", "budget_minutes=null",
                 f"train.policy={{model: {model}, lora: true, lora_r: 4, lora_alpha: 8}}",
                 "train.prompt={max_words: 10, history_items: 4, history_tokens: 60}",
                 f"train.judge={{kind: lexical, model: {run_dir}/fold-0/lexical_corpus.txt}}", "train.reward.users_per_call=2",
                 "train.grpo={num_generations: 2, max_completion_length: 8, max_steps: 1, micro_batch_size: 2, save_steps: 1, bf16: false}",
                 f"eval.likelihood_model={model}", "eval.judge_dtype=float32", "eval.bootstrap=100", "eval.full_history_tokens=80"]:
        args += ["--set", item]
    return args


def authors_main():
    return load_script("benchmarks/authors.py").main


def test_cross_fitted_benchmark_pools_every_author(tmp_path):
    """Two folds on six authors, trained for a step each on a tiny model; the pooled report ranks and
    bootstraps over all six authors, near and far, and compares every set with history@budget."""
    model = save_tiny(tmp_path / "tiny")
    run_dir = tmp_path / "run"
    docs = tmp_path / "bench.md"
    assert authors_main()([*fold_args(tmp_path, model, run_dir), "--docs", str(docs), "--fold", "all"]) == 0

    r = json.loads((run_dir / "pooled" / "results.json").read_text())
    assert r["authors"] == 6 and r["folds"] == 2 and len(r["training"]["bump"]) == 2
    lexical = r["intrinsic"]["lexical"]["groupings"]
    assert {"near, groups of 2", "far, groups of 2", "near, each fold at once", "far, each fold at once",
            "near, all authors at once", "far, all authors at once"} <= set(lexical)
    assert not any("all authors" in g for g in r["intrinsic"]["likelihood"]["groupings"])  # too slow: never pooled at once
    for grouping in lexical.values():
        assert grouping["authors"] == 6 and set(grouping["rows"]) == {"zero-shot", "BUMP", "task-reward", "history@budget",
                                                                        "keywords", "full history", "history@central",
                                                                        "keywords@budget"}
        assert "history@budget - history@budget" not in grouping["differences"]
        assert {"BUMP - history@budget", "zero-shot - history@budget", "BUMP - zero-shot"} <= set(grouping["differences"])
    assert lexical["near, all authors at once"]["random"]["a"] < lexical["near, each fold at once"]["random"]["a"]
    report = (run_dir / "pooled" / "report.md").read_text()
    assert "minus history@budget" in report and "| BUMP |" in report and "lexical: far, all authors at once" in report
    assert "authors-folds:begin" in docs.read_text() and (tmp_path / "figure-authors-folds.png").stat().st_size > 1000
    # the pooled IDF corpus holds every author's history and no held-out article of anyone
    corpus = (run_dir / "pooled" / "lexical_corpus.txt").read_text()
    folds = [json.loads((run_dir / f"fold-{i}" / "split.json").read_text()) for i in range(2)]
    assert sorted(a for f in folds for a in f["authors"]["eval"]) == sorted(f"author-{i}" for i in range(6))
    assert "story 39" not in corpus  # author 0's most recent article (40 written, the last 4 held out)


def test_untrained_sets_run_without_any_training(tmp_path):
    """``eval.budget_from: zero-shot`` with only the untrained sets: no training stage runs, history@budget is
    cut to each author's zero-shot profile length, and the pooled report compares each set with it. The
    likelihood judge scores only the sets ``eval.judge_sets`` gives it; their cells stay empty elsewhere."""
    from bump_profiles.authors.bench import Bench
    from bump_profiles.authors.config import load_bench_config
    from bump_profiles.authors.folds import fold_config
    from bump_profiles.data.profiles import load_profiles

    model = save_tiny(tmp_path / "tiny")
    run_dir = tmp_path / "run"
    extra = ["--set", "eval.budget_from=zero-shot", "--set", "eval.only=[zero-shot, history@budget, keywords, full history]",
             "--set", "eval.judge_sets={likelihood: [history@budget, keywords]}",
             "--stages", "split,profiles,references,judges,report"]
    args = fold_args(tmp_path, model, run_dir)
    assert authors_main()([*args, *extra, "--fold", "all"]) == 0
    assert not list(run_dir.glob("fold-*/train-*"))
    r = json.loads((run_dir / "pooled" / "results.json").read_text())
    rows = r["intrinsic"]["lexical"]["groupings"]["far, all authors at once"]
    assert set(rows["rows"]) == {"zero-shot", "history@budget", "keywords", "full history"}
    assert set(rows["differences"]) == {"zero-shot - history@budget", "keywords - history@budget", "full history - history@budget"}
    likelihood = r["intrinsic"]["likelihood"]["groupings"]["far, groups of 2"]
    assert set(likelihood["rows"]) == {"history@budget", "keywords"} and set(likelihood["differences"]) == {"keywords - history@budget"}
    zero_row = next(line for line in (run_dir / "pooled" / "report.md").read_text().splitlines() if line.startswith("| zero-shot |"))
    assert zero_row.split(" | ")[3].strip() == ""  # the likelihood columns come first: empty for a set it did not score
    config = load_bench_config(args[1], [a for a in args[2:] if a != "--set"] + ["eval.budget_from=zero-shot"])
    b = Bench.open(fold_config(config, 1))
    count = b.count_tokens()
    zero, hist = load_profiles(b.profile_file("zero-shot")), load_profiles(b.profile_file("history@budget"))
    assert all(count(hist[u]) <= max(count(zero[u]), 1) for u in zero)


def test_judge_sets_name_known_judges_and_sets(tmp_path):
    from bump_profiles.authors.config import load_bench_config
    from bump_profiles.authors.pipeline import run
    from bump_profiles.errors import ConfigError

    config = str(REPO / "configs" / "authors-folds.yaml")
    with pytest.raises(ConfigError, match="eval.judge_sets: 'embedding' is not one of eval.judges"):
        load_bench_config(config, ["eval.judge_sets={embedding: [BUMP]}"])
    bad = load_bench_config(config, [f"out={tmp_path}", "eval.judge_sets={likelihood: [BUMP, profile]}"])
    with pytest.raises(ConfigError, match=r"eval.judge_sets.likelihood: unknown profile set\(s\) profile"):
        run(bad, ["split"])


def test_judging_without_null_scores_where_the_calibration_needs_none():
    """The authors' judges run without the null texts under calibration ``none`` (a sixth of the likelihood
    judge's passes): the per-author NDCG is the same, and the judge never sees the empty text."""
    from fakes import OverlapJudge

    from bump_profiles.data.schema import User
    from bump_profiles.data.split import UserSplit
    from bump_profiles.rewards.scoring import NULL_TEXT

    def it(i: int, text: str) -> Interaction:
        return Interaction(id=str(i), fields={"text": text})

    splits = [UserSplit(User(f"u{k}", []), [], [it(k * 10 + j, f"{w} story {j}") for j in range(3)])
              for k, w in enumerate(["cats", "dogs", "birds", "fish"])]
    profiles = {"u0": "cats", "u1": "dogs and birds", "u2": "birds", "u3": "story"}
    with_null, without = OverlapJudge(), OverlapJudge()
    a = per_author_ndcg(score_groups(splits, profiles, with_null, 2), "none")
    b = per_author_ndcg(score_groups(splits, profiles, without, 2, null=False), "none")
    assert a == b
    assert any(NULL_TEXT in q for q, _, _ in with_null.calls)
    assert not any(NULL_TEXT in q or NULL_TEXT in d for q, d, _ in without.calls)


def test_chunked_mode_profiles_merge_notes_the_untrained_model_wrote_once(tmp_path):
    """``train.prompt.mode: chunked``: the evaluation authors' chunks are noted once by the untrained model
    (kept in the fold's ``notes/``, reused by every generator and by a rerun) and the profiles merge them."""
    from bump_profiles.authors.bench import Bench
    from bump_profiles.authors.config import load_bench_config
    from bump_profiles.authors.folds import fold_config
    from bump_profiles.data.profiles import load_profiles
    from bump_profiles.profiles.chunked import chunk_key, chunked_prompt

    model = save_tiny(tmp_path / "tiny")
    run_dir = tmp_path / "run"
    args = [a if not a.startswith("train.prompt=") else "train.prompt={max_words: 10, history_items: 4, history_tokens: 60, "
            "mode: chunked, chunks: 2}" for a in fold_args(tmp_path, model, run_dir)]
    extra = ["--set", "eval.budget_from=zero-shot", "--set", "eval.only=[zero-shot, history@budget]", "--stages", "split,profiles"]
    assert authors_main()([*args, *extra, "--fold", "0"]) == 0
    config = load_bench_config(args[1], [a for a in args[2:] if a != "--set"] + ["eval.budget_from=zero-shot"])
    b = Bench.open(fold_config(config, 0))
    notes = b.path("notes", "eval.jsonl")
    prompt = chunked_prompt(b.train_config("bump").prompt)
    want = {chunk_key(c) for s in b.splits("eval") for c in prompt.chunked(s.history)}
    kept = [json.loads(line)["chunk"] for line in notes.read_text().splitlines()]
    assert sorted(kept) == sorted(want) and len(want) == 2 * len(b.splits("eval"))
    assert set(load_profiles(b.profile_file("zero-shot"))) == {s.user.id for s in b.splits("eval")}
    b.profile_file("zero-shot").unlink()  # profiles again: the notes are read back, none written twice
    assert authors_main()([*args, *extra, "--fold", "0"]) == 0
    assert len(notes.read_text().splitlines()) == len(kept)
