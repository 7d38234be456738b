"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests: ``POST /v1/chat/completions``.

Each request takes the next action from a script (then repeats the last): ``"ok"`` answers, an int
answers with that HTTP status, ``"sleep"`` waits past the client's timeout, ``"garbage"`` sends
non-JSON. Requests (bodies, and headers under lower-case names) are recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStub:
    def __init__(self, script: list[object] | None = None, *, sleep: float = 1.0, echo_key: bool = False):
        self.script = list(script or ["ok"])
        self.sleep = sleep
        self.echo_key = echo_key  # error bodies repeat the Authorization header, as a careless server might
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: dict, headers: dict) -> object:
        with self._lock:
            self.requests.append({"body": body, "headers": {k.lower(): v for k, v in headers.items()}})
            return self.script[min(len(self.requests), len(self.script)) - 1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                action = stub._next(body, dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": "no such route"}')
                if action == "sleep":
                    time.sleep(stub.sleep)
                    return self._send(200, b"{}")
                if action == "garbage":
                    return self._send(200, b"<html>not json</html>")
                if isinstance(action, int):
                    detail = self.headers.get("Authorization", "") if stub.echo_key else "server trouble"
                    return self._send(action, json.dumps({"error": {"message": detail}}).encode())
                prompt = body["messages"][-1]["content"]
                text = f"Profile: a user whose prompt had {len(prompt.split())} words."
                reply = {
                    "id": "chatcmpl-test", "object": "chat.completion", "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "length" if body["max_tokens"] <= 8 else "stop"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())},
                }
                self._send(200, json.dumps(reply).encode())

            def _send(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before the answer

        return Handler
