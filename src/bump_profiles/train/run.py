"""One training run, end to end: config checks, data, run directory, policy, rewards, GRPOTrainer,
the final model."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bump_profiles.config import TrainConfig, to_yaml
from bump_profiles.data.atomic import append_jsonl, atomic_write_json, atomic_write_text
from bump_profiles.engines.console import replace_trainer_printing
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.update import training_prompt
from bump_profiles.train.data import build_dataset, prepare_data
from bump_profiles.train.notes import BaseNotes, notes_prompt
from bump_profiles.train.rundir import Interrupt, check_same_users, metrics_callback, prepare_run_dir
from bump_profiles.train.sequential import PolicyPrevious, policy_prompt
from bump_profiles.train.trl_config import grpo_args, lora_config, use_bf16

if TYPE_CHECKING:
    from bump_profiles.judges import Judge

log = logging.getLogger(__name__)


def build_rewards(config: TrainConfig, *, judge: Judge | None = None, count_tokens: Any = None, reader: Any = None,
                  train_splits: list | None = None) -> list:
    """The TRL reward functions of ``config.reward.kind`` (judge/reader injected, or loaded here).
    ``train_splits``: the training users, whose held-out items fill the population bank (never an
    evaluation user's: only the training splits are passed)."""
    funcs: list = []
    r = config.reward
    if r.kind in ("bump", "bump+task"):
        from bump_profiles.rewards.bump import BumpReward
        from bump_profiles.rewards.contrast import ProfileQueue, bank_from_splits

        if judge is None:
            from bump_profiles.judges import make_judge

            judge = make_judge(config.judge)
        bank = None
        c = r.contrast
        if c.bank_users > 0:
            if not train_splits:
                raise ConfigError("reward.contrast.bank_users: the bank needs the training users (train_splits)")
            bank = bank_from_splits(train_splits, users=c.bank_users, hard_share=c.hard_share, seed=config.seed)
            if hasattr(judge, "cache_size"):  # an embedding judge encodes the bank's items once
                judge.cache_size = max(judge.cache_size, 50_000)
        funcs.append(BumpReward(
            judge, calibration=config.judge.calibration, weights=tuple(r.direction_weights),
            length_target=r.length_target, length_penalty=r.length_penalty, length_floor=r.length_floor, count_tokens=count_tokens,
            repetition_penalty=r.repetition_penalty, min_users=r.users_per_call, **asdict(r.bump_options),
            bank=bank, queue=ProfileQueue(c.queue_size) if c.queue_size > 0 else None,
        ))
    if r.kind in ("task", "bump+task"):
        from bump_profiles.rewards.task import TaskReward

        if reader is None:
            from bump_profiles.engines.models import load_causal_lm, load_tokenizer

            name = r.reader or config.policy.model
            reader = (load_causal_lm(name, dtype=r.reader_dtype), load_tokenizer(name))
        funcs.append(TaskReward(*reader))
    return funcs


@dataclass
class TrainResult:
    """Where a run ended: its directory, the last step, and whether Ctrl-C stopped it early."""

    output_dir: str
    global_step: int
    interrupted: bool
    final_dir: str | None
    seconds: float


def run_prompt(config: TrainConfig, splits) -> Any:
    """The generator's training prompt, checked against the training users before any model loads or any
    run directory is written (also what ``train --check`` checks)."""
    if config.prompt.previous_from == "policy":  # sequential updates: the policy writes the previous profiles
        return policy_prompt(config, splits)
    if config.prompt.mode == "chunked":  # the base model notes each chunk when a user is first drawn
        return notes_prompt(config, splits)
    return training_prompt(config.prompt, splits)  # update mode from a file: its previous profiles are checked


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    judge: Judge | None = None,
    reader: Any = None,
    callbacks: list | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run GRPO for ``config``. ``judge`` (a Judge) and ``reader`` ((model, tokenizer) for the task
    reward) may be injected, e.g. tiny ones in tests; otherwise they are built from the config.
    ``progress``: a tqdm bar over the steps (one compact line per logged step is printed either way)."""
    import torch
    from accelerate import PartialState

    start = time.perf_counter()
    cuda = torch.cuda.is_available()
    state = PartialState(cpu=not cuda)  # without a GPU, processes (if launched) join a gloo group
    # Everything that can fail without a model fails here, first.
    args = grpo_args(config, num_processes=state.num_processes, cuda=cuda)
    bf16, why = use_bf16(config, cuda=cuda)
    log.info("precision: %s (%s)", "bfloat16 autocast" if bf16 else "float32", why)
    data = prepare_data(config)
    prompt = run_prompt(config, data.train)
    checkpoint = None
    if state.is_main_process:
        checkpoint = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    state.wait_for_everyone()
    if resume and checkpoint is None:
        from transformers.trainer_utils import get_last_checkpoint

        checkpoint = get_last_checkpoint(config.output_dir)
    run = Path(config.output_dir)
    users = {"train": [s.user.id for s in data.train], "eval": [s.user.id for s in data.eval], "skipped": data.skipped}
    if resume:
        check_same_users(run / "users.json", users)
    if state.is_main_process:
        atomic_write_text(run / "config.yaml", to_yaml(config))
        atomic_write_json(run / "users.json", users)

    from trl import GRPOTrainer

    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(config.policy.model)
    model = load_causal_lm(config.policy.model, dtype=config.policy.dtype)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    if isinstance(prompt, PolicyPrevious):
        prompt.count_tokens = count_tokens
    dataset = build_dataset(data.train, prompt, count_tokens, with_task=config.reward.kind != "bump")
    rewards = build_rewards(config, judge=judge, count_tokens=count_tokens, reader=reader, train_splits=data.train)
    interrupt = Interrupt()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=rewards,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=[metrics_callback(run / "metrics.jsonl"), interrupt.callback(), *(callbacks or [])],
    )
    if isinstance(prompt, PolicyPrevious):
        prompt.bind(lambda: trainer.accelerator.unwrap_model(trainer.model), tokenizer, lambda: trainer.state.global_step)
    if isinstance(prompt, BaseNotes):
        prompt.bind(lambda: trainer.accelerator.unwrap_model(trainer.model), tokenizer, run / "notes.jsonl")
    replace_trainer_printing(trainer, config.grpo.max_steps, bar=progress)
    log.info("training %d users (B=%d users x G=%d rollouts per step) for %d steps into %s",
             len(data.train), config.reward.users_per_call, config.grpo.num_generations, config.grpo.max_steps, run)
    with interrupt:
        if checkpoint is not None and _steps_done(checkpoint) >= config.grpo.max_steps:
            _restore(trainer, checkpoint)  # resumed at max_steps, HF would train one step more
        else:
            trainer.train(resume_from_checkpoint=checkpoint)
    final_dir = None
    if not interrupt.requested:
        final = run / "final"
        trainer.save_model(str(final))
        if state.is_main_process:
            tokenizer.save_pretrained(final)
            atomic_write_text(final / "config.yaml", to_yaml(config))
        final_dir = str(final)
    result = TrainResult(str(run), trainer.state.global_step, interrupt.requested, final_dir,
                         round(time.perf_counter() - start, 1))
    if state.is_main_process:
        append_jsonl(run / "runs.jsonl", result.__dict__)
    return result


def _steps_done(checkpoint: str) -> int:
    """The optimizer steps a checkpoint holds (its trainer_state.json)."""
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text()).get("global_step", 0))


def _restore(trainer: Any, checkpoint: str) -> None:
    """The checkpoint's weights and state without training: what ``final/`` is saved from."""
    from transformers import TrainerState

    trainer._load_from_checkpoint(checkpoint)  # the adapter (or full weights), as train(resume_from_checkpoint) loads them
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    log.info("%s already holds %d steps (grpo.max_steps): no further training", checkpoint, trainer.state.global_step)
