"""A run's users: load what the config names, keep evaluation users out, hold out k items each, and
the training dataset (prompt, held-out and history texts, task rows). No model needed: the demo and
the benchmarks take their split from here."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bump_profiles.config import DataConfig, TrainConfig
from bump_profiles.data import User, UserSplit, load_lamp_questions, load_users, split_users
from bump_profiles.errors import DataError
from bump_profiles.profiles.prompts import ProfilePrompt
from bump_profiles.profiles.update import UpdateTrainingPrompt
from bump_profiles.train.notes import BaseNotes
from bump_profiles.train.sequential import PolicyPrevious


@dataclass
class RunData:
    """Users split for a run: training users' splits, evaluation users' splits, and who was skipped."""

    train: list[UserSplit]
    eval: list[UserSplit]
    skipped: list[str]


def load_data_users(data: DataConfig) -> list[User]:
    """The users a config names: synthetic (with a task question each) or read from a file."""
    if data.synthetic is not None:
        from bump_profiles.data.synthetic import make_task, make_users

        users = make_users(data.synthetic.users, seed=data.synthetic.seed)
        for user, row in zip(users, make_task(users, seed=data.synthetic.seed), strict=True):
            user.extra["questions"] = [row]
        return users
    if data.outputs is not None:
        return load_lamp_questions(data.path, outputs=data.outputs).users
    return load_users(data.path, data.format)


def eval_user_ids(users: list[User], eval_users: float, seed: int) -> set[str]:
    """Users kept out of training: a seeded random ``eval_users`` share (< 1) or count of them."""
    n = int(eval_users) if eval_users >= 1 else round(eval_users * len(users))
    ids = sorted(u.id for u in users)
    random.Random(seed).shuffle(ids)
    return set(ids[: min(n, len(ids))])


def prepare_data(config: TrainConfig) -> RunData:
    """Load, split into train/eval users, and hold out k interactions per user. No model needed."""
    users = load_data_users(config.data)
    held = eval_user_ids(users, config.data.eval_users, config.seed)
    train_users = [u for u in users if u.id not in held]
    if config.data.max_users is not None:
        train_users = train_users[: config.data.max_users]
    split = config.data.split
    train = split_users(train_users, config.data.horizon or config.data.k, strategy=split, seed=config.seed)
    evals = split_users([u for u in users if u.id in held], config.data.horizon or config.data.k, strategy=split, seed=config.seed)
    if config.data.horizon is not None:  # k of the horizon's items are the reward's; the generator reads none of them
        from bump_profiles.rewards.alignment import reward_items

        for s in (*train.users, *evals.users):
            s.heldout = reward_items(s.heldout, config.data.k, spread=True)
    b = config.reward.users_per_call
    if len(train.users) < b:
        raise DataError(
            f"{len(train.users)} training users have more than k={config.data.k} interactions "
            f"({len(train.skipped)} skipped, {len(held)} kept for evaluation): fewer than B={b} users per reward call",
            path=config.data.path or "synthetic users",
        )
    if config.reward.kind != "bump":
        missing = [s.user.id for s in train.users if not _task_rows(s.user)]
        if missing:
            raise DataError(f"{len(missing)} training users have no question with a gold output (e.g. {missing[0]})",
                            path=config.data.path or "synthetic users", field="output")
    return RunData(train.users, evals.users, train.skipped + evals.skipped)


def _task_rows(user: User) -> list[dict]:
    return [q for q in user.extra.get("questions", []) if q.get("output") is not None]


def build_dataset(splits: list[UserSplit], prompt: ProfilePrompt | UpdateTrainingPrompt | PolicyPrevious | BaseNotes,
                  count_tokens: Any = None, *, with_task: bool = False):
    """One row per user: ``prompt`` (chat messages from the history), ``user_id``, ``heldout`` and
    ``history`` (rendered texts) and, ``with_task``, the user's ``task_inputs`` and ``task_outputs``.
    With a :class:`PolicyPrevious` or :class:`BaseNotes`, ``prompt`` is built when a row is read (the policy
    writes the previous profile, or the base model the chunk notes, then)."""
    from datasets import Dataset

    lazy = isinstance(prompt, PolicyPrevious | BaseNotes)
    rows = []
    for s in splits:
        row = {
            **({} if lazy else {"prompt": prompt.split_messages(s, count_tokens=count_tokens)}),
            "user_id": s.user.id,
            "heldout": [it.text for it in s.heldout],
            "history": [it.text for it in s.history],
        }
        if with_task:
            questions = _task_rows(s.user)
            row["task_inputs"] = [q["input"] for q in questions]
            row["task_outputs"] = [q["output"] for q in questions]
        rows.append(row)
    dataset = Dataset.from_list(rows)
    if lazy:
        dataset.set_transform(prompt.transform)
    return dataset
