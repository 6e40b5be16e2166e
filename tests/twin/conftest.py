"""Shared fixtures for the twin tests: small compiled designs, the public traces when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenfab.blueprint.compile import compile
from tokenfab.catalog.load import load_catalog
from tokenfab.spec import load_spec
from tokenfab.traces.acme import ACME_SUMMARY, read_acme_rows
from tokenfab.traces.llm import shared_data_dir

REPO = Path(__file__).resolve().parents[2]
DATA = shared_data_dir()


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def design_10mw(catalog):
    spec, _ = load_spec(REPO / "examples" / "site-10mw.yaml")
    return compile(spec, catalog)


@pytest.fixture(scope="session")
def design_1mw(catalog):
    spec, _ = load_spec(REPO / "examples" / "row-1mw.yaml")
    return compile(spec, catalog)


@pytest.fixture(scope="session")
def traces():
    if not (DATA / "azure-llm").is_dir() or not (DATA / "mooncake").is_dir():
        pytest.skip(f"public traces not found under {DATA} (shared data folder absent)")
    from tokenfab.traces.llm import read_trace

    return {name: read_trace(name) for name in ("azure-conv", "azure-code", "mooncake")}


@pytest.fixture(scope="session")
def acme_rows():
    rows = read_acme_rows(DATA)
    if rows is None:
        pytest.skip(f"{DATA / ACME_SUMMARY} not found (shared data folder absent)")
    return rows
