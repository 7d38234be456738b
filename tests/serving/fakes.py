"""A deterministic generator behind the real Backend protocol, for service tests (no model)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from bump_profiles.engines.backends import Completion, Messages, TextsFromCompletions


class EchoBackend(TextsFromCompletions):
    """Answers with a profile naming the prompt's size; ``delay`` seconds per call; records prompts and each
    call's batch size (``calls``)."""

    def __init__(self, name: str = "echo-gen", delay: float = 0.0, empty: bool = False):
        self.name, self.delay, self.empty = name, delay, empty
        self.prompts: list[str] = []
        self.calls: list[int] = []
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete(self, messages_batch: Sequence[Messages], *, max_new_tokens: int, temperature: float = 0.0) -> list[Completion]:
        out = []
        with self._lock:
            self.calls.append(len(messages_batch))
        for messages in messages_batch:
            prompt = messages[-1]["content"]
            with self._lock:
                self.prompts.append(prompt)
            time.sleep(self.delay)
            text = "" if self.empty else f"A user; prompt of {len(prompt.split())} words."
            out.append(Completion(text, len(prompt.split()), len(text.split()), False))
        return out
