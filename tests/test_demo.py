"""The demo's config: validated up front, and recorded as the command that reproduces the run."""

from __future__ import annotations

import pytest

from bump_profiles.demo import DemoConfig, command_line, train_config
from bump_profiles.errors import ConfigError


def test_command_line_names_only_what_differs_from_the_defaults():
    assert command_line(DemoConfig()) == "bump-profiles demo"
    assert command_line(DemoConfig(steps=2, out="runs/x", overwrite=True)) == "bump-profiles demo --out runs/x --steps 2"


def test_bad_demo_config_fails_before_any_model_loads():
    with pytest.raises(ConfigError):
        DemoConfig(users=5, eval_users=3)
    with pytest.raises(ConfigError):
        DemoConfig(steps=0)


def test_train_config_keeps_the_evaluation_users_out_of_training():
    cfg = train_config(DemoConfig(out="runs/x", steps=3))
    assert cfg.output_dir.endswith("train") and cfg.grpo.max_steps == 3
    assert cfg.data.eval_users == DemoConfig().eval_users and cfg.judge.kind == "embedding"
