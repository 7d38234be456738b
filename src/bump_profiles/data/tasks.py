"""What a LaMP task's files hold, as data: one ``ItemFormat`` per task that has files.

The text fields and label field of its profile items, a phrase of its question input that tells it
apart from a task with the same item fields, and how an item reads in a user's history. The loader
(:mod:`bump_profiles.data.lamp`) and the history rendering (:mod:`bump_profiles.data.render`) read
these; :mod:`bump_profiles.lamp.tasks` builds each task's prompts, parsing and metrics on top of
them, so the data layer imports nothing from ``lamp/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: data.render asks these formats how an Interaction reads, so no runtime import back
    from bump_profiles.data.schema import Interaction


@dataclass(frozen=True)
class ItemFormat:
    """The profile items of one LaMP task's files: ``item_fields`` (text) and ``label_field`` they
    carry, whether the label is a number (``numeric_label``: a rating), ``input_hint`` (regex) of the
    question input, and ``history_line``: an item's line in a user's history (None: the fields joined)."""

    name: str
    item_fields: tuple[str, ...]
    label_field: str | None = None
    numeric_label: bool = False
    input_hint: str | None = None
    history_line: Callable[[Interaction], str] | None = None


def field_text(it: Interaction, name: str) -> str:
    """One text field of an item ('' when it has none)."""
    return it.fields.get(name, "")


def score_text(it: Interaction) -> str:
    """A rating as written: 4 rather than 4.0; the raw label (or ?) when there is no number."""
    if it.score is None:
        return it.label or "?"
    return str(int(it.score)) if float(it.score).is_integer() else f"{it.score:g}"


def _paper(it: Interaction) -> str:
    return f'Paper: "{field_text(it, "title")}". {field_text(it, "abstract")}'


# The LaMP_2 (movies) items carry `description` and `tag`; the older LaMP_2 (news) carry `title`, `text`
# and `category`. History lines show labels (category, tag, score) because they are what the user did.
# Order matters where tasks share item fields: a file that no label field or input hint places is
# read as the first such task (LaMP_1 before LaMP_5, LaMP_4 before LaMP_6).
ITEM_FORMATS: dict[str, ItemFormat] = {
    fmt.name: fmt
    for fmt in [
        ItemFormat("LaMP_1", ("title", "abstract"), input_hint=r"which reference is related", history_line=_paper),
        ItemFormat("LaMP_2_movies", ("description",), label_field="tag",
                   history_line=lambda it: f"Tagged a movie as '{it.label}': {field_text(it, 'description')}"),
        ItemFormat("LaMP_2_news", ("title", "text"), label_field="category",
                   history_line=lambda it: f"Wrote a {it.label} article: \"{field_text(it, 'title')}\". {field_text(it, 'text')}"),
        ItemFormat("LaMP_3", ("text",), label_field="score", numeric_label=True,
                   history_line=lambda it: f"Rated {score_text(it)} of 5: {field_text(it, 'text')}"),
        ItemFormat("LaMP_4", ("title", "text"), input_hint=r"headline for the following article",
                   history_line=lambda it: f'Headline: "{field_text(it, "title")}" for: {field_text(it, "text")}'),
        ItemFormat("LaMP_5", ("title", "abstract"), input_hint=r"title for the following abstract", history_line=_paper),
        ItemFormat("LaMP_6", ("title", "text"), input_hint=r"subject for the following email",
                   history_line=lambda it: f'Email subject: "{field_text(it, "title")}" for: {field_text(it, "text")}'),
        ItemFormat("LaMP_7", ("text",), history_line=lambda it: f"Tweet: {field_text(it, 'text')}"),
    ]
}
FILE_TASKS = tuple(ITEM_FORMATS)
