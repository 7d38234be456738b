"""Concurrent writers and readers of one user on real databases.

PostgreSQL draws an interaction's ``seq`` at INSERT but shows the row at COMMIT, so without a lock a
reader could see seq 11 before seq 10 commits, record ``through_seq = 11`` and never read 10. The
store serializes the writers of a user and makes readers wait for them (per-user advisory locks);
SQLite serializes every writer already. These tests hold a transaction open just before its COMMIT
to make the interleaving happen, not merely possible."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import event

from bump_profiles.profiles.refresh import Refresher
from bump_profiles.store import NewInteraction, ProfileStore, StaleWriteError
from serving.fakes import EchoBackend


@pytest.fixture
def store(store_url):
    s = ProfileStore(store_url)
    yield s
    s.close()


class CommitGate:
    """Holds a chosen thread's transaction just before COMMIT until ``release``."""

    def __init__(self, store: ProfileStore):
        self.local = threading.local()
        self.paused, self.released = threading.Event(), threading.Event()
        event.listen(store.engine, "commit", self._hold)

    def _hold(self, _conn) -> None:
        if getattr(self.local, "hold", False):
            self.local.hold = False
            self.paused.set()
            assert self.released.wait(30)

    def run_held(self, fn, *args, **kwargs) -> threading.Thread:
        """Run ``fn`` in a thread whose first transaction waits before COMMIT; returns once it waits."""
        def target() -> None:
            self.local.hold = True
            try:
                fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 (kept for the test to read)
                self.error = exc
        self.error = None
        t = threading.Thread(target=target)
        t.start()
        assert self.paused.wait(30), "the held transaction never reached its COMMIT"
        return t


def _thread(fn, out: list) -> threading.Thread:
    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001
            out.append(exc)
    t = threading.Thread(target=target)
    t.start()
    return t


def test_a_reader_never_sees_a_later_seq_before_an_earlier_one_commits(store):
    store.add_interactions("u", [NewInteraction("zero")])
    gate = CommitGate(store)
    first = gate.run_held(store.add_interactions, "u", [NewInteraction("first: its seq is drawn, not yet committed")])
    second: list = []
    t2 = _thread(lambda: store.add_interactions("u", [NewInteraction("second")]), second)
    t2.join(1.0)  # on today's PostgreSQL code it commits a larger seq now, while 'first' is still open
    read: list = []
    reader = _thread(lambda: store.interactions("u"), read)
    reader.join(1.0)
    gate.released.set()
    for t in (first, t2, reader):
        t.join(30)
    assert gate.error is None and not isinstance(second[0], BaseException) and not isinstance(read[0], BaseException)
    seen = [i.seq for i in read[0]]
    everything = [i.seq for i in store.interactions("u")]
    assert len(everything) == 3
    # whatever the reader saw is a prefix: no seq at or below the newest it saw was hidden from it
    assert seen == [s for s in everything if s <= max(seen)], (seen, everything)


def test_concurrent_writers_and_refreshes_leave_no_interaction_unread(store):
    """The load measurement, smaller: writers add batches for one user while refreshes run in a loop
    (an instant generator); afterwards every interaction up to the last profile's ``through_seq`` was
    shown to the generator by some version (``source_seqs``), and nothing after it is lost."""
    refresher = Refresher(store, EchoBackend())
    store.add_interactions("u", [NewInteraction("before the writers")])
    refresher.refresh("u")  # the first version (scratch); every later one is an update of the one before
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(100):
                store.add_interactions("u", [NewInteraction(f"w{w} i{i} n{n}") for n in range(3)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def refresh_loop() -> None:
        while not stop.is_set():
            try:
                refresher.refresh("u")
            except StaleWriteError:
                pass
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    writers = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    loop = threading.Thread(target=refresh_loop)
    loop.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    loop.join()
    assert not errors, errors[:3]
    refresher.refresh("u")
    all_seqs = [i.seq for i in store.interactions("u")]
    assert len(all_seqs) == 8 * 100 * 3 + 1
    history = store.profile_history("u")
    assert [v.mode for v in history[1:]] == ["update"] * (len(history) - 1)
    shown = {s for p in history for s in p.source_seqs}
    unread = [s for s in all_seqs if s <= history[-1].through_seq and s not in shown]
    assert not unread, f"{len(unread)} of {len(all_seqs)} interactions were never shown to the generator"
    assert history[-1].through_seq == all_seqs[-1]


def test_concurrent_profile_writes_raise_stale_write_not_integrity_error(store):
    seqs = store.add_interactions("u", [NewInteraction("x")])
    gate = CommitGate(store)
    write = dict(generator="g", mode="scratch", previous_version=None, through_seq=seqs[0], source_seqs=seqs)
    first = gate.run_held(store.write_profile, "u", "the first", **write)
    second: list = []
    t2 = _thread(lambda: store.write_profile("u", "the second", **write), second)
    t2.join(1.0)
    gate.released.set()
    first.join(30)
    t2.join(30)
    assert gate.error is None
    assert isinstance(second[0], StaleWriteError), repr(second[0])
    assert [p.text for p in store.profile_history("u")] == ["the first"]
