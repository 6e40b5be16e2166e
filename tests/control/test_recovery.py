"""Operator access cannot be lost and can be recovered: the last operator token cannot be revoked,
`tokenfab admin reset-token` mints one from the database, bootstrap secrets are long and never logged,
and `serve` takes its port before it creates anything. Strict types: no bool where a number goes."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
from control_helpers import bearer, free_port, start_server_process, wait_healthy
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.control.service import ControlService
from tokenfab.io.yamlfile import InputError

TOKEN = re.compile(r"tf_[0-9a-f]{12}_[A-Za-z0-9_-]{32,}")


def test_the_last_operator_token_cannot_be_revoked(api):
    acme = api.tenant("acme")
    me = api.client.get("/api/v1/whoami", headers=api.op).json()["token_id"]
    refused = api.client.delete(f"/api/v1/tokens/{me}", headers=api.op)
    assert refused.status_code == 409 and "last live operator token" in refused.json()["error"]
    second = api.client.post(
        "/api/v1/tokens", headers=api.op, json={"name": "ops2", "role": "operator"}
    ).json()
    assert api.client.delete(f"/api/v1/tokens/{me}", headers=bearer(second["token"])).status_code == 200
    assert api.client.get("/api/v1/whoami", headers=api.op).status_code == 401
    assert (
        api.client.delete(f"/api/v1/tokens/{second['id']}", headers=bearer(second["token"])).status_code
        == 409
    )
    # tenant tokens are revocable as before
    acme_id = api.client.get("/api/v1/whoami", headers=acme).json()["token_id"]
    assert api.client.delete(f"/api/v1/tokens/{acme_id}", headers=bearer(second["token"])).status_code == 200


def test_admin_reset_token_recovers_operator_access(row_design, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    opened = ControlService.open(row_design, db_url)  # its bootstrap token is then "lost"
    opened.service.close()
    runner = CliRunner()
    result = runner.invoke(app, ["admin", "reset-token", "--db", db_url])
    assert result.exit_code == 0, result.output
    token = TOKEN.search(result.stdout).group(0)
    assert token != opened.bootstrap_token
    from control_helpers import open_api

    api = open_api(row_design, db_url)
    me = api.client.get("/api/v1/whoami", headers=bearer(token)).json()
    assert me["role"] == "operator" and me["name"] == "recovery"
    audit = api.client.get("/api/v1/audit", headers=bearer(token)).json()["data"]
    assert audit[0]["action"] == "token.reset" and audit[0]["actor"] == "system/admin"
    api.client.close()
    api.service.close()
    missing = runner.invoke(app, ["admin", "reset-token", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert missing.exit_code == 2 and "no such database file" in missing.output
    other = tmp_path / "other.db"
    create_engine(f"sqlite:///{other}").connect().execute(text("CREATE TABLE t (x int)")).close()
    foreign = runner.invoke(app, ["admin", "reset-token", "--db", f"sqlite:///{other}"])
    assert foreign.exit_code == 2 and "not a tokenfab control plane" in foreign.output


def test_bootstrap_secrets_are_long(row_design, tmp_path, monkeypatch):
    for token, problem in (("tf_0123456789ab_short", "at least 32"), ("nonsense", "not a token")):
        monkeypatch.setenv("TOKENFAB_BOOTSTRAP_TOKEN", token)
        with pytest.raises(InputError, match=problem) as raised:
            ControlService.open(row_design, f"sqlite:///{tmp_path / 'c.db'}")
        assert "short" not in str(raised.value)  # the secret is not repeated


def test_bootstrap_token_never_reaches_a_log(row_design_path, tmp_path, monkeypatch):
    monkeypatch.delenv("TOKENFAB_BOOTSTRAP_TOKEN", raising=False)
    db_url, port, log = f"sqlite:///{tmp_path / 'c.db'}", free_port(), tmp_path / "server.log"
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TOKENFAB_BOOTSTRAP_TOKEN"}
    with log.open("wb") as handle:  # stdout is a file: a log
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokenfab.cli",
                "serve",
                "--design",
                str(row_design_path),
                "--db",
                db_url,
                "--port",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process=process)
        text_ = log.read_text()
        assert "bootstrap operator token" in text_ and "tokenfab admin reset-token" in text_
        assert not TOKEN.search(text_)
        recovered = TOKEN.search(
            CliRunner().invoke(app, ["admin", "reset-token", "--db", db_url]).stdout
        ).group(0)
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", headers=bearer(recovered))
        assert response.status_code == 200 and response.json()["role"] == "operator"
    finally:
        process.terminate()
        process.wait(timeout=30)
    # a token chosen in the environment is not repeated either
    chosen = "tf_0123456789ab_" + "s" * 40
    port = free_port()
    process = start_server_process(
        row_design_path, f"sqlite:///{tmp_path / 'd.db'}", port, chosen, tmp_path / "chosen.log"
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process=process)
        assert chosen not in (tmp_path / "chosen.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_on_a_busy_port_exits_3_before_creating_anything(row_design_path, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        db = tmp_path / "c.db"
        result = CliRunner().invoke(
            app, ["serve", "--design", str(row_design_path), "--db", f"sqlite:///{db}", "--port", str(port)]
        )
    assert result.exit_code == 3
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], result.output
    assert not TOKEN.search(result.output) and not db.exists()


def test_no_bool_where_a_number_goes(api):
    acme = api.tenant("acme")
    running = api.submit(acme, name="keep", gpus=8)
    for path, body in (("/api/v1/power/cap", {"cap_kw": False}), ("/api/v1/power/cap", {"cap_kw": "100"})):
        response = api.client.put(path, headers=api.op, json=body)
        assert response.status_code == 422 and response.json()["field"] == "cap_kw", response.text
    for body in (
        {"name": "x", "gpus": True},
        {"name": "x", "gpus": 2.0},
        {"name": "x", "gpus": 2, "replicas": "1"},
        {"name": "x", "gpus": 2, "preemptible": 0},
        {"name": 7, "gpus": 2},
    ):
        response = api.client.post("/api/v1/workloads", headers=acme, json=body)
        assert response.status_code == 422, (body, response.text)
    assert (
        api.client.post("/api/v1/tenants", headers=api.op, json={"name": "b", "quota_gpus": True}).status_code
        == 422
    )
    assert (
        api.client.post(
            "/api/v1/power/events", headers=api.op, json={"kind": "curtailment", "cap_kw": False}
        ).status_code
        == 422
    )
    assert api.client.get("/api/v1/power", headers=api.op).json()["cap_kw"] is None
    assert api.client.get(f"/api/v1/workloads/{running['id']}", headers=acme).json()["state"] == "running"
