"""Shared fixtures: the repository's paths, the bundled catalog and compiled example designs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from tokenfab.traces.llm import shared_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPO_ROOT / "examples"
SHARED_DATA_DIR = shared_data_dir()
"""The public data folder, where `tokenfab.traces.llm.shared_data_dir` finds it (worktrees set the variable)."""


@lru_cache(maxsize=16)
def compiled_example(name: str):
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec

    spec, _ = load_spec(EXAMPLES_DIR / f"{name}.yaml")
    return compile(spec, load_catalog())


@pytest.fixture(scope="session")
def catalog():
    from tokenfab.catalog.load import load_catalog

    return load_catalog()


@pytest.fixture
def shared_data_dir() -> Path:
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR
