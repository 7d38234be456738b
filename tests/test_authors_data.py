"""The news-authors split: deterministic, capped and leak-free, on a fixture written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from authors_fixture import write_authors

from bump_profiles.authors.config import load_bench_config
from bump_profiles.authors.data import (
    category_questions,
    check_same_split,
    headline_questions,
    load_authors,
    split_authors,
    write_training_file,
)
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.prompts import ProfilePrompt
from bump_profiles.train.data import build_dataset, prepare_data

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def authors(tmp_path):
    return load_authors(write_authors(tmp_path / "authors.jsonl"))


def test_split_is_deterministic_and_seeded(authors):
    a = split_authors(authors, eval_authors=3, k=2, seed=0, cap=10)
    b = split_authors(authors, eval_authors=3, k=2, seed=0, cap=10)
    assert a.ids() == b.ids()
    assert [[it.id for it in s.heldout] for s in a.eval] == [[it.id for it in s.heldout] for s in b.eval]
    others = [split_authors(authors, eval_authors=3, k=2, seed=s, cap=10).ids()["eval"] for s in range(1, 6)]
    assert any(set(o) != set(a.ids()["eval"]) for o in others)
    assert len(a.eval) == 3 and len(a.train) == 6 and not set(a.ids()["eval"]) & set(a.ids()["train"])


def test_heldout_are_the_k_most_recent_and_prolific_authors_are_capped(authors):
    split = split_authors(authors, eval_authors=3, k=2, seed=0, cap=10)
    by_id = {u.id: u for u in authors}
    for s in split.train + split.eval:
        assert len(s.history) + len(s.heldout) <= 10
        assert [it.id for it in s.heldout] == [it.id for it in by_id[s.user.id].interactions[-2:]]
    prolific = next(s for s in split.train + split.eval if s.user.id == "author-0")
    assert len(prolific.history) == 8  # 40 articles capped to the 10 most recent, 2 held out


def test_no_evaluation_article_reaches_training_and_no_heldout_reaches_a_generator(authors, tmp_path):
    split = split_authors(authors, eval_authors=3, k=2, seed=0, cap=10)
    questions, outputs = tmp_path / "train_questions.json", tmp_path / "train_outputs.json"
    write_training_file(split.train, split.labels, questions, outputs)
    eval_ids = {it.id for s in split.eval for it in [*s.history, *s.heldout]}
    written = json.loads(questions.read_text())
    assert {row["user_id"] for row in written} == {s.user.id for s in split.train}
    assert not eval_ids & {item["id"] for row in written for item in row["profile"]}

    config = load_bench_config(REPO / "configs" / "authors-cpu.yaml", [f"out={tmp_path / 'run'}"])
    for run in ("bump", "task"):
        data = prepare_data(config.train_config(run, questions, outputs))
        assert not data.eval  # the benchmark holds the evaluation authors out itself
        check_same_split(split.train, data.train)
        rows = build_dataset(data.train, ProfilePrompt(max_words=10, history_items=50, history_tokens=None), with_task=run == "task")
        prompts = " ".join(m["content"] for row in rows for m in row["prompt"])
        heldout_titles = [it.fields["title"] for s in split.train + split.eval for it in s.heldout]
        assert heldout_titles and not any(t in prompts for t in heldout_titles)
        assert not any(it.fields["title"] in prompts for s in split.eval for it in s.history)
    generator_prompts = " ".join(ProfilePrompt(history_items=50, history_tokens=None).messages(s.history)[0]["content"]
                                 for s in split.eval)
    assert not any(it.fields["title"] in generator_prompts for s in split.eval for it in s.heldout)


def test_downstream_questions_come_from_heldout_evaluation_articles_only(authors):
    split = split_authors(authors, eval_authors=3, k=2, seed=0, cap=10)
    cat, head = category_questions(split.eval, split.labels), headline_questions(split.eval)
    heldout = {it.id: (s.user.id, it) for s in split.eval for it in s.heldout}
    assert len(cat) == len(head) == 6
    for q in cat:
        user, it = heldout[q["id"].removeprefix("cat-")]
        assert q["user_id"] == user and q["output"] == it.label and q["output"] in split.labels
        assert it.fields["title"] in q["input"]
    for q in head:
        user, it = heldout[q["id"].removeprefix("head-")]
        assert q["output"] == it.fields["title"] and it.fields["title"] not in q["input"]


def test_a_bad_article_names_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"user_id": "a", "text": "x. y", "title": "x", "category": "C", "timestamp": "2020-01-01"}\n'
                    '{"user_id": "a", "text": "x. y", "title": "x", "timestamp": "2020-01-02"}\n')
    with pytest.raises(DataError, match="line 2.*category|category.*line 2"):
        load_authors(path)


def test_bench_config_rejects_what_the_benchmark_sets(tmp_path):
    with pytest.raises(ConfigError, match="output_dir"):
        load_bench_config(REPO / "configs" / "authors-cpu.yaml", ["train.output_dir=x"])
    with pytest.raises(ConfigError, match="eval.judges"):
        load_bench_config(REPO / "configs" / "authors-cpu.yaml", ["eval.judges=[yesno]"])
