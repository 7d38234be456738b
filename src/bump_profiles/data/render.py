"""Interactions as text, per source, and a user's history under a token or item budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bump_profiles.data.schema import Interaction

# Which fields make the text of an interaction, in order, per LaMP task (the benchmark's item fields).
# LaMP_2 (movies) items carry `description` and `tag`; the older LaMP_2 (news) carry `title`, `text`
# and `category`. Labels (category, tag, score) are shown because they are what the user did.
LAMP_TEMPLATES: dict[str, Callable[[Interaction], str]] = {
    "LaMP_1": lambda it: f'Paper: "{it.fields.get("title", "")}". {it.fields.get("abstract", "")}',
    "LaMP_2_movies": lambda it: f"Tagged a movie as '{it.label}': {it.fields.get('description', '')}",
    "LaMP_2_news": lambda it: f"Wrote a {it.label} article: \"{it.fields.get('title', '')}\". {it.fields.get('text', '')}",
    "LaMP_3": lambda it: f"Rated {_fmt_score(it.score)} of 5: {it.fields.get('text', '')}",
    "LaMP_4": lambda it: f'Headline: "{it.fields.get("title", "")}" for: {it.fields.get("text", "")}',
    "LaMP_5": lambda it: f'Paper: "{it.fields.get("title", "")}". {it.fields.get("abstract", "")}',
    "LaMP_6": lambda it: f'Email subject: "{it.fields.get("title", "")}" for: {it.fields.get("text", "")}',
    "LaMP_7": lambda it: f"Tweet: {it.fields.get('text', '')}",
}


def _fmt_score(score: float | None) -> str:
    if score is None:
        return "?"
    return str(int(score)) if float(score).is_integer() else f"{score:g}"


def render_interaction(it: Interaction) -> str:
    """One line of text for an interaction: the LaMP template for LaMP sources, else its fields joined."""
    template = LAMP_TEMPLATES.get(it.source)
    if template is not None:
        return " ".join(template(it).split())
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
