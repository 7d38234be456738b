"""Ranking math of the BUMP reward: multi-positive NDCG, the bidirectional in-batch reward, in-batch
calibration, and what each metric is worth under random ranking. Pure numpy: no model, no judge.

Conventions, used everywhere below:

- Higher score = more relevant. Candidates are sorted by score, descending, positions from 1.
- **Ties are broken pessimistically**: a positive tied with a negative is placed after it, so a constant
  (or empty) profile earns the minimum, never a lucky tie.
- NDCG: DCG = sum over positives of 1/log2(1 + position); IDCG = the same with every positive on top.

Calibration modes are registered in :mod:`bump_profiles.judges.calibration` (with the rule they follow);
:func:`calibrate` applies them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bump_profiles.judges.calibration import check_calibration


def _check_query(scores: np.ndarray, positives: np.ndarray) -> None:
    if scores.ndim != 1 or positives.shape != scores.shape:
        raise ValueError(f"scores and positives must be 1-D of the same length, got {scores.shape} and {positives.shape}")
    if not positives.any():
        raise ValueError("no positive candidate: NDCG is undefined")
    if positives.all():
        raise ValueError("no negative candidate: every ranking is perfect, the score says nothing")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (NaN or inf found)")


def positive_positions(scores: Sequence[float], positives: Sequence[bool]) -> np.ndarray:
    """Positions (from 1) of the positives after a descending sort with pessimistic ties, ascending."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positives, dtype=bool)
    _check_query(s, pos)
    # lexsort: last key is primary. Primary: score descending; secondary: negatives (False) first.
    order = np.lexsort((pos, -s))
    return np.flatnonzero(pos[order]) + 1


def _discounts(n: int) -> np.ndarray:
    """1/log2(1 + i) for positions i = 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def multi_positive_ndcg(scores: Sequence[float], positives: Sequence[bool], k: int | None = None) -> float:
    """NDCG (NDCG@k when ``k`` is given) of one query with one or more positives among the candidates.

    ``positives`` is a boolean mask with at least one True and one False. Ties are pessimistic.
    """
    positions = positive_positions(scores, positives)
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        positions = positions[positions <= k]
    n_pos = int(np.count_nonzero(np.asarray(positives, dtype=bool)))
    ideal = _discounts(n_pos if k is None else min(n_pos, k)).sum()
    dcg = (1.0 / np.log2(1.0 + positions)).sum()
    return float(dcg / ideal)


def reciprocal_rank(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """1 / position of the first positive (pessimistic ties): one query's share of MRR."""
    return float(1.0 / positive_positions(scores, positives)[0])


def hit_at_1(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """1.0 when the top-ranked candidate is a positive (pessimistic ties), else 0.0.

    This is what the reports call Recall@1: with one positive it is the usual Recall@1; with several
    it is the hit rate at 1 (the share of queries whose first result is relevant).
    """
    return float(positive_positions(scores, positives)[0] == 1)


def random_ndcg(n_candidates: int, n_positives: int, k: int | None = None) -> float:
    """Exact expected NDCG when the candidates are ranked uniformly at random.

    Each position holds a positive with probability P/N, so E[DCG] = P/N * sum of the discounts of
    positions 1..min(N, k); IDCG is a constant, so E[NDCG] = E[DCG] / IDCG.
    """
    _check_counts(n_candidates, n_positives)
    cut = n_candidates if k is None else min(k, n_candidates)
    ideal = _discounts(n_positives if k is None else min(n_positives, k)).sum()
    return float(n_positives / n_candidates * _discounts(cut).sum() / ideal)


def random_reciprocal_rank(n_candidates: int, n_positives: int) -> float:
    """Exact expected reciprocal rank of the first positive under a uniformly random ranking.

    P(first positive at position i) = C(N - i, P - 1) / C(N, P), for i = 1..N - P + 1.
    """
    _check_counts(n_candidates, n_positives)
    from math import comb

    total = comb(n_candidates, n_positives)
    return float(sum(comb(n_candidates - i, n_positives - 1) / i for i in range(1, n_candidates - n_positives + 2)) / total)


def random_hit_at_1(n_candidates: int, n_positives: int) -> float:
    """Expected hit at 1 under a uniformly random ranking: P / N."""
    _check_counts(n_candidates, n_positives)
    return n_positives / n_candidates


def _check_counts(n_candidates: int, n_positives: int) -> None:
    if not 1 <= n_positives < n_candidates:
        raise ValueError(f"need 1 <= positives < candidates, got {n_positives} of {n_candidates}")


def calibrate(matrix: np.ndarray, mode: str, baseline: Sequence[float] | None = None) -> np.ndarray:
    """Calibrate a query x document score matrix before ranking (each row is one query's ranking).

    ``none`` returns a copy. ``empty`` subtracts ``baseline[j]``, document j's score against a fixed
    null query (the empty profile in direction A, the empty item in direction B), from column j: a
    per-document bias that no ranking of a row removes by itself, estimated without any other user.
    ``center-transductive`` double-centres the matrix over the batch (evaluation only: it leaks).
    """
    m = np.asarray(matrix, dtype=np.float64)
    spec = check_calibration(mode)
    if spec.needs_baseline:
        if baseline is None:
            raise ValueError(f"calibration '{mode}' needs the documents' baseline scores")
        b = np.asarray(baseline, dtype=np.float64)
        if m.ndim != 2 or b.shape != (m.shape[1],):
            raise ValueError(f"baseline of shape {b.shape} for a score matrix of shape {m.shape}")
        if not np.isfinite(b).all():
            raise ValueError("baseline scores must be finite (NaN or inf found)")
        return m - b[None, :]
    if mode == "center-transductive":
        if m.ndim != 2:
            raise ValueError(f"calibration needs a 2-D matrix, got shape {m.shape}")
        return m - m.mean(axis=1, keepdims=True) - m.mean(axis=0, keepdims=True) + m.mean()
    return m.copy()


def bidirectional_reward(
    profile_to_item: np.ndarray,
    item_to_profile: np.ndarray,
    rollout_users: Sequence[str],
    item_users: Sequence[str],
    weights: tuple[float, float] = (0.5, 0.5),
    queue_scores: np.ndarray | None = None,
    queue_users: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """The BUMP reward of every rollout in a batch, from two score matrices ranked exactly as given.

    ``profile_to_item`` is R x N: [r, j] scores held-out item j with rollout r as the query.
    ``item_to_profile`` is N x R: [j, r] scores rollout r with item j as the query (pass
    ``profile_to_item.T`` for a symmetric judge). Returns arrays of length R:

    - ``ndcg_a``: rollout r ranks all N items; positives are the items of r's user.
    - ``ndcg_b``: for each item j of r's user, rank r among r plus every rollout of another user
      (the user's other rollouts are left out: they are not negatives); NDCG of r = 1/log2(1 + its
      position); averaged over j.
    - ``reward``: ``weights[0] * ndcg_a + weights[1] * ndcg_b``.

    Items of users with no rollout (a population bank) are extra negatives of direction A and never
    positives. ``queue_scores`` (N x Q, [j, q] scores queued profile q with item j as the query) adds
    profiles of users outside the batch as extra negatives of direction B; a queued profile of the
    rollout's own user is never counted against it.

    A batch with one user, or a rollout whose user has no held-out item, raises ValueError.
    """
    p2i = np.asarray(profile_to_item, dtype=np.float64)
    i2p = np.asarray(item_to_profile, dtype=np.float64)
    r_users = np.asarray([str(u) for u in rollout_users])
    i_users = np.asarray([str(u) for u in item_users])
    n_r, n_i = len(r_users), len(i_users)
    if p2i.shape != (n_r, n_i) or i2p.shape != (n_i, n_r):
        raise ValueError(
            f"expected profile_to_item {n_r}x{n_i} and item_to_profile {n_i}x{n_r}, got {p2i.shape} and {i2p.shape}"
        )
    if len(set(r_users.tolist())) < 2:
        raise ValueError("the batch has rollouts of fewer than 2 users: no in-batch negatives")
    missing = sorted(set(r_users.tolist()) - set(i_users.tolist()))
    if missing:
        raise ValueError(f"rollouts of users with no held-out item: {missing[:5]}")
    if not (np.isfinite(p2i).all() and np.isfinite(i2p).all()):
        raise ValueError("score matrices must be finite (NaN or inf found)")

    own = r_users[:, None] == i_users[None, :]  # R x N: item j belongs to rollout r's user
    # Direction A, all rows at once: sort each row by score descending, negatives first among ties.
    order = np.lexsort((own, -p2i), axis=-1)
    hits = np.take_along_axis(own, order, axis=1)
    disc = _discounts(n_i)
    ideal = np.cumsum(disc)[own.sum(axis=1) - 1]
    ndcg_a = (hits * disc).sum(axis=1) / ideal
    # Direction B: item j's rank of rollout r = 1 + other users' rollouts scoring >= r (pessimistic),
    # over the items some rollout owns (a bank's items query nobody).
    cols = own.any(axis=0)
    s = i2p.T[:, cols]  # R x N'
    other = r_users[:, None] != r_users[None, :]  # R x R'
    above = ((s[None, :, :] >= s[:, None, :]) & other[:, :, None]).sum(axis=1)  # R x N'
    if queue_scores is not None:
        q = np.asarray(queue_scores, dtype=np.float64)
        q_users = np.asarray([str(u) for u in queue_users])
        if q.shape != (n_i, len(q_users)) or not np.isfinite(q).all():
            raise ValueError(f"queue_scores must be finite, {n_i}x{len(q_users)}, got {q.shape}")
        q_other = r_users[:, None] != q_users[None, :]  # R x Q
        above = above + ((q.T[:, cols][None, :, :] >= s[:, None, :]) & q_other[:, :, None]).sum(axis=1)
    gain = np.zeros(own.shape)
    gain[:, cols] = np.where(own[:, cols], 1.0 / np.log2(2.0 + above), 0.0)
    ndcg_b = gain.sum(axis=1) / own.sum(axis=1)
    w_a, w_b = weights
    return {"ndcg_a": ndcg_a, "ndcg_b": ndcg_b, "reward": w_a * ndcg_a + w_b * ndcg_b}


def rank_fusion(matrices: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over judges of each candidate's rank within its row, scaled to [0, 1] (ties share the
    average rank): an ensemble of judges whose raw scores live on different scales. A row is one
    query's ranking, so a candidate's fused score depends only on the candidates of that ranking."""
    from scipy.stats import rankdata

    if not matrices:
        raise ValueError("rank fusion of no matrix")
    shape = np.shape(matrices[0])
    if any(np.shape(m) != shape for m in matrices) or len(shape) != 2:
        raise ValueError(f"rank fusion needs 2-D matrices of one shape, got {[np.shape(m) for m in matrices]}")
    scale = max(shape[1] - 1, 1)
    return np.mean([(rankdata(np.asarray(m, dtype=np.float64), axis=1) - 1) / scale for m in matrices], axis=0)
