"""The compiler: reference designs, scale, balance of power, determinism."""

import math

import pytest

from tests.conftest import compiled_example
from tokenfab.blueprint.compile import CompileError, compile
from tokenfab.blueprint.cooling import coolant_flow_lpm, coolant_properties
from tokenfab.spec import parse_spec


def one_site(**site):
    base = {"name": "t", "climate": "dublin-ie", "system": "gb200-nvl72"}
    base.update(site)
    if "it_mw" not in base:
        base.setdefault("grid_mw", 10)
    return parse_spec({"name": "t", "sites": [base]})


def test_gb200_scalable_unit_is_8_racks_576_gpus(catalog):
    # DGX SuperPOD GB200 RA, dgx-superpod-architecture.html: 1 SU = 8 NVL72 racks = 576 GPUs.
    design = compile(one_site(it_mw=8 * 132 / 1000), catalog)
    site = design.sites[0]
    assert site.halls[0].su_racks == [8]
    assert site.metrics.gpus == 576
    assert site.fabric.endpoints_per_scalable_unit == 576
    assert site.metrics.nvlink_domains == 8


def test_xdr_fabric_of_gb300_site_matches_quantum_x800_rule(catalog):
    design = compile(
        one_site(system="gb300-nvl72", it_mw=4 * 8 * 142 / 1000, fabric="infiniband_xdr"), catalog
    )
    assert [t.switches for t in design.sites[0].fabric.tiers] == [32, 18]


def test_grid_budget_holds_on_design_day(catalog):
    for name in ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw"]:
        design = compiled_example(name)
        for site in design.sites:
            assert site.metrics.facility_mw <= site.metrics.grid_mw + 1e-9
            # the budget is used, not wasted: one more NVLink domain (with its share of network and PUE) would not fit
            per_domain_mw = site.metrics.facility_mw / site.metrics.nvlink_domains
            used = site.metrics.facility_mw >= 0.95 * site.metrics.grid_mw
            assert used or site.metrics.facility_mw + 1.5 * per_domain_mw > site.metrics.grid_mw, (
                "the budget is used, not wasted"
            )
            assert 1.03 < site.metrics.pue_design < 1.6


def test_1gw_site_has_about_400k_gpus():
    design = compiled_example("site-1gw")
    assert 350_000 < design.metrics.gpus < 480_000
    assert design.metrics.gpus % 72 == 0


def test_campus_of_two_sites_in_one_region():
    design = compiled_example("campus-2750mw")
    assert [s.region for s in design.sites] == ["us-pjm-dominion", "us-pjm-dominion"]
    assert design.metrics.grid_mw == pytest.approx(2750)
    assert design.metrics.gpus == sum(s.metrics.gpus for s in design.sites)


def test_compile_is_deterministic(catalog):
    spec = one_site(grid_mw=37)
    assert compile(spec, catalog).model_dump_json() == compile(spec, catalog).model_dump_json()


def test_whole_nvlink_domains_only(catalog):
    for system in ["gb200-nvl72", "hgx-h100", "vera-rubin-nvl72"]:
        site = compile(one_site(system=system, grid_mw=3.3), catalog).sites[0]
        assert site.metrics.gpus % site.rack.gpus_per_nvlink_domain == 0
        assert site.metrics.gpus == site.metrics.nvlink_domains * site.rack.gpus_per_nvlink_domain


def test_site_too_small_for_one_domain_names_the_field(catalog):
    with pytest.raises(CompileError) as info:
        compile(one_site(grid_mw=0.05), catalog)
    assert info.value.loc == ("sites", 0, "grid_mw")
    assert "too small for one NVLink domain" in info.value.message


def test_unknown_system_names_the_field(catalog):
    with pytest.raises(CompileError) as info:
        compile(one_site(system="gb999"), catalog)
    assert info.value.loc == ("sites", 0, "system")


def test_coolant_flow_matches_hand_calculation():
    density, cp = coolant_properties("INCOMP::MPG[0.25]", 45.0)
    assert 1000 < density < 1030 and 3800 < cp < 4100
    # 100 kW at dT 10 K: 100e3 / (rho * cp * 10) m^3/s -> L/min
    assert coolant_flow_lpm(100, 10, density, cp) == pytest.approx(100e3 / (density * cp * 10) * 60_000)


def test_dry_coolers_in_mild_climate_and_towers_in_hot_one(catalog):
    assert (
        compile(one_site(system="vera-rubin-nvl72", climate="dublin-ie"), catalog)
        .sites[0]
        .cooling.heat_rejection_kind
        == "dry_cooler"
    )
    assert (
        compile(one_site(system="gb300-nvl72", climate="phoenix-az"), catalog)
        .sites[0]
        .cooling.heat_rejection_kind
        != "dry_cooler"
    )
    assert (
        compile(one_site(system="hgx-h100", climate="singapore"), catalog)
        .sites[0]
        .cooling.heat_rejection_kind
        == "chiller"
    )


def test_redundancy_counts(catalog):
    site = compile(one_site(redundancy={"power": "2N", "cooling": "N+1"}), catalog).sites[0]
    for stage in site.power.stages:
        expected = stage.units_required + (
            1 if stage.stage == "substation_transformer" else stage.units_required
        )
        assert stage.units_installed == expected
    for hall in site.halls:
        assert hall.cdus_installed == hall.cdus_required + 1
        capacity_kw = {"cdu-2300kw": 2300, "cdu-1350kw": 1350}[hall.cdu_model]
        assert hall.cdus_required >= math.ceil(hall.liquid_heat_kw / capacity_kw - 1e-9)


def test_capex_categories_sum(catalog):
    m = compile(one_site(), catalog).sites[0].metrics
    assert sum(m.capex_usd_by_category.values()) == pytest.approx(m.capex_usd)
    assert set(m.capex_usd_by_category) >= {"compute", "network", "power", "cooling", "building"}
    assert 1.0 < m.usd_per_gpu_hour < 6.0


def test_scales_from_one_row_to_5gw(catalog):
    small = compile(one_site(grid_mw=0.5), catalog)
    huge = compile(one_site(grid_mw=5000, system="gb300-nvl72", climate="oslo-no"), catalog)
    assert small.metrics.racks >= 1
    assert huge.metrics.gpus > 1_500_000
