"""Negatives beyond the batch: a population bank of other users' items (direction A) and a queue of
other users' recent profiles (direction B), with a share of hard negatives (the users whose histories
are nearest to the batch's).

Both are candidates of the rankings, never statistics of the batch (GUIDE section 1): a bank item is
one more item a profile must rank its own items above; a queued profile is one more profile an item
must rank its author's profile above. The rules, checked here and in tests/test_alignment_reward.py:

- a batch user's own items never enter its negatives (the bank drops every item of a batch user);
- the queue never offers a profile of a user being scored (entries of batch users are skipped);
- the bank holds training users only: it is built from the run's training splits, never from the
  evaluation users (:func:`bank_from_splits`).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bump_profiles.errors import ConfigError


def nearest_users(histories: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Per user, every other user by decreasing TF-IDF cosine of their concatenated histories (no
    model: the IDF is fitted on these histories, which are the training users' own)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    users = list(histories)
    docs = [" ".join(histories[u]) or "-" for u in users]
    vectors = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(docs)
    sim = np.asarray((vectors @ vectors.T).toarray())
    np.fill_diagonal(sim, -np.inf)
    return {u: [users[j] for j in np.argsort(-sim[i], kind="stable") if j != i] for i, u in enumerate(users)}


class PopulationBank:
    """Items of other training users, drawn per reward call as extra negatives of direction A.

    Each call draws ``users`` bank users outside the batch: ``round(hard_share * users)`` of them the
    nearest neighbours of the batch's users (by history, taken in turn), the rest uniformly at random
    (seeded, so a run is reproducible), and ranks all their items.
    """

    def __init__(self, items: Mapping[str, Sequence[str]], *, users: int, hard_share: float = 0.0,
                 neighbours: Mapping[str, Sequence[str]] | None = None, seed: int = 0):
        if users < 1:
            raise ConfigError(f"reward.bank_users: at least 1, got {users}")
        if not 0.0 <= hard_share <= 1.0:
            raise ConfigError(f"reward.hard_share: a share in [0, 1], got {hard_share}")
        if hard_share > 0 and neighbours is None:
            raise ConfigError("reward.hard_share needs each user's nearest users (bank histories)")
        self.items = {u: list(t) for u, t in items.items() if t}
        self.users = users
        self.hard_share = hard_share
        self.neighbours = neighbours or {}
        self.rng = random.Random(seed)

    def draw(self, batch_users: Sequence[str]) -> tuple[list[str], list[str]]:
        """(item texts, their owners) for one call; no batch user's item is ever among them."""
        batch = set(batch_users)
        pool = [u for u in self.items if u not in batch]
        want = min(self.users, len(pool))
        chosen: list[str] = []
        hard = round(self.hard_share * want)
        lists = [[v for v in self.neighbours.get(u, []) if v in self.items and v not in batch] for u in dict.fromkeys(batch_users)]
        depth = 0
        while len(chosen) < hard and any(depth < len(n) for n in lists):
            for n in lists:
                if depth < len(n) and n[depth] not in chosen and len(chosen) < hard:
                    chosen.append(n[depth])
            depth += 1
        rest = [u for u in pool if u not in chosen]
        chosen += self.rng.sample(rest, want - len(chosen))
        texts = [t for u in chosen for t in self.items[u]]
        owners = [u for u in chosen for _ in self.items[u]]
        return texts, owners


@dataclass
class QueuedProfile:
    user_id: str
    profile: str
    call: int  # the reward call that wrote it (its age is the current call minus this)


class ProfileQueue:
    """The most recent profiles of past reward calls (at most ``size``), extra negatives of direction B."""

    def __init__(self, size: int):
        if size < 1:
            raise ConfigError(f"reward.queue_size: at least 1, got {size}")
        self.entries: deque[QueuedProfile] = deque(maxlen=size)
        self.calls = 0

    def negatives(self, batch_users: Sequence[str]) -> list[QueuedProfile]:
        """Queued profiles of users outside the batch (a profile of a user being scored never counts)."""
        batch = set(batch_users)
        return [e for e in self.entries if e.user_id not in batch]

    def push(self, users: Sequence[str], profiles: Sequence[str]) -> None:
        """Queue this call's non-empty profiles and count the call."""
        for u, p in zip(users, profiles, strict=True):
            if p.strip():
                self.entries.append(QueuedProfile(u, p, self.calls))
        self.calls += 1


def bank_from_splits(splits: Sequence, *, users: int, hard_share: float = 0.0, seed: int = 0) -> PopulationBank:
    """The bank of a training run: each training user's held-out (reward) items; neighbours from
    their histories. Pass the training splits only: evaluation users never enter the bank."""
    items = {s.user.id: [it.text for it in s.heldout] for s in splits}
    neighbours = nearest_users({s.user.id: [it.text for it in s.history] for s in splits}) if hard_share > 0 else None
    return PopulationBank(items, users=users, hard_share=hard_share, neighbours=neighbours, seed=seed)
