"""API tokens: random, shown once, stored as SHA-256 hashes, compared in constant time.

A token reads ``tf_<id>_<secret>``. The id (public, 12 hex characters) finds the row; the secret
(``secrets.token_urlsafe(32)``, 256 bits) is never stored: the row keeps ``sha256(secret)`` and a
presented secret is checked with ``hmac.compare_digest`` against it, so neither a database dump nor
timing reveals a usable token. A secret this long needs no slow password hash: guessing 2^256 values is
the attack, not a dictionary.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from tokenfab.control.store import ApiTokenRow, Role, as_utc, utc_now

TOKEN_PREFIX = "tf"
SECRET_BYTES = 32
MIN_SECRET_CHARS = 32
"""Shortest secret a supplied token may have (a generated one has 43 characters, 256 bits)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id and name, its role, and the tenant it acts for (tenants only)."""

    token_id: str
    name: str
    role: Role
    tenant_id: int | None = None
    tenant_name: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == Role.operator

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        who = f"tenant:{self.tenant_name}" if self.tenant_name else "operator"
        return f"{who}/{self.name}"


def new_token_id() -> str:
    return secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_secret(secret: str) -> str:
    """Hex SHA-256 of the secret, the only form that is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def format_token(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}_{token_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a presented token, or None when it does not have the token's shape."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1], parts[2]


def supplied_token_problem(token: str) -> str | None:
    """Why a token supplied from outside (``TOKENFAB_BOOTSTRAP_TOKEN``) is not acceptable, else None; the
    reason never repeats the secret."""
    parsed = parse_token(token)
    if parsed is None:
        return f"not a token of the form {TOKEN_PREFIX}_<12 hex characters>_<secret>"
    token_id, secret = parsed
    if token_id.strip("0123456789abcdef"):
        return "the token id is not 12 lower-case hex characters"
    if len(secret) < MIN_SECRET_CHARS:
        return f"its secret has {len(secret)} characters; at least {MIN_SECRET_CHARS} are needed"
    return None


def secret_matches(secret: str, stored_sha256: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret).encode("ascii"), stored_sha256.encode("ascii"))


def token_is_live(row: ApiTokenRow, now: datetime | None = None) -> bool:
    """Not revoked and not past its expiry."""
    now = now or utc_now()
    if row.revoked_at is not None:
        return False
    expires_at = as_utc(row.expires_at)
    return expires_at is None or now < expires_at
