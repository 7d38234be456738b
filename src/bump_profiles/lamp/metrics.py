"""LaMP's metrics, and exactly how each is computed.

- Classification (LaMP_1, LaMP_2): accuracy and macro-F1 over the task's whole label list. A
  prediction outside the list counts as wrong; a label that is neither gold nor predicted anywhere
  still enters the macro average with F1 = 0 (sklearn's ``labels=`` with ``zero_division=0``).
- Rating (LaMP_3): MAE and RMSE; an unparseable prediction becomes whichever of 1 and 5 is farther
  from the gold.
- Generation (LaMP_4 to LaMP_7): ROUGE-1 and ROUGE-L F-measures from rouge-score (its default
  tokenizer: lower-cased, non-alphanumerics dropped; no stemming), each gold a single reference.
  Aggregation ``mean`` (the default) is the exact mean of the per-question F-measures.
  ``bootstrap`` is what LaMP's ``eval/evaluation.py`` reports through ``evaluate``'s rouge:
  rouge-score's ``BootstrapAggregator`` (1000 resamples of the questions, 95%) and its ``mid``
  F-measure, the median of the resampled means. The official run is unseeded; here the resampling
  is seeded (``seed``), so a figure can be reproduced. The two differ by resampling noise only.

Predictions and golds are stripped first, as the official script does. Nothing else is done to a
predictions file (``eval lamp``). Answers of ``eval run`` are post-processed *before* scoring,
which the official script does not do (it scores the model's raw output), by
:meth:`bump_profiles.lamp.tasks.TaskSpec.postprocess`: classification takes the label named
earliest in the answer (or, for LaMP_1, the choice whose text the answer quotes); rating takes the
first digit 1-5 anywhere in the answer (so "10" reads as "1"); generation takes the first non-empty
line with surrounding quotes stripped. Raw answers are kept in ``generations.jsonl``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from bump_profiles.errors import DataError
from bump_profiles.lamp.tasks import TaskSpec


def classification_metrics(
    golds: Sequence[str], preds: Sequence[str], labels: Sequence[str], *, ids: Sequence[str] | None = None
) -> dict[str, float]:
    """``accuracy`` and macro ``f1`` over ``labels``; every gold must be one of them (``ids`` name them in errors)."""
    index = {label: i for i, label in enumerate(labels)}
    gold_ids = []
    for n, g in enumerate(golds):
        if g.strip() not in index:
            raise DataError(f"gold '{g}' is not one of the task's labels", record=ids[n] if ids else n)
        gold_ids.append(index[g.strip()])
    pred_ids = [index.get(p.strip(), -1) for p in preds]
    pairs = list(zip(gold_ids, pred_ids, strict=True))
    f1s = []
    for c in range(len(labels)):
        tp = sum(g == c and p == c for g, p in pairs)
        fp = sum(g != c and p == c for g, p in pairs)
        fn = sum(g == c and p != c for g, p in pairs)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {"accuracy": sum(g == p for g, p in pairs) / len(pairs), "f1": sum(f1s) / len(f1s)}


def parse_rating(pred: str, gold: float) -> float:
    """A predicted rating as a number; unparseable ones become the farther of 1 and 5 from ``gold``."""
    try:
        return float(pred.strip())
    except ValueError:
        return 1.0 if abs(1.0 - gold) > abs(5.0 - gold) else 5.0


def rating_metrics(golds: Sequence[str], preds: Sequence[str], *, ids: Sequence[str] | None = None) -> dict[str, float]:
    """``MAE`` and ``RMSE`` of predicted ratings."""
    gold_values = []
    for n, g in enumerate(golds):
        try:
            gold_values.append(float(g))
        except ValueError as exc:
            raise DataError(f"gold rating '{g}' is not a number", record=ids[n] if ids else n) from exc
    errors = [parse_rating(p, g) - g for g, p in zip(gold_values, preds, strict=True)]
    return {
        "MAE": sum(abs(e) for e in errors) / len(errors),
        "RMSE": math.sqrt(sum(e * e for e in errors) / len(errors)),
    }


ROUGE_AGGREGATIONS = ("mean", "bootstrap")


def generation_metrics(golds: Sequence[str], preds: Sequence[str], *, aggregation: str = "mean",
                       seed: int = 0) -> dict[str, float]:
    """``rouge-1`` and ``rouge-L`` F-measures, one reference per prediction: their exact mean, or
    (``bootstrap``) the official bootstrap median, resampled with a seeded generator."""
    from rouge_score import rouge_scorer, scoring

    if aggregation not in ROUGE_AGGREGATIONS:
        raise ValueError(f"unknown ROUGE aggregation '{aggregation}' (use {' or '.join(ROUGE_AGGREGATIONS)})")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    scores = [scorer.score(g.strip(), p.strip()) for g, p in zip(golds, preds, strict=True)]
    if aggregation == "mean":
        return {
            "rouge-1": sum(s["rouge1"].fmeasure for s in scores) / len(scores),
            "rouge-L": sum(s["rougeL"].fmeasure for s in scores) / len(scores),
        }
    import numpy as np

    aggregator = scoring.BootstrapAggregator()
    for s in scores:
        aggregator.add_scores(s)
    state = np.random.get_state()  # rouge-score resamples with numpy's global generator
    np.random.seed(seed)
    try:
        result = aggregator.aggregate()
    finally:
        np.random.set_state(state)
    return {"rouge-1": float(result["rouge1"].mid.fmeasure), "rouge-L": float(result["rougeL"].mid.fmeasure)}


def bootstrap_accuracy(
    correct: Mapping[str, Sequence[bool]], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Accuracy with a percentile bootstrap interval over users (questions of one user move together).

    ``correct``: user id -> whether each of that user's questions was answered right. Each of
    ``n_boot`` resamples draws as many users as there are, with replacement, and pools their
    questions; the interval is the ``(1-level)/2`` and ``(1+level)/2`` quantiles. Users, not
    questions, are the unit: a user's questions share a profile, so they are not independent.
    """
    import numpy as np

    users = [u for u in correct if len(correct[u])]
    if not users:
        raise DataError("no answered questions to bootstrap over")
    hits = np.array([sum(bool(c) for c in correct[u]) for u in users], dtype=np.float64)
    sizes = np.array([len(correct[u]) for u in users], dtype=np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(users), size=(n_boot, len(users)))
    accs = hits[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    lo, hi = np.quantile(accs, [(1 - level) / 2, (1 + level) / 2])
    return {"accuracy": float(hits.sum() / sizes.sum()), "lo": float(lo), "hi": float(hi), "users": len(users),
            "questions": int(sizes.sum())}


def score(task: TaskSpec, golds: Mapping[str, str], preds: Mapping[str, str], *, rouge: str = "mean",
          seed: int = 0) -> dict[str, float]:
    """The task's metrics over question ids (the two id sets must be equal); ``rouge``: the ROUGE
    aggregation (``mean`` or the official ``bootstrap``, seeded by ``seed``)."""
    missing, extra = sorted(set(golds) - set(preds)), sorted(set(preds) - set(golds))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} gold id(s) have no prediction (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} predicted id(s) have no gold (e.g. {', '.join(extra[:3])})")
        raise DataError("ids differ between golds and predictions: " + "; ".join(parts))
    if not golds:
        raise DataError("no questions to score")
    ids = sorted(golds)
    gold_list, pred_list = [golds[i] for i in ids], [preds[i] for i in ids]
    if task.kind == "classification":
        return classification_metrics(gold_list, pred_list, task.labels, ids=ids)
    if task.kind == "rating":
        return rating_metrics(gold_list, pred_list, ids=ids)
    return generation_metrics(gold_list, pred_list, aggregation=rouge, seed=seed)
