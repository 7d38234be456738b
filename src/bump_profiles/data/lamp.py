"""Official LaMP files: questions (``{id, input, profile}``) and outputs (``{task, golds}``).

What a task's profile items carry (text fields, label field) and how its files are told apart come
from its item format in :mod:`bump_profiles.data.tasks`; this module only reads and groups.

A LaMP *question* is not a user: several questions of one person share (nearly) the same profile.
Questions are grouped into users by the ``user_id`` field where the file has one; otherwise two
questions belong to the same user when their profiles overlap by at least ``OVERLAP`` of the smaller
profile (items compared by content, since item ids are prefixed with the question id). Grouping is
transitive (union-find). Each question stays attached to its user in ``user.extra["questions"]``.

No answer may reach a question's inputs. In LaMP a question's target item (with its label) sits in
the profiles of the same person's *other* questions, so every input for a question is built from
that question's own profile only: the user keeps it in ``extra["question_items"]`` (by question
id) and :func:`question_users` turns a person into one user per question for readers and generators. The
person's own ``interactions`` (for training, in-batch negatives and counting) are the items that
every one of their questions has in its profile, which holds none of their questions' targets.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bump_profiles.data.schema import Interaction, User, sort_by_date, tidy
from bump_profiles.data.tasks import FILE_TASKS, ITEM_FORMATS, ItemFormat
from bump_profiles.errors import DataError

log = logging.getLogger(__name__)

OVERLAP = 0.5


@dataclass
class LampData:
    """Users built from one questions file, with how many questions became how many users."""

    task: str
    path: str
    users: list[User]
    n_questions: int

    def question_user(self) -> dict[str, str]:
        """Question id -> user id."""
        return {q["id"]: u.id for u in self.users for q in u.extra["questions"]}


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, with a DataError naming the file, line and column when it is malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start})", path=path) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=path) from exc


def detect_task(questions: list[dict], path: str | Path) -> str:
    """The LaMP task of a questions file: from its path (``LaMP_2_news``...), else from its fields.

    Asked of the item formats in order: a label field the items carry (category, tag, score), then a
    phrase of the input (``input_hint``), then the first unlabelled task whose item fields the items
    carry, the one with the most fields first.
    """
    name = str(path)
    for task in sorted(FILE_TASKS, key=len, reverse=True):
        if task in name:
            return task
    sample = next((q for q in questions if isinstance(q, dict) and isinstance(q.get("profile"), list)
                   and q["profile"] and isinstance(q["profile"][0], dict)), None)
    if sample is None:
        raise DataError("cannot tell the LaMP task: no question with a profile of items", path=path)
    keys = set(sample["profile"][0])
    formats = [ITEM_FORMATS[t] for t in FILE_TASKS]
    for fmt in formats:
        if fmt.label_field and fmt.label_field in keys:
            return fmt.name
    text = str(sample.get("input", "")).lower()
    for fmt in formats:
        if fmt.input_hint and re.search(fmt.input_hint, text):
            return fmt.name
    fitting = [s for s in formats if not s.label_field and keys >= set(s.item_fields)]
    if fitting:
        return max(fitting, key=lambda s: len(s.item_fields)).name  # max keeps the first on a tie
    raise DataError(f"cannot tell the LaMP task from profile fields {sorted(keys)}", path=path)


def load_lamp_outputs(path: str | Path) -> dict[str, str]:
    """Gold outputs by question id from an official ``*_outputs.json``."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("golds"), list):
        raise DataError("expected an object with a 'golds' list", path=path)
    golds: dict[str, str] = {}
    for n, row in enumerate(data["golds"]):
        if not isinstance(row, dict) or "id" not in row or "output" not in row:
            raise DataError("each gold needs 'id' and 'output'", path=path, record=n)
        golds[str(row["id"])] = str(row["output"])
    return golds


def load_lamp_questions(path: str | Path, *, task: str | None = None, outputs: str | Path | None = None) -> LampData:
    """Users from an official LaMP questions file (tasks 1 to 7, user- or time-based splits)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError("expected a JSON list of questions", path=path)
    task = task or detect_task(data, path)
    if task not in FILE_TASKS:
        raise DataError(f"unknown LaMP task '{task}' (known: {', '.join(FILE_TASKS)})", path=path)
    golds = load_lamp_outputs(outputs) if outputs else {}
    parsed = [_parse_question(q, n, ITEM_FORMATS[task], path) for n, q in enumerate(data)]
    seen: dict[str, int] = {}
    for n, (q, _) in enumerate(parsed):
        if q["id"] in seen:
            raise DataError(f"duplicate question id '{q['id']}' (first at record {seen[q['id']]})",
                            path=path, record=n, field="id")
        seen[q["id"]] = n
    for q, _ in parsed:
        if q["id"] in golds:
            q["output"] = golds[q["id"]]
    groups = _group_questions(parsed, data)
    users = []
    truncated = 0
    for members in groups:
        common = set.intersection(*({_content_key(it) for it in parsed[i][1]} for i in members))
        items = {_content_key(it): it for it in parsed[members[0]][1] if _content_key(it) in common}
        own_items: dict[str, list[Interaction]] = {}
        for i in members:
            own, _, cut = tidy(parsed[i][1])
            truncated += cut
            own_items[parsed[i][0]["id"]] = sort_by_date(own)
        first = parsed[members[0]][0]
        uid = str(data[members[0]].get("user_id", f"{task}-{first['id']}"))
        kept, _, _ = tidy(list(items.values()))
        users.append(User(id=uid, interactions=sort_by_date(kept),
                          extra={"task": task, "questions": [parsed[i][0] for i in members],
                                 "question_items": own_items}))
    if truncated:
        log.warning("%s: cut %d profile items longer than the per-interaction character limit", path, truncated)
    log.info("%s: %d questions -> %d users", path, len(parsed), len(users))
    return LampData(task=task, path=str(path), users=users, n_questions=len(parsed))


def question_users(users: list[User]) -> list[User]:
    """One user per question, id the question id, interactions the question's own profile.

    Readers and generators see a LaMP question only through this view, so no other question's
    profile (which may hold this question's target and its label) reaches its inputs.
    ``extra["person"]`` keeps who asked, for counting. Users whose questions carry no own profile
    (in-memory tasks such as the synthetic one) are returned as they are; applying it twice is harmless.
    """
    out: list[User] = []
    for user in users:
        questions = user.extra.get("questions", [])
        own = user.extra.get("question_items", {})
        if not questions or any(q["id"] not in own for q in questions):
            out.append(user)
            continue
        person = user.extra.get("person", user.id)
        for q in questions:
            out.append(User(id=q["id"], interactions=list(own[q["id"]]),
                            extra={**user.extra, "questions": [q], "question_items": {q["id"]: own[q["id"]]},
                                   "person": person}))
    return out


def _parse_question(q: Any, n: int, fmt: ItemFormat, path: str | Path) -> tuple[dict, list[Interaction]]:
    if not isinstance(q, dict):
        raise DataError("a question must be a JSON object", path=path, record=n)
    record = f"{n} (id {q.get('id', '?')})"
    for key in ("id", "input", "profile"):
        if key not in q:
            raise DataError(f"question has no '{key}'", path=path, record=record, field=key)
    if not isinstance(q["profile"], list):
        raise DataError("'profile' must be a list of items", path=path, record=record, field="profile")
    text_fields, label_field = fmt.item_fields, fmt.label_field
    items = []
    for m, item in enumerate(q["profile"]):
        where = f"{record} profile item {m}"
        if not isinstance(item, dict):
            raise DataError("a profile item must be a JSON object", path=path, record=where)
        fields = {}
        for f in text_fields:
            value = item.get(f)
            if value is not None and not isinstance(value, str):
                raise DataError(f"'{f}' must be text, got {type(value).__name__}", path=path, record=where, field=f)
            if value and value.strip():
                fields[f] = value
        if not fields:
            raise DataError(f"interaction has no text (expected {' or '.join(text_fields)})", path=path, record=where)
        label = item.get(label_field) if label_field else None
        score = None
        if fmt.numeric_label and label is not None:
            try:
                score = float(label)
            except (TypeError, ValueError) as exc:
                raise DataError(f"'{label_field}' must be a number, got {label!r}", path=path, record=where,
                                field=label_field) from exc
        items.append(Interaction(
            id=str(item.get("id", f"{q['id']}-{m}")), fields=fields, source=fmt.name,
            label=None if label is None else str(label), score=score,
            date=str(item["date"]) if item.get("date") is not None else None, raw=item,
        ))
    question = {"id": str(q["id"]), "input": str(q["input"])}
    return question, items


def _content_key(it: Interaction) -> str:
    return "\x1f".join(f"{k}={' '.join(v.split())}" for k, v in sorted(it.fields.items())) + f"|{it.label}|{it.date}"


def _group_questions(parsed: list[tuple[dict, list[Interaction]]], data: list[dict]) -> list[list[int]]:
    """Question indices grouped into users: by ``user_id`` if present, else by profile overlap."""
    if all("user_id" in q for q in data):
        by_user: dict[str, list[int]] = {}
        for i, q in enumerate(data):
            by_user.setdefault(str(q["user_id"]), []).append(i)
        return list(by_user.values())
    parent = list(range(len(parsed)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys = [{_content_key(it) for it in items} for _, items in parsed]
    owner: dict[str, list[int]] = {}
    for i, ks in enumerate(keys):
        for k in ks:
            owner.setdefault(k, []).append(i)
    shared: dict[tuple[int, int], int] = {}
    for holders in owner.values():
        for a in range(len(holders)):
            for b in range(a + 1, len(holders)):
                pair = (holders[a], holders[b])
                shared[pair] = shared.get(pair, 0) + 1
    for (i, j), n in shared.items():
        if n >= OVERLAP * min(len(keys[i]), len(keys[j])):
            parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(parsed)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())
