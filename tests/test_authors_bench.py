"""The news-authors benchmark end to end on a tiny random model and five authors (3 evaluated), in seconds;
then resumed (every stage skipped). The statistics it reports are checked on known cases."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from authors_fixture import write_authors
from fakes import save_tiny

from bump_profiles.authors.bench import TRAIN_PART, profile_sets
from bump_profiles.authors.config import load_bench_config
from bump_profiles.authors.data import category_task
from bump_profiles.authors.evaluate import METHODS, probe_training
from bump_profiles.authors.pipeline import GENERATORS, REFERENCES, run
from bump_profiles.authors.stats import (
    grouped_interval,
    interval,
    paired_difference,
    per_author_ndcg,
    repetition_rate,
    resamples,
)

REPO = Path(__file__).resolve().parents[1]


def tiny_bench(tmp_path: Path, model: Path, *extra: str):
    run_dir = tmp_path / "run"
    return load_bench_config(REPO / "configs" / "authors-cpu.yaml", [
        f"out={run_dir}", f"data.path={write_authors(tmp_path / 'authors.jsonl', n_authors=5)}", "data.eval_authors=3",
        "data.history_cap=12", "budget_minutes=null",
        f"train.policy={{model: {model}, lora: true, lora_r: 4, lora_alpha: 8}}",
        "train.prompt={max_words: 10, history_items: 4, history_tokens: 60}",
        f"train.judge={{kind: lexical, model: {run_dir / 'lexical_corpus.txt'}}}",
        "train.reward.users_per_call=2",
        "train.grpo={num_generations: 2, max_completion_length: 8, max_steps: 1, micro_batch_size: 2, save_steps: 1, bf16: false}",
        f"eval.likelihood_model={model}", "eval.judge_dtype=float32", f"eval.reader_model={model}", "eval.bootstrap=100",
        "eval.full_history_tokens=80", *extra,
    ])


def test_benchmark_runs_end_to_end_and_resumes(tmp_path):
    model = save_tiny(tmp_path / "tiny")
    config = tiny_bench(tmp_path, model, "eval.all_at_once=[training, lexical]")
    docs = tmp_path / "benchmark-authors.md"
    bench = run(config, docs=docs)
    out = bench.out

    users = json.loads((out / "train-bump" / "users.json").read_text())
    assert sorted(users["train"]) == sorted(s.user.id for s in bench.split.train) and not users["eval"]
    assert not set(users["train"]) & {s.user.id for s in bench.split.eval}
    corpus = (out / "lexical_corpus.txt").read_text()
    assert not any(it.fields["title"] in corpus for s in bench.split.eval for it in s.heldout)
    for name in (*GENERATORS, *REFERENCES):
        assert len(bench.profile_file(name).read_text().splitlines()) == 3, name
    results = json.loads((out / "results.json").read_text())
    assert set(results["intrinsic"]) == {"training", "likelihood", "lexical"}
    for name, judge in results["intrinsic"].items():  # all at once with the judges named in eval.all_at_once
        assert set(judge["groupings"]) == {"groups of 2", *(["all at once"] if name != "likelihood" else [])}
        for grouping in judge["groupings"].values():
            assert set(grouping["rows"]) == {*GENERATORS, *REFERENCES}
            for row in grouping["rows"].values():
                assert 0 <= row["a"]["lo"] <= row["a"]["mean"] <= row["a"]["hi"] <= 1
    assert set(results["downstream"]) == {"category / llm", "category / probe", "headline / llm"}  # probe: labels only
    for rows in results["downstream"].values():
        assert set(rows) == set(METHODS)
        assert all(r["questions"] == 6 for r in rows.values())
    assert set(results["training"]) == {"bump", "task"} and results["training"]["task"]["global_step"] == 1
    report = (out / "report.md").read_text()
    assert "| BUMP |" in report and "BUMP - history@budget" in report and "random ranking" in report
    assert "**Goal not met.**" in report  # a tiny random model meets nothing, and the report says so
    assert "](figure.png)" in report and "](figure-authors.png)" in docs.read_text()
    assert (out / "figure.png").stat().st_size > 1000 and (tmp_path / "figure-authors.png").exists()
    # the probe reader is fitted on the training authors' questions, each with its own author's context
    train_ids = {s.user.id for s in bench.split.train}
    train_sets = profile_sets(bench, "train")
    assert set(train_sets) == set(TRAIN_PART) and all(set(p) == train_ids for p in train_sets.values())
    examples, golds = probe_training(bench, category_task(bench.split.labels), "BUMP", train_sets)
    assert {e.user_id for e in examples} == train_ids and set(golds) == {e.id for e in examples}
    assert all(e.context == (train_sets["BUMP"][e.user_id].strip() or None) for e in examples)
    assert not set(golds) & {f"cat-{it.id}" for s in bench.split.eval for it in s.heldout}
    probe_bump = json.loads((out / "downstream" / "category" / "probe" / "BUMP" / "results.json").read_text())
    assert probe_bump["probe_fit"] == "training" and probe_bump["questions"] == 6
    category = results["downstream"]["category / llm"]
    assert "bump_minus" not in category["BUMP"] and set(category["zero-shot"]["bump_minus"]) == {"accuracy"}

    run(config, ["report"], beside=[out])  # a run beside itself: its trained rows appear twice, labelled
    beside = (out / "report.md").read_text()
    assert "| BUMP (seed 0) |" in beside and "| task-reward (seed 0) |" in beside and "bump (seed 0): 1 steps" in beside
    run(replace(config, label="floor"), ["report"])  # a run's label names its rows when it is shown beside another
    run(config, ["report"], beside=[out])
    assert "| BUMP (floor) |" in (out / "report.md").read_text()

    timings = (out / "timings.json").read_text()
    run(config, [s for s in ("split", "train-bump", "train-task", "profiles", "references", "judges", "downstream")])
    assert (out / "timings.json").read_text() == timings  # every stage found its output and was skipped


class OwnerJudge:
    """Scores 1 when a profile names the item's author ("uN" in both texts), else 0; "" names nobody."""

    symmetric = True

    def score(self, queries, documents, direction):
        def owner(text):
            return next((w for w in text.split() if w.startswith("u")), None)

        return np.array([[float(owner(q) is not None and owner(q) == owner(d)) for d in documents] for q in queries])


def test_per_author_ndcg_and_a_profile_that_says_nothing(tmp_path):
    from bump_profiles.authors.data import load_authors, split_authors
    from bump_profiles.data.schema import Interaction
    from bump_profiles.evaluation.intrinsic import score_groups

    split = split_authors(load_authors(write_authors(tmp_path / "a.jsonl", n_authors=5)), eval_authors=3, k=2, seed=0)
    for n, s in enumerate(split.eval):  # each held-out item names its author
        s.heldout = [Interaction(f"{n}-{i}", {"title": f"u{n} item {i}"}) for i in range(2)]
    ids = {s.user.id: f"u{n}" for n, s in enumerate(split.eval)}
    perfect = per_author_ndcg(score_groups(split.eval, {u: f"{t} profile" for u, t in ids.items()}, OwnerJudge()), "none")
    assert all(v["ndcg_a"] == pytest.approx(1.0) and v["ndcg_b"] == pytest.approx(1.0) for v in perfect.values())
    nothing = per_author_ndcg(score_groups(split.eval, dict.fromkeys(ids, ""), OwnerJudge()), "none")
    assert set(nothing) == set(ids) and all(v["ndcg_a"] <= v["random_a"] and v["ndcg_b"] <= v["random_b"] for v in nothing.values())


def test_bootstrap_intervals_and_paired_differences():
    draws = resamples(30, 500, seed=0)
    values = np.linspace(0, 1, 30)
    ci = interval(values, draws)
    assert ci["mean"] == pytest.approx(0.5) and ci["lo"] < 0.5 < ci["hi"]
    units = [str(i) for i in range(30)]
    a = {u: float(v) for u, v in zip(units, values, strict=True)}
    assert not paired_difference(a, a, units, draws)["excludes_zero"]
    assert paired_difference({u: v + 0.1 for u, v in a.items()}, a, units, draws)["excludes_zero"]
    rows = [(u, 1.0) for u in units[:15]] + [(u, 0.0) for u in units[15:]]
    g = grouped_interval(units, rows, lambda xs: sum(xs) / len(xs), draws)
    assert g["mean"] == pytest.approx(0.5) and g["lo"] < 0.5 < g["hi"]
    assert repetition_rate("a b c a b c a b c") > 0.5 and repetition_rate("one two three four") == 0


def test_a_second_seed_evaluates_only_bump(tmp_path):
    """``eval.only: [BUMP]`` (a second training seed shown --beside): no task-reward run, only BUMP's profiles,
    judges and downstream methods; the other sets are never generated nor read."""
    model = save_tiny(tmp_path / "tiny")
    config = tiny_bench(tmp_path, model, "eval.only=[BUMP]", "eval.all_at_once=[training, lexical]")
    bench = run(config, [s for s in ("split", "train-bump", "profiles", "references", "judges", "downstream", "report")])
    assert [p.name for p in sorted((bench.out / "profiles").glob("*.jsonl"))] == ["BUMP.jsonl"]
    assert not (bench.out / "train-task").exists()
    results = json.loads((bench.out / "results.json").read_text())
    for name, judge in results["intrinsic"].items():
        assert all(set(g["rows"]) == {"BUMP"} for g in judge["groupings"].values())
        assert ("all at once" in judge["groupings"]) == (name != "likelihood")  # eval.all_at_once leaves it out
    assert all(set(rows) == {"BUMP", "BUMP+retrieval"} for rows in results["downstream"].values())

    (tmp_path / "first").mkdir()
    first = tiny_bench(tmp_path / "first", model)  # a first run shown with this one beside it: no empty task-reward row
    run(first, docs=None)
    run(first, ["report"], beside=[bench.out])
    report = (Path(first.out) / "report.md").read_text()
    assert "| BUMP (seed 0) |" in report and "| BUMP+retrieval (seed 0) |" in report and "task-reward (seed 0)" not in report


def test_eval_only_must_name_bump_and_known_sets(tmp_path):
    with pytest.raises(Exception, match="is not one of eval.judges"):
        load_bench_config(REPO / "configs" / "authors-cpu.yaml", ["eval.judges=[training]", "eval.all_at_once=[lexical]"])
    with pytest.raises(Exception, match="must list BUMP"):
        load_bench_config(REPO / "configs" / "authors-cpu.yaml", ["eval.only=[zero-shot]"])
    config = load_bench_config(REPO / "configs" / "authors-cpu.yaml", [f"out={tmp_path}", "eval.only=[BUMP, bump2]"])
    with pytest.raises(Exception, match="unknown profile set"):
        run(config, ["report"])


def test_the_table_leaves_out_methods_the_run_did_not_evaluate():
    """A fold run without downstream readers has no none/retrieval numbers: no empty rows for them."""
    from bump_profiles.authors.report import table

    ci = {"mean": 0.5, "lo": 0.4, "hi": 0.6}
    grouping = {"rows": {"BUMP": {"a": ci, "b": ci}}, "random": {"a": 0.2, "b": 0.2}}
    r = {"rows": ["none", "retrieval", "BUMP"], "intrinsic": {"lexical": {"groupings": {"all": grouping}}},
         "downstream": {}, "profiles": {"BUMP": {"tokens_mean": 30, "copy_rate_4": 0.1, "repetition_3": 0.0}}}
    rows = [line.split(" | ")[0].strip("| ") for line in table(r).splitlines()[2:]]
    assert rows == ["BUMP", "random ranking"]
