"""Capital and operating cost: bill-of-materials prices, annualised capital and $ per GPU-hour."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint.design import BomLine, DesignMetrics, SiteMetrics

if TYPE_CHECKING:
    from tokenfab.blueprint.design import (
        CoolingDesign,
        FabricDesign,
        HallDesign,
        PowerChainDesign,
        SiteDesign,
    )
    from tokenfab.blueprint.layout import SiteCounts
    from tokenfab.blueprint.loads import AnnualEnergy, Loads
    from tokenfab.blueprint.network import FatTree
    from tokenfab.blueprint.parts import Parts
    from tokenfab.catalog.load import Catalog
    from tokenfab.catalog.models import Economics
    from tokenfab.spec import SiteSpec

HOURS_PER_YEAR = 8760.0


def capital_recovery_factor(discount_rate: float, lifetime_years: float) -> float:
    """Annual payment per dollar of capital repaid over `lifetime_years` at `discount_rate`.

    .. math:: CRF = \\frac{r (1+r)^n}{(1+r)^n - 1}, \\qquad CRF = 1/n \\text{ when } r = 0

    Reference: standard annuity formula (e.g. NREL, "Simple Levelized Cost of Energy" documentation).
    """
    if lifetime_years <= 0:
        raise ValueError("lifetime_years must be positive")
    if discount_rate == 0:
        return 1.0 / lifetime_years
    growth: float = (1.0 + discount_rate) ** lifetime_years
    return discount_rate * growth / (growth - 1.0)


def annualised_capex_usd_per_year(
    it_capex_usd: float,
    facility_capex_usd: float,
    discount_rate: float,
    it_lifetime_years: float,
    facility_lifetime_years: float,
) -> float:
    """Capital cost per year: IT and facility each repaid over their own lifetime.

    .. math:: C_{yr} = C_{IT}\\,CRF(r, n_{IT}) + C_{fac}\\,CRF(r, n_{fac})
    """
    return it_capex_usd * capital_recovery_factor(discount_rate, it_lifetime_years) + facility_capex_usd * (
        capital_recovery_factor(discount_rate, facility_lifetime_years)
    )


def energy_cost_usd_per_year(
    facility_power_mw: float, price_usd_per_kwh: float, load_factor: float = 1.0
) -> float:
    """Electricity bill per year at an average facility draw.

    .. math:: E_{\\$} = P_{fac}\\,[MW] \\times 1000 \\times 8760 \\times LF \\times p\\,[\\$/kWh]
    """
    return facility_power_mw * 1000.0 * HOURS_PER_YEAR * load_factor * price_usd_per_kwh


def usd_per_gpu_hour(annual_cost_usd: float, gpus: int, utilisation: float = 1.0) -> float:
    """Total cost of ownership per GPU-hour sold.

    .. math:: \\$/GPUh = \\frac{C_{yr}}{N_{GPU} \\times 8760 \\times u}
    """
    if gpus <= 0 or utilisation <= 0:
        raise ValueError("gpus and utilisation must be positive")
    return annual_cost_usd / (gpus * HOURS_PER_YEAR * utilisation)


def tco_usd_per_gpu_hour(
    it_capex_usd: float,
    facility_capex_usd: float,
    opex_usd_per_year: float,
    gpus: int,
    discount_rate: float,
    it_lifetime_years: float,
    facility_lifetime_years: float,
    utilisation: float = 1.0,
) -> float:
    """Total cost of ownership per GPU-hour: capital repaid over each part's life plus a year's opex.

    .. math:: \\$/GPUh = \\frac{C_{IT}\\,CRF(r, n_{IT}) + C_{fac}\\,CRF(r, n_{fac}) + O_{yr}}{N_{GPU} \\times 8760 \\times u}

    The one function every $/GPU-hour figure goes through (designs, `system_usd_per_gpu_hour`, `tokens`).
    """
    annual = annualised_capex_usd_per_year(
        it_capex_usd, facility_capex_usd, discount_rate, it_lifetime_years, facility_lifetime_years
    )
    return usd_per_gpu_hour(annual + opex_usd_per_year, gpus, utilisation)


def usd_per_million_tokens(usd_per_gpu_hour_value: float, tokens_per_s_per_gpu: float) -> float:
    """Cost of a million tokens from the GPU-hour price and the per-GPU token rate.

    .. math:: \\$/M = \\frac{\\$/GPUh \\times 10^6}{tok/s/GPU \\times 3600}

    Reference: SemiAnalysis InferenceX methodology (shared/reference/perf-calibration.md).
    """
    if tokens_per_s_per_gpu <= 0:
        return float("inf")
    return usd_per_gpu_hour_value * 1e6 / (tokens_per_s_per_gpu * 3600.0)


def facility_capex_usd_per_mw(economics: Economics) -> float:
    """Facility capital per MW of provisioned IT power, excluding the cooling plant and power equipment
    counted item by item in a design (building, substation works, generators and fit-out)."""
    return (
        economics.building_usd_per_mw
        + economics.substation_usd_per_mw
        + economics.generator_usd_per_mw
        + economics.electrical_fitout_usd_per_mw
        + economics.mechanical_fitout_usd_per_mw
    )


def system_usd_per_gpu_hour(
    catalog: Catalog,
    system_name: str,
    region_name: str,
    pue: float = 1.2,
    network_capex_fraction: float = 0.08,
    load_factor: float = 0.8,
    economics_name: str = "default",
) -> float:
    """$ per GPU-hour of one system in one region without compiling a whole design.

    IT capital is the rack price plus a network share (`network_capex_fraction` of it, an estimate of a
    rail-optimised fat tree's cost against the racks it serves); facility capital scales with the rack's
    provisioned power. Opex is energy at `load_factor` of provisioned draw times PUE, maintenance and staff.

    .. math::
        C_{yr} = C_{IT}\\,CRF_{IT} + C_{fac}\\,CRF_{fac} + E_{\\$} + m\\,(C_{IT}+C_{fac}) + s\\,P_{IT}

    where :math:`P_{IT}` is the rack's provisioned power and :math:`E_{\\$}` uses the region's mid price.
    """
    from tokenfab.catalog.models import Economics, Region, System

    system = catalog.typed("systems", system_name, System)
    region = catalog.typed("regions", region_name, Region)
    economics = catalog.typed("economics", economics_name, Economics)
    it_mw = system.rack_power_max_kw / 1000.0
    it_capex = system.rack_cost_usd * (1.0 + network_capex_fraction)
    facility_capex = facility_capex_usd_per_mw(economics) * it_mw
    opex = energy_cost_usd_per_year(it_mw * pue, region.price_usd_per_kwh_mid, load_factor)
    opex += economics.maintenance_fraction_of_capex_per_year * (it_capex + facility_capex)
    opex += economics.staff_usd_per_mw_year * it_mw
    return tco_usd_per_gpu_hour(
        it_capex,
        facility_capex,
        opex,
        system.gpus_per_rack,
        economics.discount_rate,
        economics.it_lifetime_years,
        economics.facility_lifetime_years,
    )


AddLine = Callable[[str, str, float, str, float], None]
"""Adds a bill-of-materials line: (category, item, count, unit, unit cost in USD); a zero count adds none."""

IT_CATEGORIES = ("compute", "network", "storage", "spares")
"""Capex repaid over the IT lifetime; the rest over the facility's."""

CONSTRUCTION_CATEGORIES = ("power", "cooling", "building")
"""What construction cost per MW of critical load covers (Cushman & Wakefield's scope)."""


def market_index(market_mid_usd_per_mw: float | None, us_mean_usd_per_mw: float) -> float:
    """Construction cost of a market against the US mean: :math:`k = C_{market} / C_{US}` (1 without a market)."""
    return market_mid_usd_per_mw / us_mean_usd_per_mw if market_mid_usd_per_mw else 1.0


def interest_during_construction_usd(spend_usd: float, rate: float, months: float) -> float:
    """Interest on money drawn evenly over the build: :math:`IDC = C\\, r\\, (T/12) / 2`.

    Reference: straight-line drawdown approximation of capitalised construction interest.
    """
    return spend_usd * rate * months / 12.0 / 2.0


def bill_of_materials(
    parts: Parts,
    site: SiteSpec,
    counts: SiteCounts,
    tree: FatTree,
    fabric: FabricDesign,
    halls: list[HallDesign],
    power_design: PowerChainDesign,
    cooling_design: CoolingDesign,
    loads: Loads,
) -> list[BomLine]:
    """Every priced line of a site: compute, network, storage, spares; cooling, power, building at the
    market's construction cost; land, soft costs and interest during construction."""
    econ = parts.economics
    it_mw = loads.it_kw / 1000.0
    k = market_index(
        parts.market.construction_usd_per_mw_mid if parts.market else None,
        econ.us_mean_construction_usd_per_mw,
    )
    lines: list[BomLine] = []

    def add(category: str, item: str, count: float, unit: str, unit_cost: float) -> None:
        if count:
            lines.append(
                BomLine(
                    category=category,
                    item=item,
                    count=count,
                    unit=unit,
                    unit_cost_usd=unit_cost,
                    total_usd=count * unit_cost,
                )
            )

    add("compute", parts.system.name, counts.racks, "rack", parts.system.rack_cost_usd)
    for item in fabric.items:  # every network's switches, modules and cables (blueprint.netparts)
        add(
            "network",
            item.item,
            item.count,
            "link" if item.kind == "cable" else item.kind,
            item.unit_cost_usd,
        )
    add(
        "storage",
        "shared flash storage",
        counts.gpus * econ.storage_tb_per_gpu,
        "TB",
        econ.storage_usd_per_tb,
    )
    it_usd = sum(line.total_usd for line in lines)
    add("spares", "spare trays, switches and optics", 1, "lot", econ.spares_fraction_of_it * it_usd)
    _cooling_lines(add, parts, site, halls, cooling_design, it_mw, k)
    _power_lines(add, parts, power_design, it_mw, k)
    add("building", "shell and core", it_mw, "MW IT", econ.building_usd_per_mw * k)
    construction = sum(line.total_usd for line in lines if line.category in CONSTRUCTION_CATEGORIES)
    if parts.market:
        add(
            "land",
            f"land ({parts.market.name})",
            it_mw * econ.acres_per_mw,
            "acre",
            parts.market.land_usd_per_acre,
        )
    add("soft", "design, permits, commissioning", 1, "lot", econ.soft_cost_fraction * construction)
    land = sum(line.total_usd for line in lines if line.category == "land")
    idc = interest_during_construction_usd(
        construction * (1 + econ.soft_cost_fraction) + land,
        econ.construction_interest_rate,
        econ.construction_months,
    )
    add("finance", "interest during construction", 1, "lot", idc)
    return lines


def _cooling_lines(
    add: AddLine,
    parts: Parts,
    site: SiteSpec,
    halls: list[HallDesign],
    cooling_design: CoolingDesign,
    it_mw: float,
    k: float,
) -> None:
    cdus_by_model: dict[str, int] = {}
    for hall in halls:
        if hall.cdu_model:
            cdus_by_model[hall.cdu_model] = cdus_by_model.get(hall.cdu_model, 0) + hall.cdus_installed
    for name, count in sorted(cdus_by_model.items()):
        cdu = next(c for c in parts.cdus if c.name == name)
        add("cooling", name, count, "CDU", cdu.cost_usd * k)
    if cooling_design.liquid_heat_kw:
        add(
            "cooling",
            parts.liquid_plant.name,
            cooling_design.heat_rejection_capacity_kw / 1000.0,
            "MW",
            parts.liquid_plant.cost_usd_per_mw * k,
        )
    add(
        "cooling",
        "trim chiller",
        cooling_design.trim_chiller_kw / 1000.0,
        "MW",
        parts.air_plant.cost_usd_per_mw * k,
    )
    air_module_kw = cool.rejection_module_kw(cooling_design.air_heat_kw)
    air_mw = (
        cool.rejection_modules(cooling_design.air_heat_kw, site.redundancy.cooling.value, air_module_kw)
        * air_module_kw
        / 1000.0
    )
    add("cooling", parts.air_plant.name + " (air side)", air_mw, "MW", parts.air_plant.cost_usd_per_mw * k)
    add("cooling", "mechanical fit-out", it_mw, "MW IT", parts.economics.mechanical_fitout_usd_per_mw * k)


def _stage_equipment(power_design: PowerChainDesign, stage: str) -> str | None:
    return next((s.equipment for s in power_design.stages if s.stage == stage), None)


def _power_lines(add: AddLine, parts: Parts, power_design: PowerChainDesign, it_mw: float, k: float) -> None:
    econ = parts.economics
    unit_costs = {
        "busway": parts.busway.cost_usd,
        "ups": next(
            (u.cost_usd for u in parts.ups_options if u.name == _stage_equipment(power_design, "ups")),
            parts.ups.cost_usd,
        ),
        "sst": parts.sst.cost_usd if parts.sst else 0.0,
        "mv_lv_transformer": parts.mv_lv.cost_usd,
        "substation_transformer": parts.substation.cost_usd if parts.substation else 0.0,
    }
    for stage in power_design.stages:
        add("power", stage.equipment, stage.units_installed, "unit", unit_costs[stage.stage] * k)
    standby = power_design.standby
    if standby is not None:
        add(
            "power", "UPS / DC storage battery", standby.battery_kwh, "kWh", parts.ups.battery_usd_per_kwh * k
        )
        gen = next((g for g in parts.generator_options if g.name == standby.generator), parts.generator)
        if standby.generators and gen is not None:
            add("power", gen.name, standby.generators_installed, "unit", gen.cost_usd * k)
            add(
                "power",
                "ATS / paralleling per block",
                standby.transfer_switches,
                "block",
                gen.transfer_switch_cost_usd * k,
            )
            add("power", "fuel storage", standby.fuel_l, "L", gen.fuel_storage_usd_per_l * k)
    if parts.substation is not None:
        add("power", "substation works", it_mw, "MW IT", econ.substation_usd_per_mw * k)
    else:
        add("power", "utility MV service", it_mw, "MW IT", econ.mv_service_usd_per_mw * k)
    add("power", "electrical fit-out", it_mw, "MW IT", econ.electrical_fitout_usd_per_mw * k)


def site_metrics(
    parts: Parts,
    counts: SiteCounts,
    halls: list[HallDesign],
    loads: Loads,
    power_design: PowerChainDesign,
    cooling_design: CoolingDesign,
    bom: list[BomLine],
    annual: AnnualEnergy,
) -> SiteMetrics:
    """Headline figures of a site: counts, power, PUE/WUE, capex from the BOM, opex and $/GPU-hour."""
    econ = parts.economics
    capex_by_category: dict[str, float] = {}
    for line in bom:
        capex_by_category[line.category] = capex_by_category.get(line.category, 0.0) + line.total_usd
    capex = sum(capex_by_category.values())
    it_capex = sum(capex_by_category.get(c, 0.0) for c in IT_CATEGORIES)
    facility_capex = capex - it_capex
    construction = sum(capex_by_category.get(c, 0.0) for c in CONSTRUCTION_CATEGORIES)
    energy_usd = energy_cost_usd_per_year(
        annual.facility_kwh / HOURS_PER_YEAR / 1000.0, parts.price_usd_per_kwh
    )
    opex_by_category = {
        "energy": energy_usd,
        "maintenance": econ.maintenance_fraction_of_capex_per_year * capex,
        "staff": econ.staff_usd_per_mw_year * loads.it_kw / 1000.0,
    }
    opex = sum(opex_by_category.values())
    return SiteMetrics(
        gpus=counts.gpus,
        racks=counts.racks,
        nodes=counts.nodes,
        nvlink_domains=counts.domains,
        scalable_units=len(counts.su_racks),
        halls=len(halls),
        it_mw=loads.it_kw / 1000.0,
        it_mw_nominal=annual.it_kwh / HOURS_PER_YEAR / 1000.0,
        facility_mw=loads.facility_kw / 1000.0,
        grid_mw=power_design.grid_mw,
        pue_design=loads.pue,
        pue_annual=cooling_design.pue_annual,
        wue_l_per_kwh=cooling_design.wue_l_per_kwh,
        peak_pflops={p.value: counts.gpus * tflops / 1000.0 for p, tflops in parts.gpu.dense_tflops.items()},
        hbm_tb=counts.gpus * parts.gpu.hbm_gb / 1000.0,
        capex_usd=capex,
        capex_usd_by_category=capex_by_category,
        opex_usd_per_year=opex,
        opex_usd_per_year_by_category=opex_by_category,
        energy_mwh_per_year=annual.facility_kwh / 1000.0,
        carbon_t_per_year=annual.facility_kwh * parts.carbon_g_per_kwh / 1e6,
        water_m3_per_year=annual.water_l / 1000.0,
        usd_per_gpu_hour=tco_usd_per_gpu_hour(
            it_capex,
            facility_capex,
            opex,
            counts.gpus,
            econ.discount_rate,
            econ.it_lifetime_years,
            econ.facility_lifetime_years,
        ),
        white_space_m2=sum(h.white_space_m2 for h in halls),
        market=parts.market.name if parts.market else None,
        facility_capex_usd_per_mw=construction / (loads.it_kw / 1000.0),
        it_load_fraction=annual.it_kwh / HOURS_PER_YEAR / loads.it_kw if loads.it_kw else None,
    )


def design_metrics(sites: list[SiteDesign]) -> DesignMetrics:
    """Whole-factory figures: sums over sites, PUE and WUE from the summed energy, $/GPU-h GPU-weighted."""

    def total(attr: str) -> float:
        value: float = sum(getattr(s.metrics, attr) for s in sites)
        return value

    it_mw = total("it_mw")
    energy = total("energy_mwh_per_year")
    it_energy = sum(s.metrics.it_mw_nominal * HOURS_PER_YEAR for s in sites)
    pflops: dict[str, float] = {}
    capex_by_category: dict[str, float] = {}
    for site in sites:
        for key, value in site.metrics.peak_pflops.items():
            pflops[key] = pflops.get(key, 0.0) + value
        for key, value in site.metrics.capex_usd_by_category.items():
            capex_by_category[key] = capex_by_category.get(key, 0.0) + value
    gpus = int(total("gpus"))
    return DesignMetrics(
        sites=len(sites),
        gpus=gpus,
        racks=int(total("racks")),
        nvlink_domains=int(total("nvlink_domains")),
        scalable_units=int(total("scalable_units")),
        halls=int(total("halls")),
        it_mw=it_mw,
        facility_mw=total("facility_mw"),
        grid_mw=total("grid_mw"),
        pue_design=total("facility_mw") / it_mw,
        pue_annual=energy / it_energy,
        wue_l_per_kwh=total("water_m3_per_year") * 1000.0 / (it_energy * 1000.0),
        peak_pflops=pflops,
        hbm_tb=total("hbm_tb"),
        capex_usd=total("capex_usd"),
        capex_usd_by_category=capex_by_category,
        opex_usd_per_year=total("opex_usd_per_year"),
        energy_mwh_per_year=energy,
        carbon_t_per_year=total("carbon_t_per_year"),
        usd_per_gpu_hour=sum(s.metrics.usd_per_gpu_hour * s.metrics.gpus for s in sites) / gpus,
    )
