"""Per-author metrics and bootstrap intervals over authors (pure functions).

With 32 evaluation authors, a mean hides how much it would move with other authors; every number
of the benchmark therefore comes with a 95% percentile bootstrap interval over authors, and every
comparison of two methods with the interval of the paired per-author difference (same resamples).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from bump_profiles.evaluation.intrinsic import ScoredGroup
from bump_profiles.judges.ranking import multi_positive_ndcg, random_ndcg
from bump_profiles.profiles.stats import ngrams, words


def per_author_ndcg(groups: Sequence[ScoredGroup], calibration: str) -> dict[str, dict[str, float]]:
    """``{author: {ndcg_a, ndcg_b, random_a, random_b}}``: A ranks the author's items with their
    profile; B is the mean over the author's held-out items of ranking their profile. An author with no
    item in the groups (a horizon they have none of) is left out; their profile stays a candidate in B."""
    out: dict[str, dict[str, float]] = {}
    for g in groups:
        users, item_users = np.asarray(g.users), np.asarray(g.item_users)
        a, b = calibrated(g, calibration)
        for row, u in zip(a, users, strict=True):
            pos = item_users == u
            if not pos.any():
                continue
            rows = [(r, users == u) for r, iu in zip(b, item_users, strict=True) if iu == u]
            out[str(u)] = {"ndcg_a": multi_positive_ndcg(row, pos), "random_a": random_ndcg(len(pos), int(pos.sum())),
                           "ndcg_b": float(np.mean([multi_positive_ndcg(r, p) for r, p in rows])),
                           "random_b": float(np.mean([random_ndcg(len(p), int(p.sum())) for _, p in rows]))}
    return out


def calibrated(g: ScoredGroup, calibration: str) -> tuple[np.ndarray, np.ndarray]:
    """A group's calibrated (profile x item, item x profile) matrices."""
    return g.raw.calibrated(calibration)


def resamples(n_units: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``n_boot`` x ``n_units`` indices drawn with replacement (shared by every method: paired)."""
    return np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))


def interval(values: Sequence[float], draws: np.ndarray) -> dict[str, float]:
    """Mean of per-unit ``values`` and its 95% percentile bootstrap interval."""
    v = np.asarray(values, dtype=np.float64)
    means = v[draws].mean(axis=1)
    return {"mean": float(v.mean()), "lo": float(np.percentile(means, 2.5)), "hi": float(np.percentile(means, 97.5))}


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], units: Sequence[str], draws: np.ndarray) -> dict[str, float]:
    """Interval of mean(a - b) over the same units; ``excludes_zero`` says whether it settles the sign."""
    d = interval([a[u] - b[u] for u in units], draws)
    return {**d, "excludes_zero": bool(d["lo"] > 0 or d["hi"] < 0)}


def grouped_interval(units: Sequence[str], rows: Sequence[tuple[str, object]], metric: Callable[[list], float],
                     draws: np.ndarray) -> dict[str, float]:
    """A metric over rows (e.g. macro-F1 of (gold, pred) pairs) with authors resampled: ``rows`` are
    ``(author, row)``, every resample takes all rows of each drawn author."""
    by_unit: dict[str, list] = {u: [] for u in units}
    for u, row in rows:
        by_unit[u].append(row)
    values = [metric([r for i in draw for r in by_unit[units[i]]]) for draw in draws]
    return {"mean": float(metric([r for _, r in rows])), "lo": float(np.percentile(values, 2.5)),
            "hi": float(np.percentile(values, 97.5))}


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of a text's word n-grams that repeat an earlier one in the same text (0: no loops)."""
    grams = ngrams([w.lower() for w in words(text)], n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0
