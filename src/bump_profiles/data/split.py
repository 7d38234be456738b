"""Held-out splits: per user, k interactions held out (never shown to the generator), the rest history."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bump_profiles.data.schema import Interaction, User

STRATEGIES = ("recent", "random")  # which interactions are held out


@dataclass
class UserSplit:
    """One user's history (what the generator reads) and held-out interactions (what the judge ranks)."""

    user: User
    history: list[Interaction]
    heldout: list[Interaction]


@dataclass
class Split:
    """Splits of the users long enough, and the ids of those skipped (fewer than k+1 interactions)."""

    users: list[UserSplit]
    skipped: list[str]


def split_user(user: User, k: int, *, strategy: str = "recent", seed: int = 0, offset: int = 0) -> UserSplit:
    """Hold out k interactions of one user.

    ``recent``: the k most recent, after skipping the ``offset`` most recent (offset=2 with k=2
    holds out the 2 before the last 2, a second fold), the history being everything before them.
    ``random``: k chosen with a per-user seeded RNG, the history being the rest in time order.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    items = user.interactions
    if strategy == "recent":
        end = len(items) - offset
        if end - k < 1:
            raise ValueError(f"user {user.id} has {len(items)} interactions: too few for k={k}, offset={offset}")
        return UserSplit(user, list(items[: end - k]), list(items[end - k : end]))
    if strategy == "random":
        if len(items) < k + 1:
            raise ValueError(f"user {user.id} has {len(items)} interactions: too few for k={k}")
        rng = random.Random(f"{seed}:{user.id}")
        held = set(rng.sample(range(len(items)), k))
        return UserSplit(user, [it for i, it in enumerate(items) if i not in held], [it for i, it in enumerate(items) if i in held])
    raise ValueError(f"unknown split strategy '{strategy}' (use {' or '.join(STRATEGIES)})")


def split_users(users: list[User], k: int, *, strategy: str = "recent", seed: int = 0, offset: int = 0) -> Split:
    """Split every user; users with too few interactions are skipped and counted, not an error."""
    kept, skipped = [], []
    for user in users:
        if len(user.interactions) - offset < k + 1:
            skipped.append(user.id)
            continue
        kept.append(split_user(user, k, strategy=strategy, seed=seed, offset=offset))
    return Split(kept, skipped)
