"""``bump-profiles bench``: the benchmark scripts run end to end at tiny sizes and write their JSON.

Tiny random models stand in for SmolLM2 (no download, seconds); no timing is asserted, only that
the measurements are there and add up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bump_profiles.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_bench_reward_end_to_end(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "reward.json"
    rc = main(["bench", "reward", "--judges", "likelihood", "yesno", "--judge-model", str(tiny_model), "--users", "3", "2",
               "--llm-max-users", "3", "--generations", "2", "--repeats", "2", "--llm-repeats", "2", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "reward"
    assert {"platform", "cpu_count", "torch", "torch_threads", "load_average_at_start"} <= set(report["machine"])
    rows = report["results"]
    assert [(r["judge"], r["users"]) for r in rows] == [("likelihood", 2), ("likelihood", 3), ("yesno", 2), ("yesno", 3)]
    for r in rows:
        assert r["rollouts"] == 2 * r["users"] and r["items"] == 2 * r["users"]
        assert r["pairs_per_direction"] == r["rollouts"] * r["items"]
        assert r["directions_scored"] == (2 if r["judge"] == "yesno" else 1)
        assert r["judge_calls"] == r["directions_scored"]  # the last timed call's passes over the judge
        assert len(r["seconds"]) == 2
        assert 0 < r["judge_s"] <= r["median_s"]
        assert r["ranking_s"] == pytest.approx(r["median_s"] - r["judge_s"], abs=1e-3)
        assert 0 <= r["mean_reward"] <= 1
    assert report["growth"]["yesno"]["total"]["from_users"] == 2 and report["growth"]["yesno"]["total"]["to_users"] == 3
    assert "yesno" in capsys.readouterr().out  # the table


def test_bench_step_times_trl_phases(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "step.json"
    rc = main(["bench", "step", "--config", str(REPO / "configs" / "test-tiny.yaml"), "--judges", "yesno", "--steps", "2",
               "--set", f"policy.model={tiny_model}", "--set", f"judge.model={tiny_model}", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert [s["step"] for s in run["steps"]] == [1, 2] and run["reported"] == run["steps"][-1]
    for s in run["steps"]:
        assert s["generation_s"] > 0 and s["reward_s"] > 0 and s["forward_backward_s"] > 0
        assert 0 < s["judge_s"] <= s["reward_s"]
        parts = s["generation_s"] + s["reward_s"] + s["scoring_rest_s"] + s["forward_backward_s"] + s["optimizer_and_rest_s"]
        assert parts == pytest.approx(s["step_s"], abs=0.01)
        cpu_parts = sum(s[f"{name}_cpu_s"] for name in ("generation", "reward", "scoring_rest", "forward_backward", "optimizer_and_rest"))
        assert cpu_parts == pytest.approx(s["step_cpu_s"], abs=0.01)
        assert 0 < s["reward_share"] < 1 and 0 < s["reward_share_cpu"] < 1
    # the verdict is the comparison of the reported step's shares with the target, not just a key
    assert run["target_share"] == 0.5
    shares = run["reported"]["reward_share"], run["reported"]["reward_share_cpu"]
    assert report["targets_met"] == {"reward_share_yesno_at_most_50%": {"wall": shares[0] <= 0.5, "cpu": shares[1] <= 0.5}}


def test_bench_step_compare_prints_speedup_and_parity(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "step.json"
    rc = main(["bench", "step", "--config", str(REPO / "configs" / "test-tiny.yaml"), "--judges", "embedding",
               "--steps", "2", "--set", f"policy.model={tiny_model}", "--compare", "grpo.bf16=false",
               "grpo.max_completion_length=12", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    baseline, default = report["runs"]
    assert baseline["overrides"] == ["grpo.bf16=false", "grpo.max_completion_length=12"] and default["overrides"] == []
    assert baseline["setup"]["max_completion_length"] == 12 and default["setup"]["max_completion_length"] == 8
    assert baseline["bf16_autocast"] is False
    (c,) = report["comparisons"]
    assert len(c["reward_curves"]["baseline"]) == len(c["reward_curves"]["default"]) == 2 and c["finite"]
    assert c["speedup_s"] > 0 and c["speedup_at_least_2x"] == (c["speedup_s"] >= 2.0)
    assert c["parity"] == (c["finite"] and abs(c["mean_reward_diff"]) < 2 * c["diff_standard_error"])
    printed = capsys.readouterr().out
    assert "parity (no NaN, mean reward within noise)" in printed and "speed-up >= 2x" in printed


def test_bench_without_benchmarks_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--dir", str(tmp_path), "reward"]) == 2
    err = capsys.readouterr().err
    assert "benchmark script not found" in err and "source checkout" in err


def test_bench_all_takes_no_script_arguments(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "all", "--users", "2"]) == 2
    assert "pass arguments to one stage" in capsys.readouterr().err
