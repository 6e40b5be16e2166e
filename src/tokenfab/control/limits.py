"""The control plane's limits at the edge: who may send a body, how large, how slowly, and how often.

`GuardMiddleware` (pure ASGI, in front of every route) decides before the app reads a byte of the body:

1. a ``Content-Length`` over ``max_body_bytes`` is answered 413 unread;
2. an API path (``/api/…``, ``/metrics``) needs a live bearer token: it is checked here, so an anonymous
   request is answered 401 without its body being read, and the principal is handed to the routes
   (`request.state.principal`) so they do not look it up again;
3. each token has a token bucket of ``rate_limit_per_s`` (burst ``rate_limit_burst``): past it, 429 with
   ``Retry-After``; failed authentications are limited the same way per client address;
4. the body is then read through a guard that answers 413 once a streamed (chunked) body passes the
   limit and 408 when a chunk takes longer than ``body_timeout_s``.

A client that never completes its request head is closed by `guarded_h11` (the server's HTTP protocol)
after ``header_timeout_s``; uvicorn's own ``timeout_keep_alive``, ``h11_max_incomplete_event_size`` and
``limit_concurrency`` bound idle connections, head size and work in flight (`server_options`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from tokenfab.settings import Settings

AUTHENTICATED_PREFIXES = ("/api/", "/metrics")
"""Paths that need a bearer token (the dashboard's files, /healthz and the API docs do not)."""
MAX_TRACKED_CLIENTS = 100_000
"""Failure buckets kept at most (per client address); the oldest are dropped past it."""


def needs_token(path: str) -> bool:
    return path.startswith(AUTHENTICATED_PREFIXES)


@dataclass
class TokenBucket:
    """``rate_per_s`` requests per second sustained, ``burst`` at once (the classic token bucket)."""

    rate_per_s: float
    burst: int
    tokens: float = 0.0
    updated_s: float = 0.0

    def take(self, now_s: float) -> float:
        """Take one request's token; 0 when allowed, else the seconds until one is available."""
        self.tokens = min(float(self.burst), self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """One token bucket per key (an API token's id, or ``ip:<address>`` for failed authentications)."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def wait_s(self, key: str) -> float:
        """Charge one request to ``key``: 0 when allowed, else the seconds to wait (Retry-After)."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED_CLIENTS:
                self.buckets.pop(next(iter(self.buckets)))
            bucket = self.buckets[key] = TokenBucket(self.rate_per_s, self.burst, float(self.burst), now)
        return bucket.take(now)

    def exhausted(self, key: str) -> float:
        """Seconds until ``key`` may try again without charging it (0: it may now)."""
        bucket = self.buckets.get(key)
        if not self.enabled or bucket is None:
            return 0.0
        refilled = bucket.tokens + (self.clock() - bucket.updated_s) * self.rate_per_s
        return 0.0 if refilled >= 1.0 else (1.0 - refilled) / self.rate_per_s


async def send_error(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer ``{"error": message}`` with ``status`` (the API's error shape) from outside the app."""
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    value = _header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def limited_receive(receive: Receive, max_body_bytes: int, body_timeout_s: float) -> Receive:
    """``receive`` that raises 413 once the body passes ``max_body_bytes`` and 408 when a chunk does not
    arrive within ``body_timeout_s`` (FastAPI turns both into the API's JSON errors)."""
    received = 0

    async def _receive() -> Message:
        nonlocal received
        try:
            message = await asyncio.wait_for(receive(), timeout=body_timeout_s)
        except TimeoutError:
            raise HTTPException(408, f"request body not received within {body_timeout_s:g} s") from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body_bytes:
                raise HTTPException(413, f"request body larger than {max_body_bytes} bytes")
        return message

    return _receive


class GuardMiddleware:
    """Body size, authentication before the body, per-token rate limits (see the module docstring).

    ``authenticate(token) -> principal | None`` is the service's (a blocking store read: run in a thread).
    """

    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[str], Any],
        settings: Settings,
        authenticate_cached: Callable[[str], Any] | None = None,
    ):
        self.app = app
        self.authenticate = authenticate
        self.authenticate_cached = authenticate_cached
        """A token seen moments ago, answered on the event loop without a thread or a store read."""
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await send_error(send, 413, f"request body larger than {limit} bytes", {"Connection": "close"})
            return
        if needs_token(scope["path"]):
            principal = await self._principal(scope, send)
            if principal is None:
                return
            scope["state"] = {**scope.get("state", {}), "principal": principal}  # this request's own
        await self.app(scope, limited_receive(receive, limit, self.settings.body_timeout_s), send)

    async def _principal(self, scope: Scope, send: Send) -> Any:
        """The caller's principal, or None after answering 401, 429 or 503."""
        client = scope.get("client")
        failures_key = f"ip:{client[0] if client else '?'}"
        wait_s = self.limiter.exhausted(failures_key)
        if wait_s > 0:
            await self._too_many(send, wait_s)
            return None
        token = bearer_token(scope)
        if token is None:
            self.limiter.wait_s(failures_key)
            await send_error(
                send,
                401,
                "missing bearer token (Authorization: Bearer <token>)",
                {"WWW-Authenticate": "Bearer"},
            )
            return None
        try:
            cached = self.authenticate_cached(token) if self.authenticate_cached is not None else None
            principal = cached or await run_in_threadpool(self.authenticate, token)
        except SQLAlchemyError:
            await send_error(send, 503, "the database is unavailable; try again", {"Retry-After": "1"})
            return None
        if principal is None:
            self.limiter.wait_s(failures_key)
            await send_error(send, 401, "invalid, expired or revoked token", {"WWW-Authenticate": "Bearer"})
            return None
        wait_s = self.limiter.wait_s(f"token:{principal.token_id}")
        if wait_s > 0:
            await self._too_many(send, wait_s)
            return None
        return principal

    async def _too_many(self, send: Send, wait_s: float) -> None:
        rate = self.limiter.rate_per_s
        await send_error(
            send,
            429,
            f"rate limit of {rate:g} requests/s exceeded; retry after {wait_s:.2f} s",
            {"Retry-After": str(max(1, math.ceil(wait_s)))},
        )


# --- the server -----------------------------------------------------------------------------------


def guarded_h11(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection that has not sent a complete request head within
    ``header_timeout_s`` of connecting or of its last response (slow-header clients)."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a request head is complete
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    return GuardedH11Protocol


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options bounding connections: head size and time, keep-alive, concurrency."""
    return {
        "http": guarded_h11(settings.header_timeout_s),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "limit_concurrency": settings.limit_concurrency,
        "server_header": False,
    }
