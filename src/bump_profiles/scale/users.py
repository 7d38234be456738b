"""One row per user for the Ray path, built with the same loader rules, split and provenance as
single-process ``profile``; and the chat messages of such a row (the same prompts).

A row is plain columns so that Arrow can carry it between Ray tasks: ``user_id``, ``kind``
(``scratch``, ``update`` or ``skipped``: too few interactions for the split), ``history`` (the
interactions the generator reads, JSON), ``previous`` (the previous profile, update only) and
``read`` (the provenance record, JSON). Nothing here imports Ray.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bump_profiles.data.jsonl import _interaction, _user_id
from bump_profiles.data.schema import Interaction, User, sort_by_date, tidy
from bump_profiles.data.split import split_user
from bump_profiles.errors import DataError
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt
from bump_profiles.profiles.provenance import record


def user_from_records(records: Sequence[tuple[str, int, str]]) -> User:
    """A user from its raw log records ``(path, line, JSON text)``, in file order, exactly as
    :func:`bump_profiles.data.jsonl.load_jsonl` builds it (interaction lines or one user line)."""
    records = sorted(records, key=lambda r: (r[0], r[1]))
    parsed = [(path, line, json.loads(text)) for path, line, text in records]
    path, line, first = parsed[0]
    uid = _user_id(first, f"line {line}", path)
    if "interactions" in first:  # the one-user-a-line format
        if len(parsed) > 1:
            raise DataError(f"duplicate user id '{uid}' (also {parsed[1][0]} line {parsed[1][1]})", path=path,
                            record=f"line {line}", field="user_id")
        raw = first["interactions"]
        if not isinstance(raw, list):
            raise DataError("'interactions' must be a list", path=path, record=f"line {line}", field="interactions")
        items = []
        for n, item in enumerate(raw):
            if not isinstance(item, dict):
                raise DataError("an interaction must be a JSON object", path=path, record=f"line {line} interaction {n}")
            items.append(_interaction(item, f"line {line} interaction {n}", path, uid, n))
    else:
        items = [_interaction(obj, f"line {ln}", p, uid, n) for n, (p, ln, obj) in enumerate(parsed)]
    kept, _, _ = tidy(sort_by_date(items))
    return User(id=uid, interactions=kept)


def scratch_row(user: User, k: int = 0) -> dict[str, Any]:
    """The row of a user profiled from scratch: everything, or the history left after holding out the
    ``k`` most recent interactions (``kind: skipped`` when the user has too few)."""
    if k > 0:
        if len(user.interactions) < k + 1:
            return {"user_id": user.id, "kind": "skipped", "history": "[]", "previous": "", "read": "null"}
        split = split_user(user, k, strategy="recent")
        history, read = split.history, record(split.history, split.heldout)
    else:
        history, read = user.interactions, record(user.interactions)
    return {"user_id": user.id, "kind": "scratch", "history": dump_interactions(history), "previous": "",
            "read": json.dumps(read)}


def dump_interactions(items: Sequence[Interaction]) -> str:
    return json.dumps([{"id": it.id, "fields": it.fields, "source": it.source, "label": it.label, "score": it.score,
                        "date": it.date} for it in items], ensure_ascii=False)


def load_interactions(text: str) -> list[Interaction]:
    return [Interaction(**d) for d in json.loads(text)]


def row_messages(row: dict[str, Any], scratch: ProfilePrompt, update: UpdatePrompt,
                 count_tokens: Callable[[str], int] | None) -> list[dict[str, str]]:
    """The chat messages of a row: the scratch prompt on its history, or the update prompt on its
    previous profile and new interactions."""
    history = load_interactions(row["history"])
    if row["kind"] == "update":
        return update.messages(row["previous"], history, count_tokens=count_tokens)
    return scratch.messages(history, count_tokens=count_tokens)


def profile_line(row: dict[str, Any]) -> dict[str, Any]:
    """A shard row as the line ``profile`` writes (``read`` parsed back from its JSON column)."""
    keys = ("user_id", "profile", "model", "prompt_tokens", "profile_tokens", "hit_limit")
    return {**{k: row[k] for k in keys}, "read": json.loads(row["read"])}
