"""The OpenAI-compatible client and backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from openai_stub import OpenAIStub

from bump_profiles.engines.backends import OpenAIBackend
from bump_profiles.engines.openai_client import OpenAIClient
from bump_profiles.errors import ConfigError, RemoteError

MESSAGES = [{"role": "user", "content": "Describe this user: likes chess and jazz."}]


def client(stub: OpenAIStub, **kw) -> OpenAIClient:
    kw = {"timeout": 2.0, "max_retries": 3, "api_key_env": "BUMP_TEST_KEY", **kw}
    return OpenAIClient(stub.base_url, "stub-model", **kw)


def test_success_sends_model_messages_limits_and_bearer_key(monkeypatch):
    monkeypatch.setenv("BUMP_TEST_KEY", "sk-test-123")
    with OpenAIStub() as stub:
        result = client(stub).complete(MESSAGES, max_tokens=32, temperature=0.0, seed=7)
    assert result.text == "Profile: a user whose prompt had 7 words."
    assert (result.finish_reason, result.prompt_tokens) == ("stop", 7)
    (request,) = stub.requests
    assert request["body"] == {"model": "stub-model", "messages": MESSAGES, "max_tokens": 32, "temperature": 0.0, "seed": 7}
    assert request["headers"]["authorization"] == "Bearer sk-test-123"


def test_no_key_in_the_environment_sends_no_authorization(monkeypatch):
    monkeypatch.delenv("BUMP_TEST_KEY", raising=False)
    with OpenAIStub() as stub:
        assert client(stub).chat(MESSAGES, max_tokens=16).startswith("Profile:")
    assert "authorization" not in stub.requests[0]["headers"]


def test_http_500_is_retried_with_backoff_then_succeeds():
    with OpenAIStub([500, 503, "ok"]) as stub:
        start = time.perf_counter()
        text = client(stub).chat(MESSAGES, max_tokens=16)
        elapsed = time.perf_counter() - start
    assert text.startswith("Profile:")
    assert len(stub.requests) == 3
    assert elapsed >= 0.3  # two waits of the openai package's backoff (0.5 s, then 1 s, less up to 25% jitter)


def test_persistent_errors_give_a_clear_failure_after_all_retries():
    with OpenAIStub([500]) as stub, pytest.raises(RemoteError) as info:
        client(stub, max_retries=2).chat(MESSAGES, max_tokens=16)
    assert len(stub.requests) == 3
    message = str(info.value)
    assert stub.base_url in message and "gave up after 3 attempts" in message and "HTTP 500" in message


def test_timeout_is_retried_then_fails_clearly():
    with OpenAIStub(["sleep"], sleep=0.6) as stub, pytest.raises(RemoteError, match=r"gave up after 2 attempts.*timeout"):
        client(stub, timeout=0.2, max_retries=1).chat(MESSAGES, max_tokens=16)
    assert len(stub.requests) == 2


def test_timeout_then_success():
    with OpenAIStub(["sleep", "ok"], sleep=0.6) as stub:
        assert client(stub, timeout=0.2).chat(MESSAGES, max_tokens=16).startswith("Profile:")


def test_client_errors_are_not_retried_and_hint_at_the_key_variable(monkeypatch):
    monkeypatch.setenv("BUMP_TEST_KEY", "sk-wrong-456")
    with OpenAIStub([401], echo_key=True) as stub, pytest.raises(RemoteError) as info:
        client(stub).chat(MESSAGES, max_tokens=16)
    assert len(stub.requests) == 1
    assert "HTTP 401" in str(info.value) and "$BUMP_TEST_KEY" in str(info.value)
    assert "sk-wrong-456" not in str(info.value)  # the server echoed it; the message masks it


def test_unreachable_endpoint_and_non_json_answers_fail_clearly():
    with OpenAIStub(["garbage"]) as stub, pytest.raises(RemoteError, match="not JSON"):
        client(stub).chat(MESSAGES, max_tokens=16)
    closed = OpenAIClient(stub.base_url, "m", max_retries=0, timeout=1.0)  # server shut down above
    with pytest.raises(RemoteError, match="cannot connect"):
        closed.chat(MESSAGES, max_tokens=16)


def test_bad_configuration_is_a_config_error_and_repr_hides_nothing_secret(monkeypatch):
    with pytest.raises(ConfigError):
        OpenAIClient("localhost:8000/v1", "m")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-789")
    c = OpenAIClient("http://127.0.0.1:1/v1", "m")
    assert "sk-secret-789" not in repr(c) and "sk-secret-789" not in repr(vars(c))


def test_backend_keeps_input_order_and_reports_length_cuts():
    with OpenAIStub() as stub:
        backend = OpenAIBackend(client(stub), concurrency=4)
        batch = [[{"role": "user", "content": " ".join(["w"] * n)}] for n in (5, 1, 9, 3, 2)]
        out = backend.complete(batch, max_new_tokens=8, temperature=0.0)
        texts = backend.generate(batch, max_new_tokens=64, temperature=0.0)
    assert [c.prompt_tokens for c in out] == [5, 1, 9, 3, 2]
    assert all(c.hit_limit for c in out)  # the stub stops for length at max_tokens <= 8
    assert texts == [f"Profile: a user whose prompt had {n} words." for n in (5, 1, 9, 3, 2)]
    assert backend.name == "stub-model" and backend.count_tokens("x y") is None
