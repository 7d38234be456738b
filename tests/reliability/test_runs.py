"""Runs lose nothing: Ctrl-C saves a checkpoint and --resume finishes; run directories are protected.

(tiny random model, deterministic judge, seconds each)"""

from __future__ import annotations

import os
import signal

import pytest
from test_train import BigramJudge, tiny_config
from transformers import TrainerCallback

from bump_profiles.config import to_yaml
from bump_profiles.errors import ConfigError
from bump_profiles.train import train
from bump_profiles.train.rundir import prepare_run_dir


class CtrlC(TrainerCallback):
    """Sends SIGINT to this process while the first step runs."""

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:
            os.kill(os.getpid(), signal.SIGINT)


def _callers_handler(signum, frame):
    """The SIGINT handler a caller had before ``train``; train's own handler must catch the signal."""
    raise AssertionError("train did not install its own SIGINT handler")


def test_ctrl_c_checkpoints_then_resume_finishes(tiny_model, tmp_path):
    # The caller's handler, not Python's default: the suite may run with SIGINT ignored (nohup, `&`).
    outer = signal.signal(signal.SIGINT, _callers_handler)
    try:
        run = tmp_path / "run"
        result = train(tiny_config(tiny_model, run, "grpo.save_steps=10"), judge=BigramJudge(), callbacks=[CtrlC()])
        assert result.interrupted and result.global_step == 1
        assert (run / "checkpoint-1").is_dir() and not (run / "final").exists()
        assert signal.getsignal(signal.SIGINT) is _callers_handler  # the previous handler is given back
        result = train(tiny_config(tiny_model, run, "grpo.save_steps=10"), judge=BigramJudge(), resume=True)
        assert result.global_step == 2 and not result.interrupted and (run / "final").is_dir()
    finally:
        signal.signal(signal.SIGINT, outer)


def test_run_directory_is_protected(tiny_model, tmp_path):
    run = tmp_path / "run"
    config = tiny_config(tiny_model, run)
    run.mkdir()
    (run / "config.yaml").write_text("previous run\n")
    with pytest.raises(ConfigError, match="already holds a run"):
        prepare_run_dir(config, resume=False, overwrite=False)
    with pytest.raises(ConfigError, match="no checkpoint"):
        prepare_run_dir(config, resume=True, overwrite=False)
    assert prepare_run_dir(config, resume=False, overwrite=True) is None
    assert not (run / "config.yaml").exists()

    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="not a run directory"):
        prepare_run_dir(tiny_config(tiny_model, other), resume=False, overwrite=True)
    assert (other / "thesis.tex").exists()


def test_resume_refuses_a_changed_config(tiny_model, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-1").mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(tiny_config(tiny_model, run)))
    assert prepare_run_dir(tiny_config(tiny_model, run, "grpo.max_steps=5"), resume=True, overwrite=False)
    with pytest.raises(ConfigError, match="reward.users_per_call"):
        prepare_run_dir(tiny_config(tiny_model, run, "reward.users_per_call=4", "grpo.micro_batch_size=4"),
                        resume=True, overwrite=False)




def test_resume_refuses_another_users_split(tiny_model, tmp_path):
    """The config is the same but the data gave other training users (a changed
    file): resuming would train the checkpoint on a different split. Refused before any model loads."""
    import json

    run = tmp_path / "run"
    config = tiny_config(tiny_model, run)
    (run / "checkpoint-1").mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(config))
    (run / "users.json").write_text(json.dumps({"train": ["someone", "else"], "eval": [], "skipped": 0}))
    with pytest.raises(ConfigError, match="users.json"):
        train(config, judge=BigramJudge(), resume=True)


def test_resume_survives_a_torn_last_metrics_line(tiny_model, tmp_path):
    """A crash mid-append leaves half a line; --resume drops it (and the steps after
    the checkpoint) instead of failing on it. A broken line before the last is still an error."""
    run = tmp_path / "run"
    (run / "checkpoint-2").mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(tiny_config(tiny_model, run)))
    good = '{"step": 1, "reward": 0.5}\n{"step": 2, "reward": 0.6}\n{"step": 3, "reward": 0.7}\n'
    (run / "metrics.jsonl").write_text(good + '{"step": 4, "rew')
    assert prepare_run_dir(tiny_config(tiny_model, run), resume=True, overwrite=False)
    assert (run / "metrics.jsonl").read_text() == '{"step": 1, "reward": 0.5}\n{"step": 2, "reward": 0.6}\n'
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"ste\n{"step": 2}\n')
    with pytest.raises(ConfigError, match="metrics.jsonl: line 2"):
        prepare_run_dir(tiny_config(tiny_model, run), resume=True, overwrite=False)


def test_the_time_budget_carries_over_a_resume(tmp_path, monkeypatch):
    """A 1-minute budget, 40 s spent before a crash; after --resume the budget has
    20 s left, not a fresh minute (the time spent is kept in the run folder, step by step)."""
    from types import SimpleNamespace

    import bump_profiles.authors.pipeline as pipeline

    clock = [0.0]
    monkeypatch.setattr(pipeline.time, "perf_counter", lambda: clock[0])
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    first = pipeline.budget_callback(1.0, tmp_path)
    first.on_train_begin(None, None, control)
    clock[0] = 40.0
    first.on_step_end(None, None, control)
    assert not control.should_training_stop
    clock[0] = 1000.0  # the process died; a new one resumes later
    again = pipeline.budget_callback(1.0, tmp_path)
    again.on_train_begin(None, None, control)
    clock[0] = 1025.0
    again.on_step_end(None, None, control)
    assert control.should_training_stop and control.should_save and again.stopped
