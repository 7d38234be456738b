"""LaMP tasks as data: one ``TaskSpec`` per task, collected in ``TASKS`` (the lighteval shape).

A spec is the one place that knows a task: what its files hold (``items``: the text fields and
label field of its profile items, the phrase of its question input that tells it apart, how an item
reads in a user's history; kept in :mod:`bump_profiles.data.tasks`, where the loader reads them, so
the data layer imports nothing from here), the official label list (classification and rating tasks), how to parse a
question's input, the retrieval query and the item text LaMP's retrievers use (``data/datasets.py``
of the LaMP repository), how a retrieved item reads in the reader prompt (LaMP's own phrasing), how a
raw generation becomes a prediction, and which metric family scores it. Adding a LaMP-like task is
adding one spec to ``TASKS`` (and, when it has files, its ``ItemFormat`` to ``ITEM_FORMATS``). Bump ``version`` whenever a prompt or post-processing changes: results
record it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bump_profiles.data.tasks import ITEM_FORMATS, ItemFormat, field_text, score_text
from bump_profiles.errors import ConfigError, DataError

if TYPE_CHECKING:  # types only
    from bump_profiles.data.schema import Interaction

KINDS = ("classification", "rating", "generation")
ITEM_WORDS = 48  # words of each field of a retrieved item shown to the reader


@dataclass(frozen=True)
class TaskSpec:
    """One LaMP task. ``pattern`` parses an input into named fields; ``query_fields`` of them, joined,
    are the retrieval query; ``item_text`` is an item's retrieval text; ``item_prompt`` its line in
    the reader prompt. ``items`` is what a LaMP file's profile items carry and how one reads in a
    user's history (a task without it has no files: it runs in memory)."""

    name: str
    kind: str
    pattern: str
    query_fields: tuple[str, ...]
    item_text: Callable[[Interaction], str]
    item_prompt: Callable[[Interaction], str]
    labels: tuple[str, ...] = ()
    choice_fields: tuple[str, ...] = ()  # input fields that the labels stand for, in label order
    items: ItemFormat | None = None
    version: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}")
        if self.kind == "classification" and not self.labels:
            raise ValueError(f"{self.name}: a classification task needs its label list")
        if self.choice_fields and len(self.choice_fields) != len(self.labels):
            raise ValueError(f"{self.name}: one choice field per label")
        if self.items is not None and self.items.name != self.name:
            raise ValueError(f"{self.name}: its item format is {self.items.name}'s")

    @property
    def has_files(self) -> bool:
        """Whether the task is read from official LaMP files (its ``items`` say what their items carry)."""
        return self.items is not None

    @property
    def answer_tokens(self) -> int:
        """Default generation budget: labels and ratings are a few tokens, texts a short line."""
        return {"classification": 12, "rating": 6, "generation": 48}[self.kind]

    @property
    def metric_names(self) -> tuple[str, str]:
        """The official metric names for this task."""
        return {"classification": ("accuracy", "f1"), "rating": ("MAE", "RMSE"), "generation": ("rouge-1", "rouge-L")}[self.kind]

    def parse_input(self, text: str, *, record: object = None) -> dict[str, str]:
        """The named fields of a question input; a DataError when the input is not this task's."""
        match = re.search(self.pattern, text, flags=re.DOTALL)
        if match is None:
            raise DataError(f"input does not look like a {self.name} question", record=record, field="input")
        return {k: v.strip() for k, v in match.groupdict().items()}

    def query(self, text: str, *, record: object = None) -> str:
        """The retrieval query of a question, as LaMP builds it."""
        fields = self.parse_input(text, record=record)
        return " ".join(fields[f] for f in self.query_fields)

    def prompt(self, question: str, *, profile: str | None = None, items: Sequence[Interaction] = ()) -> str:
        """The reader prompt: optional profile section, optional retrieved items, then the question."""
        parts = []
        if profile is not None:
            parts.append(f"User profile: {' '.join(profile.split())}")
        if items:
            lines = "\n".join(f"- {self.item_prompt(it)}" for it in items)
            parts.append(f"Past items of this user:\n{lines}")
        parts.append(question.strip())
        return "\n\n".join(parts)

    def postprocess(self, output: str, question: str | None = None) -> str:
        """A raw generation as a prediction: a label for label tasks, the first line for generation.

        With ``question`` given, an answer that names a choice by its text instead of its label
        (small readers write 'The reference "Graph cuts" ...') becomes that choice's label.
        """
        if self.kind == "classification":
            label = _find_label(output, self.labels)
            if label in self.labels or not (self.choice_fields and question):
                return label
            return _find_choice(output, [self.parse_input(question)[f] for f in self.choice_fields], self.labels) or label
        if self.kind == "rating":
            digit = re.search(r"[1-5]", output)
            return digit.group(0) if digit else output.strip()
        first = next((line for line in output.strip().splitlines() if line.strip()), "")
        return first.strip().strip('"').strip()


def _find_label(output: str, labels: Sequence[str]) -> str:
    """The label named earliest in ``output`` (the longest one on a tie); the stripped output when none is."""
    low = output.lower()
    best: tuple[int, int, str] | None = None
    for label in labels:
        if re.fullmatch(r"\[\d+\]", label):  # "[1]" also answers as a bare "1" at the start
            found = re.search(rf"\[{label[1:-1]}\]|^\s*{label[1:-1]}\b", low)
        else:
            found = re.search(rf"(?<![\w-]){re.escape(label.lower())}(?![\w-])", low)
        if found and (best is None or (found.start(), -len(label)) < (best[0], best[1])):
            best = (found.start(), -len(label), label)
    return best[2] if best else output.strip()


def _find_choice(output: str, choices: Sequence[str], labels: Sequence[str], min_chars: int = 12) -> str | None:
    """The label of the choice whose opening ``output`` quotes longest (at least ``min_chars``
    characters, or the whole choice when shorter); None when no choice is quoted."""
    low = " ".join(output.lower().split())
    best: tuple[int, str] | None = None
    for choice, label in zip(choices, labels, strict=True):
        text = " ".join(choice.lower().split())
        n = next((n for n in range(len(text), min(min_chars, len(text)) - 1, -1) if text[:n] in low), 0)
        if n and (best is None or n > best[0]):
            best = (n, label)
    return best[1] if best else None


def _cut(text: str, words: int = ITEM_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def _join(*names: str) -> Callable[[Interaction], str]:
    """LaMP's retrieval text of an item: the named fields joined by a space."""
    return lambda it: " ".join(field_text(it, n) for n in names if field_text(it, n))


NEWS_CATEGORIES = (
    "women", "religion", "politics", "style & beauty", "entertainment", "culture & arts", "sports",
    "science & technology", "travel", "business", "crime", "education", "healthy living", "parents", "food & drink",
)
MOVIE_TAGS = (
    "sci-fi", "based on a book", "comedy", "action", "twist ending", "dystopia", "dark comedy", "classic",
    "psychology", "fantasy", "romance", "thought-provoking", "social commentary", "violence", "true story",
)
_AFTER_COLON = r"^[^:]*:\s*(?P<text>.*)$"

# What each task's files hold (item fields, label field, input hint, history line) is its
# ``items``, from bump_profiles.data.tasks.ITEM_FORMATS: the loader reads them there.
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="LaMP_1", items=ITEM_FORMATS["LaMP_1"], kind="classification", labels=("[1]", "[2]"),
            pattern=r'title "(?P<title>.*)", which reference is related\?.*\[1\]: "(?P<ref1>.*)" \[2\]: "(?P<ref2>.*)"\s*$',
            query_fields=("ref1", "ref2"), choice_fields=("ref1", "ref2"), item_text=_join("title", "abstract"),
            item_prompt=lambda it: f'"{_cut(field_text(it, "title"))}"',
        ),
        TaskSpec(
            name="LaMP_2_movies", items=ITEM_FORMATS["LaMP_2_movies"], kind="classification", labels=MOVIE_TAGS,
            pattern=r"description:\s*(?P<description>.*)$", query_fields=("description",), item_text=_join("description"),
            item_prompt=lambda it: f'the tag for the movie: "{_cut(field_text(it, "description"))}" is "{it.label}"',
        ),
        TaskSpec(
            name="LaMP_2_news", items=ITEM_FORMATS["LaMP_2_news"], kind="classification", labels=NEWS_CATEGORIES,
            pattern=r"article:\s*(?P<article>.*)$", query_fields=("article",), item_text=_join("title", "text"),
            item_prompt=lambda it: f'the category for the article: "{_cut(field_text(it, "text"))}" is "{it.label}"',
        ),
        TaskSpec(
            name="LaMP_3", items=ITEM_FORMATS["LaMP_3"], kind="rating", labels=("1", "2", "3", "4", "5"),
            pattern=r"review:\s*(?P<review>.*)$", query_fields=("review",), item_text=_join("text"),
            item_prompt=lambda it: f'{score_text(it)} is the score for "{_cut(field_text(it, "text"))}"',
        ),
        TaskSpec(
            name="LaMP_4", items=ITEM_FORMATS["LaMP_4"], kind="generation", pattern=r"article:\s*(?P<article>.*)$", query_fields=("article",),
            item_text=_join("title", "text"),
            item_prompt=lambda it: f'"{field_text(it, "title")}" is the title for "{_cut(field_text(it, "text"))}"',
        ),
        TaskSpec(
            name="LaMP_5", items=ITEM_FORMATS["LaMP_5"], kind="generation", pattern=_AFTER_COLON, query_fields=("text",),
            item_text=_join("title", "abstract"),
            item_prompt=lambda it: f'"{field_text(it, "title")}" is the title for "{_cut(field_text(it, "abstract"))}"',
        ),
        TaskSpec(
            name="LaMP_6", items=ITEM_FORMATS["LaMP_6"], kind="generation", pattern=_AFTER_COLON, query_fields=("text",),
            item_text=_join("title", "text"),
            item_prompt=lambda it: f'"{field_text(it, "title")}" is the title for "{_cut(field_text(it, "text"))}"',
        ),
        TaskSpec(
            name="LaMP_7", items=ITEM_FORMATS["LaMP_7"], kind="generation", pattern=_AFTER_COLON, query_fields=("text",),
            item_text=_join("text"), item_prompt=lambda it: f'"{_cut(field_text(it, "text"))}"',
        ),
        # The LaMP_1-like choice of bump_profiles.data.synthetic.make_task, for the CPU demo and tests (no files).
        TaskSpec(
            name="synthetic", kind="classification", labels=("[1]", "[2]"),
            pattern=r'\[1\]: "(?P<ref1>.*)" \[2\]: "(?P<ref2>.*)"\s*$', query_fields=("ref1", "ref2"), choice_fields=("ref1", "ref2"),
            item_text=lambda it: it.text, item_prompt=lambda it: f'"{_cut(it.text)}"',
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    """The spec of a task by name; a ConfigError listing the known ones otherwise."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]
