"""A short-lived cache of authenticated tokens, so a request does not read the store to know its caller.

An entry keeps the SHA-256 of the token's secret, its principal and its expiry; a hit still compares the
presented secret's hash in constant time and checks the expiry. Entries live ``ttl_s`` at most, so a
token revoked by another process (``tokenfab admin`` on the same store) stops working within that
time; a revocation through this server drops the cache before its answer (`PrincipalCache.clear` from
the writer, after the commit) and the generation check keeps a read that raced it from re-filling the
cache with the old row.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from tokenfab.control.auth import Principal, secret_matches
from tokenfab.control.store import as_utc, utc_now

TTL_S = 5.0
"""How long a cached token is trusted without reading the store again [s]."""
MAX_ENTRIES = 10_000
"""Tokens cached at most (the cache is emptied when it is full)."""


@dataclass(frozen=True)
class _Entry:
    secret_sha256: str
    principal: Principal
    expires_at: datetime | None
    cached_at_s: float


class PrincipalCache:
    """token id → (secret hash, principal, expiry), each trusted for ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def generation(self) -> int:
        return self._generation

    def get(self, token_id: str, secret: str) -> Principal | None:
        """The cached principal of a live token whose secret matches; None when not cached (or stale)."""
        entry = self._entries.get(token_id)
        if entry is None or time.monotonic() - entry.cached_at_s > self.ttl_s:
            return None
        if not secret_matches(secret, entry.secret_sha256):
            return None
        if entry.expires_at is not None and as_utc(entry.expires_at) <= utc_now():
            return None
        return entry.principal

    def put(
        self, generation: int, secret_sha256: str, principal: Principal, expires_at: datetime | None
    ) -> None:
        """Cache a principal read from the store when no invalidation happened since ``generation``."""
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[principal.token_id] = _Entry(secret_sha256, principal, expires_at, time.monotonic())

    def clear(self) -> None:
        """Forget every cached token (a token was revoked or changed)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
