"""The profiles file: one JSON line per user, ``{"user_id", "profile", ...}`` (any generator's)."""

from __future__ import annotations

from pathlib import Path

from bump_profiles.data.jsonl import iter_jsonl
from bump_profiles.errors import DataError


def load_profiles(path: str | Path) -> dict[str, str]:
    """``{user_id: profile}`` from a profiles JSONL file (any generator's); a user twice is an error."""
    if not Path(path).exists():
        raise DataError("no such file", path=path)
    profiles: dict[str, str] = {}
    for lineno, row in iter_jsonl(path):
        uid, text = row.get("user_id"), row.get("profile")
        if not isinstance(uid, (str, int)) or isinstance(uid, bool):
            raise DataError("needs a string 'user_id'", path=path, record=f"line {lineno}", field="user_id")
        if not isinstance(text, str):
            raise DataError("needs a string 'profile'", path=path, record=f"line {lineno}", field="profile")
        if str(uid) in profiles:
            raise DataError(f"user '{uid}' has two profiles", path=path, record=f"line {lineno}", field="user_id")
        profiles[str(uid)] = text
    return profiles
