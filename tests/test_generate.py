"""Profile generation: the transformers backend, the resumable writer and the ``profile`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bump_profiles.cli import main
from bump_profiles.data import split_users, write_users_jsonl
from bump_profiles.data.profiles import load_profiles
from bump_profiles.data.synthetic import make_users
from bump_profiles.engines.backends import Completion, TransformersBackend, VLLMBackend
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.generate import generate_profiles, read_done
from bump_profiles.profiles.prompts import ProfilePrompt


class RecordingBackend:
    """A backend that answers instantly and remembers every batch it was given."""

    def __init__(self, name: str = "recorder"):
        self.name = name
        self.batches: list[list[list[dict]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete(self, messages_batch, *, max_new_tokens, temperature):
        self.batches.append(list(messages_batch))
        return [Completion(f"profile #{len(m[-1]['content'])}", 10, 3, False) for m in messages_batch]

    def generate(self, messages_batch, *, max_new_tokens, temperature):
        return [c.text for c in self.complete(messages_batch, max_new_tokens=max_new_tokens, temperature=temperature)]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_transformers_backend_batched_equals_one_at_a_time(tiny_lm):
    model, tok = tiny_lm
    backend = TransformersBackend(model, tok, batch_size=3, name="tiny")
    messages = [[{"role": "user", "content": " ".join(["chess opening gambit"] * n)}] for n in (4, 1, 7, 2)]
    batched = backend.complete(messages, max_new_tokens=6, temperature=0.0)
    single = [backend.complete([m], max_new_tokens=6, temperature=0.0)[0] for m in messages]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.prompt_tokens for c in batched] == [c.prompt_tokens for c in single]
    assert [c.prompt_tokens for c in batched] == [
        backend.count_tokens(tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)) for m in messages
    ]


def test_transformers_backend_batches_by_prompt_length(tiny_lm, monkeypatch):
    model, tok = tiny_lm
    backend = TransformersBackend(model, tok, batch_size=2)
    seen: list[list[int]] = []
    original = backend._batch
    monkeypatch.setattr(backend, "_batch", lambda prompts, *a: seen.append([backend.count_tokens(p) for p in prompts]) or original(prompts, *a))
    messages = [[{"role": "user", "content": "jazz " * n}] for n in (9, 1, 5, 3)]
    backend.complete(messages, max_new_tokens=2, temperature=0.0)
    flat = [n for batch in seen for n in batch]
    assert [len(b) for b in seen] == [2, 2] and flat == sorted(flat)


def test_stop_token_ends_the_profile_and_the_limit_is_reported(tiny_lm):
    model, tok = tiny_lm
    backend = TransformersBackend(model, tok, name="tiny")
    messages = [[{"role": "user", "content": "hello"}]]
    word = tok("chess", add_special_tokens=False)["input_ids"][0]
    model.generation_config.sequence_bias = {(word,): 100.0}  # the model now always says this token
    try:
        (cut,) = backend.complete(messages, max_new_tokens=5, temperature=0.0)
        model.generation_config.sequence_bias = {(tok.eos_token_id,): 100.0}  # now it stops at once
        (stopped,) = backend.complete(messages, max_new_tokens=5, temperature=0.0)
    finally:
        model.generation_config.sequence_bias = None
    assert (cut.text, cut.completion_tokens, cut.hit_limit) == (tok.decode([word] * 5).strip(), 5, True)
    assert (stopped.text, stopped.completion_tokens, stopped.hit_limit) == ("", 0, False)


def test_sampling_at_positive_temperature_runs(tiny_lm):
    model, tok = tiny_lm
    out = TransformersBackend(model, tok).generate([[{"role": "user", "content": "hi"}]] * 2, max_new_tokens=4, temperature=1.0)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)


def test_profiles_every_user_once_from_history_only(tmp_path):
    users = make_users(7, seed=3)
    split = split_users(users, 2)
    backend = RecordingBackend()
    out = tmp_path / "p.jsonl"
    summary = generate_profiles(split.users, backend, ProfilePrompt(), out, batch_size=3, progress=False)
    got = rows(out)
    assert sorted(r["user_id"] for r in got) == sorted(u.id for u in users)
    assert set(got[0]) == {"user_id", "profile", "model", "prompt_tokens", "profile_tokens", "hit_limit", "read"}
    by_id = {s.user.id: s for s in split.users}
    assert all(r["read"]["split"]["k"] == 2 and r["read"]["n"] == len(by_id[r["user_id"]].history) for r in got)
    assert (summary.users, summary.written, summary.already_done) == (7, 7, 0)
    assert [len(b) for b in backend.batches] == [3, 3, 1]
    prompts = {s.user.id: None for s in split.users}
    for batch in backend.batches:
        for messages in batch:
            text = messages[-1]["content"]
            owner = next(s for s in split.users if s.history[-1].text in text)
            prompts[owner.user.id] = text
            assert not any(it.text in text for it in owner.heldout)
    assert all(prompts.values())
    sizes = [len(m[-1]["content"].split()) for b in backend.batches for m in b]
    assert sizes == sorted(sizes, reverse=True)  # longest prompts first


def test_resume_skips_done_users_and_repairs_a_truncated_last_line(tmp_path):
    users = make_users(5, seed=1)
    out = tmp_path / "p.jsonl"
    first = users[0].id
    out.write_text(json.dumps({"user_id": first, "profile": "kept", "model": "recorder"}) + "\n"
                   + '{"user_id": "' + users[1].id + '", "prof')  # a crash mid-line
    summary = generate_profiles(users, RecordingBackend(), ProfilePrompt(), out, progress=False)
    got = rows(out)
    assert sorted(r["user_id"] for r in got) == sorted(u.id for u in users)
    assert got[0] == {"user_id": first, "profile": "kept", "model": "recorder"}
    assert (summary.already_done, summary.written) == (1, 4)
    again = generate_profiles(users, RecordingBackend(), ProfilePrompt(), out, progress=False)
    assert (again.already_done, again.written) == (5, 0) and rows(out) == got


def test_a_file_from_another_model_or_a_corrupt_line_is_refused(tmp_path):
    users = make_users(2)
    out = tmp_path / "p.jsonl"
    out.write_text(json.dumps({"user_id": "x", "profile": "p", "model": "other"}) + "\n")
    with pytest.raises(ConfigError, match="model 'other'"):
        generate_profiles(users, RecordingBackend(), ProfilePrompt(), out, progress=False)
    out.write_text('{"user_id": "x"}\nnot json\n{"user_id": "y"}\n')
    with pytest.raises(DataError, match="line 2"):
        read_done(out)


class SecondWriterBackend(RecordingBackend):
    """While the first run writes its first batch, a second run on the same file starts."""

    def __init__(self, users, out):
        super().__init__()
        self.users, self.out, self.refusal = users, out, None

    def complete(self, messages_batch, *, max_new_tokens, temperature):
        if self.refusal is None:
            try:
                generate_profiles(self.users, RecordingBackend(), ProfilePrompt(), self.out, progress=False)
            except ConfigError as exc:
                self.refusal = str(exc)
            else:
                self.refusal = "the second writer was let in"
        return super().complete(messages_batch, max_new_tokens=max_new_tokens, temperature=temperature)


def test_a_second_writer_to_the_same_profiles_file_is_refused(tmp_path):
    # Two runs on one --out used to interleave and write some users twice.
    users = make_users(4, seed=2)
    out = tmp_path / "p.jsonl"
    backend = SecondWriterBackend(users, out)
    generate_profiles(users, backend, ProfilePrompt(), out, batch_size=2, progress=False)
    assert backend.refusal is not None and "another run is writing" in backend.refusal
    assert str(out) in backend.refusal
    assert sorted(r["user_id"] for r in rows(out)) == sorted(u.id for u in users)  # each user once
    again = generate_profiles(users, RecordingBackend(), ProfilePrompt(), out, progress=False)
    assert again.already_done == 4  # the lock is released when a run ends


def test_duplicate_input_users_are_refused(tmp_path):
    user = make_users(1)[0]
    with pytest.raises(DataError, match="twice"):
        generate_profiles([user, user], RecordingBackend(), ProfilePrompt(), tmp_path / "p.jsonl", progress=False)


def test_load_profiles(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"user_id": "a", "profile": "likes chess"}\n\n{"user_id": 2, "profile": ""}\n')
    assert load_profiles(path) == {"a": "likes chess", "2": ""}
    path.write_text('{"user_id": "a"}\n')
    with pytest.raises(DataError, match="line 1.*profile"):
        load_profiles(path)
    with pytest.raises(DataError, match="no such file"):
        load_profiles(tmp_path / "none.jsonl")
    path.write_text('{"user_id": "a", "profile": "x"}\n{"user_id": "a", "profile": "y"}\n')
    with pytest.raises(DataError, match="two profiles"):
        load_profiles(path)


def test_vllm_backend_without_vllm_is_a_clear_config_error():
    pytest.importorskip("torch")
    if "vllm" in sys.modules or _installed("vllm"):
        pytest.skip("vLLM is installed here")
    with pytest.raises(ConfigError, match="pip install 'bump-profiles\\[vllm\\]'"):
        VLLMBackend("smollm2-135m")


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_profile_command_end_to_end_with_heldout_split(tiny_model, tmp_path, capsys):
    data = tmp_path / "users.jsonl"
    users = make_users(4, seed=2)
    write_users_jsonl(users, data)
    out = tmp_path / "profiles.jsonl"
    args = ["profile", "--model", str(tiny_model), "--data", str(data), "--out", str(out), "--k", "2",
            "--max-new-tokens", "4", "--batch-size", "3", "--no-progress"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["users"], summary["written"], summary["skipped_too_short"]) == (4, 4, 0)
    got = rows(out)
    assert sorted(r["user_id"] for r in got) == sorted(u.id for u in users)
    assert all(r["model"] == str(tiny_model) and r["profile_tokens"] <= 4 for r in got)
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["already_done"] == 4


def test_profile_command_reports_bad_options_in_one_line(tmp_path, capsys):
    data = tmp_path / "users.jsonl"
    write_users_jsonl(make_users(2), data)
    assert main(["profile", "--backend", "openai", "--data", str(data), "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --backend openai needs --base-url") and "Traceback" not in err


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_every_user_exactly_once(tiny_model, tmp_path):
    """A real ``profile`` process killed with SIGKILL mid-way; a second run completes the file."""
    users = make_users(60, seed=5)
    data = tmp_path / "users.jsonl"
    write_users_jsonl(users, data)
    out = tmp_path / "profiles.jsonl"
    args = ["profile", "--model", str(tiny_model), "--data", str(data), "--out", str(out),
            "--max-new-tokens", "24", "--history-tokens", "80", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "bump_profiles.cli", *args, "--batch-size", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 120
        while (not out.exists() or out.read_bytes().count(b"\n") < 5) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = out.read_bytes().count(b"\n")
    assert 5 <= partial < len(users)
    assert main([*args, "--batch-size", "32"]) == 0  # the batch size may change between runs
    ids = [r["user_id"] for r in rows(out)]
    assert len(ids) == len(users) and set(ids) == {u.id for u in users}


def test_generation_benchmark_runs_and_records_both_modes(tiny_model, tmp_path, capsys):

    from bump_profiles.commands.bench import load_script

    bench = load_script(Path(__file__).resolve().parents[1] / "benchmarks", "generate")
    out = tmp_path / "generate.json"
    result = bench.main(["--model", str(tiny_model), "--users", "3", "--batch-size", "2", "--max-new-tokens", "3", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert set(result["runs"]) == {"one at a time", "batch 2"} and result["users"] == 3
    assert result["speedup"] > 0 and "cpu_count" in result["machine"]
    assert "batched / one at a time" in capsys.readouterr().out
