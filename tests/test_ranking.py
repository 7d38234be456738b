"""Ranking math: hand-worked examples (arithmetic in comments) and hypothesis properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bump_profiles.errors import ConfigError
from bump_profiles.judges.ranking import (
    bidirectional_reward,
    calibrate,
    hit_at_1,
    multi_positive_ndcg,
    random_hit_at_1,
    random_ndcg,
    random_reciprocal_rank,
    reciprocal_rank,
)

L3 = math.log2(3)
L4 = 2.0
L5 = math.log2(5)


# ---------- hand-worked examples ----------

def test_ndcg_hand_worked():
    # scores 0.9(neg) 0.8(pos) 0.1(neg) 0.5(pos) -> order: 0.9- 0.8+ 0.5+ 0.1-: positives at 2 and 3.
    # DCG = 1/log2(3) + 1/log2(4) = 0.6309 + 0.5; IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.6309.
    got = multi_positive_ndcg([0.9, 0.8, 0.1, 0.5], [False, True, False, True])
    assert got == pytest.approx((1 / L3 + 1 / L4) / (1 + 1 / L3))


def test_ndcg_at_k_hand_worked():
    # Same ranking, k=2: only the positive at position 2 counts, DCG = 1/log2(3);
    # IDCG@2 with 2 positives = 1 + 1/log2(3).
    got = multi_positive_ndcg([0.9, 0.8, 0.1, 0.5], [False, True, False, True], k=2)
    assert got == pytest.approx((1 / L3) / (1 + 1 / L3))
    # k=1: no positive in the top 1 -> 0; IDCG@1 = 1.
    assert multi_positive_ndcg([0.9, 0.8, 0.1, 0.5], [False, True, False, True], k=1) == 0.0


def test_ties_are_pessimistic_hand_worked():
    # positive tied with both negatives at 0.5 -> placed after them: position 3, DCG = 1/log2(4) = 0.5, IDCG = 1.
    assert multi_positive_ndcg([0.5, 0.5, 0.5], [False, True, False]) == pytest.approx(0.5)
    assert reciprocal_rank([0.5, 0.5, 0.5], [False, True, False]) == pytest.approx(1 / 3)
    assert hit_at_1([0.5, 0.5, 0.5], [False, True, False]) == 0.0
    # a positive strictly above the tie is first: hit, RR = 1.
    assert hit_at_1([0.5, 0.6, 0.5], [False, True, False]) == 1.0


def test_reciprocal_rank_hand_worked():
    # order: 0.9- 0.7+ 0.3+ -> first positive at 2 -> RR = 1/2.
    assert reciprocal_rank([0.3, 0.9, 0.7], [True, False, True]) == pytest.approx(0.5)


def test_random_expectations_match_enumeration():
    # Exhaustive average over all orderings of 5 candidates with 2 positives (ties impossible).
    n, p = 5, 2
    perms = list(itertools.permutations(range(n)))
    mask = [True] * p + [False] * (n - p)
    for fn, expected in [
        (multi_positive_ndcg, random_ndcg(n, p)),
        (reciprocal_rank, random_reciprocal_rank(n, p)),
        (hit_at_1, random_hit_at_1(n, p)),
    ]:
        mean = np.mean([fn(np.array(perm, dtype=float), mask) for perm in perms])
        assert mean == pytest.approx(expected)
    # k cutoff: NDCG@2 enumerated the same way.
    mean_k = np.mean([multi_positive_ndcg(np.array(perm, dtype=float), mask, k=2) for perm in perms])
    assert mean_k == pytest.approx(random_ndcg(n, p, k=2))


def test_random_ndcg_closed_form_hand_worked():
    # N=3, P=1: E[DCG] = 1/3 * (1 + 1/log2(3) + 1/log2(4)), IDCG = 1.
    assert random_ndcg(3, 1) == pytest.approx((1 + 1 / L3 + 0.5) / 3)
    # MRR N=3, P=1: (1 + 1/2 + 1/3)/3.
    assert random_reciprocal_rank(3, 1) == pytest.approx((1 + 0.5 + 1 / 3) / 3)


def test_calibrate_hand_worked():
    # m = [[1, 2], [3, 6]]: row means 1.5, 4.5; column means 2, 4; grand mean 3.
    # [0,0] = 1 - 1.5 - 2 + 3 = 0.5; [0,1] = 2 - 1.5 - 4 + 3 = -0.5; [1,0] = 3 - 4.5 - 2 + 3 = -0.5; [1,1] = 0.5.
    m = np.array([[1.0, 2.0], [3.0, 6.0]])
    assert np.allclose(calibrate(m, "center-transductive"), [[0.5, -0.5], [-0.5, 0.5]])
    assert np.array_equal(calibrate(m, "none"), m)
    with pytest.raises(ConfigError):
        calibrate(m, "zscore")


def test_calibration_removes_item_bias():
    # Item 1 looks likely under every profile (+10): raw, both profiles rank it first.
    # Centring removes the column offset and restores the diagonal.
    m = np.array([[1.0, 10.5], [0.5, 11.0]])
    assert np.argmax(m[0]) == 1
    c = calibrate(m, "center-transductive")
    assert np.argmax(c[0]) == 0 and np.argmax(c[1]) == 1


def test_bidirectional_reward_hand_worked():
    # Users a (rollouts 0, 1; items 0, 1) and b (rollout 2; item 2).
    p2i = np.array([
        [0.9, 0.8, 0.1],  # rollout 0: a's items on top -> NDCG_A = 1
        [0.9, 0.1, 0.5],  # rollout 1: order i0+ i2- i1+ -> DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
        [0.2, 0.3, 0.1],  # rollout 2 (user b): i2 last of 3 -> DCG = 1/log2(4) = 0.5, IDCG = 1
    ])
    i2p = np.array([
        [0.7, 0.2, 0.5],  # item 0 (a): r0=0.7 > r2=0.5 -> r0 pos 1; r1=0.2 < 0.5 -> pos 2
        [0.5, 0.9, 0.5],  # item 1 (a): r0=0.5 ties r2=0.5 -> pessimistic pos 2; r1 pos 1
        [0.1, 0.8, 0.3],  # item 2 (b): r2=0.3 vs other users' rollouts r0=0.1, r1=0.8 -> pos 2
    ])
    out = bidirectional_reward(p2i, i2p, ["a", "a", "b"], ["a", "a", "b"], weights=(0.5, 0.5))
    ndcg_a = [1.0, 1.5 / (1 + 1 / L3), 0.5]
    # ndcg_b: r0 = mean(1, 1/log2(3)); r1 = mean(1/log2(3), 1); r2 = 1/log2(3).
    ndcg_b = [(1 + 1 / L3) / 2, (1 / L3 + 1) / 2, 1 / L3]
    assert np.allclose(out["ndcg_a"], ndcg_a)
    assert np.allclose(out["ndcg_b"], ndcg_b)
    assert np.allclose(out["reward"], 0.5 * np.array(ndcg_a) + 0.5 * np.array(ndcg_b))
    weighted = bidirectional_reward(p2i, i2p, ["a", "a", "b"], ["a", "a", "b"], weights=(1.0, 0.0))
    assert np.allclose(weighted["reward"], ndcg_a)


def test_bidirectional_reward_errors():
    p2i = np.zeros((2, 2))
    with pytest.raises(ValueError, match="fewer than 2 users"):
        bidirectional_reward(p2i, p2i.T, ["a", "a"], ["a", "a"])
    with pytest.raises(ValueError, match="no held-out item"):
        bidirectional_reward(p2i, p2i.T, ["a", "b"], ["a", "a"])
    with pytest.raises(ValueError, match="expected"):
        bidirectional_reward(p2i, np.zeros((3, 2)), ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        bidirectional_reward(np.array([[np.nan, 0.0], [0.0, 1.0]]), p2i, ["a", "b"], ["a", "b"])


def test_ndcg_errors():
    with pytest.raises(ValueError, match="no positive"):
        multi_positive_ndcg([1.0, 2.0], [False, False])
    with pytest.raises(ValueError, match="no negative"):
        multi_positive_ndcg([1.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="finite"):
        multi_positive_ndcg([np.nan, 2.0], [True, False])


# ---------- properties ----------

@st.composite
def query(draw, max_n: int = 12):
    """Integer-valued scores (so ties happen often) and a mask with at least one positive and one negative."""
    n = draw(st.integers(2, max_n))
    scores = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    mask = draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda m: any(m) and not all(m)))
    return np.array(scores, dtype=float), np.array(mask)


@settings(max_examples=200, deadline=None)
@given(query(), st.one_of(st.none(), st.integers(1, 12)))
def test_ndcg_in_unit_interval(q, k):
    scores, mask = q
    assert 0.0 <= multi_positive_ndcg(scores, mask, k=k) <= 1.0 + 1e-12


@settings(max_examples=200, deadline=None)
@given(query())
def test_ndcg_is_one_when_positives_strictly_on_top(q):
    _, mask = q
    scores = np.where(mask, 1.0, 0.0) + np.random.default_rng(0).uniform(0, 0.5, len(mask))
    assert multi_positive_ndcg(scores, mask) == pytest.approx(1.0)


@settings(max_examples=200, deadline=None)
@given(query())
def test_all_equal_scores_equal_positives_last(q):
    _, mask = q
    tied = multi_positive_ndcg(np.zeros(len(mask)), mask)
    last = multi_positive_ndcg(np.where(mask, 0.0, 1.0), mask)
    assert tied == pytest.approx(last)


@settings(max_examples=200, deadline=None)
@given(query(), st.randoms(use_true_random=False))
def test_ndcg_invariant_to_candidate_order(q, rnd):
    scores, mask = q
    perm = list(range(len(mask)))
    rnd.shuffle(perm)
    assert multi_positive_ndcg(scores[perm], mask[perm]) == pytest.approx(multi_positive_ndcg(scores, mask))
    assert reciprocal_rank(scores[perm], mask[perm]) == pytest.approx(reciprocal_rank(scores, mask))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10_000))
def test_bidirectional_matches_explicit_rankings(n_users, rollouts, items, seed):
    # ndcg_b of each rollout equals multi_positive_ndcg over its explicit candidate set, averaged.
    rng = np.random.default_rng(seed)
    r_users = [f"u{u}" for u in range(n_users) for _ in range(rollouts)]
    i_users = [f"u{u}" for u in range(n_users) for _ in range(items)]
    p2i = rng.integers(0, 3, (len(r_users), len(i_users))).astype(float)
    i2p = rng.integers(0, 3, (len(i_users), len(r_users))).astype(float)
    out = bidirectional_reward(p2i, i2p, r_users, i_users)
    for r, user in enumerate(r_users):
        cands = [r] + [s for s, v in enumerate(r_users) if v != user]
        expected = np.mean([
            multi_positive_ndcg(i2p[j, cands], [True] + [False] * (len(cands) - 1))
            for j, v in enumerate(i_users) if v == user
        ])
        assert out["ndcg_b"][r] == pytest.approx(expected)
        assert out["ndcg_a"][r] == pytest.approx(multi_positive_ndcg(p2i[r], np.array(i_users) == user))
    assert np.all((out["reward"] >= 0) & (out["reward"] <= 1 + 1e-12))


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(0, 10_000))
def test_center_is_invariant_to_row_and_column_offsets(n, m, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, m))
    shifted = base + rng.normal(size=(n, 1)) + rng.normal(size=(1, m))
    assert np.allclose(calibrate(shifted, "center-transductive"), calibrate(base, "center-transductive"))
    # and it serves both directions: centring the transpose is the transpose of the centred matrix
    assert np.allclose(calibrate(base.T, "center-transductive"), calibrate(base, "center-transductive").T)
