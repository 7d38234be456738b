"""The run directory: create or resume it (refusing to overwrite a run unasked), ``metrics.jsonl``
per logged step, and Ctrl-C as "checkpoint at the end of this step, then stop"."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bump_profiles.config import RESUMABLE_CHANGES, TrainConfig, config_diff, from_dict
from bump_profiles.data.atomic import append_jsonl, atomic_write_text
from bump_profiles.errors import ConfigError

if TYPE_CHECKING:
    from transformers import TrainerCallback


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
    # headroom (rewards/bump.py): what is left to learn from, beside the reward
    "at_max_share": "at_max_share",
    "group_spread": "group_spread",
    "ndcg_a_batch": "ndcg_a_batch",
    "bank_items": "bank_items",
    "queue_negatives": "queue_negatives",
    "queue_age": "queue_age",
}


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


def check_same_users(path: Path, users: dict[str, Any]) -> None:
    """A resumed run must train and evaluate the users it started with (same config, changed data: refused)."""
    if not path.is_file():
        return
    before = json.loads(path.read_text(encoding="utf-8"))
    for part in ("train", "eval"):
        if before.get(part) != users[part]:
            was, now = set(before.get(part) or []), set(users[part])
            raise ConfigError(
                f"--resume: the data gives other {part} users than {path} records ({len(now - was)} new, "
                f"{len(was - now)} gone, e.g. {sorted(now ^ was)[:3]}): the data changed since the run started")


def _checkpoint_step(path: str) -> int:
    return int(Path(path).name.rsplit("-", 1)[1])


def _trim_metrics(path: Path, step: int) -> None:
    """Drop metrics of steps after the checkpoint (they are about to be run again)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    for n, line in enumerate(lines, 1):
        try:
            rows.append((line, json.loads(line)))
        except json.JSONDecodeError as exc:
            if n == len(lines):  # a crash mid-append tears the last line only: it is dropped
                log.warning("%s: dropping a torn last line (%d characters)", path, len(line))
                continue
            raise ConfigError(f"{path}: line {n} is not JSON ({exc.msg}); only a last line can be torn by a crash") from exc
    kept = [line for line, row in rows if row.get("step", 0) <= step]
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
