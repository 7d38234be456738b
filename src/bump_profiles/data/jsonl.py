"""Generic JSONL logs: one interaction a line, or one user a line.

Interaction lines: ``{"user_id", "text", "timestamp"?, "id"?, "label"?, ...}``; anything else is
kept as metadata in ``Interaction.raw``. User lines: ``{"user_id", "interactions": [{"text", ...}],
...}``; extra keys are kept in ``User.extra``. The format is told from the first record.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bump_profiles.data.schema import Interaction, User, sort_by_date, tidy
from bump_profiles.errors import DataError

log = logging.getLogger(__name__)


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a DataError naming the line otherwise."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"not UTF-8 text (byte {exc.start})", path=path, record=f"line {lineno}") from exc
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON ({exc.msg} at column {exc.colno})", path=path, record=f"line {lineno}") from exc
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, got {type(obj).__name__}", path=path, record=f"line {lineno}")
            yield lineno, obj


def load_jsonl(path: str | Path) -> list[User]:
    """Users from a JSONL file of interactions or of users (told apart by an ``interactions`` key)."""
    rows = list(iter_jsonl(path))
    if not rows:
        raise DataError("no records", path=path)
    if "interactions" in rows[0][1]:
        users = _users_from_user_lines(rows, path)
    else:
        users = _users_from_interaction_lines(rows, path)
    dropped = truncated = 0
    for user in users:
        user.interactions, d, t = tidy(user.interactions)
        dropped, truncated = dropped + d, truncated + t
    if dropped:
        log.warning("%s: dropped %d duplicate interactions (same user, text and timestamp)", path, dropped)
    if truncated:
        log.warning("%s: cut %d interactions longer than the per-interaction character limit", path, truncated)
    return users


def _interaction(obj: dict, where: str, path: str | Path, user_id: str, n: int) -> Interaction:
    text = obj.get("text")
    if text is None:
        raise DataError("interaction has no 'text'", path=path, record=where, field="text")
    if not isinstance(text, str):
        raise DataError(f"'text' must be a string, got {type(text).__name__}", path=path, record=where, field="text")
    if not text.strip():
        raise DataError("interaction text is empty", path=path, record=where, field="text")
    stamp = obj.get("timestamp", obj.get("date"))
    if stamp is not None and not isinstance(stamp, (str, int, float)):
        raise DataError(f"'timestamp' must be a string or number, got {type(stamp).__name__}", path=path, record=where, field="timestamp")
    label = obj.get("label")
    score = obj.get("score")
    if score is not None and not isinstance(score, (int, float)):
        raise DataError(f"'score' must be a number, got {type(score).__name__}", path=path, record=where, field="score")
    return Interaction(
        id=str(obj.get("id", f"{user_id}-{n}")), fields={"text": text}, source="jsonl",
        label=None if label is None else str(label), score=None if score is None else float(score),
        date=None if stamp is None else str(stamp), raw=obj,
    )


def _user_id(obj: dict, where: str, path: str | Path) -> str:
    uid = obj.get("user_id")
    if uid is None:
        raise DataError("record has no 'user_id'", path=path, record=where, field="user_id")
    if not isinstance(uid, (str, int)) or isinstance(uid, bool) or str(uid).strip() == "":
        raise DataError(f"'user_id' must be a non-empty string or integer, got {uid!r}", path=path, record=where, field="user_id")
    return str(uid)


def _users_from_interaction_lines(rows: list[tuple[int, dict]], path: str | Path) -> list[User]:
    by_user: dict[str, list[Interaction]] = {}
    for lineno, obj in rows:
        where = f"line {lineno}"
        uid = _user_id(obj, where, path)
        items = by_user.setdefault(uid, [])
        items.append(_interaction(obj, where, path, uid, len(items)))
    return [User(id=uid, interactions=sort_by_date(items)) for uid, items in by_user.items()]


def _users_from_user_lines(rows: list[tuple[int, dict]], path: str | Path) -> list[User]:
    users: dict[str, User] = {}
    for lineno, obj in rows:
        where = f"line {lineno}"
        uid = _user_id(obj, where, path)
        if uid in users:
            raise DataError(f"duplicate user id '{uid}'", path=path, record=where, field="user_id")
        raw_items = obj.get("interactions")
        if not isinstance(raw_items, list):
            raise DataError("'interactions' must be a list", path=path, record=where, field="interactions")
        items = []
        for n, item in enumerate(raw_items):
            if not isinstance(item, dict):
                raise DataError("an interaction must be a JSON object", path=path, record=f"{where} interaction {n}")
            items.append(_interaction(item, f"{where} interaction {n}", path, uid, n))
        extra: dict[str, Any] = {k: v for k, v in obj.items() if k not in ("user_id", "interactions")}
        users[uid] = User(id=uid, interactions=sort_by_date(items), extra=extra)
    return list(users.values())


def write_users_jsonl(users: list[User], path: str | Path) -> None:
    """Write users one per line (the format :func:`load_jsonl` reads back), atomically."""
    from bump_profiles.data.atomic import atomic_write_text

    lines = [json.dumps(user_to_dict(u), ensure_ascii=False) for u in users]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def user_to_dict(user: User) -> dict[str, Any]:
    """A user as a JSON-serializable dict in the user-lines format."""
    items = [{"id": it.id, "text": it.text, **({"timestamp": it.date} if it.date else {}),
              **({"label": it.label} if it.label is not None else {}),
              **({"score": it.score} if it.score is not None else {})} for it in user.interactions]
    return {"user_id": user.id, "interactions": items, **{k: v for k, v in user.extra.items() if _jsonable(v)}}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
