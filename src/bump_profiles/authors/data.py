"""Authors as users: load, cap, split into training/evaluation authors, and build the downstream questions.

Every article is an :class:`Interaction` with ``fields = {"title": headline, "text": description}``,
its category (lower-cased) as the label and source ``LaMP_2_news`` (so it renders as LaMP's news
items do, the same whether read here or by ``train`` from the LaMP-format file written for it).

Leakage rules this module enforces (tests/test_authors_data.py checks them):

- an evaluation author never reaches training: the training file holds training authors only;
- each author's k most recent articles are held out; generators read the history only;
- downstream questions come from the evaluation authors' held-out articles, one question per article,
  its input built from that article alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bump_profiles.data.jsonl import iter_jsonl
from bump_profiles.data.schema import Interaction, User, sort_by_date, tidy
from bump_profiles.data.split import UserSplit, split_users
from bump_profiles.errors import DataError
from bump_profiles.io import atomic_write_json
from bump_profiles.lamp.tasks import TaskSpec, get_task

SOURCE = "LaMP_2_news"
CATEGORY_PROMPT = "Which category does this article belong to? Answer with exactly one of: {labels}. article: {article}"
HEADLINE_PROMPT = "Generate a headline for the following article: {article}"


@dataclass
class AuthorSplit:
    """Training and evaluation authors (each split into history and k held-out articles)."""

    train: list[UserSplit]
    eval: list[UserSplit]
    skipped: list[str] = field(default_factory=list)
    labels: tuple[str, ...] = ()

    def ids(self) -> dict[str, list[str]]:
        return {"train": [s.user.id for s in self.train], "eval": [s.user.id for s in self.eval], "skipped": self.skipped}


def description(text: str, title: str) -> str:
    """The short description: ``text`` is ``headline + ". " + description`` in the source."""
    if title and text.startswith(title):
        return text[len(title):].lstrip(". ").strip()
    return text.strip()


def load_authors(path: str | Path) -> list[User]:
    """Authors from the HuffPost JSONL (``user_id``, ``text``, ``title``, ``category``, ``timestamp``)."""
    by_author: dict[str, list[Interaction]] = {}
    for lineno, obj in iter_jsonl(path):
        where = f"line {lineno}"
        for key in ("user_id", "text", "title", "category", "timestamp"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise DataError(f"article needs a non-empty string '{key}'", path=path, record=where, field=key)
        uid = obj["user_id"]
        items = by_author.setdefault(uid, [])
        fields = {"title": obj["title"].strip()}
        desc = description(obj["text"], obj["title"].strip())
        if desc:
            fields["text"] = desc
        items.append(Interaction(id=str(obj.get("post_id") or f"{uid}-{len(items)}"), fields=fields, source=SOURCE,
                                 label=obj["category"].strip().lower(), date=obj["timestamp"], raw={}))
    if not by_author:
        raise DataError("no articles", path=path)
    users = []
    for uid, items in by_author.items():
        kept, _, _ = tidy(sort_by_date(items))
        users.append(User(uid, kept))
    return users


def cap_history(users: Sequence[User], cap: int | None) -> list[User]:
    """Each author's ``cap`` most recent articles (held-out ones included), so no author dominates."""
    if cap is None:
        return list(users)
    return [User(u.id, u.interactions[-cap:], dict(u.extra)) for u in users]


def split_authors(users: Sequence[User], *, eval_authors: int, k: int, seed: int, cap: int | None = None,
                  max_authors: int | None = None) -> AuthorSplit:
    """Seeded author split; per author the k most recent articles held out. Labels: every category seen."""
    users = cap_history(users, cap)
    ids = sorted(u.id for u in users)
    random.Random(seed).shuffle(ids)
    if max_authors is not None:
        ids = ids[:max_authors]
    if not 1 <= eval_authors < len(ids):
        raise DataError(f"eval_authors={eval_authors}: need at least 1 evaluation and 1 training author of {len(ids)}")
    by_id = {u.id: u for u in users}
    evals = split_users([by_id[i] for i in ids[:eval_authors]], k)
    train = split_users([by_id[i] for i in ids[eval_authors:]], k)
    labels = tuple(sorted({it.label for i in ids for it in by_id[i].interactions if it.label}))
    return AuthorSplit(train.users, evals.users, train.skipped + evals.skipped, labels)


def category_task(labels: Sequence[str]) -> TaskSpec:
    """The LaMP-2-news-like task on this dataset's own categories (LaMP's list has 15; HuffPost's more)."""
    return TaskSpec(
        name="authors_category", kind="classification", labels=tuple(labels), pattern=r"article:\s*(?P<article>.*)$",
        query_fields=("article",), item_text=lambda it: " ".join(it.fields.values()),
        item_prompt=lambda it: f'the category for the article: "{it.text}" is "{it.label}"',
    )


def headline_task() -> TaskSpec:
    """LaMP-4: a headline from the description (LaMP's own spec)."""
    return get_task("LaMP_4")


def category_questions(splits: Sequence[UserSplit], labels: Sequence[str]) -> list[dict]:
    """One question per held-out article: its headline and description in, its category out."""
    rows = []
    for s in splits:
        for it in s.heldout:
            article = ". ".join(v for v in (it.fields.get("title"), it.fields.get("text")) if v)
            rows.append({"id": f"cat-{it.id}", "user_id": s.user.id, "output": it.label,
                         "input": CATEGORY_PROMPT.format(labels=", ".join(labels), article=article)})
    return rows


def headline_questions(splits: Sequence[UserSplit]) -> list[dict]:
    """One question per held-out article with a description: description in, headline out."""
    return [{"id": f"head-{it.id}", "user_id": s.user.id, "output": it.fields["title"],
             "input": HEADLINE_PROMPT.format(article=it.fields["text"])}
            for s in splits for it in s.heldout if it.fields.get("text")]


def write_training_file(splits: Sequence[UserSplit], labels: Sequence[str], questions: str | Path, outputs: str | Path) -> None:
    """The training authors as LaMP_2_news questions + outputs files, the format ``train`` reads.

    Each author's profile is history + held-out articles in time order (``train`` holds the same k
    out again, checked by :func:`check_same_split`); the questions are the categories of the
    held-out articles, the labels only ``reward.kind: task`` reads.
    """
    rows, golds = [], []
    for s in splits:
        profile = [{"id": it.id, "title": it.fields["title"], "text": it.fields.get("text", ""),
                    "category": it.label, "date": it.date} for it in [*s.history, *s.heldout]]
        for q in category_questions([s], labels):
            rows.append({"id": q["id"], "user_id": s.user.id, "input": q["input"], "profile": profile})
            golds.append({"id": q["id"], "output": q["output"]})
    atomic_write_json(questions, rows)
    atomic_write_json(outputs, {"task": "LaMP_2", "golds": golds})


def check_same_split(ours: Sequence[UserSplit], theirs: Sequence[UserSplit]) -> None:
    """``train``'s own split of the training file must hold out exactly our held-out articles."""
    mine = {s.user.id: ([it.text for it in s.history], [it.text for it in s.heldout]) for s in ours}
    other = {s.user.id: ([it.text for it in s.history], [it.text for it in s.heldout]) for s in theirs}
    if mine != other:
        differ = sorted(u for u in set(mine) | set(other) if mine.get(u) != other.get(u))
        raise DataError(f"the training run's split differs from the benchmark's for {len(differ)} authors (e.g. {differ[:2]})")
