"""Chunked reading: which items each note reads, and that the merge sees every note in order."""

from __future__ import annotations

import re

import pytest

from bump_profiles.data.schema import Interaction
from bump_profiles.engines.backends import Completion
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.chunked import ChunkedPrompt, chunk_history, write_notes
from bump_profiles.profiles.prompts import ProfilePrompt


def items(n: int) -> list[Interaction]:
    return [Interaction(id=str(i), fields={"text": f"item{i}"}, date=f"2020-01-{i + 1:02d}") for i in range(n)]


def test_chunks_are_the_most_recent_items_in_order_without_overlap():
    got = chunk_history(items(60), chunks=4, per_chunk=12)
    assert [[x.text for x in c] for c in got] == [[f"item{i}" for i in range(a, a + 12)] for a in (12, 24, 36, 48)]


def test_a_short_history_gives_near_equal_chunks_never_empty():
    got = chunk_history(items(10), chunks=4, per_chunk=12)
    assert sorted(len(c) for c in got) == [2, 2, 3, 3]
    assert [x.text for c in got for x in c] == [f"item{i}" for i in range(10)]
    assert [len(c) for c in chunk_history(items(3), chunks=4, per_chunk=12)] == [1, 1, 1]


def test_bad_budgets_and_an_empty_history_are_refused():
    with pytest.raises(ConfigError, match="at least 1"):
        chunk_history(items(5), chunks=0, per_chunk=3)
    with pytest.raises(DataError, match="empty"):
        chunk_history([], chunks=2, per_chunk=3)
    with pytest.raises(ConfigError, match="{history}"):
        ChunkedPrompt(ProfilePrompt(), merge_template="no field")


class EchoBackend:
    """Answers each prompt with the items it shows, so a test can see what every note read."""

    name = "echo"

    def __init__(self):
        self.temperatures: list[float] = []

    def count_tokens(self, text: str) -> None:
        return None

    def complete(self, batch, *, max_new_tokens, temperature):
        self.temperatures.append(temperature)
        return [Completion(" ".join(re.findall(r"item\d+", m[-1]["content"])), 1, 1, False) for m in batch]


def test_notes_read_their_own_chunk_only_and_the_merge_lists_them_oldest_first():
    prompt = ChunkedPrompt(ProfilePrompt(history_items=None, history_tokens=None, max_words=7), chunks=2, per_chunk=3)
    backend = EchoBackend()
    notes = write_notes(backend, prompt, {"a": items(8), "b": items(4)}, max_new_tokens=8)
    assert backend.temperatures == [0.0]  # one greedy call for every note of every user
    # the history is rendered most recent first inside a note
    assert notes == {"a": ["item4 item3 item2", "item7 item6 item5"], "b": ["item1 item0", "item3 item2"]}
    merge = prompt.merge_messages(notes["a"])[0]["content"]
    assert merge.index("period 1: item4 item3 item2") < merge.index("period 2: item7 item6 item5")
    assert "at most 7 words" in merge


def test_profile_command_reads_chunks_through_notes_kept_beside_the_profiles(tiny_model, tmp_path, capsys):
    """``profile --chunks 2``: every user's two chunks (of --history-items items, held-out items excluded) are
    noted once in ``<out>.notes.jsonl``; the profiles are merged from them; a rerun writes no note again."""
    import json

    from bump_profiles.cli import main
    from bump_profiles.data import split_users, write_users_jsonl
    from bump_profiles.data.synthetic import make_users
    from bump_profiles.profiles.chunked import chunk_key

    data, out = tmp_path / "users.jsonl", tmp_path / "profiles.jsonl"
    users = make_users(3, seed=2)
    write_users_jsonl(users, data)
    args = ["profile", "--model", str(tiny_model), "--data", str(data), "--out", str(out), "--k", "2", "--chunks", "2",
            "--history-items", "3", "--max-new-tokens", "4", "--no-progress"]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["written"] == 3
    notes = [json.loads(line)["chunk"] for line in (tmp_path / "profiles.jsonl.notes.jsonl").read_text().splitlines()]
    want = [chunk_key(c) for s in split_users(users, 2, strategy="recent").users for c in chunk_history(s.history, 2, 3)]
    assert sorted(notes) == sorted(want) and len(want) == 6
    out.unlink()
    assert main(args) == 0
    assert len((tmp_path / "profiles.jsonl.notes.jsonl").read_text().splitlines()) == 6
    assert main([*args, "--best-of", "2"]) == 2 and "--chunks" in capsys.readouterr().err
