"""What a profile read, recorded on its profiles.jsonl line, and the check that it never read what it
is judged on.

A profile that has read an item scores well on that item for the wrong reason. Every line that
:func:`bump_profiles.profiles.generate.generate_profiles` writes carries ``read``: the split (``k`` held out
and the cut date, or none), the number of interactions shown to the generator, a hash of them all,
and one short hash per interaction (its text fields, whitespace-normalised), so that any judged item
can be checked against it. Evaluations refuse a profile that read an item it is judged on, or, for a
LaMP question, anything outside that question's own profile.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from bump_profiles.data.schema import Interaction
from bump_profiles.errors import DataError

log = logging.getLogger(__name__)


def item_hash(it: Interaction) -> str:
    """12 hex digits of the SHA-256 of an interaction's text fields (sorted by name, spaces normalised)."""
    text = "\x1f".join(f"{k}={' '.join(v.split())}" for k, v in sorted(it.fields.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def record(history: Sequence[Interaction], heldout: Sequence[Interaction] | None = None) -> dict:
    """The ``read`` field of a profile line: the split, the interactions read, their hashes."""
    hashes = [item_hash(it) for it in history]
    split = None
    if heldout is not None:
        dates = [it.date for it in heldout if it.date]
        split = {"k": len(heldout), "cut_date": min(dates) if len(dates) == len(heldout) and dates else None}
    return {"split": split, "n": len(hashes), "hash": hashlib.sha256(" ".join(hashes).encode()).hexdigest()[:16],
            "items": hashes}


def load_reads(path: str | Path) -> dict[str, dict | None]:
    """``{user_id: read}`` from a profiles JSONL; ``None`` for lines written without provenance."""
    from bump_profiles.data.jsonl import iter_jsonl

    reads: dict[str, dict | None] = {}
    for lineno, row in iter_jsonl(path):
        read = row.get("read")
        if read is not None and not (isinstance(read, dict) and isinstance(read.get("items"), list)):
            raise DataError("'read' must be an object with an 'items' list of hashes", path=path,
                            record=f"line {lineno}", field="read")
        reads[str(row.get("user_id"))] = read
    return reads


def refuse_seen(path: str | Path, reads: dict[str, dict | None], judged: dict[str, Iterable[Interaction]]) -> None:
    """A DataError naming the file and the first user whose profile read an item it is judged on.

    ``judged``: user id -> the items that user's profile is about to be judged on. Profiles without
    provenance (written by other tools) cannot be checked: a warning says so.
    """
    unknown = [uid for uid in judged if uid in reads and reads[uid] is None]
    if unknown:
        log.warning("%s: %d profile(s) carry no provenance ('read'), e.g. '%s': cannot check that they did not read "
                    "the items they are judged on", path, len(unknown), unknown[0])
    for uid, items in judged.items():
        read = reads.get(uid)
        if not read:
            continue
        seen = set(read["items"]) & {item_hash(it) for it in items}
        if seen:
            raise DataError(
                f"the profile of user '{uid}' read {len(seen)} of the items it is judged on: generate profiles "
                "from the history only (bump-profiles profile --k K, the same k as here)", path=path, record=uid)


def refuse_outside(path: str | Path, reads: dict[str, dict | None], allowed: dict[str, Iterable[Interaction]]) -> None:
    """A DataError naming the file and the first profile that read anything outside what its key may
    see (a LaMP question: its own profile; a held-out user: its history)."""
    unknown = [key for key in allowed if key in reads and reads[key] is None]
    if unknown:
        log.warning("%s: %d profile(s) carry no provenance ('read'), e.g. '%s': cannot check what they read",
                    path, len(unknown), unknown[0])
    for key, items in allowed.items():
        read = reads.get(key)
        if not read:
            continue
        outside = set(read["items"]) - {item_hash(it) for it in items}
        if outside:
            raise DataError(
                f"the profile of '{key}' read {len(outside)} interaction(s) outside what '{key}' may see (for a LaMP "
                "question, its own profile; another question's profile can hold this question's answer): "
                "regenerate it with bump-profiles profile on this questions file", path=path, record=key)
