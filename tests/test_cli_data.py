"""`bump-profiles data` on the command line: stats, split, and one clear error per bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bump_profiles.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bump_profiles.cli", *args], capture_output=True, text=True, timeout=120)


def _write(path, text: str):
    path.write_text(text)
    return path


BAD_INPUTS = {
    "malformed_json": ("q.json", '[{"id": "1", "input": "x", "profile": [}', ["q.json", "malformed JSON", "line 1"]),
    "question_without_profile": ("q.json", json.dumps([{"id": "1", "input": "x", "profile": [{"id": "a", "title": "t", "abstract": "b"}]}, {"id": "2", "input": "y"}]), ["q.json", "record 1 (id 2)", "profile"]),
    "interaction_without_text": ("logs.jsonl", '{"user_id": "a", "text": "ok"}\n{"user_id": "a", "rating": 3}\n', ["logs.jsonl", "line 2", "no 'text'"]),
    "jsonl_line_not_json": ("logs.jsonl", '{"user_id": "a", "text": "ok"}\n{"user_id": "a", text: oops}\n', ["logs.jsonl", "line 2", "not valid JSON"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_error_without_traceback(tmp_path, case, capsys):
    name, text, must_say = BAD_INPUTS[case]
    path = _write(tmp_path / name, text)
    assert main(["data", "stats", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    for fragment in must_say:
        assert fragment in err, (fragment, err)


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path):
    path = _write(tmp_path / "logs.jsonl", "not json\n")
    proc = run_cli("data", "stats", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "logs.jsonl: record line 1: not valid JSON" in proc.stderr


def test_stats_and_split_on_jsonl(tmp_path, capsys):
    rows = [{"user_id": u, "text": f"{u} item {i}", "timestamp": f"2024-01-{i + 1:02d}"} for u in "abc" for i in range({"a": 5, "b": 3, "c": 1}[u])]
    path = _write(tmp_path / "logs.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert main(["data", "stats", str(path)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 3 and stats["interactions"] == 9
    assert stats["interactions_per_user"] == {"min": 1, "median": 3, "max": 5}
    out = tmp_path / "split.jsonl"
    assert main(["data", "split", str(path), "--k", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["users"] == 2 and summary["skipped"] == 1
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["user_id"] for x in lines] == ["a", "b"]
    assert [h["text"] for h in lines[0]["heldout"]] == ["a item 3", "a item 4"]


@pytest.mark.shared
def test_stats_on_real_lamp1_reports_five_users(lamp_samples):
    proc = run_cli("data", "stats", str(lamp_samples / "LaMP_1" / "train_questions.json"))
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["users"] == 5 and stats["questions"] == 5
    assert sorted(stats["per_user"].values()) == [50, 58, 65, 117, 128]


def test_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "data" in proc.stdout and "models" in proc.stdout
