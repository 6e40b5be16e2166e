"""The facility around the racks: power chain in blocks, heat rejection with water, capex and opex in full."""

from __future__ import annotations

import pytest

from tests.conftest import compiled_example
from tokenfab.blueprint import cost, power
from tokenfab.blueprint.compile import compile
from tokenfab.catalog.models import Market
from tokenfab.certify import check
from tokenfab.spec import parse_spec

EXAMPLES = ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw", "site-1200mw-gb200"]


def site_spec(**site) -> dict:
    base = {
        "name": "s",
        "grid_mw": 10,
        "climate": "dublin-ie",
        "system": "gb200-nvl72",
        "fabric": "infiniband_ndr",
    }
    return {"name": "t", "sites": [{**base, **site}]}


def build(catalog, **site):
    return compile(parse_spec(site_spec(**site)), catalog)


def errors(design, catalog, rule_ids=None):
    return [f for f in check(design, catalog, rule_ids=rule_ids) if f.severity == "error"]


# --- blocks and redundancy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topology", "required", "installed", "carrying"),
    [
        ("N", 5, 5, 5),
        ("N+1", 5, 6, 5),
        ("2N", 5, 10, 5),
        ("DR 4/3", 5, 8, 6),
        ("DR 3/2", 5, 9, 6),
        ("BR 6+1", 5, 6, 5),
        ("BR 4+1", 9, 12, 9),
    ],
)
def test_block_counts(topology, required, installed, carrying):
    assert power.block_counts(required, topology) == (installed, carrying)


@pytest.mark.parametrize("topology", ["N+1", "distributed_redundant", "block_redundant", "2N"])
def test_every_topology_compiles_clean_and_carries_its_worst_failure(catalog, topology):
    design = build(catalog, power={"topology": topology})
    site = design.sites[0]
    assert site.power.failures and all(f.carried for f in site.power.failures)
    assert errors(design, catalog) == []
    for block in site.power.blocks:
        assert block.blocks_installed > block.blocks_carrying >= block.blocks_required


def test_an_n_chain_loses_load_on_its_worst_failure(catalog):
    design = build(catalog, redundancy={"power": "N", "cooling": "N+1"})
    site = design.sites[0]
    assert site.power.topology == "N"
    assert not all(f.carried for f in site.power.failures)
    warnings = {f.rule_id for f in check(design, catalog) if f.severity == "warning"}
    assert "RED-006" in warnings


def test_redundancy_counted_per_hall_not_site_wide(catalog):
    """At 1 GW an N+1 chain has a spare block in every hall, not one spare among hundreds of units."""
    site = compiled_example("site-1gw").sites[0]
    mv_lv = next(s for s in site.power.stages if s.stage == "mv_lv_transformer")
    assert mv_lv.units_installed - mv_lv.units_carrying == len(site.halls)
    assert all(b.blocks_installed == b.blocks_required + 1 for b in site.power.blocks)


# --- power chain sized, not picked -------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_transformers_loaded_at_least_40_percent(name):
    for site in compiled_example(name).sites:
        for stage in site.power.stages:
            if stage.stage.endswith("transformer") or stage.stage == "sst":
                assert stage.loading_fraction >= 0.4, (name, stage.stage, stage.loading_fraction)


def test_small_sites_take_an_mv_service_large_ones_own_a_substation():
    for name in ("row-1mw", "site-10mw"):
        site = compiled_example(name).sites[0]
        assert site.power.grid.service == "mv"
        assert "substation_transformer" not in {s.stage for s in site.power.stages}
        assert any(line.item == "utility MV service" for line in site.bom)
    big = compiled_example("site-100mw").sites[0]
    assert big.power.grid.service == "hv"
    assert "substation_transformer" in {s.stage for s in big.power.stages}


def test_row_takes_small_transformers_and_gensets():
    site = compiled_example("row-1mw").sites[0]
    mv_lv = next(s for s in site.power.stages if s.stage == "mv_lv_transformer")
    assert mv_lv.unit_rating_kw <= 2000.0
    assert site.power.standby.generator_rating_kw <= 1000.0
    assert site.power.standby.fuel_autonomy_h >= 12


def test_800v_dc_chain_has_ssts_and_lower_losses(catalog):
    ac = build(catalog, power={"distribution": "ac"})
    dc = build(catalog, power={"distribution": "dc_800v"})
    stages = {s.stage for s in dc.sites[0].power.stages}
    assert "sst" in stages and "ups" not in stages
    assert dc.sites[0].power.distribution.kind == "dc_800v"
    assert dc.sites[0].metrics.pue_design < ac.sites[0].metrics.pue_design
    assert errors(dc, catalog) == []


def test_no_generators_needs_ride_through(catalog):
    short = build(catalog, power={"generators": False, "ups_ride_through_min": 5})
    assert short.sites[0].power.standby.generators is False
    assert any(f.rule_id == "PWR-024" for f in errors(short, catalog))
    long = build(catalog, power={"generators": False, "ups_ride_through_min": 20})
    assert not errors(long, catalog, ["PWR-024"])
    warnings = [f for f in check(long, catalog, rule_ids=["PWR-024"]) if f.severity == "warning"]
    assert warnings and "Tier III" in warnings[0].message
    assert not any("genset" in line.item for line in long.sites[0].bom)


# --- heat rejection with water -----------------------------------------------------------------------


def test_hybrid_dry_coolers_spray_only_on_hot_hours(catalog):
    hot = build(catalog, climate="abilene-tx", cooling="hybrid_dry_cooler")
    tower = build(catalog, climate="abilene-tx", cooling="cooling_tower")
    assert hot.sites[0].cooling.spray_hours_per_year > 0
    assert hot.sites[0].metrics.wue_l_per_kwh < tower.sites[0].metrics.wue_l_per_kwh
    cold = build(catalog, climate="oslo-no", cooling="hybrid_dry_cooler")
    assert cold.sites[0].cooling.spray_hours_per_year < hot.sites[0].cooling.spray_hours_per_year
    assert errors(hot, catalog) == [] and errors(cold, catalog) == []


def test_trim_chiller_lets_dry_coolers_hold_the_design_day(catalog):
    trimmed = build(catalog, climate="abilene-tx", cooling="dry_cooler")
    assert trimmed.sites[0].cooling.trim_chiller_kw > 0
    assert errors(trimmed, catalog, ["COOL-004"]) == []
    assert any(line.item == "trim chiller" for line in trimmed.sites[0].bom)
    bare = build(catalog, climate="abilene-tx", cooling="dry_cooler", trim_chiller=False)
    assert bare.sites[0].cooling.trim_chiller_kw == 0
    assert [f.rule_id for f in errors(bare, catalog, ["COOL-004"])] == ["COOL-004"]


# --- capex and opex in full --------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_facility_capex_per_mw_inside_the_market_range(name, catalog):
    for site in compiled_example(name).sites:
        market = catalog.typed("markets", site.metrics.market, Market)
        per_mw = site.metrics.facility_capex_usd_per_mw
        assert market.construction_usd_per_mw_low <= per_mw <= market.construction_usd_per_mw_high, (
            name,
            per_mw,
        )


def test_one_row_costs_at_most_1_5x_per_mw_of_100_mw():
    row = compiled_example("row-1mw").sites[0].metrics.facility_capex_usd_per_mw
    site = compiled_example("site-100mw").sites[0].metrics.facility_capex_usd_per_mw
    assert row <= 1.5 * site


def test_capex_covers_storage_networks_spares_land_soft_and_interest():
    m = compiled_example("site-100mw").sites[0].metrics
    for category in (
        "compute",
        "network",
        "storage",
        "spares",
        "power",
        "cooling",
        "building",
        "land",
        "soft",
        "finance",
    ):
        assert m.capex_usd_by_category.get(category, 0) > 0, category
    c = m.capex_usd_by_category
    construction = c["power"] + c["cooling"] + c["building"]
    assert c["soft"] == pytest.approx(0.1 * construction)


def test_energy_follows_the_load_profile(catalog):
    low = build(catalog, load={"it_load_fraction": 0.5})
    high = build(catalog, load={"it_load_fraction": 0.9})
    default = build(catalog)
    assert (
        low.sites[0].metrics.energy_mwh_per_year
        < default.sites[0].metrics.energy_mwh_per_year
        < high.sites[0].metrics.energy_mwh_per_year
    )
    assert (
        0.65 < default.sites[0].metrics.it_load_fraction < 0.75
    )  # the economics' inference figure plus the fabric
    hourly = build(catalog, load={"hourly_it_load_fraction": [0.5] * 24})
    assert hourly.sites[0].metrics.energy_mwh_per_year == pytest.approx(
        low.sites[0].metrics.energy_mwh_per_year
    )


def test_tco_per_gpu_hour_is_the_one_function():
    site = compiled_example("site-10mw").sites[0]
    m, econ_it = site.metrics, ("compute", "network", "storage", "spares")
    it = sum(m.capex_usd_by_category.get(c, 0.0) for c in econ_it)
    facility = m.capex_usd - it
    assert cost.tco_usd_per_gpu_hour(it, facility, m.opex_usd_per_year, m.gpus, 0.08, 5, 20) == pytest.approx(
        m.usd_per_gpu_hour
    )


def test_fault_levels_and_voltage_drop_are_computed():
    d = compiled_example("site-10mw").sites[0].power.distribution
    # 3.5 MVA at 415 V, 7 % impedance: 3500 / (√3 · 0.415 · 0.07) ≈ 69.6 kA
    assert d.lv_fault_ka == pytest.approx(3500 / (3**0.5 * 0.415 * 0.07) / 1000, rel=1e-3)
    assert d.lv_interrupting_ka >= d.lv_fault_ka
    assert 0 < d.voltage_drop_pct < 3.0
    assert power.busway_voltage_drop_pct(1000, 20, 0.03, 0.0, 400, 1.0) == pytest.approx(
        3**0.5 * 1000 * 0.03e-3 * 20 / 400 * 100
    )


def test_a_stated_coolant_supply_drives_the_plant(catalog):
    """At a 27 °C supply (instead of the W40 estimate) Ashburn needs chillers: PUE ~1.21 and ~6 % fewer GPUs."""
    warm = build(catalog, grid_mw=100, climate="ashburn-va")
    cool = build(catalog, grid_mw=100, climate="ashburn-va", coolant_supply_temp_c=27)
    assert cool.sites[0].cooling.heat_rejection == "chiller"
    assert cool.sites[0].cooling.supply_temp_source.startswith("spec")
    assert warm.sites[0].cooling.supply_temp_source.startswith("gb200-nvl72")
    assert 1.18 < cool.sites[0].metrics.pue_design < 1.24
    assert 0.90 < cool.sites[0].metrics.gpus / warm.sites[0].metrics.gpus < 0.97
    assert errors(cool, catalog) == []


def test_coolant_supply_above_the_systems_limit_is_bad_input(catalog):
    from tokenfab.blueprint.compile import CompileError

    with pytest.raises(CompileError, match="supply limit") as raised:
        build(catalog, coolant_supply_temp_c=50)
    assert raised.value.loc == ("sites", 0, "coolant_supply_temp_c")


def test_dc_distributed_redundant_site_without_generators(catalog):
    """Vera Rubin on 800 V DC, 4-make-3 SST blocks, no generators with 20 min ride-through: only the Tier III warning."""
    design = build(
        catalog,
        grid_mw=50,
        climate="phoenix-az",
        system="vera-rubin-nvl72",
        fabric="auto",
        power={
            "topology": "distributed_redundant",
            "distributed_make": 4,
            "distribution": "dc_800v",
            "generators": False,
            "ups_ride_through_min": 20,
        },
    )
    site = design.sites[0]
    sst = next(s for s in site.power.stages if s.stage == "sst")
    assert site.power.topology == "DR 4/3" and sst.units_installed * 3 == sst.units_carrying * 4
    findings = check(design, catalog)
    assert [(f.rule_id, f.severity) for f in findings] == [("PWR-024", "warning")]
