"""The evaluation runner, the readers, the ``eval`` commands and the LoRA-SFT reader, on synthetic
users with stand-in or tiny random models (one slow test loads the bundled SmolLM2)."""

from __future__ import annotations

import json
import re

import pytest

from bump_profiles.cli import main
from bump_profiles.data.synthetic import TOPICS, interests_profile, make_task, make_users
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.lamp import get_task
from bump_profiles.lamp.readers import BackendReader
from bump_profiles.lamp.retrieval import BM25Retriever
from bump_profiles.lamp.runner import (
    EvalConfig,
    attach_questions,
    build_prompts,
    compare_table,
    load_results,
    run_eval,
)

WORD_TOPIC = {w: t for t, words in TOPICS.items() for w in words}


class EvidenceReader:
    """Answers a synthetic question from the evidence in its prompt: the candidate whose topic the
    profile names or whose words the retrieved items use; "[1]" when the prompt carries none."""

    name = "evidence"

    def answer(self, prompts, *, max_new_tokens):
        answers = []
        for prompt in prompts:
            evidence = prompt.rsplit("\n\n", 1)[0] if "\n\n" in prompt else ""
            cands = re.search(r'\[1\]: "(.*)" \[2\]: "(.*)"', prompt).groups()
            hits = [sum(WORD_TOPIC[w] in evidence or w in evidence for w in c.split()) for c in cands]
            answers.append("[2]" if hits[1] > hits[0] else "[1]")
        return answers


@pytest.fixture
def synthetic():
    users = make_users(8, seed=3)
    return attach_questions(users, make_task(users, seed=3)), {u.id: interests_profile(u) for u in users}


def test_methods_put_the_right_evidence_in_the_prompt(synthetic):
    users, profiles = synthetic
    task = get_task("synthetic")
    for method in ("none", "retrieval", "profile", "profile+retrieval"):
        prompts = build_prompts(task, users, EvalConfig(method=method, k=2), profiles=profiles, retriever=BM25Retriever())
        assert len(prompts) == len(users)
        first = prompts[0].prompt
        assert first.startswith("User profile: This user is interested in") == method.startswith("profile")
        assert ("Past items of this user:" in first) == method.endswith("retrieval")
        assert first.endswith("[2]: \"" + first.rsplit('[2]: "', 1)[1])  # the question comes last


def test_run_eval_scores_writes_official_files_and_profiles_help(synthetic, tmp_path):
    users, profiles = synthetic
    task = get_task("synthetic")
    golds = {q["id"]: q["output"] for u in users for q in u.extra["questions"]}
    base = run_eval(task, users, EvidenceReader(), EvalConfig("none"), out_dir=tmp_path / "none")
    prof = run_eval(task, users, EvidenceReader(), EvalConfig("profile"), profiles=profiles, out_dir=tmp_path / "prof")
    assert base["metrics"]["accuracy"] == pytest.approx(sum(g == "[1]" for g in golds.values()) / len(golds))
    assert prof["metrics"]["accuracy"] == 1.0
    assert prof["users"] == prof["questions"] == 8 and prof["outside_labels"] == 0
    assert "retriever" not in prof
    predictions = json.loads((tmp_path / "prof" / "predictions.json").read_text())
    assert predictions["task"] == "synthetic"
    assert {r["id"]: r["output"] for r in predictions["golds"]} == golds
    lines = [json.loads(x) for x in (tmp_path / "prof" / "generations.jsonl").read_text().splitlines()]
    assert [x["prediction"] for x in lines] == [x["answer"] for x in lines]
    assert json.loads((tmp_path / "prof" / "results.json").read_text()) == prof
    retr = run_eval(task, users, EvidenceReader(), EvalConfig("retrieval", k=3), retriever=BM25Retriever())
    assert retr["metrics"]["accuracy"] > base["metrics"]["accuracy"]
    assert (retr["retriever"], retr["k"]) == ("bm25", 3)


def test_missing_profiles_and_bad_configs_are_clear_errors(synthetic):
    users, profiles = synthetic
    task = get_task("synthetic")
    with pytest.raises(ConfigError, match="needs profiles"):
        build_prompts(task, users, EvalConfig("profile"))
    with pytest.raises(DataError, match=f"no profile for user '{users[0].id}'"):
        build_prompts(task, users, EvalConfig("profile"), profiles={})
    with pytest.raises(ConfigError, match="unknown method"):
        EvalConfig("history")
    with pytest.raises(DataError, match="user 'nobody' is not among the users"):
        attach_questions(users, [{"id": "q", "user_id": "nobody", "input": "x"}])


class EchoBackend:
    """A stand-in generation backend: answers each chat with its user turn in capitals; logs batches."""

    name = "echo"

    def __init__(self):
        self.batches = []

    def generate(self, messages_batch, *, max_new_tokens, temperature):
        assert temperature == 0.0
        self.batches.append([m[0]["content"] for m in messages_batch])
        return [m[0]["content"].upper() for m in messages_batch]


def test_backend_reader_batches_longest_first_and_keeps_input_order(synthetic):
    backend = EchoBackend()
    reader = BackendReader(backend, batch_size=2, progress=False)
    prompts = ["bb", "a", "dddd", "ccc", "eeeee"]
    assert reader.answer(prompts, max_new_tokens=4) == [p.upper() for p in prompts]
    assert backend.batches == [["eeeee", "dddd"], ["ccc", "bb"], ["a"]]
    users, _ = synthetic
    results = run_eval(get_task("synthetic"), users[:2], reader, EvalConfig("none"))
    assert results["reader"] == "echo" and results["max_new_tokens"] == 12 and results["questions"] == 2
    # an echoed question names "[1]" first, so every prediction is "[1]"
    golds = [q["output"] for u in users[:2] for q in u.extra["questions"]]
    assert results["metrics"]["accuracy"] == golds.count("[1]") / 2 and results["outside_labels"] == 0


def _lamp1_files(tmp_path):
    """A small LaMP_1 questions file (3 users) with golds, in the official format."""
    questions, golds = [], []
    topics = ["telescope galaxy nebula orbit", "sourdough oven flour yeast", "gambit endgame rook pawn"]
    for n, words in enumerate(topics):
        profile = [{"id": f"{n}{m}", "title": f"Paper on {w}", "abstract": f"We study {w} in depth."}
                   for m, w in enumerate(words.split())]
        questions.append({"id": f"q{n}", "profile": profile, "input": (
            f'For an author who has written the paper with the title "Notes {n}", which reference is related? '
            f'Just answer with [1] or [2] without explanation. [1]: "On {words.split()[0]}" [2]: "On bicycles"')})
        golds.append({"id": f"q{n}", "output": "[1]"})
    q, g = tmp_path / "LaMP_1_questions.json", tmp_path / "LaMP_1_outputs.json"
    q.write_text(json.dumps(questions))
    g.write_text(json.dumps({"task": "LaMP_1", "golds": golds}))
    return q, g


def test_cli_run_lamp_and_compare(tmp_path, capsys):
    from fakes import save_tiny

    q, g = _lamp1_files(tmp_path)
    tiny = save_tiny(tmp_path / "tiny")
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text("".join(json.dumps({"user_id": f"q{n}", "profile": "likes papers"}) + "\n" for n in range(3)))
    runs = []
    for method in ("none", "profile+retrieval"):
        out = tmp_path / method
        rc = main(["eval", "run", "--task", "LaMP_1", "--questions", str(q), "--golds", str(g), "--reader", str(tiny),
                   "--method", method, "--profiles", str(profiles), "--out", str(out), "--no-progress"])
        assert rc == 0
        runs.append(json.loads(capsys.readouterr().out))
        assert "User profile: likes papers" in (out / "generations.jsonl").read_text() or method == "none"
    assert runs[1]["users"] == 3 and runs[1]["k"] == 1
    assert main(["eval", "lamp", "--task", "LaMP_1", "--golds", str(g), "--predictions", str(tmp_path / "none" / "predictions.json")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert {k: scored[k] for k in ("accuracy", "f1")} == runs[0]["metrics"]
    assert main(["eval", "compare", str(tmp_path / "none"), str(tmp_path / "profile+retrieval" / "results.json")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| task | method | reader | users | questions | accuracy | f1 | accuracy 95% CI (users) | outside labels |"
    assert table[3].startswith(f"| LaMP_1 | profile+retrieval (bm25, k=1) | {tiny} | 3 | 3 | ")


def test_cli_errors_are_one_line(tmp_path, capsys):
    q, g = _lamp1_files(tmp_path)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"task": "LaMP_1", "golds": [{"id": "q0", "output": "[1]"}, {"id": "zz", "output": "[2]"}]}))
    assert main(["eval", "lamp", "--task", "LaMP_1", "--golds", str(g), "--predictions", str(other)]) == 2
    err = capsys.readouterr().err
    assert "ids differ between golds and predictions: 2 gold id(s) have no prediction (e.g. q1, q2); 1 predicted id(s) have no gold (e.g. zz)" in err
    assert main(["eval", "run", "--task", "LaMP_1", "--questions", str(q), "--method", "profile", "--out", str(tmp_path / "x")]) == 2
    assert "--method profile needs --profiles" in capsys.readouterr().err
    assert main(["eval", "run", "--task", "LaMP_1", "--questions", str(q), "--golds", str(other), "--out", str(tmp_path / "x")]) == 2
    assert "question 'q1' has no gold output" in capsys.readouterr().err


def test_compare_table_and_results_loading(tmp_path):
    rows = [{"task": "LaMP_3", "method": "none", "reader": "r", "users": 2, "questions": 3, "metrics": {"MAE": 0.5, "RMSE": 1.0}}]
    (tmp_path / "results.json").write_text(json.dumps(rows[0]))
    assert load_results([tmp_path]) == rows
    assert compare_table(rows).splitlines()[2] == "| LaMP_3 | none | r | 2 | 3 | 0.5000 | 1.0000 |"
    assert "No `none` run" in compare_table([dict(rows[0], method="profile")])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="not a results file"):
        load_results([tmp_path / "bad.json"])


def test_sft_dataset_pairs_each_prompt_with_its_gold(synthetic):
    from bump_profiles.lamp.sft import sft_dataset

    users, profiles = synthetic
    prompts = build_prompts(get_task("synthetic"), users, EvalConfig("profile"), profiles=profiles)
    golds = {q["id"]: q["output"] for u in users for q in u.extra["questions"]}
    data = sft_dataset(prompts, golds)
    assert data[0]["prompt"] == [{"role": "user", "content": prompts[0].prompt}]
    assert data[0]["completion"] == [{"role": "assistant", "content": golds[prompts[0].id]}]
    with pytest.raises(DataError, match="have no gold"):
        sft_dataset(prompts, {})


def test_cli_sft_trains_lora_merges_and_the_reader_runs(tmp_path, capsys):
    import torch
    from fakes import save_tiny
    from transformers import AutoModelForCausalLM

    q, g = _lamp1_files(tmp_path)
    tiny = save_tiny(tmp_path / "tiny")
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text("".join(json.dumps({"user_id": f"q{n}", "profile": "likes papers"}) + "\n" for n in range(3)))
    common = ["--task", "LaMP_1", "--questions", str(q), "--golds", str(g), "--profiles", str(profiles)]
    out = tmp_path / "sft"
    assert main(["eval", "sft", *common, "--model", str(tiny), "--max-steps", "2", "--lr", "1e-2", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["examples"] == 3  # after the trainer's log lines
    assert any("train_loss" in row for row in json.loads((out / "sft_log.json").read_text()))
    before = AutoModelForCausalLM.from_pretrained(tiny).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert before.keys() == after.keys()  # merged: a plain model, no adapter weights left
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and all(k.endswith("proj.weight") for k in changed)  # LoRA touched the linear layers only
    assert main(["eval", "run", *common, "--method", "profile", "--reader", str(out), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["reader"] == str(out)


@pytest.mark.slow
@pytest.mark.shared
def test_bundled_reader_answers_real_lamp1_questions_with_labels(lamp_samples):
    from bump_profiles.data import load_lamp_questions
    from bump_profiles.lamp.readers import causal_lm_reader

    users = load_lamp_questions(lamp_samples / "LaMP_1" / "dev_questions.json").users
    results = run_eval(get_task("LaMP_1"), users, causal_lm_reader(progress=False), EvalConfig("none"))
    assert results["questions"] == 3 and results["metrics"] is None
    assert results["outside_labels"] == 0  # SmolLM2 answers with [1] or [2]
