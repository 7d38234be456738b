"""The HTTP API end to end (FastAPI TestClient), on SQLite and on PostgreSQL when it can start."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from bump_profiles.profiles.refresh import Refresher
from bump_profiles.serve import ServeSettings, create_app
from bump_profiles.store import ProfileStore
from serving.fakes import EchoBackend

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def served(store_url):
    store = ProfileStore(store_url)
    backend = EchoBackend()
    app = create_app(store, Refresher(store, backend), ServeSettings(token=TOKEN, max_batch=50, max_body_bytes=200_000,
                                                                    rate=0))
    with TestClient(app) as client:
        yield client, store, backend
    store.close()


def wait_job(client: TestClient, job_id: str, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=AUTH).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_add_refresh_update_and_history(served):
    client, _store, backend = served
    r = client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": "baked sourdough", "id": "a1"})
    assert r.status_code == 201 and len(r.json()["seqs"]) == 1
    r = client.post("/v1/interactions", headers=AUTH, json={"interactions": [
        {"user_id": "ana", "text": "asked about crumb", "timestamp": "2024-03-04"},
        {"user_id": "ben", "text": "rode 100 km"}]})
    assert r.status_code == 201 and len(r.json()["seqs"]) == 2
    assert client.get("/v1/users/ana/profile", headers=AUTH).status_code == 404

    job = client.post("/v1/refresh", headers=AUTH, json={"min_new": 1}).json()
    assert job["total"] == 2
    job = wait_job(client, job["id"])
    assert (job["status"], job["done"], job["failed"]) == ("done", 2, 0)
    v1 = client.get("/v1/users/ana/profile", headers=AUTH).json()
    assert (v1["version"], v1["mode"], v1["generator"], v1["previous_version"]) == (1, "scratch", "echo-gen", None)
    assert len(v1["source_seqs"]) == 2 and v1["through_seq"] == max(v1["source_seqs"])
    assert "baked sourdough" in backend.prompts[-2] or "baked sourdough" in backend.prompts[-1]

    # nothing new: a refresh of all stale users has no one to do
    assert client.post("/v1/refresh", headers=AUTH, json={}).json()["total"] == 0
    client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": "posted a brioche braid"})
    wait_job(client, client.post("/v1/users/ana/refresh", headers=AUTH).json()["id"])
    v2 = client.get("/v1/users/ana/profile", headers=AUTH).json()
    assert (v2["version"], v2["mode"], v2["previous_version"]) == (2, "update", 1)
    update_prompt = backend.prompts[-1]
    assert v1["profile"] in update_prompt and "brioche" in update_prompt and "sourdough" not in update_prompt
    hist = client.get("/v1/users/ana/profiles", headers=AUTH).json()
    assert [p["version"] for p in hist] == [1, 2]


def test_retried_interaction_ids_are_stored_once(served):
    client, store, _ = served
    for _ in range(3):
        client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": "x", "id": "same"})
    assert len(store.interactions("ana")) == 1
    got = client.get("/v1/users/ana/interactions", headers=AUTH).json()
    assert [(i["text"], i["id"]) for i in got] == [("x", "same")]


def test_auth_is_required(served):
    client, *_ = served
    assert client.get("/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        r = client.post("/v1/users/ana/interactions", headers=headers, json={"text": "x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert client.get("/docs").status_code == 200 and "/v1/refresh" in client.get("/openapi.json").text


def test_input_limits_and_json_errors(served):
    client, store, _ = served
    r = client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": ""})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input" and "text" in r.json()["error"]["message"]
    r = client.post("/v1/users/bad%20id/interactions", headers=AUTH, json={"text": "x"})
    assert r.status_code == 422 and "user_id" in r.json()["error"]["message"]
    r = client.post("/v1/interactions", headers=AUTH, json={"interactions": [{"user_id": "a", "text": "x"}] * 51})
    assert r.status_code == 413 and "at most 50" in r.json()["error"]["message"]
    r = client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": "y" * 300_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    chunks = (b'{"text": "' + b"z" * 50_000 for _ in range(5))  # streamed without a length: counted as it comes
    r = client.post("/v1/users/ana/interactions", headers={**AUTH, "Content-Type": "application/json"}, content=chunks)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = client.post("/v1/users/ana/interactions", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 422
    assert client.get("/v1/users/nobody/profile", headers=AUTH).json()["error"]["code"] == "not_found"
    assert client.get("/v1/jobs/nope", headers=AUTH).status_code == 404
    assert store.users() == []  # nothing of the refused requests was stored


def test_a_batch_is_stored_whole_or_not_at_all(served):
    client, store, _ = served
    r = client.post("/v1/interactions", headers=AUTH, json={"interactions": [
        {"user_id": "ana", "text": "fine"}, {"user_id": "ben", "text": ""}]})
    assert r.status_code == 422 and store.users() == []


def test_rate_limit_answers_429_with_retry_after(store_url):
    store = ProfileStore(store_url)
    app = create_app(store, Refresher(store, EchoBackend()), ServeSettings(token=TOKEN, rate=1, burst=3))
    with TestClient(app) as client:
        codes = [client.get("/v1/jobs/x", headers=AUTH).status_code for _ in range(5)]
        assert codes[:3] == [404] * 3 and codes[3:] == [429, 429]
        r = client.get("/v1/jobs/x", headers=AUTH)
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
        # wrong tokens are limited per address, apart from the right token's bucket
        bad = [client.get("/v1/jobs/x", headers={"Authorization": f"Bearer guess{i}"}).status_code for i in range(5)]
        assert bad[:3] == [401] * 3 and bad[3:] == [429, 429]
    store.close()


def test_a_failed_generation_writes_nothing_and_is_reported(store_url):
    store = ProfileStore(store_url)
    app = create_app(store, Refresher(store, EchoBackend(empty=True)), ServeSettings(token=TOKEN, rate=0))
    with TestClient(app) as client:
        client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": "x"})
        job = wait_job(client, client.post("/v1/users/ana/refresh", headers=AUTH).json()["id"])
        assert (job["status"], job["failed"]) == ("failed", 1) and "empty profile" in job["error"]
        assert store.profile_history("ana") == []
    store.close()


def test_a_service_in_notes_mode_serves_merged_profiles(store_url):
    store = ProfileStore(store_url)
    backend = EchoBackend()
    app = create_app(store, Refresher(store, backend, mode="notes", notes_kept=2),
                     ServeSettings(token=TOKEN, max_batch=50, max_body_bytes=200_000, rate=0))
    with TestClient(app) as client:
        for text in ("baked sourdough", "rode 100 km"):
            client.post("/v1/users/ana/interactions", headers=AUTH, json={"text": text})
            job = client.post("/v1/users/ana/refresh", headers=AUTH).json()
            assert wait_job(client, job["id"])["status"] == "done"
        v2 = client.get("/v1/users/ana/profile", headers=AUTH).json()
        history = client.get("/v1/users/ana/profiles", headers=AUTH).json()
    store.close()
    assert (v2["version"], v2["mode"], v2["previous_version"]) == (2, "notes", 1)
    assert v2["source_seqs"] == history[0]["source_seqs"] + [v2["through_seq"]]  # the union of the two notes
    assert "Here are notes on what a user did" in backend.prompts[-1]  # the merge prompt
