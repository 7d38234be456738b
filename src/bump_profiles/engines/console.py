"""What a person sees on the terminal: one progress bar per stage, one short line per training step.

Libraries print a lot that is not for the person running a command: transformers' FutureWarnings
and weight-loading bars, ``DEBUG bm25s`` lines, and the Trainer's raw metric dict after every step.
:func:`quiet_libraries` silences them unless ``-v``; :func:`step_line_callback` replaces the
Trainer's own progress bar and dict printer. Every metric still reaches ``metrics.jsonl``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

# Loggers of libraries whose INFO/DEBUG lines are noise on the console.
NOISY_LOGGERS = ("bm25s", "sentence_transformers", "datasets", "accelerate", "peft", "httpx", "urllib3", "filelock")


def quiet_libraries(verbose: bool = False) -> None:
    """Silence library warnings, debug logs and weight-loading bars unless ``verbose``."""
    if verbose:
        return
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*(deprecated|will be removed).*")
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if _below_warning not in logger.filters:  # a filter survives the setLevel(DEBUG) bm25s does on import
            logger.addFilter(_below_warning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _below_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def progress(iterable: Any = None, *, total: int | None = None, desc: str = "", enabled: bool = True) -> Any:
    """A tqdm bar for one stage (on stderr; a no-op wrapper when ``enabled`` is False)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False,
                dynamic_ncols=True)


def step_line(logs: dict[str, Any], step: int, max_steps: int, seconds: float) -> str:
    """One compact line for a training step: step, reward, NDCG A/B, profile tokens, seconds."""
    def num(key: str, fmt: str = ".3f") -> str:
        value = logs.get(key)
        return format(value, fmt) if isinstance(value, (int, float)) else "-"

    tokens = logs.get("profile_tokens", logs.get("completions/mean_length"))
    tokens_text = f"{tokens:.0f}" if isinstance(tokens, (int, float)) else "-"
    return (f"step {step:>3}/{max_steps}  reward {num('reward')}  NDCG A {num('ndcg_a')} B {num('ndcg_b')}  "
            f"tokens {tokens_text}  {seconds:.1f} s")


def step_line_callback(max_steps: int, *, bar: bool = True) -> Any:
    """A TrainerCallback: a tqdm bar over the optimizer steps and one :func:`step_line` per logged step."""
    import time

    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class StepLines(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None
            self.start = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.bar = tqdm(total=max_steps, initial=state.global_step, desc="training", unit="step",
                                disable=not bar, file=sys.stderr, leave=False, dynamic_ncols=True)

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.start
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "reward" not in logs:
                return
            line = step_line(logs, state.global_step, max_steps, getattr(self, "seconds", 0.0))
            if self.bar is not None:
                self.bar.write(line, file=sys.stdout)
            else:
                print(line, flush=True)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return StepLines()


def replace_trainer_printing(trainer: Any, max_steps: int, *, bar: bool = True) -> None:
    """Swap the Trainer's progress bar and raw-dict printer for :func:`step_line_callback`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(step_line_callback(max_steps, bar=bar))
