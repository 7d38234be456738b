"""Start ``bump-profiles serve`` in a child process on 127.0.0.1 and wait until it answers.

The load benchmark and the reliability tests (load, kill -9) need the real service in its own process,
started the same way: a free loopback port, the bearer token in the environment, the output in a log.
A test helper, so it lives with the tests (``benchmarks/bench_serve.py`` imports it from here).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"  # the folder holding the bump_profiles package


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(args: list[str], *, token: str, log: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """``serve`` with ``args`` (store, backend, limits) on a free port of 127.0.0.1; (process, base URL)
    once ``/health`` answers 200. The child's output goes to ``log``; a start that fails shows its tail."""
    import httpx

    port = free_port()
    env = {**os.environ, "BUMP_API_TOKEN": token, "OPENAI_API_KEY": "unused",
           "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "bump_profiles.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
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
    raise RuntimeError(f"the service did not answer within {timeout:.0f} s: {log.read_text()[-2000:]}")
