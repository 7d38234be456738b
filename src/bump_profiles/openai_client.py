"""A minimal client for OpenAI-compatible chat endpoints (OpenAI, vLLM serve, llama.cpp, ...).

Standard library only. The API key is read from an environment variable at each request and kept
nowhere else: not on the object, not in its repr, not in any error message (a server that echoes
it back has it masked). Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential
backoff (``backoff * 2**attempt`` seconds, or the server's ``Retry-After`` when larger); anything
else, or a failure that outlives the retries, raises :class:`~bump_profiles.errors.RemoteError`.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from bump_profiles.errors import ConfigError, RemoteError

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class ChatResult:
    """One chat completion: the text, why it stopped, and the server's token counts (when reported)."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


class OpenAIClient:
    """``POST {base_url}/chat/completions`` with retries; ``base_url`` usually ends in ``/v1``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL must start with http:// or https://, got '{base_url}'")
        if max_retries < 0 or timeout <= 0 or backoff < 0:
            raise ConfigError("need max_retries >= 0, timeout > 0 and backoff >= 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0) -> str:
        """The assistant's reply to ``messages``."""
        return self.complete(messages, max_tokens=max_tokens, temperature=temperature).text

    def complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> ChatResult:
        """The reply with its finish reason and token usage."""
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            body["seed"] = seed
        payload = self._post("/chat/completions", body)
        try:
            choice = payload["choices"][0]
            text = choice["message"]["content"]
            usage = payload.get("usage") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise RemoteError(f"{self.base_url}: unexpected response shape (no choices[0].message.content)") from exc
        if not isinstance(text, str):
            raise RemoteError(f"{self.base_url}: message content is {type(text).__name__}, not text")
        return ChatResult(text, choice.get("finish_reason"), usage.get("prompt_tokens"), usage.get("completion_tokens"))

    def _post(self, route: str, body: dict) -> dict:
        url = self.base_url + route
        data = json.dumps(body).encode("utf-8")
        key = os.environ.get(self.api_key_env)
        last, last_retry_after = "", None
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = self._delay(attempt, last_retry_after)
                log.warning("%s: %s; retry %d/%d in %.2fs", url, last, attempt, self.max_retries, delay)
                time.sleep(delay)
            last_retry_after = None
            request = urllib.request.Request(url, data=data, method="POST", headers=self._headers(key))
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                detail = _mask(exc.read(500).decode("utf-8", "replace"), key)
                last = f"HTTP {exc.code} {detail.strip()}".strip()
                if exc.code not in RETRY_STATUS:
                    hint = f" (is ${self.api_key_env} set to a valid key?)" if exc.code in (401, 403) else ""
                    raise RemoteError(f"{url}: {last}{hint}") from None
                last_retry_after = exc.headers.get("Retry-After")
                continue
            except TimeoutError:
                last = f"no answer within {self.timeout:g}s (timeout)"
                continue
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    last = f"no answer within {self.timeout:g}s (timeout)"
                else:
                    last = f"cannot connect ({_mask(str(exc.reason), key)})"
                continue
            except (ConnectionError, http.client.HTTPException) as exc:
                # a connection dropped mid-answer, e.g. RemoteDisconnected or IncompleteRead
                last = f"connection failed ({type(exc).__name__})"
                continue
            try:
                return json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RemoteError(f"{url}: response is not JSON ({_mask(raw[:200].decode('utf-8', 'replace'), key)})") from exc
        raise RemoteError(f"{url}: gave up after {self.max_retries + 1} attempts; last error: {last}")

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
            except ValueError:
                pass  # an HTTP date: keep our own backoff
        return delay


def _mask(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text
