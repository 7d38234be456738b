"""The demo's config: validated up front, and recorded as the command that reproduces the run."""

from __future__ import annotations

import pytest

from bump_profiles.errors import ConfigError
from bump_profiles.evaluation.demo import DemoConfig, command_line, train_config


def test_command_line_names_only_what_differs_from_the_defaults():
    assert command_line(DemoConfig()) == "bump-profiles demo"
    assert command_line(DemoConfig(steps=2, out="runs/x", overwrite=True)) == "bump-profiles demo --out runs/x --steps 2"


def test_bad_demo_config_fails_before_any_model_loads():
    with pytest.raises(ConfigError):
        DemoConfig(users=5, eval_users=3)
    with pytest.raises(ConfigError):
        DemoConfig(steps=0)
    with pytest.raises(ConfigError, match="length_target"):
        DemoConfig(length_target=64, profile_tokens=48)


def test_train_config_keeps_the_evaluation_users_out_of_training():
    cfg = train_config(DemoConfig(out="runs/x", steps=3))
    assert cfg.output_dir.endswith("train") and cfg.grpo.max_steps == 3
    assert cfg.data.eval_users == DemoConfig().eval_users and cfg.judge.kind == "embedding"


def test_the_demo_reward_carries_the_honest_profile_guards():
    """As the authors configs: a profile past the length target, repeating itself or pasting the history pays less."""
    reward = train_config(DemoConfig(out="runs/x", length_target=24)).reward
    assert reward.length_target == 24 and reward.length_penalty > 0 and reward.repetition_penalty > 0
    guards = reward.bump_options
    assert guards.copy_penalty > 0 and guards.span_penalty > 0 and guards.max_copied_span is not None


def test_downstream_table_puts_every_method_between_none_and_the_true_interests():
    from bump_profiles.evaluation.demo import downstream_table
    from bump_profiles.train.data import prepare_data
    from tests.test_probe import TopicEncoder

    data = prepare_data(train_config(DemoConfig(out="runs/x")))
    words = {s.user.id: " ".join(it.text for it in s.history[-4:]) for s in data.eval}  # a history-pasting profile
    table = downstream_table(data.eval, {"BUMP profile": words}, lambda t: len(t.split()), encoder=TopicEncoder())
    rows = {r["method"]: r for r in table["rows"]}
    assert list(rows) == ["none", "retrieval (BM25, k=2)", "BUMP profile", "history@budget", "true interests"]
    assert all(r["questions"] == 10 * len(data.eval) and r["users"] == len(data.eval) for r in rows.values())
    none, truth = rows["none"], rows["true interests"]
    assert truth["accuracy"] - none["accuracy"] >= 0.15 and none["ci95_hi"] < truth["ci95_lo"]
    assert all(r["ci95_lo"] <= r["accuracy"] <= r["ci95_hi"] for r in rows.values())
