"""Readers: the LLM that answers a LaMP question from a prompt (with or without a profile).

A reader is a thin layer over the generation backends of :mod:`bump_profiles.backends`: each prompt
becomes one user turn of a chat, answered greedily. ``LabelChoiceReader`` answers a label task by the
label the LM finds most likely instead: a small LM that answers in free text often leaves the label
set, and those answers say nothing about the context it was given. Any causal LM (the bundled SmolLM2 by default,
a local path such as a LoRA-SFT reader, or a hub id) runs through ``TransformersBackend`` (batched,
left padding); any OpenAI-compatible endpoint through ``OpenAIBackend`` (``OpenAIClient``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bump_profiles.errors import ConfigError

if TYPE_CHECKING:
    from bump_profiles.backends import Backend

DEFAULT_READER = "smollm2-135m"


class Reader(Protocol):
    name: str

    def answer(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        """One greedy answer per prompt, in the order given."""
        ...


class BackendReader:
    """A reader on any generation backend; prompts go in chunks of ``batch_size``, longest first."""

    def __init__(self, backend: Backend, *, batch_size: int = 8, progress: bool = True):
        self.backend = backend
        self.name = backend.name
        self.batch_size = batch_size
        self.progress = progress

    def answer(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        from tqdm.auto import tqdm

        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        answers: list[str] = [""] * len(prompts)
        with tqdm(total=len(prompts), unit="question", desc=f"reader {self.name}", disable=not self.progress) as bar:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                messages = [[{"role": "user", "content": prompts[i]}] for i in chunk]
                texts = self.backend.generate(messages, max_new_tokens=max_new_tokens, temperature=0.0)
                for i, text in zip(chunk, texts, strict=True):
                    answers[i] = text
                bar.update(len(chunk))
        return answers


class LabelChoiceReader:
    """Answers a label task with the label of highest mean token log-prob as the assistant's reply.

    One prefix run per question (its KV cache serves every label: the likelihood judge's batched path,
    :meth:`bump_profiles.judges.likelihood.LikelihoodJudge.mean_logprobs`)."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str, batch_tokens: int = 4096, progress: bool = True):
        from bump_profiles.judges.likelihood import LikelihoodJudge

        self.scorer = LikelihoodJudge(model.eval(), tokenizer, batch_tokens=batch_tokens)
        self.name = f"{name} (label choice)"
        self.progress = progress

    def choose(self, prompts: Sequence[str], labels: Sequence[str]) -> list[str]:
        """The most likely label for each prompt (ties: the first label)."""
        from tqdm.auto import tqdm

        from bump_profiles.judges.lm import DOCUMENT_MARK, cut_prompt, render_chat

        if not labels:
            raise ConfigError("the label-choice reader needs a task with labels")
        answers = []
        for prompt in tqdm(prompts, unit="question", desc=f"reader {self.name}", disable=not self.progress):
            parts = cut_prompt(render_chat(self.scorer.tokenizer, prompt) + DOCUMENT_MARK)
            answers.append(labels[int(np.argmax(self.scorer.mean_logprobs(parts, labels)))])
        return answers

    def answer(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        raise ConfigError("the label-choice reader answers label tasks through run_eval, which gives it the labels")


def label_choice_reader(name_or_path: str = DEFAULT_READER, *, dtype: str = "auto", progress: bool = True) -> LabelChoiceReader:
    """A :class:`LabelChoiceReader` on a transformers model (bundled name, local path or hub id)."""
    import torch

    from bump_profiles.models import load_causal_lm, load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(name_or_path, dtype=dtype, device=device)
    return LabelChoiceReader(model, load_tokenizer(name_or_path), name=name_or_path, progress=progress)


def causal_lm_reader(
    name_or_path: str = DEFAULT_READER, *, dtype: str = "auto", batch_size: int = 8, progress: bool = True
) -> BackendReader:
    """A transformers reader: bundled name, local path (e.g. a merged SFT reader) or hub id."""
    import torch

    from bump_profiles.backends import TransformersBackend
    from bump_profiles.models import load_causal_lm, load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(name_or_path, dtype=dtype, device=device)
    backend = TransformersBackend(model, load_tokenizer(name_or_path), batch_size=batch_size, name=name_or_path)
    return BackendReader(backend, batch_size=batch_size, progress=progress)


def openai_reader(
    base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, max_retries: int = 4,
    concurrency: int = 8, progress: bool = True,
) -> BackendReader:
    """A reader on an OpenAI-compatible endpoint; ``concurrency`` requests in flight."""
    from bump_profiles.backends import OpenAIBackend
    from bump_profiles.openai_client import OpenAIClient

    client = OpenAIClient(base_url, model, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries)
    return BackendReader(OpenAIBackend(client, concurrency=concurrency), batch_size=concurrency, progress=progress)
