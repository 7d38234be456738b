"""BumpReward with a fake deterministic judge (bag-of-words overlap), plus one slow test on MiniLM."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from fakes import OverlapJudge

from bump_profiles.errors import BumpError, ConfigError
from bump_profiles.judges.ranking import bidirectional_reward, calibrate
from bump_profiles.rewards import bump as bump_module
from bump_profiles.rewards.bump import BumpReward
from bump_profiles.rewards.rows import RewardRow, completion_text
from bump_profiles.rewards.scoring import NULL_TEXT, score_matrices

HELD = {
    "u1": ["galaxy telescope orbit", "comet nebula telescope"],
    "u2": ["sourdough oven flour", "croissant butter dough"],
    "u3": ["chess gambit endgame", "rook knight pawn"],
}
GOOD = {"u1": "loves telescope galaxy comet nebula", "u2": "bakes sourdough croissant with butter", "u3": "plays chess endgame with rook"}


def batch(profiles: dict[str, list[str]]):
    """TRL-style columns: one row per completion, rollouts of a user contiguous."""
    users, completions, held = [], [], []
    for user, texts in profiles.items():
        for t in texts:
            users.append(user)
            completions.append(t)
            held.append(HELD[user])
    return dict(prompts=["p"] * len(users), completions=completions, user_id=users, heldout=held)


def test_reward_matches_ranking_of_judge_matrices():
    judge = OverlapJudge()
    cols = batch({u: [GOOD[u], "a generic person"] for u in HELD})
    rewards = BumpReward(judge, calibration="none")(**cols)
    items = [t for u in HELD for t in HELD[u]]
    item_users = [u for u in HELD for _ in HELD[u]]
    p2i = OverlapJudge().score(cols["completions"], items, "A")
    expected = bidirectional_reward(p2i, p2i.T, cols["user_id"], item_users)["reward"]
    assert np.allclose(rewards, expected)
    # good profiles beat the generic ones of the same user
    assert all(rewards[2 * i] > rewards[2 * i + 1] for i in range(3))
    # symmetric judge: one pass only
    assert len(judge.calls) == 1 and judge.calls[0][2] == "A"


def test_asymmetric_judge_gets_a_second_pass():
    judge = OverlapJudge(symmetric=False)
    BumpReward(judge, calibration="none")(**batch({u: [GOOD[u]] for u in HELD}))
    assert [c[2] for c in judge.calls] == ["A", "B"]


def test_null_calibration_scores_only_the_null_text_beside_the_batch():
    judge = OverlapJudge(symmetric=False)
    cols = batch({u: [GOOD[u]] for u in HELD})
    BumpReward(judge, calibration="empty")(**cols)
    items = [t for u in HELD for t in HELD[u]]
    # two batch passes, then the empty profile against the items (A) and the empty item against the profiles (B)
    assert [(c[0], c[2]) for c in judge.calls[2:]] == [([NULL_TEXT], "A"), ([NULL_TEXT], "B")]
    assert judge.calls[2][1] == items and judge.calls[3][1] == cols["completions"]


def test_score_matrices_calibrates_both():
    judge = OverlapJudge()
    p2i, i2p = score_matrices(judge, ["a b", "c d"], ["a", "c", "b d"], "center-transductive")
    raw = OverlapJudge().score(["a b", "c d"], ["a", "c", "b d"], "A")
    assert np.allclose(p2i, calibrate(raw, "center-transductive")) and np.allclose(i2p, calibrate(raw.T, "center-transductive"))
    # null: minus each column's score against the empty text (an overlap judge scores 0 against it)
    p2i, i2p = score_matrices(judge, ["a b", "c d"], ["a", "c", "b d"], "empty")
    assert np.allclose(p2i, raw) and np.allclose(i2p, raw.T)


@pytest.mark.parametrize("mode", ["center-transductive", "center"])
def test_reward_refuses_batch_centring(mode):
    with pytest.raises(ConfigError, match="transductive|renamed"):
        BumpReward(OverlapJudge(), calibration=mode)


def test_chat_completions_are_read():
    cols = batch({u: [GOOD[u]] for u in HELD})
    chat = dict(cols, completions=[[{"role": "assistant", "content": c}] for c in cols["completions"]])
    assert BumpReward(OverlapJudge())(**chat) == BumpReward(OverlapJudge())(**cols)
    assert completion_text([{"role": "assistant", "content": "x"}]) == "x"
    with pytest.raises(BumpError):
        completion_text(42)


def test_one_user_is_an_error():
    with pytest.raises(BumpError, match="distinct user"):
        BumpReward(OverlapJudge())(**batch({"u1": [GOOD["u1"], "other"]}))


def test_one_user_with_nonempty_profiles_is_an_error():
    with pytest.raises(BumpError, match="non-empty"):
        BumpReward(OverlapJudge())(**batch({"u1": [GOOD["u1"]], "u2": [" "]}))


def test_logged_metrics():
    logged: dict[str, float] = {}
    cols = batch({u: [GOOD[u], ""] for u in HELD})
    rewards = BumpReward(OverlapJudge())(**cols, log_metric=logged.__setitem__)
    assert logged["distinct_users"] == 3.0
    assert logged["empty_share"] == pytest.approx(0.5)
    assert 0 < logged["ndcg_a"] <= 1 and 0 < logged["ndcg_b"] <= 1
    # tokens: 5, 0, 5, 0, 5, 0 whitespace words
    assert logged["profile_tokens"] == pytest.approx(15 / 6)
    assert len(rewards) == 6


def test_length_penalty_is_per_token_past_the_target():
    long = GOOD["u1"] + " filler" * 20  # 25 words: 15 past a target of 10
    cols = batch({"u1": [long], "u2": [GOOD["u2"]], "u3": [GOOD["u3"]]})
    plain = BumpReward(OverlapJudge())(**cols)
    logged: dict[str, float] = {}
    shaped = BumpReward(OverlapJudge(), length_target=10, length_penalty=0.01)(**cols, log_metric=logged.__setitem__)
    # penalty = 0.01 per token x 15 tokens past the target = 0.15, on the long one only
    assert plain[0] > 0.15
    assert shaped[0] == pytest.approx(plain[0] - 0.15)
    assert shaped[1:] == plain[1:]
    assert logged["length_penalty"] == pytest.approx(0.15 / 3)
    assert logged["over_target_share"] == pytest.approx(1 / 3)


def test_length_floor_charges_each_token_short_of_it_at_the_same_rate():
    short = "telescope"  # 1 word: 4 short of a floor of 5; GOOD profiles are 5 words, inside [5, 10]
    cols = batch({"u1": [short], "u2": [GOOD["u2"]], "u3": [GOOD["u3"]]})
    plain = BumpReward(OverlapJudge())(**cols)
    logged: dict[str, float] = {}
    shaped = BumpReward(OverlapJudge(), length_target=10, length_penalty=0.01, length_floor=5)(**cols, log_metric=logged.__setitem__)
    assert plain[0] > 0.04
    assert shaped[0] == pytest.approx(plain[0] - 0.04)
    assert shaped[1:] == plain[1:]
    assert logged["under_floor_share"] == pytest.approx(1 / 3) and logged["over_target_share"] == 0
    assert logged["length_penalty"] == pytest.approx(0.04 / 3)


def test_repetition_penalty_charges_repeated_3grams_and_is_logged():
    looping = "telescope galaxy comet. telescope galaxy comet. telescope galaxy comet."  # 9 words, 7 3-grams
    cols = batch({"u1": [looping], "u2": [GOOD["u2"]], "u3": [GOOD["u3"]]})
    plain = BumpReward(OverlapJudge())(**cols)
    logged: dict[str, float] = {}
    shaped = BumpReward(OverlapJudge(), repetition_penalty=0.5)(**cols, log_metric=logged.__setitem__)
    # distinct 3-grams: (tel gal com) (gal com tel) (com tel gal) = 3 of 7 -> repeated share 4/7
    assert shaped[0] == pytest.approx(max(plain[0] - 0.5 * 4 / 7, 0.0)) and shaped[0] < plain[0]
    assert shaped[1:] == plain[1:]  # the good profiles repeat nothing
    assert logged["repeated_3gram_share"] == pytest.approx(4 / 7 / 3)
    assert logged["repetition_penalty"] == pytest.approx(0.5 * 4 / 7 / 3)


def test_min_users_counts_distinct_users_and_two_need_a_non_empty_profile():
    # a user whose rollouts are all empty no longer fails the step (it scores 0); the call
    # still needs min_users distinct users and 2 of them with a profile to rank against each other
    cols = batch({"u1": [GOOD["u1"]], "u2": [GOOD["u2"]], "u3": [""]})  # 3 users, 2 with a profile
    assert BumpReward(OverlapJudge(), min_users=3)(**cols)[2] == 0.0
    with pytest.raises(BumpError, match="distinct user"):
        BumpReward(OverlapJudge(), min_users=4)(**cols)
    with pytest.raises(BumpError, match="non-empty profile"):
        BumpReward(OverlapJudge(), min_users=2)(**batch({"u1": [GOOD["u1"]], "u2": [""]}))


def test_copy_penalty_needs_history_column():
    with pytest.raises(BumpError, match="history"):
        BumpReward(OverlapJudge(), copy_penalty=1.0)(**batch({u: [GOOD[u]] for u in HELD}))


@pytest.mark.parametrize("kwargs", [
    {"calibration": "zscore"}, {"weights": (-1.0, 1.0)}, {"min_users": 1},
    {"length_penalty": 0.1}, {"span_penalty": 0.1}, {"copy_threshold": 2.0}, {"repetition_penalty": -0.1},
    {"length_floor": 5}, {"length_target": 10, "length_penalty": 0.1, "length_floor": 11},
])
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        BumpReward(OverlapJudge(), **kwargs)


def test_plain_picklable_callable():
    import torch

    r = BumpReward(OverlapJudge(), length_target=10, length_penalty=0.1)
    assert r.__name__ == "bump" and not isinstance(r, torch.nn.Module)
    clone = pickle.loads(pickle.dumps(r))
    cols = batch({u: [GOOD[u]] for u in HELD})
    assert clone(**cols) == r(**cols)


def test_multi_process_gather_scores_the_whole_batch(monkeypatch):
    # Simulate 2 processes: each sees half the rows; gather_rows hands back every row and its offset.
    cols = batch({u: [GOOD[u], "a generic person"] for u in HELD})
    whole = BumpReward(OverlapJudge())(**cols)
    rows = [RewardRow(u, list(h), None, c) for u, h, c in zip(cols["user_id"], cols["heldout"], cols["completions"], strict=True)]
    halves = [slice(0, 3), slice(3, 6)]  # user u2's two rollouts are split across the processes
    got = []
    for rank, part in enumerate(halves):
        monkeypatch.setattr(bump_module, "gather_rows", lambda local, rank=rank: (rows, 3 * rank))
        local = {k: v[part] for k, v in cols.items()}
        got += BumpReward(OverlapJudge())(**local)
    assert got == whole


@pytest.mark.slow
def test_real_embedding_judge_prefers_true_interests():
    from bump_profiles.data import split_users
    from bump_profiles.data.synthetic import interests_profile, make_users
    from bump_profiles.judges import JudgeConfig, make_judge

    split = split_users(make_users(4, seed=1), 3)
    judge = make_judge(JudgeConfig(kind="embedding"))
    cols = {"prompts": [], "completions": [], "user_id": [], "heldout": []}
    for s in split.users:
        for profile in (interests_profile(s.user), "A person who likes many things."):
            cols["prompts"].append("p")
            cols["completions"].append(profile)
            cols["user_id"].append(s.user.id)
            cols["heldout"].append([it.text for it in s.heldout])
    rewards = BumpReward(judge)(**cols)
    true, generic = rewards[0::2], rewards[1::2]
    assert np.mean(true) > np.mean(generic)
    assert np.mean(true) > 0.8
