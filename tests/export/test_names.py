"""Names: node i of the fleet is the i-th hostname; names are unique and valid label values."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.conftest import compiled_example
from tokenfab.fleet import from_design
from tokenfab.names import inventory

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize("example", ["row-1mw", "site-100mw"])
def test_hostnames_follow_fleet_ids(example):
    design = compiled_example(example)
    fleet = from_design(design)
    inv = inventory(design)
    assert len(inv.node_names) == fleet.n_nodes
    assert len(set(inv.node_names)) == fleet.n_nodes
    for node in (0, fleet.n_nodes // 2, fleet.n_nodes - 1):
        site = int(fleet.node_site[node])
        hall = int(fleet.node_hall[node])
        rack = int(fleet.node_rack[node])
        name = inv.node_names[node]
        assert name.startswith(f"s{site}-h{int(inv.hall_in_site[hall])}-")
        assert name.startswith(inv.rack_names[rack] + "-n")
        assert inv.domain_names[int(fleet.node_domain[node])].startswith(inv.rack_names[rack])
    # node ids are ordered like the names' (site, hall, su, rack, node) tuples
    keys = [tuple(int(x) for x in re.findall(r"\d+", name)) for name in inv.node_names]
    assert keys == sorted(keys)


def test_names_are_valid_label_values(hgx_design):
    inv = inventory(hgx_design)
    for names in (
        inv.site_codes,
        inv.hall_codes,
        inv.su_codes,
        inv.rack_names,
        inv.domain_names,
        inv.node_names,
    ):
        assert len(set(names)) == len(names)
        assert all(LABEL_VALUE.match(n) and len(n) <= 63 for n in names)


def test_offsets_within_parents(hgx_design):
    inv = inventory(hgx_design)
    assert inv.node_in_rack.min() == 0 and inv.node_in_rack.max() < hgx_design.sites[0].rack.nodes
    assert np.all(inv.node_in_su < hgx_design.sites[0].fabric.endpoints_per_scalable_unit)
