"""Interests that move: a user's log cut into rounds, synthetic users whose topics change at known
rounds, and what a profile says about the topics true now and the ones that faded (pure functions).

The drift benchmark (``benchmarks/bench_drift.py``) judges each round's profiles on the *next*
round's items; this module holds the parts that need no model:

- :func:`cut_rounds`: a user's interactions in time order, cut into consecutive rounds;
- :func:`make_drift_users`: synthetic users whose true topics per round are known. Kinds: ``keep``
  (the same two topics throughout), ``add`` (one topic, a second from round 2, a third from round 3),
  ``drop`` (three topics, one fewer at round 2 and at round 3), ``shift`` (two topics, one replaced
  every round: by round 3 none of round 1's is left), ``switch`` (two topics in round 1, two others from
  round 2 on: the strongest drift a profile can still follow, since round 2 already shows the new ones);
- :func:`topic_recall` / :func:`dropped_mentions`: the share of the current true topics a profile
  mentions, and of the dropped ones it still mentions (a faded interest kept is an error);
- :func:`category_shift`: for real authors, how far the categories of the first and the last round
  lie apart (total variation distance), to report shifting authors apart from stable ones;
- :func:`splice_authors`: real text with a drift at a known time, for when real authors move too little
  to tell an update from a stale profile: one author's articles, then another's;
  :func:`spliced_population` the benchmark's draw of them beside unspliced authors, and
  :func:`authors_used` which authors a population holds (what a writer trained for it must leave out).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from bump_profiles.data.schema import Interaction, User
from bump_profiles.data.synthetic import TEMPLATES, TOPICS
from bump_profiles.errors import DataError

KINDS = ("keep", "add", "drop", "shift")  # the default mix; also "switch"
ALL_KINDS = (*KINDS, "switch")


def items_needed(rounds: int, per_round: int, first: int | None = None) -> int:
    """How many of a user's newest items ``rounds`` rounds take: a first round of ``first`` (default
    ``per_round``) and ``rounds - 1`` of ``per_round``."""
    return (per_round if first is None else first) + (rounds - 1) * per_round


def cut_rounds(items: Sequence[Interaction], rounds: int, per_round: int | None = None,
               first: int | None = None) -> list[list[Interaction]]:
    """``rounds`` consecutive rounds of ``items`` (time order). With ``per_round``, the most recent
    ``first + (rounds - 1) * per_round`` items: a first round of ``first`` (default ``per_round``: a
    long-lived user's older history when larger), then rounds of exactly ``per_round``; without, all
    items in rounds whose sizes differ by at most one (the earlier rounds the larger)."""
    if rounds < 1:
        raise DataError(f"rounds must be at least 1, got {rounds}")
    if per_round is not None:
        first = per_round if first is None else first
        if min(per_round, first) < 1:
            raise DataError(f"items per round must be at least 1, got {per_round} (first round {first})")
        need = items_needed(rounds, per_round, first)
        if len(items) < need:
            long_first = f" (the first of {first})" if first != per_round else ""
            raise DataError(f"{len(items)} interactions: {rounds} rounds of {per_round}{long_first} need {need}")
        kept = list(items[-need:])
        return [kept[:first]] + [kept[first + r * per_round : first + (r + 1) * per_round] for r in range(rounds - 1)]
    if first is not None:
        raise DataError("a first round's size goes with per_round")
    if len(items) < rounds:
        raise DataError(f"{len(items)} interactions cannot fill {rounds} rounds")
    size, extra = divmod(len(items), rounds)
    out, start = [], 0
    for r in range(rounds):
        end = start + size + (r < extra)
        out.append(list(items[start:end]))
        start = end
    return out


def sample_authors(users: Sequence[User], n: int, *, min_items: int, seed: int) -> tuple[list[User], int]:
    """The drift benchmark's authors: ``n`` drawn with ``seed`` from those (sorted by id) with at least
    ``min_items`` items, and how many were eligible. An update writer trained for it leaves these out."""
    eligible = [u for u in sorted(users, key=lambda u: u.id) if len(u.interactions) >= min_items]
    return random.Random(seed).sample(eligible, min(n, len(eligible))), len(eligible)


def topic_schedule(kind: str, topics: Sequence[str], rounds: int) -> list[list[str]]:
    """The true topics in each round for one user of ``kind``, from its drawn ``topics`` (in order)."""
    if kind == "keep":
        return [list(topics[:2]) for _ in range(rounds)]
    if kind == "add":
        return [list(topics[: min(r + 1, 3)]) for r in range(rounds)]
    if kind == "drop":
        return [list(topics[: max(3 - r, 1)]) for r in range(rounds)]
    if kind == "shift":
        return [list(topics[r : r + 2]) for r in range(rounds)]
    if kind == "switch":
        return [list(topics[:2])] + [list(topics[2:4]) for _ in range(rounds - 1)]
    raise DataError(f"unknown drift kind '{kind}' (use one of {', '.join(ALL_KINDS)})")


def make_drift_users(n_users: int, *, rounds: int = 5, per_round: int = 6, seed: int = 0,
                     kinds: Sequence[str] = KINDS, first_round: int | None = None,
                     distinct: bool = False) -> list[User]:
    """``n_users`` deterministic users, kinds cycling over ``kinds``, dated items in ``rounds`` rounds:
    the first of ``first_round`` items (default ``per_round``), the others of ``per_round``. ``extra``:
    ``kind``, ``topics`` (the true topics of each round, a list per round), ``per_round`` and
    ``first_round``. Every true topic of a round gets at least one of that round's items.

    ``distinct`` redraws an item whose text the user already has: the provenance check counts a repeated
    text as read, so a long first round on two topics would credit a profile with the round it is judged
    on. Off by default so that earlier draws (the benchmark's IDF corpus) stay as they were; a draw without
    a repeat is the same either way (one seeded stream: the users before the first repeat are too)."""
    first_round = per_round if first_round is None else first_round
    if min(per_round, first_round) < 3:
        raise DataError(f"per_round={per_round}, first_round={first_round}: a round needs at least 3 items "
                        "(up to 3 topics each)")
    rng = random.Random(seed)
    names = sorted(TOPICS)
    users = []
    for u in range(n_users):
        kind = kinds[u % len(kinds)]
        drawn = rng.sample(names, max(rounds + 1, 4))
        schedule = topic_schedule(kind, drawn, rounds)
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 100))
        items = []
        for r, now in enumerate(schedule):
            order = list(now) + [rng.choice(now) for _ in range((first_round if r == 0 else per_round) - len(now))]
            rng.shuffle(order)
            for topic in order:
                i = len(items)
                text = rng.choice(TEMPLATES).format(*rng.sample(TOPICS[topic], 3))
                while distinct and any(x.text == text for x in items):
                    text = rng.choice(TEMPLATES).format(*rng.sample(TOPICS[topic], 3))
                day = (start + timedelta(days=2 * i)).isoformat()
                items.append(Interaction(id=f"d{seed}-u{u}-i{i}", fields={"text": text},
                                         source="synthetic", label=topic, date=day))
        users.append(User(id=f"drift-{seed}-{u}", interactions=items,
                          extra={"kind": kind, "topics": schedule, "per_round": per_round,
                                 "first_round": first_round}))
    return users


def dropped_topics(schedule: Sequence[Sequence[str]], r: int) -> list[str]:
    """Topics true in some round up to ``r`` (0-based) and no longer true in round ``r``."""
    seen = {t for now in schedule[: r + 1] for t in now}
    return sorted(seen - set(schedule[r]))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", text.lower()))


def mentions(profile: str, topic: str) -> bool:
    """Whether ``profile`` names ``topic`` or one of its vocabulary words (whole words, any case).
    A topic's words are its evidence in the items, so a profile that mentions any of them claims it."""
    said = _words(profile)
    vocabulary = {topic, *topic.split("-"), *TOPICS[topic]} - {"cooking"}
    return bool(said & vocabulary)


def topic_recall(profile: str, topics: Sequence[str]) -> float:
    """Share of ``topics`` (the true ones now) that ``profile`` mentions."""
    if not topics:
        raise DataError("topic recall needs at least one true topic")
    return sum(mentions(profile, t) for t in topics) / len(topics)


def dropped_mentions(profile: str, dropped: Sequence[str]) -> float | None:
    """Share of ``dropped`` topics still mentioned (None when nothing was dropped): lower is better."""
    if not dropped:
        return None
    return sum(mentions(profile, t) for t in dropped) / len(dropped)


def category_shift(first: Sequence[Interaction], last: Sequence[Interaction]) -> float:
    """Total variation distance between the category (label) shares of two rounds: 0 the same mix,
    1 no category in common."""
    if not first or not last:
        raise DataError("category shift needs two non-empty rounds")
    a, b = Counter(it.label for it in first), Counter(it.label for it in last)
    return 0.5 * sum(abs(a[c] / len(first) - b[c] / len(last)) for c in set(a) | set(b))


def splice_authors(users: Sequence[User], n: int, *, first: int, later: int, min_shift: float, seed: int,
                   exclude: Sequence[str] = ()) -> list[User]:
    """``n`` users of real text whose subjects switch at a known time: each is one author's newest ``first``
    articles, then another author's newest ``later`` (when dated, re-dated a day apart to follow on), the
    two authors' category mixes at least ``min_shift`` apart (:func:`category_shift`). No author is used
    twice, nor one in ``exclude`` (the unspliced authors ranked beside them). Pairs are drawn with ``seed``
    (authors sorted by id first); ``extra``: ``kind`` "spliced" and ``authors`` [before, after]. Refused
    (DataError) when fewer than ``n`` pairs can be made."""
    excluded = set(exclude)
    pool = sorted((u for u in users if u.id not in excluded), key=lambda u: u.id)
    random.Random(seed).shuffle(pool)
    used: set[str] = set()
    out = []
    for a in pool:
        if len(out) == n:
            break
        if a.id in used or len(a.interactions) < first:
            continue
        before = list(a.interactions[-first:])
        for b in pool:
            after = list(b.interactions[-later:])
            if b.id in used or b.id == a.id or len(b.interactions) < later or category_shift(before, after) < min_shift:
                continue
            used |= {a.id, b.id}
            moved = after
            if before[-1].date:
                last = date.fromisoformat(before[-1].date[:10])
                moved = [replace(x, date=(last + timedelta(days=i + 1)).isoformat()) for i, x in enumerate(after)]
            out.append(User(id=f"{a.id} -> {b.id}", interactions=before + moved,
                            extra={"kind": "spliced", "authors": [a.id, b.id]}))
            break
    if len(out) < n:
        raise DataError(f"only {len(out)} author pairs with {first} and {later} articles and a category shift of at "
                        f"least {min_shift} (asked for {n})")
    return out


def spliced_population(users: Sequence[User], n: int, *, rounds: int, per_round: int, first: int | None = None,
                       min_shift: float, seed: int) -> tuple[list[User], int]:
    """The drift benchmark's spliced population and how many authors could be its control: the first ``n``
    of the ``seed`` draw of authors with ``rounds`` rounds (``kind`` "single", unspliced, the control),
    then ``n`` pairs spliced from the others (first round: one author's ``first``; later rounds: another's)."""
    first = per_round if first is None else first
    singles, eligible = sample_authors(users, n, min_items=items_needed(rounds, per_round, first), seed=seed)
    spliced = splice_authors(users, n, first=first, later=(rounds - 1) * per_round, min_shift=min_shift, seed=seed,
                             exclude=[u.id for u in singles])
    return [replace(u, extra={**u.extra, "kind": "single"}) for u in singles] + spliced, eligible


def authors_used(users: Sequence[User]) -> set[str]:
    """The author ids behind ``users``: both authors of a spliced user, the user's own id otherwise."""
    return {a for u in users for a in u.extra.get("authors", [u.id])}
