"""benchmarks/horizon_drift.py: a drift report's profiles judged on every later round; k = 1 reproduces the
report's own scores, equal sets differ by exactly 0, a profile judged on a round it read is refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from fakes import load_script, save_tiny


@pytest.mark.slow
def test_far_horizons_reproduce_the_next_round_and_pair_users(tmp_path, capsys):
    bench, horizon = load_script("benchmarks/bench_drift.py"), load_script("benchmarks/horizon_drift.py")
    pair = load_script("benchmarks/pair_drift.py")
    tiny = save_tiny(tmp_path / "tiny")
    out = tmp_path / "drift.json"
    assert bench.main(["--model", str(tiny), "--trained-model", str(tiny), "--authors", "0", "--synthetic", "6",
                       "--kinds", "switch", "keep", "--rounds", "4", "--per-round", "3", "--max-new-tokens", "4",
                       "--bootstrap", "50", "--no-regeneration", "--out", str(out)]) == 0
    capsys.readouterr()
    report = json.loads(out.read_text())
    rep = report["populations"]["synthetic"]
    pop = pair.redraw(report, "synthetic")
    from bump_profiles.judges.lexical import LexicalJudge

    scores = horizon.horizon_scores(pop, {s: rep["profiles"][s] for s in ("incremental", "stale")},
                                    LexicalJudge.fitted(pop["idf"]))
    # profiles after rounds 1-3 of 4: (r, t) for every later round t
    assert sorted(scores["stale"]) == [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    for e in rep["rounds"]:
        r = e["round"]
        for s in ("incremental", "stale"):
            assert scores[s][r, r + 1] == pytest.approx(e["judges"]["lexical"]["per_user"][s]["ndcg_a"])
    # the stale profile is round 1's at every round: its score on round t does not depend on r
    assert scores["stale"][1, 4] == scores["stale"][2, 4] == scores["stale"][3, 4]

    # the same model wrote both chains: trained - incremental is 0 at every horizon, in every group
    png = tmp_path / "horizons.png"
    assert horizon.main([str(out), "trained", "incremental", "--groups", "switch", "keep", "all", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    diffs = [c.strip() for line in printed.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")
             or line.startswith("| 3 ") for c in line.split("|")[2:-1] if "[" in c]
    assert len(diffs) == 3 * 6 and set(diffs) == {"+0.000 [+0.000, +0.000]"}
    assert "k = 3" in printed
    assert horizon.main([str(out), "trained", "nothing"]) == 2  # no such set
    assert horizon.main([str(out), "trained", "stale", "--groups", "spliced"]) == 2  # no such group

    # a round that repeats an earlier one's items: its profile would be judged on what it read, refused
    uid = pop["users"][0].id
    rounds = pop["rounds"][uid]
    pop["rounds"][uid] = [rounds[0], rounds[1], rounds[2], [replace(x) for x in rounds[0]]]
    with pytest.raises(ValueError, match="read 3 of the items it is judged on"):
        horizon.horizon_scores(pop, {"stale": rep["profiles"]["stale"]}, LexicalJudge.fitted(pop["idf"]))
