"""benchmarks/bench_drift.py end to end with a tiny random generator (no download): the chains of profile
sets are generated round by round, judged on the next round, tabulated and resumed; no score is
asserted (a random model writes noise)."""

from __future__ import annotations

import json

import pytest
from fakes import load_script, save_tiny


def _bench():
    return load_script("benchmarks/bench_drift.py")


@pytest.mark.slow
def test_bench_drift_runs_rounds_and_resumes(tmp_path, capsys):
    bench = _bench()
    tiny = save_tiny(tmp_path / "tiny")
    out = tmp_path / "drift.json"
    argv = ["--model", str(tiny), "--trained-model", str(tiny), "--synthetic", "8", "--authors", "0", "--rounds", "4",
            "--per-round", "3", "--max-new-tokens", "4", "--bootstrap", "50", "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    pop = report["populations"]["synthetic"]
    assert pop["users"] == 8 and [r["judged_on_round"] for r in pop["rounds"]] == [2, 3, 4]
    for entry in pop["rounds"]:
        rows = entry["judges"]["lexical"]["all"]["rows"]
        assert set(rows) == {"stale", "regenerated", "incremental", "trained"}
        for row in rows.values():
            assert 0 <= row["ndcg_a"]["lo"] <= row["ndcg_a"]["mean"] <= row["ndcg_a"]["hi"] <= 1
        assert set(entry["judges"]["lexical"]) >= {"keep", "add", "drop", "shift"}
        assert set(entry["topics"]) == set(rows)
        # the same model as both writers: the trained chain is the untrained one, paired difference exactly 0
        same = entry["judges"]["lexical"]["all"]["paired"]["trained-incremental"]["ndcg_a"]
        assert same["mean"] == same["lo"] == same["hi"] == 0
    last = pop["rounds"][-1]["prompt_tokens_mean"]
    assert last["stale"] == 0 and last["regenerated"] > 0 and last["incremental"] > 0  # stale reads nothing after round 1
    # round 1: the three sets are the one scratch profile; later rounds differ in what they read
    assert pop["profiles"]["stale"][0] == pop["profiles"]["incremental"][0] == pop["profiles"]["regenerated"][0]
    assert "incremental-stale (paired)" in capsys.readouterr().out
    cache = tmp_path / "drift-synthetic"
    assert sorted(p.name for p in cache.iterdir()) == [
        "round1-scratch.json", "round2-incremental.json", "round2-regenerated.json", "round2-trained.json",
        "round3-incremental.json", "round3-regenerated.json", "round3-trained.json"]
    assert bench.main(argv) == 0  # resumes from the kept generations and reproduces the report
    again = json.loads(out.read_text())["populations"]["synthetic"]
    assert again["rounds"][-1]["judges"] == pop["rounds"][-1]["judges"]


def test_the_judged_round_was_never_read():
    """The provenance check the benchmark runs before judging: it passes for every set as built and
    refuses a profile credited with the round it is judged on."""
    from bump_profiles.errors import DataError
    from bump_profiles.evaluation.drift import cut_rounds, make_drift_users

    bench = _bench()
    users = make_drift_users(3, rounds=4, per_round=3, seed=1)
    pop = {"users": users, "rounds": {u.id: cut_rounds(u.interactions, 4, 3) for u in users}}
    for name in ("stale", "regenerated", "incremental"):
        for r in (1, 2, 3):
            bench.check_unread(pop, name, r)
    leaky = {**pop, "rounds": {u.id: [*rs[:2], rs[1], rs[3]] for u, rs in zip(users, pop["rounds"].values(), strict=True)}}
    with pytest.raises(DataError, match="read 3 of the items"):
        bench.check_unread(leaky, "incremental", 2)  # round 3 repeats round 2: a profile after round 2 read it


def test_update_writer_training_data_leaves_out_the_benchmarks_authors(tmp_path, monkeypatch):
    """scripts/drift_training_data.py draws the authors bench_drift samples the same way and writes every
    other author with enough articles, none of the sampled ones."""
    from argparse import Namespace

    from authors_fixture import write_authors

    from bump_profiles.authors.data import load_authors

    data = write_authors(tmp_path / "authors.jsonl", n_authors=12, base=8)  # author i: 8 + i articles
    script = load_script("scripts/drift_training_data.py")
    out = tmp_path / "train.jsonl"
    assert script.main(["--data", str(data), "--authors", "3", "--rounds", "3", "--per-round", "4",
                        "--min-articles", "12", "--out", str(out)]) == 0
    bench = _bench()
    monkeypatch.setattr(bench, "AUTHORS", data)
    pops = bench.populations(Namespace(synthetic=0, authors=3, rounds=3, per_round=4, seed=0))
    sampled = {u.id for u in pops["huffpost-authors"]["users"]}
    written = {u.id for u in load_authors(out)}
    assert len(sampled) == 3 and not sampled & written
    assert written == {u.id for u in load_authors(data) if u.id not in sampled and len(u.interactions) >= 12}
