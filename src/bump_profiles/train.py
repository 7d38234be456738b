"""GRPO training of the profile generator with the BUMP reward (TRL 1.16 ``GRPOTrainer``).

What one optimizer step does:

1. **Users.** TRL's ``RepeatSampler`` draws B distinct training users (``reward.users_per_call``)
   and repeats each user's prompt G times (``grpo.num_generations``), in contiguous groups. A prompt
   holds only the user's history; the k held-out interactions ride along as a dataset column.
2. **One generation batch per step.** ``generation_batch_size = B * G`` and
   ``steps_per_generation = gradient_accumulation_steps = B * G / (micro_batch_size * processes)``:
   the step's B*G rollouts are generated once, rewarded in one call, then consumed in micro-batches
   for one optimizer update (on-policy, one iteration, no importance-ratio clipping in effect).
3. **Reward.** :class:`bump_profiles.rewards.bump.BumpReward` gathers the batch across processes, scores
   every profile against the held-out items of all B users (and back), and returns the bidirectional
   in-batch NDCG of each rollout; it refuses a call with fewer than B distinct users. ``reward: task``
   (:mod:`bump_profiles.rewards.task`) is the labeled comparator; ``bump+task`` passes both to TRL
   with ``reward_weights`` (TRL sums them, weighted, before the group normalisation).
4. **Update.** Group-relative advantages (TRL's ``scale_rewards``, default per group), TRL's
   ``loss_type`` (default ``dapo``), KL to the reference only when ``beta > 0``; LoRA by default.

Around it: a run directory that is never overwritten without ``overwrite``; ``config.yaml`` (the
exact config); checkpoints every ``save_steps`` and ``resume``; ``metrics.jsonl`` (one line per
logged step: reward, ndcg_a, ndcg_b, profile length, KL, step time, distinct users); Ctrl-C saves a
checkpoint at the end of the running step and stops (a second Ctrl-C stops at once); the final
model or adapter with its tokenizer in ``final/``.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bump_profiles.config import RESUMABLE_CHANGES, DataConfig, TrainConfig, config_diff, from_dict, to_yaml
from bump_profiles.data import User, UserSplit, load_lamp_questions, load_users, split_users
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.io import append_jsonl, atomic_write_json, atomic_write_text
from bump_profiles.prompts import ProfilePrompt
from bump_profiles.update import UpdateTrainingPrompt, training_prompt

if TYPE_CHECKING:
    from transformers import TrainerCallback

    from bump_profiles.judges import Judge

log = logging.getLogger(__name__)

# Keys of TRL's logs copied to metrics.jsonl under shorter names (the rest is kept as logged).
METRIC_NAMES = {
    "reward": "reward",
    "reward_std": "reward_std",
    "ndcg_a": "ndcg_a",
    "ndcg_b": "ndcg_b",
    "profile_tokens": "profile_tokens",
    "completions/mean_length": "completion_tokens",
    "completions/clipped_ratio": "clipped_ratio",
    "kl": "kl",
    "distinct_users": "distinct_users",
    "copy_rate_4": "copy_rate_4",
    "loss": "loss",
}


# --- data -------------------------------------------------------------------------------------------


@dataclass
class RunData:
    """Users split for a run: training users' splits, evaluation users' splits, and who was skipped."""

    train: list[UserSplit]
    eval: list[UserSplit]
    skipped: list[str]


def load_data_users(data: DataConfig) -> list[User]:
    """The users a config names: synthetic (with a task question each) or read from a file."""
    if data.synthetic is not None:
        from bump_profiles.data.synthetic import make_task, make_users

        users = make_users(data.synthetic.users, seed=data.synthetic.seed)
        for user, row in zip(users, make_task(users, seed=data.synthetic.seed), strict=True):
            user.extra["questions"] = [row]
        return users
    if data.outputs is not None:
        return load_lamp_questions(data.path, outputs=data.outputs).users
    return load_users(data.path, data.format)


def eval_user_ids(users: list[User], eval_users: float, seed: int) -> set[str]:
    """Users kept out of training: a seeded random ``eval_users`` share (< 1) or count of them."""
    n = int(eval_users) if eval_users >= 1 else round(eval_users * len(users))
    ids = sorted(u.id for u in users)
    random.Random(seed).shuffle(ids)
    return set(ids[: min(n, len(ids))])


def prepare_data(config: TrainConfig) -> RunData:
    """Load, split into train/eval users, and hold out k interactions per user. No model needed."""
    users = load_data_users(config.data)
    held = eval_user_ids(users, config.data.eval_users, config.seed)
    train_users = [u for u in users if u.id not in held]
    if config.data.max_users is not None:
        train_users = train_users[: config.data.max_users]
    split = config.data.split
    train = split_users(train_users, config.data.k, strategy=split, seed=config.seed)
    evals = split_users([u for u in users if u.id in held], config.data.k, strategy=split, seed=config.seed)
    b = config.reward.users_per_call
    if len(train.users) < b:
        raise DataError(
            f"{len(train.users)} training users have more than k={config.data.k} interactions "
            f"({len(train.skipped)} skipped, {len(held)} kept for evaluation): fewer than B={b} users per reward call",
            path=config.data.path or "synthetic users",
        )
    if config.reward.kind != "bump":
        missing = [s.user.id for s in train.users if not _task_rows(s.user)]
        if missing:
            raise DataError(f"{len(missing)} training users have no question with a gold output (e.g. {missing[0]})",
                            path=config.data.path or "synthetic users", field="output")
    return RunData(train.users, evals.users, train.skipped + evals.skipped)


def _task_rows(user: User) -> list[dict]:
    return [q for q in user.extra.get("questions", []) if q.get("output") is not None]


def build_dataset(splits: list[UserSplit], prompt: ProfilePrompt | UpdateTrainingPrompt, count_tokens: Any = None, *,
                  with_task: bool = False):
    """One row per user: ``prompt`` (chat messages from the history), ``user_id``, ``heldout`` and
    ``history`` (rendered texts) and, ``with_task``, the user's ``task_inputs`` and ``task_outputs``."""
    from datasets import Dataset

    rows = []
    for s in splits:
        row = {
            "prompt": prompt.split_messages(s, count_tokens=count_tokens),
            "user_id": s.user.id,
            "heldout": [it.text for it in s.heldout],
            "history": [it.text for it in s.history],
        }
        if with_task:
            questions = _task_rows(s.user)
            row["task_inputs"] = [q["input"] for q in questions]
            row["task_outputs"] = [q["output"] for q in questions]
        rows.append(row)
    return Dataset.from_list(rows)


# --- TRL arguments ----------------------------------------------------------------------------------


def generation_layout(users_per_call: int, num_generations: int, micro_batch_size: int, num_processes: int) -> int:
    """``steps_per_generation`` such that one generation batch (one reward call) holds B users x G rollouts.

    The B*G rollouts are split evenly over processes and micro-batches, so B*G must be a multiple of
    ``micro_batch_size * num_processes``.
    """
    total = users_per_call * num_generations
    per_pass = micro_batch_size * num_processes
    if total % per_pass:
        raise ConfigError(
            f"B*G = {users_per_call}*{num_generations} = {total} rollouts per step must be a multiple of "
            f"grpo.micro_batch_size * processes = {micro_batch_size}*{num_processes}: change one of them"
        )
    return total // per_pass


def grpo_args(config: TrainConfig, *, num_processes: int, cuda: bool):
    """TRL ``GRPOConfig`` for a run; CPU runs get ``use_cpu=True`` and bf16 off unless asked for."""
    from trl import GRPOConfig

    g = config.grpo
    steps = generation_layout(config.reward.users_per_call, g.num_generations, g.micro_batch_size, num_processes)
    weights = None
    if config.reward.kind == "bump+task":
        weights = list(config.reward.weights)
    kwargs: dict[str, Any] = dict(
        output_dir=config.output_dir,
        seed=config.seed,
        data_seed=config.seed,
        num_generations=g.num_generations,
        max_completion_length=g.max_completion_length,
        temperature=g.temperature,
        learning_rate=g.learning_rate,
        lr_scheduler_type=g.lr_scheduler_type,
        max_steps=g.max_steps,
        per_device_train_batch_size=g.micro_batch_size,
        gradient_accumulation_steps=steps,
        steps_per_generation=steps,
        num_iterations=1,
        beta=g.beta,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        reward_weights=weights,
        activation_checkpointing=g.gradient_checkpointing,
        bf16=cuda if g.bf16 is None else g.bf16,
        use_cpu=not cuda,
        save_strategy="steps",
        save_steps=g.save_steps,
        save_total_limit=g.save_total_limit,
        logging_steps=g.logging_steps,
        report_to=g.report_to,
        use_vllm=g.use_vllm,
        vllm_mode=g.vllm_mode,
        vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        vllm_server_base_url=g.vllm_server_base_url,
        dataloader_num_workers=0,
    )
    kwargs.update(g.extra)
    try:
        return GRPOConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"grpo: TRL rejected the settings: {exc}") from exc


def lora_config(config: TrainConfig):
    """PEFT LoraConfig for the policy, or None for full fine-tuning."""
    if not config.policy.lora:
        return None
    from peft import LoraConfig

    p = config.policy
    return LoraConfig(r=p.lora_r, lora_alpha=p.lora_alpha, lora_dropout=p.lora_dropout,
                      target_modules=p.lora_target_modules, task_type="CAUSAL_LM")


def build_rewards(config: TrainConfig, *, judge: Judge | None = None, count_tokens: Any = None, reader: Any = None) -> list:
    """The TRL reward functions of ``config.reward.kind`` (judge/reader injected, or loaded here)."""
    funcs: list = []
    r = config.reward
    if r.kind in ("bump", "bump+task"):
        from bump_profiles.rewards.bump import BumpReward

        if judge is None:
            from bump_profiles.judges import make_judge

            judge = make_judge(config.judge)
        funcs.append(BumpReward(
            judge, calibration=config.judge.calibration, weights=tuple(r.direction_weights),
            length_target=r.length_target, length_penalty=r.length_penalty, count_tokens=count_tokens,
            repetition_penalty=r.repetition_penalty, min_users=r.users_per_call, **asdict(r.bump_options),
        ))
    if r.kind in ("task", "bump+task"):
        from bump_profiles.rewards.task import TaskReward

        if reader is None:
            from bump_profiles.models import load_causal_lm, load_tokenizer

            name = r.reader or config.policy.model
            reader = (load_causal_lm(name, dtype=r.reader_dtype), load_tokenizer(name))
        funcs.append(TaskReward(*reader))
    return funcs


# --- run directory, callbacks -----------------------------------------------------------------------


def prepare_run_dir(config: TrainConfig, *, resume: bool, overwrite: bool) -> str | None:
    """Create or check the run directory; the checkpoint to resume from (None for a fresh run).

    A fresh run refuses a directory that already holds a run unless ``overwrite`` (which deletes it,
    and only a directory that looks like a run: config.yaml or checkpoints inside). ``resume`` needs
    a checkpoint and the same config, except keys in ``RESUMABLE_CHANGES`` (e.g. more steps).
    """
    from transformers.trainer_utils import get_last_checkpoint

    run = Path(config.output_dir)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    exists = run.is_dir() and any(run.iterdir())
    if resume:
        checkpoint = get_last_checkpoint(str(run)) if run.is_dir() else None
        if checkpoint is None:
            raise ConfigError(f"--resume: no checkpoint-* folder in {run}")
        saved = run / "config.yaml"
        if saved.is_file():
            import yaml

            changed = set(config_diff(from_dict(TrainConfig, yaml.safe_load(saved.read_text())), config)) - RESUMABLE_CHANGES
            if changed:
                raise ConfigError(f"--resume: the config differs from {saved} in {', '.join(sorted(changed))}")
        _trim_metrics(run / "metrics.jsonl", _checkpoint_step(checkpoint))
        return checkpoint
    if exists:
        looks_like_run = (run / "config.yaml").exists() or any(run.glob("checkpoint-*"))
        if not overwrite:
            raise ConfigError(f"{run} already holds a run: pass --resume to continue it or --overwrite to replace it")
        if not looks_like_run:
            raise ConfigError(f"{run} is not empty and is not a run directory: refusing to delete it")
        shutil.rmtree(run)
    run.mkdir(parents=True, exist_ok=True)
    return None


def _checkpoint_step(path: str) -> int:
    return int(Path(path).name.rsplit("-", 1)[1])


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metrics of steps after the checkpoint (they are about to be run again)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def metrics_callback(path: Path) -> TrainerCallback:
    """Writes one metrics.jsonl line per logging step: TRL's logs plus the wall time per step."""
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def __init__(self) -> None:
            self.step_start = time.perf_counter()
            self.step_times: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.step_start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.step_times.append(time.perf_counter() - self.step_start)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "reward" not in logs:
                return
            row: dict[str, Any] = {"step": state.global_step}
            row.update({short: logs.get(key) for key, short in METRIC_NAMES.items()})
            times = self.step_times or [0.0]
            row["step_time"] = round(sum(times) / len(times), 3)
            self.step_times = []
            row["trl"] = {k: v for k, v in logs.items() if k not in METRIC_NAMES}
            append_jsonl(path, row)

    return MetricsCallback()


class Interrupt:
    """Turns the first Ctrl-C into "checkpoint at the end of this step, then stop"; a second one
    raises KeyboardInterrupt at once. Installed only for the duration of ``train``."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: saving a checkpoint at the end of this step, then stopping (Ctrl-C again to abort)")

    def callback(self) -> TrainerCallback:
        from transformers import TrainerCallback

        interrupt = self

        class InterruptCallback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if interrupt.requested:
                    control.should_save = True
                    control.should_training_stop = True

        return InterruptCallback()


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """Where a run ended: its directory, the last step, and whether Ctrl-C stopped it early."""

    output_dir: str
    global_step: int
    interrupted: bool
    final_dir: str | None
    seconds: float


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    judge: Judge | None = None,
    reader: Any = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Run GRPO for ``config``. ``judge`` (a Judge) and ``reader`` ((model, tokenizer) for the task
    reward) may be injected, e.g. tiny ones in tests; otherwise they are built from the config."""
    import torch
    from accelerate import PartialState

    start = time.perf_counter()
    cuda = torch.cuda.is_available()
    state = PartialState(cpu=not cuda)  # without a GPU, processes (if launched) join a gloo group
    # Everything that can fail without a model fails here, first.
    args = grpo_args(config, num_processes=state.num_processes, cuda=cuda)
    data = prepare_data(config)
    checkpoint = None
    if state.is_main_process:
        checkpoint = prepare_run_dir(config, resume=resume, overwrite=overwrite)
    state.wait_for_everyone()
    if resume and checkpoint is None:
        from transformers.trainer_utils import get_last_checkpoint

        checkpoint = get_last_checkpoint(config.output_dir)
    run = Path(config.output_dir)
    if state.is_main_process:
        atomic_write_text(run / "config.yaml", to_yaml(config))
        atomic_write_json(run / "users.json", {
            "train": [s.user.id for s in data.train], "eval": [s.user.id for s in data.eval], "skipped": data.skipped,
        })

    from trl import GRPOTrainer

    from bump_profiles.models import load_causal_lm, load_tokenizer

    prompt = training_prompt(config.prompt, data.train)  # update mode: previous profiles checked before loading
    tokenizer = load_tokenizer(config.policy.model)
    model = load_causal_lm(config.policy.model, dtype=config.policy.dtype)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    dataset = build_dataset(data.train, prompt, count_tokens, with_task=config.reward.kind != "bump")
    rewards = build_rewards(config, judge=judge, count_tokens=count_tokens, reader=reader)
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
    log.info("training %d users (B=%d users x G=%d rollouts per step) for %d steps into %s",
             len(data.train), config.reward.users_per_call, config.grpo.num_generations, config.grpo.max_steps, run)
    with interrupt:
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
