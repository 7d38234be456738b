"""Profile generation at scale: one profile per user, from any backend of :mod:`bump_profiles.engines.backends`,
resumable after a crash.

:func:`generate_profiles` appends one JSON line per user and flushes each batch to disk, so a crash
loses at most the batch in flight; a rerun skips the users already written and repairs a truncated
last line, so every user ends up exactly once. A lock file beside the output refuses a second
writer while a run is writing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bump_profiles.data.schema import Interaction, User
from bump_profiles.data.split import UserSplit
from bump_profiles.engines.backends import Backend, token_counter
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.profiles.prompts import ProfilePrompt
from bump_profiles.profiles.provenance import record

log = logging.getLogger(__name__)


@dataclass
class GenerationSummary:
    """What a :func:`generate_profiles` run did."""

    out: str
    users: int  # users asked for
    already_done: int  # found in the output file and skipped
    written: int  # profiles written by this run
    hit_limit: int  # of those written, cut at max_new_tokens
    seconds: float

    @property
    def users_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def read_done(out_path: str | Path, *, model: str | None = None) -> set[str]:
    """User ids already in ``out_path``, after cutting a truncated last line left by a crash.

    Only the last line can be partial (each line is written whole and flushed before the next), so
    a file that does not end with a newline loses its tail back to the last newline. Any other bad
    line is not ours to repair and raises a DataError. When ``model`` is given, lines written by
    another model are a ConfigError: resuming would mix two generators in one file.
    """
    path = Path(out_path)
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: dropping a truncated last line (%d bytes) left by an interrupted run", path, len(data) - keep)
        with path.open("r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        data = data[:keep]
    done: set[str] = set()
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"not a valid profile line ({exc})", path=path, record=f"line {lineno}") from exc
        if not isinstance(row, dict) or not isinstance(row.get("user_id"), str):
            raise DataError("a profile line needs a string 'user_id'", path=path, record=f"line {lineno}", field="user_id")
        if model is not None and row.get("model", model) != model:
            raise ConfigError(
                f"{path} holds profiles from model '{row['model']}' but this run uses '{model}': "
                "choose another --out, or delete the file to start over"
            )
        done.add(row["user_id"])
    return done


def generate_profiles(
    splits_or_users: Sequence[UserSplit] | Sequence[User],
    backend: Backend,
    prompt: ProfilePrompt,
    out_path: str | Path,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 96,
    temperature: float = 0.0,
    progress: bool = True,
) -> GenerationSummary:
    """Write a profile for every user not yet in ``out_path``; return what was done.

    A :class:`UserSplit` is profiled from its history only (its held-out items stay unseen); a
    :class:`User` from all its interactions. Users are processed longest prompt first in batches of
    ``batch_size`` (similar lengths pad little; a memory problem shows in the first batch). Each line:
    ``{"user_id", "profile", "model", "prompt_tokens", "profile_tokens", "hit_limit", "read"}``, where
    ``read`` is what the generator read (:func:`bump_profiles.profiles.provenance.record`).
    """
    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError("batch_size and max_new_tokens must be at least 1")
    start = time.perf_counter()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(out_path):
        return _generate_locked(splits_or_users, backend, prompt, out_path, start, batch_size=batch_size,
                                max_new_tokens=max_new_tokens, temperature=temperature, progress=progress)


@contextmanager
def writer_lock(out_path: Path) -> Iterator[None]:
    """Hold ``<out>.lock`` for the whole run: a second writer would interleave lines and duplicate users."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{out_path}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise ConfigError(
            f"another run is writing {out_path} (lock {lock.lock_file}): wait for it to finish or choose another --out"
        ) from exc
    try:
        yield
    finally:
        lock.release()


def _generate_locked(
    splits_or_users: Sequence[UserSplit] | Sequence[User], backend: Backend, prompt: ProfilePrompt, out_path: Path,
    start: float, *, batch_size: int, max_new_tokens: int, temperature: float, progress: bool,
) -> GenerationSummary:
    from tqdm.auto import tqdm

    done = read_done(out_path, model=backend.name)
    items = [history_of(x) for x in splits_or_users]
    seen: set[str] = set()
    for uid, _ in items:
        if uid in seen:
            raise DataError(f"user '{uid}' appears twice in the input", field="user_id")
        seen.add(uid)
    pending = [(uid, hist) for uid, hist in items if uid not in done]
    reads = {uid: record(x.history, x.heldout) if isinstance(x, UserSplit) else record(x.interactions)
             for (uid, _), x in zip(items, splits_or_users, strict=True)}
    count = token_counter(backend)
    messages = [prompt.messages(hist, count_tokens=count) for _, hist in pending]
    sizes = [count(m[-1]["content"]) if count else len(m[-1]["content"]) for m in messages]
    order = sorted(range(len(pending)), key=lambda i: -sizes[i])

    written = hit = 0
    with out_path.open("a", encoding="utf-8") as handle, tqdm(
        total=len(pending), unit="user", desc="profiles", disable=not progress
    ) as bar:
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            completions = backend.complete([messages[i] for i in chunk], max_new_tokens=max_new_tokens, temperature=temperature)
            for i, c in zip(chunk, completions, strict=True):
                row = {"user_id": pending[i][0], "profile": c.text, "model": backend.name,
                       "prompt_tokens": c.prompt_tokens, "profile_tokens": c.completion_tokens, "hit_limit": c.hit_limit,
                       "read": reads[pending[i][0]]}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                hit += c.hit_limit
            handle.flush()
            os.fsync(handle.fileno())
            written += len(chunk)
            bar.update(len(chunk))
    return GenerationSummary(str(out_path), len(items), len(items) - len(pending), written, hit, time.perf_counter() - start)


def history_of(item: UserSplit | User) -> tuple[str, list[Interaction]]:
    """``(user id, what a generator may read)``: a split's history, or all of a user's interactions."""
    if isinstance(item, UserSplit):
        return item.user.id, item.history
    return item.id, item.interactions

