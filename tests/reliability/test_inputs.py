"""Every loader names the file, the record or line, the field and the problem."""

from __future__ import annotations

import json
import logging

import pytest

from bump_profiles.data import load_jsonl, load_lamp_questions, split_users
from bump_profiles.data.schema import MAX_CHARS
from bump_profiles.errors import DataError


def _jsonl(tmp_path, *rows, name="logs.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (['{"user_id": "a", "text": "x"}', "[1, 2]"], "line 2: expected a JSON object, got list"),
        ([{"user_id": "a", "text": 5}], "line 1: field 'text': 'text' must be a string, got int"),
        ([{"user_id": "a", "text": "   "}], "line 1: field 'text': interaction text is empty"),
        ([{"text": "x"}], "line 1: field 'user_id': record has no 'user_id'"),
        ([{"user_id": ["a"], "text": "x"}], "line 1: field 'user_id'"),
        ([{"user_id": "a", "text": "x", "timestamp": {"d": 1}}], "field 'timestamp'"),
        ([{"user_id": "a", "interactions": []}, {"user_id": "a", "interactions": []}], "line 2: field 'user_id': duplicate user id 'a'"),
        ([{"user_id": "a", "interactions": "nope"}], "field 'interactions': 'interactions' must be a list"),
        ([{"user_id": "a", "interactions": [{"text": ""}]}], "line 1 interaction 0: field 'text': interaction text is empty"),
    ],
)
def test_jsonl_errors_name_file_line_field_and_problem(tmp_path, rows, expected):
    path = _jsonl(tmp_path, *rows)
    with pytest.raises(DataError) as err:
        load_jsonl(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_non_utf8_bytes_are_named(tmp_path):
    path = tmp_path / "logs.jsonl"
    path.write_bytes(b'{"user_id": "a", "text": "ok"}\n{"user_id": "a", "text": "caf\xe9"}\n')
    with pytest.raises(DataError, match="line 2: not UTF-8"):
        load_jsonl(path)
    lamp = tmp_path / "q.json"
    lamp.write_bytes(b"[\xff]")
    with pytest.raises(DataError, match="not UTF-8"):
        load_lamp_questions(lamp)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ({"id": "1", "input": "x", "profile": "abc"}, "field 'profile': 'profile' must be a list"),
        ({"id": "1", "input": "x", "profile": [{"id": "a", "title": 3, "abstract": "b"}]}, "profile item 0: field 'title': 'title' must be text, got int"),
        ({"id": "1", "input": "x", "profile": [{"id": "a", "title": " ", "abstract": ""}]}, "profile item 0: interaction has no text"),
        ({"input": "x", "profile": []}, "field 'id': question has no 'id'"),
    ],
)
def test_lamp_errors_name_file_question_field_and_problem(tmp_path, question, expected):
    path = tmp_path / "LaMP_1_questions.json"
    path.write_text(json.dumps([question]))
    with pytest.raises(DataError) as err:
        load_lamp_questions(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_huge_interactions_cut_and_duplicates_dropped_with_a_warning(tmp_path, caplog):
    huge = "word " * (MAX_CHARS // 2)
    path = _jsonl(tmp_path, {"user_id": "a", "text": huge}, {"user_id": "a", "text": "dup", "timestamp": 1},
                  {"user_id": "a", "text": "dup", "timestamp": 1})
    with caplog.at_level(logging.WARNING):
        (user,) = load_jsonl(path)
    assert len(user.interactions) == 2
    assert max(len(it.text) for it in user.interactions) <= MAX_CHARS
    assert "dropped 1 duplicate" in caplog.text and "cut 1 interactions" in caplog.text


def test_users_too_short_for_the_split_are_skipped_and_counted(tmp_path):
    path = _jsonl(tmp_path, *[{"user_id": u, "text": f"{u}{i}"} for u, n in (("a", 3), ("b", 1), ("c", 2)) for i in range(n)])
    split = split_users(load_jsonl(path), 2)
    assert [s.user.id for s in split.users] == ["a"] and split.skipped == ["b", "c"]
