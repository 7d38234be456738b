"""The optional second stage: a LoRA-SFT reader that learns to use cached profiles.

The training prompts are exactly the evaluation prompts (:func:`bump_profiles.lamp.runner.build_prompts`
with the same method, so a profile section when profiles are given), the targets are the golds.
TRL's ``SFTTrainer`` trains LoRA adapters (PEFT) with the loss on the answer only (prompt-completion
data); the adapters are then merged and saved with the tokenizer, so the folder loads as a plain
model: ``bump-profiles eval run --reader FOLDER``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bump_profiles.data.atomic import atomic_write_json
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.lamp.runner import ReaderPrompt

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class ReaderSFTConfig:
    """LoRA-SFT of a reader. ``max_steps`` > 0 overrides ``epochs``."""

    output_dir: str
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 4
    max_length: int = 1024
    logging_steps: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if self.lora_r < 1 or self.batch_size < 1 or self.max_length < 8:
            raise ConfigError("need lora_r >= 1, batch_size >= 1 and max_length >= 8")
        if self.learning_rate <= 0 or (self.max_steps <= 0 and self.epochs <= 0):
            raise ConfigError("need a positive learning rate and a positive number of epochs or steps")


def sft_dataset(prompts: Sequence[ReaderPrompt], golds: Mapping[str, str]) -> Dataset:
    """Conversational prompt-completion rows: the reader prompt as the user turn, the gold as the answer."""
    from datasets import Dataset

    missing = [p.id for p in prompts if p.id not in golds]
    if missing:
        raise DataError(f"{len(missing)} training question(s) have no gold, e.g. {', '.join(missing[:3])}", field="golds")
    if not prompts:
        raise DataError("no training questions")
    return Dataset.from_list([
        {"prompt": [{"role": "user", "content": p.prompt}], "completion": [{"role": "assistant", "content": golds[p.id]}]}
        for p in prompts
    ])


def train_reader(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset, config: ReaderSFTConfig) -> Path:
    """Train LoRA adapters on ``dataset``, merge them and save the reader (and its training log)."""
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    cpu = not torch.cuda.is_available()
    args = SFTConfig(
        output_dir=config.output_dir,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        logging_steps=config.logging_steps,
        seed=config.seed,
        save_strategy="no",
        report_to="none",
        use_cpu=cpu,
        bf16=False if cpu else None,
    )
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    trainer.train()
    out = Path(config.output_dir)
    trainer.model.merge_and_unload().save_pretrained(out)
    tokenizer.save_pretrained(out)
    atomic_write_json(out / "sft_log.json", trainer.state.log_history)
    return out
