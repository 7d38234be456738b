"""The reward fails loudly and cannot be won by saying nothing or copying.

Empty profiles score 0 without reaching the judge; NaN/inf judge scores raise with the texts; copy
penalties lower copying profiles and never push a reward below 0. Pessimistic ties are tested with
the ranking functions in tests/test_ranking.py."""

from __future__ import annotations

import pytest
from fakes import OverlapJudge
from test_reward import GOOD, batch

from bump_profiles.errors import BumpError
from bump_profiles.rewards.bump import BumpReward


def test_empty_profiles_get_zero_and_never_reach_the_judge():
    judge = OverlapJudge()
    cols = batch({"u1": [GOOD["u1"], "   "], "u2": [GOOD["u2"], ""], "u3": [GOOD["u3"], "\n"]})
    rewards = BumpReward(judge)(**cols)
    assert rewards[1] == rewards[3] == rewards[5] == 0.0
    assert all(r > 0 for r in rewards[0::2])
    assert judge.calls[0][0] == [GOOD["u1"], GOOD["u2"], GOOD["u3"]]


def test_non_finite_scores_show_the_texts():
    with pytest.raises(BumpError, match="POISON"):
        BumpReward(OverlapJudge(poison="POISON"))(**batch({"u1": ["POISON profile"], "u2": [GOOD["u2"]]}))


def test_copy_penalties_lower_copying_profiles():
    copier = "galaxy telescope orbit and comet nebula telescope"
    history = {"u1": ["galaxy telescope orbit and comet nebula telescope"], "u2": ["bread"], "u3": ["games"]}
    cols = batch({"u1": [copier], "u2": [GOOD["u2"]], "u3": [GOOD["u3"]]})
    cols["history"] = [history[u] for u in cols["user_id"]]
    plain_log: dict[str, float] = {}
    plain = BumpReward(OverlapJudge())(**cols, log_metric=plain_log.__setitem__)
    assert plain_log["copy_rate_4"] == pytest.approx(1 / 3)  # the copier copies all its 4-grams
    copy_log: dict[str, float] = {}
    shaped = BumpReward(OverlapJudge(), copy_penalty=0.5, copy_threshold=0.3)(**cols, log_metric=copy_log.__setitem__)
    # copy rate 1.0 -> penalty 0.5 * (1.0 - 0.3) = 0.35
    assert shaped[0] == pytest.approx(max(plain[0] - 0.35, 0.0)) and shaped[0] < plain[0]
    assert shaped[1:] == plain[1:]
    assert copy_log["copy_penalty"] == pytest.approx(0.35 / 3)
    span_log: dict[str, float] = {}
    spans = BumpReward(OverlapJudge(), max_copied_span=5, span_penalty=0.2)(**cols, log_metric=span_log.__setitem__)
    # all 7 words sit in a verbatim span longer than 5 -> share 1 -> penalty 0.2
    assert spans[0] == pytest.approx(max(plain[0] - 0.2, 0.0))
    assert span_log["long_span_share"] == pytest.approx(1 / 3)


def test_penalties_never_go_below_zero():
    long = "filler " * 200
    cols = batch({"u1": [long], "u2": [GOOD["u2"]]})
    shaped = BumpReward(OverlapJudge(), length_target=10, length_penalty=1.0)(**cols)
    assert shaped[0] == 0.0




def test_one_user_with_only_empty_rollouts_scores_zero_instead_of_failing_the_step():
    """B=3 users, one of whom wrote only empty rollouts. Its items stay candidates,
    its rollouts earn 0 (no advantage within its group), the others are scored as usual. Only when
    fewer than 2 users have a non-empty profile is there nothing to rank against (an error)."""
    cols = batch({"u1": ["", "  "], "u2": [GOOD["u2"], GOOD["u2"]], "u3": [GOOD["u3"], "chess"]})
    rewards = BumpReward(OverlapJudge(), min_users=3)(**cols)
    assert rewards[:2] == [0.0, 0.0] and all(r > 0 for r in rewards[2:])
    with pytest.raises(BumpError, match="non-empty profile"):
        BumpReward(OverlapJudge(), min_users=3)(**batch({"u1": [""], "u2": [""], "u3": [GOOD["u3"]]}))
