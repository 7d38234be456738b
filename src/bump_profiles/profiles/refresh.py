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

``notes`` mode (rolling notes, docs/serving.md) never summarizes a summary: each round of new
interactions gets a note of its own, the scratch prompt over those items alone, greedy, written once
and kept (the store's ``notes``); the profile is the merge (``merge_template``) of the user's latest
``notes_kept`` notes, or the one note itself. A user's first note reads what scratch mode shows;
later ones read the interactions after the newest note, chained like an update over a long backlog
(one note per chunk). A note leaves the profile ``notes_kept`` rounds later, so the profile follows
interests that move. Many users: their notes chunk round by chunk round, then one merge call.

An ``update_backend`` (update mode) writes the updates while ``backend`` writes a user's first profile: a
trained update writer (docs/drift.md) learned the update prompt only, so the first profile stays with the
generator that writes from scratch, as the drift benchmark's ``trained`` chain does. Each version records
the name of the backend that wrote it.

The new version is written in one transaction on top of the version it was built on; interactions
that arrive during generation have larger ``seq`` and stay "new" for the next refresh. The store
makes a read wait for a write of the same user in progress, so no smaller ``seq`` can appear later.

Many users are refreshed with one batched generation call per round
(:meth:`Refresher.refresh_many`); the Ray path (:mod:`bump_profiles.scale.refresh`) reads and writes
through the same :meth:`Refresher.prepare` and :meth:`Refresher.write` (update and scratch modes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bump_profiles.data.render import fitting
from bump_profiles.data.schema import Interaction
from bump_profiles.engines.backends import Backend, Completion, Messages, token_counter
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.chunked import ChunkedPrompt
from bump_profiles.profiles.prompts import PORTRAIT_MERGE_INSTRUCTION, ProfilePrompt, UpdatePrompt
from bump_profiles.store import ProfileStore, StaleWriteError, StoredInteraction, StoredNote, StoredProfile

MODES = ("update", "scratch", "notes")


class EmptyProfileError(RuntimeError):
    """The generator returned no text: nothing is stored, the previous version stays current."""


@dataclass
class Refresher:
    """Generates and stores a user's next profile version with ``backend``."""

    store: ProfileStore
    backend: Backend
    mode: str = "update"  # "update": incremental when a previous profile exists; "scratch": always from scratch;
    # "notes": a note per round of new interactions, the profile merged from the latest ``notes_kept``
    scratch_prompt: ProfilePrompt = field(default_factory=ProfilePrompt)
    update_prompt: UpdatePrompt = field(default_factory=UpdatePrompt)
    max_new_tokens: int = 96
    temperature: float = 0.0  # of the profile (update, scratch, merge); notes are always greedy
    notes_kept: int = 3
    merge_template: str = PORTRAIT_MERGE_INSTRUCTION
    update_backend: Backend | None = None  # update mode: writes the updates (None: ``backend``)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.update_backend is not None and self.mode != "update":
            raise ConfigError(f"an update writer is used in update mode only, not in {self.mode} mode "
                              "(nothing there is written by the update prompt)")
        for name, prompt in (("scratch", self.scratch_prompt), ("update", self.update_prompt)):
            if prompt.history_items is None:  # the item budget is what bounds a refresh's reads
                raise ConfigError(f"the {name} prompt of a refresh needs history_items (at least 1), not None")
        if isinstance(self.notes_kept, bool) or not isinstance(self.notes_kept, int) or self.notes_kept < 1:
            raise ConfigError(f"notes_kept: must be at least 1, got {self.notes_kept!r}")
        self.merge_prompt = ChunkedPrompt(self.scratch_prompt, merge_template=self.merge_template)

    def refresh(self, user_id: str) -> StoredProfile | None:
        """The newest version written, or None when the user has no interaction the current profile misses."""
        result = self.refresh_many([user_id])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def refresh_many(self, user_ids: Sequence[str]) -> list[StoredProfile | None | Exception]:
        """Refresh several users with one batched generation call per round (a round per chunk of a
        chained backlog; in notes mode, the notes' rounds then one merge call); per user, in order: the
        newest version written, None (nothing new), or the error about that user (an empty generation, a
        stale write) that stopped it. Any other error (database, model) is raised."""
        results: dict[str, StoredProfile | None | Exception] = dict.fromkeys(user_ids)
        targets: dict[str, int] = {}
        active = list(results)
        while active:
            pending = [p for p in (self.prepare(u, target=targets.get(u)) for u in active) if p is not None]
            if not pending:
                break
            completions = self._complete_pending(pending)
            active = []
            for p, c in zip(pending, completions, strict=True):
                targets[p.user_id] = p.target
                try:
                    if p.mode == "note":  # the profile comes with the merge, below
                        written: StoredProfile | StoredNote = self.write_note(p, c.text, c.prompt_tokens)
                    else:
                        written = results[p.user_id] = self.write(p, c.text, c.prompt_tokens)
                except (EmptyProfileError, StaleWriteError) as exc:
                    results[p.user_id] = exc
                    continue
                if p.mode in ("update", "note") and written.through_seq < p.target:
                    active.append(p.user_id)  # a chained backlog: the next chunk, on this version or note
        if self.mode == "notes":
            self._merge_many([u for u in user_ids if not isinstance(results[u], Exception)], results)
        return [results[u] for u in user_ids]

    def _merge_many(self, user_ids: Sequence[str], results: dict[str, StoredProfile | None | Exception]) -> None:
        """Each user's profile from their latest notes, one generation call for those with more than one."""
        merges = [m for m in map(self.prepare_merge, user_ids) if m is not None]
        asked = [m for m in merges if len(m.notes) > 1]
        completions = iter(self._complete([self.merge_prompt.merge_messages([n.text for n in m.notes]) for m in asked])
                           if asked else [])
        for m in merges:
            c = next(completions) if len(m.notes) > 1 else None
            try:
                results[m.user_id] = self.write_merge(m, m.notes[0].text if c is None else c.text,
                                                      None if c is None else c.prompt_tokens)
            except (EmptyProfileError, StaleWriteError) as exc:
                results[m.user_id] = exc

    def prepare(self, user_id: str, *, target: int | None = None) -> PendingRefresh | None:
        """What the user's next version (notes mode: next note) is built from, read from the store; None
        when nothing is new.

        Update mode: the previous profile and the oldest unread interactions up to ``target`` (the
        newest seq when the refresh began; found here when None) that the prompt's budgets hold.
        Scratch mode: the newest interactions that fit. Notes mode: a first note as scratch mode, then
        the oldest interactions after the newest note, as update mode (within both prompts' budgets)."""
        if self.mode == "notes":
            return self._prepare_note(user_id, target)
        current = self.store.current_profile(user_id)
        if current is None or self.mode == "scratch":
            return self._newest(user_id, "scratch", current)
        shown, target = self._oldest(user_id, current.through_seq, target, self.update_prompt.history_items,
                                     self.update_prompt.history_tokens, self._count("update"))
        return PendingRefresh(user_id, "update", current.text, shown, current.version, target) if shown else None

    def _prepare_note(self, user_id: str, target: int | None) -> PendingRefresh | None:
        newest = self.store.latest_notes(user_id, 1)
        if not newest:
            return self._newest(user_id, "note", self.store.current_profile(user_id))
        after = newest[-1].through_seq
        shown, target = self._oldest(user_id, after, target,
                                     _smaller(self.scratch_prompt.history_items, self.update_prompt.history_items),
                                     _smaller(self.scratch_prompt.history_tokens, self.update_prompt.history_tokens),
                                     self._count())
        return PendingRefresh(user_id, "note", "", shown, None, target, after_note=after) if shown else None

    def _newest(self, user_id: str, mode: str, current: StoredProfile | None) -> PendingRefresh | None:
        """The newest interactions that fit the scratch prompt; None when the current profile read them."""
        recent = self.store.interactions(user_id, limit=self.scratch_prompt.history_items, newest=True)
        if not recent or (current is not None and recent[-1].seq <= current.through_seq):
            return None
        newest_first = [as_interaction(i) for i in reversed(recent)]
        shown = recent[len(recent) - fitting(newest_first, max_tokens=self.scratch_prompt.history_tokens,
                                             count_tokens=self._count()):]
        return PendingRefresh(user_id, mode, "", shown, None if current is None else current.version, recent[-1].seq)

    def _oldest(self, user_id: str, after: int, target: int | None, items: int | None, tokens: int | None,
                count: Callable[[str], int] | None) -> tuple[list[StoredInteraction], int]:
        """The oldest interactions after seq ``after``, up to ``target``, within the budgets; and ``target``."""
        new = self.store.interactions(user_id, after_seq=after, limit=items)
        if target is None:  # the backlog as it stood at the start: later arrivals wait for the next refresh
            newest = self.store.interactions(user_id, after_seq=after, limit=1, newest=True)
            target = newest[-1].seq if newest else after
        new = [i for i in new if i.seq <= target]
        return new[: fitting([as_interaction(i) for i in new], max_tokens=tokens, count_tokens=count)], target

    def prepare_merge(self, user_id: str) -> PendingMerge | None:
        """The user's latest notes to merge, unless the current profile is already their merge."""
        current = self.store.current_profile(user_id)
        notes = self.store.latest_notes(user_id, self.notes_kept)
        if not notes or (current is not None and current.mode == "notes" and current.through_seq >= notes[-1].through_seq):
            return None
        return PendingMerge(user_id, notes, None if current is None else current.version)

    def write(self, pending: PendingRefresh, text: str, prompt_tokens: int | None) -> StoredProfile:
        """Store ``text`` as the user's next version, on top of the version it was built on (a
        StaleWriteError if another refresh wrote one meanwhile: a retry never writes twice)."""
        if not text.strip():
            raise EmptyProfileError(f"user '{pending.user_id}': the generator returned an empty profile")
        return self.store.write_profile(
            pending.user_id, text, generator=self._writer(pending.mode).name, mode=pending.mode,
            previous_version=pending.previous_version, through_seq=max(i.seq for i in pending.shown),
            source_seqs=[i.seq for i in pending.shown], prompt_tokens=prompt_tokens,
        )

    def write_note(self, pending: PendingRefresh, text: str, prompt_tokens: int | None) -> StoredNote:
        """Store ``text`` as the user's next note, after the note it followed (else a StaleWriteError)."""
        if not text.strip():
            raise EmptyProfileError(f"user '{pending.user_id}': the generator returned an empty note")
        return self.store.write_note(pending.user_id, text, generator=self.backend.name,
                                     source_seqs=[i.seq for i in pending.shown], prompt_tokens=prompt_tokens,
                                     after_seq=pending.after_note)

    def write_merge(self, pending: PendingMerge, text: str, prompt_tokens: int | None) -> StoredProfile:
        """Store the merge of the notes as the next version: it accounts for what the notes read."""
        if not text.strip():
            raise EmptyProfileError(f"user '{pending.user_id}': the generator returned an empty profile")
        one = len(pending.notes) == 1  # the profile is the note itself, by the note's writer
        return self.store.write_profile(
            pending.user_id, text, generator=pending.notes[0].generator if one else self.backend.name, mode="notes",
            previous_version=pending.previous_version, through_seq=pending.notes[-1].through_seq,
            source_seqs=sorted({s for n in pending.notes for s in n.source_seqs}), prompt_tokens=prompt_tokens,
        )

    def _complete_pending(self, pending: Sequence[PendingRefresh]) -> list[Completion]:
        """Each pending refresh's completion, one generation call per writer (updates to ``update_backend``)."""
        out: dict[int, Completion] = {}
        for writer in {id(w): w for w in (self._writer(p.mode) for p in pending)}.values():  # by identity
            mine = [k for k, p in enumerate(pending) if self._writer(p.mode) is writer]
            count = token_counter(writer)
            messages = [pending[k].messages(self.scratch_prompt, self.update_prompt, count) for k in mine]
            out.update(zip(mine, self._complete(messages, greedy=self.mode == "notes", backend=writer), strict=True))
        return [out[k] for k in range(len(pending))]

    def _complete(self, messages: list[Messages], *, greedy: bool = False,
                  backend: Backend | None = None) -> list[Completion]:
        return (backend or self.backend).complete(messages, max_new_tokens=self.max_new_tokens,
                                                  temperature=0.0 if greedy else self.temperature)

    def _writer(self, mode: str) -> Backend:
        """The backend that writes a ``mode`` prompt: the update writer's for updates, when there is one."""
        return self.update_backend if mode == "update" and self.update_backend is not None else self.backend

    def _count(self, mode: str = "scratch") -> Callable[[str], int] | None:
        return token_counter(self._writer(mode))


def _smaller(a: int | None, b: int | None) -> int | None:
    """The tighter of two budgets (None: no budget)."""
    return b if a is None else a if b is None else min(a, b)


@dataclass
class PendingMerge:
    """A user's notes-mode profile between reading the latest notes and writing their merge."""

    user_id: str
    notes: list[StoredNote]  # oldest first
    previous_version: int | None


@dataclass
class PendingRefresh:
    """A user's refresh between reading the store and writing the new version."""

    user_id: str
    mode: str  # "update" (previous profile + unread interactions), "scratch" or "note" (scratch prompt, a note)
    previous: str  # the previous profile's text (update mode)
    shown: list[StoredInteraction]  # exactly what the prompt shows, oldest first
    previous_version: int | None
    target: int  # update, note: the newest seq of the backlog this refresh reads up to
    after_note: int | None = None  # note: the through_seq of the newest note it follows (None: the first)

    def messages(self, scratch: ProfilePrompt, update: UpdatePrompt, count: Callable[[str], int] | None) -> Messages:
        items = [as_interaction(i) for i in self.shown]
        if self.mode == "update":
            return update.messages(self.previous, items, count_tokens=count)
        return scratch.messages(items, count_tokens=count)


def as_interaction(item: StoredInteraction) -> Interaction:
    """A stored interaction in the shape prompts render."""
    return Interaction(id=str(item.seq), fields={"text": item.text}, source="jsonl", date=item.timestamp)
