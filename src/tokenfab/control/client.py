"""A small HTTP client for the control plane API (used by the CLI; handy in scripts and tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from tokenfab.settings import env_name, load_settings

CREDENTIALS_PATH = Path("~/.config/tokenfab/credentials.json")
TOKEN_ENV = env_name("token")
SERVER_ENV = env_name("server")
DEFAULT_SERVER = "http://127.0.0.1:8000"


class ClientError(Exception):
    """The server answered 4xx/5xx (message from its JSON body), or could not be reached (status 0)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def credentials_path() -> Path:
    return CREDENTIALS_PATH.expanduser()


def save_credentials(server: str, token: str, path: Path | None = None) -> Path:
    """Write {server, token} readable by the user only (0600)."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"server": server, "token": token}, handle)
    os.chmod(path, 0o600)
    return path


def load_credentials(path: Path | None = None) -> dict[str, str]:
    path = path or credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)}


def resolve(server: str | None, token: str | None) -> tuple[str, str | None]:
    """Server and token from the arguments, else the environment, else the saved credentials."""
    saved = load_credentials()
    settings = load_settings()
    server = server or settings.server or saved.get("server") or DEFAULT_SERVER
    token = token or settings.token or saved.get("token")
    return server.rstrip("/"), token


class ControlClient:
    def __init__(self, server: str, token: str | None, timeout_s: float = 30.0, transport=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server, headers=headers, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(0, f"cannot reach {self.http.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                body = response.json()
                raise ClientError(response.status_code, body.get("error", response.text), body.get("field"))
            except (ValueError, AttributeError):
                raise ClientError(response.status_code, response.text) from None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # --- resources ---
    def whoami(self) -> dict:
        return self.call("GET", "/api/v1/whoami")

    def submit(self, **workload) -> dict:
        return self.call(
            "POST", "/api/v1/workloads", json={k: v for k, v in workload.items() if v is not None}
        )

    def workloads(self, state: str | None = None) -> dict:
        return self.call("GET", "/api/v1/workloads", params={"state": state} if state else None)

    def workload(self, workload_id: str) -> dict:
        return self.call("GET", f"/api/v1/workloads/{workload_id}")

    def cancel(self, workload_id: str) -> dict:
        return self.call("DELETE", f"/api/v1/workloads/{workload_id}")

    def scale(self, workload_id: str, replicas: int) -> dict:
        return self.call("POST", f"/api/v1/workloads/{workload_id}/scale", json={"replicas": replicas})

    def queue(self) -> dict:
        return self.call("GET", "/api/v1/queue")

    def nodes(self, rack: int | None = None, health: str | None = None) -> dict:
        params = {k: v for k, v in {"rack": rack, "health": health}.items() if v is not None}
        return self.call("GET", "/api/v1/nodes", params=params)

    def health(self, level: str, element_id: int, action: str, reason: str = "") -> dict:
        return self.call("POST", f"/api/v1/{level}s/{element_id}/{action}", json={"reason": reason})

    def factory(self) -> dict:
        return self.call("GET", "/api/v1/factory")

    def tenants(self) -> dict:
        return self.call("GET", "/api/v1/tenants")

    def create_tenant(self, **tenant) -> dict:
        return self.call("POST", "/api/v1/tenants", json={k: v for k, v in tenant.items() if v is not None})

    def update_tenant(self, name: str, **changes) -> dict:
        return self.call("PATCH", f"/api/v1/tenants/{name}", json=changes)

    def tokens(self) -> dict:
        return self.call("GET", "/api/v1/tokens")

    def create_token(self, **token) -> dict:
        return self.call("POST", "/api/v1/tokens", json={k: v for k, v in token.items() if v is not None})

    def revoke_token(self, token_id: str) -> dict:
        return self.call("DELETE", f"/api/v1/tokens/{token_id}")

    def power(self) -> dict:
        return self.call("GET", "/api/v1/power")

    def set_power_cap(self, cap_kw: float | None) -> dict:
        return self.call("PUT", "/api/v1/power/cap", json={"cap_kw": cap_kw})

    def grid_event(self, kind: str, cap_kw: float | None = None, message: str = "") -> dict:
        return self.call(
            "POST", "/api/v1/power/events", json={"kind": kind, "cap_kw": cap_kw, "message": message}
        )

    def usage(self) -> dict:
        return self.call("GET", "/api/v1/usage")

    def audit(self, limit: int = 50) -> dict:
        return self.call("GET", "/api/v1/audit", params={"limit": limit})
