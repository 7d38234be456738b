"""What stands between the network and the store, before any route or body parsing runs: the Host
check of an unauthenticated (loopback) service, bearer-token auth, a per-client rate limit (:class:`Gate`),
and a cap on request body size (counted as the body streams in, so chunked uploads are capped too)."""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException

LOOPBACK = {"127.0.0.1", "::1", "localhost"}  # the --host values and Host names of an unauthenticated service


PUBLIC = {"/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}  # no token needed


def token_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (the scheme in any case, spaces
    around the token ignored; constant-time comparison)."""
    scheme, _, value = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def host_name(header: str | None) -> str:
    """The name of a ``Host`` header, without its port (``[::1]:80`` -> ``::1``)."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Gate:
    """ASGI middleware, outermost: every request but :data:`PUBLIC` paths is checked here, in one place,
    before its body is read. Without a token (``--no-auth``, loopback only) the ``Host`` must be a
    loopback name, so a web page cannot reach the service through a rebound DNS name. Rate limit: a
    bucket for the token's holder, and one per peer address for everything else (no token, a wrong
    one, or any request of an unauthenticated service), so varying a header buys no fresh bucket."""

    def __init__(self, app: Callable[..., Awaitable[Any]], token: str | None, limiter: RateLimiter):
        self.app, self.token, self.limiter = app, token, limiter

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        if self.token is None and host_name(headers.get("host")) not in LOOPBACK:
            return await send_error(send, 403, "bad_host", "this service answers loopback host names only "
                                    "(started with --no-auth)")
        if scope.get("path") in PUBLIC:
            return await self.app(scope, receive, send)
        ok = self.token is None or token_ok(headers.get("authorization"), self.token)
        peer = (scope.get("client") or ("?", 0))[0]
        wait = self.limiter.allow("token" if ok and self.token is not None else f"address:{peer}")
        if wait > 0:
            return await send_error(send, 429, "rate_limited", f"rate limit: {self.limiter.rate:g} requests/s, "
                                    f"retry in {wait:.2f} s", headers=[(b"retry-after", str(max(1, round(wait))).encode())])
        if not ok:
            return await send_error(send, 401, "unauthorized", "missing or wrong bearer token",
                                    headers=[(b"www-authenticate", b"Bearer")])
        return await self.app(scope, receive, send)


class RateLimiter:
    """A token bucket per client: ``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait before the next one will."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._buckets) > 10_000:  # forget clients whose bucket has refilled: memory stays bounded
                full = self.burst / self.rate
                self._buckets = {c: v for c, v in self._buckets.items() if now - v[1] < full}
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


class BodyLimit:
    """ASGI middleware: a request whose body passes ``max_bytes`` gets 413 before it is parsed."""

    def __init__(self, app: Callable[..., Awaitable[Any]], max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _too_large(send, self.max_bytes)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # an HTTPException, so the app's handler answers it as JSON
                    raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Callable, limit: int) -> None:
    await send_error(send, 413, "payload_too_large", f"request body over {limit} bytes")


async def send_error(send: Callable, status: int, code: str, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``{"error": {"code", "message"}}`` from a middleware, before the app sees the request."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
