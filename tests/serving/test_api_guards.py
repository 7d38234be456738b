"""The service's guards and bounds, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from bump_profiles.profiles.refresh import Refresher
from bump_profiles.serve import ServeSettings, create_app
from bump_profiles.serve.jobs import JobRunner
from bump_profiles.store import NewInteraction, ProfileStore
from serving.fakes import EchoBackend
from serving.test_api import AUTH, TOKEN, wait_job


@pytest.fixture
def store(store_url):
    s = ProfileStore(store_url)
    yield s
    s.close()


def _client(store, backend=None, **settings) -> TestClient:
    defaults = dict(token=TOKEN, max_batch=50, max_body_bytes=200_000, rate=0)
    app = create_app(store, Refresher(store, backend or EchoBackend()), ServeSettings(**{**defaults, **settings}))
    return TestClient(app, raise_server_exceptions=False)


def test_every_route_checks_the_token_before_reading_the_body(store):
    """Point 6: an invalid body without a token is 401, never 422, on every route (one check, first)."""
    with _client(store) as client:
        routes = [(m, r.path.replace("{user_id}", "ana").replace("{job_id}", "j")) for r in client.app.routes
                  for m in getattr(r, "methods", ()) if r.path.startswith("/v1/")]
        assert len(routes) >= 8
        for method, path in routes:
            r = client.request(method, path, content=b'{"text": ""', headers={"Content-Type": "application/json"})
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (method, path, r.text)
        big = b"x" * 150_000  # under the body cap, but nobody reads it without a token
        r = client.post("/v1/interactions", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 401


def test_rate_limit_keys_on_the_client_not_the_header_spelling(store):
    """Point 7: header variants of the right token share the token's bucket; without auth, distinct
    headers share the peer address's bucket."""
    variants = [f"Bearer {TOKEN}", f"Bearer  {TOKEN}", f"Bearer {TOKEN}  ", f"bearer {TOKEN}", f"BEARER {TOKEN}"]
    with _client(store, rate=1, burst=3) as client:
        codes = [client.get("/v1/jobs/x", headers={"Authorization": v}).status_code for v in variants]
        assert codes == [404, 404, 404, 429, 429]
    with TestClient(create_app(store, Refresher(store, EchoBackend()), ServeSettings(token=None, rate=1, burst=3)),
                    base_url="http://127.0.0.1:8000") as client:
        codes = [client.get("/v1/jobs/x", headers={"Authorization": f"Bearer anything{i}"}).status_code for i in range(5)]
        assert codes == [404, 404, 404, 429, 429]


def test_no_auth_service_answers_loopback_host_names_only(store):
    """Point 8: under --no-auth a page on a rebound DNS name (Host: evil.example) is refused."""
    app = create_app(store, Refresher(store, EchoBackend()), ServeSettings(token=None, rate=0))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
            assert client.get("/v1/jobs/x", headers={"Host": host}).status_code == 404, host
        for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
            r = client.get("/v1/jobs/x", headers={"Host": host})
            assert r.status_code == 403 and r.json()["error"]["code"] == "bad_host", host


def test_lists_are_paged_and_bounded(store):
    """Point 9: interactions and profile versions come in pages of at most 1000; a job GET reads no user list."""
    store.add_interactions("ana", [NewInteraction(f"i{k}") for k in range(5)])
    for v in range(1, 4):
        store.write_profile("ana", f"p{v}", generator="g", mode="scratch", previous_version=v - 1 or None,
                            through_seq=1, source_seqs=[1])
    with _client(store) as client:
        assert client.get("/v1/users/ana/interactions?limit=1001", headers=AUTH).status_code == 422
        page = client.get("/v1/users/ana/profiles?limit=2", headers=AUTH).json()
        assert [p["version"] for p in page] == [1, 2]
        rest = client.get("/v1/users/ana/profiles?after_version=2&limit=2", headers=AUTH).json()
        assert [p["version"] for p in rest] == [3]
        assert client.get("/v1/users/ana/profiles?limit=1001", headers=AUTH).status_code == 422
        job = store.create_job([f"u{k}" for k in range(2000)])
        sql: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda *a: sql.append(a[2]))
        got = client.get(f"/v1/jobs/{job.id}", headers=AUTH).json()
        assert got["total"] == 2000
        assert sql and not any("jobs.users" in q for q in sql), sql


def test_refresh_pages_deduplicates_and_takes_a_limit(store):
    """Point 10: more stale users than the limit is a job of the first ones and ``more_stale``, not a
    refusal; a repeated request does not queue users a pending job will refresh."""
    store.add_batch([(f"u{k:02d}", NewInteraction("x")) for k in range(12)])
    gate = threading.Event()

    class Held(EchoBackend):
        def complete(self, *a, **kw):
            gate.wait(30)
            return super().complete(*a, **kw)

    with _client(store, Held(), max_refresh_users=5) as client:
        first = client.post("/v1/refresh", headers=AUTH, json={}).json()
        assert (first["total"], first["more_stale"]) == (5, True)  # the cap pages; it does not refuse
        second = client.post("/v1/refresh", headers=AUTH, json={"limit": 4}).json()
        assert (second["total"], second["more_stale"]) == (4, True)  # u05-u08: the pending u00-u04 left out
        third = client.post("/v1/refresh", headers=AUTH, json={"limit": 50}).json()
        assert (third["total"], third["more_stale"]) == (3, False)
        assert client.post("/v1/refresh", headers=AUTH, json={}).json()["total"] == 0  # everyone is pending
        again = client.post("/v1/users/u00/refresh", headers=AUTH).json()
        assert again["id"] == first["id"]  # the job that will refresh u00 already
        assert client.post("/v1/refresh", headers=AUTH, json={"limit": 0}).status_code == 422
        gate.set()
        for job in (first, second, third):
            assert wait_job(client, job["id"])["status"] == "done"
        assert len(store.stale_users()) == 0


def test_unexpected_errors_are_json_and_internals_stay_in_the_log(store, caplog):
    """Point 11: a 500 is JSON without the exception's text; a failed job's error shows no SQL."""
    class Broken(EchoBackend):
        def complete(self, *a, **kw):
            raise RuntimeError("SELECT secret FROM internals WHERE password = 'hunter2'")

    with _client(store, Broken()) as client, caplog.at_level(logging.ERROR):
        store.add_interactions("ana", [NewInteraction("x")])
        job = wait_job(client, client.post("/v1/users/ana/refresh", headers=AUTH).json()["id"])
        assert job["status"] == "failed" and "internal error" in job["error"] and "SELECT" not in job["error"]
        original = store.user_exists
        store.user_exists = lambda _u: (_ for _ in ()).throw(RuntimeError("psycopg: SELECT 1 FROM users; host db.internal"))
        r = client.get("/v1/users/ana/profile", headers=AUTH)
        store.user_exists = original
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "internal" and "db.internal" not in r.text
    assert "hunter2" in caplog.text and "db.internal" in caplog.text  # the log has the details


def test_a_replica_interrupts_only_its_own_or_stale_jobs(store):
    """Point 12: replica B starting up leaves A's live job alone; it interrupts its own previous jobs,
    jobs without an owner (from before owners were recorded) and jobs of a replica silent too long."""
    live = store.create_job(["u1"], owner="A")
    mine = store.create_job(["u2"], owner="B")
    old = store.create_job(["u3"])
    silent = store.create_job(["u4"], owner="C")
    store.update_job(silent.id, status="running")
    later = store.job(silent.id).updated_at + timedelta(seconds=700)
    assert store.interrupt_unfinished_jobs("B", stale_after_s=600, now=later - timedelta(seconds=650)) == 2
    assert [store.job(j.id).status for j in (live, mine, old, silent)] == ["queued", "interrupted", "interrupted", "running"]
    assert store.interrupt_unfinished_jobs("B", stale_after_s=600, now=later) >= 1  # C (and A) silent 700 s
    assert store.job(silent.id).status == "interrupted"
    # a running replica's heartbeat keeps its jobs alive past stale_after_s
    runner = JobRunner(store, Refresher(store, EchoBackend()), owner="A", heartbeat_s=0.05, stale_after_s=1.5)
    job = store.create_job(["u9"], owner="A")
    runner._beat = threading.Thread(target=runner._heartbeat, daemon=True)
    runner._beat.start()
    time.sleep(2.5)
    store.interrupt_unfinished_jobs("B", stale_after_s=1.5)
    runner._stopping.set()
    assert store.job(job.id).status == "queued"
