"""The benchmark's config: a dataclass tree from YAML (``configs/authors-cpu.yaml``) plus ``--set`` overrides.

``train`` is a training config mapping (``bump_profiles.config.TrainConfig`` without ``data`` and
``output_dir``, which the benchmark fills in); ``task_reward`` holds the keys that differ for the
labelled comparator run. Both are validated when the benchmark config loads, before any model does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bump_profiles.config import TrainConfig, from_dict
from bump_profiles.errors import ConfigError

EVAL_JUDGES = ("training", "likelihood", "lexical")
READERS = ("llm", "probe")
PROBE_FITS = ("training", "cross")


@dataclass
class AuthorsData:
    """Where the authors come from and how they are split."""

    path: str = field(default="../shared/data/huffpost-authors/interactions.jsonl", metadata={"help": "the authors' JSONL"})
    seed: int = field(default=0, metadata={"help": "seed of the author split"})
    eval_authors: int = field(default=32, metadata={"help": "authors kept out of training and evaluated (ignored with folds)"})
    k: int = field(default=2, metadata={
        "help": "most recent articles held out per training author (the reward's items); for an evaluation author, "
                "the near horizon: the earliest k of its held-out articles"})
    horizon: int | None = field(default=None, metadata={
        "help": "articles held out per evaluation author (None: k); the earliest k are the near horizon, the rest the "
                "far one. An author with few articles keeps min_history and holds out fewer far ones"})
    reward_items: int | None = field(default=None, metadata={
        "help": "most recent articles held out per training author, the reward's items (None: k); more items spread "
                "the reward over interests that last (docs/alignment.md: m=16)"})
    min_history: int = field(default=1, metadata={"help": "articles an evaluation author keeps to read, at least"})
    folds: int | None = field(default=None, metadata={
        "help": "cross-fitted folds of the shuffled authors (None: eval_authors evaluated, the rest train); fold i is "
                "evaluated and the others train"})
    fold: int = field(default=0, metadata={"help": "the fold evaluated (with folds); fold 0 is the first eval_authors of the shuffle"})
    history_cap: int | None = field(default=100, metadata={"help": "keep each author's most recent N articles"})
    max_authors: int | None = field(default=None, metadata={"help": "use this many authors of the shuffled list (tests)"})

    def __post_init__(self) -> None:
        if self.k < 1 or self.eval_authors < 2:
            raise ConfigError("data: k must be >= 1 and eval_authors >= 2")
        if self.horizon is not None and self.horizon < self.k:
            raise ConfigError(f"data.horizon: at least k={self.k} (the near horizon), got {self.horizon}")
        if self.reward_items is not None and self.reward_items < 1:
            raise ConfigError(f"data.reward_items: at least 1 (or None for k), got {self.reward_items}")
        if self.min_history < 1:
            raise ConfigError(f"data.min_history: at least 1, got {self.min_history}")
        if self.folds is not None and not (2 <= self.folds and 0 <= self.fold < self.folds):
            raise ConfigError(f"data.folds/fold: need folds >= 2 and 0 <= fold < folds, got {self.folds}/{self.fold}")
        held = max(self.k, self.horizon or 0, self.reward_items or 0)
        if self.history_cap is not None and self.history_cap < held + 1:
            raise ConfigError(f"data.history_cap: must exceed the held-out articles ({held}), got {self.history_cap}")

    @property
    def held_out(self) -> int:
        """Articles held out per evaluation author (near and far)."""
        return self.horizon or self.k

    @property
    def train_k(self) -> int:
        """Articles held out per training author: the reward's items."""
        return self.reward_items or self.k


@dataclass
class EvalSection:
    """Profiles, judges and readers of the evaluation stages."""

    judges: list[str] = field(default_factory=lambda: list(EVAL_JUDGES), metadata={"help": "training | likelihood | lexical"})
    likelihood_model: str | None = field(default=None, metadata={"help": "likelihood judge model (default: SmolLM2)"})
    judge_dtype: str = field(default="float32", metadata={"help": "LLM judge dtype"})
    group_size: int | None = field(default=None, metadata={"help": "grouped ranking size; None = the training B"})
    all_at_once: list[str] | None = field(default=None, metadata={
        "help": "judges that also rank all evaluation authors at once (None: every judge); the likelihood judge scores "
                "every profile-item pair, 8x the pairs of groups of 4 with 32 authors"})
    bootstrap: int = field(default=1000, metadata={"help": "bootstrap resamples of authors"})
    keyword_words: int = field(default=20, metadata={"help": "words in a keyword profile"})
    full_history_tokens: int | None = field(default=None, metadata={"help": "cut the full-history reference (None: whole)"})
    readers: list[str] = field(default_factory=lambda: list(READERS), metadata={"help": "llm (SmolLM2) | probe (when available)"})
    reader_model: str = field(default="smollm2-135m", metadata={"help": "the LLM reader"})
    probe_fit: str = field(default="training", metadata={
        "help": "training: the probe reader is fitted on the training authors' held-out articles, each with its own "
                "author's context from the same method (their profiles are generated for it); cross: cross-fitted "
                "over the evaluation authors (64 questions for 29 categories: close to a constant answer)"})
    retrieval_k: int = field(default=2, metadata={"help": "BM25 items per question"})
    batch_size: int = field(default=8, metadata={"help": "generation batch size"})
    only: list[str] | None = field(default=None, metadata={
        "help": "evaluate only these profile sets and their downstream methods (None: all); a second training seed "
                "shown with --beside needs [BUMP]"})
    judge_sets: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "judge -> the profile sets it scores (a judge not listed scores every set), e.g. {likelihood: "
                "[history@budget, BUMP, task-reward]}: the likelihood judge costs hours a fold on a CPU"})
    budget_from: str = field(default="BUMP", metadata={
        "help": "the generated set whose per-author token counts history@budget is cut to (BUMP; zero-shot for a run "
                "without trained generators)"})

    def __post_init__(self) -> None:
        for name in self.judges:
            if name not in EVAL_JUDGES:
                raise ConfigError(f"eval.judges: '{name}' is not one of {', '.join(EVAL_JUDGES)}")
        for name in self.all_at_once or ():
            if name not in self.judges:
                raise ConfigError(f"eval.all_at_once: '{name}' is not one of eval.judges ({', '.join(self.judges)})")
        for name in self.judge_sets:
            if name not in self.judges:
                raise ConfigError(f"eval.judge_sets: '{name}' is not one of eval.judges ({', '.join(self.judges)})")
        for name in self.readers:
            if name not in READERS:
                raise ConfigError(f"eval.readers: '{name}' is not one of {', '.join(READERS)}")
        if self.budget_from not in ("zero-shot", "BUMP", "task-reward"):
            raise ConfigError(f"eval.budget_from: one of zero-shot, BUMP, task-reward, got '{self.budget_from}'")
        if self.only is not None and self.budget_from not in self.only:
            raise ConfigError(f"eval.only: history@budget is cut to eval.budget_from's profiles, so it must list "
                              f"{self.budget_from}, got {self.only}")
        if self.probe_fit not in PROBE_FITS:
            raise ConfigError(f"eval.probe_fit: '{self.probe_fit}' is not one of {', '.join(PROBE_FITS)}")
        if self.bootstrap < 100:
            raise ConfigError(f"eval.bootstrap: at least 100 resamples, got {self.bootstrap}")


@dataclass
class AuthorsBenchConfig:
    """One benchmark run: data split, two training runs (BUMP, task reward), evaluation."""

    out: str = field(default="runs/authors", metadata={"help": "run directory (every stage's output; resumable)"})
    data: AuthorsData = field(default_factory=AuthorsData, metadata={"help": "authors and split"})
    train: dict[str, Any] = field(default_factory=dict, metadata={"help": "TrainConfig keys (no data, output_dir)"})
    task_reward: dict[str, Any] = field(default_factory=lambda: {"reward": {"kind": "task"}},
                                        metadata={"help": "keys that differ for the task-reward run"})
    eval: EvalSection = field(default_factory=EvalSection, metadata={"help": "evaluation"})
    budget_minutes: float | None = field(default=45, metadata={"help": "wall-clock budget of each training run"})
    label: str | None = field(default=None, metadata={
        "help": "name of this run's trained rows when shown --beside another run, e.g. 'length floor' (None: 'seed N')"})

    def __post_init__(self) -> None:
        for key in ("data", "output_dir"):
            if key in self.train or key in self.task_reward:
                raise ConfigError(f"train.{key}: set by the benchmark, leave it out")
        for run in ("bump", "task"):  # both runs validated now, before any file or model exists
            self._train_dict(run, {"synthetic": {"users": 8}, "k": self.data.train_k, "eval_users": 0})

    def _train_dict(self, run: str, data: dict[str, Any]) -> TrainConfig:
        base = copy.deepcopy(self.train)
        if run == "task":
            _merge(base, copy.deepcopy(self.task_reward))
        base["output_dir"] = str(Path(self.out) / f"train-{run}")
        base["data"] = data
        return from_dict(TrainConfig, base)

    def train_config(self, run: str, questions: str | Path, outputs: str | Path) -> TrainConfig:
        """The TrainConfig of run ``bump`` or ``task`` on the training file written by the split stage."""
        data = {"path": str(questions), "format": "lamp", "k": self.data.train_k, "split": "recent", "eval_users": 0}
        if run == "task":
            data["outputs"] = str(outputs)
        return self._train_dict(run, data)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a mapping; ``extends: other.yaml`` (relative to the file) is read first and the
    file's keys merged over it, so a variant config holds only what it changes."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: extends itself (through {' -> '.join(map(str, seen))})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from exc
    base = data.pop("extends", None)
    if base is None:
        return data
    merged = _read_yaml(path.parent / base, (*seen, path.resolve()))
    _merge(merged, data)
    return merged


def load_bench_config(path: str | Path, overrides: list[str] | None = None) -> AuthorsBenchConfig:
    """The benchmark config from YAML (with its ``extends`` chain) plus ``key=value`` overrides
    (``train.grpo.max_steps=10``)."""
    import yaml

    data = _read_yaml(Path(path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        node = data
        *parents, last = key.strip().split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[last] = yaml.safe_load(raw) if raw else ""
    return from_dict(AuthorsBenchConfig, data)
