"""Fixtures for the control plane tests: small designs, a store, the app, tenants and tokens, a real
PostgreSQL server and a real uvicorn server on loopback."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from control_helpers import Api, open_api
from pgserver import create_database, postgres_bin_dir, throwaway_postgres

from tokenfab.blueprint.compile import compile
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import load_catalog
from tokenfab.spec import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
TWO_SITES_SPEC = {
    "name": "two-sites",
    "sites": [
        {"name": "north", "grid_mw": 0.6, "climate": "ashburn-va", "system": "gb200-nvl72"},
        {"name": "south", "grid_mw": 0.6, "climate": "ashburn-va", "system": "gb200-nvl72"},
    ],
}


@pytest.fixture(scope="session")
def row_design() -> Design:
    """examples/row-1mw.yaml compiled (6 GB200 NVL72 racks, 432 GPUs)."""
    spec, _ = load_spec(REPO / "examples" / "row-1mw.yaml")
    return compile(spec, load_catalog())


@pytest.fixture(scope="session")
def row_design_path(row_design, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("designs") / "row-1mw.json"
    path.write_text(row_design.model_dump_json())
    return path


@pytest.fixture(scope="session")
def two_site_design() -> Design:
    """Two one-row sites, for residency."""
    return compile(parse_spec(TWO_SITES_SPEC), load_catalog())


@pytest.fixture
def api(row_design, tmp_path) -> Iterator[Api]:
    handle = open_api(row_design, f"sqlite:///{tmp_path / 'control.db'}")
    yield handle
    handle.client.close()
    handle.service.engine.dispose()


# --- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (or $TOKENFAB_TEST_PG_URL); yields its admin URL."""
    if os.environ.get("TOKENFAB_TEST_PG_URL"):
        yield os.environ["TOKENFAB_TEST_PG_URL"]
        return
    if postgres_bin_dir() is None:
        pytest.skip(
            "PostgreSQL server binaries absent (/usr/lib/postgresql/*/bin); run scripts/setup-system.sh "
            "or set TOKENFAB_TEST_PG_URL"
        )
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh database on the test server for one test."""
    return create_database(pg_server, f"t_{uuid.uuid4().hex[:12]}")


# --- a real server --------------------------------------------------------------------------------
