"""Refreshing stored profiles: from scratch, or incrementally from the previous version.

``update`` mode (the default when a previous profile exists) shows the generator the previous
profile and the interactions written since (``seq > through_seq``), oldest first, as many as the
update prompt's budgets hold (``history_items``, ``history_tokens``). A backlog longer than that is
**chained**: one version per chunk, each built on the one before, until the backlog as it stood
when the refresh began is read. So a version's ``source_seqs`` are exactly the interactions its
prompt showed, and its ``through_seq`` is the last of them: nothing is marked read that was not.

``scratch`` mode reads only the user's newest ``history_items`` interactions (never the whole
history) and shows the newest of them that fit ``history_tokens``; ``through_seq`` is the newest
interaction (a scratch profile is, by design, a summary of the recent past).

The new version is written in one transaction on top of the version it was built on; interactions
that arrive during generation have larger ``seq`` and stay "new" for the next refresh. The store
makes a read wait for a write of the same user in progress, so no smaller ``seq`` can appear later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bump_profiles.backends import Backend
from bump_profiles.data.render import fitting
from bump_profiles.data.schema import Interaction
from bump_profiles.errors import ConfigError
from bump_profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.store import ProfileStore, StoredInteraction, StoredProfile


class EmptyProfileError(RuntimeError):
    """The generator returned no text: nothing is stored, the previous version stays current."""


@dataclass
class Refresher:
    """Generates and stores a user's next profile version with ``backend``."""

    store: ProfileStore
    backend: Backend
    mode: str = "update"  # "update": incremental when a previous profile exists; "scratch": always from scratch
    scratch_prompt: ProfilePrompt = field(default_factory=ProfilePrompt)
    update_prompt: UpdatePrompt = field(default_factory=UpdatePrompt)
    max_new_tokens: int = 96
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("update", "scratch"):
            raise ValueError(f"mode must be 'update' or 'scratch', not {self.mode!r}")
        for name, prompt in (("scratch", self.scratch_prompt), ("update", self.update_prompt)):
            if prompt.history_items is None:  # the item budget is what bounds a refresh's reads
                raise ConfigError(f"the {name} prompt of a refresh needs history_items (at least 1), not None")

    def refresh(self, user_id: str) -> StoredProfile | None:
        """The newest version written, or None when the user has no interaction the current profile misses."""
        current = self.store.current_profile(user_id)
        if current is None or self.mode == "scratch":
            return self._scratch(user_id, current)
        target: int | None = None  # the backlog as it stood at the start: later arrivals wait for the next refresh
        while True:
            new = self.store.interactions(user_id, after_seq=current.through_seq, limit=self.update_prompt.history_items)
            if target is None:
                newest = self.store.interactions(user_id, after_seq=current.through_seq, limit=1, newest=True)
                target = newest[-1].seq if newest else current.through_seq
            new = [i for i in new if i.seq <= target]
            if not new:
                return None if target == current.through_seq else current
            shown = new[: fitting([as_interaction(i) for i in new], max_tokens=self.update_prompt.history_tokens,
                                  count_tokens=self._count())]
            messages = self.update_prompt.messages(current.text, [as_interaction(i) for i in shown], count_tokens=self._count())
            current = self._write(user_id, messages, "update", current, shown)
            if current.through_seq >= target:
                return current

    def _scratch(self, user_id: str, current: StoredProfile | None) -> StoredProfile | None:
        recent = self.store.interactions(user_id, limit=self.scratch_prompt.history_items, newest=True)
        if not recent or (current is not None and recent[-1].seq <= current.through_seq):
            return None
        newest_first = [as_interaction(i) for i in reversed(recent)]
        shown = recent[len(recent) - fitting(newest_first, max_tokens=self.scratch_prompt.history_tokens,
                                             count_tokens=self._count()):]
        messages = self.scratch_prompt.messages([as_interaction(i) for i in shown], count_tokens=self._count())
        return self._write(user_id, messages, "scratch", current, shown)

    def _count(self) -> Callable[[str], int] | None:
        return self.backend.count_tokens if self.backend.count_tokens("probe") is not None else None

    def _write(self, user_id: str, messages: list[dict[str, str]], mode: str, current: StoredProfile | None,
               shown: list[StoredInteraction]) -> StoredProfile:
        completion = self.backend.complete([messages], max_new_tokens=self.max_new_tokens, temperature=self.temperature)[0]
        if not completion.text.strip():
            raise EmptyProfileError(f"user '{user_id}': the generator returned an empty profile")
        return self.store.write_profile(
            user_id, completion.text, generator=self.backend.name, mode=mode,
            previous_version=None if current is None else current.version, through_seq=max(i.seq for i in shown),
            source_seqs=[i.seq for i in shown], prompt_tokens=completion.prompt_tokens,
        )


def as_interaction(item: StoredInteraction) -> Interaction:
    """A stored interaction in the shape prompts render."""
    return Interaction(id=str(item.seq), fields={"text": item.text}, source="jsonl", date=item.timestamp)
