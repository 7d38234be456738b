"""Refresh mode ``notes`` (rolling notes): a note per round of new interactions, written once, and the
profile merged from the latest ``notes_kept`` notes; the store's notes and their stale writes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bump_profiles.cli import main
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.profiles.refresh import EmptyProfileError, Refresher
from bump_profiles.store import NewInteraction, ProfileStore, StaleWriteError
from serving.fakes import EchoBackend


class NumberedBackend(EchoBackend):
    """Answers each prompt with a distinct text ("written <1>", "written <2>", ...)."""

    def complete(self, messages_batch, **kw):
        out = super().complete(messages_batch, **kw)
        first = len(self.prompts) - len(out) + 1
        return [replace(c, text=f"written <{first + k}>") for k, c in enumerate(out)]


def add(store, user, *texts):
    return store.add_interactions(user, [NewInteraction(t) for t in texts])


def test_three_rounds_keep_two_notes_each_on_its_own_new_items(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    backend = NumberedBackend()
    r = Refresher(store, backend, mode="notes", notes_kept=2)
    rounds = [add(store, "u", "alpha one", "alpha two")]
    v1 = r.refresh("u")
    assert backend.calls == [1]  # the first profile is the first note: no merge call
    rounds.append(add(store, "u", "beta one", "beta two", "beta three"))
    r.refresh("u")
    rounds.append(add(store, "u", "gamma one"))
    v3 = r.refresh("u")
    assert backend.calls == [1, 1, 1, 1, 1]  # a note a round, a merge from the second round on
    notes = store.latest_notes("u", 10)
    assert [n.source_seqs for n in notes] == rounds  # each round read once, whole, by its own note
    assert [n.through_seq for n in notes] == [r_[-1] for r_ in rounds]
    assert (v1.mode, v1.text, v1.source_seqs, v1.prompt_tokens) == ("notes", notes[0].text, rounds[0], None)
    merge_prompt = backend.prompts[-1]
    assert notes[1].text in merge_prompt and notes[2].text in merge_prompt and notes[0].text not in merge_prompt
    assert not any(word in merge_prompt for word in ("alpha", "beta", "gamma"))  # notes only, no interaction
    assert "gamma one" in backend.prompts[-2] and "beta" not in backend.prompts[-2]  # the third note's prompt
    assert (v3.version, v3.mode, v3.previous_version, v3.through_seq) == (3, "notes", 2, rounds[2][-1])
    assert v3.source_seqs == sorted(rounds[1] + rounds[2]) and v3.text == store.current_profile("u").text
    assert v3.prompt_tokens == len(merge_prompt.split())  # the merge prompt's; the notes' are on their rows
    assert r.refresh("u") is None and len(backend.prompts) == 5  # nothing new: nothing generated


def test_a_backlog_is_noted_in_chunks_then_merged_once(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    backend = NumberedBackend()
    budget = dict(history_items=4, history_tokens=400)
    r = Refresher(store, backend, mode="notes", notes_kept=10, scratch_prompt=ProfilePrompt(**budget),
                  update_prompt=UpdatePrompt(**budget))
    add(store, "u", "first")
    r.refresh("u")
    backlog = add(store, "u", *(f"item {k}" for k in range(10)))
    v2 = r.refresh("u")
    notes = store.latest_notes("u", 10)[1:]
    assert [n.source_seqs for n in notes] == [backlog[:4], backlog[4:8], backlog[8:]]  # oldest first, 4 a note
    assert backend.calls == [1, 1, 1, 1, 1]  # the first note, three chunk notes, one merge
    assert v2.through_seq == backlog[-1] and v2.version == 2 and len(store.profile_history("u")) == 2


def test_many_users_note_round_by_round_then_merge_in_one_call(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    backend = NumberedBackend()
    budget = dict(history_items=2, history_tokens=400)
    r = Refresher(store, backend, mode="notes", scratch_prompt=ProfilePrompt(**budget), update_prompt=UpdatePrompt(**budget))
    for u in ("a", "b", "c"):
        add(store, u, f"{u} first")
    r.refresh_many(["a", "b", "c"])
    add(store, "a", "a1", "a2", "a3")  # two chunks
    add(store, "b", "b1")  # one chunk; c: nothing new
    backend.calls.clear()
    results = r.refresh_many(["a", "b", "c"])
    assert backend.calls == [2, 1, 2]  # chunk round 1 (a, b), round 2 (a), the merges of a and b
    assert [p.version for p in results[:2]] == [2, 2] and results[2] is None


def test_an_empty_note_or_merge_stores_nothing(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    add(store, "u", "one")
    with pytest.raises(EmptyProfileError):
        Refresher(store, EchoBackend(empty=True), mode="notes").refresh("u")
    assert store.latest_notes("u", 5) == [] and store.current_profile("u") is None
    Refresher(store, EchoBackend(), mode="notes").refresh("u")
    add(store, "u", "two")
    calls = []

    class EmptyMerge(EchoBackend):
        def complete(self, messages_batch, **kw):
            calls.append(messages_batch)
            out = super().complete(messages_batch, **kw)
            return [replace(c, text="") for c in out] if len(calls) == 2 else out

    with pytest.raises(EmptyProfileError):
        Refresher(store, EmptyMerge(), mode="notes").refresh("u")
    assert len(store.latest_notes("u", 5)) == 2 and store.current_profile("u").version == 1
    v2 = Refresher(store, EchoBackend(), mode="notes").refresh("u")  # the next refresh merges the kept notes
    assert v2.version == 2 and v2.through_seq == store.latest_notes("u", 1)[0].through_seq


def test_a_concurrent_note_write_is_stale_and_writes_nothing(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    first = add(store, "u", "one")
    store.write_note("u", "note one", generator="g", source_seqs=first, prompt_tokens=3, after_seq=None)
    second = add(store, "u", "two")
    r = Refresher(store, EchoBackend(), mode="notes")
    pending = r.prepare("u")
    assert [i.seq for i in pending.shown] == second and pending.after_note == first[-1]
    store.write_note("u", "written meanwhile", generator="g", source_seqs=second, prompt_tokens=3, after_seq=first[-1])
    with pytest.raises(StaleWriteError):
        r.write_note(pending, "late note", 5)
    with pytest.raises(StaleWriteError):  # a first note, when one exists already
        store.write_note("u", "late", generator="g", source_seqs=first, prompt_tokens=None, after_seq=None)
    assert [n.text for n in store.latest_notes("u", 5)] == ["note one", "written meanwhile"]
    assert [n.text for n in store.latest_notes("u", 1)] == ["written meanwhile"]


def test_notes_kept_is_validated():
    with pytest.raises(ConfigError):
        Refresher(None, EchoBackend(), mode="notes", notes_kept=0)  # type: ignore[arg-type]


def test_refresh_command_in_notes_mode(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "s.db")
    store = ProfileStore(db)
    for u in ("x", "y"):
        add(store, u, f"{u} one", f"{u} two")
    monkeypatch.setattr("bump_profiles.commands.profile._backend", lambda args: EchoBackend())
    assert main(["refresh", "--store", db, "--mode", "notes", "--notes-kept", "2"]) == 0
    add(store, "x", "x three")
    assert main(["refresh", "--store", db, "--mode", "notes", "--notes-kept", "2"]) == 0
    outs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [(o["written"], o["failed"]) for o in outs] == [(2, 0), (1, 0)]
    x = store.current_profile("x")
    assert (x.version, x.mode, x.source_seqs) == (2, "notes", [i.seq for i in store.interactions("x")])
    assert len(store.latest_notes("x", 5)) == 2 and len(store.latest_notes("y", 5)) == 1
    assert main(["refresh", "--store", db, "--mode", "notes", "--engine", "ray"]) != 0
    assert "runs with the local engine" in capsys.readouterr().err


def test_a_chained_note_records_only_what_its_prompt_shows(tmp_path):
    """The note prompt is the scratch prompt: with budgets tighter than the update prompt's, a chunk is cut
    to them, so every recorded interaction was in the note's prompt."""
    store = ProfileStore(str(tmp_path / "s.db"))
    backend = NumberedBackend()
    r = Refresher(store, backend, mode="notes", scratch_prompt=ProfilePrompt(history_items=3),
                  update_prompt=UpdatePrompt(history_items=5))
    add(store, "u", "first")
    r.refresh("u")
    backlog = add(store, "u", *(f"thing{k}" for k in range(7)))
    r.refresh("u")
    notes = store.latest_notes("u", 10)[1:]
    assert [n.source_seqs for n in notes] == [backlog[:3], backlog[3:6], backlog[6:]]
    texts = {i.seq: i.text for i in store.interactions("u") if i.seq in backlog}
    for prompt, n in zip(backend.prompts[1:4], notes, strict=True):
        assert sorted(t for t in texts.values() if t in prompt.split()) == sorted(texts[s] for s in n.source_seqs)


def test_refresh_command_in_notes_mode_with_a_real_model(tmp_path, capsys):
    """The CLI's own transformers backend (a tiny random model whose texts are not blank): two refreshes,
    two notes, then a merge generated by the model."""
    from fakes import save_tiny

    model = str(save_tiny(tmp_path / "tiny", varied=True))
    db = str(tmp_path / "s.db")
    store = ProfileStore(db)
    first = add(store, "x", "x one", "x two")
    args = ["refresh", "--store", db, "--mode", "notes", "--model", model, "--max-new-tokens", "8"]
    assert main(args) == 0
    second = add(store, "x", "x three")
    assert main(args) == 0
    outs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:]]
    assert [(o["written"], o["failed"]) for o in outs] == [(1, 0), (1, 0)]
    notes = store.latest_notes("x", 5)
    assert [n.source_seqs for n in notes] == [first, second] and all(n.prompt_tokens for n in notes)
    v1, v2 = store.profile_history("x")
    assert (v1.text, v1.prompt_tokens) == (notes[0].text, None)
    assert (v2.mode, v2.source_seqs, v2.generator) == ("notes", first + second, model) and v2.prompt_tokens > 0
