"""Refreshing stored profiles: from scratch, or incrementally from the previous version.

``update`` mode (the default when a previous profile exists) shows the generator the previous
profile and only the interactions written since (``seq > through_seq``); ``scratch`` mode shows the
user's most recent interactions within the prompt's budgets. The new version is written in one
transaction on top of the version it was built on; interactions that arrive during generation
have larger ``seq`` and stay "new" for the next refresh, so none is ever skipped. Many users are
refreshed with one batched generation call (:meth:`Refresher.refresh_many`); the Ray path
(:mod:`bump_profiles.scale.refresh`) reads and writes through the same :meth:`Refresher.prepare` and
:meth:`Refresher.write`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bump_profiles.backends import Backend, Messages
from bump_profiles.data.schema import Interaction
from bump_profiles.prompts import ProfilePrompt, UpdatePrompt
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

    def refresh(self, user_id: str) -> StoredProfile | None:
        """The new version, or None when the user has no interaction the current profile misses."""
        result = self.refresh_many([user_id])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def refresh_many(self, user_ids: Sequence[str]) -> list[StoredProfile | None | Exception]:
        """Refresh several users with one batched generation call; per user, in order: the new version,
        None (nothing new) or the error that stopped that user (the others still go ahead)."""
        count = self.backend.count_tokens if self.backend.count_tokens("probe") is not None else None
        pending = [self.prepare(u) for u in user_ids]
        todo = [p for p in pending if p is not None]
        messages = [p.messages(self.scratch_prompt, self.update_prompt, count) for p in todo]
        done = dict(zip([p.user_id for p in todo], self.backend.complete(
            messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature), strict=True)) if todo else {}
        out: list[StoredProfile | None | Exception] = []
        for uid, p in zip(user_ids, pending, strict=True):
            if p is None:
                out.append(None)
                continue
            try:
                out.append(self.write(p, done[uid].text, done[uid].prompt_tokens))
            except (EmptyProfileError, StaleWriteError) as exc:
                out.append(exc)
        return out

    def prepare(self, user_id: str) -> PendingRefresh | None:
        """What the user's next version is built from, read from the store; None when nothing is new."""
        current = self.store.current_profile(user_id)
        if current is not None and self.mode == "update":
            new = self.store.interactions(user_id, after_seq=current.through_seq)
            if not new:
                return None
            return PendingRefresh(user_id, "update", current.text, _within_items(new, self.update_prompt.history_items),
                                  current.version, new[-1].seq)
        everything = self.store.interactions(user_id)
        if not everything or (current is not None and everything[-1].seq <= current.through_seq):
            return None
        return PendingRefresh(user_id, "scratch", "", _within_items(everything, self.scratch_prompt.history_items),
                              None if current is None else current.version, everything[-1].seq)

    def write(self, pending: PendingRefresh, text: str, prompt_tokens: int | None) -> StoredProfile:
        """Store the generated ``text`` as the user's next version, on top of the version it was built on
        (a StaleWriteError if another refresh wrote one meanwhile: a retry never writes twice)."""
        if not text.strip():
            raise EmptyProfileError(f"user '{pending.user_id}': the generator returned an empty profile")
        return self.store.write_profile(
            pending.user_id, text, generator=self.backend.name, mode=pending.mode,
            previous_version=pending.previous_version, through_seq=pending.through_seq,
            source_seqs=[i.seq for i in pending.shown], prompt_tokens=prompt_tokens,
        )


@dataclass
class PendingRefresh:
    """A user's refresh between reading the store and writing the new version."""

    user_id: str
    mode: str  # "update" (previous profile + new interactions) or "scratch"
    previous: str  # the previous profile's text (update mode)
    shown: list[StoredInteraction]  # what the prompt may show (its token budget may cut further)
    previous_version: int | None
    through_seq: int

    def messages(self, scratch: ProfilePrompt, update: UpdatePrompt, count: Callable[[str], int] | None) -> Messages:
        items = [as_interaction(i) for i in self.shown]
        if self.mode == "update":
            return update.messages(self.previous, items, count_tokens=count)
        return scratch.messages(items, count_tokens=count)


def _within_items(items: list[StoredInteraction], max_items: int | None) -> list[StoredInteraction]:
    """The most recent ``max_items`` (what the prompt can show; its token budget may cut further)."""
    return items if max_items is None else items[-max_items:]


def as_interaction(item: StoredInteraction) -> Interaction:
    """A stored interaction in the shape prompts render."""
    return Interaction(id=str(item.seq), fields={"text": item.text}, source="jsonl", date=item.timestamp)
