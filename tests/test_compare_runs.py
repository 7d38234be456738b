"""benchmarks/compare_runs.py: gaps to each run's own history@budget, paired by author across runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import load_script


def compare():
    return load_script("benchmarks/compare_runs.py")


def write_run(folder: Path, per_author: dict[str, dict[str, float]]) -> Path:
    rows = {s: {u: {"ndcg_a": a, "ndcg_b": a / 2} for u, a in v.items()} for s, v in per_author.items()}
    (folder / "intrinsic").mkdir(parents=True)
    (folder / "intrinsic" / "lexical.json").write_text(json.dumps({"groupings": {"far, all at once": {"per_author": rows}}}))
    return folder


def test_gaps_to_each_runs_own_history_are_compared_by_author(tmp_path, capsys):
    one = write_run(tmp_path / "one", {"BUMP": {"x": 0.5, "y": 0.7}, "history@budget": {"x": 0.6, "y": 0.6}})
    two = write_run(tmp_path / "two", {"BUMP": {"x": 0.8, "y": 0.9, "z": 0.1}, "history@budget": {"x": 0.6, "y": 0.7, "z": 0.5}})
    assert compare().main(["--term", f"one={one}:BUMP - history@budget", "--term", f"two={two}:BUMP - history@budget"]) == 0
    out = capsys.readouterr().out
    assert "2 authors" in out  # z is only in the second run
    # gaps: one (-0.1, +0.1) mean 0; two (+0.2, +0.2) mean +0.2; two minus one: +0.2 on A, +0.1 on B
    row = next(line for line in out.splitlines() if line.startswith("| two |"))
    assert row.split(" | ")[1].startswith("+0.200") and row.split(" | ")[3].startswith("+0.200") and row.split(" | ")[4].startswith("+0.100")


def test_a_set_the_run_does_not_have_is_named(tmp_path):
    one = write_run(tmp_path / "one", {"BUMP": {"x": 0.5}})
    with pytest.raises(SystemExit, match="among: BUMP"):
        compare().main(["--term", f"one={one}:task-reward"])


def test_a_pooled_runs_all_authors_file_is_read(tmp_path, capsys):
    """A folds run's pooled/intrinsic/<judge>-all.json holds the groupings at its top level."""
    rows = {s: {u: {"ndcg_a": a, "ndcg_b": a} for u, a in v.items()} for s, v in
            {"BUMP": {"x": 0.5, "y": 0.9}, "history@budget": {"x": 0.4, "y": 0.6}}.items()}
    (tmp_path / "pooled" / "intrinsic").mkdir(parents=True)
    (tmp_path / "pooled" / "intrinsic" / "lexical-all.json").write_text(
        json.dumps({"far, all authors at once": {"per_author": rows}}))
    assert compare().main(["--judge", "lexical-all", "--grouping", "far, all authors at once",
                           "--term", f"pooled={tmp_path / 'pooled'}:BUMP - history@budget"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| pooled |"))
    assert row.split(" | ")[1].startswith("+0.200")  # gaps +0.1 and +0.3
