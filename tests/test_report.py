"""Reports show what a run wrote, and only that."""

from __future__ import annotations

import base64
import json

import pytest

from bump_profiles.cli import main
from bump_profiles.errors import DataError
from bump_profiles.evaluation.report import write_report


def _run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    rows = [{"step": s, "reward": 0.5 + 0.01 * s, "ndcg_a": 0.6, "ndcg_b": 0.4 + 0.02 * s, "profile_tokens": 40 + s} for s in range(1, 6)]
    (run / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken")
    (run / "intrinsic.json").write_text(json.dumps({"judge": "embedding", "rows": [
        {"name": "zero-shot profile", "ndcg_a": 0.71, "ndcg_b": 0.69},
        {"name": "BUMP profile", "ndcg_a": 0.812345, "ndcg_b": 0.77}], "random": {"ndcg_a": 0.4, "ndcg_b": 0.42}}))
    (run / "downstream.json").write_text(json.dumps({"task": "synthetic", "rows": [{"method": "none", "accuracy": 0.5, "users": 8}]}))
    for name, text in (("profiles_before.jsonl", "likes things"), ("profiles_after.jsonl", "loves telescopes")):
        (run / name).write_text(json.dumps({"user_id": "u1", "profile": text}) + "\n")
    (run / "run.json").write_text(json.dumps({"seed": 3, "command": "bump-profiles demo", "versions": {"torch": "2.13.0"}}))
    return run


def test_report_holds_the_runs_numbers_and_inlines_plots(tmp_path):
    run = _run_dir(tmp_path)
    md_path, html_path = write_report(run)
    md, page = md_path.read_text(), html_path.read_text()
    assert "0.812" in md and "| none | 0.500 | 8 |" in md
    assert "likes things" in md and "loves telescopes" in md
    for name in ("reward", "length", "intrinsic"):
        png = (run / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        assert base64.b64encode(png).decode()[:200] in page
    assert "plots/" not in page.split("<body>")[1]  # self-contained: no file references left
    assert not (run / "plots" / "headroom.png").exists()  # these metrics hold no headroom columns


def test_headroom_is_plotted_when_the_run_logged_it(tmp_path):
    run = _run_dir(tmp_path)
    rows = [{"step": s, "reward": 0.5, "at_max_share": 0.1 * s, "group_spread": 0.2, "ndcg_a": 0.6, "ndcg_a_batch": 0.7}
            for s in range(1, 4)]
    (run / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    md_path, _ = write_report(run)
    assert (run / "plots" / "headroom.png").read_bytes().startswith(b"\x89PNG")
    assert "![headroom](plots/headroom.png)" in md_path.read_text()


def test_report_leaves_out_sections_without_data(tmp_path, capsys):
    run = tmp_path / "empty"
    run.mkdir()
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text()
    assert "Training" not in md and "Downstream" not in md
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_only_a_cut_last_line_of_metrics_is_skipped(tmp_path, capsys):
    # A malformed line in the middle is not a crash's trace: it used to vanish from the curves silently.
    run = _run_dir(tmp_path)
    metrics = run / "train" / "metrics.jsonl"
    lines = metrics.read_text().split("\n")
    metrics.write_text("\n".join(lines[:2] + ["{not json"] + lines[2:]))
    with pytest.raises(DataError, match=r"metrics\.jsonl: record line 3"):
        write_report(run)
    assert main(["report", str(run)]) == 2
    assert "line 3" in capsys.readouterr().err
