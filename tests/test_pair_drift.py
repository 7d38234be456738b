"""benchmarks/pair_drift.py: paired differences read from drift reports' per-user scores, grouped by the users'
kinds drawn again from the report's own arguments; reports over other users, or NDCG_B across reports, refused."""

from __future__ import annotations

import json

import pytest
from fakes import load_script, save_tiny


@pytest.mark.slow
def test_pairs_come_from_the_reports_per_user_scores(tmp_path, capsys):
    bench, pair = load_script("benchmarks/bench_drift.py"), load_script("benchmarks/pair_drift.py")
    tiny = save_tiny(tmp_path / "tiny")
    common = ["--model", str(tiny), "--authors", "0", "--kinds", "switch", "keep", "--rounds", "3", "--per-round", "3",
              "--max-new-tokens", "4", "--bootstrap", "50", "--no-regeneration"]
    a, other = tmp_path / "a.json", tmp_path / "other.json"
    assert bench.main([*common, "--synthetic", "6", "--trained-model", str(tiny), "--out", str(a)]) == 0
    assert bench.main([*common, "--synthetic", "4", "--out", str(other)]) == 0
    capsys.readouterr()  # the benchmark's own tables
    # the same model as both writers: trained - incremental is exactly 0 in every group and round
    assert pair.main([f"{a}:trained", f"{a}:incremental", "--groups", "switch", "keep", "all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| after round | switch | keep | all |" and len(lines) == 2 + 2
    assert all(cell.strip() == "+0.000 [+0.000, +0.000]" for line in lines[2:] for cell in line.split("|")[2:-1])
    report = json.loads(a.read_text())["populations"]["synthetic"]
    members = pair.kinds_of(pair.redraw(json.loads(a.read_text()), "synthetic")["users"])
    assert members["all"] == report["user_ids"] and len(members["switch"]) == len(members["keep"]) == 3
    rows = pair.pair(report, "incremental", report, "stale", members, "lexical", "ndcg_a", 0, 50)
    last = report["rounds"][-1]["judges"]["lexical"]["per_user"]
    want = sum(last["incremental"]["ndcg_a"][u] - last["stale"]["ndcg_a"][u] for u in members["all"]) / 6
    assert rows[-1]["all"]["mean"] == pytest.approx(want)
    assert pair.main([f"{a}:trained", f"{other}:incremental"]) == 2  # other users
    assert pair.main([f"{a}:trained", f"{other}:incremental", "--direction", "ndcg_b"]) == 2
    assert pair.main([f"{a}:trained", f"{a}:incremental", "--groups", "spliced"]) == 2  # no such group
