"""The evaluation stages: judges (intrinsic ranking, with intervals) and the downstream tasks.

Intrinsic: every profile set ranked by each judge in groups of the training B and all at once, on
each horizon (near: the k held-out articles right after the history; far: the later ones); per-author
NDCG in both directions, each mean with a bootstrap interval over authors, and paired differences
(BUMP against every other set, every set against history@budget). Downstream: the category and headline questions of the
evaluation authors' held-out articles, answered by each reader with each personalization method;
every question's prompt is built from its own author's profile or history only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from bump_profiles.authors.bench import GENERATORS, REFERENCES, Bench, profile_sets
from bump_profiles.authors.stats import (
    grouped_interval,
    interval,
    paired_difference,
    per_author_ndcg,
    repetition_rate,
    resamples,
)
from bump_profiles.data.atomic import atomic_write_json

log = logging.getLogger(__name__)

METHODS = ("none", "retrieval", "history@budget", "keywords", "zero-shot", "BUMP", "task-reward", "BUMP+retrieval")


def make_eval_judge(b: Bench, name: str):
    from bump_profiles.judges import JudgeConfig, make_judge

    e = b.config.eval
    if name == "training":
        return make_judge(b.train_config("bump").judge)
    if name == "likelihood":
        return make_judge(JudgeConfig(kind="likelihood", model=e.likelihood_model, dtype=e.judge_dtype))
    return make_judge(JudgeConfig(kind="lexical", model=str(b.path("lexical_corpus.txt"))))


def profile_table(b: Bench, sets: dict[str, dict[str, str]]) -> dict[str, dict[str, float]]:
    """Mean tokens (policy tokenizer), 4-/8-gram copy rates from the own history, 3-gram repetition."""
    from bump_profiles.profiles.stats import profile_stats

    count = b.count_tokens()
    out = {}
    for name, profiles in sets.items():
        splits = [s for s in b.split.eval if s.user.id in profiles]
        texts = [profiles[s.user.id] for s in splits]
        stats = profile_stats(texts, [[it.text for it in s.history] for s in splits], count_tokens=count)
        stats["repetition_3"] = sum(repetition_rate(t) for t in texts) / max(len(texts), 1)
        out[name] = stats
    return out


def horizon_mask(group: Any, near: int, horizon: str) -> list[bool]:
    """Which of a group's items belong to ``horizon``: an author's first ``near`` held-out items (in time
    order, as the group lists them) are near, the rest far."""
    seen: dict[str, int] = {}
    mask = []
    for u in group.item_users:
        mask.append((seen.get(u, 0) < near) == (horizon == "near"))
        seen[u] = seen.get(u, 0) + 1
    return mask


def summarize(per: dict[str, dict[str, dict[str, float]]], n_boot: int, seed: int) -> dict[str, Any]:
    """Per-author NDCG of every set into intervals over authors, the random expectation, and paired
    differences (BUMP minus each set; each set minus history@budget, the bar a profile must clear)."""
    units = sorted(set.intersection(*(set(v) for v in per.values())))
    draws = resamples(len(units), n_boot, seed=seed)
    rows = {m: {d: interval([by[u][f"ndcg_{d}"] for u in units], draws) for d in ("a", "b")} for m, by in per.items()}
    first = next(iter(per.values()))
    random = {d: sum(first[u][f"random_{d}"] for u in units) / len(units) for d in ("a", "b")}

    def diff(x: str, y: str) -> dict[str, Any]:
        return {d: paired_difference({u: per[x][u][f"ndcg_{d}"] for u in units}, {u: per[y][u][f"ndcg_{d}"] for u in units},
                                     units, draws) for d in ("a", "b")}

    diffs = {f"BUMP - {m}": diff("BUMP", m) for m in per if m != "BUMP" and "BUMP" in per}
    diffs.update({f"{m} - history@budget": diff(m, "history@budget") for m in per if m != "history@budget"
                  and "history@budget" in per})
    return {"authors": len(units), "rows": rows, "random": random, "differences": diffs, "per_author": per}


def stage_judge(b: Bench, name: str, path: Path) -> None:
    """One judge, every profile set, both groupings and every horizon; calibration = the training judge's.

    Each grouping is scored once over all held-out items; a horizon ranks its own items only (near:
    the first k after the history; far: the rest), every profile of the group still a candidate."""
    from bump_profiles.evaluation.intrinsic import score_groups, select_items
    from bump_profiles.judges.calibration import check_calibration

    judge = make_eval_judge(b, name)
    calibration = b.train_config("bump").judge.calibration
    only = b.config.eval.judge_sets.get(name)
    sets = {m: p for m, p in profile_sets(b).items() if only is None or m in only}
    splits = b.split.eval
    horizons = list(b.split.horizons())
    group = b.config.eval.group_size or b.train_config("bump").reward.users_per_call
    result: dict[str, Any] = {"judge": name, "calibration": calibration, "authors": len(splits), "horizons": horizons,
                              "groupings": {}}
    groupings = [(f"groups of {group}", group)]
    if b.config.eval.all_at_once is None or name in b.config.eval.all_at_once:
        groupings.append(("all at once", None))
    null = check_calibration(calibration).needs_baseline  # the null texts' scores only where calibration reads them
    for grouping, size in groupings:
        scored = {m: score_groups(splits, profiles, judge, size, null=null) for m, profiles in sets.items()}
        for h in horizons:
            per = {m: per_author_ndcg([select_items(g, horizon_mask(g, b.split.near, h)) for g in groups], calibration)
                   for m, groups in scored.items()}
            label = grouping if len(horizons) == 1 else f"{h}, {grouping}"
            result["groupings"][label] = summarize(per, b.config.eval.bootstrap, b.config.data.seed)
    atomic_write_json(path, result)


# --- downstream -------------------------------------------------------------------------------------


def probe_reader(model: Any = None, train: tuple[list[Any], dict[str, str]] | None = None) -> Any:
    """The probe reader (:mod:`bump_profiles.lamp.probe`). ``train``: the training authors' questions,
    each built with the same method from its own author's context, and their golds (``eval.probe_fit:
    training``); None cross-fits over the evaluation authors (each author answered by a model fitted on
    the other authors' questions)."""
    from bump_profiles.lamp.probe import ProbeReader

    return ProbeReader(model, train=train)


def probe_training(b: Bench, task: Any, method: str, train_sets: dict[str, dict[str, str]]) -> tuple[list[Any], dict[str, str]]:
    """The training authors' category questions (their held-out articles, never an evaluation author's)
    as ``method`` builds them, with their golds: what the probe reader is fitted on."""
    from bump_profiles.authors.data import category_questions
    from bump_profiles.data.schema import User
    from bump_profiles.lamp.runner import attach_questions, build_prompts

    rows = category_questions(b.split.train, b.split.labels)
    asked = attach_questions([User(s.user.id, s.history) for s in b.split.train], rows)
    config, profiles, retriever = method_inputs(method, b.config.eval.retrieval_k, train_sets)
    return build_prompts(task, asked, config, profiles=profiles, retriever=retriever), {r["id"]: r["output"] for r in rows}


def method_config(method: str, k: int):
    from bump_profiles.lamp.runner import EvalConfig

    if method == "none":
        return EvalConfig(method="none")
    if method == "retrieval":
        return EvalConfig(method="retrieval", k=k)
    if method.endswith("+retrieval"):
        return EvalConfig(method="profile+retrieval", k=k)
    return EvalConfig(method="profile")


def method_inputs(method: str, k: int, sets: dict[str, dict[str, str]]) -> tuple[Any, dict[str, str] | None, Any]:
    """A downstream method's run config, the profiles it reads (from ``sets``) and its retriever, or None."""
    from bump_profiles.lamp.retrieval import make_retriever

    config = method_config(method, k)
    profiles = sets.get(method.removesuffix("+retrieval")) if config.uses_profile else None
    return config, profiles, make_retriever("bm25") if config.uses_retrieval else None


def stage_downstream(b: Bench) -> None:
    """Each task x reader x method into ``downstream/<task>/<reader>/<method>/`` (skipped when there)."""
    from bump_profiles.authors.data import category_task, headline_task
    from bump_profiles.data.schema import User
    from bump_profiles.lamp.readers import causal_lm_reader
    from bump_profiles.lamp.runner import attach_questions, run_eval

    e = b.config.eval
    sets = profile_sets(b)
    users = [User(s.user.id, s.history) for s in b.split.eval]  # readers and retrieval see the history only
    tasks = {"category": (category_task(b.split.labels), "category.json"), "headline": (headline_task(), "headline.json")}
    readers: dict[str, Any] = {}
    train_sets = profile_sets(b, "train") if b.fits_probe_on_training() else {}
    for task_name, (task, file) in tasks.items():
        questions = json.loads(b.path("questions", file).read_text())
        asked = attach_questions(users, questions)
        for reader_name in e.readers:
            if reader_name == "probe" and task.kind != "classification":
                continue
            for method in filter(b.evaluates, METHODS):
                folder = b.path("downstream", task_name, reader_name, method.replace("@", "-at-").replace("+", "-plus-"))
                if (folder / "results.json").exists():
                    continue
                if reader_name not in readers:
                    readers[reader_name] = (causal_lm_reader(e.reader_model, batch_size=e.batch_size, progress=False)
                                            if reader_name == "llm" else probe_reader())
                reader = readers[reader_name]
                if reader_name == "probe" and b.fits_probe_on_training():  # one fit per method, one MiniLM for all
                    reader = probe_reader(reader.model, probe_training(b, task, method, train_sets))
                config, profiles, retriever = method_inputs(method, e.retrieval_k, sets)
                with b.timing(f"downstream {task_name} {reader_name} {method}"):
                    run_eval(task, asked, reader, config, profiles=profiles, retriever=retriever, out_dir=folder,
                             info={"benchmark_method": method, **({"probe_fit": e.probe_fit} if reader_name == "probe" else {})})


def downstream_table(b: Bench) -> dict[str, Any]:
    """Every finished downstream run with its metrics and bootstrap intervals over authors."""
    from bump_profiles.lamp.metrics import classification_metrics, generation_metrics

    units = [s.user.id for s in b.split.eval]
    labels = json.loads(b.path("split.json").read_text())["labels"]
    out: dict[str, Any] = {}
    for results in sorted(b.path("downstream").glob("*/*/*/results.json")):
        res = json.loads(results.read_text())
        rows = [json.loads(line) for line in (results.parent / "generations.jsonl").read_text().splitlines() if line.strip()]
        pairs = [(r["user_id"], (r["gold"], r["prediction"])) for r in rows]
        asked = [u for u in units if any(u == v for v, _ in pairs)]  # an author may have no question of a task
        draws = resamples(len(asked), b.config.eval.bootstrap, seed=b.config.data.seed)
        scores = []
        if res["task"] == "LaMP_4":
            scores = [(u, generation_metrics([g], [p])) for u, (g, p) in pairs]
            metrics = {m: grouped_interval(asked, [(u, s[m]) for u, s in scores], lambda xs: sum(xs) / len(xs), draws)
                       for m in ("rouge-1", "rouge-L")}
        else:
            metrics = {m: grouped_interval(asked, pairs, lambda xs, m=m: classification_metrics(
                [g for g, _ in xs], [p for _, p in xs], labels)[m], draws) for m in ("accuracy", "f1")}
        task, reader = results.parent.parent.parent.name, results.parent.parent.name
        first = "rouge-1" if res["task"] == "LaMP_4" else "accuracy"
        per_question = [(u, s[first]) for u, s in scores] if res["task"] == "LaMP_4" else [(u, float(g == p)) for u, (g, p) in pairs]
        by_author: dict[str, list[float]] = {}
        for u, v in per_question:
            by_author.setdefault(u, []).append(v)
        out.setdefault(f"{task} / {reader}", {})[res.get("benchmark_method", results.parent.name)] = {
            "metrics": metrics, "questions": res["questions"], "outside_labels": res.get("outside_labels"),
            "seconds": res["seconds"], "per_author": {first: {u: sum(v) / len(v) for u, v in by_author.items()}}}
    for rows in out.values():  # BUMP minus each method, paired by author, on the task's first metric
        if "BUMP" not in rows:
            continue
        (metric, bump), = rows["BUMP"]["per_author"].items()
        asked = [u for u in units if u in bump]
        draws = resamples(len(asked), b.config.eval.bootstrap, seed=b.config.data.seed)
        for method, row in rows.items():
            if method != "BUMP":
                row["bump_minus"] = {metric: paired_difference(bump, row["per_author"][metric], asked, draws)}
    return out


__all__ = ["GENERATORS", "METHODS", "REFERENCES", "downstream_table", "probe_reader", "stage_downstream", "stage_judge"]
