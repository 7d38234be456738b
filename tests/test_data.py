"""Loaders, grouping, splits, rendering and synthetic users, on fixtures the tests write."""

from __future__ import annotations

import json

import pytest

from bump_profiles.data import (
    load_jsonl,
    load_lamp_questions,
    load_users,
    render_history,
    split_users,
    to_dataset,
)
from bump_profiles.data.schema import Interaction, User, sort_by_date
from bump_profiles.data.synthetic import TOPICS, interests_profile, make_task, make_users
from bump_profiles.errors import DataError


def _lamp_question(qid: str, items: list[tuple[str, str]], **extra) -> dict:
    profile = [{"id": f"{qid}{n}", "title": t, "abstract": a} for n, (t, a) in enumerate(items)]
    return {"id": qid, "input": 'For an author who has written the paper with the title "X", which reference is related?', "profile": profile, **extra}


def test_lamp_questions_grouped_into_users_by_profile_overlap(tmp_path):
    shared = [(f"title {i}", f"abstract {i}") for i in range(10)]
    other = [(f"other {i}", f"text {i}") for i in range(6)]
    questions = [
        _lamp_question("1", shared),
        _lamp_question("2", shared[:9] + [("new", "paper")]),  # 9 of 10 shared: same person
        _lamp_question("3", other),
    ]
    path = tmp_path / "LaMP_1" / "dev_questions.json"
    path.parent.mkdir()
    path.write_text(json.dumps(questions))
    lamp = load_lamp_questions(path)
    assert lamp.task == "LaMP_1"
    assert lamp.n_questions == 3 and len(lamp.users) == 2
    first = lamp.users[0]
    assert [q["id"] for q in first.extra["questions"]] == ["1", "2"]
    # only the items both profiles hold: an item one question lacks may be its answer
    assert len(first.interactions) == 9
    assert {q: len(v) for q, v in first.extra["question_items"].items()} == {"1": 10, "2": 10}
    assert lamp.question_user() == {"1": first.id, "2": first.id, "3": lamp.users[1].id}


def test_lamp_user_id_field_wins_over_overlap(tmp_path):
    items = [("a", "b"), ("c", "d")]
    questions = [_lamp_question("1", items, user_id="u1"), _lamp_question("2", items, user_id="u2")]
    path = tmp_path / "LaMP_1_q.json"
    path.write_text(json.dumps(questions))
    assert [u.id for u in load_lamp_questions(path).users] == ["u1", "u2"]


def test_lamp_duplicate_question_ids_refused_naming_file_and_id(tmp_path):
    # Two questions with id "1" used to load as 2 users while question_user() kept one of them.
    questions = [_lamp_question("1", [("a", "b")]), _lamp_question("1", [("c", "d")])]
    path = tmp_path / "LaMP_1_q.json"
    path.write_text(json.dumps(questions))
    with pytest.raises(DataError, match=r"duplicate question id '1'") as err:
        load_lamp_questions(path)
    assert str(path) in str(err.value) and "record 1" in str(err.value)


def test_lamp_task_detected_from_fields_and_outputs_attached(tmp_path):
    news = [{"id": "7", "input": "Which category does this article relate to?",
             "profile": [{"id": "70", "title": "Vote", "text": "Election day", "category": "politics"}]}]
    movies = [{"id": "8", "input": "Which tag does this movie relate to?",
               "profile": [{"id": "80", "description": "A heist", "tag": "crime"}]}]
    (tmp_path / "a.json").write_text(json.dumps(news))
    (tmp_path / "b.json").write_text(json.dumps(movies))
    (tmp_path / "a_out.json").write_text(json.dumps({"task": "LaMP_2", "golds": [{"id": "7", "output": "politics"}]}))
    a = load_lamp_questions(tmp_path / "a.json", outputs=tmp_path / "a_out.json")
    b = load_lamp_questions(tmp_path / "b.json")
    assert a.task == "LaMP_2_news" and b.task == "LaMP_2_movies"
    assert a.users[0].extra["questions"][0]["output"] == "politics"
    assert a.users[0].interactions[0].label == "politics"
    assert "politics" in a.users[0].interactions[0].text and "crime" in b.users[0].interactions[0].text


def test_jsonl_interaction_lines_sorted_by_time_and_metadata_kept(tmp_path):
    path = tmp_path / "logs.jsonl"
    rows = [
        {"user_id": "a", "text": "second", "timestamp": "2024-02-01", "rating": 4},
        {"user_id": "a", "text": "first", "timestamp": "2024-01-01T10:00:00Z"},
        {"user_id": 7, "text": "only", "timestamp": 1700000000},
        {"user_id": "a", "text": "second", "timestamp": "2024-02-01"},  # exact duplicate: dropped
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    users = load_jsonl(path)
    assert [u.id for u in users] == ["a", "7"]
    assert [it.text for it in users[0].interactions] == ["first", "second"]
    assert users[0].interactions[1].raw["rating"] == 4


def test_jsonl_user_lines_round_trip(tmp_path):
    from bump_profiles.data import write_users_jsonl

    users = make_users(3, seed=1)
    path = tmp_path / "users.jsonl"
    write_users_jsonl(users, path)
    back = load_users(path)
    assert [u.id for u in back] == [u.id for u in users]
    assert [it.text for it in back[0].interactions] == [it.text for it in users[0].interactions]
    assert back[0].extra["interests"] == users[0].extra["interests"]


def test_split_recent_random_offset_and_skips():
    user = User("u", [Interaction(str(i), {"text": f"t{i}"}) for i in range(6)])
    short = User("s", [Interaction("x", {"text": "x"}), Interaction("y", {"text": "y"})])
    split = split_users([user, short], 2)
    assert split.skipped == ["s"]
    (s,) = split.users
    assert [it.id for it in s.heldout] == ["4", "5"] and [it.id for it in s.history] == ["0", "1", "2", "3"]
    fold1 = split_users([user], 2, offset=2).users[0]
    assert [it.id for it in fold1.heldout] == ["2", "3"] and [it.id for it in fold1.history] == ["0", "1"]
    r1 = split_users([user], 2, strategy="random", seed=3).users[0]
    r2 = split_users([user], 2, strategy="random", seed=3).users[0]
    assert [it.id for it in r1.heldout] == [it.id for it in r2.heldout]
    assert len(r1.history) == 4 and not {it.id for it in r1.history} & {it.id for it in r1.heldout}


def test_render_history_most_recent_first_within_budgets():
    items = [Interaction(str(i), {"text": f"item number {i} " + "word " * 5}) for i in range(10)]
    text = render_history(items, max_items=3)
    assert text.splitlines()[0].startswith("- item number 9") and len(text.splitlines()) == 3
    budget = render_history(items, max_tokens=20)
    assert len(budget.split()) <= 20
    assert budget.splitlines()[0].startswith("- item number 9")


def test_sort_by_date_keeps_order_without_dates():
    items = [Interaction("b", {"text": "b"}, date="2024-02-01"), Interaction("a", {"text": "a"})]
    assert [it.id for it in sort_by_date(items)] == ["b", "a"]


def test_synthetic_users_deterministic_and_task_depends_on_interests():
    assert len(TOPICS) >= 20
    a, b = make_users(5, seed=3), make_users(5, seed=3)
    assert [[it.text for it in u.interactions] for u in a] == [[it.text for it in u.interactions] for u in b]
    assert make_users(5, seed=4)[0].interactions[0].text != a[0].interactions[0].text or a[0].extra != make_users(5, seed=4)[0].extra
    for user in a:
        vocab = {w for t in user.extra["interests"] for w in TOPICS[t]}
        for it in user.interactions:
            assert it.label in user.extra["interests"]
            assert any(w in it.text for w in vocab)
        assert user.extra["interests"][0] in interests_profile(user)
    for row, user in zip(make_task(a, seed=3), a, strict=True):
        chosen = row["input"].split(f"{row['output']}: ")[1].split('"')[1].split()
        own = {w for t in user.extra["interests"] for w in TOPICS[t]}
        assert set(chosen) <= own  # the gold candidate is about one of the user's interests


def test_to_dataset_one_row_per_user():
    ds = to_dataset(make_users(4, seed=0))
    assert ds.num_rows == 4 and set(ds.column_names) == {"user_id", "interactions", "dates"}


@pytest.mark.shared
def test_every_lamp_sample_loads(lamp_samples):
    files = sorted(lamp_samples.glob("*/*_questions.json"))
    assert files
    for path in files:
        outputs = path.with_name(path.name.replace("questions", "outputs"))
        lamp = load_lamp_questions(path, outputs=outputs if outputs.exists() else None)
        assert lamp.users and sum(len(u.extra["questions"]) for u in lamp.users) == lamp.n_questions
        assert all(len(u.interactions) > 0 for u in lamp.users)
    for path in sorted(lamp_samples.glob("*/*_outputs.json")):
        from bump_profiles.data import load_lamp_outputs

        assert load_lamp_outputs(path)


@pytest.mark.shared
def test_lamp2_news_questions_of_one_person_become_one_user(lamp_samples):
    lamp = load_lamp_questions(lamp_samples / "LaMP_2_news" / "test_questions.json")
    assert lamp.n_questions == 4 and len(lamp.users) == 1  # questions 120-123 share 60 of 61 items
