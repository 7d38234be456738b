"""Best-of-N profiles: sample N profiles per user, score each with the BUMP reward on items the
generator did not read, keep the best. A label-free pick that works with any generator.

Per user the history is cut in two: the generator reads everything before the last ``m`` items, and
those ``m`` items are the reward's positives (:func:`reward_window`). Every user's N candidates go into
one reward call (:meth:`bump_profiles.rewards.bump.BumpReward.score_rows`), so the other users'
items (and, when configured, the population bank) are the negatives of direction A and the other
users' candidates (and the queue) those of direction B, exactly as in training. The pick is the
candidate with the highest reward (the first one on a tie) and its provenance (``best_of`` on its
profile line) holds every candidate's text and score, ``m`` and the seed.

Reproducible: each user's N samples come from one call seeded with :func:`user_seed` (the run's seed
and the user id), so a user's candidates do not depend on the batch, on the other users or on a
resumed run. An API backend is seeded through the request's ``seed`` where the server honours it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bump_profiles.data.schema import Interaction
from bump_profiles.engines.backends import Backend, Completion, token_counter
from bump_profiles.errors import ConfigError, DataError
from bump_profiles.rewards.rows import RewardRow


@dataclass
class Candidates:
    """One user's N sampled profiles, the seed that drew them, and whether each hit the length limit."""

    user_id: str
    texts: list[str]
    hit_limit: list[bool]
    tokens: list[int | None]
    seed: int


def user_seed(seed: int, user_id: str) -> int:
    """A per-user seed: the same user gets the same samples whatever else is in the run."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{user_id}".encode()).digest()[:4], "little")


def reward_window(history: Sequence[Interaction], m: int) -> tuple[list[Interaction], list[Interaction]]:
    """(what the generator reads, the reward's m items): the last ``m`` history items are held back."""
    if m < 1:
        raise ConfigError(f"best-of: the reward needs at least 1 item per user, got m={m}")
    if len(history) < m + 1:
        raise DataError(f"a history of {len(history)} items is too short to hold back m={m} reward items and read the rest")
    return list(history[:-m]), list(history[-m:])


def sample_candidates(backend: Backend, messages: list[dict[str, str]], user_id: str, *, n: int, seed: int,
                      temperature: float, max_new_tokens: int) -> Candidates:
    """N samples of one user's prompt, drawn in one seeded call (torch's generator for a local model)."""
    if n < 1:
        raise ConfigError(f"best-of: N must be at least 1, got {n}")
    if temperature <= 0 and n > 1:
        raise ConfigError("best-of: sampling N > 1 profiles needs a temperature above 0")
    s = user_seed(seed, user_id)
    if hasattr(backend, "model"):  # a local transformers model: seed torch's global generator for this call
        import torch

        torch.manual_seed(s)
    out: list[Completion] = backend.complete([messages] * n, max_new_tokens=max_new_tokens, temperature=temperature)
    return Candidates(user_id, [c.text for c in out], [c.hit_limit for c in out], [c.completion_tokens for c in out], s)


def score_candidates(reward, candidates: Mapping[str, Sequence[str]], positives: Mapping[str, Sequence[str]],
                     histories: Mapping[str, Sequence[str]] | None = None) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every candidate's reward in one call (the users' own candidates compete with every other user's),
    and the call's logged metrics. ``positives``: each user's reward items (texts)."""
    rows = [RewardRow(u, list(positives[u]), list(histories[u]) if histories is not None else None, text)
            for u, texts in candidates.items() for text in texts]
    rewards, metrics = reward.score_rows(rows)
    out: dict[str, list[float]] = {}
    for row, value in zip(rows, rewards, strict=True):
        out.setdefault(row.user_id, []).append(float(value))
    return out, metrics


def pick(scores: Sequence[float]) -> int:
    """Index of the best candidate (the first on a tie: deterministic)."""
    if not scores:
        raise ValueError("no candidate to pick from")
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def provenance(c: Candidates, scores: Sequence[float], *, m: int, seed: int, temperature: float, top_p: float,
               reward: str) -> dict:
    """What a best-of pick records on its profile line: every candidate and score, m, the seeds."""
    chosen = pick(scores)
    return {"n": len(c.texts), "m": m, "seed": seed, "user_seed": c.seed, "temperature": temperature, "top_p": top_p,
            "reward": reward, "picked": chosen, "scores": [round(float(s), 6) for s in scores], "candidates": c.texts,
            "hit_limit": c.hit_limit}


def load_candidates(path: str | Path, *, repair: bool = True) -> dict[str, Candidates]:
    """Candidates already sampled (a resumable JSONL, one user a line). A truncated last line is cut
    from the file (``repair``, the writer's own resume) or only skipped (a reader beside a running writer)."""
    from bump_profiles.profiles.generate import read_done

    path = Path(path)
    if not path.exists():
        return {}
    if repair:
        read_done(path)  # repairs a line cut by a crash
    text = path.read_text(encoding="utf-8")
    out = {}
    for line in text[: text.rfind("\n") + 1].splitlines():
        if line.strip():
            row = json.loads(line)
            out[row["user_id"]] = Candidates(row["user_id"], row["texts"], row["hit_limit"], row["tokens"], row["seed"])
    return out


def append_candidates(path: str | Path, c: Candidates) -> None:
    """Append one user's candidates and flush to disk (a crash loses at most this user)."""
    import os

    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(c.__dict__, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def sample_all(backend: Backend, prompts: Mapping[str, list[dict[str, str]]], path: str | Path, *, n: int, seed: int,
               temperature: float, max_new_tokens: int, progress: Callable[[str], None] | None = None) -> dict[str, Candidates]:
    """Candidates of every user, resuming from ``path`` (users already there are not sampled again)."""
    done = load_candidates(path)
    for user, messages in prompts.items():
        if user in done:
            continue
        done[user] = sample_candidates(backend, messages, user, n=n, seed=seed, temperature=temperature,
                                       max_new_tokens=max_new_tokens)
        append_candidates(path, done[user])
        if progress:
            progress(user)
    return {u: done[u] for u in prompts}


def best_of_profiles(items: Sequence, backend: Backend, prompt, reward, out_path: str | Path, *, n: int, m: int, seed: int,
                     temperature: float, top_p: float, max_new_tokens: int, group: int | None = None,
                     reward_name: str = "bump") -> dict:
    """Best-of-N profiles of every user (a :class:`UserSplit`, read from its history, or a :class:`User`)
    into ``out_path``; candidates are kept in ``<out>.candidates.jsonl`` as they are sampled (rerun to
    resume). Users are scored in groups of ``group`` (None: all at once). Returns a summary."""
    from bump_profiles.data.atomic import atomic_write_text
    from bump_profiles.data.split import UserSplit
    from bump_profiles.profiles.provenance import record

    reads, positives, heldout = {}, {}, {}
    for x in items:
        uid = x.user.id if isinstance(x, UserSplit) else x.id
        history = x.history if isinstance(x, UserSplit) else x.interactions
        try:
            reads[uid], positives[uid] = reward_window(history, m)
        except DataError as exc:
            raise DataError(f"user '{uid}': {exc}") from None
        heldout[uid] = x.heldout if isinstance(x, UserSplit) else None
    if len(reads) < 2:
        raise DataError("best-of needs at least 2 users: the other users are the reward's negatives")
    count = token_counter(backend)
    prompts = {u: prompt.messages(r, count_tokens=count) for u, r in reads.items()}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cands = sample_all(backend, prompts, f"{out_path}.candidates.jsonl", n=n, seed=seed, temperature=temperature,
                       max_new_tokens=max_new_tokens)
    users = list(reads)
    size = group or len(users)
    starts = list(range(0, len(users), size))
    if len(users) - starts[-1] == 1 and len(starts) > 1:  # no group of one user
        starts.pop()
    scores: dict[str, list[float]] = {}
    for a, b in zip(starts, [*starts[1:], len(users)], strict=True):
        chunk = users[a:b]
        got, _ = score_candidates(reward, {u: cands[u].texts for u in chunk}, {u: [it.text for it in positives[u]] for u in chunk},
                                  {u: [it.text for it in reads[u]] for u in chunk})
        scores.update(got)
    lines = []
    for u in users:
        c, best = cands[u], pick(scores[u])
        row = {"user_id": u, "profile": c.texts[best], "model": backend.name, "profile_tokens": c.tokens[best],
               "hit_limit": c.hit_limit[best], "read": record(reads[u], heldout[u]),
               "best_of": provenance(c, scores[u], m=m, seed=seed, temperature=temperature, top_p=top_p, reward=reward_name)}
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(out_path, "\n".join(lines) + "\n")
    return {"out": str(out_path), "users": len(users), "n": n, "m": m, "seed": seed,
            "mean_best": sum(max(s) for s in scores.values()) / len(scores),
            "mean_candidate": sum(sum(s) / len(s) for s in scores.values()) / len(scores)}
