"""Profiles through several rounds: round cutting, synthetic drift users, topic metrics, and the chain
of incremental updates on a tiny model keeping its provenance exact round after round."""

from __future__ import annotations

import json

import pytest

from bump_profiles.data.schema import Interaction, User
from bump_profiles.data.synthetic import TOPICS
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.errors import DataError
from bump_profiles.evaluation.drift import (
    category_shift,
    cut_rounds,
    dropped_mentions,
    dropped_topics,
    make_drift_users,
    mentions,
    splice_authors,
    topic_recall,
)
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.profiles.provenance import item_hash, load_reads, refuse_seen
from bump_profiles.profiles.update import update_profiles


def it(i: int, label: str = "x") -> Interaction:
    return Interaction(id=str(i), fields={"text": f"item {i}"}, label=label, date=f"2024-01-{i + 1:02d}")


def test_cut_rounds_equal_rounds_in_time_order_and_fixed_size():
    items = [it(i) for i in range(11)]
    rounds = cut_rounds(items, 3)
    assert [len(r) for r in rounds] == [4, 4, 3]
    assert [x for r in rounds for x in r] == items  # consecutive, nothing lost or repeated
    fixed = cut_rounds(items, 3, per_round=3)
    assert [[x.id for x in r] for r in fixed] == [["2", "3", "4"], ["5", "6", "7"], ["8", "9", "10"]]  # the most recent 9
    with pytest.raises(DataError, match="3 rounds of 4 need 12"):
        cut_rounds(items, 3, per_round=4)
    with pytest.raises(DataError, match="cannot fill 12 rounds"):
        cut_rounds(items, 12)


def test_a_long_first_round_holds_the_older_history_and_later_rounds_keep_their_size():
    items = [it(i) for i in range(20)]
    rounds = cut_rounds(items, 4, per_round=3, first=8)
    assert [len(r) for r in rounds] == [8, 3, 3, 3]
    assert [x for r in rounds for x in r] == items[-17:]  # the most recent 8 + 3 * 3, consecutive, in time order
    assert cut_rounds(items, 4, per_round=3, first=3) == cut_rounds(items, 4, per_round=3)  # the default first round
    with pytest.raises(DataError, match=r"4 rounds of 3 \(the first of 15\) need 24"):
        cut_rounds(items, 4, per_round=3, first=15)
    with pytest.raises(DataError, match="goes with per_round"):
        cut_rounds(items, 4, first=8)


def test_drift_users_follow_their_schedule_round_by_round():
    users = make_drift_users(8, rounds=5, per_round=6, seed=3)
    assert [u.extra["kind"] for u in users[:4]] == ["keep", "add", "drop", "shift"]
    for u in users:
        schedule = u.extra["topics"]
        rounds = cut_rounds(u.interactions, 5, per_round=6)
        assert len(u.interactions) == 30
        for r, (now, items) in enumerate(zip(schedule, rounds, strict=True)):
            assert {x.label for x in items} == set(now), (u.extra["kind"], r)  # every true topic shows, nothing else
            for x in items:
                assert any(w in x.text for w in TOPICS[x.label])
    keep, add, drop, shift = (users[i].extra["topics"] for i in range(4))
    assert keep[0] == keep[4] and len(keep[0]) == 2
    assert [len(t) for t in add] == [1, 2, 3, 3, 3] and add[0][0] in add[4]
    assert [len(t) for t in drop] == [3, 2, 1, 1, 1] and set(drop[4]) < set(drop[0])
    assert not set(shift[0]) & set(shift[2])  # by round 3 nothing of round 1 is left
    assert dropped_topics(shift, 2) == sorted(set(shift[0]) | {shift[1][0]} - set(shift[2]))
    assert dropped_topics(keep, 4) == [] and dropped_topics(add, 4) == []
    assert make_drift_users(8, rounds=5, per_round=6, seed=3)[5].interactions == users[5].interactions  # seeded


def test_switch_users_replace_both_topics_after_a_long_first_round():
    users = make_drift_users(4, rounds=5, per_round=6, seed=3, kinds=["switch", "keep"], first_round=40)
    switch, keep = users[0], users[1]
    assert len(switch.interactions) == 40 + 4 * 6 and switch.extra["first_round"] == 40
    old, new = switch.extra["topics"][0], switch.extra["topics"][1]
    assert len(old) == len(new) == 2 and not set(old) & set(new)
    assert all(t == new for t in switch.extra["topics"][1:])  # replaced once, then kept: a profile can follow it
    rounds = cut_rounds(switch.interactions, 5, per_round=6, first=40)
    assert {x.label for x in rounds[0]} == set(old) and all({x.label for x in r} == set(new) for r in rounds[1:])
    assert dropped_topics(switch.extra["topics"], 1) == sorted(old)
    assert keep.extra["topics"][0] == keep.extra["topics"][4]
    with pytest.raises(DataError, match="unknown drift kind 'swap'"):
        make_drift_users(1, kinds=["swap"])


def test_distinct_users_never_repeat_a_text_and_the_draw_is_unchanged_up_to_the_first_repeat():
    """A repeated text counts as read by the provenance check: a long first round on two topics repeats some
    (seed 3: a few), and the benchmark's users are drawn distinct; the benchmark's earlier populations had no
    repeat, so they are drawn as before."""
    plain = make_drift_users(8, rounds=4, per_round=6, seed=3, kinds=["keep"], first_round=100)
    distinct = make_drift_users(8, rounds=4, per_round=6, seed=3, kinds=["keep"], first_round=100, distinct=True)
    repeats = [len(u.interactions) - len({x.text for x in u.interactions}) for u in plain]
    assert sum(repeats) > 0 and all(len({x.text for x in u.interactions}) == 118 for u in distinct)
    first = next(i for i, n in enumerate(repeats) if n)
    assert [u.interactions for u in plain[:first]] == [u.interactions for u in distinct[:first]]
    assert plain[first].interactions != distinct[first].interactions
    old = make_drift_users(32, rounds=6, per_round=6, seed=9101)  # the 32-user population of docs/drift.md
    assert [u.interactions for u in old] == [u.interactions for u in make_drift_users(32, rounds=6, per_round=6, seed=9101, distinct=True)]


def test_topic_metrics_and_their_adversaries():
    assert mentions("Loves sourdough and bread.", "baking") and mentions("Into Cooking-Asian food", "cooking-asian")
    assert not mentions("Loves cooking in general.", "cooking-asian")  # "cooking" alone names no topic
    assert not mentions("passionate reader", "baking")
    assert topic_recall("bakes brioche; rides a bicycle", ["baking", "cycling", "chess"]) == pytest.approx(2 / 3)
    assert dropped_mentions("bakes brioche", ["baking", "chess"]) == 0.5 and dropped_mentions("x", []) is None
    # a profile that says nothing recalls nothing; one that names every topic recalls all and keeps every dropped one
    assert topic_recall("A curious person with many interests.", ["baking", "chess"]) == 0
    everything = " ".join(TOPICS)
    assert topic_recall(everything, ["baking", "chess"]) == 1 and dropped_mentions(everything, ["jazz"]) == 1


def test_category_shift_is_total_variation():
    a = [it(0, "politics"), it(1, "politics")]
    assert category_shift(a, a) == 0
    assert category_shift(a, [it(2, "sports"), it(3, "sports")]) == 1
    assert category_shift(a, [it(2, "politics"), it(3, "sports")]) == 0.5


class Recording:
    """A backend that records every prompt it is given, passing generation to a real one."""

    def __init__(self, inner):
        self.inner, self.name, self.prompts = inner, inner.name, []

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def complete(self, messages_batch, **kw):
        self.prompts += [m[-1]["content"] for m in messages_batch]
        return self.inner.complete(messages_batch, **kw)


def test_spliced_authors_switch_subject_at_the_first_round_and_use_each_author_once():
    """One author's newest `first` items, then another's newest `later`, dated after them; the two authors'
    categories far enough apart; no author twice, none of the excluded; too few pairs is refused."""
    def author(name: str, label: str, n: int) -> User:
        return User(id=name, interactions=[Interaction(id=f"{name}-{i}", fields={"text": f"{name} {i}"}, label=label,
                                                       date=f"2020-0{1 + i // 28}-{1 + i % 28:02d}") for i in range(n)])

    authors = [author("p1", "politics", 12), author("p2", "politics", 12), author("s1", "sports", 12),
               author("s2", "sports", 4), author("f1", "food", 12), author("short", "travel", 2)]
    spliced = splice_authors(authors, 2, first=5, later=3, min_shift=0.5, seed=0, exclude=["f1"])
    assert len(spliced) == 2
    used = [a for u in spliced for a in u.extra["authors"]]
    assert len(set(used)) == 4 and "f1" not in used and "short" not in used
    for u in spliced:
        before, after = u.extra["authors"]
        assert u.extra["kind"] == "spliced" and u.id == f"{before} -> {after}"
        source = {a.id: a for a in authors}
        assert [x.id for x in u.interactions] == [x.id for x in source[before].interactions[-5:]] + [
            x.id for x in source[after].interactions[-3:]]
        assert category_shift(u.interactions[:5], u.interactions[5:]) >= 0.5  # a politics author never follows one
        dates = [x.date for x in u.interactions]
        assert dates == sorted(dates) and dates[4] < dates[5]
        assert cut_rounds(u.interactions, 3, 1, 6)[0] == u.interactions[:6]
    with pytest.raises(DataError, match="only 2 author pairs"):
        splice_authors(authors, 3, first=5, later=3, min_shift=0.5, seed=0)


def test_five_rounds_of_updates_keep_provenance_exact(tiny_lm, tmp_path):
    """Chain of 5 rounds through ``update_profiles`` on a tiny model: each profile's ``read`` is exactly
    the union of its rounds (each item once), the update prompt shows only the round's new items, and
    nothing of the next round is ever read; a sixth call with nothing new carries the profile as is."""
    model, tok = tiny_lm
    backend = Recording(TransformersBackend(model, tok, batch_size=4, name="tiny"))
    users = make_drift_users(3, rounds=5, per_round=4, seed=11)
    rounds = {u.id: cut_rounds(u.interactions, 5, per_round=4) for u in users}
    for u in users:
        assert len({item_hash(x) for x in u.interactions}) == 20  # distinct texts: a hash names one item
    previous = tmp_path / "round0.jsonl"
    previous.write_text("")
    prompts = dict(update_prompt=UpdatePrompt(history_items=None, history_tokens=None),
                   scratch_prompt=ProfilePrompt(history_items=None, history_tokens=None))
    for r in range(1, 7):
        log = [User(u.id, [x for rnd in rounds[u.id][: min(r, 5)] for x in rnd]) for u in users]
        out = tmp_path / f"round{r}.jsonl"
        backend.prompts = []
        update_profiles(log, previous, backend, out, max_new_tokens=4, **prompts)
        rows = {row["user_id"]: row for row in map(json.loads, out.read_text().splitlines())}
        assert set(rows) == {u.id for u in users}
        for u in users:
            row, done = rows[u.id], rounds[u.id][: min(r, 5)]
            want = sorted(item_hash(x) for rnd in done for x in rnd)
            items = row["read"]["items"]
            assert sorted(items) == want and row["read"]["n"] == len(items) == len(want) == 4 * min(r, 5)  # each once
            assert row["mode"] == ("scratch" if r == 1 else "update" if r <= 5 else "carried")
            assert row["new_interactions"] == (4 if r <= 5 else 0)
            if r < 5:  # nothing of the next round was read, and the check that says so can fail
                refuse_seen(out, load_reads(out), {u.id: rounds[u.id][r]})
            with pytest.raises(DataError, match="read 4 of the items"):
                refuse_seen(out, load_reads(out), {u.id: done[-1]})
        if r <= 5:
            assert len(backend.prompts) == 3
            for u in users:  # the round's prompt for this user: its new items only (the first round: all it has)
                prompt = next(p for p in backend.prompts if rounds[u.id][r - 1][0].text in p)
                assert all(x.text in prompt for x in rounds[u.id][r - 1])
                assert not any(x.text in prompt for rnd in rounds[u.id][: r - 1] for x in rnd)
                assert not any(x.text in prompt for rnd in rounds[u.id][r:] for x in rnd)
        else:
            assert backend.prompts == []  # nothing new: no generation, the text is carried
            prev_rows = {row["user_id"]: row for row in map(json.loads, previous.read_text().splitlines())}
            assert all(rows[u.id]["profile"] == prev_rows[u.id]["profile"] for u in users)
        previous = out
