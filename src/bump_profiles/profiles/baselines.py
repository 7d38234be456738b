"""Reference profiles that need no generator, shown beside every set of generated profiles.

A profile exists to carry a user into a prompt in fewer tokens than their history, so the bar it
must clear is the user's own history cut to the same length (``history@budget``). The full history
is an upper reference, and for synthetic users the true interests written plainly are the ideal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bump_profiles.data.render import render_history
from bump_profiles.data.schema import Interaction
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


def central_history(
    splits: Sequence[UserSplit], budgets: Mapping[str, int], count_tokens: Callable[[str], int] | None = None
) -> dict[str, str]:
    """Each user's history, the items most typical of it first, cut to ``budgets[user_id]`` tokens.

    Typical = the highest mean TF-IDF cosine to the user's other items (the vectorizer fitted on that user's
    items alone; ties keep the newest first). The label-free extractive rival of ``history@budget``: the same
    words pasted, chosen for what recurs over the whole history instead of what came last, so it asks
    whether any text at a profile's length can beat the latest items without a generator."""
    return {s.user.id: render_history(_most_typical_last(s.history), max_tokens=budgets[s.user.id],
                                      count_tokens=count_tokens, bullet="")
            for s in splits if s.user.id in budgets}


def _most_typical_last(items: Sequence[Interaction]) -> list[Interaction]:
    """``items`` ordered by typicality, most typical last (render_history shows its input's last item first),
    the newest last among ties; in time order when nothing can be compared."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(items) < 2:
        return list(items)
    try:
        m = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform([it.text for it in items])
    except ValueError:  # no word outside the stop list in any item
        return list(items)
    sim = (m @ m.T).toarray()
    typical = (sim.sum(axis=1) - sim.diagonal()) / (len(items) - 1)
    return [items[i] for i in sorted(range(len(items)), key=lambda i: (typical[i], i))]


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
