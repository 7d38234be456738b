"""kill -9 of the service in the middle of a refresh job, while clients keep writing: every
acknowledged interaction survives exactly once, every stored profile version is whole, and the
job is reported interrupted after the restart. Runs on SQLite and on PostgreSQL when it can start."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from bump_profiles.store import ProfileStore
from serving.service import AUTH, SlowStub, start_service


@pytest.mark.slow
def test_kill9_during_refresh_loses_nothing(store_url, tmp_path):
    log = tmp_path / "service.log"
    with SlowStub(delay=0.15) as stub:
        proc, url = start_service(store_url, stub.base_url, log)
        client = httpx.Client(base_url=url, headers=AUTH, timeout=10)
        users = [f"u{i:02d}" for i in range(40)]
        batch = [{"user_id": u, "text": f"{u} item {k}", "id": f"{u}-{k}"} for u in users for k in range(3)]
        assert client.post("/v1/interactions", json={"interactions": batch}).status_code == 201
        acked: set[str] = {b["id"] for b in batch}
        job = client.post("/v1/refresh", json={}).json()
        assert job["total"] == len(users)

        stop = threading.Event()

        def writer() -> None:  # keeps writing through the kill; only answered writes count as acknowledged
            k = 0
            with httpx.Client(base_url=url, headers=AUTH, timeout=5) as c:
                while not stop.is_set():
                    ext = f"late-{k}"
                    try:
                        if c.post(f"/v1/users/{users[k % len(users)]}/interactions",
                                  json={"text": f"late {k}", "id": ext}).status_code == 201:
                            acked.add(ext)
                    except httpx.TransportError:
                        pass  # the service is dead: this write was never acknowledged
                    k += 1

        t = threading.Thread(target=writer)
        t.start()
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job['id']}").json()["done"] < 5:
            assert time.monotonic() < deadline, "the refresh job made no progress"
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no shutdown handler runs
        proc.wait(30)
        time.sleep(0.3)
        stop.set()
        t.join()
        client.close()

        proc, url = start_service(store_url, stub.base_url, log)
        try:
            with httpx.Client(base_url=url, headers=AUTH, timeout=10) as c:
                after = c.get(f"/v1/jobs/{job['id']}").json()
                assert after["status"] == "interrupted" and 5 <= after["done"] < after["total"]
        finally:
            proc.kill()
            proc.wait(30)

    store = ProfileStore(store_url)
    try:
        stored: list[str] = []
        for u in store.users():
            items = store.interactions(u)
            stored += [i.external_id for i in items]
            seqs = {i.seq for i in items}
            history = store.profile_history(u)
            assert [p.version for p in history] == list(range(1, len(history) + 1))
            for p in history:  # whole: text, generator and provenance all there and consistent
                assert p.text.startswith("Profile:") and p.generator == "stub-model" and p.mode == "scratch"
                assert p.source_seqs and set(p.source_seqs) <= seqs and p.through_seq == max(p.source_seqs)
        assert len(stored) == len(set(stored)), "an interaction was stored twice"
        assert acked <= set(stored), f"acknowledged but lost: {sorted(acked - set(stored))[:5]}"
        profiled = sum(1 for u in store.users() if store.current_profile(u) is not None)
        assert 5 <= profiled < len(store.users())
        if store.engine.dialect.name == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        store.close()
    print(f"\nkill -9 at {after['done']}/{after['total']} users refreshed; {len(acked)} acknowledged interactions, "
          f"all {len(set(stored))} stored once; {profiled} whole profiles")
