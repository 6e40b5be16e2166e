"""Designs the export tests share: the examples plus small designs whose scalable units are all full."""

from __future__ import annotations

from functools import lru_cache

import pytest


@lru_cache(maxsize=8)
def compiled_spec(name: str, system: str, it_mw: float):
    """A one-site design compiled from an in-memory spec."""
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import parse_spec

    spec = parse_spec(
        {"name": name, "sites": [{"name": "a", "it_mw": it_mw, "climate": "ashburn-va", "system": system}]}
    )
    return compile(spec, load_catalog())


@pytest.fixture(scope="session")
def full_su_design():
    """Two full GB200 NVL72 scalable units (16 racks): every fabric count of the design is installed."""
    design = compiled_spec("two-su", "gb200-nvl72", 2.2)
    assert design.sites[0].halls[0].su_racks == [8, 8]
    return design


@pytest.fixture(scope="session")
def hgx_design():
    """HGX H100 nodes (one NVLink domain per node), with a partly filled last rack and SU."""
    return compiled_spec("hgx", "hgx-h100", 1.15)


@pytest.fixture(scope="session")
def two_site_design():
    """A campus of two sites with different systems: GB200 NVL72 and HGX H100."""
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import parse_spec

    sites = [
        {"name": "north", "it_mw": 1.1, "climate": "ashburn-va", "system": "gb200-nvl72"},
        {"name": "south", "it_mw": 1.15, "climate": "ashburn-va", "system": "hgx-h100"},
    ]
    return compile(parse_spec({"name": "two-sites", "sites": sites}), load_catalog())
