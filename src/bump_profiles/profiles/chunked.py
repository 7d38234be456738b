"""Reading more history than one prompt holds: a note on each chunk, then one profile merged from the notes.

A prompt shows the latest dozen items, and the history cut to a profile's length (history@budget) is
made of those same items: a profile written from them can only restate what the history already says.
Reading ``chunks`` consecutive chunks of the history, each within the usual prompt budget, writing a
greedy note on each, and merging the notes lets the generator name what recurs over ``chunks`` times
as many items, which is what a profile has and a cut history lacks. The notes are greedy, so the N
samples of best-of-N differ only in the merge (docs/alignment.md measures it); in training
(``prompt.mode: chunked``, :mod:`bump_profiles.train.notes`) the base model writes them and the policy
learns the merge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bump_profiles.data.atomic import append_jsonl
from bump_profiles.data.schema import Interaction
from bump_profiles.data.split import UserSplit
from bump_profiles.engines.backends import token_counter
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.prompts import MERGE_INSTRUCTION, ProfilePrompt
from bump_profiles.profiles.provenance import item_hash


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


def chunk_key(chunk: Sequence[Interaction]) -> str:
    """A chunk's identity: the hashes of its items in order (a note depends on nothing else, for one prompt)."""
    return hashlib.sha256(" ".join(item_hash(it) for it in chunk).encode()).hexdigest()[:16]


@dataclass
class ChunkedPrompt:
    """A note per chunk (``note``: its template and per-chunk budgets), then the merge prompt.

    ``notes`` caches each chunk's note by :func:`chunk_key`, so a chunk is noted once whoever's history it
    is read from; :func:`write_notes` fills it, :meth:`messages` reads it."""

    note: ProfilePrompt
    chunks: int = 4
    per_chunk: int = 12
    merge_template: str = field(default=MERGE_INSTRUCTION)
    notes: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if "{history}" not in self.merge_template:
            raise ConfigError("chunked reading: the merge template must contain {history}")

    def chunked(self, history: Sequence[Interaction]) -> list[list[Interaction]]:
        return chunk_history(history, self.chunks, self.per_chunk)

    def note_messages(self, history: Sequence[Interaction],
                      count_tokens: Callable[[str], int] | None = None) -> list[list[dict[str, str]]]:
        """One note prompt per chunk, oldest chunk first."""
        return [self.note.messages(c, count_tokens=count_tokens) for c in self.chunked(history)]

    def merge_messages(self, notes: Sequence[str]) -> list[dict[str, str]]:
        """The merge prompt over one user's notes (oldest first)."""
        text = "\n".join(f"- period {i}: {' '.join(n.split())}" for i, n in enumerate(notes, 1))
        return [{"role": "user", "content": self.merge_template.format(history=text, max_words=self.note.max_words)}]

    def missing(self, histories: Mapping[str, Sequence[Interaction]]) -> dict[str, list[Interaction]]:
        """The chunks of these histories not noted yet, by key (a chunk shared by two histories once)."""
        return {k: c for h in histories.values() for c in self.chunked(h) if (k := chunk_key(c)) not in self.notes}

    def messages(self, history: Sequence[Interaction], count_tokens: Callable[[str], int] | None = None) -> list[dict[str, str]]:
        """The merge prompt of one history, from the cached notes of its chunks (written first by :func:`write_notes`)."""
        keys = [chunk_key(c) for c in self.chunked(history)]
        missing = sum(k not in self.notes for k in keys)
        if missing:
            raise ConfigError(f"chunked reading: {missing} of this history's {len(keys)} chunk notes are not written yet "
                              "(write_notes first)")
        return self.merge_messages([self.notes[k] for k in keys])

    def split_messages(self, split: UserSplit, count_tokens: Callable[[str], int] | None = None) -> list[dict[str, str]]:
        """Training prompt of one user (the interface of ProfilePrompt's)."""
        return self.messages(split.history, count_tokens=count_tokens)


def load_notes(prompt: ChunkedPrompt, path: str | Path) -> None:
    """Add the notes kept in ``path`` (one ``{"chunk", "note"}`` a line) to ``prompt.notes``."""
    from bump_profiles.data.jsonl import iter_jsonl

    if Path(path).exists():
        for lineno, row in iter_jsonl(path):
            if not (isinstance(row.get("chunk"), str) and isinstance(row.get("note"), str)):
                raise DataError("a note line needs string 'chunk' and 'note'", path=path, record=f"line {lineno}")
            prompt.notes[row["chunk"]] = row["note"]


def write_notes(backend, prompt: ChunkedPrompt, histories: Mapping[str, Sequence[Interaction]], *,
                max_new_tokens: int, path: str | Path | None = None, slice_size: int = 64,
                progress: bool = False) -> dict[str, list[str]]:
    """Every user's chunk notes, oldest first: the chunks not noted yet are written greedy, ``slice_size``
    a backend call (the backend batches as it is set to); with ``path``, notes kept there are reused and new
    ones appended (flushed) after each call, so a stopped run loses at most one call's."""
    from tqdm.auto import tqdm

    if path is not None:
        load_notes(prompt, path)
    count = token_counter(backend)
    chunks = prompt.missing(histories)
    keys = list(chunks)
    with tqdm(total=len(keys), unit="note", desc="chunk notes", disable=not progress) as bar:
        for i in range(0, len(keys), slice_size):  # kept after each slice: a stop loses one slice
            part = keys[i : i + slice_size]
            msgs = [prompt.note.messages(chunks[k], count_tokens=count) for k in part]
            for key, c in zip(part, backend.complete(msgs, max_new_tokens=max_new_tokens, temperature=0.0), strict=True):
                prompt.notes[key] = c.text
                if path is not None:
                    append_jsonl(path, {"chunk": key, "note": c.text})
            bar.update(len(part))
    return {u: [prompt.notes[chunk_key(c)] for c in prompt.chunked(h)] for u, h in histories.items()}


def chunked_prompt(cfg: Any) -> ChunkedPrompt:
    """The :class:`ChunkedPrompt` of a ``prompt`` config section in chunked mode: each note uses its
    template and budgets (``history_items`` items a chunk), then ``merge_template``."""
    note = ProfilePrompt(cfg.template, max_words=cfg.max_words, history_items=cfg.history_items,
                         history_tokens=cfg.history_tokens)
    return ChunkedPrompt(note, chunks=cfg.chunks, per_chunk=cfg.history_items, merge_template=cfg.merge_template)
