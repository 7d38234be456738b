"""Judges: one interface that fills a whole query x document score matrix at once.

A judge scores how relevant each document is to each query; higher is more relevant. The two
directions of the BUMP reward use it in turn:

- direction ``"A"``: queries are profiles, documents are interactions (which items fit this profile?);
- direction ``"B"``: queries are interactions, documents are profiles (which profile wrote this item?).

A ``symmetric`` judge defines one matrix for both: ``score(profiles, items, "A").T`` is also its
direction-B matrix, so the reward scores the batch once. Calibration is applied by the ranking code
(:mod:`bump_profiles.judges.ranking`, the one place of the ranking math, with the registry
``bump_profiles.judges.calibration.CALIBRATIONS``), not here: judges return raw scores.

Kinds (``JudgeConfig.kind``): ``embedding`` (cosine of sentence embeddings, the CPU default),
``likelihood`` (PMI under a causal LM), ``yesno`` (the paper's pointwise LLM judge) and ``lexical``
(TF-IDF cosine, an IDF fitted on a fixed corpus).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bump_profiles.errors import ConfigError
from bump_profiles.judges.calibration import CALIBRATIONS, DEFAULT_CALIBRATION, check_calibration

if TYPE_CHECKING:  # numpy only types the protocol: the CLI reads JUDGES without loading it
    import numpy as np

DIRECTIONS = ("A", "B")


@runtime_checkable
class Judge(Protocol):
    """Fills a ``[len(queries), len(documents)]`` float64 matrix of relevance scores."""

    symmetric: bool

    def score(self, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray: ...


@dataclass(frozen=True)
class JudgeSpec:
    """Where a judge kind lives and which model it loads when none is named."""

    module: str  # a module under bump_profiles.judges with ``from_config(config, model=, tokenizer=)``
    default_model: str
    help: str


JUDGES: dict[str, JudgeSpec] = {
    "embedding": JudgeSpec("embedding", "minilm", "cosine of sentence-transformers embeddings; symmetric, cheapest"),
    "likelihood": JudgeSpec("likelihood", "smollm2-135m", "PMI: mean log p(item | profile) - mean log p(item); symmetric"),
    "yesno": JudgeSpec("yesno", "smollm2-135m", "logit(yes) - logit(no) of a causal LM asked per pair and direction"),
    "copymask": JudgeSpec("copymask", "minilm", "embedding judge blind to spans of 4+ words copied from the histories; evaluation"),
    "lexical": JudgeSpec("lexical", "", "TF-IDF cosine, IDF fitted on a fixed corpus file (judge.model); symmetric, no neural model"),
    "ensemble": JudgeSpec("ensemble", "", "mean of the member judges' per-row ranks (judge.members); not symmetric"),
}
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class JudgeConfig:
    """Which judge scores the batch, with which model and how it batches."""

    kind: str = field(default="embedding", metadata={"help": "embedding | likelihood | yesno | lexical | copymask (evaluation only)"})
    model: str | None = field(default=None, metadata={"help": "hub id, local path or bundled short name; None = the kind's default"})
    dtype: str = field(default="auto", metadata={"help": "LLM judges: auto | float32 | bfloat16 (about 2.3x faster on a "
                                                  "recent CPU); auto = bfloat16 where the CPU/GPU has it natively"})
    batch_tokens: int = field(default=4096, metadata={"help": "LLM judges: tokens per forward (a padded batch, or documents packed after a shared prefix)"})
    calibration: str = field(default=DEFAULT_CALIBRATION, metadata={
        "help": "none (raw scores) | empty (minus each item's score with the empty profile in A, each profile's with the "
                "empty item in B); applied before ranking. center-transductive (batch double-centring) leaks: evaluation only"})
    device: str = field(default="cpu", metadata={"help": "cpu | cuda"})
    members: list[JudgeConfig] = field(default_factory=list, metadata={
        "help": "ensemble: the member judges (each a judge mapping: kind, model, ...), fused by mean per-row rank"})

    def __post_init__(self) -> None:
        if self.kind not in JUDGES:
            raise ConfigError(f"unknown judge kind '{self.kind}': known kinds are {', '.join(JUDGES)}")
        if (self.kind == "ensemble") != bool(self.members):
            raise ConfigError("judge.members: an ensemble judge needs at least 2 members, and only an ensemble takes members")
        if self.kind == "ensemble" and (len(self.members) < 2 or any(m.kind == "ensemble" for m in self.members)):
            raise ConfigError("judge.members: at least 2 members, none of them an ensemble")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown judge dtype '{self.dtype}': use one of {', '.join(DTYPES)}")
        check_calibration(self.calibration)
        if self.batch_tokens < 1:
            raise ConfigError(f"judge batch_tokens must be positive, got {self.batch_tokens}")

    @property
    def model_name(self) -> str:
        """The model to load: the configured one or the kind's default."""
        return self.model or JUDGES[self.kind].default_model


def make_judge(config: JudgeConfig, *, model: Any = None, tokenizer: Any = None) -> Judge:
    """Build the configured judge; ``model``/``tokenizer`` inject ready objects (tests, sharing a model)."""
    if config.kind not in JUDGES:  # a config mutated after construction
        raise ConfigError(f"unknown judge kind '{config.kind}': known kinds are {', '.join(JUDGES)}")
    module = importlib.import_module(f"bump_profiles.judges.{JUDGES[config.kind].module}")
    return module.from_config(config, model=model, tokenizer=tokenizer)


def check_direction(direction: str) -> None:
    """Direction is "A" (profiles query items) or "B" (items query profiles)."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"judge direction must be 'A' or 'B', got {direction!r}")


__all__ = ["CALIBRATIONS", "DIRECTIONS", "DTYPES", "JUDGES", "Judge", "JudgeConfig", "JudgeSpec", "check_direction", "make_judge"]
