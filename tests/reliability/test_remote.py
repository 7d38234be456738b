"""Remote endpoints end to end: the API key never lands on disk or in output; failures are one clear line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from openai_stub import OpenAIStub

from bump_profiles.cli import main
from bump_profiles.data import write_users_jsonl
from bump_profiles.data.synthetic import make_users

SECRET = "sk-live-DO-NOT-LEAK-5f3a9c"


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def profile_args(stub: OpenAIStub, data: Path, out: Path, *extra: str) -> list[str]:
    return ["profile", "--backend", "openai", "--base-url", stub.base_url, "--api-model", "stub-model",
            "--api-key-env", "BUMP_REMOTE_KEY", "--data", str(data), "--out", str(out), "--no-progress",
            "--max-new-tokens", "32", *extra]


def test_profile_with_an_api_model_never_writes_the_key(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("BUMP_REMOTE_KEY", SECRET)
    run = tmp_path / "run"
    data = run / "users.jsonl"
    users = make_users(6, seed=4)
    write_users_jsonl(users, data)
    out = run / "profiles.jsonl"
    caplog.set_level(logging.DEBUG)
    with OpenAIStub([503, "ok"]) as stub:  # one retry on the way, so retry logging runs too
        assert main([*profile_args(stub, data, out), "--k", "2"]) == 0
    assert all(r["headers"]["authorization"] == f"Bearer {SECRET}" for r in stub.requests)  # it was used
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["user_id"] for r in rows) == sorted(u.id for u in users)
    assert all(r["model"] == "stub-model" and r["profile"].startswith("Profile:") for r in rows)
    captured = capsys.readouterr()
    assert files_containing(tmp_path, SECRET) == []
    assert SECRET not in captured.out + captured.err + caplog.text


def test_a_failing_endpoint_is_one_clear_line_and_keeps_finished_profiles(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("BUMP_REMOTE_KEY", SECRET)
    data = tmp_path / "users.jsonl"
    write_users_jsonl(make_users(3, seed=8), data)
    out = tmp_path / "profiles.jsonl"
    with OpenAIStub(["ok", 500], echo_key=True) as stub:  # the first user succeeds, then the server breaks
        code = main([*profile_args(stub, data, out, "--batch-size", "1", "--max-retries", "2")])
    assert code == 2
    err = capsys.readouterr().err
    assert "error: " in err and "gave up after 3 attempts" in err and "HTTP 500" in err and "Traceback" not in err
    assert len(out.read_text().splitlines()) == 1  # the profile finished before the failure is kept
    assert SECRET not in err + caplog.text and files_containing(tmp_path, SECRET) == []


def test_a_hanging_endpoint_times_out_with_retries_then_fails_clearly(tmp_path, capsys):
    data = tmp_path / "users.jsonl"
    write_users_jsonl(make_users(2, seed=9), data)
    with OpenAIStub(["sleep"], sleep=0.6) as stub:
        code = main([*profile_args(stub, data, tmp_path / "p.jsonl", "--timeout", "0.2", "--max-retries", "1")])
    err = capsys.readouterr().err
    assert code == 2 and "timeout" in err and "gave up after 2 attempts" in err and "Traceback" not in err
