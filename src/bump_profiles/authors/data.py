"""Authors as users: load, cap, split into training/evaluation authors, and build the downstream questions.

Every article is an :class:`Interaction` with ``fields = {"title": headline, "text": description}``,
its category (lower-cased) as the label and source ``LaMP_2_news`` (so it renders as LaMP's news
items do, the same whether read here or by ``train`` from the LaMP-format file written for it).

Leakage rules this module enforces (tests/test_authors_data.py checks them):

- an evaluation author never reaches training: the training file holds training authors only;
- each training author's k most recent articles are held out (the reward's items); each evaluation
  author's ``horizon`` most recent (near: the earliest k of them; far: the rest); generators read the
  history before them only;
- with folds, every author is evaluated exactly once, by a generator trained on the other folds;
- downstream questions come from the evaluation authors' near held-out articles, one question per
  article, its input built from that article alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bump_profiles.data.atomic import atomic_write_json
from bump_profiles.data.jsonl import iter_jsonl
from bump_profiles.data.schema import Interaction, User, sort_by_date, tidy
from bump_profiles.data.split import UserSplit, split_users
from bump_profiles.errors import DataError
from bump_profiles.lamp.tasks import TaskSpec, get_task

SOURCE = "LaMP_2_news"
CATEGORY_PROMPT = "Which category does this article belong to? Answer with exactly one of: {labels}. article: {article}"
HEADLINE_PROMPT = "Generate a headline for the following article: {article}"


@dataclass
class AuthorSplit:
    """Training and evaluation authors (each split into history and held-out articles).

    An evaluation author's held-out articles are in time order: the first ``near`` are the near
    horizon (the articles right after the history), the rest the far horizon."""

    train: list[UserSplit]
    eval: list[UserSplit]
    skipped: list[str] = field(default_factory=list)
    labels: tuple[str, ...] = ()
    near: int = 2

    def ids(self) -> dict[str, list[str]]:
        return {"train": [s.user.id for s in self.train], "eval": [s.user.id for s in self.eval], "skipped": self.skipped}

    def horizons(self) -> dict[str, list[UserSplit]]:
        """The evaluation authors with only their near (or far) held-out articles; no far horizon when none is held out."""
        out = {"near": [UserSplit(s.user, s.history, s.heldout[: self.near]) for s in self.eval]}
        far = [UserSplit(s.user, s.history, s.heldout[self.near :]) for s in self.eval if len(s.heldout) > self.near]
        if far:
            out["far"] = far
        return out


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


def fold_ids(ids: Sequence[str], folds: int, fold: int) -> list[str]:
    """Fold ``fold`` of ``folds`` contiguous, near-equal slices of the shuffled ids (every id in exactly one)."""
    n = len(ids)
    return list(ids[fold * n // folds : (fold + 1) * n // folds])


def split_horizon(users: Sequence[User], k: int, horizon: int, min_history: int) -> tuple[list[UserSplit], list[str]]:
    """Each user's ``horizon`` most recent articles held out, fewer (never below ``k``) when that would leave
    under ``min_history`` to read; users without ``min_history + k`` articles are skipped."""
    kept, skipped = [], []
    for u in users:
        held = min(horizon, len(u.interactions) - min_history)
        if held < k:
            skipped.append(u.id)
            continue
        kept.append(UserSplit(u, list(u.interactions[:-held]), list(u.interactions[-held:])))
    return kept, skipped


def split_authors(users: Sequence[User], *, eval_authors: int, k: int, seed: int, cap: int | None = None,
                  max_authors: int | None = None, horizon: int | None = None, min_history: int = 1,
                  folds: int | None = None, fold: int = 0, train_k: int | None = None) -> AuthorSplit:
    """Seeded author split. Training authors: the ``train_k`` (default k) most recent articles held out
    (the reward's items). Evaluation authors: the ``horizon`` (default k) most recent, the earliest k of
    them the near horizon. With ``folds``, the shuffled authors are cut into that many folds and fold
    ``fold`` is evaluated (``eval_authors`` is ignored). Labels: every category seen."""
    users = cap_history(users, cap)
    ids = sorted(u.id for u in users)
    random.Random(seed).shuffle(ids)
    if max_authors is not None:
        ids = ids[:max_authors]
    if folds is not None:
        if not 2 <= folds <= len(ids):
            raise DataError(f"folds={folds}: need 2 to {len(ids)} folds for {len(ids)} authors")
        evaluated = set(fold_ids(ids, folds, fold))
        eval_ids, train_ids = [i for i in ids if i in evaluated], [i for i in ids if i not in evaluated]
    elif not 1 <= eval_authors < len(ids):
        raise DataError(f"eval_authors={eval_authors}: need at least 1 evaluation and 1 training author of {len(ids)}")
    else:
        eval_ids, train_ids = ids[:eval_authors], ids[eval_authors:]
    by_id = {u.id: u for u in users}
    evals, eval_skipped = split_horizon([by_id[i] for i in eval_ids], k, horizon or k, min_history)
    train = split_users([by_id[i] for i in train_ids], train_k or k)
    labels = tuple(sorted({it.label for i in ids for it in by_id[i].interactions if it.label}))
    return AuthorSplit(train.users, evals, train.skipped + eval_skipped, labels, near=k)


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
    """One question per held-out article of ``splits``: its headline and description in, its category out."""
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
