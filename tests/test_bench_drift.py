"""benchmarks/bench_drift.py end to end with a tiny random generator (no download): the chains of profile
sets are generated round by round, judged on the next round, tabulated and resumed; no score is
asserted (a random model writes noise)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import REPO, load_script, save_tiny


def _bench():
    return load_script("benchmarks/bench_drift.py")


@pytest.mark.slow
def test_bench_drift_runs_rounds_and_resumes(tmp_path, capsys):
    bench = _bench()
    tiny = save_tiny(tmp_path / "tiny")
    out = tmp_path / "drift.json"
    argv = ["--model", str(tiny), "--trained-model", str(tiny), "--synthetic", "8", "--authors", "0", "--rounds", "4",
            "--per-round", "3", "--notes", "2", "--merge-model", str(tiny), "--max-new-tokens", "4", "--bootstrap", "50", "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.read_text())
    pop = report["populations"]["synthetic"]
    assert pop["users"] == 8 and [r["judged_on_round"] for r in pop["rounds"]] == [2, 3, 4]
    for entry in pop["rounds"]:
        rows = entry["judges"]["lexical"]["all"]["rows"]
        assert set(rows) == {"stale", "regenerated", "incremental", "trained", "notes", "notes-trained", "history@notes",
                             "history@trained"}
        for row in rows.values():
            assert 0 <= row["ndcg_a"]["lo"] <= row["ndcg_a"]["mean"] <= row["ndcg_a"]["hi"] <= 1
        assert set(entry["judges"]["lexical"]) >= {"keep", "add", "drop", "shift"}
        assert set(entry["topics"]) == set(rows)
        # the same model as both writers: the trained chain is the untrained one, paired difference exactly 0
        same = entry["judges"]["lexical"]["all"]["paired"]["trained-incremental"]["ndcg_a"]
        assert same["mean"] == same["lo"] == same["hi"] == 0
        assert {"notes-incremental", "notes-history@notes"} <= set(entry["judges"]["lexical"]["all"]["paired"])
        same = entry["judges"]["lexical"]["all"]["paired"]["notes-trained-notes"]["ndcg_b"]
        assert same["mean"] == same["lo"] == same["hi"] == 0  # the same model merges the same notes
        recall = entry["topic_recall_paired"]
        assert {"notes-stale", "notes-incremental", "incremental-stale"} <= set(recall)
        assert recall["trained-incremental"]["mean"] == recall["trained-incremental"]["hi"] == 0  # the same writer
    last = pop["rounds"][-1]["prompt_tokens_mean"]
    assert last["stale"] == 0 and last["regenerated"] > 0 and last["incremental"] > 0  # stale reads nothing after round 1
    # round 1: the three sets are the one scratch profile; later rounds differ in what they read
    assert pop["profiles"]["stale"][0] == pop["profiles"]["incremental"][0] == pop["profiles"]["regenerated"][0]
    assert "incremental-stale (paired)" in capsys.readouterr().out
    cache = tmp_path / "drift-synthetic"
    assert sorted(p.name for p in cache.iterdir()) == [
        "round1-scratch.json", "round2-incremental.json", "round2-note.json", "round2-notes-trained.json",
        "round2-notes.json", "round2-regenerated.json", "round2-trained.json", "round3-incremental.json", "round3-note.json",
        "round3-notes-trained.json", "round3-notes.json", "round3-regenerated.json", "round3-trained.json"]
    assert bench.main(argv) == 0  # resumes from the kept generations and reproduces the report
    again = json.loads(out.read_text())["populations"]["synthetic"]
    assert again["rounds"][-1]["judges"] == pop["rounds"][-1]["judges"]


@pytest.mark.slow
def test_spliced_authors_without_regeneration(tmp_path, monkeypatch):
    """--spliced N ranks N authors spliced onto another author beside N unspliced ones (reported apart);
    --no-regeneration leaves the regenerated chain out (nothing generated for it, nothing paired with
    it); the trained chain gets its pasted-history adversary at its own length."""
    from authors_fixture import write_authors

    bench = _bench()
    monkeypatch.setattr(bench, "AUTHORS", write_authors(tmp_path / "authors.jsonl", n_authors=12, base=8))
    tiny = save_tiny(tmp_path / "tiny")
    out = tmp_path / "drift.json"
    assert bench.main(["--model", str(tiny), "--trained-model", str(tiny), "--synthetic", "0", "--authors", "0",
                       "--spliced", "2", "--no-regeneration", "--rounds", "3", "--per-round", "2", "--first-round", "4",
                       "--max-new-tokens", "4", "--bootstrap", "50", "--out", str(out)]) == 0
    pop = json.loads(out.read_text())["populations"]["spliced-authors"]
    assert pop["users"] == 4 and pop["groups"]["single"] == 2 and pop["groups"]["spliced"] == 2
    assert sum("->" in u for u in pop["user_ids"]) == 2
    for entry in pop["rounds"]:
        lexical = entry["judges"]["lexical"]
        assert set(lexical["all"]["rows"]) == {"stale", "incremental", "trained", "history@trained"}
        assert {"trained-incremental", "trained-history@trained"} <= set(lexical["all"]["paired"])
        assert not any("regenerated" in pair for pair in lexical["all"]["paired"])
        assert {"single", "spliced"} <= set(lexical) and entry["token_ratio_regenerated_over_incremental"] is None
    assert not any("regenerated" in p.name for p in (tmp_path / "drift-spliced-authors").iterdir())


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
    from authors_fixture import write_authors

    from bump_profiles.authors.data import load_authors

    data = write_authors(tmp_path / "authors.jsonl", n_authors=12, base=8)  # author i: 8 + i articles
    script = load_script("scripts/drift_training_data.py")
    bench = _bench()
    monkeypatch.setattr(bench, "AUTHORS", data)
    draws = []
    for long_first in ([], ["--first-round", "10"]):  # a long first round samples among fewer authors
        out = tmp_path / f"train{len(long_first)}.jsonl"
        shape = ["--authors", "3", "--rounds", "3", "--per-round", "4", *long_first]
        assert script.main(["--data", str(data), *shape, "--min-articles", "12", "--out", str(out)]) == 0
        pops = bench.populations(bench.parse_args(["--synthetic", "0", *shape]))
        sampled = {u.id for u in pops["huffpost-authors"]["users"]}
        written = {u.id for u in load_authors(out)}
        assert len(sampled) == 3 and not sampled & written
        assert written == {u.id for u in load_authors(data) if u.id not in sampled and len(u.interactions) >= 12}
        draws.append(sampled)
    assert draws[0] != draws[1] and draws[1] == {"author-0", "author-10", "author-11"}  # the 3 with >= 10 + 2 * 4


def test_update_writer_synthetic_training_users_are_not_the_benchmarks(tmp_path):
    """--synthetic N writes N drift users of three rounds (first, this round, the next) with a seed of its own;
    the seeds of the benchmark's users and of its IDF corpus are refused."""
    from bump_profiles.data import load_users

    script = load_script("scripts/drift_training_data.py")
    out = tmp_path / "switch.jsonl"
    assert script.main(["--synthetic", "4", "--kinds", "switch", "keep", "--first-round", "8", "--per-round", "3",
                        "--out", str(out)]) == 0
    users = load_users(out)
    assert [len(u.interactions) for u in users] == [14] * 4 and [u.extra["kind"] for u in users] == ["switch", "keep"] * 2
    assert users[0].extra["topics"][0] != users[0].extra["topics"][1] == users[0].extra["topics"][2]
    for seed in ("9101", "9102"):
        with pytest.raises(SystemExit):
            script.main(["--synthetic", "4", "--synthetic-seed", seed, "--out", str(out)])


def test_spliced_training_authors_are_none_of_either_benchmarks(tmp_path, monkeypatch):
    """--spliced N writes N spliced authors from the authors that neither the natural draw nor the spliced
    benchmark (its unspliced control and its pairs) uses; too few pairs is a clear error, not a traceback."""
    from authors_fixture import write_authors

    from bump_profiles.data import load_users

    data = write_authors(tmp_path / "authors.jsonl", n_authors=24, base=12)
    script = load_script("scripts/drift_training_data.py")
    bench = _bench()
    monkeypatch.setattr(bench, "AUTHORS", data)
    shape = ["--rounds", "3", "--per-round", "2", "--first-round", "4"]
    out = tmp_path / "spliced.jsonl"
    assert script.main(["--data", str(data), "--authors", "3", *shape, "--spliced", "3", "--benchmark-spliced", "2",
                        "--train-first", "4", "--out", str(out)]) == 0
    pops = bench.populations(bench.parse_args(["--synthetic", "0", "--authors", "3", "--spliced", "2", *shape]))
    judged = {u.id for u in pops["huffpost-authors"]["users"]} | {
        a for u in pops["spliced-authors"]["users"] for a in u.extra.get("authors", [u.id])}
    written = load_users(out)
    used = [a for u in written for a in u.extra["authors"]]
    assert len(written) == 3 and len(set(used)) == 6 and not set(used) & judged
    assert all(len(u.interactions) == 4 + 2 * 2 for u in written)  # the first author's 4, then this round and the next
    assert script.main(["--data", str(data), "--authors", "3", *shape, "--spliced", "40", "--out", str(out)]) == 2


class _Recorder:
    """A generator that answers each prompt with a tag of what it read, recording every prompt."""

    name = "recorder"

    def __init__(self):
        self.prompts: list[str] = []

    def count_tokens(self, text):
        return len(text.split())

    def complete(self, messages, max_new_tokens, temperature):
        from bump_profiles.engines.backends import Completion

        out = []
        for m in messages:
            content = m[-1]["content"]
            self.prompts.append(content)
            out.append(Completion(f"note{len(self.prompts)} on what this user did", len(content.split()), 6, False))
        return out


def test_rolling_notes_note_each_round_once_and_merge_the_latest_k(tmp_path):
    """--notes K: a round's note reads that round's items only and is written once; the profile after round r
    is the merge of the notes of rounds r-K+1..r (an older note is gone from the prompt); its prompt tokens
    are the note's plus the merge's; round 1 is the shared scratch profile."""
    import re
    from argparse import Namespace

    from bump_profiles.evaluation.drift import cut_rounds, make_drift_users

    bench = _bench()
    users = make_drift_users(2, rounds=5, per_round=3, seed=1)
    rounds = [cut_rounds(u.interactions, 5, 3) for u in users]
    pop = {"users": users, "rounds": {u.id: r for u, r in zip(users, rounds, strict=True)}}
    args = Namespace(max_words=20, scratch_tokens=1500, update_tokens=400, rounds=5, notes=2, batch_size=8,
                     max_new_tokens=8, no_regeneration=False, trained_model=None, merge_model=None)
    rec = _Recorder()
    sets = list(bench.chains(pop, {"base": rec}, args, tmp_path))[-1][1]
    assert sorted(sets) == ["history@notes", "incremental", "notes", "regenerated", "stale"] and len(sets["notes"]) == 4
    assert sets["notes"][0] == sets["stale"][0]

    def reads_only(prompt, i, r):  # the prompt shows user i's round r (1-based) and no other round of theirs
        return all(x.text in prompt for x in rounds[i][r - 1]) and not any(
            x.text in prompt for k, rnd in enumerate(rounds[i], 1) if k != r for x in rnd)

    note_of = {}  # (user, round) -> the tag of the note written on that round alone
    for k, p in enumerate(rec.prompts, 1):
        for i in range(len(users)):
            for r in range(1, 5):
                if "notes on what a user did" not in p and "written earlier" not in p and reads_only(p, i, r):
                    assert (i, r) not in note_of, "a round was noted twice"
                    note_of[i, r] = f"note{k}"
    assert set(note_of) == {(i, r) for i in range(2) for r in range(1, 5)}  # round 1's note: the scratch profile
    merges = [p for p in rec.prompts if "notes on what a user did" in p]
    assert len(merges) == 3 * len(users)
    for n, prompt in enumerate(merges):
        r, i = 2 + n // 2, n % 2
        assert re.findall(r"note\d+", prompt) == [note_of[i, r - 1], note_of[i, r]]  # the latest K = 2, oldest first
        assert not any(x.text in prompt for rnd in rounds[i] for x in rnd)  # notes only, no item
    for r, (cut, merged) in enumerate(zip(sets["history@notes"], sets["notes"], strict=True), 1):
        for i, (c, m) in enumerate(zip(cut, merged, strict=True)):  # the newest items, cut to the profile's length
            assert 0 < len(c.text.split()) <= len(m.text.split()) and c.text.split()[0] in rounds[i][r - 1][-1].text
    newest = rec.prompts[int(note_of[0, 4][4:]) - 1]
    assert sets["notes"][-1][0].prompt_tokens == len(newest.split()) + len(merges[-2].split())


def test_the_notes_writer_config_trains_the_benchmarks_merge(tmp_path):
    """configs/update-writer-notes.yaml trains the merge bench_drift --notes 3 --per-round 5 --max-words 40
    runs: the same merge template, and the note prompt of a round of 5 is the benchmark's scratch prompt.
    The config's training data is built under runs/ (gitignored), so a stand-in file takes its place here."""
    from bump_profiles.config import load_config
    from bump_profiles.evaluation.drift import make_drift_users
    from bump_profiles.profiles.chunked import chunked_prompt
    from bump_profiles.profiles.prompts import PORTRAIT_MERGE_INSTRUCTION, ProfilePrompt

    stand_in = tmp_path / "authors-train-notes.jsonl"
    stand_in.write_text("", encoding="utf-8")
    cfg = load_config(REPO / "configs" / "update-writer-notes.yaml", [f"data.path={stand_in}"])
    assert (cfg.prompt.mode, cfg.prompt.chunks, cfg.prompt.history_items, cfg.data.k) == ("chunked", 3, 5, 5)
    prompt = chunked_prompt(cfg.prompt)
    assert prompt.merge_template == PORTRAIT_MERGE_INSTRUCTION
    round_items = make_drift_users(1, rounds=2, per_round=5, seed=3)[0].interactions[:5]
    bench_scratch = ProfilePrompt(max_words=40, history_items=None, history_tokens=1500)
    assert prompt.note.messages(round_items) == bench_scratch.messages(round_items)


def test_grouped_ranking_scores_each_group_on_its_own_and_a_judge_may_score_a_subset_of_sets(monkeypatch):
    """--likelihood-group G: a user's NDCG is its rank among its own group only (the same numbers as judging
    that group alone); --likelihood-sets: pairs and the regenerated interval are reported only for sets judged."""
    from fakes import OverlapJudge

    from bump_profiles.data.split import UserSplit
    from bump_profiles.evaluation.drift import cut_rounds, make_drift_users

    bench = _bench()
    users = make_drift_users(8, rounds=3, per_round=3, seed=5)
    splits = [UserSplit(u, u.interactions[:3], u.interactions[3:6]) for u in users]
    profiles = {u.id: " ".join(x.text for x in u.interactions[:2]) for u in users}
    judge = OverlapJudge()
    a, b = bench.per_user_ndcg(splits, profiles, judge, group_size=4)
    for half in (slice(0, 4), slice(4, 8)):
        alone_a, alone_b = bench.per_user_ndcg(splits[half], profiles, judge)
        assert a[half].tolist() == alone_a.tolist() and b[half].tolist() == alone_b.tolist()
    all_a, _ = bench.per_user_ndcg(splits, profiles, judge)
    assert a.tolist() != all_a.tolist()  # ranking among 4 is not ranking among 8

    class Text:
        def __init__(self, text):
            self.text = text

    pop = {"users": users, "rounds": {u.id: cut_rounds(u.interactions, 3, 3) for u in users}, "groups": {}}
    sets = {name: [[Text(profiles[u.id]) for u in users]] for name in ("stale", "notes", "history@notes")}
    monkeypatch.setattr(bench, "check_unread", lambda *args: None)  # these stand-in profiles carry no provenance
    out = bench.judge_round(pop, sets, 1, judge, np.zeros((10, 8), dtype=int), group_size=4)
    assert out["ranked"] == "groups of 4" and set(out["all"]["rows"]) == set(sets)
    assert set(out["all"]["paired"]) == {"notes-stale", "notes-history@notes", "history@notes-stale"}
    assert out["all"]["within_regenerated_ci"] == {}


def test_a_larger_author_draw_starts_with_the_smaller_one_and_fresh_authors_are_reported_apart():
    """The pre-registered fresh sample (docs/drift.md) rests on this: --authors 64 of 65 eligible draws the 32 of
    --authors 32 first, so the rest are authors no 32-author run saw."""
    from bump_profiles.data.schema import Interaction, User
    from bump_profiles.evaluation.drift import sample_authors

    users = [User(f"a{i:02d}", [Interaction(str(j), {"text": "x"}) for j in range(30 + (i >= 5))]) for i in range(70)]
    small, eligible = sample_authors(users, 32, min_items=31, seed=0)
    large, _ = sample_authors(users, 64, min_items=31, seed=0)
    assert eligible == 65 and len(large) == 64 and [u.id for u in large[:32]] == [u.id for u in small]
    ids = [u.id for u in large]
    groups = _bench().author_groups(ids, {u: 0.6 if i % 2 else 0.1 for i, u in enumerate(ids)}, 0.5, 32)
    assert groups["first 32"] == [u.id for u in small] and groups["fresh"] == ids[32:]
    assert len(groups["shifting"]) == 32 and "fresh" not in _bench().author_groups(ids, dict.fromkeys(ids, 0.0), 0.5, None)


def test_a_long_first_round_is_read_again_by_regeneration_and_never_by_an_update(tmp_path):
    """--first-round: round 1 holds the older history; after it a regeneration reads it again every round
    while an update reads the previous profile and the round's items only, which is where an update saves
    reading (the goal's token ratio). Switch users drop round 1's topics, so its items are the faded ones."""
    bench = _bench()
    tiny = save_tiny(tmp_path / "tiny")
    out = tmp_path / "long.json"
    argv = ["--model", str(tiny), "--synthetic", "3", "--authors", "0", "--kinds", "switch", "--rounds", "3",
            "--per-round", "3", "--first-round", "24", "--max-new-tokens", "4", "--bootstrap", "20", "--out", str(out)]
    args = bench.parse_args(argv)
    pop = bench.populations(args)["synthetic"]
    assert all([len(r) for r in rounds] == [24, 3, 3] for rounds in pop["rounds"].values())
    assert bench.read_by(pop, "stale", 2) == {u: rs[0] for u, rs in pop["rounds"].items()}
    assert bench.main(argv) == 0
    rounds = json.loads(out.read_text())["populations"]["synthetic"]["rounds"]
    first, second = (r["prompt_tokens_mean"] for r in rounds)
    assert first["regenerated"] == first["incremental"] > 3 * second["incremental"] > 0  # round 1: the one scratch prompt
    assert second["regenerated"] > first["regenerated"] and second["stale"] == 0  # the older history read again
    assert set(rounds[0]["judges"]["lexical"]) >= {"all", "switch"}
    assert rounds[1]["topics"]["stale"]["users_with_dropped"] == 3  # every switch user dropped round 1's topics
