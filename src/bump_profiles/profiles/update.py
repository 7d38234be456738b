"""Incremental profiles: a new profile from the previous one plus the interactions since it was written.

Two uses of the same :class:`~bump_profiles.profiles.prompts.UpdatePrompt`:

- **Files** (``bump-profiles profile --update PREVIOUS.jsonl``): :func:`update_profiles` reads the
  previous profiles and a (newer) log and writes one line per user. Which interactions are new is
  read from the previous line's provenance: ``read`` (the hashes of every interaction the profile
  accounts for, :mod:`bump_profiles.profiles.provenance`; every line this module or ``profile`` writes has it)
  or ``through_date`` (the newest interaction it saw), or else ``--since DATE`` for the whole file. An
  updated profile's ``read`` is the previous one's plus the new interactions its prompt showed: the
  oldest new ones that fit the prompt's budgets; the rest (``unread`` on the line) stay new for the next
  ``--update``, so a backlog is read over successive updates and nothing is marked read unseen. A user with no previous
  profile gets one from scratch (``mode: scratch``); one with nothing new keeps the previous text
  (``mode: carried``, no generation).
- **Training** (``prompt.mode: update``): the older part of each training user's history is
  summarised by a previous profile from ``prompt.previous_profiles``, and the
  ``prompt.update_recent`` most recent history items are the new interactions. The previous
  profiles must have been written from the older part only: ``bump-profiles profile --k K`` with
  ``K = data.k + prompt.update_recent`` on the same data writes exactly that (the held-out items
  and the recent part are both unseen by it, and the provenance of that file is checked for it). This is the simplest design that keeps the held-out
  items unseen and needs no generation inside training; the cost is one ``profile`` run before it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bump_profiles.data.render import fitting
from bump_profiles.data.schema import Interaction, User, date_key
from bump_profiles.data.split import UserSplit
from bump_profiles.engines.backends import Backend, Messages, token_counter
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.generate import GenerationSummary, read_done, writer_lock
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.profiles.provenance import item_hash, load_reads, record, refuse_seen


def _read_after(previous: dict[str, Any], history: Sequence[Interaction], new: Sequence[Interaction],
                shown: Sequence[Interaction]) -> dict:
    """Provenance of an updated profile: what the previous one accounted for plus the new interactions
    its prompt showed (``shown``); new ones it did not show stay new for the next update.

    Without the previous ``read`` (a ``through_date`` or ``--since`` line), every interaction up to
    the cut counts as read: the previous profile may have seen any of them.
    """
    new_ids = {id(it) for it in new}
    prior = [it for it in history if id(it) not in new_ids]
    read = record([*prior, *shown])
    if previous.get("read"):
        read["items"] = sorted(set(previous["read"]["items"]) | set(read["items"]))
        read["n"] = len(read["items"])
    return read


def read_previous(path: str | Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """``{user_id: (line number, row)}`` of a profiles JSONL file; each row needs a string ``profile``."""
    from bump_profiles.data.jsonl import iter_jsonl

    if not Path(path).exists():
        raise DataError("no such file", path=path)
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for lineno, row in iter_jsonl(path):
        uid = row.get("user_id")
        if not isinstance(uid, (str, int)) or isinstance(uid, bool):
            raise DataError("needs a string 'user_id'", path=path, record=f"line {lineno}", field="user_id")
        if not isinstance(row.get("profile"), str):
            raise DataError("needs a string 'profile'", path=path, record=f"line {lineno}", field="profile")
        if str(uid) in rows:
            raise DataError(f"user '{uid}' has two profiles", path=path, record=f"line {lineno}", field="user_id")
        rows[str(uid)] = (lineno, row)
    return rows


def new_since(history: Sequence[Interaction], row: dict[str, Any], *, path: str | Path, lineno: int,
              since: str | None = None) -> list[Interaction]:
    """The interactions of ``history`` (time order) that the previous profile ``row`` did not cover."""
    where = {"path": path, "record": f"line {lineno}"}
    read = row.get("read")
    if read is not None:
        if not (isinstance(read, dict) and isinstance(read.get("items"), list)):
            raise DataError("'read' must be an object with an 'items' list of hashes", field="read", **where)
        seen = set(read["items"])
        return [it for it in history if item_hash(it) not in seen]
    cutoff = since or row.get("through_date")
    if cutoff is None:
        raise DataError("no provenance to tell new interactions from old: the line needs 'read' or "
                        "'through_date', or pass --since DATE", **where)
    try:
        limit = date_key(str(cutoff))
    except ValueError as exc:
        raise DataError(f"not a date: {cutoff!r}", field="through_date", **where) from exc
    if any(it.date is None for it in history):
        raise DataError(f"user '{row['user_id']}': interactions without dates cannot be compared with {cutoff!r}", **where)
    return [it for it in history if date_key(it.date) > limit]


def update_profiles(
    items: Sequence[UserSplit] | Sequence[User],
    previous_path: str | Path,
    backend: Backend,
    out_path: str | Path,
    *,
    update_prompt: UpdatePrompt,
    scratch_prompt: ProfilePrompt,
    since: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    temperature: float = 0.0,
) -> GenerationSummary:
    """Write every user's next profile to ``out_path`` (resumable: users already there are skipped;
    ``<out>.lock`` refuses a second writer of the same file, as in :func:`~bump_profiles.profiles.generate.generate_profiles`)."""
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(Path(out_path)):
        return _update_locked(items, previous_path, backend, out_path, update_prompt=update_prompt,
                              scratch_prompt=scratch_prompt, since=since, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, temperature=temperature)


def _update_locked(items: Sequence[UserSplit] | Sequence[User], previous_path: str | Path, backend: Backend,
                   out_path: str | Path, *, update_prompt: UpdatePrompt, scratch_prompt: ProfilePrompt,
                   since: str | None, batch_size: int, max_new_tokens: int, temperature: float) -> GenerationSummary:
    start = time.perf_counter()
    previous = read_previous(previous_path)
    done = read_done(out_path, model=backend.name)
    count = token_counter(backend)
    jobs: list[tuple[dict[str, Any], Messages | None]] = []
    for item in items:
        uid, history = (item.user.id, item.history) if isinstance(item, UserSplit) else (item.id, item.interactions)
        if uid in done or not history:
            continue
        row: dict[str, Any] = {"user_id": uid, "model": backend.name, "through_date": history[-1].date}
        if uid not in previous:
            jobs.append(({**row, "mode": "scratch", "new_interactions": len(history), "read": record(history)},
                         scratch_prompt.messages(history, count_tokens=count)))
            continue
        lineno, prev = previous[uid]
        new = new_since(history, prev, path=previous_path, lineno=lineno, since=since)
        # the oldest new items the prompt holds: what it shows is what is recorded as read (a longer
        # backlog is read over successive updates; ``unread`` says how much is left)
        shown = new[: fitting(new, max_items=update_prompt.history_items, max_tokens=update_prompt.history_tokens,
                              count_tokens=count)] if new else []
        row.update(previous_model=prev.get("model"), new_interactions=len(new), unread=len(new) - len(shown),
                   read=_read_after(prev, history, new, shown))
        if not new:
            jobs.append(({**row, "mode": "carried", "profile": prev["profile"], "prompt_tokens": 0,
                          "profile_tokens": prev.get("profile_tokens"), "hit_limit": bool(prev.get("hit_limit"))}, None))
        else:
            jobs.append(({**row, "mode": "update"}, update_prompt.messages(prev["profile"], shown, count_tokens=count)))

    written = hit = 0
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as handle:
        for b in range(0, len(jobs), batch_size):
            chunk = jobs[b : b + batch_size]
            to_run = [(r, m) for r, m in chunk if m is not None]
            completions = backend.complete([m for _, m in to_run], max_new_tokens=max_new_tokens,
                                           temperature=temperature) if to_run else []
            for (r, _), c in zip(to_run, completions, strict=True):
                r.update(profile=c.text, prompt_tokens=c.prompt_tokens, profile_tokens=c.completion_tokens,
                         hit_limit=c.hit_limit)
                hit += c.hit_limit
            for r, _ in chunk:
                handle.write(json.dumps(r, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            written += len(chunk)
    return GenerationSummary(str(out), len(items), len(done), written, hit, time.perf_counter() - start)


@dataclass
class UpdateTrainingPrompt:
    """Training prompts in update mode: previous profile (of the older history) + the recent items."""

    update: UpdatePrompt
    previous: dict[str, str]
    recent: int
    source: str

    def split_messages(self, split: UserSplit, count_tokens: Callable[[str], int] | None = None) -> Messages:
        return self.update.messages(self.previous[split.user.id], split.history[-self.recent :], count_tokens=count_tokens)


def training_prompt(cfg: Any, splits: Sequence[UserSplit]) -> ProfilePrompt | UpdateTrainingPrompt:
    """The generator's training prompt for ``cfg`` (a PromptConfig); update mode checks every user has a
    previous profile and a history longer than the recent part, before any model loads."""
    if cfg.mode == "scratch":
        return cfg  # a PromptConfig is a ProfilePrompt
    if cfg.previous_from == "policy":
        raise ConfigError("prompt.previous_from=policy: the previous profiles come from the policy "
                          "(bump_profiles.train.sequential.policy_prompt), not from a file")
    budgets = dict(max_words=cfg.max_words, history_items=cfg.history_items, history_tokens=cfg.history_tokens)
    from bump_profiles.data.profiles import load_profiles

    previous = load_profiles(cfg.previous_profiles)
    missing = [s.user.id for s in splits if s.user.id not in previous]
    if missing:
        raise ConfigError(
            f"prompt.previous_profiles ({cfg.previous_profiles}) has no profile for {len(missing)} training user(s), "
            f"e.g. {missing[:3]}: write it with `bump-profiles profile --k <data.k + prompt.update_recent>` on the same data")
    # The previous profile stands for the older history only: it must not have read the recent part
    # (the new interactions of the update) nor the held-out items the reward ranks.
    refuse_seen(cfg.previous_profiles, load_reads(cfg.previous_profiles),
                {s.user.id: [*s.history[-cfg.update_recent :], *s.heldout] for s in splits})
    short = [s.user.id for s in splits if len(s.history) <= cfg.update_recent]
    if short:
        raise ConfigError(f"prompt.update_recent={cfg.update_recent}: {len(short)} user(s) have no older history "
                          f"to summarise, e.g. {short[:3]}; lower it or leave those users out of data.path")
    return UpdateTrainingPrompt(UpdatePrompt(cfg.update_template, **budgets), previous, cfg.update_recent,
                                str(cfg.previous_profiles))
