"""Chunked-mode training (``prompt.mode: chunked``): the policy learns the merge over notes the base model wrote.

A profile written from one prompt's dozen items can only restate what the history cut to its length
says; reading ``prompt.chunks`` chunks of the history through notes lets it name what recurs
(docs/alignment.md measured that the reward then agrees more with held-out judges). In training the
notes are the *base* model's (the LoRA adapter switched off), greedy, written when a user's row is first
drawn and kept in the run's ``notes.jsonl``, as evaluation writes them with the untrained model: the
policy is trained on the merge only, and a resumed run reuses every note. Notes read the history only,
never a held-out item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bump_profiles.data.split import UserSplit
from bump_profiles.errors import ConfigError
from bump_profiles.profiles.chunked import ChunkedPrompt, chunked_prompt, load_notes, write_notes


@dataclass
class BaseNotes:
    """``datasets`` transform: each drawn user's merge prompt over the base model's notes on its chunks."""

    prompt: ChunkedPrompt
    splits: dict[str, UserSplit]
    max_new_tokens: int = 64
    path: Path | None = None
    _model: Callable[[], Any] | None = None
    _tokenizer: Any = None

    def bind(self, model: Callable[[], Any], tokenizer: Any, path: Path) -> None:
        """``model()`` returns the policy (a PEFT model, whose adapter is switched off for the notes);
        ``path`` keeps the notes (those already there are reused)."""
        self._model, self._tokenizer, self.path = model, tokenizer, path
        load_notes(self.prompt, path)

    def write(self, user_ids: Sequence[str]) -> None:
        """Notes on every chunk of these users not noted yet, by the base model, greedy, one batched call."""
        if self._model is None:
            raise ConfigError("prompt.mode=chunked: the policy is not bound yet (BaseNotes.bind)")
        histories = {u: self.splits[u].history for u in user_ids}
        if not self.prompt.missing(histories):
            return
        from bump_profiles.engines.backends import TransformersBackend

        model = self._model()
        was_training = model.training
        try:
            with model.disable_adapter():
                backend = TransformersBackend(model, self._tokenizer, batch_size=self.prompt.chunks * len(user_ids), name="base")
                write_notes(backend, self.prompt, histories, max_new_tokens=self.max_new_tokens, path=self.path)
        finally:
            model.train(was_training)

    def transform(self, batch: dict[str, list]) -> dict[str, list]:
        """``datasets`` transform: adds ``prompt`` (the merge over the user's notes)."""
        self.write(batch["user_id"])
        return {**batch, "prompt": [self.prompt.messages(self.splits[u].history) for u in batch["user_id"]]}


def notes_prompt(config: Any, splits: Sequence[UserSplit]) -> BaseNotes:
    """The :class:`BaseNotes` of a TrainConfig in chunked mode, checked before any model loads: the base
    model's notes need the adapter switched off, so the policy must be a LoRA adapter."""
    if not config.policy.lora:
        raise ConfigError("prompt.mode=chunked trains a LoRA adapter (policy.lora: true): the notes are the base "
                          "model's, written with the adapter switched off")
    return BaseNotes(chunked_prompt(config.prompt), {s.user.id: s for s in splits}, config.grpo.max_completion_length)
