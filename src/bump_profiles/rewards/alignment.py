"""The alignment check of a reward, before any training: does the reward prefer, among one person's
candidate profiles, the ones that held-out judges prefer on that person's future items?

Per author the interactions are laid out in time order (:func:`layout`)::

    [ read (what the generator reads) | horizon (the reward's items) | near (2) | far (6) ]

Every reward option is scored on the same candidates (sampled once from the read window), so two
options differ only in what they measure. The reward's items are ``m`` items of the horizon
(:func:`reward_items`): the first ``m`` (adjacent to the read window, as training holds out today) or
``m`` spread evenly over it. The near and far items are never read and never in any reward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bump_profiles.data.schema import Interaction
from bump_profiles.errors import DataError


@dataclass
class AuthorLayout:
    """One author's interactions cut into read window, reward horizon and the two held-out horizons."""

    user_id: str
    read: list[Interaction]
    horizon: list[Interaction]
    near: list[Interaction]
    far: list[Interaction]


def layout(user_id: str, items: Sequence[Interaction], *, horizon: int = 16, heldout: int = 8, near: int = 2,
           min_read: int = 16) -> AuthorLayout:
    """Cut one author's time-ordered items; too few items (under ``min_read + horizon + heldout``) is an error."""
    if not 0 < near < heldout:
        raise DataError(f"near={near} must be between 1 and heldout-1={heldout - 1}")
    need = min_read + horizon + heldout
    if len(items) < need:
        raise DataError(f"author {user_id} has {len(items)} items, the layout needs {need}")
    cut = len(items) - heldout
    return AuthorLayout(user_id, list(items[: cut - horizon]), list(items[cut - horizon : cut]),
                        list(items[cut : cut + near]), list(items[cut + near :]))


def reward_items(horizon: Sequence[Interaction], m: int, spread: bool) -> list[Interaction]:
    """``m`` items of the horizon: the first ``m`` (``spread`` False) or ``m`` evenly spaced over it."""
    if not 1 <= m <= len(horizon):
        raise DataError(f"m={m} reward items from a horizon of {len(horizon)}")
    if not spread:
        return list(horizon[:m])
    idx = np.round(np.linspace(0, len(horizon) - 1, m)).astype(int)
    return [horizon[i] for i in idx]


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None when either side is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def within_user_spearman(reward: Mapping[str, Sequence[float]], judged: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Per user, the Spearman between the reward and a held-out judge over that user's candidates
    (users where either is constant across candidates are left out, and counted by the caller)."""
    out = {}
    for user, scores in reward.items():
        rho = spearman(scores, judged[user])
        if rho is not None:
            out[user] = rho
    return out


def picked(scores: Mapping[str, Sequence[float]]) -> dict[str, int]:
    """Each user's best candidate under ``scores`` (first on a tie, as :func:`bump_profiles.rewards.bestof.pick`)."""
    from bump_profiles.rewards.bestof import pick

    return {u: pick(s) for u, s in scores.items()}
