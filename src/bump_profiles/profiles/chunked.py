"""Reading more history than one prompt holds: a note on each chunk, then one profile merged from the notes.

A prompt shows the latest dozen items, and the history cut to a profile's length (history@budget) is
made of those same items: a profile written from them can only restate what the history already says.
Reading ``chunks`` consecutive chunks of the history, each within the usual prompt budget, writing a
greedy note on each, and merging the notes lets the generator name what recurs over ``chunks`` times
as many items, which is what a profile has and a cut history lacks. The notes are greedy, so the N
samples of best-of-N differ only in the merge (docs/alignment.md measures it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bump_profiles.data.schema import Interaction
from bump_profiles.engines.backends import token_counter
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.prompts import MERGE_INSTRUCTION, ProfilePrompt


def chunk_history(history: Sequence[Interaction], chunks: int, per_chunk: int) -> list[list[Interaction]]:
    """The most recent ``chunks * per_chunk`` items in consecutive chunks, oldest first. A shorter history
    is cut into as many near-equal chunks as it allows (never an empty one)."""
    if chunks < 1 or per_chunk < 1:
        raise ConfigError(f"chunked reading: chunks and per_chunk must be at least 1, got {chunks} and {per_chunk}")
    if not history:
        raise DataError("chunked reading: the history is empty")
    recent = list(history[-chunks * per_chunk:])
    n = min(chunks, len(recent))
    bounds = [round(i * len(recent) / n) for i in range(n + 1)]
    return [recent[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@dataclass
class ChunkedPrompt:
    """A note per chunk (``note``: its template and per-chunk budgets), then the merge prompt."""

    note: ProfilePrompt
    chunks: int = 4
    per_chunk: int = 12
    merge_template: str = field(default=MERGE_INSTRUCTION)

    def __post_init__(self) -> None:
        if "{history}" not in self.merge_template:
            raise ConfigError("chunked reading: the merge template must contain {history}")

    def note_messages(self, history: Sequence[Interaction],
                      count_tokens: Callable[[str], int] | None = None) -> list[list[dict[str, str]]]:
        """One note prompt per chunk, oldest chunk first."""
        return [self.note.messages(c, count_tokens=count_tokens) for c in chunk_history(history, self.chunks, self.per_chunk)]

    def merge_messages(self, notes: Sequence[str]) -> list[dict[str, str]]:
        """The merge prompt over one user's notes (oldest first)."""
        text = "\n".join(f"- period {i}: {' '.join(n.split())}" for i, n in enumerate(notes, 1))
        return [{"role": "user", "content": self.merge_template.format(history=text, max_words=self.note.max_words)}]


def write_notes(backend, prompt: ChunkedPrompt, histories: Mapping[str, Sequence[Interaction]], *,
                max_new_tokens: int) -> dict[str, list[str]]:
    """Every user's chunk notes, greedy, in one batched call (the backend batches as it is set to)."""
    count = token_counter(backend)
    per_user = {u: prompt.note_messages(h, count_tokens=count) for u, h in histories.items()}
    flat = [m for msgs in per_user.values() for m in msgs]
    texts = iter(c.text for c in backend.complete(flat, max_new_tokens=max_new_tokens, temperature=0.0))
    return {u: [next(texts) for _ in msgs] for u, msgs in per_user.items()}
