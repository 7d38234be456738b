"""Users and their interactions: the one shape every loader produces and every stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Interaction:
    """One thing a user did: a paper written, a review posted, an article tagged.

    ``fields`` holds the text fields by name (e.g. ``title``, ``abstract``); ``source`` says how to
    render them (a LaMP task name, ``"jsonl"`` or ``"synthetic"``); ``raw`` keeps the record as read.
    """

    id: str
    fields: dict[str, str]
    source: str = "jsonl"
    label: str | None = None
    score: float | None = None
    date: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def text(self) -> str:
        """The interaction rendered as one text (see :mod:`bump_profiles.data.render`)."""
        from bump_profiles.data.render import render_interaction

        return render_interaction(self)


@dataclass
class User:
    """A person: interactions in time order when dates exist, plus any per-user extras.

    ``extra`` keeps what is not an interaction, e.g. ``extra["questions"]`` for the LaMP questions
    asked about this user, or ``extra["interests"]`` for synthetic users.
    """

    id: str
    interactions: list[Interaction]
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.interactions)


MAX_CHARS = 20_000  # longer interaction texts are cut at load time (reported), so one record cannot flood a prompt


def tidy(interactions: list[Interaction], *, max_chars: int = MAX_CHARS) -> tuple[list[Interaction], int, int]:
    """Drop exact duplicates (same text and date) and cut huge texts to ``max_chars``.

    Returns the kept interactions and how many were dropped and truncated, for the loader to report.
    """
    seen: set[tuple[str, str | None]] = set()
    kept: list[Interaction] = []
    dropped = truncated = 0
    for it in interactions:
        key = (" ".join(" ".join(it.fields.values()).split()), it.date)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        if any(len(v) > max_chars for v in it.fields.values()):
            truncated += 1
            it = replace(it, fields={k: v[:max_chars] for k, v in it.fields.items()})
        kept.append(it)
    return kept, dropped, truncated


def date_key(value: str) -> float:
    """Seconds since the epoch for a Unix timestamp or an ISO 8601 date; ValueError otherwise."""
    try:
        return float(value)
    except ValueError:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()


def sort_by_date(interactions: list[Interaction]) -> list[Interaction]:
    """Time order when every interaction has a parseable date; the given order otherwise (stable)."""
    try:
        keys = [date_key(it.date) if it.date else None for it in interactions]
    except ValueError:
        return list(interactions)
    if not interactions or any(k is None for k in keys):
        return list(interactions)
    order = sorted(range(len(interactions)), key=lambda i: keys[i])
    return [interactions[i] for i in order]
