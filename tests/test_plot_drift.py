"""benchmarks/plot_drift.py: the series it plots are the report's own numbers, round by round, and a report
the asked judge never scored is refused by name."""

from __future__ import annotations

import json

import pytest
from fakes import load_script

from bump_profiles.errors import DataError


def _row(mean: float) -> dict:
    return {d: {"mean": mean, "lo": mean - 0.1, "hi": mean + 0.1} for d in ("ndcg_a", "ndcg_b")}


def _report() -> dict:
    rounds = []
    for r, (stale, notes) in enumerate([(0.4, 0.4), (0.3, 0.5), (0.3, 0.6)], start=1):
        judges = {"lexical": {"all": {"rows": {"stale": _row(stale), "notes": _row(notes)}}}}
        if r == 3:
            judges["likelihood"] = {"all": {"rows": {"stale": _row(0.7), "notes": _row(0.8)}}}
        rounds.append({"round": r, "judges": judges, "prompt_tokens_mean": {"stale": 300.0 if r == 1 else 0.0, "notes": 300.0 + r}})
    return {"populations": {"synthetic": {"users": 4, "groups": {"keep": 2}, "rounds": rounds}}}


def test_drift_series_are_the_reports_numbers_and_a_missing_judge_is_refused(tmp_path, capsys):
    plot = load_script("benchmarks/plot_drift.py")
    pop = _report()["populations"]["synthetic"]
    notes = plot.drift_series(pop)["notes"]
    assert notes["round"] == [1, 2, 3] and notes["mean"] == [0.4, 0.5, 0.6] and notes["tokens"] == [301.0, 302.0, 303.0]
    assert notes["lo"] == pytest.approx([0.3, 0.4, 0.5])
    assert plot.drift_series(pop, judge="likelihood")["stale"]["round"] == [3]  # only the rounds that judge scored
    with pytest.raises(DataError, match="yesno judge for 'all'"):
        plot.drift_series(pop, judge="yesno")
    assert list(plot.drift_series(pop, sets=["notes", "trained"])) == ["notes"]  # only the sets asked for
    with pytest.raises(DataError, match="with any of the sets trained"):
        plot.drift_series(pop, sets=["trained"])
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(_report()))
    out = tmp_path / "fig.png"
    assert plot.main([str(path), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "r2: 0.500 [0.400, 0.600]" in capsys.readouterr().out
    assert plot.main([str(path), "--judge", "yesno", "--out", str(tmp_path / "no.png")]) == 2
    assert not (tmp_path / "no.png").exists()
    assert plot.main([str(path), "--groups", "shifting", "--out", str(tmp_path / "no.png")]) == 2  # no such group
    assert not (tmp_path / "no.png").exists()
