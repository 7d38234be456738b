"""Provenance on profile lines, and the refusal to judge a profile on an item it read (the README
quickstart as it was written fed `judge eval --k 1` profiles that had read the held-out item)."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from bump_profiles.cli import main
from bump_profiles.data.schema import Interaction
from bump_profiles.errors import DataError
from bump_profiles.profiles.provenance import item_hash, load_reads, record, refuse_outside, refuse_seen
from tests.conftest import REPO


def _it(n: int, text: str) -> Interaction:
    return Interaction(id=f"i{n}", fields={"text": text}, date=f"2024-01-{n + 1:02d}")


def test_record_names_split_count_and_hashes():
    hist, held = [_it(0, "a  b"), _it(1, "c")], [_it(2, "d")]
    read = record(hist, held)
    assert read["split"] == {"k": 1, "cut_date": "2024-01-03"} and read["n"] == 2
    assert read["items"] == [item_hash(hist[0]), item_hash(hist[1])]
    assert item_hash(_it(5, "a b")) == item_hash(hist[0])  # content, not ids or spacing
    assert record(hist)["split"] is None and record(hist)["hash"] != record(hist[:1])["hash"]


def test_refusals_name_the_file_and_the_user(tmp_path):
    path = tmp_path / "p.jsonl"
    hist, held = [_it(0, "a"), _it(1, "b")], [_it(2, "c")]
    rows = [{"user_id": "ana", "profile": "x", "read": record(hist + held)},
            {"user_id": "ben", "profile": "y", "read": record(hist, held)},
            {"user_id": "old", "profile": "z"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    reads = load_reads(path)
    with pytest.raises(DataError, match=r"p\.jsonl.*record ana.*read 1 of the items it is judged on"):
        refuse_seen(path, reads, {"ana": held, "ben": held, "old": held})
    refuse_seen(path, reads, {"ben": held, "old": held})  # ben read only his history; old cannot be checked
    with pytest.raises(DataError, match=r"record ana.*outside what 'ana' may see"):
        refuse_outside(path, reads, {"ana": hist})
    refuse_outside(path, reads, {"ana": hist + held, "ben": hist})


def _quickstart() -> tuple[str, list[list[str]]]:
    """The README quickstart: the JSONL it writes and its bump-profiles commands."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Quickstart with your own logs", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    data = block.split("<<'JSONL'\n", 1)[1].split("JSONL\n", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0])[1:] for line in block.splitlines()
                if line.startswith(".venv/bin/bump-profiles")]
    return data, commands


def _run(commands, tmp_path, tiny) -> list[int]:
    codes = []
    for args in commands:
        args = [str(tmp_path / a) if a.endswith(".jsonl") else a for a in args]
        args = [str(tiny) if a == "smollm2-135m" else a for a in args]
        codes.append(main([*args, "--no-progress"] if args[0] == "profile" else args))
    return codes


def test_readme_quickstart_as_written_before_errors_and_the_fixed_one_runs(tmp_path, capsys):
    from fakes import save_tiny

    data, commands = _quickstart()
    (tmp_path / "my_logs.jsonl").write_text(data)
    tiny = save_tiny(tmp_path / "tiny")
    assert [c[0] for c in commands] == ["data", "profile", "judge"]
    assert "--k" in commands[1]  # the fix: profiles hold out what judge eval ranks
    old = [c for c in commands]
    at = old[1].index("--k")
    old[1] = old[1][:at] + old[1][at + 2:]  # the quickstart as it was: profiles read everything
    assert _run(old, tmp_path, tiny) == [0, 0, 2]
    err = capsys.readouterr().err
    assert re.search(r"profiles\.jsonl: record (ana|ben): the profile of user '(ana|ben)' read 1 of the items it is judged on", err)
    (tmp_path / "profiles.jsonl").unlink()
    assert _run(commands, tmp_path, tiny) == [0, 0, 0]
    assert json.loads((tmp_path / "profiles.jsonl").read_text().splitlines()[0])["read"]["split"]["k"] == 1


def test_eval_run_refuses_a_question_profile_that_read_another_questions_profile(tmp_path, capsys):
    from bump_profiles.data import load_lamp_questions
    from bump_profiles.data.lamp import question_users
    from tests.test_lamp_leak import lamp_fixture

    q, g, _ = lamp_fixture(tmp_path, "LaMP_2_news")
    person = load_lamp_questions(q, outputs=g).users[0]
    union = [it for items in person.extra["question_items"].values() for it in items]
    rows = [{"user_id": u.id, "profile": "likes news", "read": record(union if u.id == "q1" else u.interactions)}
            for u in question_users([person])]
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["eval", "run", "--task", "LaMP_2_news", "--questions", str(q), "--golds", str(g), "--method", "profile",
            "--profiles", str(profiles), "--reader", "probe", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "profiles.jsonl: record q1: the profile of 'q1' read 1 interaction(s) outside what 'q1' may see" in capsys.readouterr().err


def test_profile_on_a_lamp_file_is_per_question_or_per_person(tmp_path, capsys):
    from fakes import save_tiny

    from tests.test_lamp_leak import lamp_fixture

    q, _, _ = lamp_fixture(tmp_path, "LaMP_2_news")
    tiny = save_tiny(tmp_path / "tiny")
    for flag, out in (([], "q.jsonl"), (["--per-person"], "p.jsonl")):
        assert main(["profile", "--model", str(tiny), "--data", str(q), "--out", str(tmp_path / out),
                     "--max-new-tokens", "4", "--no-progress", *flag]) == 0
    per_q = {r["user_id"]: r["read"]["n"] for r in map(json.loads, (tmp_path / "q.jsonl").read_text().splitlines())}
    per_p = {r["user_id"]: r["read"]["n"] for r in map(json.loads, (tmp_path / "p.jsonl").read_text().splitlines())}
    assert per_q == {"q0": 4, "q1": 4, "q2": 4}  # each question's own profile: the 4 items that are not its answer
    assert per_p == {"LaMP_2_news-q0": 2}  # the 2 items every question has: none is any question's answer
