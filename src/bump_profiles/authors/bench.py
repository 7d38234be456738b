"""One benchmark run's shared state: its config, directory, split and stage timings (``Bench``), the
profile sets it compares, and the machine it ran on. The stages (:mod:`~bump_profiles.authors.pipeline`,
:mod:`~bump_profiles.authors.evaluate`, :mod:`~bump_profiles.authors.report`) all take a ``Bench``."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bump_profiles.authors.config import AuthorsBenchConfig
from bump_profiles.authors.data import AuthorSplit, load_authors, split_authors
from bump_profiles.data.atomic import atomic_write_json

log = logging.getLogger(__name__)

GENERATORS = {"zero-shot": None, "BUMP": "bump", "task-reward": "task"}  # profile set -> training run
REFERENCES = ("history@budget", "keywords", "full history", "history@central", "keywords@budget")
TRAIN_PART = (*GENERATORS, "history@budget", "keywords")  # the sets a downstream method reads


@dataclass
class Bench:
    """One benchmark run: its config, directory, split and the stage timings."""

    config: AuthorsBenchConfig
    split: AuthorSplit
    out: Path

    @classmethod
    def open(cls, config: AuthorsBenchConfig) -> Bench:
        """Load and split the authors (a second of work, redone every time: the split is a function of the config)."""
        c = config.data
        split = split_authors(load_authors(c.path), eval_authors=c.eval_authors, k=c.k, seed=c.seed,
                              cap=c.history_cap, max_authors=c.max_authors, horizon=c.horizon,
                              min_history=c.min_history, folds=c.folds, fold=c.fold, train_k=c.reward_items)
        return cls(config, split, Path(config.out))

    def evaluates(self, method: str) -> bool:
        """Whether a profile set or downstream method is evaluated (``eval.only``; ``none``/``retrieval`` only when all are)."""
        only = self.config.eval.only
        return only is None or method.removesuffix("+retrieval") in only

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def profile_file(self, name: str, part: str = "eval") -> Path:
        """``part``: the evaluation authors' profiles, or the training authors' (``train``: only the probe reads them)."""
        parts = ("profiles",) if part == "eval" else ("profiles", part)
        return self.path(*parts, name.replace(" ", "-").replace("@", "-at-") + ".jsonl")

    def splits(self, part: str = "eval"):
        return self.split.eval if part == "eval" else self.split.train

    def fits_probe_on_training(self) -> bool:
        """Whether the training authors need profiles too: the probe reader is fitted on their questions."""
        return "probe" in self.config.eval.readers and self.config.eval.probe_fit == "training"

    def parts(self) -> tuple[str, ...]:
        return ("eval", "train") if self.fits_probe_on_training() else ("eval",)

    def skip(self, name: str, done: bool) -> bool:
        """Whether a stage's output exists (logged): a skipped stage keeps its earlier time."""
        if done:
            log.info("stage %s: output exists, skipped", name)
        return done

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Record a stage's wall time in ``timings.json`` when it finishes."""
        path = self.path("timings.json")
        t0 = time.perf_counter()
        log.info("stage %s: running", name)
        yield
        timings = json.loads(path.read_text()) if path.exists() else {}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # the machine is shared: say how busy
        timings[name] = {"seconds": round(time.perf_counter() - t0, 1), "load_1min_at_end": load}
        atomic_write_json(path, timings)

    def train_config(self, run: str):
        return self.config.train_config(run, self.path("train_LaMP_2_news_questions.json"), self.path("train_outputs.json"))

    def count_tokens(self) -> Callable[[str], int]:
        from bump_profiles.engines.models import load_tokenizer

        tok = load_tokenizer(self.train_config("bump").policy.model)
        return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def machine() -> dict[str, Any]:
    """What the numbers were measured on (the load of a shared machine included)."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None, "platform": platform.platform()}


def profile_sets(b: Bench, part: str = "eval") -> dict[str, dict[str, str]]:
    """Every evaluated profile set of the evaluation (or training) authors; the training part has no full history."""
    from bump_profiles.data.profiles import load_profiles

    names = [n for n in (*GENERATORS, *REFERENCES) if b.evaluates(n) and (part == "eval" or n in TRAIN_PART)]
    return {name: load_profiles(b.profile_file(name, part)) for name in names}
