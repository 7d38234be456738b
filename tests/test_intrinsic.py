"""Intrinsic evaluation: grouping, pseudo-profiles, metrics beside random, the `judge eval` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import OverlapJudge

from bump_profiles.cli import main
from bump_profiles.data import Interaction, User, split_users, write_users_jsonl
from bump_profiles.data.synthetic import TOPICS, interests_profile, make_users
from bump_profiles.errors import DataError
from bump_profiles.evaluation.intrinsic import (
    ScoredGroup,
    evaluate_profiles,
    groups_of,
    pseudo_profiles,
    ranking_metrics,
)
from bump_profiles.judges.calibration import DEFAULT_CALIBRATION
from bump_profiles.profiles.stats import words
from bump_profiles.rewards.scoring import RawScores


def test_groups_of():
    assert groups_of(5, None) == [range(0, 5)]
    assert groups_of(6, 2) == [range(0, 2), range(2, 4), range(4, 6)]
    # a last group of one user joins the one before it
    assert groups_of(5, 2) == [range(0, 2), range(2, 5)]
    assert groups_of(3, 10) == [range(0, 3)]
    with pytest.raises(DataError):
        groups_of(1, None)
    with pytest.raises(DataError):
        groups_of(4, 1)


def test_ranking_metrics_hand_worked():
    # Users a, b with one item each. Direction A is perfect; direction B: item b ranks profile a above b.
    group = ScoredGroup(
        users=["a", "b"], item_users=["a", "b"],
        raw=RawScores(np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.5]])),
    )
    m = ranking_metrics([group], "none")
    assert m["ndcg_a"] == 1.0 and m["mrr_a"] == 1.0 and m["recall1_a"] == 1.0
    # B: item a -> profile a first (1); item b -> profile b second: NDCG 1/log2(3), RR 1/2, hit 0.
    assert m["ndcg_b"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert m["mrr_b"] == pytest.approx(0.75)
    assert m["recall1_b"] == pytest.approx(0.5)
    # random with 2 candidates, 1 positive: NDCG (1 + 1/log2 3)/2, MRR 3/4, R@1 1/2.
    assert m["ndcg_a_random"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert m["mrr_b_random"] == pytest.approx(0.75) and m["recall1_a_random"] == 0.5


def test_pseudo_profiles_take_the_most_recent_titles():
    items = [Interaction(id=str(i), fields={"title": f"t{i}", "abstract": "x"}, source="LaMP_1") for i in range(6)]
    split = split_users([User("u", items)], 2)
    # history = items 0..3; the last 3 titles, oldest first
    assert pseudo_profiles(split.users, "history-titles", 3) == {"u": "t1\nt2\nt3"}
    assert pseudo_profiles(split.users, "history", 1)["u"] == items[3].text
    with pytest.raises(DataError):
        pseudo_profiles(split.users, "nope")


def test_true_interests_beat_random_and_generic():
    split = split_users(make_users(8, seed=3), 3)
    judge = OverlapJudge()
    # the true interests with their whole vocabulary: the profile a word-overlap judge should love
    vocab = {s.user.id: " ".join(w for t in s.user.extra["interests"] for w in TOPICS[t]) for s in split.users}
    true = evaluate_profiles(split.users, vocab, judge, calibrations=("center-transductive", "none"))
    generic = evaluate_profiles(split.users, {s.user.id: "a person" for s in split.users}, judge,
                                calibrations=("empty", "none", "center-transductive"))
    assert true["users"] == 8 and true["items"] == 24 and true["groups"] == 1
    # users share topics (three write poetry), so even the truth is not perfect; raw overlap counts tie a lot
    for c, margin in (("center-transductive", 0.2), ("none", 0.1)):
        m = true["metrics"][c]
        assert m["ndcg_a"] > m["ndcg_a_random"] + margin and m["ndcg_b"] > m["ndcg_b_random"] + margin
    # a constant profile ties everywhere: pessimistic ties put it at the bottom, below random
    for g in generic["metrics"].values():
        assert g["ndcg_a"] < g["ndcg_a_random"] and g["recall1_b"] == 0.0
    assert true["profile_stats"]["profiles"] == 8


def test_grouping_and_missing_profiles():
    split = split_users(make_users(7, seed=4), 2)
    profiles = {s.user.id: interests_profile(s.user) for s in split.users[:6]}
    out = evaluate_profiles(split.users, profiles, OverlapJudge(), group_size=2)
    assert out["missing_profiles"] == [split.users[6].user.id]
    assert out["users"] == 6 and out["groups"] == 3 and out["group_size"] == 2
    # groups of 2 users with 2 items each: direction A has 4 candidates, 2 positives
    from bump_profiles.judges.ranking import random_ndcg

    assert out["metrics"][DEFAULT_CALIBRATION]["ndcg_a_random"] == pytest.approx(random_ndcg(4, 2))


def test_judge_eval_command(tmp_path, monkeypatch, capsys):
    import bump_profiles.judges as judges

    monkeypatch.setattr(judges, "make_judge", lambda config: OverlapJudge())
    users = make_users(6, seed=5)
    data = tmp_path / "users.jsonl"
    write_users_jsonl(users, data)
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text("".join(json.dumps({"user_id": u.id, "profile": interests_profile(u)}) + "\n" for u in users))
    out = tmp_path / "results.json"
    code = main(["judge", "eval", "--data", str(data), "--k", "2", "--offset", "0", "2", "--calibration", "center-transductive", "none",
                 "--profiles", str(profiles), "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert [f["offset"] for f in result["folds"]] == [0, 2]
    fold_values = [f["metrics"]["center-transductive"]["ndcg_a"] for f in result["folds"]]
    assert result["mean"]["center-transductive"]["ndcg_a"] == pytest.approx(sum(fold_values) / 2)
    assert set(result["mean"]) == {"center-transductive", "none"}
    assert "B item->prof" in capsys.readouterr().out
    # pseudo-profiles from the history need no profile file
    code = main(["judge", "eval", "--data", str(data), "--pseudo-profile", "history", "--pseudo-items", "4", "--out", str(out)])
    assert code == 0 and json.loads(out.read_text())["profiles"] == {"pseudo_profile": "history", "items": 4}


def test_judge_eval_reports_bad_profiles_as_one_line(tmp_path, capsys):
    data = tmp_path / "users.jsonl"
    write_users_jsonl(make_users(3), data)
    bad = tmp_path / "p.jsonl"
    bad.write_text("not json\n")
    assert main(["judge", "eval", "--data", str(data), "--profiles", str(bad), "--out", str(tmp_path / "o.json")]) == 2
    assert "line 1" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared
def test_lamp1_embedding_judge_acceptance(lamp_samples):
    """Judge quality, leak-free: real LaMP_1 users, 2 folds, 8-title pseudo-profiles,
    MiniLM, the default calibration (measured 0.891 / 0.878; the old bar 0.90 / 0.88 was met only with
    the leaking batch centring, 0.938 / 0.919)."""
    from bump_profiles.data import load_users
    from bump_profiles.judges import JudgeConfig, make_judge

    users = [u for name in ("train", "dev", "test") for u in load_users(lamp_samples / "LaMP_1" / f"{name}_questions.json")]
    judge = make_judge(JudgeConfig(kind="embedding"))
    folds = []
    for offset in (0, 2):
        split = split_users(users, 2, offset=offset)
        folds.append(evaluate_profiles(split.users, pseudo_profiles(split.users, "history-titles", 8), judge)["metrics"][DEFAULT_CALIBRATION])
    assert len(users) == 12
    assert np.mean([f["ndcg_a"] for f in folds]) >= 0.88
    assert np.mean([f["ndcg_b"] for f in folds]) >= 0.87


GENERIC = "This user likes many things: telescope, sourdough, bicycle, gambit, compost, saxophone, trail."


class SmoothedOverlapJudge:
    """Cosine-like word overlap with a prior, so the empty text scores by length, not 0: ``empty`` bites."""

    symmetric = True

    def score(self, queries, documents, direction):
        q, d = [set(words(t)) for t in queries], [set(words(t)) for t in documents]
        return np.array([[(len(a & b) + 0.5) / np.sqrt((len(a) + 1) * (len(b) + 1)) for b in d] for a in q])


def test_judge_eval_per_user_and_generic_profiles_earn_no_batch_bonus(tmp_path, monkeypatch):
    """Leak-free calibration: half the users share one generic profile, the others have accurate ones.

    Under every calibration that training accepts, no generic user scores more than 0.05 above its
    ``none`` score; the transductive batch centring pays them far more (the leak it is refused for).
    """
    import bump_profiles.judges as judges
    from bump_profiles.judges.calibration import CALIBRATIONS, TRAINING_CALIBRATIONS

    monkeypatch.setattr(judges, "make_judge", lambda config: SmoothedOverlapJudge())
    users = make_users(10, seed=7)
    generic = {u.id for u in users[::2]}
    data, profiles, out = tmp_path / "users.jsonl", tmp_path / "profiles.jsonl", tmp_path / "r.json"
    write_users_jsonl(users, data)
    profiles.write_text("".join(
        json.dumps({"user_id": u.id, "profile": GENERIC if u.id in generic else interests_profile(u)}) + "\n" for u in users))
    assert main(["judge", "eval", "--data", str(data), "--k", "2", "--profiles", str(profiles), "--out", str(out),
                 "--calibration", *CALIBRATIONS]) == 0
    per_user = json.loads(out.read_text())["folds"][0]["per_user"]
    assert set(per_user) == set(CALIBRATIONS)
    assert set(per_user["none"]) == {u.id for u in users}
    assert all(set(v) == {"ndcg_a", "ndcg_b"} for v in per_user["none"].values())
    # per-user means are the fold's means: A over profiles, B over items (k = 2 per user)
    fold = json.loads(out.read_text())["folds"][0]["metrics"]["none"]
    assert np.mean([v["ndcg_a"] for v in per_user["none"].values()]) == pytest.approx(fold["ndcg_a"])
    assert np.mean([v["ndcg_b"] for v in per_user["none"].values()]) == pytest.approx(fold["ndcg_b"])
    for c in TRAINING_CALIBRATIONS:
        for u in generic:
            for d in ("ndcg_a", "ndcg_b"):
                assert per_user[c][u][d] <= per_user["none"][u][d] + 0.05, (c, u, d)
    gain = max(per_user["center-transductive"][u][d] - per_user["none"][u][d] for u in generic for d in ("ndcg_a", "ndcg_b"))
    assert gain > 0.05
    assert per_user["empty"] != per_user["none"]  # the null text's scores do change the ranking here


def test_demo_intrinsic_rows_and_report_show_repetition(tmp_path):
    from bump_profiles.evaluation.demo import intrinsic_table
    from bump_profiles.evaluation.report import build_markdown

    splits = split_users(make_users(6, seed=2), 2).users
    honest = {s.user.id: interests_profile(s.user) for s in splits}
    looping = {u: "Likes tea. Likes tea. Likes tea. Likes tea." for u in honest}
    table = intrinsic_table(splits, {"zero-shot profile": honest, "BUMP profile": looping}, {"overlap": OverlapJudge()},
                            lambda t: len(t.split()))
    rows = {r["name"]: r for r in table["rows"]}
    assert rows["zero-shot profile"]["repeated_sentences"] == 0.0
    assert rows["BUMP profile"]["repeated_sentences"] == pytest.approx(3 / 4)
    assert rows["BUMP profile"]["repeated_3grams"] == pytest.approx(1 - 2 / 6)  # 8 words, 6 3-grams, 2 distinct
    (tmp_path / "intrinsic.json").write_text(json.dumps(table))
    report = build_markdown(tmp_path, [])
    assert "repeated_sentences" in report
    assert f"**How to read it:** {table['read']}" in report and "history@budget" in table["read"]
