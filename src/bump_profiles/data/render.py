"""Interactions as text, per source, and a user's history under a token or item budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bump_profiles.data.tasks import ITEM_FORMATS

if TYPE_CHECKING:  # types only: Interaction.text calls render_interaction, so no runtime import back
    from bump_profiles.data.schema import Interaction


def render_interaction(it: Interaction) -> str:
    """One line of text for an interaction: its LaMP task's ``history_line`` (data/tasks.py), else its fields joined."""
    fmt = ITEM_FORMATS.get(it.source)
    if fmt is not None and fmt.history_line is not None:
        return " ".join(fmt.history_line(it).split())
    text = " ".join(v for v in it.fields.values() if v)
    return " ".join(text.split())


def render_history(
    interactions: Sequence[Interaction],
    *,
    max_items: int | None = None,
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    bullet: str = "- ",
) -> str:
    """The most recent interactions first, one per line, within an item and/or token budget.

    ``interactions`` are in time order (oldest first). Items are added newest first until the next
    one would pass ``max_tokens`` (counted by ``count_tokens``, default: whitespace words); an item
    that does not fit whole is cut to the remaining budget so the budget is filled but never passed.
    """
    count = count_tokens or (lambda s: len(s.split()))
    lines: list[str] = []
    used = 0
    for it in reversed(interactions):
        if max_items is not None and len(lines) >= max_items:
            break
        line = bullet + it.text
        n = count(line) + (1 if lines else 0)
        if max_tokens is not None and used + n > max_tokens:
            remaining = max_tokens - used
            if remaining > 4:
                lines.append(_cut_words(line, remaining, count))
            break
        lines.append(line)
        used += n
    return "\n".join(lines)


def fitting(interactions: Sequence[Interaction], *, max_items: int | None = None, max_tokens: int | None = None,
            count_tokens: Callable[[str], int] | None = None, bullet: str = "- ") -> int:
    """How many of ``interactions``, taken in the order given, :func:`render_history` shows whole
    within the budgets (the same count: a bullet per line, a token per line break). At least 1 when
    there is any, so an item longer than the whole token budget is shown cut rather than never:
    a caller that records what the generator read records exactly these."""
    count = count_tokens or (lambda s: len(s.split()))
    limit = len(interactions) if max_items is None else min(max_items, len(interactions))
    used = 0
    for n, it in enumerate(interactions[:limit]):
        used += count(bullet + it.text) + (1 if n else 0)
        if max_tokens is not None and used > max_tokens:
            return max(n, 1)
    return limit


def _cut_words(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The longest word prefix of ``text`` whose count is within ``budget`` (binary search)."""
    words = text.split()
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= budget - 1:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])
