"""LaMP tasks as data: one ``TaskSpec`` per task, collected in ``TASKS`` (the lighteval shape).

A spec is the one place that knows a task: the text fields and label field of its profile items
(what the loader in :mod:`bump_profiles.data.lamp` reads), a phrase of its question input that tells
it apart from a task with the same item fields, how an item reads in a user's history (profile
prompts and judges), the official label list (classification and rating tasks), how to parse a
question's input, the retrieval query and the item text LaMP's retrievers use (``data/datasets.py``
of the LaMP repository), how a retrieved item reads in the reader prompt (LaMP's own phrasing), how a
raw generation becomes a prediction, and which metric family scores it. Adding a LaMP-like task is
adding one spec to ``TASKS``. Bump ``version`` whenever a prompt or post-processing changes: results
record it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bump_profiles.errors import ConfigError, DataError

if TYPE_CHECKING:  # types only: data.render asks these specs how an Interaction reads, so no runtime import back
    from bump_profiles.data.schema import Interaction

KINDS = ("classification", "rating", "generation")
ITEM_WORDS = 48  # words of each field of a retrieved item shown to the reader


@dataclass(frozen=True)
class TaskSpec:
    """One LaMP task. ``pattern`` parses an input into named fields; ``query_fields`` of them, joined,
    are the retrieval query; ``item_text`` is an item's retrieval text; ``item_prompt`` its line in
    the reader prompt; ``history_line`` its line in a user's history (None: the fields joined).
    ``item_fields`` and ``label_field`` are what a LaMP file's profile items carry (a task without
    ``item_fields`` has no files: it runs in memory); ``input_hint`` is a phrase (regex) of the
    question input that tells this task apart from an earlier one with the same item fields."""

    name: str
    kind: str
    pattern: str
    query_fields: tuple[str, ...]
    item_text: Callable[[Interaction], str]
    item_prompt: Callable[[Interaction], str]
    labels: tuple[str, ...] = ()
    choice_fields: tuple[str, ...] = ()  # input fields that the labels stand for, in label order
    item_fields: tuple[str, ...] = ()
    label_field: str | None = None
    input_hint: str | None = None
    history_line: Callable[[Interaction], str] | None = None
    version: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}")
        if self.kind == "classification" and not self.labels:
            raise ValueError(f"{self.name}: a classification task needs its label list")
        if self.choice_fields and len(self.choice_fields) != len(self.labels):
            raise ValueError(f"{self.name}: one choice field per label")

    @property
    def has_files(self) -> bool:
        """Whether the task is read from official LaMP files (it says which fields their items carry)."""
        return bool(self.item_fields)

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


def _field(it: Interaction, name: str) -> str:
    return it.fields.get(name, "")


def _join(*names: str) -> Callable[[Interaction], str]:
    """LaMP's retrieval text of an item: the named fields joined by a space."""
    return lambda it: " ".join(_field(it, n) for n in names if _field(it, n))


def _score(it: Interaction) -> str:
    """A rating as written: 4 rather than 4.0; the raw label (or ?) when there is no number."""
    if it.score is None:
        return it.label or "?"
    return str(int(it.score)) if float(it.score).is_integer() else f"{it.score:g}"


def _paper(it: Interaction) -> str:
    return f'Paper: "{_field(it, "title")}". {_field(it, "abstract")}'


NEWS_CATEGORIES = (
    "women", "religion", "politics", "style & beauty", "entertainment", "culture & arts", "sports",
    "science & technology", "travel", "business", "crime", "education", "healthy living", "parents", "food & drink",
)
MOVIE_TAGS = (
    "sci-fi", "based on a book", "comedy", "action", "twist ending", "dystopia", "dark comedy", "classic",
    "psychology", "fantasy", "romance", "thought-provoking", "social commentary", "violence", "true story",
)
_AFTER_COLON = r"^[^:]*:\s*(?P<text>.*)$"

# The LaMP_2 (movies) items carry `description` and `tag`; the older LaMP_2 (news) carry `title`, `text`
# and `category`. History lines show labels (category, tag, score) because they are what the user did.
# Order matters where tasks share item fields: a file that no label field or input hint places is
# read as the first such task (LaMP_1 before LaMP_5, LaMP_4 before LaMP_6).
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="LaMP_1", kind="classification", labels=("[1]", "[2]"),
            pattern=r'title "(?P<title>.*)", which reference is related\?.*\[1\]: "(?P<ref1>.*)" \[2\]: "(?P<ref2>.*)"\s*$',
            query_fields=("ref1", "ref2"), choice_fields=("ref1", "ref2"), item_text=_join("title", "abstract"),
            item_prompt=lambda it: f'"{_cut(_field(it, "title"))}"',
            item_fields=("title", "abstract"), input_hint=r"which reference is related", history_line=_paper,
        ),
        TaskSpec(
            name="LaMP_2_movies", kind="classification", labels=MOVIE_TAGS,
            pattern=r"description:\s*(?P<description>.*)$", query_fields=("description",), item_text=_join("description"),
            item_prompt=lambda it: f'the tag for the movie: "{_cut(_field(it, "description"))}" is "{it.label}"',
            item_fields=("description",), label_field="tag",
            history_line=lambda it: f"Tagged a movie as '{it.label}': {_field(it, 'description')}",
        ),
        TaskSpec(
            name="LaMP_2_news", kind="classification", labels=NEWS_CATEGORIES,
            pattern=r"article:\s*(?P<article>.*)$", query_fields=("article",), item_text=_join("title", "text"),
            item_prompt=lambda it: f'the category for the article: "{_cut(_field(it, "text"))}" is "{it.label}"',
            item_fields=("title", "text"), label_field="category",
            history_line=lambda it: f"Wrote a {it.label} article: \"{_field(it, 'title')}\". {_field(it, 'text')}",
        ),
        TaskSpec(
            name="LaMP_3", kind="rating", labels=("1", "2", "3", "4", "5"),
            pattern=r"review:\s*(?P<review>.*)$", query_fields=("review",), item_text=_join("text"),
            item_prompt=lambda it: f'{_score(it)} is the score for "{_cut(_field(it, "text"))}"',
            item_fields=("text",), label_field="score",
            history_line=lambda it: f"Rated {_score(it)} of 5: {_field(it, 'text')}",
        ),
        TaskSpec(
            name="LaMP_4", kind="generation", pattern=r"article:\s*(?P<article>.*)$", query_fields=("article",),
            item_text=_join("title", "text"),
            item_prompt=lambda it: f'"{_field(it, "title")}" is the title for "{_cut(_field(it, "text"))}"',
            item_fields=("title", "text"), input_hint=r"headline for the following article",
            history_line=lambda it: f'Headline: "{_field(it, "title")}" for: {_field(it, "text")}',
        ),
        TaskSpec(
            name="LaMP_5", kind="generation", pattern=_AFTER_COLON, query_fields=("text",),
            item_text=_join("title", "abstract"),
            item_prompt=lambda it: f'"{_field(it, "title")}" is the title for "{_cut(_field(it, "abstract"))}"',
            item_fields=("title", "abstract"), input_hint=r"title for the following abstract", history_line=_paper,
        ),
        TaskSpec(
            name="LaMP_6", kind="generation", pattern=_AFTER_COLON, query_fields=("text",),
            item_text=_join("title", "text"),
            item_prompt=lambda it: f'"{_field(it, "title")}" is the title for "{_cut(_field(it, "text"))}"',
            item_fields=("title", "text"), input_hint=r"subject for the following email",
            history_line=lambda it: f'Email subject: "{_field(it, "title")}" for: {_field(it, "text")}',
        ),
        TaskSpec(
            name="LaMP_7", kind="generation", pattern=_AFTER_COLON, query_fields=("text",),
            item_text=_join("text"), item_prompt=lambda it: f'"{_cut(_field(it, "text"))}"',
            item_fields=("text",), history_line=lambda it: f"Tweet: {_field(it, 'text')}",
        ),
        # The LaMP_1-like choice of bump_profiles.data.synthetic.make_task, for the CPU demo and tests (no files).
        TaskSpec(
            name="synthetic", kind="classification", labels=("[1]", "[2]"),
            pattern=r'\[1\]: "(?P<ref1>.*)" \[2\]: "(?P<ref2>.*)"\s*$', query_fields=("ref1", "ref2"), choice_fields=("ref1", "ref2"),
            item_text=lambda it: it.text, item_prompt=lambda it: f'"{_cut(it.text)}"',
        ),
    ]
}
FILE_TASKS = tuple(name for name, spec in TASKS.items() if spec.has_files)


def get_task(name: str) -> TaskSpec:
    """The spec of a task by name; a ConfigError listing the known ones otherwise."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]
