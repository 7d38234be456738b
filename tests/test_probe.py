"""The probe reader and the bootstrap interval over users."""

from __future__ import annotations

import numpy as np
import pytest

from bump_profiles.data.synthetic import TOPICS, interests_profile, make_task, make_users
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.lamp import get_task
from bump_profiles.lamp.metrics import bootstrap_accuracy
from bump_profiles.lamp.probe import ProbeReader
from bump_profiles.lamp.runner import EvalConfig, attach_questions, run_eval

WORD_TOPIC = {w: t for t, words in TOPICS.items() for w in words}


class TopicEncoder:
    """A stand-in sentence model: a text's bag of topics (words and topic names), L2-normalised."""

    topics = sorted(TOPICS)

    def encode(self, texts, batch_size, normalize_embeddings, show_progress_bar):
        out = np.zeros((len(texts), len(self.topics)))
        for n, text in enumerate(texts):
            for word in text.replace(",", " ").replace("(", " ").replace(")", " ").replace(";", " ").split():
                topic = WORD_TOPIC.get(word, word if word in TOPICS else None)
                if topic:
                    out[n, self.topics.index(topic)] += 1
            out[n] /= max(np.linalg.norm(out[n]), 1e-9)
        return out


def _users(n=24, per_user=10):
    users = make_users(n, seed=5)
    return attach_questions(users, make_task(users, seed=5, per_user=per_user)), {u.id: interests_profile(u) for u in users}


def test_probe_uses_a_true_profile_and_gets_nothing_from_none():
    users, truth = _users()
    task = get_task("synthetic")
    none = run_eval(task, users, ProbeReader(TopicEncoder()), EvalConfig(method="none"))
    oracle = run_eval(task, users, ProbeReader(TopicEncoder()), EvalConfig(method="profile"), profiles=truth)
    empty = run_eval(task, users, ProbeReader(TopicEncoder()), EvalConfig(method="profile"),
                     profiles={u.id: "" for u in users})  # a profile that says nothing
    assert oracle["questions"] == 240 and oracle["users"] == 24
    assert oracle["metrics"]["accuracy"] >= 0.9
    assert none["metrics"]["accuracy"] < 0.65 and empty["metrics"]["accuracy"] < 0.65
    lo, hi = oracle["accuracy_ci95"]
    assert lo <= oracle["metrics"]["accuracy"] <= hi and none["accuracy_ci95"][1] < lo


def test_probe_with_training_users_and_its_errors():
    users, truth = _users()
    task = get_task("synthetic")
    from bump_profiles.lamp.runner import build_prompts

    config = EvalConfig(method="profile")
    train = build_prompts(task, users[:16], config, profiles=truth)
    golds = {q["id"]: q["output"] for u in users[:16] for q in u.extra["questions"]}
    res = run_eval(task, users[16:], ProbeReader(TopicEncoder(), train=(train, golds)), config, profiles=truth)
    assert res["users"] == 8 and res["metrics"]["accuracy"] >= 0.9
    with pytest.raises(DataError, match="at least two users"):
        run_eval(task, users[:1], ProbeReader(TopicEncoder()), config, profiles=truth)
    with pytest.raises(ConfigError, match="label tasks only"):
        ProbeReader(TopicEncoder()).features(get_task("LaMP_4"), [])


def test_bootstrap_interval_over_users():
    res = bootstrap_accuracy({"a": [True] * 10, "b": [False] * 10, "c": [True, False]})
    assert res["accuracy"] == pytest.approx(11 / 22) and res["users"] == 3 and res["questions"] == 22
    assert 0.0 <= res["lo"] < 0.5 < res["hi"] <= 1.0
    assert bootstrap_accuracy({"a": [True] * 10, "b": [False] * 10, "c": [True, False]}) == res  # seeded
    same = bootstrap_accuracy({u: [True] * 5 for u in "abcd"})
    assert same["lo"] == same["hi"] == 1.0  # every resample is perfect
    wide = bootstrap_accuracy({"a": [True] * 10, "b": [False] * 10})
    narrow = bootstrap_accuracy({str(i): [i % 2 == 0] * 10 for i in range(40)})
    assert (narrow["hi"] - narrow["lo"]) < (wide["hi"] - wide["lo"])  # more users, tighter
    with pytest.raises(DataError):
        bootstrap_accuracy({"a": []})
