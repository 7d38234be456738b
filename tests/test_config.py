"""Training config: YAML + overrides with types, validation before any model loads, CLI errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bump_profiles.cli import main
from bump_profiles.config import TrainConfig, config_diff, describe, from_dict, load_config, to_yaml
from bump_profiles.engines import models
from bump_profiles.errors import ConfigError
from bump_profiles.train.trl_config import generation_layout

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_yaml_and_overrides_are_typed(tmp_path):
    path = write(tmp_path, {"grpo": {"max_steps": 5, "learning_rate": "3e-4"}, "data": {"synthetic": {"users": 10}}})
    config = load_config(path, ["grpo.max_steps=7.0", "output_dir=2026", "policy.lora=false", "reward.direction_weights=[0.7, 0.3]",
                                "grpo.bf16=null", "judge.model=minilm", "seed=3"])
    assert config.grpo.max_steps == 7 and isinstance(config.grpo.max_steps, int)
    assert config.output_dir == "2026"
    assert config.grpo.learning_rate == pytest.approx(3e-4) and isinstance(config.grpo.learning_rate, float)
    assert config.policy.lora is False
    assert config.reward.direction_weights == [0.7, 0.3]
    assert config.grpo.bf16 is None
    assert config.data.synthetic.users == 10 and config.seed == 3


def test_saved_yaml_round_trips():
    config = load_config(None, ["grpo.max_steps=4", "judge.kind=likelihood"])
    assert from_dict(TrainConfig, yaml.safe_load(to_yaml(config))) == config
    assert config_diff(config, load_config(None, ["grpo.max_steps=9", "judge.kind=likelihood"])) == ["grpo.max_steps"]


@pytest.mark.parametrize("overrides, message", [
    (["judge.kind=oracle"], "unknown judge kind 'oracle'"),
    (["judge.kind=copymask"], "copymask is an evaluation judge"),
    (["judge.calibration=center-transductive"], "is transductive"),
    (["reward.users_per_call=1"], "B must be at least 2"),
    (["grpo.num_generations=1"], "G must be at least 2"),
    (["data.k=0"], "data.k"),
    (["data.synthetic=null", "data.path=/no/such/file.json"], "no such file"),
    (["grpo.max_stepz=3"], "unknown config key 'grpo.max_stepz'"),
    (["grpo.max_steps=many"], "grpo.max_steps: expected an integer"),
    (["policy.lora=maybe"], "policy.lora: expected true or false"),
    (["reward.kind=task", "data.synthetic=null", "data.path=" + __file__], "data.outputs"),
    (["grpo.max_steps"], "expected key=value"),
    (["policy.lora_r=true"], "policy.lora_r: expected an integer, got True"),
    (["grpo.learning_rate=fast"], "grpo.learning_rate: expected a number"),
    (["reward.bump_options.copy_penalty_=2"], "unknown config key 'reward.bump_options.copy_penalty_'"),
    (["reward.bump_options.span_penalty=1"], "span_penalty needs max_copied_span"),
    (["reward.bump_options.copy_threshold=2"], "copy_threshold: must be in"),
    (["policy=3"], "policy: expected a mapping"),
    (["data.synthetic.userz=3"], "unknown config key 'data.synthetic.userz' (known under data.synthetic: seed, users)"),
    (["policy.lora_target_modules={a: 1}"], "policy.lora_target_modules: expected one of str | list[str], got {'a': 1}"),
])
def test_bad_configs_raise_config_error(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_generation_layout_fits_b_users_per_call():
    assert generation_layout(4, 4, 4, 1) == 4  # 16 rollouts in 4 micro-batches of 4
    assert generation_layout(4, 4, 4, 2) == 2
    with pytest.raises(ConfigError, match="multiple of"):
        generation_layout(3, 2, 4, 1)


def test_every_key_documented():
    lines = describe()
    assert any(line.startswith("reward.users_per_call = 4: ") for line in lines)
    undocumented = [line for line in lines if line.endswith(": ")]  # judge.* included
    assert undocumented == []


@pytest.mark.parametrize("overrides, message", [
    (["judge.kind=oracle"], "unknown judge kind"),
    (["judge.calibration=center-transductive"], "is transductive"),
    (["judge.calibration=center"], "renamed 'center-transductive'"),
    (["reward.users_per_call=1"], "B must be at least 2"),
    (["grpo.num_generations=1"], "G must be at least 2"),
    (["data.k=0"], "data.k"),
    (["data.synthetic=null", "data.path=/no/such/file.json"], "no such file"),
])
def test_cli_bad_config_fails_before_any_model_loads(overrides, message, tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was validated")

    monkeypatch.setattr(models, "load_causal_lm", no_model)
    monkeypatch.setattr(models, "load_tokenizer", no_model)
    path = write(tmp_path, {"output_dir": str(tmp_path / "run")})
    argv = ["train", "--config", str(path)]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_cli_missing_config_file(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "absent.yaml")]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "Traceback" not in err


def test_cli_check_validates_data_without_models(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: pytest.fail("model loaded"))
    assert main(["train", "--config", str(CONFIGS / "demo-cpu.yaml"), "--check", "--set", f"output_dir={tmp_path}/r"]) == 0
    out = capsys.readouterr().out
    assert '"train_users": 48' in out and '"eval_users": 16' in out


def test_guard_options_are_typed_and_reach_the_reward():
    from bump_profiles.config import CopyGuards
    from bump_profiles.train.run import build_rewards

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "honest-cpu.yaml", [])
    assert config.reward.bump_options == CopyGuards(copy_threshold=0.2, copy_penalty=2.0, max_copied_span=8, span_penalty=1.0)
    (reward,) = build_rewards(config, judge=object())
    assert (reward.copy_threshold, reward.copy_penalty, reward.max_copied_span, reward.span_penalty) == (0.2, 2.0, 8, 1.0)


@pytest.mark.parametrize("name", ["demo-cpu.yaml", "test-tiny.yaml"])
def test_shipped_configs_load(name):
    load_config(CONFIGS / name)


def test_lamp_gpu_config_loads(lamp_samples):
    data = lamp_samples / "LaMP_1"
    config = load_config(CONFIGS / "lamp-gpu.yaml", [f"data.path={data / 'train_questions.json'}",
                                                     f"data.outputs={data / 'train_outputs.json'}"])
    assert config.grpo.use_vllm and config.grpo.vllm_mode == "colocate"


def test_train_check_refuses_transductive_calibration(tmp_path, capsys):
    argv = ["train", "--config", str(CONFIGS / "demo-cpu.yaml"), "--check", "--set", f"output_dir={tmp_path}/r",
            "--set", "judge.calibration=center-transductive"]
    assert main(argv) == 2
    assert "transductive" in capsys.readouterr().err
