"""Reference profiles that need no generator, shown beside every set of generated profiles.

A profile exists to carry a user into a prompt in fewer tokens than their history, so the bar it
must clear is the user's own history cut to the same length (``history@budget``). The full history
is an upper reference, and for synthetic users the true interests written plainly are the ideal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bump_profiles.data.render import render_history
from bump_profiles.data.split import UserSplit
from bump_profiles.data.synthetic import interests_profile


def budget_history(
    splits: Sequence[UserSplit], budgets: Mapping[str, int], count_tokens: Callable[[str], int] | None = None
) -> dict[str, str]:
    """Each user's history, most recent first, cut to ``budgets[user_id]`` tokens (the last item cut
    mid-way so the budget is filled but never passed)."""
    return {
        s.user.id: render_history(s.history, max_tokens=budgets[s.user.id], count_tokens=count_tokens, bullet="")
        for s in splits if s.user.id in budgets
    }


def full_history(splits: Sequence[UserSplit]) -> dict[str, str]:
    """Each user's whole history, most recent first: an upper reference, not a profile."""
    return {s.user.id: render_history(s.history, bullet="") for s in splits}


def true_interests(splits: Sequence[UserSplit]) -> dict[str, str] | None:
    """The true interests of synthetic users written plainly; None when the users are not synthetic."""
    if not splits or any("interests" not in s.user.extra for s in splits):
        return None
    return {s.user.id: interests_profile(s.user) for s in splits}


def reference_profiles(
    splits: Sequence[UserSplit], profiles: Mapping[str, str], count_tokens: Callable[[str], int] | None = None
) -> dict[str, dict[str, str]]:
    """The references for one set of profiles: history cut to each profile's own length, the full
    history, and the true interests when known. Keys are the names shown in tables."""
    count = count_tokens or (lambda s: len(s.split()))
    refs = {"history@budget": budget_history(splits, {u: count(p) for u, p in profiles.items()}, count),
            "full history": full_history(splits)}
    truth = true_interests(splits)
    if truth is not None:
        refs["true interests"] = truth
    return refs
