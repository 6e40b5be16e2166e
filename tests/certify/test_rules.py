"""Every certification rule catches a hand-edited design that breaks it, with the right numbers.

Each case takes the compiled site-10mw example (GB200 NVL72, Dublin, dry coolers, 2N power, N+1 cooling),
edits its JSON the way a person would edit design.json, and expects the rule's finding at the element, with
the value found and the limit. The compiled design itself has no findings at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import compiled_example
from tokenfab.blueprint.cooling import coolant_flow_lpm
from tokenfab.blueprint.design import Design
from tokenfab.certify import RULES, check


@dataclass(frozen=True)
class Case:
    rule_id: str
    edit: Callable[[dict], None]
    path: str
    value: Callable[[dict], float | str] | float | str
    limit: Callable[[dict], float | str] | float | str
    severity: str = "error"


def base_json() -> dict:
    return compiled_example("site-10mw").model_dump(mode="json")


def S(d: dict) -> dict:  # noqa: N802 - the site under test
    return d["sites"][0]


def H(d: dict) -> dict:  # noqa: N802 - its first hall
    return d["sites"][0]["halls"][0]


def stage(d: dict, name: str) -> dict:
    return next(s for s in S(d)["power"]["stages"] if s["stage"] == name)


def tier(d: dict, name: str) -> dict:
    return next(t for t in S(d)["fabric"]["tiers"] if t["name"] == name)


def setter(get: Callable[[dict], dict], **values) -> Callable[[dict], None]:
    def edit(d: dict) -> None:
        get(d).update(values)

    return edit


def rack(d):
    return S(d)["rack"]


def cooling(d):
    return S(d)["cooling"]


def pw(d):
    return S(d)["power"]


def fab(d):
    return S(d)["fabric"]


def metrics(d):
    return S(d)["metrics"]


def racks(d) -> int:
    """Racks of the (one-hall) site as compiled; the cases below read the design rather than fix its size."""
    return S(d)["metrics"]["racks"]


def cdu(d):
    from tokenfab.catalog.load import load_catalog

    return load_catalog().kind("cdus")[H(d)["cdu_model"]]


def _rack_flow_needed(d: dict) -> float:
    c = cooling(d)
    return coolant_flow_lpm(
        rack(d)["liquid_heat_kw"],
        c["coolant_delta_t_k"],
        c["coolant_density_kg_m3"],
        c["coolant_cp_j_per_kg_k"],
    )


def _rack_return(d: dict) -> float:
    c, r = cooling(d), rack(d)
    return r["supply_temp_c"] + r["liquid_heat_kw"] * 1000 / (
        c["coolant_density_kg_m3"] * c["coolant_cp_j_per_kg_k"] * r["coolant_flow_lpm"] / 60000
    )


def _edit_busway(d):
    stage(d, "busway").update(
        units_required=H(d)["rows"], unit_rating_kw=1000.0
    )  # one 1 MW run per row of 8 × 132 kW


def _curve_dip(d):
    cooling(d)["pue_by_outdoor_temp_c"][6] = [20.0, 1.05]


def _edit_monthly(d):
    S(d)["climate"]["monthly_dry_bulb_c"] = [-20.0] * 12


def _su_of_ten(d):
    H(d)["su_racks"][0] = 10
    H(d)["racks"] += 2


def _bom_rack_count(d):
    S(d)["bom"][0].update(count=50, total_usd=50 * S(d)["bom"][0]["unit_cost_usd"])


def _spec_hall_limit(d):
    d["spec"]["sites"][0]["limits"]["hall_it_mw_max"] = 5.0


def _safe_ups(d):
    stage(d, "ups").update(units_installed=12, units_carrying=6, max_loading_fraction=1.5)


def _water_bound(d):
    # dry coolers use no water; the air side's chiller plant rejects through towers at 1.8 L/kWh of heat
    c = cooling(d)
    return (
        1.8
        * (c["air_heat_kw"] + c["air_cooling_power_design_kw"] + c["chiller_power_design_kw"])
        / (metrics(d)["it_mw_nominal"] * 1000)
        * 1.001
    )


def dist(d):
    return S(d)["power"]["distribution"]


def grid(d):
    return S(d)["power"]["grid"]


def standby(d):
    return S(d)["power"]["standby"]


def _ramp(d):
    from tokenfab.blueprint.power import smoothed_ramp_fraction_per_min

    return round(
        smoothed_ramp_fraction_per_min(
            grid(d)["load_swing_kw"], grid(d)["storage_kwh"], pw(d)["facility_power_peak_kw"]
        )[1],
        4,
    )


def _autonomy_h(d):
    from tokenfab.catalog.load import load_catalog

    rate = load_catalog().get("generators", standby(d)["generator"]).fuel_l_per_kwh
    return round(standby(d)["fuel_l"] / (standby(d)["generator_load_kw"] * rate), 2)


def _failed_block(d):
    pw(d)["failures"][0].update(element="hall[0]", loading_after=1.3, carried=False)


CASES = [
    Case("PWR-001", setter(rack, power_max_kw=300.0), "site[0].rack", 300.0, 264.0),
    Case("PWR-002", setter(rack, busbar_limit_kw=100.0), "site[0].rack", 132.0, 100.0),
    Case("PWR-003", setter(rack, power_nominal_kw=140.0), "site[0].rack", 140.0, 132.0, "warning"),
    Case(
        "PWR-004",
        lambda d: stage(d, "mv_lv_transformer").update(units_installed=4, units_carrying=3),
        "site[0].power.stage[mv_lv_transformer]",
        lambda d: (
            stage(d, "mv_lv_transformer")["load_kw"] / (3 * stage(d, "mv_lv_transformer")["unit_rating_kw"])
        ),
        0.8,
    ),
    Case(
        "PWR-005",
        lambda d: stage(d, "ups").update(units_installed=14, units_carrying=7),
        "site[0].power.stage[ups]",
        lambda d: stage(d, "ups")["load_kw"] / (7 * stage(d, "ups")["unit_rating_kw"]),
        0.9,
    ),
    Case("PWR-006", _edit_busway, "site[0].hall[0]", 8 * 132.0, 1000.0),
    Case(
        "PWR-007", setter(pw, grid_mw=9.0), "site[0].power", lambda d: pw(d)["facility_power_peak_kw"], 9000.0
    ),
    Case(
        "PWR-008",
        lambda d: pw(d).update(misc_power_kw=pw(d)["misc_power_kw"] + 100),
        "site[0].power",
        lambda d: pw(d)["facility_power_peak_kw"],
        lambda d: pw(d)["facility_power_peak_kw"] + 100,
    ),
    Case(
        "PWR-009",
        lambda d: stage(d, "ups").update(load_kw=5000.0),
        "site[0].power.stage[ups]",
        5000.0,
        lambda d: pw(d)["it_power_max_kw"] + stage(d, "busway")["loss_kw"],
    ),
    Case(
        "PWR-010",
        lambda d: stage(d, "ups").update(loss_kw=10.0),
        "site[0].power.stage[ups]",
        10.0,
        lambda d: stage(d, "ups")["load_kw"] * (1 / 0.97 - 1),
    ),
    Case("PWR-011", setter(H, it_power_max_kw=5000.0), "site[0].hall[0]", 5000.0, lambda d: racks(d) * 132.0),
    Case(
        "PWR-012",
        setter(pw, it_power_max_kw=7000.0),
        "site[0].power",
        7000.0,
        lambda d: H(d)["it_power_max_kw"] + pw(d)["network_power_kw"],
    ),
    Case(
        "PWR-013",
        setter(pw, network_power_kw=100.0),
        "site[0].power",
        100.0,
        lambda d: sum(i["count"] * i["draw_w"] for i in fab(d)["items"]) / 1000.0,
    ),
    Case(
        "PWR-014",
        setter(cooling, pue_design=1.05),
        "site[0].cooling.pue_design",
        1.05,
        lambda d: pw(d)["facility_power_peak_kw"] / pw(d)["it_power_max_kw"],
    ),
    Case(
        "COOL-001",
        setter(H, cdus_installed=3),
        "site[0].hall[0]",
        lambda d: 2 * cdu(d).capacity_kw,
        lambda d: H(d)["liquid_heat_kw"],
    ),
    Case(
        "COOL-002",
        setter(H, coolant_flow_lpm=25000.0),
        "site[0].hall[0]",
        lambda d: (H(d)["cdus_installed"] - 1) * cdu(d).flow_lpm_max,
        25000.0,
    ),
    Case("COOL-003", setter(rack, supply_temp_c=45.0), "site[0].rack", 45.0, 40.0),
    Case("COOL-014", setter(cooling, air_supply_temp_c=30.0), "site[0].cooling", 30.0, 27.0),
    Case("PWR-015", setter(dist, run_current_a=5000.0), "site[0].power.distribution", 5000.0, 4000.0),
    Case("PWR-016", setter(dist, voltage_drop_pct=4.0), "site[0].power.distribution", 4.0, 3.0),
    Case(
        "PWR-017",
        setter(dist, tap_off_rating_a=150.0),
        "site[0].power.distribution",
        lambda d: dist(d)["rack_current_a"],
        150.0,
    ),
    Case(
        "PWR-018",
        setter(dist, lv_interrupting_ka=50.0),
        "site[0].power.distribution",
        lambda d: round(dist(d)["lv_fault_ka"], 2),
        50.0,
    ),
    Case(
        "PWR-019",
        setter(dist, mv_interrupting_ka=10.0),
        "site[0].power.distribution",
        lambda d: round(dist(d)["mv_fault_ka"], 2),
        10.0,
    ),
    Case("PWR-020", setter(rack, power_max_kw=700.0), "site[0].power.distribution", 700.0, 600.0),
    Case(
        "PWR-021", setter(grid, current_thd_pct=8.0, short_circuit_mva=50.0), "site[0].power.grid", 8.0, 5.0
    ),
    Case("PWR-022", setter(grid, power_factor=0.85), "site[0].power.grid", 0.85, 0.9),
    Case("PWR-023", setter(grid, storage_kwh=10.0), "site[0].power.grid", _ramp, 0.1),
    Case("PWR-024", setter(standby, fuel_l=1000.0), "site[0].power.standby", _autonomy_h, 12.0),
    Case(
        "PWR-025",
        setter(standby, battery_kwh=100.0),
        "site[0].power.standby",
        lambda d: round(
            100.0
            * stage(d, "ups")["units_carrying"]
            / stage(d, "ups")["units_installed"]
            / pw(d)["it_power_max_kw"]
            * 60.0,
            2,
        ),
        5.0,
    ),
    Case("PWR-026", _failed_block, "site[0].power.hall[0]", 1.3, 1.0),
    Case(
        "PWR-027",
        lambda d: stage(d, "mv_lv_transformer").update(loading_fraction=0.2),
        "site[0].power.stage[mv_lv_transformer]",
        0.2,
        0.4,
        "warning",
    ),
    Case("PWR-028", setter(pw, facility_power_peak_kw=25000.0), "site[0].power.grid", 25.0, 20.0),
    Case(
        "COOL-004",
        lambda d: S(d)["climate"].update(design_dry_bulb_c=35.0),
        "site[0].cooling",
        35.0 + 8.0,
        37.0,
    ),
    Case("COOL-005", setter(cooling, facility_supply_temp_c=39.0), "site[0].cooling", 39.0 + 3.0, 40.0),
    Case("COOL-006", setter(rack, coolant_flow_lpm=300.0), "site[0].rack", 300.0, 260.0),
    Case("COOL-007", setter(rack, coolant_flow_lpm=100.0), "site[0].rack", 100.0, _rack_flow_needed),
    Case(
        "COOL-008",
        setter(H, air_heat_kw=100.0),
        "site[0].hall[0]",
        lambda d: H(d)["liquid_heat_kw"] + 100.0,
        lambda d: H(d)["it_power_max_kw"],
    ),
    Case(
        "COOL-009",
        setter(H, air_system_capacity_kw=500.0),
        "site[0].hall[0]",
        lambda d: H(d)["air_heat_kw"],
        500.0,
    ),
    Case(
        "COOL-010",
        setter(cooling, mechanical_power_design_kw=100.0),
        "site[0].cooling",
        100.0,
        lambda d: sum(
            cooling(d)[k]
            for k in (
                "cdu_pump_power_kw",
                "heat_rejection_power_design_kw",
                "air_cooling_power_design_kw",
                "chiller_power_design_kw",
            )
        ),
    ),
    Case(
        "COOL-011",
        setter(cooling, coolant_flow_lpm=5000.0),
        "site[0].cooling.coolant_flow_lpm",
        5000.0,
        lambda d: H(d)["coolant_flow_lpm"],
    ),
    Case("COOL-012", setter(cooling, wue_l_per_kwh=5.0), "site[0].cooling", 5.0, _water_bound),
    Case(
        "COOL-013",
        _curve_dip,
        "site[0].cooling.pue_by_outdoor_temp_c",
        1.05,
        lambda d: cooling(d)["pue_by_outdoor_temp_c"][5][1],
        "warning",
    ),
    Case("NET-001", setter(rack, gpus=70), "site[0].rack", 70, 72),
    Case("NET-002", setter(rack, gpus_per_nvlink_domain=144), "site[0].rack", 144, 72),
    Case("NET-003", setter(H, gpus=4400), "site[0].hall[0]", 4400, lambda d: racks(d) * 72),
    Case(
        "NET-004",
        lambda d: tier(d, "leaf").update(uplinks_per_switch=40),
        "site[0].fabric.tier[leaf]",
        72,
        64,
    ),
    Case(
        "NET-005",
        lambda d: tier(d, "leaf").update(downlinks_per_switch=40, uplinks_per_switch=24),
        "site[0].fabric.tier[leaf]",
        40 / 24,
        1.0,
    ),
    Case("NET-006", lambda d: tier(d, "leaf").update(switches=64), "site[0].fabric.tier[leaf]", 8 * 32, 576),
    Case(
        "NET-007",
        lambda d: tier(d, "core").update(switches=50),
        "site[0].fabric.tier[core]",
        50 * 64,
        144 * 32,
    ),
    Case("NET-008", lambda d: tier(d, "spine").update(switches=100), "site[0].fabric.tier[spine]", 100, 144),
    Case("NET-009", setter(fab, scalable_units=7), "site[0].fabric", 7, 8),
    Case("NET-010", setter(fab, cables=1000), "site[0].fabric.cables", 1000, 3 * 4608),
    Case(
        "NET-011",
        lambda d: H(d).update(white_space_m2=2500.0),
        "site[0].fabric.tier[spine]",
        106.0,
        lambda d: 50.0,
    ),  # spine runs 2 × 50 m + 2 × 3 m on 50 m multimode
    Case(
        "NET-012",
        lambda d: fab(d)["compute_fabrics"][0].update(gpus=150_000),
        "site[0].fabric.compute[0]",
        150_000,
        100_000,
    ),
    Case("LAY-001", _su_of_ten, "site[0].hall[0].su[0]", 10, 8),
    Case("LAY-002", setter(H, racks=70), "site[0].hall[0]", 70, racks),
    Case("LAY-003", setter(H, rows=5), "site[0].hall[0]", 5, 8),
    Case(
        "LAY-004", setter(H, white_space_m2=60.0), "site[0].hall[0]", lambda d: racks(d) * 1360 / 60.0, 1200.0
    ),
    Case("LAY-005", setter(H, white_space_m2=150.0), "site[0].hall[0]", 150.0, lambda d: racks(d) * 3.0),
    Case("LAY-006", _spec_hall_limit, "site[0].hall[0]", lambda d: H(d)["it_power_max_kw"], 5000.0),
    Case("LAY-007", setter(rack, weight_kg=2000.0), "site[0].hall[0]", 2000.0 / 0.72, 2440.0),
    Case("LAY-008", setter(rack, power_max_kw=600.0), "site[0].hall[0]", 8 * 600.0, 4000.0),
    Case(
        "RED-001",
        lambda d: stage(d, "ups").update(units_installed=8, units_carrying=7),
        "site[0].power.stage[ups]",
        8,
        lambda d: stage(d, "ups")["units_required"] + 1,
    ),
    Case(
        "RED-002",
        lambda d: stage(d, "mv_lv_transformer").update(redundancy="N+1"),
        "site[0].power.stage[mv_lv_transformer]",
        "N+1",
        "2N",
    ),
    Case("RED-003", lambda d: stage(d, "ups").update(units_installed=17), "site[0].power.stage[ups]", 17, 18),
    Case(
        "RED-004",
        setter(H, cdus_installed=3),
        "site[0].hall[0]",
        3,
        lambda d: H(base_json())["cdus_installed"],
    ),
    Case(
        "RED-005",
        setter(cooling, heat_rejection_capacity_kw=6000.0),
        "site[0].cooling",
        lambda d: 6000.0 - cooling(d)["heat_rejection_module_kw"],
        lambda d: cooling(d)["liquid_heat_kw"] + cooling(d)["heat_rejection_power_design_kw"],
    ),
    Case("RED-006", setter(pw, redundancy="N"), "site[0].power", "N", "N+1", "warning"),
    Case("RED-007", setter(cooling, redundancy="N"), "site[0].cooling", "N", "N+1", "warning"),
    Case(
        "SAFE-001",
        _safe_ups,
        "site[0].power.stage[ups]",
        lambda d: stage(d, "ups")["load_kw"] / (6 * stage(d, "ups")["unit_rating_kw"]),
        1.0,
    ),
    Case("SAFE-002", setter(rack, coolant_flow_lpm=80.0), "site[0].rack", _rack_return, 60.0, "warning"),
    Case("SAFE-003", setter(rack, supply_temp_c=12.0), "site[0].rack", 12.0, 17.0),
    Case("SAFE-004", _edit_monthly, "site[0].cooling", -20.0 - 7.0 / 2, -10.0, "warning"),
    Case("SAFE-005", setter(H, fire_suppression=""), "site[0].hall[0]", "none", "present"),
    Case(
        "COST-001",
        lambda d: S(d)["bom"][0].update(total_usd=1.0),
        "site[0].bom[0]",
        1.0,
        lambda d: racks(d) * 3_000_000.0,
    ),
    Case(
        "COST-002",
        lambda d: metrics(d)["capex_usd_by_category"].update(compute=1e6),
        "site[0].metrics.capex_usd_by_category[compute]",
        1e6,
        lambda d: racks(d) * 3_000_000.0,
    ),
    Case(
        "COST-003",
        setter(metrics, opex_usd_per_year=1.0),
        "site[0].metrics.opex_usd_per_year",
        1.0,
        lambda d: sum(metrics(d)["opex_usd_per_year_by_category"].values()),
    ),
    Case("COST-004", _bom_rack_count, "site[0].bom", 50.0, racks),
]


def _resolve(expected, edited: dict):
    return expected(edited) if callable(expected) else expected


def _same(found, expected) -> bool:
    if isinstance(expected, str) or isinstance(found, str):
        return found == expected
    return found == pytest.approx(expected, rel=2e-5)


def test_compiled_example_has_no_findings(catalog):
    assert check(compiled_example("site-10mw"), catalog) == []


def test_every_rule_has_a_case():
    assert sorted(c.rule_id for c in CASES) == sorted(RULES)
    assert len(RULES) >= 25


def test_rule_metadata_is_complete():
    prefixes = {
        "power": "PWR",
        "cooling": "COOL",
        "network": "NET",
        "layout": "LAY",
        "redundancy": "RED",
        "safety": "SAFE",
        "cost": "COST",
    }
    for rule_id, info in RULES.items():
        assert rule_id.startswith(prefixes[info.area] + "-")
        assert info.title and info.why.endswith(".") and info.limit


@pytest.mark.parametrize("case", CASES, ids=[c.rule_id for c in CASES])
def test_rule_catches_hand_edit(case: Case, catalog):
    edited = base_json()
    case.edit(edited)
    design = Design.model_validate(edited)
    findings = [f for f in check(design, catalog, rule_ids=[case.rule_id]) if f.path == case.path]
    assert findings, (
        f"{case.rule_id} missed the edit; it found {check(design, catalog, rule_ids=[case.rule_id])}"
    )
    value, limit = _resolve(case.value, edited), _resolve(case.limit, edited)
    matching = [f for f in findings if _same(f.value, value) and _same(f.limit, limit)]
    assert matching, f"expected value {value} and limit {limit}, got {[(f.value, f.limit) for f in findings]}"
    assert matching[0].severity == case.severity
    assert matching[0].why == RULES[case.rule_id].why and matching[0].message


def test_a_rule_that_cannot_evaluate_reports_instead_of_crashing(catalog):
    edited = base_json()
    rack(edited)["power_max_kw"] = 0.0
    cooling(edited)["coolant_delta_t_k"] = 0.0
    findings = check(Design.model_validate(edited), catalog)
    assert any(f.message.startswith("could not evaluate") for f in findings)


def test_two_site_campus_paths_name_the_site(catalog):
    edited = compiled_example("campus-2750mw").model_dump(mode="json")
    edited["sites"][1]["halls"][3]["cdus_installed"] = 1
    findings = check(Design.model_validate(edited), catalog, rule_ids=["COOL-001"])
    assert [f.path for f in findings] == ["site[1].hall[3]"]


def test_docs_list_every_rule():
    from tests.conftest import REPO_ROOT

    docs = (REPO_ROOT / "docs" / "certify.md").read_text(encoding="utf-8")
    missing = [rule_id for rule_id in RULES if f"| {rule_id} | {RULES[rule_id].severity} |" not in docs]
    assert missing == []
