"""Chat completions from any OpenAI-compatible endpoint (OpenAI, vLLM serve, llama.cpp, ...).

A thin wrapper over the official ``openai`` package, which does the HTTP, the retries (connection
errors, timeouts, HTTP 408/409/429/5xx, with exponential backoff and jitter, honouring the server's
``Retry-After``) and the per-request timeout. What this module adds:

- the API key is read from an environment variable at each request and sent as that request's
  ``Authorization`` header; the ``openai`` client itself is built without a key, so it never holds
  one, and it never falls back to ``$OPENAI_API_KEY`` when another variable was named. No key set:
  no ``Authorization`` header at all (local servers).
- every failure is one :class:`~bump_profiles.errors.RemoteError` naming the URL, how many attempts
  were made and the last error, with the key masked should a server echo it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import openai

from bump_profiles.errors import ConfigError, RemoteError

RETRIED_STATUS = {408, 409, 429}  # and every 5xx: the statuses the openai package retries


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
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base URL must start with http:// or https://, got '{base_url}'")
        if max_retries < 0 or timeout <= 0:
            raise ConfigError("need max_retries >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        # The package's key provider answers "" so that the client neither holds a key nor reads
        # $OPENAI_API_KEY; each request carries its own Authorization header (see ``complete``).
        self._client = openai.OpenAI(base_url=self.base_url, api_key=_no_key, timeout=timeout, max_retries=max_retries)

    def __repr__(self) -> str:
        return f"OpenAIClient(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0) -> str:
        """The assistant's reply to ``messages``."""
        return self.complete(messages, max_tokens=max_tokens, temperature=temperature).text

    def complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> ChatResult:
        """The reply with its finish reason and token usage."""
        url = f"{self.base_url}/chat/completions"
        key = os.environ.get(self.api_key_env)
        auth = {"Authorization": f"Bearer {key}"} if key else {"Authorization": openai.omit}
        extra = {} if seed is None else {"seed": seed}
        try:
            reply = self._client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_tokens, temperature=temperature,
                extra_headers=auth, **extra,  # type: ignore[arg-type]
            )
        except openai.APIStatusError as exc:
            last = _mask(f"HTTP {exc.status_code} {_detail(exc)}".strip(), key)
            if exc.status_code in RETRIED_STATUS or exc.status_code >= 500:
                raise RemoteError(f"{url}: {self._attempts(exc)}{last}") from None
            hint = f" (is ${self.api_key_env} set to a valid key?)" if exc.status_code in (401, 403) else ""
            raise RemoteError(f"{url}: {last}{hint}") from None
        except openai.APITimeoutError as exc:
            raise RemoteError(f"{url}: {self._attempts(exc)}no answer within {self.timeout:g}s (timeout)") from None
        except openai.APIConnectionError as exc:
            cause = _mask(str(exc.__cause__ or exc), key)
            raise RemoteError(f"{url}: {self._attempts(exc)}cannot connect ({cause})") from None
        except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
            raise RemoteError(f"{url}: response is not JSON ({_mask(str(exc), key)[:200]})") from None
        try:
            choice = reply.choices[0]
            text = choice.message.content
            usage = reply.usage
        except (AttributeError, IndexError, TypeError) as exc:
            raise RemoteError(f"{url}: unexpected response shape (no choices[0].message.content)") from exc
        if not isinstance(text, str):
            raise RemoteError(f"{url}: message content is {type(text).__name__}, not text")
        return ChatResult(text, choice.finish_reason, getattr(usage, "prompt_tokens", None),
                          getattr(usage, "completion_tokens", None))

    def _attempts(self, exc: openai.APIError) -> str:
        """'gave up after N attempts; last error: ' when the package retried, from its retry-count header."""
        request = getattr(exc, "request", None)
        retries = request.headers.get("x-stainless-retry-count") if request is not None else None
        attempts = int(retries) + 1 if retries is not None and retries.isdigit() else None
        return f"gave up after {attempts} attempts; last error: " if attempts else ""


def _no_key() -> str:
    return ""


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return str(body or "")[:500]


def _mask(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text
