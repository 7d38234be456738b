"""Update-mode training where the previous profile is the policy's own (``prompt.previous_from: policy``).

With ``previous_from: file`` the previous profile of every training user is fixed before training
(:mod:`bump_profiles.profiles.update`), so the writer only ever updates someone else's text. A profile in
service is updated from its own earlier output, round after round; to learn to keep what lasts and
replace what faded, the writer must see its own previous profiles. Here each training user's
history is cut in three: the older part, the ``prompt.update_recent`` newest items (this round's new
interactions), and the ``data.k`` held-out items (the next round's, which the reward ranks; set
``data.k = prompt.update_recent`` for rounds of equal size). The previous profile is written by the
policy, greedy, from scratch over the older part, when a user's row is drawn; it is kept and reused
until the policy has taken ``prompt.previous_refresh_steps`` optimizer steps since (1: always the
current policy, up to the batch the data loader fetches ahead; more: a cached earlier policy's,
cheaper). With ``prompt.previous_rounds: n`` the previous profile goes through the chain a served one does:
from scratch over the oldest part, then ``n - 1`` updates of its own text with the next rounds of
``update_recent`` items. Neither the older part's profile nor the update prompt ever holds a held-out item.

:class:`PolicyPrevious` is a ``datasets`` transform: TRL reads the ``prompt`` column it builds for
each generation batch (one batched generation for the batch's users whose previous profile is due).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bump_profiles.data.split import UserSplit
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.prompts import ProfilePrompt, UpdatePrompt


@dataclass
class PolicyPrevious:
    """Previous profiles written by the policy being trained, and the update prompts built on them."""

    update: UpdatePrompt
    scratch: ProfilePrompt
    splits: dict[str, UserSplit]
    recent: int
    refresh_steps: int = 1
    max_new_tokens: int = 64
    rounds: int = 1  # rounds the previous profile went through: scratch, then rounds - 1 updates of `recent` items
    count_tokens: Callable[[str], int] | None = None
    written: dict[str, tuple[int, str]] = field(default_factory=dict)  # user -> (policy step, previous profile)
    generations: int = 0  # previous profiles written so far (each one a policy generation)
    _model: Callable[[], Any] | None = None
    _tokenizer: Any = None
    _step: Callable[[], int] = lambda: 0

    def bind(self, model: Callable[[], Any], tokenizer: Any, step: Callable[[], int]) -> None:
        """``model()`` returns the policy as it is now (unwrapped), ``step()`` its optimizer step count."""
        self._model, self._tokenizer, self._step = model, tokenizer, step

    def previous(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Each user's previous profile, written by the policy now for those not written within
        ``refresh_steps`` steps (one batched, greedy generation)."""
        if self._model is None:
            raise ConfigError("prompt.previous_from=policy: the policy is not bound yet (PolicyPrevious.bind)")
        now = self._step()
        due = sorted({u for u in user_ids if u not in self.written or now - self.written[u][0] >= self.refresh_steps})
        if due:
            from bump_profiles.engines.backends import TransformersBackend

            model = self._model()
            was_training = model.training
            try:
                backend = TransformersBackend(model, self._tokenizer, batch_size=len(due), name="policy")
                msgs = [self.scratch.messages(self.chain(u)[0], count_tokens=self.count_tokens) for u in due]
                texts = [c.text for c in backend.complete(msgs, max_new_tokens=self.max_new_tokens)]
                for r in range(1, self.rounds):  # the chain a served profile goes through: updates of its own text
                    msgs = [self.update.messages(t, self.chain(u)[r], count_tokens=self.count_tokens) for u, t in zip(due, texts, strict=True)]
                    texts = [c.text for c in backend.complete(msgs, max_new_tokens=self.max_new_tokens)]
                for u, text in zip(due, texts, strict=True):
                    self.written[u] = (now, text)
            finally:
                model.train(was_training)
            self.generations += len(due) * self.rounds
        return {u: self.written[u][1] for u in user_ids}

    def older(self, user_id: str) -> list:
        """The part of the history the previous profile stands for (everything before the recent part)."""
        return self.splits[user_id].history[: -self.recent]

    def chain(self, user_id: str) -> list[list]:
        """The older part as the previous profile's rounds: what its scratch profile read, then ``rounds - 1``
        rounds of ``recent`` items each, oldest first."""
        older, n = self.older(user_id), self.recent * (self.rounds - 1)
        if n == 0:
            return [older]
        tail = older[-n:]
        return [older[:-n], *(tail[i * self.recent : (i + 1) * self.recent] for i in range(self.rounds - 1))]

    def transform(self, batch: dict[str, list]) -> dict[str, list]:
        """``datasets`` transform: adds ``prompt`` (previous profile + the recent items) and ``previous_profile``."""
        prev = self.previous(batch["user_id"])
        prompts = [self.update.messages(prev[u], self.splits[u].history[-self.recent :], count_tokens=self.count_tokens)
                   for u in batch["user_id"]]
        return {**batch, "prompt": prompts, "previous_profile": [prev[u] for u in batch["user_id"]]}


def policy_prompt(config: Any, splits: Sequence[UserSplit]) -> PolicyPrevious:
    """The :class:`PolicyPrevious` of a TrainConfig (``prompt.previous_from: policy``), checked before any
    model loads: every training user needs an older part to summarise before the recent items."""
    cfg = config.prompt
    need = cfg.update_recent * cfg.previous_rounds
    short = [s.user.id for s in splits if len(s.history) <= need]
    if short:
        raise ConfigError(f"prompt.update_recent={cfg.update_recent} x prompt.previous_rounds={cfg.previous_rounds}: {len(short)} "
                          f"user(s) have no older history for the policy to profile, e.g. {short[:3]}: each needs more than {need} "
                          f"read items before its data.k held-out ones; lower it or leave those users out of data.path")
    budgets = dict(max_words=cfg.max_words, history_items=cfg.history_items, history_tokens=cfg.history_tokens)
    return PolicyPrevious(UpdatePrompt(cfg.update_template, **budgets), ProfilePrompt(cfg.template, **budgets),
                          {s.user.id: s for s in splits}, cfg.update_recent, cfg.previous_refresh_steps,
                          config.grpo.max_completion_length, cfg.previous_rounds)
