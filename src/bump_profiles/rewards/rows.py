"""What the reward functions share: the text of a TRL completion, the row a BUMP reward scores, and
the gathering of every process's rows so a batch is scored as a whole."""

from __future__ import annotations

from typing import Any, NamedTuple

from bump_profiles.errors import BumpError


class RewardRow(NamedTuple):
    """One completion to score: whose it is, their held-out texts, their history texts (for the copy
    guards; None without a history column) and the profile text."""

    user_id: str
    heldout: list[str]
    history: list[str] | None
    profile: str


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a chat message list whose last message is the reply."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise BumpError(f"cannot read a completion of type {type(completion).__name__}: expected a string or chat messages")


def gather_rows(rows: list[RewardRow]) -> tuple[list[RewardRow], int]:
    """Every process's rows in rank order, and where this process's rows start (single process: as is)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, 0
    from accelerate.utils import gather_object

    sizes = gather_object([len(rows)])
    return gather_object(rows), sum(sizes[: dist.get_rank()])
