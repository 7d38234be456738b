"""Reward options (bank, queue, ensemble, spread reward items), headroom metrics and best-of-N:
every option off is today's reward exactly; no user's own items or profiles become its negatives;
evaluation users never reach the bank; best-of-N is reproducible from its seed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fakes import OverlapJudge

from bump_profiles.config import load_config
from bump_profiles.data.schema import Interaction
from bump_profiles.engines.backends import TransformersBackend
from bump_profiles.errors import ConfigError
from bump_profiles.judges import JudgeConfig
from bump_profiles.judges.ensemble import EnsembleJudge
from bump_profiles.judges.ranking import bidirectional_reward, rank_fusion
from bump_profiles.rewards.alignment import layout, reward_items, spearman, within_user_spearman
from bump_profiles.rewards.bestof import pick, reward_window, sample_all, sample_candidates
from bump_profiles.rewards.bump import BumpReward
from bump_profiles.rewards.contrast import PopulationBank, ProfileQueue, nearest_users
from bump_profiles.rewards.rows import RewardRow
from bump_profiles.train.data import prepare_data
from bump_profiles.train.run import build_rewards

REPO = Path(__file__).resolve().parents[1]


class HashJudge:
    """Deterministic pseudo-random scores per (direction, query, document): every rank differs."""

    symmetric = False

    def score(self, queries, documents, direction):
        return np.array([[int(hashlib.sha256(f"{direction}|{a}|{b}".encode()).hexdigest()[:6], 16) % 97 / 10
                          for b in documents] for a in queries], dtype=np.float64)


def hash_rows() -> list[RewardRow]:
    users = ["u0", "u1", "u2", "u3"]
    return [RewardRow(u, [f"{u} item {j}" for j in range(3)], [f"{u} old {j}" for j in range(2)],
                      f"{u} profile {r} words here") for u in users for r in range(3)]


# Today's rewards of hash_rows(), computed by the main branch's BumpReward before any option existed
# (commit ac529ad, /work/main): with every new option off the reward must stay exactly these.
TODAY = [0.541936219983, 0.441970233582, 0.503462479283, 0.648110105563, 0.469755839597, 0.38116251083,
         0.646313295818, 0.463708556815, 0.457485119211, 0.482076109494, 0.644309130846, 0.549357296115]
TODAY_SHAPED = [0.711320621755, 0.637547038163, 0.680599347778, 0.61149567034, 0.434757411148, 0.342951765185,
                0.466005216017, 0.560876616544, 0.412987848626, 0.366033926262, 0.345635983375, 0.396601959131]


def test_every_option_off_is_todays_reward_exactly():
    plain, _ = BumpReward(HashJudge(), min_users=2).score_rows(hash_rows())
    shaped, _ = BumpReward(HashJudge(), min_users=2, calibration="empty", length_target=3,
                           length_penalty=0.02).score_rows(hash_rows())
    assert plain == pytest.approx(TODAY, abs=1e-11)
    assert shaped == pytest.approx(TODAY_SHAPED, abs=1e-11)
    # and the config with no option set builds a reward with no bank and no queue
    config = load_config(REPO / "configs" / "test-tiny.yaml")
    (reward,) = build_rewards(config, judge=HashJudge(), train_splits=prepare_data(config).train)
    assert reward.bank is None and reward.queue is None


def test_headroom_metrics_are_logged_and_exact():
    rows = [RewardRow(u, [f"{u} a", f"{u} b"], None, text) for u, text in
            [("x", "x a b"), ("x", "x a b"), ("y", "y a"), ("y", "q")]]
    rewards, metrics = BumpReward(OverlapJudge(), min_users=2).score_rows(rows)
    assert {"at_max_share", "group_spread", "ndcg_a_batch"} <= set(metrics)
    assert metrics["at_max_share"] == pytest.approx(np.mean(np.asarray(rewards) >= 1 - 1e-12))
    spread_x, spread_y = np.std(rewards[:2]), np.std(rewards[2:])
    assert spread_x == 0 and metrics["group_spread"] == pytest.approx((spread_x + spread_y) / 2)
    assert metrics["ndcg_a_batch"] == metrics["ndcg_a"]  # no bank: the batch is all there is


def test_bank_never_holds_a_batch_users_items_and_only_adds_negatives():
    bank = PopulationBank({"u0": ["u0 other item"], "b1": ["chess item zz"], "b2": ["bread"]}, users=3, seed=0)
    texts, owners = bank.draw(["u0", "u1"])
    assert "u0" not in owners and "u0 other item" not in texts and set(owners) == {"b1", "b2"}
    rows = hash_rows()
    plain, _ = BumpReward(HashJudge(), min_users=2).score_rows(rows)
    banked, metrics = BumpReward(HashJudge(), min_users=2, bank=PopulationBank(
        {"u0": ["u0 item 0"], "b1": ["b1 x", "b1 y"], "b2": ["b2 z"]}, users=5, seed=0)).score_rows(rows)
    # u0's own item offered by the bank under another owner would be a wrong negative: it is dropped
    assert metrics["bank_items"] == 3
    # extra negatives can only lower direction A, never raise it; B is unchanged
    assert all(b <= p + 1e-12 for b, p in zip(banked, plain, strict=True)) and banked != plain
    assert metrics["ndcg_a"] <= metrics["ndcg_a_batch"]


def test_bank_ndcg_matches_ranking_against_the_bank_items_directly():
    rows = hash_rows()
    bank = PopulationBank({"b1": ["b1 x", "b1 y"]}, users=1, seed=0)
    got, _ = BumpReward(HashJudge(), min_users=2, bank=bank).score_rows(rows)
    items = [t for u in ("u0", "u1", "u2", "u3") for t in rows[3 * int(u[1])].heldout] + ["b1 x", "b1 y"]
    owners = [u for u in ("u0", "u1", "u2", "u3") for _ in range(3)] + ["b1", "b1"]
    judge, profiles = HashJudge(), [r.profile for r in rows]
    ref = bidirectional_reward(judge.score(profiles, items, "A"), judge.score(items, profiles, "B"),
                               [r.user_id for r in rows], owners)
    assert got == pytest.approx(ref["reward"].tolist())


def test_hard_negatives_are_the_nearest_users():
    histories = {"chess": ["chess gambit opening"], "chess2": ["chess endgame gambit"], "bread": ["sourdough bread"],
                 "run": ["marathon running"], "bread2": ["bread oven crust"]}
    near = nearest_users(histories)
    assert near["chess"][0] == "chess2" and near["bread"][0] == "bread2"
    bank = PopulationBank({u: [f"{u} item"] for u in histories}, users=1, hard_share=1.0, neighbours=near, seed=3)
    assert bank.draw(["chess"])[1] == ["chess2"]
    with pytest.raises(ConfigError):
        PopulationBank({"a": ["x"]}, users=1, hard_share=0.5)


def test_queue_never_offers_a_profile_of_a_user_being_scored():
    queue = ProfileQueue(size=10)
    queue.push(["u0", "z9"], ["u0 profile 0 words here", "z9 something"])
    assert [e.user_id for e in queue.negatives(["u0", "u1"])] == ["z9"]
    rows = hash_rows()
    plain, _ = BumpReward(HashJudge(), min_users=2).score_rows(rows)
    # u0's own rollout text queued as if from an earlier call: it must not count against u0
    q = ProfileQueue(size=10)
    q.push(["u0"] * 3, [r.profile for r in rows[:3]])
    again, metrics = BumpReward(HashJudge(), min_users=2, queue=q).score_rows(rows)
    assert again == plain and metrics["queue_negatives"] == 0
    # another user's queued profile is a real negative of direction B (never raises a reward); its age is logged
    q2 = ProfileQueue(size=20)
    q2.push(["z9"], ["u0 item 0 u1 item 1 u2 item 2"])
    q2.push(["z8"], ["whatever"])
    lower, metrics = BumpReward(HashJudge(), min_users=2, queue=q2).score_rows(rows)
    assert all(x <= p + 1e-12 for x, p in zip(lower, plain, strict=True)) and lower != plain
    assert metrics["queue_negatives"] == 2 and metrics["queue_age"] == pytest.approx(1.5)
    assert len(q2.entries) == 2 + len(rows)  # this call's profiles were queued afterwards


def test_evaluation_users_never_enter_the_bank_or_the_reward():
    config = load_config(REPO / "configs" / "test-tiny.yaml", ["reward.contrast.bank_users=3", "reward.contrast.hard_share=0.5",
                                                               "reward.contrast.queue_size=8"])
    data = prepare_data(config)
    (reward,) = build_rewards(config, judge=HashJudge(), train_splits=data.train)
    eval_ids = {s.user.id for s in data.eval}
    eval_texts = {it.text for s in data.eval for it in (*s.history, *s.heldout)}
    assert eval_ids and not eval_ids & set(reward.bank.items)
    assert not eval_texts & {t for items in reward.bank.items.values() for t in items}
    for _ in range(5):
        texts, owners = reward.bank.draw([s.user.id for s in data.train[:2]])
        assert not eval_ids & set(owners) and not eval_texts & set(texts)
    with pytest.raises(ConfigError, match="training users"):
        build_rewards(config, judge=HashJudge())


def test_reward_options_validate():
    with pytest.raises(ConfigError, match="hard_share"):
        load_config(None, ["reward.contrast.hard_share=0.5"])
    with pytest.raises(ConfigError, match="top_p"):
        load_config(None, ["grpo.top_p=0"])
    with pytest.raises(ConfigError, match="members"):
        JudgeConfig(kind="ensemble", members=[JudgeConfig()])
    cfg = load_config(None, ["judge.kind=ensemble", "judge.members=[{kind: embedding}, {kind: lexical, model: c.txt}]"])
    assert [m.kind for m in cfg.judge.members] == ["embedding", "lexical"]


def test_rank_fusion_and_ensemble_judge():
    a = np.array([[3.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    b = np.array([[10.0, 30.0, 20.0], [1.0, 2.0, 3.0]])
    fused = rank_fusion([a, b])
    assert fused == pytest.approx(np.array([[0.5, 0.5, 0.5], [0.125, 0.375, 1.0]]))
    judge = EnsembleJudge([OverlapJudge(), HashJudge()])
    m = judge.score(["chess gambit", "bread"], ["chess", "bread oven", "run"], "A")
    assert m.shape == (2, 3) and (m >= 0).all() and (m <= 1).all()


def items(n: int) -> list[Interaction]:
    return [Interaction(id=str(i), fields={"text": f"item {i}"}, date=f"2020-01-{i + 1:02d}") for i in range(n)]


def test_spread_reward_items_and_layout():
    horizon = items(16)
    assert [it.id for it in reward_items(horizon, 4, spread=False)] == ["0", "1", "2", "3"]
    assert [it.id for it in reward_items(horizon, 4, spread=True)] == ["0", "5", "10", "15"]
    assert len(reward_items(horizon, 16, spread=True)) == 16
    lay = layout("a", items(40))
    assert [len(lay.read), len(lay.horizon), len(lay.near), len(lay.far)] == [16, 16, 2, 6]
    assert lay.read[-1].id == "15" and lay.near[0].id == "32"
    read, pos = reward_window(items(10), 4)
    assert [it.id for it in pos] == ["6", "7", "8", "9"] and len(read) == 6


def test_training_horizon_spreads_the_heldout_items_and_the_generator_reads_none_of_the_horizon():
    config = load_config(REPO / "configs" / "test-tiny.yaml", ["data.k=2", "data.horizon=4"])
    plain = prepare_data(load_config(REPO / "configs" / "test-tiny.yaml", ["data.k=4"]))
    spread = prepare_data(config)
    for s, p in zip(spread.train, plain.train, strict=True):
        assert s.history == p.history  # the generator reads what precedes the whole horizon
        assert s.heldout == [p.heldout[0], p.heldout[3]]


def test_within_user_spearman():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    rho = within_user_spearman({"a": [1, 2, 3], "b": [1, 1, 1]}, {"a": [3, 2, 1], "b": [1, 2, 3]})
    assert rho == {"a": pytest.approx(-1.0)}
    assert pick([0.2, 0.9, 0.9]) == 1


def test_best_of_is_reproducible_from_the_seed(tiny_lm, tmp_path):
    model, tok = tiny_lm
    backend = TransformersBackend(model, tok, batch_size=8, name="tiny")
    msgs = [{"role": "user", "content": "chess opening gambit"}]
    one = sample_candidates(backend, msgs, "ann", n=4, seed=0, temperature=1.0, max_new_tokens=8)
    two = sample_candidates(backend, msgs, "ann", n=4, seed=0, temperature=1.0, max_new_tokens=8)
    other = sample_candidates(backend, msgs, "ann", n=4, seed=1, temperature=1.0, max_new_tokens=8)
    assert one.texts == two.texts and len(set(one.texts)) > 1 and other.texts != one.texts
    # a user's candidates do not depend on the other users in the run, nor on resuming it
    both = sample_all(backend, {"bob": msgs, "ann": msgs}, tmp_path / "c.jsonl", n=4, seed=0, temperature=1.0, max_new_tokens=8)
    assert both["ann"].texts == one.texts
    again = sample_all(backend, {"ann": msgs}, tmp_path / "c.jsonl", n=4, seed=0, temperature=1.0, max_new_tokens=8)
    assert again["ann"].texts == one.texts and len((tmp_path / "c.jsonl").read_text().splitlines()) == 2


def test_profile_best_of_command_records_the_pick(tiny_model, tmp_path, capsys):
    from bump_profiles.cli import main
    from bump_profiles.data import write_users_jsonl
    from bump_profiles.data.synthetic import make_users

    data = tmp_path / "users.jsonl"
    write_users_jsonl(make_users(3, seed=0), data)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("chess opening\nbread baking\nmarathon running\n")
    args = ["profile", "--model", str(tiny_model), "--data", str(data), "--k", "2", "--best-of", "3", "--reward-items", "2",
            "--reward-judge", "lexical", "--reward-corpus", str(corpus), "--max-new-tokens", "6", "--seed", "5"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.jsonl")]) == 0
    capsys.readouterr()
    a = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a == b and len(a) == 3
    for row in a:
        best = row["best_of"]
        assert best["n"] == 3 and best["m"] == 2 and best["seed"] == 5 and len(best["scores"]) == 3
        assert row["profile"] == best["candidates"][best["picked"]]
        assert best["scores"][best["picked"]] == max(best["scores"])
        assert row["read"]["split"]["k"] == 2  # the evaluation items stay unread, and so do the reward's m


def test_short_training_run_logs_headroom_every_step(tiny_model, tmp_path):
    from test_train import BigramJudge, read_metrics, tiny_config

    from bump_profiles.train import train

    run = tmp_path / "run"
    config = tiny_config(tiny_model, run, "reward.contrast.bank_users=3", "reward.contrast.hard_share=0.5", "reward.contrast.queue_size=4",
                         "grpo.top_p=0.9")
    assert train(config, judge=BigramJudge()).global_step == 2
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert 0 <= r["at_max_share"] <= 1 and r["group_spread"] >= 0 and r["bank_items"] > 0
        assert r["ndcg_a"] <= r["ndcg_a_batch"] + 1e-9  # the bank's items are extra negatives
    assert rows[0]["queue_negatives"] == 0 and rows[1]["queue_negatives"] > 0 and rows[1]["queue_age"] >= 1


def test_the_chosen_reward_config_is_the_folds_benchmark_with_its_keys_changed(tmp_path):
    """configs/reward-aligned.yaml extends the folds benchmark: the training authors hold out m=16 articles for
    the reward, the penalties are off, the evaluation (near k=2, horizon 8) and every other key unchanged."""
    import yaml

    from bump_profiles.authors.config import load_bench_config

    aligned = load_bench_config(REPO / "configs" / "reward-aligned.yaml")
    folds = load_bench_config(REPO / "configs" / "authors-folds.yaml")
    (tmp_path / "q.json").write_text("[]")
    bump = aligned.train_config("bump", tmp_path / "q.json", tmp_path / "o.json")
    assert bump.data.k == 16 and aligned.data.k == folds.data.k == 2 and aligned.data.held_out == folds.data.held_out
    assert bump.reward.length_penalty == 0 and bump.reward.repetition_penalty == 0 and bump.reward.length_target is None
    assert bump.judge.kind == "embedding" and bump.reward.bump_options.copy_penalty > 0
    assert aligned.train["prompt"] == folds.train["prompt"] and aligned.out != folds.out
    # a config that extends itself is refused, naming the file
    loop = tmp_path / "loop.yaml"
    loop.write_text(yaml.safe_dump({"extends": "loop.yaml"}))
    with pytest.raises(ConfigError, match="extends itself"):
        load_bench_config(loop)


def test_reward_items_hold_out_more_of_each_training_author_only(tmp_path):
    from authors_fixture import write_authors

    from bump_profiles.authors.bench import Bench
    from bump_profiles.authors.config import load_bench_config

    data = write_authors(tmp_path / "authors.jsonl", n_authors=6)
    sets = [f"out={tmp_path / 'run'}", f"data.path={data}", "data.folds=2", "data.horizon=4", "data.history_cap=30"]
    plain = Bench.open(load_bench_config(REPO / "configs" / "authors-folds.yaml", sets)).split
    more = Bench.open(load_bench_config(REPO / "configs" / "authors-folds.yaml", [*sets, "data.reward_items=6"])).split
    assert {len(s.heldout) for s in plain.train} == {2} and {len(s.heldout) for s in more.train} == {6}
    assert [(s.history, s.heldout) for s in more.eval] == [(s.history, s.heldout) for s in plain.eval]


class CountingEncoder:
    """A stand-in sentence-transformer: a fixed vector per text; counts the texts it encodes."""

    def __init__(self):
        self.encoded: list[str] = []

    def encode(self, texts, **kwargs):
        self.encoded += list(texts)
        return np.array([[len(t), t.count("a") + 1.0, 1.0] for t in texts]) / 10


def test_embedding_cache_encodes_bank_items_once_and_is_off_by_default():
    from bump_profiles.judges.embedding import EmbeddingJudge

    plain, cached = EmbeddingJudge(CountingEncoder()), EmbeddingJudge(CountingEncoder(), cache_size=100)
    for judge in (plain, cached):
        first = judge.score(["p1"], ["bank a", "bank b"], "A")
        second = judge.score(["p2"], ["bank a", "bank b"], "A")
        assert first.shape == second.shape == (1, 2)
    assert plain.model.encoded == ["p1", "bank a", "bank b", "p2", "bank a", "bank b"]  # today: every call afresh
    assert cached.model.encoded == ["p1", "bank a", "bank b", "p2"]
    assert np.allclose(plain.score(["p2"], ["bank a"], "A"), cached.score(["p2"], ["bank a"], "A"))


def test_the_chunked_and_gpu_variants_change_only_what_they_say(tmp_path):
    """reward-aligned-chunked.yaml is the chosen reward with chunked reading; reward-aligned-gpu.yaml that at the
    GPU sizes the docs give (B >= 8, G >= 8, >= 150 steps, a bank of 64 authors' items). Both keep the evaluation."""
    from bump_profiles.authors.config import load_bench_config

    (tmp_path / "q.json").write_text("[]")
    configs = {n: load_bench_config(REPO / "configs" / f"{n}.yaml") for n in ("reward-aligned", "reward-aligned-chunked", "reward-aligned-gpu")}
    train = {n: c.train_config("bump", tmp_path / "q.json", tmp_path / "o.json") for n, c in configs.items()}
    aligned, chunked, gpu = train.values()
    assert aligned.prompt.mode == "scratch" and chunked.prompt.mode == gpu.prompt.mode == "chunked" and chunked.prompt.chunks == 4
    assert chunked.reward == aligned.reward and chunked.grpo == aligned.grpo and chunked.data.k == 16
    assert gpu.reward.users_per_call >= 8 and gpu.grpo.num_generations >= 8 and gpu.grpo.max_steps >= 150
    assert gpu.reward.contrast.bank_users * gpu.data.k >= 1000 and gpu.judge == aligned.judge  # fewer where fewer authors qualify
    assert len({c.out for c in configs.values()}) == 3
    assert all(c.data.held_out == configs["reward-aligned"].data.held_out and c.data.k == 2 for c in configs.values())
