"""Each engineering rule of the floor, rows, optics, fabric size and life safety catches a hand-made failing case,
with the numbers it should report. The compiled examples (and a 1.2 GW GB200 site) pass all of them."""

from __future__ import annotations

import math

import pytest

from tests.conftest import compiled_example
from tokenfab.blueprint.compile import compile
from tokenfab.blueprint.design import Design
from tokenfab.certify import RULES, check
from tokenfab.spec import FactorySpec

NEW_RULES = ["LAY-007", "LAY-008", "NET-011", "NET-012", "SAFE-005"]


def _base() -> dict:
    return compiled_example("site-10mw").model_dump(mode="json")


def _findings(edited: dict, rule_id: str, catalog):
    return check(Design.model_validate(edited), catalog, rule_ids=[rule_id])


def _one(findings, path: str):
    hits = [f for f in findings if f.path == path]
    assert hits, [(f.path, f.value, f.limit) for f in findings]
    return hits[0]


def test_new_rules_are_engineering_with_a_source():
    for rule_id in NEW_RULES:
        assert RULES[rule_id].kind == "engineering"
        assert RULES[rule_id].basis


@pytest.mark.parametrize("name", ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw"])
def test_examples_pass_the_new_rules(name, catalog):
    assert check(compiled_example(name), catalog, rule_ids=NEW_RULES) == []


def test_a_1_2_gw_gb200_site_passes_the_new_rules(catalog):
    spec = FactorySpec.model_validate(
        {
            "name": "gb200-1200",
            "sites": [
                {
                    "name": "s",
                    "grid_mw": 1200,
                    "climate": "dublin-ie",
                    "system": "gb200-nvl72",
                    "limits": {"hall_it_mw_max": 50},
                }
            ],
        }
    )
    design = compile(spec, catalog)
    assert check(design, catalog, rule_ids=NEW_RULES) == []
    assert design.sites[0].fabric.tiers_per_plane <= 3


def test_rack_point_load_on_its_footprint(catalog):
    d = _base()
    d["sites"][0]["rack"]["weight_kg"] = 2000.0
    f = _one(_findings(d, "LAY-007", catalog), "site[0].hall[0]")
    assert (f.value, f.limit, f.unit) == (pytest.approx(2000.0 / 0.72, rel=1e-5), 2440.0, "kg/m²")


def test_rack_concentrated_load_on_a_raised_floor(catalog):
    d = _base()
    d["sites"][0]["halls"][0]["floor"] = "raised access floor"
    d["sites"][0]["rack"]["weight_kg"] = 4000.0
    f = _one(_findings(d, "LAY-007", catalog), "site[0].hall[0]")
    assert (f.value, f.limit, f.unit) == (pytest.approx(4000.0 * 9.80665 / 4, rel=1e-5), 8900.0, "N")


def test_row_length_past_egress(catalog):
    d = _base()
    hall = d["sites"][0]["halls"][0]
    hall.update(racks_per_row=60, su_racks=[60] + hall["su_racks"][1:])
    f = _one(_findings(d, "LAY-008", catalog), "site[0].hall[0]")
    assert (f.value, f.limit, f.unit) == (pytest.approx(36.0), 30.0, "m")


def test_row_power_past_what_a_row_is_fed_for(catalog):
    d = _base()
    d["sites"][0]["rack"]["power_max_kw"] = 600.0
    f = next(f for f in _findings(d, "LAY-008", catalog) if f.unit == "kW")
    assert (f.value, f.limit) == (8 * 600.0, 4000.0)


def test_optics_reach_against_a_huge_hall(catalog):
    d = _base()
    d["sites"][0]["halls"][0]["white_space_m2"] = 200_000.0
    d["sites"][0]["fabric"]["transceiver_by_tier"][1] = "osfp-2x400g-dr4"  # single-mode, 500 m
    f = _one(_findings(d, "NET-011", catalog), "site[0].fabric.tier[spine]")
    assert (f.value, f.limit, f.unit) == (pytest.approx(2 * math.sqrt(200_000.0) + 6.0, abs=0.1), 500.0, "m")


def test_copper_cable_on_a_leaf_link(catalog):
    d = _base()
    items = d["sites"][0]["fabric"]["items"]
    cable = next(i for i in items if i["network"] == "compute" and i["kind"] == "cable")
    cable["item"] = "dac"
    f = _one(_findings(d, "NET-011", catalog), "site[0].fabric.items[compute:dac]")
    assert f.limit == 3.0 and f.value == max(d["sites"][0]["fabric"]["link_length_m_by_tier"])


def test_multimode_module_on_a_spine_link(catalog):
    d = _base()
    d["sites"][0]["fabric"]["transceiver_by_tier"][1] = "osfp-2x400g-sr4"
    d["sites"][0]["halls"][0]["white_space_m2"] = 2_500.0  # spine runs 2 × 50 m + 2 × 3 m
    f = _one(_findings(d, "NET-011", catalog), "site[0].fabric.tier[spine]")
    assert (f.value, f.limit) == (pytest.approx(106.0), 50.0)


def test_compute_fabric_too_large_and_too_deep(catalog):
    d = _base()
    fabric = d["sites"][0]["fabric"]["compute_fabrics"][0]
    fabric["gpus"] = 150_000
    fabric["tiers"].append({**fabric["tiers"][-1], "tier": 4, "name": "super-core"})
    findings = _findings(d, "NET-012", catalog)
    assert {(f.value, f.limit, f.unit) for f in findings} == {(150_000, 100_000, "GPUs"), (4, 3, "tiers")}


def test_one_400_mw_hall_is_split_into_fabrics_operators_build(catalog):
    spec = FactorySpec.model_validate(
        {
            "name": "big",
            "sites": [
                {
                    "name": "s",
                    "grid_mw": 400,
                    "climate": "dublin-ie",
                    "system": "gb300-nvl72",
                    "limits": {"hall_it_mw_max": 400},
                }
            ],
        }
    )
    design = compile(spec, catalog)
    fabric = design.sites[0].fabric
    assert len(design.sites[0].halls) == 1 and len(fabric.compute_fabrics) == 2
    assert all(c.halls == [0] and c.gpus <= 100_000 for c in fabric.compute_fabrics)
    assert check(design, catalog, rule_ids=["NET-012"]) == []


def test_missing_fire_and_leak_detection(catalog):
    d = _base()
    d["sites"][0]["halls"][0].update(fire_detection="", leak_detection="none")
    findings = _findings(d, "SAFE-005", catalog)
    assert sorted(f.message.split(" while")[0] for f in findings) == [
        "hall 0 states no fire detection",
        "hall 0 states no leak detection",
    ]
    assert all(f.limit == "present" for f in findings)
