"""Database faults answer JSON 503 (never a plain-text 500) and `/healthz` reports the database: a real
SQLite store whose tables go missing under the server, and a real PostgreSQL server stopped under it."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest
from control_helpers import open_api
from pgserver import create_database, postgres_bin_dir, throwaway_postgres
from sqlalchemy import create_engine, text


def _rename(db_path, old: str, new: str) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    engine.dispose()


def test_a_database_fault_is_a_json_503_and_nothing_half_done(row_design, tmp_path):
    db = tmp_path / "c.db"
    api = open_api(row_design, f"sqlite:///{db}")
    acme = api.tenant("acme")
    assert api.client.get("/healthz").json() == {"message": "ok", "database": "ok"}
    _rename(db, "power_events", "power_events_away")
    response = api.client.get("/api/v1/power", headers=api.op)
    assert response.status_code == 503 and response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "the database is unavailable; try again"}
    _rename(db, "telemetry", "telemetry_away")  # a submission writes a telemetry sample in its transaction
    response = api.client.post("/api/v1/workloads", headers=acme, json={"name": "lost", "gpus": 8})
    assert response.status_code == 503 and response.json()["error"].startswith("the database is unavailable")
    _rename(db, "telemetry_away", "telemetry")
    _rename(db, "power_events_away", "power_events")
    assert (
        api.client.get("/api/v1/workloads", headers=acme).json()["count"] == 0
    )  # the failed batch left nothing
    placed = api.client.post("/api/v1/workloads", headers=acme, json={"name": "kept", "gpus": 8})
    assert (
        placed.status_code == 201 and placed.json()["state"] == "running"
    )  # memory was rebuilt from the store
    api.client.close()
    api.service.close()


def _stop(admin_url: str) -> None:
    """Stop the PostgreSQL server of ``admin_url`` at once (as its OS user when run as root)."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        data_dir = connection.execute("SHOW data_directory").fetchone()[0]
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*as_postgres, str(postgres_bin_dir() / "pg_ctl"), "-D", data_dir, "-m", "immediate", "stop"],
        check=True,
        capture_output=True,
    )


def test_healthz_and_the_api_answer_503_when_postgresql_is_down(row_design):
    if postgres_bin_dir() is None:
        pytest.skip(
            "PostgreSQL server binaries absent (/usr/lib/postgresql/*/bin): run scripts/setup-system.sh"
        )
    with throwaway_postgres() as admin_url:
        api = open_api(row_design, create_database(admin_url, "faults"))
        acme = api.tenant("acme")
        assert api.client.get("/healthz").status_code == 200
        _stop(admin_url)
        health = api.client.get("/healthz")
        assert health.status_code == 503 and health.json()["error"].startswith("the database is unavailable")
        for method, path in (
            ("GET", "/api/v1/workloads"),
            ("POST", "/api/v1/workloads"),
            ("GET", "/metrics"),
        ):
            response = api.client.request(method, path, headers=acme, json={"name": "x", "gpus": 8})
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["content-type"] == "application/json" and "error" in response.json()
        api.client.close()
        api.service.engine.dispose()
