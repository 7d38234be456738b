"""Refresh at scale without Ray: stale users in pages, many users per generation call, the service's
jobs in batches, and the ``refresh`` command."""

from __future__ import annotations

import json

from bump_profiles.cli import main
from bump_profiles.profiles.refresh import Refresher
from bump_profiles.serve.jobs import JobRunner
from bump_profiles.store import NewInteraction, ProfileStore, StaleWriteError
from serving.fakes import EchoBackend


def fill(store, n):
    for i in range(n):
        store.add_interactions(f"u{i:03d}", [NewInteraction(f"item {i} a"), NewInteraction(f"item {i} b")])


def test_refresh_many_is_one_generation_call_and_never_writes_twice(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    fill(store, 5)
    backend = EchoBackend()
    r = Refresher(store, backend)
    users = store.stale_users()
    pending = r.prepare("u000")
    results = r.refresh_many(users)
    assert backend.calls == [5] and all(p.version == 1 for p in results)
    assert r.refresh_many(users) == [None] * 5  # a retry: nothing new, nothing written, nothing generated
    assert backend.calls == [5]
    try:  # a write prepared before the version above landed (a retried page) is refused, not doubled
        r.write(pending, "late text", 3)
        raise AssertionError("expected StaleWriteError")
    except StaleWriteError:
        pass
    assert [p.version for p in store.profile_history("u000")] == [1]


def test_service_jobs_generate_in_batches(tmp_path):
    store = ProfileStore(str(tmp_path / "s.db"))
    fill(store, 10)
    backend = EchoBackend()
    runner = JobRunner(store, Refresher(store, backend), batch_size=4)
    job = store.create_job(store.stale_users())
    runner._run(job.id)
    assert backend.calls == [4, 4, 2]
    assert (store.job(job.id).status, store.job(job.id).done) == ("done", 10)


def test_refresh_command_pages_the_whole_store(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "s.db")
    store = ProfileStore(db)
    fill(store, 9)
    store.close()
    monkeypatch.setattr("bump_profiles.commands.profile._backend", lambda args: EchoBackend())
    assert main(["refresh", "--store", db, "--page-size", "4", "--batch-size", "3"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["pages"], out["written"], out["failed"]) == (3, 9, 0)
    assert main(["refresh", "--store", db]) == 0  # run again: nothing stale, nothing written
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["written"] == 0
    store = ProfileStore(db)
    assert all(len(store.profile_history(u)) == 1 for u in store.users())
