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

Many users are refreshed with one batched generation call per round
(:meth:`Refresher.refresh_many`); the Ray path (:mod:`bump_profiles.scale.refresh`) reads and writes
through the same :meth:`Refresher.prepare` and :meth:`Refresher.write`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bump_profiles.data.render import fitting
from bump_profiles.data.schema import Interaction
from bump_profiles.engines.backends import Backend, Messages, token_counter
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.store import ProfileStore, StaleWriteError, StoredInteraction, StoredProfile


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
        result = self.refresh_many([user_id])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def refresh_many(self, user_ids: Sequence[str]) -> list[StoredProfile | None | Exception]:
        """Refresh several users with one batched generation call per round (a round per chunk of a
        chained backlog); per user, in order: the newest version written, None (nothing new), or the
        error about that user (an empty generation, a stale write) that stopped it. Any other error
        (database, model) is raised."""
        results: dict[str, StoredProfile | None | Exception] = dict.fromkeys(user_ids)
        targets: dict[str, int] = {}
        active = list(results)
        while active:
            pending = [p for p in (self.prepare(u, target=targets.get(u)) for u in active) if p is not None]
            if not pending:
                break
            completions = self.backend.complete([p.messages(self.scratch_prompt, self.update_prompt, self._count())
                                                 for p in pending], max_new_tokens=self.max_new_tokens,
                                                temperature=self.temperature)
            active = []
            for p, c in zip(pending, completions, strict=True):
                targets[p.user_id] = p.target
                try:
                    written = results[p.user_id] = self.write(p, c.text, c.prompt_tokens)
                except (EmptyProfileError, StaleWriteError) as exc:
                    results[p.user_id] = exc
                    continue
                if p.mode == "update" and written.through_seq < p.target:
                    active.append(p.user_id)  # a chained backlog: the next chunk, on this version
        return [results[u] for u in user_ids]

    def prepare(self, user_id: str, *, target: int | None = None) -> PendingRefresh | None:
        """What the user's next version is built from, read from the store; None when nothing is new.

        Update mode: the previous profile and the oldest unread interactions up to ``target`` (the
        newest seq when the refresh began; found here when None) that the prompt's budgets hold.
        Scratch mode: the newest interactions that fit."""
        current = self.store.current_profile(user_id)
        if current is None or self.mode == "scratch":
            recent = self.store.interactions(user_id, limit=self.scratch_prompt.history_items, newest=True)
            if not recent or (current is not None and recent[-1].seq <= current.through_seq):
                return None
            newest_first = [as_interaction(i) for i in reversed(recent)]
            shown = recent[len(recent) - fitting(newest_first, max_tokens=self.scratch_prompt.history_tokens,
                                                 count_tokens=self._count()):]
            return PendingRefresh(user_id, "scratch", "", shown, None if current is None else current.version,
                                  recent[-1].seq)
        new = self.store.interactions(user_id, after_seq=current.through_seq, limit=self.update_prompt.history_items)
        if target is None:  # the backlog as it stood at the start: later arrivals wait for the next refresh
            newest = self.store.interactions(user_id, after_seq=current.through_seq, limit=1, newest=True)
            target = newest[-1].seq if newest else current.through_seq
        new = [i for i in new if i.seq <= target]
        if not new:
            return None
        shown = new[: fitting([as_interaction(i) for i in new], max_tokens=self.update_prompt.history_tokens,
                              count_tokens=self._count())]
        return PendingRefresh(user_id, "update", current.text, shown, current.version, target)

    def write(self, pending: PendingRefresh, text: str, prompt_tokens: int | None) -> StoredProfile:
        """Store ``text`` as the user's next version, on top of the version it was built on (a
        StaleWriteError if another refresh wrote one meanwhile: a retry never writes twice)."""
        if not text.strip():
            raise EmptyProfileError(f"user '{pending.user_id}': the generator returned an empty profile")
        return self.store.write_profile(
            pending.user_id, text, generator=self.backend.name, mode=pending.mode,
            previous_version=pending.previous_version, through_seq=max(i.seq for i in pending.shown),
            source_seqs=[i.seq for i in pending.shown], prompt_tokens=prompt_tokens,
        )

    def _count(self) -> Callable[[str], int] | None:
        return token_counter(self.backend)


@dataclass
class PendingRefresh:
    """A user's refresh between reading the store and writing the new version."""

    user_id: str
    mode: str  # "update" (previous profile + unread interactions) or "scratch"
    previous: str  # the previous profile's text (update mode)
    shown: list[StoredInteraction]  # exactly what the prompt shows, oldest first
    previous_version: int | None
    target: int  # update: the newest seq of the backlog this refresh reads up to

    def messages(self, scratch: ProfilePrompt, update: UpdatePrompt, count: Callable[[str], int] | None) -> Messages:
        items = [as_interaction(i) for i in self.shown]
        if self.mode == "update":
            return update.messages(self.previous, items, count_tokens=count)
        return scratch.messages(items, count_tokens=count)


def as_interaction(item: StoredInteraction) -> Interaction:
    """A stored interaction in the shape prompts render."""
    return Interaction(id=str(item.seq), fields={"text": item.text}, source="jsonl", date=item.timestamp)
