"""The real service in a child process (``python -m bump_profiles.cli serve``) on 127.0.0.1, with the
openai backend pointed at a slow OpenAI-compatible stub, for the load and kill -9 tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from openai_stub import OpenAIStub

REPO = Path(__file__).resolve().parents[2]
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(store: str, base_url: str, log: Path, *, extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the service and wait until /health answers; (process, base URL)."""
    port = free_port()
    env = {**os.environ, "BUMP_API_TOKEN": TOKEN, "OPENAI_API_KEY": "unused", "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "bump_profiles.cli", "serve", "--store", store, "--port", str(port),
           "--backend", "openai", "--base-url", base_url, "--api-model", "stub-model", "--max-retries", "0",
           *(extra or [])]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the service did not answer within 60 s: {log.read_text()[-2000:]}")
