"""Tokens: random, shown once, stored as hashes, compared in constant time, expiring, revocable; roles."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

from sqlalchemy import select, text, update

from tokenfab.control import auth
from tokenfab.control.store import ApiTokenRow, utc_now


def test_token_shape_and_hash_only_storage(api):
    created = api.client.post(
        "/api/v1/tokens", headers=api.op, json={"name": "ops2", "role": "operator"}
    ).json()
    token = created["token"]
    token_id, secret = auth.parse_token(token)
    assert token_id == created["id"] and len(secret) >= 43  # 32 random bytes, url-safe base64
    with api.service.sessions() as session:
        row = session.get(ApiTokenRow, token_id)
        assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        dump = "\n".join(str(r) for r in session.execute(text("SELECT * FROM api_tokens")).all())
    assert secret not in dump
    # listing never shows a secret
    listed = api.client.get("/api/v1/tokens", headers=api.op).json()
    assert all("token" not in t for t in listed["data"]) and secret not in str(listed)
    assert (
        api.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}).json()["role"]
        == "operator"
    )


def test_missing_malformed_and_wrong_tokens_are_401_json(api):
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer tf_000000000000_wrongsecret"},
    ):
        response = api.client.get("/api/v1/workloads", headers=headers)
        assert response.status_code == 401
        assert "error" in response.json()
    good = api.op["Authorization"].split()[1]
    token_id, secret = auth.parse_token(good)
    tampered = auth.format_token(token_id, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert (
        api.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401
    )
    assert api.client.get("/healthz").status_code == 200  # the one open route


def test_comparison_is_constant_time(api, monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert api.client.get("/api/v1/whoami", headers=api.op).status_code == 200
    assert calls, "token secrets must be checked with hmac.compare_digest"


def test_expired_token_is_refused(api):
    """A token whose expiry another process moved into the past (a direct store write) is refused once
    the server's cache of recently seen tokens has aged out (its TTL, shortened here)."""
    api.service.principals.ttl_s = 0.2
    created = api.client.post(
        "/api/v1/tokens", headers=api.op, json={"name": "short", "role": "operator", "expires_in_s": 3600}
    ).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 200
    with api.service.sessions.begin() as session:
        session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.id == created["id"])
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
    time.sleep(0.3)
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 401


def test_cached_token_is_checked_for_its_secret_and_expiry(api):
    """The cache never accepts a wrong secret for a cached id, and a cached token past its expiry is
    refused at once (no store read needed)."""
    created = api.client.post(
        "/api/v1/tokens", headers=api.op, json={"name": "brief", "role": "operator", "expires_in_s": 1}
    ).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 200
    assert api.service.cached_principal(created["token"]) is not None
    forged = created["token"][:-4] + ("AAAA" if not created["token"].endswith("AAAA") else "BBBB")
    assert api.service.cached_principal(forged) is None
    assert api.client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    time.sleep(1.1)
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 401


def test_revoked_token_is_refused_and_audited(api):
    headers = api.tenant("acme")
    token_id = next(
        t["id"]
        for t in api.client.get("/api/v1/tokens", headers=api.op).json()["data"]
        if t["tenant"] == "acme"
    )
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 200
    revoked = api.client.delete(f"/api/v1/tokens/{token_id}", headers=api.op)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert api.client.get("/api/v1/whoami", headers=headers).status_code == 401
    actions = [a["action"] for a in api.client.get("/api/v1/audit", headers=api.op).json()["data"]]
    assert "token.revoke" in actions


def test_tenant_role_cannot_do_operator_things(api):
    headers = api.tenant("acme")
    assert api.client.post("/api/v1/tenants", headers=headers, json={"name": "evil"}).status_code == 403
    assert (
        api.client.post("/api/v1/tokens", headers=headers, json={"name": "x", "role": "operator"}).status_code
        == 403
    )
    assert api.client.post("/api/v1/racks/0/drain", headers=headers).status_code == 403
    assert api.client.put("/api/v1/power/cap", headers=headers, json={"cap_kw": 1}).status_code == 403
    assert api.client.get("/metrics", headers=headers).status_code == 403
    assert api.client.get("/api/v1/power", headers=headers).status_code == 403
    assert api.client.get("/api/v1/telemetry", headers=headers).status_code == 403
    with api.service.sessions() as session:
        assert session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == "x")) is None
