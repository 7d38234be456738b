"""Intrinsic, label-free evaluation of profiles: how well does a profile pick out its user's held-out
interactions among other users' (direction A), and each held-out interaction its user's profile
among other users' profiles (direction B)? The same in-batch ranking as the reward, with one profile
per user.

Grouping: by default all users are ranked **at once** (every other user is a negative: the hardest
and most stable setting for a small evaluation set). ``group_size=n`` instead ranks consecutive groups
of n users, as a training batch would (a last group of one user joins the one before it). Metrics are
means over queries (profiles for A, held-out items for B) across all groups; each sits beside its
exact expectation under random ranking, averaged over the same queries. Ties are pessimistic.

Metrics per direction: NDCG (multi-positive in A), MRR (reciprocal rank of the first positive) and
Recall@1 (1 when the top-ranked candidate is a positive; with one positive, as in B, the usual
Recall@1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bump_profiles.data.split import UserSplit
from bump_profiles.errors import DataError
from bump_profiles.judges import Judge
from bump_profiles.judges.calibration import CALIBRATIONS, DEFAULT_CALIBRATION, check_calibration
from bump_profiles.judges.ranking import (
    hit_at_1,
    multi_positive_ndcg,
    random_hit_at_1,
    random_ndcg,
    random_reciprocal_rank,
    reciprocal_rank,
)
from bump_profiles.profiles.stats import profile_stats
from bump_profiles.rewards.scoring import RawScores, raw_scores

PSEUDO_PROFILES = ("history-titles", "history")
METRICS = (
    ("ndcg", multi_positive_ndcg, random_ndcg),
    ("mrr", reciprocal_rank, random_reciprocal_rank),
    ("recall1", hit_at_1, random_hit_at_1),
)


@dataclass
class ScoredGroup:
    """Raw judge scores of one group of users: one profile per user, their held-out items."""

    users: list[str]
    item_users: list[str]
    raw: RawScores  # users x items, items x users, and the null texts' scores


def pseudo_profiles(splits: Sequence[UserSplit], kind: str = "history-titles", n_items: int = 8) -> dict[str, str]:
    """Profiles built from each user's own history, a reference point that needs no generator.

    ``history-titles``: the titles of the ``n_items`` most recent history items (the item's text when
    it has no title), one per line; ``history``: those items' full texts, one per line.
    """
    if kind not in PSEUDO_PROFILES:
        raise DataError(f"unknown pseudo-profile '{kind}' (use one of {', '.join(PSEUDO_PROFILES)})")
    if n_items < 1:
        raise DataError(f"pseudo-profile items must be at least 1, got {n_items}")
    out = {}
    for s in splits:
        recent = s.history[-n_items:]
        if kind == "history-titles":
            out[s.user.id] = "\n".join(it.fields.get("title") or it.text for it in recent)
        else:
            out[s.user.id] = "\n".join(it.text for it in recent)
    return out


def groups_of(n_users: int, group_size: int | None) -> list[range]:
    """Consecutive index ranges of ``group_size`` users (all at once when None); no group of one."""
    if n_users < 2:
        raise DataError(f"need at least 2 users with a profile to rank against each other, got {n_users}")
    if group_size is None or group_size >= n_users:
        return [range(n_users)]
    if group_size < 2:
        raise DataError(f"group size must be at least 2, got {group_size}")
    starts = list(range(0, n_users, group_size))
    if n_users - starts[-1] == 1:
        starts.pop()
    return [range(a, b) for a, b in zip(starts, [*starts[1:], n_users], strict=True)]


def score_groups(
    splits: Sequence[UserSplit], profiles: Mapping[str, str], judge: Judge, group_size: int | None = None, *, null: bool = True
) -> list[ScoredGroup]:
    """Raw (uncalibrated) judge scores per group (with the null texts' when ``null``); calibrated afterwards."""
    from tqdm import tqdm

    ranges = groups_of(len(splits), group_size)
    scored = []
    for idx in tqdm(ranges, desc="judging groups", unit="group", disable=len(ranges) == 1):
        group = [splits[i] for i in idx]
        users = [s.user.id for s in group]
        items = [it.text for s in group for it in s.heldout]
        item_users = [s.user.id for s in group for _ in s.heldout]
        scored.append(ScoredGroup(users, item_users, raw_scores(judge, [profiles[u] for u in users], items, null=null)))
    return scored


def select_items(group: ScoredGroup, keep: Sequence[bool]) -> ScoredGroup:
    """The same group ranked over the kept items only (e.g. one horizon's): every profile stays a candidate."""
    keep = np.asarray(keep, dtype=bool)
    r = group.raw
    raw = RawScores(r.profile_to_item[:, keep], r.item_to_profile[keep, :],
                    None if r.item_null is None else r.item_null[keep], r.profile_null)
    return ScoredGroup(group.users, [u for u, k in zip(group.item_users, keep, strict=True) if k], raw)


def ranking_metrics(groups: Sequence[ScoredGroup], calibration: str) -> dict[str, float]:
    """Mean NDCG, MRR and Recall@1 per direction, each with its random expectation (``*_random``)."""
    return rank_groups(groups, calibration)[0]


def rank_groups(groups: Sequence[ScoredGroup], calibration: str) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The mean metrics and each user's NDCG (A of their profile, B averaged over their held-out items)."""
    per: dict[str, list[float]] = {}
    by_user: dict[str, dict[str, list[float]]] = {}
    for g in groups:
        users = np.asarray(g.users)
        item_users = np.asarray(g.item_users)
        p2i, i2p = g.raw.calibrated(calibration)
        queries = {
            "a": [(row, item_users == u, u) for row, u in zip(p2i, users, strict=True)],
            "b": [(row, users == u, u) for row, u in zip(i2p, item_users, strict=True)],
        }
        for direction, rows in queries.items():
            for scores, positives, owner in rows:
                n, p = len(positives), int(positives.sum())
                for name, metric, random_metric in METRICS:
                    value = metric(scores, positives)
                    per.setdefault(f"{name}_{direction}", []).append(value)
                    per.setdefault(f"{name}_{direction}_random", []).append(random_metric(n, p))
                    if name == "ndcg":
                        by_user.setdefault(str(owner), {}).setdefault(f"ndcg_{direction}", []).append(value)
    means = {key: float(np.mean(values)) for key, values in sorted(per.items())}
    users = {u: {key: float(np.mean(v)) for key, v in sorted(d.items())} for u, d in by_user.items()}
    return means, users


def evaluate_profiles(
    splits: Sequence[UserSplit],
    profiles: Mapping[str, str],
    judge: Judge,
    *,
    calibrations: Sequence[str] = (DEFAULT_CALIBRATION,),
    group_size: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    references: bool = False,
) -> dict[str, Any]:
    """Ranking metrics per calibration (one judge pass serves all), per-user NDCG and profile statistics.

    Users without a profile are left out and listed under ``missing_profiles``. ``per_user`` is
    ``{calibration: {user_id: {"ndcg_a": x, "ndcg_b": y}}}``. With ``references``, ``references`` holds
    the same result for each of :func:`bump_profiles.profiles.baselines.reference_profiles` (history cut to
    each profile's length, full history, true interests), on the same users.
    """
    for c in calibrations:
        check_calibration(c)
    kept = [s for s in splits if s.user.id in profiles]
    missing = [s.user.id for s in splits if s.user.id not in profiles]
    groups = score_groups(kept, profiles, judge, group_size, null=any(CALIBRATIONS[c].needs_baseline for c in calibrations))
    ranked = {c: rank_groups(groups, c) for c in calibrations}
    texts = [profiles[s.user.id] for s in kept]
    histories = [[it.text for it in s.history] for s in kept]
    result = {
        "users": len(kept),
        "items": sum(len(s.heldout) for s in kept),
        "groups": len(groups),
        "group_size": group_size or len(kept),
        "missing_profiles": missing,
        "metrics": {c: ranked[c][0] for c in calibrations},
        "per_user": {c: ranked[c][1] for c in calibrations},
        "profile_stats": profile_stats(texts, histories, count_tokens=count_tokens),
    }
    if references:
        from bump_profiles.profiles.baselines import reference_profiles

        result["references"] = {
            name: evaluate_profiles(kept, ref, judge, calibrations=calibrations, group_size=group_size, count_tokens=count_tokens)
            for name, ref in reference_profiles(kept, profiles, count_tokens).items()
        }
    return result
