"""The CUDA paths, on a tiny random model (no weights): GRPO training with bf16 auto on the GPU and
resume, and the likelihood judge in bfloat16 on the GPU against float32 on the CPU. Skipped without
CUDA (CI has none); run where a GPU is: ``pytest tests/test_gpu.py tests/test_train.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import BigramJudge, read_metrics, tiny_config
from transformers import TrainerCallback

from bump_profiles.judges import JudgeConfig, make_judge
from bump_profiles.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


class Where(TrainerCallback):
    """Records where the policy's weights live and whether the Trainer runs in bf16."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.device, self.bf16 = next(model.parameters()).device.type, bool(args.bf16)


def test_training_runs_on_cuda_in_bf16_and_resumes(tiny_model: Path, tmp_path: Path):
    where = Where()
    result = train(tiny_config(tiny_model, tmp_path / "run"), judge=BigramJudge(), callbacks=[where])
    assert result.global_step == 2 and (where.device, where.bf16) == ("cuda", True)
    assert all(0 <= r["reward"] <= 1 for r in read_metrics(tmp_path / "run"))
    result = train(tiny_config(tiny_model, tmp_path / "run", "grpo.max_steps=3"), judge=BigramJudge(), resume=True)
    assert result.global_step == 3 and [r["step"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3]


def test_likelihood_judge_in_bf16_on_cuda_agrees_with_float32_on_cpu(tiny_model: Path):
    profiles = ["likes telescopes and comets", "bakes sourdough bread", "plays chess endgames"]
    items = ["a comet seen through a telescope", "croissant dough with butter", "rook and pawn endgame"]
    scores = {device: make_judge(JudgeConfig(kind="likelihood", model=str(tiny_model), dtype=dtype, device=device))
              .score(profiles, items, "A") for device, dtype in (("cpu", "float32"), ("cuda", "bfloat16"))}
    cpu, gpu = np.asarray(scores["cpu"]), np.asarray(scores["cuda"])
    assert np.isfinite(gpu).all()
    assert np.abs(gpu - cpu).max() <= 0.1 * np.abs(cpu).max() + 1e-3
