"""The judge's score matrices of a batch: profiles x items (direction A) and items x profiles (B),
checked finite, with the null texts' scores the ``empty`` calibration subtracts.

Shared by the reward (:mod:`bump_profiles.rewards.bump`) and the intrinsic evaluation
(:mod:`bump_profiles.evaluation.intrinsic`). Which calibrations exist and which may train is the registry in
:mod:`bump_profiles.judges.calibration`; the arithmetic is :func:`bump_profiles.judges.ranking.calibrate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bump_profiles.errors import BumpError
from bump_profiles.judges import Judge
from bump_profiles.judges.calibration import check_calibration
from bump_profiles.judges.ranking import calibrate


def _clip(text: str, n: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def _check_finite(matrix: np.ndarray, queries: Sequence[str], documents: Sequence[str], direction: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (len(queries), len(documents)):
        raise BumpError(f"judge returned shape {matrix.shape} for {len(queries)} queries x {len(documents)} documents")
    bad = np.argwhere(~np.isfinite(matrix))
    if len(bad):
        i, j = bad[0]
        raise BumpError(
            f"judge returned {matrix[i, j]} in direction {direction} ({len(bad)} non-finite scores); "
            f"first at query {_clip(queries[i])!r} x document {_clip(documents[j])!r}"
        )
    return matrix


NULL_TEXT = ""  # the null profile (direction A) and the null item (direction B) of the ``empty`` calibration


@dataclass
class RawScores:
    """Raw judge matrices of a batch and, for the ``empty`` calibration, each column's null score."""

    profile_to_item: np.ndarray  # R x N
    item_to_profile: np.ndarray  # N x R
    item_null: np.ndarray | None = None  # N: each item's score with the null profile as query (A)
    profile_null: np.ndarray | None = None  # R: each profile's score with the null item as query (B)

    def calibrated(self, calibration: str) -> tuple[np.ndarray, np.ndarray]:
        """(profile_to_item, item_to_profile) calibrated each on its own."""
        return (calibrate(self.profile_to_item, calibration, self.item_null),
                calibrate(self.item_to_profile, calibration, self.profile_null))


def raw_scores(judge: Judge, profiles: Sequence[str], items: Sequence[str], *, null: bool = True) -> RawScores:
    """The judge's matrices (one pass when it is symmetric) and, with ``null``, the null texts' scores.

    The null scores involve only the column's own text and a fixed empty text, never another user. A
    symmetric judge scores the null texts in the same pass, as one more profile and one more item: a
    profile's prefix then runs once (not again for the null item) and the likelihood judge's neutral
    term of the items is computed once.
    """
    if judge.symmetric and null:
        queries, documents = [*profiles, NULL_TEXT], [*items, NULL_TEXT]
        m = np.array(judge.score(queries, documents, "A"), dtype=np.float64)
        if m.shape == (len(queries), len(documents)):
            m[-1, -1] = 0.0  # the null texts against each other: never used (and may be undefined, e.g. a cosine)
        m = _check_finite(m, queries, documents, "A")
        return RawScores(m[:-1, :-1], m[:-1, :-1].T, m[-1, :-1], m[:-1, -1])
    raw_a = _check_finite(judge.score(profiles, items, "A"), profiles, items, "A")
    raw_b = raw_a.T if judge.symmetric else _check_finite(judge.score(items, profiles, "B"), items, profiles, "B")
    if not null:
        return RawScores(raw_a, raw_b)
    item_null = _check_finite(judge.score([NULL_TEXT], items, "A"), [NULL_TEXT], items, "A")[0]
    profile_null = _check_finite(judge.score([NULL_TEXT], profiles, "B"), [NULL_TEXT], profiles, "B")[0]
    return RawScores(raw_a, raw_b, item_null, profile_null)


def score_matrices(judge: Judge, profiles: Sequence[str], items: Sequence[str], calibration: str) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated (profile_to_item R x N, item_to_profile N x R); one judge pass when it is symmetric."""
    needs_null = check_calibration(calibration).needs_baseline
    return raw_scores(judge, profiles, items, null=needs_null).calibrated(calibration)
