"""The real service in a child process (``python -m bump_profiles.cli serve``) on 127.0.0.1, with the
openai backend pointed at a slow OpenAI-compatible stub, for the load and kill -9 tests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from openai_stub import OpenAIStub

from serving import launch

TOKEN = "load-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class SlowStub(OpenAIStub):
    """Answers every request after ``delay`` seconds (a generator that takes its time)."""

    def __init__(self, delay: float):
        super().__init__(["ok"])
        self.delay = delay

    def _next(self, body: dict, headers: dict) -> object:
        time.sleep(self.delay)
        return super()._next(body, headers)


def start_service(store: str, base_url: str, log: Path, *, extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the service (openai backend at ``base_url``) and wait until /health answers; (process, base URL)."""
    return launch.start_service(["--store", store, "--backend", "openai", "--base-url", base_url, "--api-model",
                                 "stub-model", "--max-retries", "0", *(extra or [])], token=TOKEN, log=log)
