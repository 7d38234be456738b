"""Run a reader over LaMP questions with one personalization method and score it.

Methods: ``none`` (the question alone), ``retrieval`` (the user's top-k items), ``profile`` (the
user's profile from a profiles.jsonl of any generator), ``profile+retrieval`` (both). Questions
belong to users (``user.extra["questions"]``, as :func:`bump_profiles.data.load_lamp_questions`
groups them, or :func:`attach_questions` for in-memory tasks); a question's profile and retrieved
items are built from that question's own profile only (:func:`bump_profiles.data.lamp.question_users`;
for in-memory tasks whose questions carry no profile of their own, from the user's history), and
profiles are looked up by question id for LaMP files, by user id otherwise. Outputs in ``out_dir``: ``predictions.json`` in LaMP's official outputs format,
``generations.jsonl`` (prompt, raw answer, prediction per question) and ``results.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bump_profiles.data.atomic import atomic_write_json, atomic_write_text
from bump_profiles.data.lamp import question_users
from bump_profiles.data.schema import User
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.lamp.metrics import ROUGE_AGGREGATIONS, score
from bump_profiles.lamp.readers import Reader
from bump_profiles.lamp.retrieval import RETRIEVERS, Retriever, retrieve
from bump_profiles.lamp.tasks import TaskSpec

METHODS = ("none", "retrieval", "profile", "profile+retrieval")


@dataclass
class EvalConfig:
    """How questions are personalized and answered."""

    method: str = "none"
    retriever: str = "bm25"  # bm25 | dense; used by the retrieval methods
    k: int = 1  # retrieved items per question
    max_new_tokens: int | None = None  # None: the task's default answer budget
    rouge: str = "mean"  # generation tasks: mean | bootstrap (the official, seeded), see lamp.metrics

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown method '{self.method}' (use one of {', '.join(METHODS)})")
        if self.retriever not in RETRIEVERS:
            raise ConfigError(f"unknown retriever '{self.retriever}' (use {' or '.join(RETRIEVERS)})")
        if self.k < 1:
            raise ConfigError("k must be at least 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError("max_new_tokens must be at least 1")
        if self.rouge not in ROUGE_AGGREGATIONS:
            raise ConfigError(f"unknown ROUGE aggregation '{self.rouge}' (use {' or '.join(ROUGE_AGGREGATIONS)})")

    @property
    def uses_profile(self) -> bool:
        return self.method.startswith("profile")

    @property
    def uses_retrieval(self) -> bool:
        return self.method.endswith("retrieval")


@dataclass(frozen=True)
class ReaderPrompt:
    """One question ready for the reader: the prompt, and for readers that take it apart (the probe)
    the question input and its context (profile and retrieved items as one text; None for ``none``)."""

    id: str
    user_id: str
    prompt: str
    question: str = ""
    context: str | None = None


def attach_questions(users: Sequence[User], rows: Sequence[Mapping]) -> list[User]:
    """Users carrying their questions, for tasks built in memory (rows ``{id, user_id, input, output?}``)."""
    by_user: dict[str, list[dict]] = {}
    known = {u.id for u in users}
    for n, row in enumerate(rows):
        for key in ("id", "user_id", "input"):
            if key not in row:
                raise DataError(f"question has no '{key}'", record=n, field=key)
        if row["user_id"] not in known:
            raise DataError(f"question's user '{row['user_id']}' is not among the users", record=row["id"], field="user_id")
        question = {"id": str(row["id"]), "input": str(row["input"])}
        if "output" in row:
            question["output"] = str(row["output"])
        by_user.setdefault(row["user_id"], []).append(question)
    return [User(u.id, u.interactions, {**u.extra, "questions": by_user[u.id]}) for u in users if u.id in by_user]


def attach_golds(users: Sequence[User], golds: Mapping[str, str], *, source: object = None) -> None:
    """Set each question's ``output`` from ``golds`` (id -> output); every question needs one."""
    for user in users:
        for question in user.extra["questions"]:
            if question["id"] not in golds:
                raise DataError(f"question '{question['id']}' has no gold output", path=source, field="golds")
            question["output"] = golds[question["id"]]


def build_prompts(
    task: TaskSpec,
    users: Sequence[User],
    config: EvalConfig,
    *,
    profiles: Mapping[str, str] | None = None,
    retriever: Retriever | None = None,
) -> list[ReaderPrompt]:
    """The reader prompt of every question of every user, as ``config.method`` asks."""
    if config.uses_profile and profiles is None:
        raise ConfigError(f"method '{config.method}' needs profiles (a profiles.jsonl)")
    if config.uses_retrieval and retriever is None:
        raise ConfigError(f"method '{config.method}' needs a retriever")
    prompts = []
    for user in question_users(list(users)):
        profile = None
        if config.uses_profile:
            if user.id not in profiles:
                what = "question" if "person" in user.extra else "user"
                raise DataError(f"no profile for {what} '{user.id}'", field="user_id")
            profile = profiles[user.id]
        for question in user.extra["questions"]:
            items = retrieve(task, user, question, retriever, config.k) if config.uses_retrieval else []
            context = " ".join([profile or "", *(task.item_prompt(it) for it in items)]).strip() or None
            prompts.append(ReaderPrompt(question["id"], user.extra.get("person", user.id),
                                        task.prompt(question["input"], profile=profile, items=items),
                                        question["input"], context))
    return prompts


def run_eval(
    task: TaskSpec,
    users: Sequence[User],
    reader: Reader,
    config: EvalConfig,
    *,
    profiles: Mapping[str, str] | None = None,
    retriever: Retriever | None = None,
    out_dir: str | Path | None = None,
    info: Mapping | None = None,
) -> dict:
    """Answer every question, score the answers when golds are attached, return (and write) the results.

    ``info`` adds provenance to the results (e.g. where the questions and profiles came from).
    """
    start = time.perf_counter()
    prompts = build_prompts(task, users, config, profiles=profiles, retriever=retriever)
    if not prompts:
        raise DataError("no questions to answer")
    golds = {q["id"]: q["output"] for u in users for q in u.extra["questions"] if "output" in q}
    if hasattr(reader, "answer_examples"):  # the probe: trained on other users' questions, never on these
        raw = reader.answer_examples(task, prompts, golds)
    else:
        raw = reader.answer([p.prompt for p in prompts], max_new_tokens=config.max_new_tokens or task.answer_tokens)
    inputs = {q["id"]: q["input"] for u in users for q in u.extra["questions"]}
    preds = {p.id: task.postprocess(r, inputs[p.id]) for p, r in zip(prompts, raw, strict=True)}
    results = {
        "task": task.name,
        "task_version": task.version,
        **asdict(config),
        "max_new_tokens": config.max_new_tokens or task.answer_tokens,
        "reader": reader.name,
        "users": len({u.extra.get("person", u.id) for u in question_users(list(users))}),
        "questions": len(prompts),
        "metrics": score(task, golds, preds, rouge=config.rouge) if golds else None,
        **dict(info or {}),
    }
    if task.labels:
        results["outside_labels"] = sum(p not in task.labels for p in preds.values())
    if task.kind == "classification" and golds:  # few users: say how sure the accuracy is
        from bump_profiles.lamp.metrics import bootstrap_accuracy

        correct: dict[str, list[bool]] = {}
        for p in prompts:
            if p.id in golds:
                correct.setdefault(p.user_id, []).append(preds[p.id].strip() == golds[p.id].strip())
        ci = bootstrap_accuracy(correct)
        results["accuracy_ci95"] = [round(ci["lo"], 4), round(ci["hi"], 4)]
    if not config.uses_retrieval:
        del results["retriever"], results["k"]
    if task.kind != "generation":
        del results["rouge"]
    results["seconds"] = round(time.perf_counter() - start, 2)
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_json(out / "predictions.json", {"task": task.name, "golds": [{"id": i, "output": o} for i, o in preds.items()]})
        lines = [
            json.dumps({"id": p.id, "user_id": p.user_id, "prompt": p.prompt, "answer": r, "prediction": preds[p.id],
                        "gold": golds.get(p.id)}, ensure_ascii=False)
            for p, r in zip(prompts, raw, strict=True)
        ]
        atomic_write_text(out / "generations.jsonl", "\n".join(lines) + "\n")
        atomic_write_json(out / "results.json", results)
    return results


def load_results(paths: Sequence[str | Path]) -> list[dict]:
    """Results JSONs by file or by run folder (its ``results.json``)."""
    from bump_profiles.data.lamp import read_json

    loaded = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        data = read_json(path)
        if not isinstance(data, dict) or "method" not in data or "task" not in data:
            raise DataError("not a results file of 'bump-profiles eval run'", path=path)
        loaded.append(data)
    return loaded


def compare_table(results: Sequence[Mapping]) -> str:
    """A markdown table: one row per run (task, method, reader, users, questions), one column per
    metric, and the predictions outside the label list when the runs have a label list."""
    metrics: list[str] = []
    for r in results:
        for name in r.get("metrics") or {}:
            if name not in metrics:
                metrics.append(name)
    outside = any("outside_labels" in r for r in results)
    ci = any("accuracy_ci95" in r for r in results)
    header = ["task", "method", "reader", "users", "questions", *metrics] + (["accuracy 95% CI (users)"] if ci else []) \
        + (["outside labels"] if outside else [])
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        method = r["method"] + (f" ({r['retriever']}, k={r['k']})" if "retriever" in r else "")
        values = [(r.get("metrics") or {}).get(m) for m in metrics]
        cells = [r["task"], method, str(r.get("reader", "")), str(r.get("users", "")), str(r.get("questions", ""))]
        cells += ["" if v is None else f"{v:.4f}" for v in values]
        if ci:
            cells.append("{:.3f}-{:.3f}".format(*r["accuracy_ci95"]) if "accuracy_ci95" in r else "")
        if outside:
            cells.append(str(r.get("outside_labels", "")))
        rows.append("| " + " | ".join(cells) + " |")
    if not any(r["method"] == "none" for r in results):  # a table without its floor cannot be read
        rows.append("\nNo `none` run in this table: run `eval run --method none` beside these to show the floor.")
    return "\n".join(rows)
