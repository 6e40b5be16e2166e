"""API tokens: authentication of a bearer token, and operators creating, listing and revoking tokens."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import (
    Principal,
    format_token,
    hash_secret,
    new_secret,
    new_token_id,
    parse_token,
    secret_matches,
    token_is_live,
)
from tokenfab.control.service.errors import Conflict, Invalid, NotFound
from tokenfab.control.service.pending import after_commit
from tokenfab.control.service.state import ServiceState, audit
from tokenfab.control.service.tenants import find_tenant
from tokenfab.control.store import ApiTokenRow, Role, TenantRow, as_utc, utc_now

_NO_TOKEN_SHA256 = "0" * 64


def authenticate(state: ServiceState, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None (unknown, malformed, expired, revoked)."""
    parsed = parse_token(token)
    if parsed is None:
        return None
    token_id, secret = parsed
    cached = state.principals.get(token_id, secret)
    if cached is not None:
        return cached
    generation = state.principals.generation()
    with state.sessions() as session:
        found = session.execute(
            select(ApiTokenRow, TenantRow.name)
            .outerjoin(TenantRow, ApiTokenRow.tenant_id == TenantRow.id)
            .where(ApiTokenRow.id == token_id)
        ).first()
    row, tenant_name = found if found is not None else (None, None)
    # compare even for an unknown id, so the answer takes the same time either way
    matches = secret_matches(secret, row.secret_sha256 if row is not None else _NO_TOKEN_SHA256)
    if row is None or not matches or not token_is_live(row):
        return None
    principal = Principal(
        token_id=row.id, name=row.name, role=Role(row.role), tenant_id=row.tenant_id, tenant_name=tenant_name
    )
    state.principals.put(generation, row.secret_sha256, principal, row.expires_at)
    return principal


def cached_principal(state: ServiceState, token: str) -> Principal | None:
    """The principal of a token `authenticate` saw moments ago (see `principals`), else None."""
    parsed = parse_token(token)
    return None if parsed is None else state.principals.get(*parsed)


def token_public(row: ApiTokenRow, tenant: str | None) -> s.TokenPublic:
    return s.TokenPublic(
        id=row.id,
        name=row.name,
        role=row.role,
        tenant=tenant,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        revoked_at=as_utc(row.revoked_at),
    )


def create_token(state: ServiceState, principal: Principal, body: s.TokenCreate) -> s.TokenCreated:
    """A new token; the answer holds its secret, the only time it is shown (operator)."""
    if body.role == "tenant" and body.tenant is None:
        raise Invalid("a tenant token names its tenant", "tenant")
    if body.role == "operator" and body.tenant is not None:
        raise Invalid("an operator token has no tenant", "tenant")

    def _op(session: Session) -> s.TokenCreated:
        tenant = find_tenant(session, body.tenant, field="tenant") if body.tenant else None
        token_id, secret = new_token_id(), new_secret()
        expires_at = utc_now() + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
        row = ApiTokenRow(
            id=token_id,
            name=body.name,
            role=body.role,
            tenant_id=tenant.id if tenant else None,
            secret_sha256=hash_secret(secret),
            expires_at=expires_at,
            created_at=utc_now(),
        )
        session.add(row)
        session.flush()
        audit(
            session,
            principal,
            "token.create",
            f"token/{token_id}",
            None,
            {"name": body.name, "role": body.role, "tenant": body.tenant},
            tenant_id=tenant.id if tenant else None,
        )
        public = token_public(row, body.tenant)
        return s.TokenCreated(**public.model_dump(), token=format_token(token_id, secret))

    return state.mutate(_op)


def list_tokens(state: ServiceState, principal: Principal) -> s.TokensPublic:
    """Tokens (never their secrets); a tenant sees its own."""
    with state.sessions() as session:
        query = select(ApiTokenRow, TenantRow.name).outerjoin(
            TenantRow, ApiTokenRow.tenant_id == TenantRow.id
        )
        if not principal.is_operator:
            query = query.where(ApiTokenRow.tenant_id == principal.tenant_id)
        data = [
            token_public(row, tenant)
            for row, tenant in session.execute(query.order_by(ApiTokenRow.created_at))
        ]
    return s.TokensPublic(data=data, count=len(data))


def other_live_operators(session: Session, token_id: str) -> int:
    """Live operator tokens other than ``token_id``."""
    rows = session.scalars(
        select(ApiTokenRow).where(
            ApiTokenRow.role == Role.operator, ApiTokenRow.id != token_id, ApiTokenRow.revoked_at.is_(None)
        )
    )
    return sum(1 for row in rows if token_is_live(row))


def revoke_token(state: ServiceState, principal: Principal, token_id: str) -> s.TokenPublic:
    """Revoke a token (operator); revoking a revoked token changes nothing. The last live operator token
    cannot be revoked (`Conflict`): the factory would have no operator left."""

    def _op(session: Session) -> s.TokenPublic:
        row = session.get(ApiTokenRow, token_id)
        if row is None:
            raise NotFound(f"token {token_id} not found", "token_id")
        if row.revoked_at is None:
            if row.role == Role.operator and not other_live_operators(session, row.id):
                raise Conflict(
                    f"token {token_id} is the last live operator token; create another operator token first"
                )
            row.revoked_at = utc_now()
            state.principals.clear()
            after_commit(session, state.principals.clear)
            audit(
                session,
                principal,
                "token.revoke",
                f"token/{token_id}",
                {"revoked": False},
                {"revoked": True},
                tenant_id=row.tenant_id,
            )
        tenant = session.get_one(TenantRow, row.tenant_id).name if row.tenant_id is not None else None
        return token_public(row, tenant)

    return state.mutate(_op)
