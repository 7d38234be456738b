"""Readers: the LLM that answers a LaMP question from a prompt (with or without a profile).

A reader is a thin layer over the generation backends of :mod:`bump_profiles.engines.backends`: each prompt
becomes one user turn of a chat, answered greedily. Any causal LM (the bundled SmolLM2 by default,
a local path such as a LoRA-SFT reader, or a hub id) runs through ``TransformersBackend`` (batched,
left padding); any OpenAI-compatible endpoint through ``OpenAIBackend`` (``OpenAIClient``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bump_profiles.engines.backends import Backend

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


def causal_lm_reader(
    name_or_path: str = DEFAULT_READER, *, dtype: str = "auto", batch_size: int = 8, progress: bool = True
) -> BackendReader:
    """A transformers reader: bundled name, local path (e.g. a merged SFT reader) or hub id."""
    import torch

    from bump_profiles.engines.backends import TransformersBackend
    from bump_profiles.engines.models import load_causal_lm, load_tokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_causal_lm(name_or_path, dtype=dtype, device=device)
    backend = TransformersBackend(model, load_tokenizer(name_or_path), batch_size=batch_size, name=name_or_path)
    return BackendReader(backend, batch_size=batch_size, progress=progress)


def openai_reader(
    base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, max_retries: int = 4,
    concurrency: int = 8, progress: bool = True,
) -> BackendReader:
    """A reader on an OpenAI-compatible endpoint; ``concurrency`` requests in flight."""
    from bump_profiles.engines.backends import OpenAIBackend
    from bump_profiles.engines.openai_client import OpenAIClient

    client = OpenAIClient(base_url, model, api_key_env=api_key_env, timeout=timeout, max_retries=max_retries)
    return BackendReader(OpenAIBackend(client, concurrency=concurrency), batch_size=concurrency, progress=progress)
