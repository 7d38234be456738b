"""The store against real databases: SQLite always, PostgreSQL when a server can be started."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import inspect

from bump_profiles.store import NewInteraction, ProfileStore, StaleWriteError
from bump_profiles.store.tables import Base


@pytest.fixture
def store(store_url):
    s = ProfileStore(store_url)
    yield s
    s.close()


def test_schema_is_created_by_the_migration_and_matches_the_tables(store):
    insp = inspect(store.engine)
    assert set(insp.get_table_names()) >= {"users", "interactions", "profiles", "jobs", "alembic_version"}
    for table in Base.metadata.sorted_tables:
        assert {c["name"] for c in insp.get_columns(table.name)} == set(table.columns.keys()), table.name


def test_reopening_migrates_nothing_and_keeps_data(store_url):
    a = ProfileStore(store_url)
    a.add_interactions("u", [NewInteraction("one")])
    a.close()
    b = ProfileStore(store_url)
    assert [i.text for i in b.interactions("u")] == ["one"]
    b.close()


def test_interactions_ordered_and_external_ids_deduplicate(store):
    first = store.add_interactions("ana", [NewInteraction("a", external_id="e1"), NewInteraction("b", timestamp="2024-01-02")])
    again = store.add_interactions("ana", [NewInteraction("a again", external_id="e1"), NewInteraction("c")])
    assert again[0] == first[0] and again[1] > first[1]
    assert [i.text for i in store.interactions("ana")] == ["a", "b", "c"]
    assert [i.text for i in store.interactions("ana", after_seq=first[1])] == ["c"]
    assert store.interactions("ana")[1].timestamp == "2024-01-02"
    assert store.users() == ["ana"]


def test_profile_versions_provenance_and_stale_writes(store):
    seqs = store.add_interactions("ben", [NewInteraction("x"), NewInteraction("y")])
    assert store.current_profile("ben") is None
    v1 = store.write_profile("ben", "likes x and y", generator="gen-a", mode="scratch", previous_version=None,
                             through_seq=seqs[-1], source_seqs=seqs, prompt_tokens=12)
    more = store.add_interactions("ben", [NewInteraction("z")])
    v2 = store.write_profile("ben", "likes x, y, z", generator="gen-a", mode="update", previous_version=1,
                             through_seq=more[-1], source_seqs=more)
    assert (v1.version, v2.version) == (1, 2)
    cur = store.current_profile("ben")
    assert (cur.version, cur.text, cur.mode, cur.previous_version, cur.source_seqs, cur.generator) == (
        2, "likes x, y, z", "update", 1, more, "gen-a")
    assert [p.version for p in store.profile_history("ben")] == [1, 2]
    with pytest.raises(StaleWriteError):  # built on v1, but v2 exists: nothing is written
        store.write_profile("ben", "late", generator="g", mode="update", previous_version=1, through_seq=more[-1], source_seqs=[])
    assert [p.text for p in store.profile_history("ben")][-1] == "likes x, y, z"


def test_stale_users_by_count_and_age(store):
    s1 = store.add_interactions("old", [NewInteraction("a")])
    store.add_interactions("fresh", [NewInteraction("b")])
    store.add_interactions("none", [NewInteraction("c")])
    for uid, seq in (("old", s1[0]), ("fresh", store.interactions("fresh")[0].seq)):
        store.write_profile(uid, "p", generator="g", mode="scratch", previous_version=None, through_seq=seq, source_seqs=[seq])
    assert store.stale_users(min_new=1) == ["none"]
    store.add_interactions("old", [NewInteraction("d")])
    store.add_interactions("fresh", [NewInteraction("e")])
    assert store.stale_users(min_new=2) == ["none"]
    assert store.stale_users(min_new=1) == ["fresh", "none", "old"]
    later = store.current_profile("old").created_at + timedelta(hours=2)
    assert store.stale_users(min_new=5, max_age_s=3600, now=later) == ["fresh", "none", "old"]


def test_concurrent_writers_lose_and_duplicate_nothing(store):
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(15):
                store.add_interactions(f"user{w % 3}", [NewInteraction(f"w{w}-{i}", external_id=f"w{w}-{i}")] * 2)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    texts = [i.text for u in store.users() for i in store.interactions(u)]
    assert sorted(texts) == sorted(f"w{w}-{i}" for w in range(6) for i in range(15))


def test_unfinished_jobs_are_marked_interrupted(store):
    job = store.create_job(["a", "b"])
    store.update_job(job.id, status="running", done=1)
    assert store.interrupt_unfinished_jobs() == 1
    j = store.job(job.id)
    assert (j.status, j.done, j.total) == ("interrupted", 1, 2)


def test_notes_follow_one_another_and_a_stale_note_writes_nothing(store):
    first = store.add_interactions("cy", [NewInteraction("a"), NewInteraction("b")])
    n1 = store.write_note("cy", "about a and b", generator="g", source_seqs=first, prompt_tokens=9, after_seq=None)
    more = store.add_interactions("cy", [NewInteraction("c")])
    n2 = store.write_note("cy", "about c", generator="g", source_seqs=more, prompt_tokens=None, after_seq=n1.through_seq)
    kept = store.latest_notes("cy", 5)
    assert [(n.id, n.text, n.through_seq, n.source_seqs, n.prompt_tokens) for n in kept] == [
        (n1.id, "about a and b", first[-1], first, 9), (n2.id, "about c", more[-1], more, None)]
    assert [n.id for n in store.latest_notes("cy", 1)] == [n2.id]
    for after in (n1.through_seq, None):  # built after n1, or as a first note: n2 exists, nothing is written
        with pytest.raises(StaleWriteError):
            store.write_note("cy", "late", generator="g", source_seqs=more, prompt_tokens=1, after_seq=after)
    assert len(store.latest_notes("cy", 5)) == 2
    v = store.write_profile("cy", "merged", generator="g", mode="notes", previous_version=None,
                            through_seq=n2.through_seq, source_seqs=first + more)
    assert store.current_profile("cy").mode == v.mode == "notes"


def test_concurrent_first_notes_of_a_user_write_one(store):
    """Notes on different interactions (so different through_seq: the unique key alone would let both in),
    each built as the user's first note: the per-user lock lets exactly one write."""
    seqs = store.add_interactions("dee", [NewInteraction(f"item {k}") for k in range(6)])
    barrier, outcomes = threading.Barrier(6), []

    def writer(k: int) -> None:
        barrier.wait()
        try:
            store.write_note("dee", f"note {k}", generator="g", source_seqs=seqs[: k + 1], prompt_tokens=None,
                             after_seq=None)
            outcomes.append("written")
        except StaleWriteError:
            outcomes.append("stale")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stale"] * 5 + ["written"] and len(store.latest_notes("dee", 10)) == 1


def test_the_notes_migration_upgrades_and_downgrades(store_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from bump_profiles.store.engine import MIGRATIONS, database_url, upgrade

    engine = create_engine(database_url(store_url))
    upgrade(engine, "0002")
    assert "notes" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert {c["name"] for c in inspect(engine).get_columns("notes")} == set(Base.metadata.tables["notes"].columns.keys())
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert "notes" not in inspect(engine).get_table_names()
    engine.dispose()


def test_a_note_reads_only_interactions_after_the_note_it_follows(store):
    seqs = store.add_interactions("eve", [NewInteraction("a"), NewInteraction("b")])
    with pytest.raises(ValueError):
        store.write_note("eve", "nothing read", generator="g", source_seqs=[], prompt_tokens=None, after_seq=None)
    store.write_note("eve", "about a", generator="g", source_seqs=seqs[:1], prompt_tokens=None, after_seq=None)
    with pytest.raises(ValueError):  # a again: noted twice
        store.write_note("eve", "about a, b", generator="g", source_seqs=seqs, prompt_tokens=None, after_seq=seqs[0])
    assert [n.text for n in store.latest_notes("eve", 5)] == ["about a"]
