"""Users and interactions: schema, loaders (LaMP, JSONL), held-out splits, synthetic users."""

from __future__ import annotations

from pathlib import Path

from bump_profiles.data.jsonl import load_jsonl, user_to_dict, write_users_jsonl
from bump_profiles.data.lamp import LampData, load_lamp_outputs, load_lamp_questions
from bump_profiles.data.render import render_history, render_interaction
from bump_profiles.data.schema import Interaction, User
from bump_profiles.data.split import Split, UserSplit, split_user, split_users
from bump_profiles.errors import DataError

FORMATS = ("lamp", "jsonl")  # file formats the loaders read (synthetic users are generated, not read)


def guess_format(path: str | Path) -> str:
    """``jsonl`` for .jsonl files, ``lamp`` for .json files."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".json":
        return "lamp"
    raise DataError("cannot tell the format from the extension: pass --format lamp or jsonl", path=path)


def load_users(path: str | Path, fmt: str | None = None) -> list[User]:
    """Users from a LaMP questions file or a JSONL log (format guessed from the extension)."""
    if not Path(path).exists():
        raise DataError("no such file", path=path)
    fmt = fmt or guess_format(path)
    if fmt == "lamp":
        return load_lamp_questions(path).users
    if fmt == "jsonl":
        return load_jsonl(path)
    raise DataError(f"unknown format '{fmt}' (use lamp or jsonl)", path=path)


def to_dataset(users: list[User]):
    """A ``datasets.Dataset`` with one row per user (``user_id``, ``interactions`` as texts, ``dates``)."""
    from datasets import Dataset

    return Dataset.from_list([
        {"user_id": u.id, "interactions": [it.text for it in u.interactions],
         "dates": [it.date or "" for it in u.interactions]}
        for u in users
    ])


__all__ = [
    "FORMATS", "DataError", "Interaction", "LampData", "Split", "User", "UserSplit", "guess_format",
    "load_jsonl", "load_lamp_outputs", "load_lamp_questions", "load_users", "render_history",
    "render_interaction", "split_user", "split_users", "to_dataset", "user_to_dict", "write_users_jsonl",
]
