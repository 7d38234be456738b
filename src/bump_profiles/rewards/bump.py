"""The BUMP reward as a TRL reward function: a batch of profiles -> judge -> ranking -> one float each.

What one call does (the whole algorithm; the math lives in :mod:`bump_profiles.judges.ranking`):

1. **Gather.** With several processes, every process's rows (user id, held-out texts, history texts,
   completion) are gathered with ``accelerate.utils.gather_object``, so the batch is scored once as a
   whole (a user's group of rollouts may be split across processes) and each process returns its
   own slice. With one process nothing is gathered.
2. **Empty profiles.** A completion that is empty or whitespace gets reward 0 and never reaches the
   judge: it is neither a query nor a candidate in either matrix, so it can neither earn a lucky score
   nor serve as a free negative for the others. 0 is also the floor of every reward (step 5).
3. **Score.** The held-out items of every distinct user in the batch (once per user, in order of first
   appearance) and the non-empty profiles go to the judge: one R x N profile->item matrix, and the
   N x R item->profile matrix (the transpose for a symmetric judge, a second pass otherwise). A NaN or
   inf score is an error that shows the texts. Each matrix is calibrated on its own (``none``, the default: as is;
   ``empty``: minus each item's score with the empty profile in A and each profile's score with the
   empty item in B, which removes item popularity without looking at any other user). The batch
   centring ``center-transductive`` is refused: it leaks which items are whose (docs/judges.md).
4. **Rank.** Direction A: each profile ranks all N items, its user's items are the positives
   (multi-positive NDCG). Direction B: each held-out item of the profile's user ranks the profile
   against every profile of the other users; NDCG of the profile (1/log2(1 + position)), averaged
   over the user's items. Ties are broken pessimistically. reward = w_A * NDCG_A + w_B * NDCG_B.
5. **Shape** (each optional, each logged per call): minus ``length_penalty * (tokens - length_target)``
   when positive (a reward lost per token past the target), and likewise ``length_penalty * (length_floor -
   tokens)`` below an optional floor (a one-line profile carries too little to rank a whole population by); minus ``repetition_penalty * the share of
   the profile's word 3-grams that repeat an earlier one`` (``profiles.stats.repeated_ngram_share``); minus ``copy_penalty * (4-gram copy rate - copy_threshold)`` when above the threshold;
   minus ``span_penalty * share of the profile's words inside verbatim history spans longer than
   max_copied_span words``. The result is floored at 0, the reward of an empty profile, so no penalty
   ever makes saying nothing the better choice.

Logged per call through TRL's ``log_metric`` (means over the whole gathered batch): ``ndcg_a`` and
``ndcg_b`` (over non-empty profiles), ``profile_tokens``, ``distinct_users``, ``empty_share``, and when
enabled ``length_penalty`` (with ``over_target_share`` and, with a floor, ``under_floor_share``), ``repeated_3gram_share`` and
``repetition_penalty``, ``copy_rate_4`` (whenever a history column is given), ``copy_penalty``,
``long_span_share`` and ``span_penalty``.

Headroom, logged every call beside the reward: ``at_max_share`` (share of non-empty profiles whose
ranking reward is already the maximum, w_A + w_B: nothing left to learn from them), ``group_spread``
(mean over users of the standard deviation of the final rewards of the user's rollouts: GRPO learns
nothing from a group of equal rewards) and ``ndcg_a_batch`` (direction A ranking the batch's items
only); with a bank, ``ndcg_a`` ranks the bank's items too and ``bank_items`` counts them.

Beyond the batch (each off by default; :mod:`bump_profiles.rewards.contrast`): a ``bank``
(:class:`PopulationBank`) adds other training users' items as negatives of direction A; a ``queue``
(:class:`ProfileQueue`) adds profiles of earlier calls' users outside this batch as negatives of
direction B (``queue_negatives`` and their mean ``queue_age`` in calls are logged), and takes this
call's profiles afterwards. With both off the reward is exactly the in-batch reward above.

Fewer than ``min_users`` distinct users in a call, or fewer than 2 users with at least one non-empty
profile, is an error: the other users are the negatives, and without them the score says nothing.
(One user whose rollouts are all empty is no error: they earn 0, and its items stay candidates.) Raise TRL's
``steps_per_generation`` (or the per-device batch) to put more users in a call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bump_profiles.errors import BumpError, ConfigError
from bump_profiles.judges import Judge
from bump_profiles.judges.calibration import DEFAULT_CALIBRATION, check_calibration
from bump_profiles.judges.ranking import bidirectional_reward
from bump_profiles.profiles.stats import copied_span_share, copy_rate, repeated_ngram_share, whitespace_tokens
from bump_profiles.rewards.contrast import PopulationBank, ProfileQueue
from bump_profiles.rewards.rows import RewardRow, completion_text, gather_rows
from bump_profiles.rewards.scoring import score_matrices


class BumpReward:
    """TRL reward function of BUMP (see the module docstring). A plain picklable callable, not an
    ``nn.Module``, so TRL calls it rather than treating it as a reward model.

    Dataset columns it reads: ``user_id`` (str), ``heldout`` (list of held-out interaction texts) and,
    for the copy guards, ``history`` (list of history texts). Picklable when ``judge`` and
    ``count_tokens`` are (pass a module-level function or a callable object, not a lambda).
    """

    __name__ = "bump"

    def __init__(
        self,
        judge: Judge,
        *,
        calibration: str = DEFAULT_CALIBRATION,
        weights: tuple[float, float] = (0.5, 0.5),
        length_target: int | None = None,
        length_penalty: float = 0.0,
        length_floor: int | None = None,
        count_tokens: Callable[[str], int] | None = None,
        min_users: int = 2,
        copy_threshold: float = 0.3,
        copy_penalty: float = 0.0,
        max_copied_span: int | None = None,
        span_penalty: float = 0.0,
        repetition_penalty: float = 0.0,
        bank: PopulationBank | None = None,
        queue: ProfileQueue | None = None,
    ):
        check_calibration(calibration, training=True)  # a bad or transductive mode fails here, not at a step
        if len(weights) != 2 or min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(f"reward weights must be two non-negative numbers, not both 0: got {weights}")
        if min_users < 2:
            raise ConfigError(f"min_users must be at least 2 (the other users are the negatives), got {min_users}")
        if min(length_penalty, copy_penalty, span_penalty, repetition_penalty) < 0:
            raise ConfigError("reward penalties must be non-negative")
        if length_penalty > 0 and (length_target is None or length_target < 1):
            raise ConfigError("length_penalty needs a positive length_target (tokens)")
        if length_floor is not None and not (length_penalty > 0 and 0 < length_floor <= length_target):
            raise ConfigError(f"length_floor needs length_penalty > 0 and 0 < length_floor <= length_target, got {length_floor}")
        if not 0.0 <= copy_threshold <= 1.0:
            raise ConfigError(f"copy_threshold must be in [0, 1], got {copy_threshold}")
        if span_penalty > 0 and (max_copied_span is None or max_copied_span < 1):
            raise ConfigError("span_penalty needs max_copied_span (words) of at least 1")
        self.judge = judge
        self.calibration = calibration
        self.weights = (float(weights[0]), float(weights[1]))
        self.length_target = length_target
        self.length_penalty = float(length_penalty)
        self.length_floor = length_floor
        self.count_tokens = count_tokens or whitespace_tokens
        self.min_users = min_users
        self.copy_threshold = float(copy_threshold)
        self.copy_penalty = float(copy_penalty)
        self.max_copied_span = max_copied_span
        self.span_penalty = float(span_penalty)
        self.repetition_penalty = float(repetition_penalty)
        self.bank = bank
        self.queue = queue

    @property
    def needs_history(self) -> bool:
        return self.copy_penalty > 0 or self.span_penalty > 0

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        user_id: Sequence[str],
        heldout: Sequence[Sequence[str]],
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        history = kwargs.get("history")
        if self.needs_history and history is None:
            raise BumpError("the copy penalties need a 'history' dataset column (the user's history texts)")
        if not len(completions) == len(user_id) == len(heldout):
            raise BumpError(f"{len(completions)} completions but {len(user_id)} user ids and {len(heldout)} held-out lists")
        local = [
            RewardRow(str(u), list(h), list(history[i]) if history is not None else None, completion_text(c))
            for i, (u, h, c) in enumerate(zip(user_id, heldout, completions, strict=True))
        ]
        rows, start = gather_rows(local)
        rewards, metrics = self.score_rows(rows)
        if log_metric is not None:
            for name, value in metrics.items():
                log_metric(name, value)
        return rewards[start : start + len(local)]

    def score_rows(self, rows: Sequence[RewardRow]) -> tuple[list[float], dict[str, float]]:
        """Rewards and per-call metrics of a whole (gathered) batch of rows."""
        users = [r.user_id for r in rows]
        texts = [r.profile for r in rows]
        heldout_of: dict[str, list[str]] = {}
        for user, held in zip(users, (r.heldout for r in rows), strict=True):
            if heldout_of.setdefault(user, held) != held:
                raise BumpError(f"user {user} appears with two different held-out lists in one batch")
            if not held:
                raise BumpError(f"user {user} has no held-out interaction: nothing to rank")
        if len(heldout_of) < self.min_users:
            raise BumpError(
                f"{len(heldout_of)} distinct user(s) in this reward call, need at least {self.min_users}: the other "
                "users are the negatives (raise steps_per_generation or the per-device batch size)"
            )
        keep = [i for i, t in enumerate(texts) if t.strip()]
        kept_users = sorted({users[i] for i in keep})
        # A user whose rollouts are all empty earns 0 for each (no advantage in its group) and its items
        # stay candidates; the others need at least one other user's profile to be ranked against.
        if len(kept_users) < 2:
            raise BumpError(
                f"only {len(kept_users)} user(s) have a non-empty profile in this reward call, need at least 2: "
                "nothing to rank against (the policy is writing empty profiles)"
            )

        items = [text for held in heldout_of.values() for text in held]
        item_users = [user for user, held in heldout_of.items() for _ in held]
        in_batch = len(items)
        metrics: dict[str, float] = {}
        if self.bank is not None:  # other users' items: never a batch user's (PopulationBank.draw)
            bank_items, bank_users = self.bank.draw(list(heldout_of))
            items, item_users = items + bank_items, item_users + bank_users
            metrics["bank_items"] = float(len(bank_items))
        queued = self.queue.negatives(list(heldout_of)) if self.queue is not None else []
        profiles = [texts[i] for i in keep]
        p2i, i2p = score_matrices(self.judge, profiles + [e.profile for e in queued], items, self.calibration)
        kept_users = [users[i] for i in keep]
        r = len(keep)
        queue_args = {}
        if self.queue is not None:
            queue_args = {"queue_scores": i2p[:, r:], "queue_users": [e.user_id for e in queued]}
            metrics["queue_negatives"] = float(len(queued))
            metrics["queue_age"] = float(np.mean([self.queue.calls - e.call for e in queued])) if queued else 0.0
        parts = bidirectional_reward(p2i[:r], i2p[:, :r], kept_users, item_users, self.weights, **queue_args)
        if len(items) > in_batch:
            batch_only = bidirectional_reward(p2i[:r, :in_batch], i2p[:in_batch, :r], kept_users, item_users[:in_batch])
            metrics["ndcg_a_batch"] = float(batch_only["ndcg_a"].mean())
        else:
            metrics["ndcg_a_batch"] = float(parts["ndcg_a"].mean())
        if self.queue is not None:
            self.queue.push(kept_users, profiles)

        n = len(rows)
        base = np.zeros(n)
        base[keep] = parts["reward"]
        shaping, penalties = self._penalties(rows)
        rewards = np.maximum(base - shaping, 0.0)
        metrics.update(penalties)
        metrics.update(
            ndcg_a=float(parts["ndcg_a"].mean()),
            ndcg_b=float(parts["ndcg_b"].mean()),
            distinct_users=float(len(heldout_of)),
            empty_share=float(1 - len(keep) / n),
            **headroom(parts["reward"], sum(self.weights), rewards, users),
        )
        return rewards.tolist(), metrics

    def _penalties(self, rows: Sequence[RewardRow]) -> tuple[np.ndarray, dict[str, float]]:
        """Total penalty per row and the per-call means of what was measured."""
        texts = [r.profile for r in rows]
        tokens = np.array([self.count_tokens(t) for t in texts], dtype=np.float64)
        total = np.zeros(len(rows))
        metrics = {"profile_tokens": float(tokens.mean())}
        if self.length_penalty > 0:
            over = np.maximum(tokens - self.length_target, 0.0)  # tokens past the target
            under = np.maximum((self.length_floor or 0) - tokens, 0.0)  # tokens short of the floor
            total += self.length_penalty * (over + under)
            metrics["length_penalty"] = float((self.length_penalty * (over + under)).mean())
            metrics["over_target_share"] = float((over > 0).mean())
            if self.length_floor:
                metrics["under_floor_share"] = float((under > 0).mean())
        if self.repetition_penalty > 0:
            repeated = np.array([repeated_ngram_share(t, 3) for t in texts])
            total += self.repetition_penalty * repeated
            metrics["repeated_3gram_share"] = float(repeated.mean())
            metrics["repetition_penalty"] = float((self.repetition_penalty * repeated).mean())
        histories = [r.history for r in rows]
        if any(h is not None for h in histories):
            rates = np.array([copy_rate(t, h or [], 4) for t, h in zip(texts, histories, strict=True)])
            metrics["copy_rate_4"] = float(rates.mean())
            if self.copy_penalty > 0:
                pen = self.copy_penalty * np.maximum(rates - self.copy_threshold, 0.0)
                total += pen
                metrics["copy_penalty"] = float(pen.mean())
            if self.span_penalty > 0:
                share = np.array([copied_span_share(t, h or [], self.max_copied_span) for t, h in zip(texts, histories, strict=True)])
                total += self.span_penalty * share
                metrics["long_span_share"] = float(share.mean())
                metrics["span_penalty"] = float((self.span_penalty * share).mean())
        return total, metrics


def headroom(ranking_reward: np.ndarray, maximum: float, rewards: np.ndarray, users: Sequence[str]) -> dict[str, float]:
    """How much a call leaves GRPO to learn from: the share of (non-empty) profiles at the ranking
    reward's maximum, and the mean within-user standard deviation of the final rewards."""
    groups: dict[str, list[float]] = {}
    for u, value in zip(users, rewards, strict=True):
        groups.setdefault(u, []).append(float(value))
    spreads = [float(np.std(v)) for v in groups.values() if len(v) > 1]
    return {"at_max_share": float(np.mean(np.asarray(ranking_reward) >= maximum - 1e-12)) if len(ranking_reward) else 0.0,
            "group_spread": float(np.mean(spreads)) if spreads else 0.0}
