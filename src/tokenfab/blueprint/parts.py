"""Resolving a site's catalog parts: the system, climate, region, prices and the facility equipment.

`resolve` is the first step of compiling a site: it turns the names in a spec into catalog entries and
raises `CompileError` (with the spec field path) for anything the catalog cannot supply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    Gpu,
    HeatRejection,
    HeatRejectionKind,
    Region,
    Standards,
    Switch,
    System,
    Transceiver,
    Transformer,
    Ups,
)
from tokenfab.spec import ClimateSpec, CoolingChoice, FabricChoice, FactorySpec, SiteSpec


class CompileError(ValueError):
    """A spec that cannot be built; `loc` is the field path in the spec that causes it."""

    def __init__(self, loc: Sequence[str | int], message: str):
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message


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
    substation: Transformer
    ups: Ups
    busway: Busway

    @property
    def facility_supply_temp_c(self) -> float:
        """Facility-water supply: the rack's maximum supply less the CDU approach."""
        return self.system.supply_temp_max_c - self.cdus[0].approach_k


def resolve(spec: FactorySpec, index: int, site: SiteSpec, catalog: Catalog) -> Parts:
    """Catalog parts of `spec.sites[index]`."""
    loc = ("sites", index)
    system = lookup(catalog, "systems", site.system, System, (*loc, "system"))
    gpu = catalog.typed("gpus", system.gpu, Gpu)
    climate, climate_region = resolve_climate(site, catalog, (*loc, "climate"))
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
        raise CompileError((*loc, "fabric_optics"), f"no co-packaged-optics switch in the catalog for fabric {fabric_kind.value}")
    standards = lookup(catalog, "standards", "default", Standards, loc)
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
    liquid_plant = choose_liquid_plant(site, plants, facility_supply_c, climate, (*loc, "cooling"))
    return Parts(
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
        standards=standards,
        catalog=catalog,
        cdus=cdus,
        liquid_plant=liquid_plant,
        air_plant=plants[HeatRejectionKind.chiller],
        mv_lv=max(mv_lv, key=lambda t: t.rating_mva),
        substation=max(substations, key=lambda t: t.rating_mva),
        ups=max(ups, key=lambda u: u.module_kw),
        busway=max(busways, key=lambda b: b.rating_kw),
    )


def lookup(catalog: Catalog, kind: str, name: str, model, loc):
    try:
        return catalog.typed(kind, name, model)
    except KeyError as exc:
        raise CompileError(loc, str(exc.args[0])) from None


def resolve_climate(site: SiteSpec, catalog: Catalog, loc) -> tuple[ClimateDesign, str | None]:
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
        )
    given: ClimateSpec = site.climate
    dry = given.monthly_dry_bulb_c or seasonal_profile(given.design_dry_bulb_c - 6.0, 9.0)
    wet = given.monthly_wet_bulb_c or [min(d, t) for d, t in zip(dry, seasonal_profile(given.design_wet_bulb_c - 5.0, 8.0), strict=True)]
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


def seasonal_profile(warmest_month_c: float, amplitude_k: float) -> list[float]:
    """Monthly means peaking in July (northern hemisphere), for a climate given only by its design day."""
    months = np.arange(12)
    return [round(float(warmest_month_c - amplitude_k * (1 - np.cos(2 * np.pi * (m - 6) / 12))), 2) for m in months]


def choose_liquid_plant(site, plants, supply_c: float, climate: ClimateDesign, loc) -> HeatRejection:
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
