"""Refreshing stored profiles: from scratch, or incrementally from the previous version.

``update`` mode (the default when a previous profile exists) shows the generator the previous
profile and only the interactions written since (``seq > through_seq``); ``scratch`` mode shows the
user's most recent interactions within the prompt's budgets. The new version is written in one
transaction on top of the version it was built on; interactions that arrive during generation
have larger ``seq`` and stay "new" for the next refresh, so none is ever skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bump_profiles.backends import Backend
from bump_profiles.data.schema import Interaction
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

    def refresh(self, user_id: str) -> StoredProfile | None:
        """The new version, or None when the user has no interaction the current profile misses."""
        current = self.store.current_profile(user_id)
        count = self.backend.count_tokens if self.backend.count_tokens("probe") is not None else None
        if current is not None and self.mode == "update":
            new = self.store.interactions(user_id, after_seq=current.through_seq)
            if not new:
                return None
            shown = _within_items(new, self.update_prompt.history_items)
            messages = self.update_prompt.messages(current.text, [as_interaction(i) for i in shown], count_tokens=count)
            mode = "update"
        else:
            everything = self.store.interactions(user_id)
            if not everything or (current is not None and everything[-1].seq <= current.through_seq):
                return None
            new = everything
            shown = _within_items(everything, self.scratch_prompt.history_items)
            messages = self.scratch_prompt.messages([as_interaction(i) for i in shown], count_tokens=count)
            mode = "scratch"
        completion = self.backend.complete([messages], max_new_tokens=self.max_new_tokens, temperature=self.temperature)[0]
        if not completion.text.strip():
            raise EmptyProfileError(f"user '{user_id}': the generator returned an empty profile")
        return self.store.write_profile(
            user_id, completion.text, generator=self.backend.name, mode=mode,
            previous_version=None if current is None else current.version, through_seq=new[-1].seq,
            source_seqs=[i.seq for i in shown], prompt_tokens=completion.prompt_tokens,
        )


def _within_items(items: list[StoredInteraction], max_items: int | None) -> list[StoredInteraction]:
    """The most recent ``max_items`` (what the prompt can show; its token budget may cut further)."""
    return items if max_items is None else items[-max_items:]


def as_interaction(item: StoredInteraction) -> Interaction:
    """A stored interaction in the shape prompts render."""
    return Interaction(id=str(item.seq), fields={"text": item.text}, source="jsonl", date=item.timestamp)
