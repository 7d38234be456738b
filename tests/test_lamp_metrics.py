"""LaMP's official metrics: hand-worked fixtures (always run) and the real sample golds checked
against an independent computation written here (skipped without ../shared)."""

from __future__ import annotations

import json
import math
import re

import pytest

from bump_profiles.errors import DataError
from bump_profiles.lamp import get_task, score
from bump_profiles.lamp.metrics import (
    classification_metrics,
    generation_metrics,
    parse_rating,
    rating_metrics,
)

# The label lists as LaMP's evaluation script spells them (typed again here, not imported).
LAMP1_LABELS = ["[1]", "[2]"]
NEWS_LABELS = ["women", "religion", "politics", "style & beauty", "entertainment", "culture & arts", "sports",
               "science & technology", "travel", "business", "crime", "education", "healthy living", "parents",
               "food & drink"]


def test_classification_hand_worked():
    # a: tp 1, fn 1 -> P 1, R 1/2, F 2/3; b: tp 1, fp 1 -> F 2/3; c: fn 1 -> F 0; "x" is outside the list.
    m = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "x"], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(4 / 9)


def test_macro_f1_averages_over_the_whole_label_list():
    # perfect on a and b, but c (never gold, never predicted) still counts with F1 = 0
    m = classification_metrics(["a", "b"], ["a", "b"], ["a", "b", "c"])
    assert m == pytest.approx({"accuracy": 1.0, "f1": 2 / 3})


def test_prediction_outside_labels_is_wrong_and_inputs_are_stripped():
    m = classification_metrics(["[1]", "[2]"], [" [1] \n", "[2] because"], ["[1]", "[2]"])
    # [1]: tp 1 -> F 1; [2]: fn 1 -> F 0
    assert m == pytest.approx({"accuracy": 0.5, "f1": 0.5})


def test_gold_outside_labels_is_a_data_error():
    with pytest.raises(DataError, match="not one of the task's labels"):
        classification_metrics(["maybe"], ["[1]"], ["[1]", "[2]"], ids=["q7"])


def test_rating_hand_worked():
    # errors: 1; "x" with gold 5 -> 1 (farther) -> 4; exact -> 0
    m = rating_metrics(["1", "5", "3"], ["2", "x", "3"])
    assert m["MAE"] == pytest.approx(5 / 3)
    assert m["RMSE"] == pytest.approx(math.sqrt(17 / 3))


@pytest.mark.parametrize(("gold", "expected"), [(1.0, 5.0), (2.0, 5.0), (3.0, 5.0), (4.0, 1.0), (5.0, 1.0)])
def test_unparseable_rating_becomes_the_farther_end(gold, expected):
    assert parse_rating("no idea", gold) == expected
    assert parse_rating(" 4 ", gold) == 4.0


def test_rouge_hand_worked():
    # pair 1: unigrams quick, fox shared -> P 2/3, R 1/2, F 4/7; LCS "quick fox" -> also 4/7
    # pair 2: same words reversed -> ROUGE-1 F 1; LCS 1 of 3 -> ROUGE-L F 1/3
    m = generation_metrics(["The quick brown fox", "cats chase mice"], ["quick fox jumps", "mice chase cats"])
    assert m["rouge-1"] == pytest.approx((4 / 7 + 1) / 2)
    assert m["rouge-L"] == pytest.approx((4 / 7 + 1 / 3) / 2)


def test_score_dispatches_on_the_task_and_names_metrics_officially():
    assert set(score(get_task("LaMP_1"), {"q": "[1]"}, {"q": "[1]"})) == {"accuracy", "f1"}
    assert set(score(get_task("LaMP_3"), {"q": "4"}, {"q": "4"})) == {"MAE", "RMSE"}
    assert set(score(get_task("LaMP_5"), {"q": "a title"}, {"q": "a title"})) == {"rouge-1", "rouge-L"}


def test_score_refuses_differing_ids():
    with pytest.raises(DataError, match="ids differ.*1 gold id.*q2.*1 predicted id.*q3"):
        score(get_task("LaMP_1"), {"q1": "[1]", "q2": "[2]"}, {"q1": "[1]", "q3": "[2]"})


# --- independent computations for the real golds ---------------------------------------------------


def _accuracy_and_macro_f1(golds, preds, labels):
    """F1 per label as 2tp / (2tp + fp + fn) (0 when undefined), averaged over every label."""
    f1 = 0.0
    for label in labels:
        tp = sum(1 for g, p in zip(golds, preds, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(golds, preds, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(golds, preds, strict=True) if g == label and p != label)
        f1 += 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return sum(g == p for g, p in zip(golds, preds, strict=True)) / len(golds), f1 / len(labels)


def _tokens(text):
    return [t for t in re.sub(r"[^a-z0-9]+", " ", text.lower()).split()]


def _lcs(a, b):
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, start=1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def _f(overlap, n_pred, n_gold):
    if overlap == 0:
        return 0.0
    p, r = overlap / n_pred, overlap / n_gold
    return 2 * p * r / (p + r)


def _rouge(gold, pred):
    g, p = _tokens(gold), _tokens(pred)
    common = sum(min(g.count(t), p.count(t)) for t in set(g))
    return _f(common, len(p), len(g)), _f(_lcs(g, p), len(p), len(g))


def _golds(folder, task):
    golds = {}
    for split in ("train", "dev"):
        golds.update({r["id"]: r["output"] for r in json.loads((folder / task / f"{split}_outputs.json").read_text())["golds"]})
    return golds


@pytest.mark.shared
@pytest.mark.parametrize(("task", "labels"), [("LaMP_1", LAMP1_LABELS), ("LaMP_2_news", NEWS_LABELS)])
def test_real_golds_match_an_independent_computation(lamp_samples, task, labels):
    golds = _golds(lamp_samples, task)
    ids = sorted(golds)
    # predictions: each question gets the next question's gold, and every third an off-list answer
    preds = {i: ("unsure" if n % 3 == 2 else golds[ids[(n + 1) % len(ids)]]) for n, i in enumerate(ids)}
    got = score(get_task(task), golds, preds)
    acc, f1 = _accuracy_and_macro_f1([golds[i] for i in ids], [preds[i] for i in ids], labels)
    assert got["accuracy"] == pytest.approx(acc, abs=1e-4)
    assert got["f1"] == pytest.approx(f1, abs=1e-4)
    assert score(get_task(task), golds, golds)["accuracy"] == 1.0


@pytest.mark.shared
def test_rouge_on_real_text_matches_an_independent_computation(lamp_samples):
    # real titles as golds against the first words of real abstracts as predictions
    items = json.loads((lamp_samples / "LaMP_1" / "dev_questions.json").read_text())[0]["profile"][:12]
    golds = {str(n): it["title"] for n, it in enumerate(items)}
    preds = {str(n): " ".join(it["abstract"].split()[:20]) for n, it in enumerate(items)}
    got = score(get_task("LaMP_5"), golds, preds)
    pairs = [_rouge(golds[k], preds[k]) for k in sorted(golds)]
    assert got["rouge-1"] == pytest.approx(sum(r1 for r1, _ in pairs) / len(pairs), abs=1e-4)
    assert got["rouge-L"] == pytest.approx(sum(rl for _, rl in pairs) / len(pairs), abs=1e-4)
    assert got["rouge-1"] > 0  # the check is not vacuous


def test_rouge_bootstrap_is_the_official_median_seeded_and_close_to_the_mean():
    import numpy as np
    from rouge_score import rouge_scorer, scoring

    from bump_profiles.lamp.metrics import generation_metrics

    golds = ["the cat sat on the mat", "a b c", "deep nets for graphs", "one two three four", "x y"]
    preds = ["the cat sat", "c b a", "graph neural nets", "one two", "z"]
    mean = generation_metrics(golds, preds)
    boot = generation_metrics(golds, preds, aggregation="bootstrap", seed=3)
    assert boot == generation_metrics(golds, preds, aggregation="bootstrap", seed=3)  # seeded
    # the same thing computed the official way (rouge-score's aggregator) under the same seed
    scorer, agg = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False), scoring.BootstrapAggregator()
    for g, p in zip(golds, preds, strict=True):
        agg.add_scores(scorer.score(g, p))
    np.random.seed(3)
    official = agg.aggregate()
    assert boot == {"rouge-1": official["rouge1"].mid.fmeasure, "rouge-L": official["rougeL"].mid.fmeasure}
    assert abs(boot["rouge-1"] - mean["rouge-1"]) < 0.1 and abs(boot["rouge-L"] - mean["rouge-L"]) < 0.1
    state = np.random.get_state()[1].copy()
    generation_metrics(golds, preds, aggregation="bootstrap", seed=4)
    assert (np.random.get_state()[1] == state).all()  # the global generator is left as it was
    with pytest.raises(ValueError, match="unknown ROUGE aggregation"):
        generation_metrics(golds, preds, aggregation="max")
