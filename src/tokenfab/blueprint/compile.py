"""`compile(spec, catalog) -> Design`: the orchestrator that chains the blueprint's calculations.

For each site: resolve the catalog parts; size IT power from the grid by iterating to a consistent PUE;
lay out NVLink domains, racks, scalable units and halls; size the cooling plant, the power chain and the
fabric; price the bill of materials. Pure and deterministic; counts, never one object per GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint import layout, network, power
from tokenfab.blueprint.cost import (
    annualised_capex_usd_per_year,
    energy_cost_usd_per_year,
    facility_capex_usd_per_mw,
    usd_per_gpu_hour,
)
from tokenfab.blueprint.design import (
    BomLine,
    ClimateDesign,
    CoolingDesign,
    Design,
    DesignMetrics,
    FabricDesign,
    FabricTier,
    HallDesign,
    PowerChainDesign,
    PowerStage,
    RackDesign,
    SiteDesign,
    SiteMetrics,
)
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import (
    Busway,
    Cable,
    Cdu,
    Climate,
    Economics,
    FabricKind,
    Gpu,
    HeatRejection,
    HeatRejectionKind,
    Region,
    Switch,
    System,
    Transceiver,
    Transformer,
    Ups,
)
from tokenfab.spec import ClimateSpec, CoolingChoice, FabricChoice, FactorySpec, SiteSpec

PUE_ITERATIONS = 6
HEAT_REJECTION_MODULE_KW = 2000.0
"""Heat rejection is installed in modules of this size, so that N+1 means one more module (estimate)."""


class CompileError(ValueError):
    """A spec that cannot be built; `loc` is the field path in the spec that causes it."""

    def __init__(self, loc: Sequence[str | int], message: str):
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message


@dataclass(frozen=True)
class _Parts:
    system: System
    gpu: Gpu
    climate: ClimateDesign
    region: Region
    economics: Economics
    price_usd_per_kwh: float
    carbon_g_per_kwh: float
    switch: Switch
    transceiver: Transceiver
    cable: Cable
    cdus: list[Cdu]
    liquid_plant: HeatRejection
    air_plant: HeatRejection
    mv_lv: Transformer
    substation: Transformer
    ups: Ups
    busway: Busway


def compile(spec: FactorySpec, catalog: Catalog) -> Design:  # noqa: A001 - the name the design doc uses
    """Compile a spec into a complete design."""
    sites = [_compile_site(spec, index, site, catalog) for index, site in enumerate(spec.sites)]
    return Design(name=spec.name, spec=spec, sites=sites, metrics=_design_metrics(sites))


# --- resolving catalog parts -------------------------------------------------------------------


def _resolve(spec: FactorySpec, index: int, site: SiteSpec, catalog: Catalog) -> _Parts:
    loc = ("sites", index)
    system = _lookup(catalog, "systems", site.system, System, (*loc, "system"))
    gpu = catalog.typed("gpus", system.gpu, Gpu)
    climate, climate_region = _resolve_climate(site, catalog, (*loc, "climate"))
    region_name = site.region or spec.region or climate_region
    if region_name is None:
        raise CompileError((*loc, "region"), "a custom climate needs a region (site or campus `region`)")
    region = _lookup(catalog, "regions", region_name, Region, (*loc, "region"))
    economics = _lookup(catalog, "economics", spec.economics, Economics, ("economics",))
    fabric_kind = system.default_fabric if site.fabric == FabricChoice.auto else FabricKind(site.fabric.value)
    switches = sorted(
        (s for s in catalog.all("switches", Switch) if s.fabric == fabric_kind), key=lambda s: s.name
    )
    if not switches:
        raise CompileError((*loc, "fabric"), f"no switch in the catalog for fabric {fabric_kind.value}")
    switch = switches[0]
    link_gbps = min(system.scaleout_nic_gbps, switch.port_gbps)
    transceivers = sorted(catalog.all("transceivers", Transceiver), key=lambda t: (t.gbps < link_gbps, t.gbps))
    cables = sorted(catalog.all("cables", Cable), key=lambda c: c.name)
    cdus = sorted(catalog.all("cdus", Cdu), key=lambda c: c.capacity_kw)
    plants = {p.kind: p for p in sorted(catalog.all("heat_rejection", HeatRejection), key=lambda p: p.name)}
    mv_lv = [t for t in catalog.all("transformers", Transformer) if t.stage == "mv_lv"]
    substations = [t for t in catalog.all("transformers", Transformer) if t.stage == "substation"]
    ups = catalog.all("ups", Ups)
    busways = catalog.all("busways", Busway)
    if not (transceivers and cables and cdus and mv_lv and substations and ups and busways):
        raise CompileError(loc, "the catalog lacks facility equipment (transceivers, cables, CDUs, transformers, UPS, busway)")
    if HeatRejectionKind.chiller not in plants:
        raise CompileError(loc, "the catalog has no chiller plant")
    facility_supply_c = system.supply_temp_max_c - cdus[0].approach_k
    liquid_plant = _choose_liquid_plant(site, plants, facility_supply_c, climate, (*loc, "cooling"))
    return _Parts(
        system=system,
        gpu=gpu,
        climate=climate,
        region=region,
        economics=economics,
        price_usd_per_kwh=site.price_usd_per_kwh if site.price_usd_per_kwh is not None else region.price_usd_per_kwh_mid,
        carbon_g_per_kwh=site.carbon_g_per_kwh if site.carbon_g_per_kwh is not None else region.grid_carbon_g_per_kwh,
        switch=switch,
        transceiver=transceivers[0],
        cable=next((c for c in cables if c.kind == "fiber"), cables[0]),
        cdus=cdus,
        liquid_plant=liquid_plant,
        air_plant=plants[HeatRejectionKind.chiller],
        mv_lv=max(mv_lv, key=lambda t: t.rating_mva),
        substation=max(substations, key=lambda t: t.rating_mva),
        ups=max(ups, key=lambda u: u.module_kw),
        busway=max(busways, key=lambda b: b.rating_kw),
    )


def _lookup(catalog: Catalog, kind: str, name: str, model, loc):
    try:
        return catalog.typed(kind, name, model)
    except KeyError as exc:
        raise CompileError(loc, str(exc.args[0])) from None


def _resolve_climate(site: SiteSpec, catalog: Catalog, loc) -> tuple[ClimateDesign, str | None]:
    if isinstance(site.climate, str):
        named = _lookup(catalog, "climates", site.climate, Climate, loc)
        return (
            ClimateDesign(
                name=named.name,
                design_dry_bulb_c=named.design_dry_bulb_c,
                design_wet_bulb_c=named.design_wet_bulb_c,
                monthly_dry_bulb_c=list(named.monthly_dry_bulb_c),
                monthly_wet_bulb_c=list(named.monthly_wet_bulb_c),
                daily_range_k=named.daily_range_k,
            ),
            named.region,
        )
    given: ClimateSpec = site.climate
    dry = given.monthly_dry_bulb_c or _seasonal_profile(given.design_dry_bulb_c - 6.0, 9.0)
    wet = given.monthly_wet_bulb_c or [min(d, t) for d, t in zip(dry, _seasonal_profile(given.design_wet_bulb_c - 5.0, 8.0), strict=True)]
    return (
        ClimateDesign(
            name="custom",
            design_dry_bulb_c=given.design_dry_bulb_c,
            design_wet_bulb_c=given.design_wet_bulb_c,
            monthly_dry_bulb_c=dry,
            monthly_wet_bulb_c=wet,
            daily_range_k=given.daily_range_k,
        ),
        None,
    )


def _seasonal_profile(warmest_month_c: float, amplitude_k: float) -> list[float]:
    """Monthly means peaking in July (northern hemisphere), for a climate given only by its design day."""
    months = np.arange(12)
    return [round(float(warmest_month_c - amplitude_k * (1 - np.cos(2 * np.pi * (m - 6) / 12))), 2) for m in months]


def _choose_liquid_plant(site, plants, supply_c: float, climate: ClimateDesign, loc) -> HeatRejection:
    if site.cooling != CoolingChoice.auto:
        kind = HeatRejectionKind(site.cooling.value)
        if kind not in plants:
            raise CompileError(loc, f"no {kind.value} plant in the catalog")
        return plants[kind]
    for kind in (HeatRejectionKind.dry_cooler, HeatRejectionKind.cooling_tower, HeatRejectionKind.chiller):
        plant = plants.get(kind)
        if plant and cool.heat_rejection_feasible(plant, supply_c, climate.design_dry_bulb_c, climate.design_wet_bulb_c):
            return plant
    return plants[HeatRejectionKind.chiller]


# --- one site ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loads:
    """Facility loads at one operating point (kW)."""

    it_kw: float
    network_kw: float
    mechanical_kw: float
    misc_kw: float
    busway_loss_kw: float
    ups_loss_kw: float
    mv_lv_loss_kw: float
    substation_loss_kw: float
    heat_rejection_kw: float
    air_cooling_kw: float
    chiller_kw: float
    cdu_pump_kw: float
    water_l_per_h: float

    @property
    def facility_kw(self) -> float:
        return (
            self.it_kw
            + self.mechanical_kw
            + self.misc_kw
            + self.busway_loss_kw
            + self.ups_loss_kw
            + self.mv_lv_loss_kw
            + self.substation_loss_kw
        )

    @property
    def pue(self) -> float:
        return self.facility_kw / self.it_kw


def _loads(
    parts: _Parts,
    rack_kw_total: float,
    network_kw: float,
    cdu_pump_kw: float,
    dry_bulb_c: float,
    wet_bulb_c: float,
    facility_supply_c: float,
) -> _Loads:
    """Facility loads for a given rack draw and outdoor condition (all equations in the cooling/power modules)."""
    system, econ = parts.system, parts.economics
    it_kw = rack_kw_total + network_kw
    liquid_heat = rack_kw_total * system.liquid_heat_fraction
    air_heat = rack_kw_total - liquid_heat + network_kw
    design_db, design_wb = parts.climate.design_dry_bulb_c, parts.climate.design_wet_bulb_c
    cdu_pump = cdu_pump_kw
    rejection = 0.0
    if liquid_heat > 0:
        rejection = cool.heat_rejection_power_kw(
            parts.liquid_plant, liquid_heat, facility_supply_c, dry_bulb_c, wet_bulb_c, design_db, design_wb
        )
    air_fans = econ.air_cooling_kw_per_kw_heat * air_heat
    chiller = cool.heat_rejection_power_kw(
        parts.air_plant, air_heat + air_fans, cool.AIR_SIDE_CHILLED_WATER_C, dry_bulb_c, wet_bulb_c, design_db, design_wb
    )
    mechanical = cdu_pump + rejection + air_fans + chiller
    misc = econ.misc_load_fraction * it_kw
    busway_loss = power.stage_loss_kw(it_kw, parts.busway.efficiency)
    ups_loss = power.stage_loss_kw(it_kw + busway_loss, parts.ups.efficiency)
    below_mv_lv = it_kw + busway_loss + ups_loss + mechanical + misc
    mv_lv_loss = power.stage_loss_kw(below_mv_lv, parts.mv_lv.efficiency)
    substation_loss = power.stage_loss_kw(below_mv_lv + mv_lv_loss, parts.substation.efficiency)
    water = cool.water_use_l_per_h(parts.liquid_plant, liquid_heat + rejection) if liquid_heat > 0 else 0.0
    water += cool.water_use_l_per_h(parts.air_plant, air_heat + air_fans + chiller)
    return _Loads(
        it_kw=it_kw,
        network_kw=network_kw,
        mechanical_kw=mechanical,
        misc_kw=misc,
        busway_loss_kw=busway_loss,
        ups_loss_kw=ups_loss,
        mv_lv_loss_kw=mv_lv_loss,
        substation_loss_kw=substation_loss,
        heat_rejection_kw=rejection,
        air_cooling_kw=air_fans,
        chiller_kw=chiller,
        cdu_pump_kw=cdu_pump,
        water_l_per_h=water,
    )


def _fabric(parts: _Parts, site: SiteSpec, scalable_units: int, domains: int) -> tuple[FabricDesign, network.FatTree]:
    system, switch = parts.system, parts.switch
    link_gbps = min(system.scaleout_nic_gbps, switch.port_gbps)
    links_per_gpu = system.scaleout_nics_per_gpu * network.links_per_nic(system.scaleout_nic_gbps, switch.port_gbps)
    endpoints_per_su = system.nodes_per_scalable_unit * system.gpus_per_node * links_per_gpu
    radix = network.effective_radix(switch.ports, switch.port_gbps, link_gbps)
    tree = network.fat_tree(endpoints_per_su, scalable_units, radix, site.fabric_oversubscription)
    endpoints = endpoints_per_su * scalable_units
    transceivers = 2 * tree.links
    tiers = [
        FabricTier(
            tier=i + 1,
            name=network.TIER_NAMES[i] if i < len(network.TIER_NAMES) else f"tier-{i + 1}",
            switches=tree.switches_by_tier[i],
            downlinks_per_switch=tree.downlinks_by_tier[i],
            uplinks_per_switch=tree.uplinks_by_tier[i],
        )
        for i in range(tree.tiers)
    ]
    design = FabricDesign(
        kind=switch.fabric.value,
        switch=switch.name,
        switch_ports=radix,
        link_gbps=link_gbps,
        endpoints=endpoints,
        endpoints_per_scalable_unit=endpoints_per_su,
        rails=system.gpus_per_node * links_per_gpu,
        scalable_units=scalable_units,
        tiers=tiers,
        links_by_tier=list(tree.links_by_tier),
        oversubscription=site.fabric_oversubscription,
        transceivers=transceivers,
        transceiver=parts.transceiver.name,
        cables=tree.links,
        switch_power_kw=tree.switches * switch.maximum_draw_w / 1000.0,
        transceiver_power_kw=transceivers * parts.transceiver.maximum_draw_w / 1000.0,
        nvlink_domains=domains,
        gpus_per_nvlink_domain=system.gpus_per_nvlink_domain,
        bisection_tbps=network.bisection_bandwidth_tbps(endpoints, link_gbps, site.fabric_oversubscription),
    )
    return design, tree


def _network_kw(parts: _Parts, site: SiteSpec, domains: int) -> float:
    """Switch and transceiver power of the fabric that serves `domains` NVLink domains."""
    system = parts.system
    racks = layout.racks_for_domains(domains, system.domains_per_rack)
    racks_per_su = layout.racks_per_scalable_unit(system.nodes_per_scalable_unit, system.nodes_per_rack)
    fabric, _ = _fabric(parts, site, len(layout.split_into_scalable_units(racks, racks_per_su)), domains)
    return fabric.switch_power_kw + fabric.transceiver_power_kw


def _design_day_loads(parts: _Parts, site: SiteSpec, domains: int) -> _Loads:
    system = parts.system
    rack_kw = domains * system.rack_power_max_kw / system.domains_per_rack
    liquid_kw = rack_kw * system.liquid_heat_fraction
    cdus = math.ceil(liquid_kw / parts.cdus[0].capacity_kw - 1e-9) if liquid_kw else 0
    pump_kw = cdus * parts.cdus[0].pump_power_kw
    return _loads(parts, rack_kw, _network_kw(parts, site, domains), pump_kw, parts.climate.design_dry_bulb_c,
                  parts.climate.design_wet_bulb_c, system.supply_temp_max_c - parts.cdus[0].approach_k)


def _size_it(parts: _Parts, site: SiteSpec) -> int:
    """NVLink domains a site holds.

    With `it_mw`, the racks' provisioned power fits the IT budget. With `grid_mw`, the design-day facility
    power (IT + network + cooling + losses) fits the grid connection: iterate
    :math:`P_{IT} = P_{grid} / PUE(P_{IT})` to a fixed point, then step down until it fits.
    """
    system = parts.system
    if site.it_mw is not None:
        return layout.nvlink_domains_for_power(site.it_mw * 1000.0, system.rack_power_max_kw, system.domains_per_rack)
    grid_kw = site.grid_mw * 1000.0
    ratio = 1.3
    domains = 0
    for _ in range(PUE_ITERATIONS):
        domains = layout.nvlink_domains_for_power(grid_kw / ratio, system.rack_power_max_kw, system.domains_per_rack)
        if domains <= 0:
            return 0
        loads = _design_day_loads(parts, site, domains)
        ratio = loads.facility_kw / (loads.it_kw - loads.network_kw)
    while domains > 0 and _design_day_loads(parts, site, domains).facility_kw > grid_kw:
        domains -= max(1, domains // 500)
    return domains


def _compile_site(spec: FactorySpec, index: int, site: SiteSpec, catalog: Catalog) -> SiteDesign:
    parts = _resolve(spec, index, site, catalog)
    domains = _size_it(parts, site)
    design = _build_site(index, site, parts, domains)
    # `_size_it` estimates CDU pumps from the site total; halls round their CDUs up one by one, so the
    # built site can draw a little more. Step down until the design day fits the grid (certify PWR-007).
    while site.grid_mw is not None and design.power.facility_power_peak_kw > site.grid_mw * 1000.0 and domains > 1:
        domains -= max(1, domains // 500)
        design = _build_site(index, site, parts, domains)
    return design


def _build_site(index: int, site: SiteSpec, parts: _Parts, domains: int) -> SiteDesign:
    system, econ = parts.system, parts.economics
    power_field = "it_mw" if site.it_mw is not None else "grid_mw"
    if domains <= 0:
        need_kw = system.rack_power_max_kw / system.domains_per_rack
        raise CompileError(
            ("sites", index, power_field),
            f"site too small for one NVLink domain of {system.name} (needs about {need_kw:.0f} kW of IT power)",
        )
    racks = layout.racks_for_domains(domains, system.domains_per_rack)
    nodes = domains * system.gpus_per_nvlink_domain // system.gpus_per_node
    gpus = domains * system.gpus_per_nvlink_domain
    racks_per_su = layout.racks_per_scalable_unit(system.nodes_per_scalable_unit, system.nodes_per_rack)
    su_racks = layout.split_into_scalable_units(racks, racks_per_su)
    sus_per_hall = layout.scalable_units_per_hall(site.limits.hall_it_mw_max * 1000.0, racks_per_su, system.rack_power_max_kw)
    hall_groups = layout.split_into_halls(su_racks, sus_per_hall)

    # Rack: a node-scale rack may be partly filled, so rack power is prorated by domains in the site.
    fill = domains / (racks * system.domains_per_rack)
    rack_max_kw = system.rack_power_max_kw
    rack_nominal_kw = system.rack_power_nominal_kw
    facility_supply_c = system.supply_temp_max_c - parts.cdus[0].approach_k
    rack_supply_c = facility_supply_c + parts.cdus[0].approach_k
    mean_c = rack_supply_c + cool.DEFAULT_COOLANT_DELTA_T_K / 2
    density, cp = cool.coolant_properties(cool.COOLANT_PG25, round(mean_c, 1))
    rack_liquid_kw = rack_max_kw * system.liquid_heat_fraction
    rack_flow = cool.coolant_flow_lpm(rack_liquid_kw, cool.DEFAULT_COOLANT_DELTA_T_K, density, cp) if rack_liquid_kw else 0.0
    rack = RackDesign(
        system=system.name,
        gpus=system.gpus_per_rack,
        nodes=system.nodes_per_rack,
        nvlink_domains=system.domains_per_rack,
        gpus_per_nvlink_domain=system.gpus_per_nvlink_domain,
        cpu_cores_per_node=system.cpu_cores_per_node,
        memory_gb_per_node=system.memory_gb_per_node,
        power_nominal_kw=rack_nominal_kw,
        power_max_kw=rack_max_kw,
        power_shelf_capacity_kw=system.power_shelf_capacity_kw,
        busbar_limit_kw=system.busbar_limit_kw,
        liquid_heat_kw=rack_liquid_kw,
        air_heat_kw=rack_max_kw - rack_liquid_kw,
        coolant_flow_lpm=rack_flow,
        manifold_flow_lpm_min=system.manifold_flow_lpm_min,
        manifold_flow_lpm_max=system.manifold_flow_lpm_max,
        supply_temp_c=rack_supply_c,
        supply_temp_max_c=system.supply_temp_max_c,
        weight_kg=system.rack_weight_kg,
        footprint_m2=system.rack_footprint_m2,
    )

    # Halls and CDUs.
    # Racks are full but the site's last one, so each hall holds whole NVLink domains (certify NET-003).
    halls: list[HallDesign] = []
    domains_left = domains
    for hall_index, group in enumerate(hall_groups):
        hall_racks = sum(group)
        hall_domains = min(hall_racks * system.domains_per_rack, domains_left)
        domains_left -= hall_domains
        hall_fill = hall_domains / (hall_racks * system.domains_per_rack)
        hall_it = hall_racks * rack_max_kw * hall_fill
        liquid = hall_racks * rack_liquid_kw * hall_fill
        flow = hall_racks * rack_flow * hall_fill
        cdu, required = _cheapest_cdu(parts.cdus, liquid, flow, site.redundancy.cooling.value)
        installed = cool.units_with_redundancy(required, site.redundancy.cooling.value)
        # The hall's air system removes at most `air_system_capacity_kw_per_m2` of white space, so air-heavy
        # racks spread out (certify COOL-009).
        white = max(layout.white_space_m2(hall_racks, econ.hall_white_space_m2_per_rack),
                    layout.air_limited_white_space_m2(hall_it - liquid, econ.air_system_capacity_kw_per_m2))
        area = white + installed * (cdu.footprint_m2 if cdu else 0.0)
        halls.append(
            HallDesign(
                index=hall_index,
                su_racks=group,
                racks=hall_racks,
                gpus=hall_domains * system.gpus_per_nvlink_domain,
                rows=layout.rows_for_racks(group, site.limits.racks_per_row),
                racks_per_row=site.limits.racks_per_row,
                it_power_max_kw=hall_it,
                liquid_heat_kw=liquid,
                air_heat_kw=hall_it - liquid,
                cdu_model=cdu.name if cdu else None,
                cdus_required=required,
                cdus_installed=installed,
                coolant_flow_lpm=flow,
                white_space_m2=white,
                area_m2=area,
                floor_load_kg_per_m2=layout.floor_load_kg_per_m2(system.rack_weight_kg, system.rack_footprint_m2, econ.hall_white_space_m2_per_rack),
                air_system_capacity_kw=white * econ.air_system_capacity_kw_per_m2,
            )
        )

    # Fabric, then loads at the design day and across the year.
    fabric, tree = _fabric(parts, site, len(su_racks), domains)
    network_kw = fabric.switch_power_kw + fabric.transceiver_power_kw
    rack_kw_max = racks * rack_max_kw * fill
    rack_kw_nominal = racks * rack_nominal_kw * fill
    pumps_kw = {cdu.name: cdu.pump_power_kw for cdu in parts.cdus}
    cdu_pump_kw = sum(h.cdus_required * pumps_kw[h.cdu_model] for h in halls if h.cdu_model)
    design_loads = _loads(parts, rack_kw_max, network_kw, cdu_pump_kw,
                          parts.climate.design_dry_bulb_c, parts.climate.design_wet_bulb_c, facility_supply_c)
    dry_bins, wet_bins, hours = cool.outdoor_bins(parts.climate.monthly_dry_bulb_c, parts.climate.monthly_wet_bulb_c, parts.climate.daily_range_k)
    annual = [_loads(parts, rack_kw_nominal, network_kw, cdu_pump_kw, d, w, facility_supply_c) for d, w in zip(dry_bins, wet_bins, strict=True)]
    facility_kwh = float(sum(a.facility_kw * h for a, h in zip(annual, hours, strict=True)))
    it_kwh = float(sum(a.it_kw * h for a, h in zip(annual, hours, strict=True)))
    water_l = float(sum(a.water_l_per_h * h for a, h in zip(annual, hours, strict=True)))
    pue_annual = facility_kwh / it_kwh
    pue_curve = _pue_by_outdoor_temp(parts, rack_kw_nominal, network_kw, cdu_pump_kw, facility_supply_c)

    cooling_red = site.redundancy.cooling.value
    total_liquid = sum(h.liquid_heat_kw for h in halls)
    rejection_modules = math.ceil((total_liquid + design_loads.heat_rejection_kw) / HEAT_REJECTION_MODULE_KW - 1e-9) if total_liquid else 0
    rejection_capacity = cool.units_with_redundancy(rejection_modules, cooling_red) * HEAT_REJECTION_MODULE_KW
    cdu_model = next((h.cdu_model for h in halls if h.cdu_model), None)
    cooling_design = CoolingDesign(
        heat_rejection=parts.liquid_plant.name if total_liquid else parts.air_plant.name,
        heat_rejection_kind=(parts.liquid_plant if total_liquid else parts.air_plant).kind.value,
        coolant="PG25 (25 % propylene glycol)",
        facility_supply_temp_c=facility_supply_c,
        rack_supply_temp_c=rack_supply_c,
        rack_return_temp_c=rack_supply_c + cool.DEFAULT_COOLANT_DELTA_T_K,
        coolant_delta_t_k=cool.DEFAULT_COOLANT_DELTA_T_K,
        coolant_density_kg_m3=density,
        coolant_cp_j_per_kg_k=cp,
        liquid_heat_kw=total_liquid,
        air_heat_kw=rack_kw_max - total_liquid + network_kw,
        coolant_flow_lpm=sum(h.coolant_flow_lpm for h in halls),
        cdu_model=cdu_model,
        cdus_installed=sum(h.cdus_installed for h in halls),
        cdu_pump_power_kw=design_loads.cdu_pump_kw,
        heat_rejection_capacity_kw=rejection_capacity,
        heat_rejection_power_design_kw=design_loads.heat_rejection_kw,
        air_cooling_power_design_kw=design_loads.air_cooling_kw,
        chiller_power_design_kw=design_loads.chiller_kw,
        mechanical_power_design_kw=design_loads.mechanical_kw,
        pue_design=design_loads.pue,
        pue_annual=pue_annual,
        wue_l_per_kwh=water_l / it_kwh,
        redundancy=cooling_red,
        pue_by_outdoor_temp_c=pue_curve,
    )

    power_design = _power_chain(parts, site, design_loads, halls, rack_max_kw)  # rows of full racks
    bom = _bill_of_materials(parts, site, racks, tree, fabric, halls, power_design, cooling_design, design_loads)
    metrics = _site_metrics(parts, racks, nodes, domains, gpus, su_racks, halls, design_loads, power_design,
                            cooling_design, bom, facility_kwh, it_kwh, water_l)
    return SiteDesign(
        name=site.name,
        system=system.name,
        gpu=parts.gpu.name,
        region=parts.region.name,
        price_usd_per_kwh=parts.price_usd_per_kwh,
        carbon_g_per_kwh=parts.carbon_g_per_kwh,
        climate=parts.climate,
        rack=rack,
        halls=halls,
        power=power_design,
        cooling=cooling_design,
        fabric=fabric,
        bom=bom,
        metrics=metrics,
    )


def _cheapest_cdu(cdus: list[Cdu], liquid_kw: float, flow_lpm: float, redundancy: str) -> tuple[Cdu | None, int]:
    if liquid_kw <= 0:
        return None, 0
    options = []
    for cdu in cdus:
        required = cool.cdus_required(liquid_kw, flow_lpm, cdu.capacity_kw, cdu.flow_lpm_max)
        installed = cool.units_with_redundancy(required, redundancy)
        options.append((installed * cdu.cost_usd, cdu.name, cdu, required))
    _, _, cdu, required = min(options)
    return cdu, required


def _pue_by_outdoor_temp(parts: _Parts, rack_kw: float, network_kw: float, cdu_pump_kw: float, supply_c: float) -> list[tuple[float, float]]:
    """PUE against outdoor dry-bulb, with wet-bulb from the climate's own monthly dry/wet relation."""
    dry = np.asarray(parts.climate.monthly_dry_bulb_c)
    wet = np.asarray(parts.climate.monthly_wet_bulb_c)
    slope, intercept = np.polyfit(dry, wet, 1) if np.ptp(dry) > 0.5 else (0.8, float(np.mean(wet - 0.8 * dry)))
    curve = []
    for dry_bulb in range(-10, 50, 5):
        wet_bulb = min(float(dry_bulb), float(slope * dry_bulb + intercept))
        loads = _loads(parts, rack_kw, network_kw, cdu_pump_kw, float(dry_bulb), wet_bulb, supply_c)
        curve.append((float(dry_bulb), round(loads.pue, 4)))
    return curve


def _power_chain(parts: _Parts, site: SiteSpec, loads: _Loads, halls: list[HallDesign], rack_kw: float) -> PowerChainDesign:
    red = site.redundancy.power.value
    pf = parts.economics.power_factor
    stages: list[PowerStage] = []

    def add(stage, equipment, load_kw, rating_kw, max_loading, efficiency, loss_kw, redundancy, required=None):
        need = required if required is not None else power.units_required(load_kw, rating_kw, max_loading)
        installed = power.installed_units(need, redundancy)
        stages.append(
            PowerStage(
                stage=stage,
                equipment=equipment,
                units_required=need,
                units_installed=installed,
                unit_rating_kw=rating_kw,
                load_kw=load_kw,
                loading_fraction=power.loading_fraction(load_kw, installed, rating_kw, redundancy),
                max_loading_fraction=max_loading,
                efficiency=efficiency,
                loss_kw=loss_kw,
                redundancy=redundancy,
            )
        )

    busway_runs = sum(h.rows * math.ceil(h.racks_per_row * rack_kw / parts.busway.rating_kw - 1e-9) for h in halls)
    add("busway", parts.busway.name, loads.it_kw, parts.busway.rating_kw, 1.0, parts.busway.efficiency,
        loads.busway_loss_kw, red, required=busway_runs)
    add("ups", parts.ups.name, loads.it_kw + loads.busway_loss_kw, parts.ups.module_kw, parts.ups.max_loading_fraction,
        parts.ups.efficiency, loads.ups_loss_kw, red)
    mv_lv_load_kw = loads.it_kw + loads.busway_loss_kw + loads.ups_loss_kw + loads.mechanical_kw + loads.misc_kw
    add("mv_lv_transformer", parts.mv_lv.name, power.apparent_power_kva(mv_lv_load_kw, pf), parts.mv_lv.rating_mva * 1000,
        parts.mv_lv.max_loading_fraction, parts.mv_lv.efficiency, loads.mv_lv_loss_kw, red)
    substation_red = "N" if red == "N" else "N+1"
    add("substation_transformer", parts.substation.name,
        power.apparent_power_kva(mv_lv_load_kw + loads.mv_lv_loss_kw, pf), parts.substation.rating_mva * 1000,
        parts.substation.max_loading_fraction, parts.substation.efficiency, loads.substation_loss_kw, substation_red)
    stages.reverse()
    return PowerChainDesign(
        grid_mw=site.grid_mw if site.grid_mw is not None else loads.facility_kw / 1000.0,
        facility_power_peak_kw=loads.facility_kw,
        it_power_max_kw=loads.it_kw,
        it_power_nominal_kw=loads.it_kw,
        network_power_kw=loads.network_kw,
        mechanical_power_peak_kw=loads.mechanical_kw,
        misc_power_kw=loads.misc_kw,
        redundancy=red,
        stages=stages,
    )


def _bill_of_materials(parts, site, racks, tree, fabric, halls, power_design, cooling_design, loads) -> list[BomLine]:
    econ = parts.economics
    it_mw = loads.it_kw / 1000.0
    lines: list[BomLine] = []

    def add(category, item, count, unit, unit_cost):
        if count:
            lines.append(BomLine(category=category, item=item, count=count, unit=unit, unit_cost_usd=unit_cost, total_usd=count * unit_cost))

    add("compute", parts.system.name, racks, "rack", parts.system.rack_cost_usd)
    add("network", parts.switch.name, tree.switches, "switch", parts.switch.cost_usd)
    add("network", parts.transceiver.name, fabric.transceivers, "transceiver", parts.transceiver.cost_usd)
    add("network", parts.cable.name, fabric.cables, "link", parts.cable.cost_usd_per_link)
    cdus_by_model: dict[str, int] = {}
    for hall in halls:
        if hall.cdu_model:
            cdus_by_model[hall.cdu_model] = cdus_by_model.get(hall.cdu_model, 0) + hall.cdus_installed
    for name, count in sorted(cdus_by_model.items()):
        cdu = next(c for c in parts.cdus if c.name == name)
        add("cooling", name, count, "CDU", cdu.cost_usd)
    if cooling_design.liquid_heat_kw:
        add("cooling", parts.liquid_plant.name, cooling_design.heat_rejection_capacity_kw / 1000.0, "MW", parts.liquid_plant.cost_usd_per_mw)
    air_mw = cool.units_with_redundancy(math.ceil(cooling_design.air_heat_kw / HEAT_REJECTION_MODULE_KW - 1e-9), site.redundancy.cooling.value) * HEAT_REJECTION_MODULE_KW / 1000.0
    add("cooling", parts.air_plant.name + " (air side)", air_mw, "MW", parts.air_plant.cost_usd_per_mw)
    add("cooling", "mechanical fit-out", it_mw, "MW IT", econ.mechanical_fitout_usd_per_mw)
    unit_costs = {
        "busway": parts.busway.cost_usd,
        "ups": parts.ups.cost_usd,
        "mv_lv_transformer": parts.mv_lv.cost_usd,
        "substation_transformer": parts.substation.cost_usd,
    }
    for stage in power_design.stages:
        add("power", stage.equipment, stage.units_installed, "unit", unit_costs[stage.stage])
    add("power", "substation works", it_mw, "MW IT", econ.substation_usd_per_mw)
    add("power", "generators", it_mw, "MW IT", econ.generator_usd_per_mw)
    add("power", "electrical fit-out", it_mw, "MW IT", econ.electrical_fitout_usd_per_mw)
    add("building", "shell and core", it_mw, "MW IT", econ.building_usd_per_mw)
    return lines


def _site_metrics(parts, racks, nodes, domains, gpus, su_racks, halls, loads, power_design, cooling_design, bom,
                  facility_kwh, it_kwh, water_l) -> SiteMetrics:
    econ = parts.economics
    capex_by_category: dict[str, float] = {}
    for line in bom:
        capex_by_category[line.category] = capex_by_category.get(line.category, 0.0) + line.total_usd
    capex = sum(capex_by_category.values())
    it_capex = capex_by_category.get("compute", 0.0) + capex_by_category.get("network", 0.0)
    facility_capex = capex - it_capex
    energy_usd = energy_cost_usd_per_year(facility_kwh / 8760.0 / 1000.0, parts.price_usd_per_kwh)
    opex_by_category = {
        "energy": energy_usd,
        "maintenance": econ.maintenance_fraction_of_capex_per_year * capex,
        "staff": econ.staff_usd_per_mw_year * loads.it_kw / 1000.0,
    }
    opex = sum(opex_by_category.values())
    annual = annualised_capex_usd_per_year(it_capex, facility_capex, econ.discount_rate, econ.it_lifetime_years, econ.facility_lifetime_years) + opex
    assert facility_capex_usd_per_mw(econ) > 0
    return SiteMetrics(
        gpus=gpus,
        racks=racks,
        nodes=nodes,
        nvlink_domains=domains,
        scalable_units=len(su_racks),
        halls=len(halls),
        it_mw=loads.it_kw / 1000.0,
        it_mw_nominal=it_kwh / 8760.0 / 1000.0,
        facility_mw=loads.facility_kw / 1000.0,
        grid_mw=power_design.grid_mw,
        pue_design=loads.pue,
        pue_annual=cooling_design.pue_annual,
        wue_l_per_kwh=cooling_design.wue_l_per_kwh,
        peak_pflops={p.value: gpus * tflops / 1000.0 for p, tflops in parts.gpu.dense_tflops.items()},
        hbm_tb=gpus * parts.gpu.hbm_gb / 1000.0,
        capex_usd=capex,
        capex_usd_by_category=capex_by_category,
        opex_usd_per_year=opex,
        opex_usd_per_year_by_category=opex_by_category,
        energy_mwh_per_year=facility_kwh / 1000.0,
        carbon_t_per_year=facility_kwh * parts.carbon_g_per_kwh / 1e6,
        water_m3_per_year=water_l / 1000.0,
        usd_per_gpu_hour=usd_per_gpu_hour(annual, gpus),
        white_space_m2=sum(h.white_space_m2 for h in halls),
    )


def _design_metrics(sites: list[SiteDesign]) -> DesignMetrics:
    def total(attr: str) -> float:
        return sum(getattr(s.metrics, attr) for s in sites)

    it_mw = total("it_mw")
    energy = total("energy_mwh_per_year")
    it_energy = sum(s.metrics.it_mw_nominal * 8760.0 for s in sites)
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
