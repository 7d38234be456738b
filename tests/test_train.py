"""GRPO training end to end on a tiny random model: weights change, metrics are written, checkpoints
resume, Ctrl-C saves and stops, run directories are protected; plus the dataset and the task reward."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakes import tiny_causal_lm, tiny_tokenizer
from transformers import TrainerCallback

from bump_profiles.config import load_config
from bump_profiles.profiles.prompts import ProfilePrompt
from bump_profiles.rewards.task import TaskReward
from bump_profiles.train import train
from bump_profiles.train.data import build_dataset, eval_user_ids, prepare_data

REPO = Path(__file__).resolve().parents[1]


class BigramJudge:
    """A deterministic judge for tests: cosine of character-bigram counts (varies with any text)."""

    symmetric = True

    @staticmethod
    def _vec(text: str) -> Counter:
        return Counter(text[i : i + 2] for i in range(len(text) - 1))

    def score(self, queries, documents, direction):
        def cos(a: Counter, b: Counter) -> float:
            dot = sum(v * b[k] for k, v in a.items())
            return dot / (math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values())) or 1.0)

        q = [self._vec(t) for t in queries]
        d = [self._vec(t) for t in documents]
        return np.array([[cos(a, b) for b in d] for a in q], dtype=np.float64)


def tiny_config(model: Path, run: Path, *extra: str):
    return load_config(REPO / "configs" / "test-tiny.yaml", [f"policy.model={model}", f"output_dir={run}", *extra])


class ParamWatch(TrainerCallback):
    """Records the trainable parameters at the start and end of training."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.after = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_dataset_rows_hide_the_heldout_items():
    config = load_config(REPO / "configs" / "test-tiny.yaml")
    data = prepare_data(config)
    ds = build_dataset(data.train, ProfilePrompt(history_tokens=200), with_task=True)
    assert len(ds) == len(data.train) == 10 and len(data.eval) == 2
    row = ds[0]
    assert set(row) == {"prompt", "user_id", "heldout", "history", "task_inputs", "task_outputs"}
    assert len(row["heldout"]) == 2 and row["task_outputs"][0] in ("[1]", "[2]")
    assert all(text not in row["prompt"][0]["content"] for text in row["heldout"])
    assert not {s.user.id for s in data.train} & {s.user.id for s in data.eval}


def test_eval_users_fraction_or_count_and_seeded():
    config = load_config(None, ["data.synthetic.users=20"])
    users = [s.user for s in prepare_data(config).train]
    assert len(eval_user_ids(users, 0.25, seed=1)) == 4
    assert len(eval_user_ids(users, 3, seed=1)) == 3
    assert eval_user_ids(users, 3, seed=1) == eval_user_ids(users, 3, seed=1) != eval_user_ids(users, 3, seed=2)


def test_train_two_steps_changes_weights_and_writes_metrics(tiny_model, tmp_path):
    run = tmp_path / "run"
    watch = ParamWatch()
    result = train(tiny_config(tiny_model, run), judge=BigramJudge(), callbacks=[watch])
    assert result.global_step == 2 and not result.interrupted
    changed = [n for n in watch.before if not np.allclose(watch.before[n], watch.after[n])]
    assert watch.before and changed == list(watch.before), "every LoRA parameter should have moved"
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert 0 <= r["reward"] <= 1 and 0 <= r["ndcg_a"] <= 1 and 0 <= r["ndcg_b"] <= 1
        assert r["distinct_users"] >= 2 and r["profile_tokens"] > 0 and r["step_time"] > 0 and "kl" in r
    final = run / "final"
    assert (final / "adapter_model.safetensors").exists() and (final / "tokenizer.json").exists()
    assert (run / "config.yaml").exists() and (final / "config.yaml").exists()
    users = json.loads((run / "users.json").read_text())
    assert len(users["train"]) == 10 and len(users["eval"]) == 2

    # Resumed at its max_steps (a run whose final/ was lost, or finished early at a checkpoint), it trains no
    # further step: final/ is the checkpoint's weights (HF alone trains one more).
    (final / "adapter_model.safetensors").unlink()
    result = train(tiny_config(tiny_model, run), judge=BigramJudge(), resume=True)
    assert result.global_step == 2 and [r["step"] for r in read_metrics(run)] == [1, 2]
    from safetensors.numpy import load_file

    saved = load_file(str(run / "checkpoint-2" / "adapter_model.safetensors"))
    restored = load_file(str(final / "adapter_model.safetensors"))
    assert saved.keys() == restored.keys() and all(np.array_equal(saved[k], restored[k]) for k in saved)

    # Resume from the last checkpoint and train one more step.
    result = train(tiny_config(tiny_model, run, "grpo.max_steps=3"), judge=BigramJudge(), resume=True)
    assert result.global_step == 3
    assert [r["step"] for r in read_metrics(run)] == [1, 2, 3]


def test_task_reward_scores_gold_likelihood():
    tok = tiny_tokenizer()
    reward = TaskReward(tiny_causal_lm(tok, seed=1), tok)
    logged = {}
    out = reward(
        prompts=[None, None],
        completions=[[{"role": "assistant", "content": "likes chess"}], "likes baking"],
        task_inputs=[["Which item? [1] or [2]"], ["Which item? [1] or [2]", "Again? [1] or [2]"]],
        task_outputs=[["[1]"], ["[2]", "[1]"]],
        log_metric=lambda k, v: logged.setdefault(k, v),
    )
    assert len(out) == 2 and all(v < 0 and math.isfinite(v) for v in out)
    assert logged["task_loglik"] == pytest.approx(sum(out) / 2)


def test_bump_plus_task_trains(tiny_model, tmp_path):
    tok = tiny_tokenizer()
    result = train(tiny_config(tiny_model, tmp_path / "run", "reward.kind=bump+task", "grpo.max_steps=1"),
                   judge=BigramJudge(), reader=(tiny_causal_lm(tok, seed=1), tok))
    row = read_metrics(tmp_path / "run")[0]
    assert result.global_step == 1 and "rewards/task/mean" in row["trl"] and "rewards/bump/mean" in row["trl"]


@pytest.mark.slow
def test_cli_trains_with_the_real_embedding_judge(tiny_model, tmp_path, capsys):
    from bump_profiles.cli import main

    run = tmp_path / "run"
    argv = ["train", "--config", str(REPO / "configs" / "test-tiny.yaml"), "--set", f"policy.model={tiny_model}",
            "--set", f"output_dir={run}", "--set", "grpo.max_steps=1"]
    assert main(argv) == 0
    assert len(read_metrics(run)) == 1
    console = capsys.readouterr()
    # One compact line per step, no raw metric dict of the Trainer, TRL's metrics still in metrics.jsonl.
    assert re.search(r"step +1/1 +reward [0-9.]+ +NDCG A [0-9.]+ B [0-9.]+ +tokens \d+ +[0-9.]+ s", console.out)
    for text in (console.out, console.err):
        assert "{'loss'" not in text and "'reward':" not in text and "completions/mean_length" not in text
        assert "FutureWarning" not in text
    assert "completions/mean_length" in json.dumps(read_metrics(run)[0]["trl"]) or "completion_tokens" in read_metrics(run)[0]
    assert main(argv) == 2 and "already holds a run" in capsys.readouterr().err


def test_bf16_autocast_is_auto_on_a_bf16_cpu_with_float32_fallback(monkeypatch):
    from bump_profiles.engines import models
    from bump_profiles.train.trl_config import grpo_args, use_bf16

    config = load_config(REPO / "configs" / "test-tiny.yaml")
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    assert use_bf16(config, cuda=False)[0] is True
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    on, why = use_bf16(config, cuda=False)
    assert on is False and "fallback" in why
    assert use_bf16(load_config(REPO / "configs" / "test-tiny.yaml", ["grpo.bf16=false"]), cuda=True) == (False, "set by grpo.bf16")
    assert grpo_args(load_config(REPO / "configs" / "test-tiny.yaml", ["grpo.bf16=true"]), num_processes=1, cuda=False).bf16
