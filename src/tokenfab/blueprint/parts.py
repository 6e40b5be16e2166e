"""Resolving a site's catalog parts: the system, climate, region, prices and the facility equipment.

`resolve` is the first step of compiling a site: it turns the names in a spec into catalog entries and
raises `CompileError` (with the spec field path) for anything the catalog cannot supply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint import network
from tokenfab.blueprint.design import ClimateDesign
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import (
    Busway,
    Cable,
    Cdu,
    Climate,
    Economics,
    FabricKind,
    FacilityLimits,
    Generator,
    Gpu,
    HeatRejection,
    HeatRejectionKind,
    Market,
    Region,
    SourcedEntry,
    Standards,
    Switch,
    System,
    Transceiver,
    Transformer,
    Ups,
)
from tokenfab.spec import ClimateSpec, CoolingChoice, Distribution, FabricChoice, FactorySpec, SiteSpec

T = TypeVar("T", bound=SourcedEntry)
Loc = tuple[str | int, ...]
"""A field path in the spec, as pydantic reports one: ("sites", 0, "power")."""


class CompileError(ValueError):
    """A spec that cannot be built; `loc` is the field path in the spec that causes it."""

    def __init__(self, loc: Sequence[str | int], message: str):
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message


def _it_mw(site: SiteSpec) -> float:
    """The site's `it_mw`, for a site sized by IT power (the spec holds exactly one of grid_mw, it_mw)."""
    if site.it_mw is None:
        raise CompileError(("sites",), f"site {site.name} has neither grid_mw nor it_mw")
    return site.it_mw


@dataclass(frozen=True)
class Parts:
    """The catalog entries one site is built from."""

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
    standards: Standards
    catalog: Catalog
    """The whole catalog, for parts a step picks by its own rule (network modules, management switches)."""
    cdus: list[Cdu]
    liquid_plant: HeatRejection
    air_plant: HeatRejection
    mv_lv: Transformer
    substation: Transformer | None
    """None when the site takes a utility MV service (no owned HV/MV substation)."""
    ups: Ups
    busway: Busway
    limits: FacilityLimits
    generator: Generator | None
    market: Market | None
    dc: bool
    """800 V DC distribution: SSTs feed DC busway, DC storage replaces the UPS; MV/LV transformers feed mechanical."""
    sst: Transformer | None
    trim_chiller: bool
    rack_supply_temp_c: float | None = None
    """Coolant supply at the rack: the spec's (a vendor's figure for this deployment) or the system's maximum."""
    mv_lv_options: tuple[Transformer, ...] = ()
    substation_options: tuple[Transformer, ...] = ()
    ups_options: tuple[Ups, ...] = ()
    generator_options: tuple[Generator, ...] = ()

    @property
    def facility_supply_temp_c(self) -> float:
        """Facility-water supply: the rack's supply (the spec's or the system's maximum) less the CDU approach."""
        rack_c = (
            self.rack_supply_temp_c if self.rack_supply_temp_c is not None else self.system.supply_temp_max_c
        )
        return rack_c - self.cdus[0].approach_k


def resolve(spec: FactorySpec, index: int, site: SiteSpec, catalog: Catalog) -> Parts:
    """Catalog parts of `spec.sites[index]`."""
    loc = ("sites", index)
    system = lookup(catalog, "systems", site.system, System, (*loc, "system"))
    gpu = catalog.typed("gpus", system.gpu, Gpu)
    climate, climate_region, climate_market = resolve_climate(site, catalog, (*loc, "climate"))
    region_name = site.region or spec.region or climate_region
    if region_name is None:
        raise CompileError((*loc, "region"), "a custom climate needs a region (site or campus `region`)")
    region = lookup(catalog, "regions", region_name, Region, (*loc, "region"))
    economics = lookup(catalog, "economics", spec.economics, Economics, ("economics",))
    fabric_kind = system.default_fabric if site.fabric == FabricChoice.auto else FabricKind(site.fabric.value)
    switches = sorted(
        (s for s in catalog.all("switches", Switch) if s.fabric == fabric_kind), key=lambda s: s.name
    )
    if not switches:
        raise CompileError((*loc, "fabric"), f"no switch in the catalog for fabric {fabric_kind.value}")
    switch = network.choose_compute_switch(switches, system, site.fabric_optics)
    if switch is None:
        raise CompileError(
            (*loc, "fabric_optics"),
            f"no co-packaged-optics switch in the catalog for fabric {fabric_kind.value}",
        )
    standards = lookup(catalog, "standards", "default", Standards, loc)
    link_gbps = min(system.scaleout_nic_gbps, switch.port_gbps)
    transceivers = sorted(
        catalog.all("transceivers", Transceiver), key=lambda t: (t.gbps < link_gbps, t.gbps)
    )
    cables = sorted(catalog.all("cables", Cable), key=lambda c: c.name)
    cdus = sorted(catalog.all("cdus", Cdu), key=lambda c: c.capacity_kw)
    plants = {p.kind: p for p in sorted(catalog.all("heat_rejection", HeatRejection), key=lambda p: p.name)}
    transformers = sorted(catalog.all("transformers", Transformer), key=lambda t: (t.rating_mva, t.name))
    mv_lv = [t for t in transformers if t.stage == "mv_lv"]
    substations = [t for t in transformers if t.stage == "substation"]
    ssts = [t for t in transformers if t.stage == "sst"]
    limits = next(
        iter(sorted(catalog.all("facility_limits", FacilityLimits), key=lambda e: e.name != "default")), None
    )
    if not (transceivers and cables and cdus and mv_lv and substations and limits):
        raise CompileError(
            loc,
            "the catalog lacks facility equipment (transceivers, cables, CDUs, transformers, facility limits)",
        )
    if HeatRejectionKind.chiller not in plants:
        raise CompileError(loc, "the catalog has no chiller plant")
    dc = _wants_dc(site, system, limits)
    ups, busway, sst = _distribution_parts(catalog, site, system, dc, ssts, loc)
    if site.coolant_supply_temp_c is not None and site.coolant_supply_temp_c > system.supply_temp_max_c:
        raise CompileError(
            (*loc, "coolant_supply_temp_c"),
            f"{site.coolant_supply_temp_c:g} °C is above {system.name}'s {system.supply_temp_max_c:g} °C supply limit",
        )
    rack_supply_c = (
        site.coolant_supply_temp_c if site.coolant_supply_temp_c is not None else system.supply_temp_max_c
    )
    facility_supply_c = rack_supply_c - cdus[0].approach_k
    liquid_plant = choose_liquid_plant(site, plants, facility_supply_c, climate, (*loc, "cooling"))
    site_mw = site.grid_mw if site.grid_mw is not None else _it_mw(site) * 1.3
    generators = sorted(catalog.all("generators", Generator), key=lambda g: g.rating_kw)
    if site.power.generators and not generators:
        raise CompileError((*loc, "power", "generators"), "the catalog has no generator set")
    market = _market(site, catalog, climate_market, (*loc, "market"))
    return Parts(
        system=system,
        gpu=gpu,
        climate=climate,
        region=region,
        economics=economics,
        price_usd_per_kwh=site.price_usd_per_kwh
        if site.price_usd_per_kwh is not None
        else region.price_usd_per_kwh_mid,
        carbon_g_per_kwh=site.carbon_g_per_kwh
        if site.carbon_g_per_kwh is not None
        else region.grid_carbon_g_per_kwh,
        switch=switch,
        transceiver=transceivers[0],
        cable=next((c for c in cables if c.kind == "fiber"), cables[0]),
        standards=standards,
        catalog=catalog,
        cdus=cdus,
        liquid_plant=liquid_plant,
        air_plant=plants[HeatRejectionKind.chiller],
        mv_lv=mv_lv[-1],
        substation=substations[-1] if site_mw > limits.mv_service_max_mw else None,
        ups=ups,
        busway=busway,
        limits=limits,
        generator=generators[-1] if site.power.generators else None,
        market=market,
        dc=dc,
        sst=sst,
        trim_chiller=_wants_trim_chiller(site, liquid_plant, facility_supply_c, climate),
        rack_supply_temp_c=rack_supply_c,
        mv_lv_options=tuple(mv_lv),
        substation_options=tuple(substations),
        ups_options=tuple(
            u
            for u in catalog.all("ups", Ups)
            if u.name.startswith("dc-") == dc and u.efficiency == ups.efficiency
        ),
        generator_options=tuple(generators) if site.power.generators else (),
    )


def _wants_dc(site: SiteSpec, system: System, limits: FacilityLimits) -> bool:
    if site.power.distribution == Distribution.auto:
        return system.rack_power_max_kw >= limits.dc_800v_rack_kw_min
    return site.power.distribution == Distribution.dc_800v


def _distribution_parts(
    catalog: Catalog, site: SiteSpec, system: System, dc: bool, ssts: list[Transformer], loc: Loc
) -> tuple[Ups, Busway, Transformer | None]:
    """UPS (or DC storage), busway and SST for AC or 800 V DC distribution.

    The busway is the catalog run of the right kind that feeds a full row in the fewest runs, cost breaking ties.
    """
    kind = "dc" if dc else "ac"
    busways = [b for b in catalog.all("busways", Busway) if b.kind == kind]
    storage = sorted(catalog.all("ups", Ups), key=lambda u: (u.name.startswith("dc-") != dc, -u.module_kw))
    if not busways or not storage or (dc and not ssts):
        raise CompileError(
            (*loc, "power", "distribution"),
            f"the catalog lacks {kind.upper()} distribution equipment (busway, UPS or storage, SST)",
        )
    row_kw = site.limits.racks_per_row * system.rack_power_max_kw

    def runs_cost(b: Busway) -> tuple[float, str]:
        runs = -(-row_kw // b.rating_kw)
        return runs * b.cost_usd, b.name

    return storage[0], min(busways, key=runs_cost), (ssts[-1] if dc else None)


def _market(site: SiteSpec, catalog: Catalog, climate_market: str | None, loc: Loc) -> Market | None:
    name = site.market or climate_market
    return lookup(catalog, "markets", name, Market, loc) if name else None


def _wants_trim_chiller(
    site: SiteSpec, plant: HeatRejection, supply_c: float, climate: ClimateDesign
) -> bool:
    """A trim chiller beside dry / hybrid coolers: as the spec says, else when the design day needs one."""
    if plant.kind not in (HeatRejectionKind.dry_cooler, HeatRejectionKind.hybrid_dry_cooler):
        return False
    if site.trim_chiller is not None:
        return site.trim_chiller
    return not cool.heat_rejection_feasible(
        plant, supply_c, climate.design_dry_bulb_c, climate.design_wet_bulb_c
    )


def lookup(catalog: Catalog, kind: str, name: str, model: type[T], loc: Loc) -> T:
    try:
        return catalog.typed(kind, name, model)
    except KeyError as exc:
        raise CompileError(loc, str(exc.args[0])) from None


def resolve_climate(
    site: SiteSpec, catalog: Catalog, loc: Loc
) -> tuple[ClimateDesign, str | None, str | None]:
    if isinstance(site.climate, str):
        named = lookup(catalog, "climates", site.climate, Climate, loc)
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
            named.market,
        )
    given: ClimateSpec = site.climate
    dry = given.monthly_dry_bulb_c or seasonal_profile(given.design_dry_bulb_c - 6.0, 9.0)
    wet = given.monthly_wet_bulb_c or [
        min(d, t) for d, t in zip(dry, seasonal_profile(given.design_wet_bulb_c - 5.0, 8.0), strict=True)
    ]
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
        None,
    )


def seasonal_profile(warmest_month_c: float, amplitude_k: float) -> list[float]:
    """Monthly means peaking in July (northern hemisphere), for a climate given only by its design day."""
    months = np.arange(12)
    return [
        round(float(warmest_month_c - amplitude_k * (1 - np.cos(2 * np.pi * (m - 6) / 12))), 2)
        for m in months
    ]


def choose_liquid_plant(
    site: SiteSpec,
    plants: dict[HeatRejectionKind, HeatRejection],
    supply_c: float,
    climate: ClimateDesign,
    loc: Loc,
) -> HeatRejection:
    if site.cooling != CoolingChoice.auto:
        kind = HeatRejectionKind(site.cooling.value)
        if kind not in plants:
            raise CompileError(loc, f"no {kind.value} plant in the catalog")
        return plants[kind]
    order = (
        HeatRejectionKind.dry_cooler,
        HeatRejectionKind.hybrid_dry_cooler,
        HeatRejectionKind.cooling_tower,
        HeatRejectionKind.chiller,
    )
    for kind in order:
        plant = plants.get(kind)
        if plant and cool.heat_rejection_feasible(
            plant, supply_c, climate.design_dry_bulb_c, climate.design_wet_bulb_c
        ):
            return plant
    return plants[HeatRejectionKind.chiller]
