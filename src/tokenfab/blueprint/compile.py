"""`compile(spec, catalog) -> Design`: the orchestrator that chains the blueprint's calculations.

For each site: resolve the catalog parts (`parts`); size IT power from the grid by iterating to a
consistent PUE; then a short list of steps, each a call into one module (pvlib's `run_model` habit):
layout (racks, SUs, halls), cooling (rack, CDUs, plant), network (fabric), loads (design day and year),
power (chain), cost (bill of materials, metrics). Pure and deterministic; counts, never one object per GPU.
"""

from __future__ import annotations

import math

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint import cost, layout, loads, network, power_chain
from tokenfab.blueprint.cooling import HEAT_REJECTION_MODULE_KW
from tokenfab.blueprint.design import Design, SiteDesign, design_size_problem
from tokenfab.blueprint.parts import CompileError, Parts, resolve
from tokenfab.catalog.load import Catalog
from tokenfab.spec import FactorySpec, SiteSpec

PUE_ITERATIONS = 6

__all__ = ["HEAT_REJECTION_MODULE_KW", "CompileError", "compile"]


def compile(spec: FactorySpec, catalog: Catalog) -> Design:  # noqa: A001 - the name the design doc uses
    """Compile a spec into a complete design; `CompileError` when it is larger than a design may hold."""
    sized = []
    for index, site in enumerate(spec.sites):
        parts = resolve(spec, index, site, catalog)
        sized.append((index, site, parts, _size_it(parts, site)))
    _check_size(sized)
    sites = [_compile_site(index, site, parts, domains) for index, site, parts, domains in sized]
    return Design(name=spec.name, spec=spec, sites=sites, metrics=cost.design_metrics(sites))


def _check_size(sized: list[tuple[int, SiteSpec, Parts, int]]) -> None:
    """Refuse, before building anything, a factory whose sites together exceed `MAX_DESIGN_GPUS`."""
    gpus = sum(domains * parts.system.gpus_per_nvlink_domain for _, _, parts, domains in sized)
    racks = sum(math.ceil(domains / parts.system.domains_per_rack) for _, _, parts, domains in sized)
    problem = design_size_problem(gpus, racks)
    if problem:
        raise CompileError(("sites",), f"these sites hold {problem}")


def _compile_site(index: int, site: SiteSpec, parts: Parts, domains: int) -> SiteDesign:
    design = _build_site(index, site, parts, domains)
    # `_size_it` estimates CDU pumps from the site total; halls round their CDUs up one by one, so the
    # built site can draw a little more. Step down until the design day fits the grid (certify PWR-007).
    while (
        site.grid_mw is not None
        and design.power.facility_power_peak_kw > site.grid_mw * 1000.0
        and domains > 1
    ):
        domains -= max(1, domains // 500)
        design = _build_site(index, site, parts, domains)
    return design


def _estimated_design_day(parts: Parts, site: SiteSpec, domains: int) -> loads.Loads:
    """Design-day loads of `domains` domains with CDU pumps estimated from the site total."""
    system = parts.system
    rack_kw = domains * system.rack_power_max_kw / system.domains_per_rack
    liquid_kw = rack_kw * system.liquid_heat_fraction
    cdus = math.ceil(liquid_kw / parts.cdus[0].capacity_kw - 1e-9) if liquid_kw else 0
    return loads.design_day_loads(
        parts, rack_kw, network.network_power_kw(parts, site, domains), cdus * parts.cdus[0].pump_power_kw
    )


def _size_it(parts: Parts, site: SiteSpec) -> int:
    """NVLink domains a site holds.

    With `it_mw`, the racks' provisioned power fits the IT budget. With `grid_mw`, the design-day facility
    power (IT + network + cooling + losses) fits the grid connection: iterate
    :math:`P_{IT} = P_{grid} / PUE(P_{IT})` to a fixed point, then step down until it fits and up while it
    still does.
    """
    system = parts.system
    if site.it_mw is not None:
        return layout.nvlink_domains_for_power(
            site.it_mw * 1000.0, system.rack_power_max_kw, system.domains_per_rack
        )
    assert site.grid_mw is not None  # the spec holds exactly one of grid_mw, it_mw
    grid_kw = site.grid_mw * 1000.0
    ratio = 1.3
    domains = 0
    for _ in range(PUE_ITERATIONS):
        domains = layout.nvlink_domains_for_power(
            grid_kw / ratio, system.rack_power_max_kw, system.domains_per_rack
        )
        if domains <= 0:
            return 0
        day = _estimated_design_day(parts, site, domains)
        ratio = day.facility_kw / (day.it_kw - day.network_kw)
    while domains > 0 and _estimated_design_day(parts, site, domains).facility_kw > grid_kw:
        domains -= max(1, domains // 500)
    # the fixed point can settle a step low (the fabric's fixed share raises a small site's ratio): fill up
    while (
        domains > 0
        and _estimated_design_day(parts, site, domains + max(1, domains // 500)).facility_kw <= grid_kw
    ):
        domains += max(1, domains // 500)
    return domains


def _build_site(index: int, site: SiteSpec, parts: Parts, domains: int) -> SiteDesign:
    """The steps of one site, each a call into the module that owns it."""
    _check_holds_a_domain(index, site, parts, domains)
    counts = layout.site_counts(parts.system, domains, site.limits.hall_it_mw_max)
    rack = cool.rack_design(parts)
    halls = layout.hall_designs(parts, site, counts, rack)
    fabric, tree = network.site_fabric(parts, site, len(counts.su_racks), domains)
    network_kw = fabric.switch_power_kw + fabric.transceiver_power_kw
    rack_kw_max = counts.racks * rack.power_max_kw * counts.fill
    rack_kw_nominal = counts.racks * rack.power_nominal_kw * counts.fill
    pump_kw = cool.cdu_pump_power_kw(parts, halls)
    parts = power_chain.settle_parts(
        parts, site, loads.design_day_loads(parts, rack_kw_max, network_kw, pump_kw), halls
    )
    design_day = loads.design_day_loads(parts, rack_kw_max, network_kw, pump_kw)
    annual = loads.annual_energy(
        parts, rack_kw_max, network_kw, pump_kw, loads.it_load_fractions(parts, site)
    )
    pue_curve = loads.pue_by_outdoor_temp(parts, rack_kw_nominal, network_kw, pump_kw)
    cooling = cool.cooling_design(
        parts, site.redundancy.cooling.value, halls, rack, design_day, annual, pue_curve
    )
    chain = power_chain.power_chain(parts, site, design_day, halls, rack.power_max_kw)
    bom = cost.bill_of_materials(parts, site, counts, tree, fabric, halls, chain, cooling, design_day)
    metrics = cost.site_metrics(parts, counts, halls, design_day, chain, cooling, bom, annual)
    return SiteDesign(
        name=site.name,
        system=parts.system.name,
        gpu=parts.gpu.name,
        region=parts.region.name,
        price_usd_per_kwh=parts.price_usd_per_kwh,
        carbon_g_per_kwh=parts.carbon_g_per_kwh,
        climate=parts.climate,
        rack=rack,
        halls=halls,
        power=chain,
        cooling=cooling,
        fabric=fabric,
        bom=bom,
        metrics=metrics,
    )


def _check_holds_a_domain(index: int, site: SiteSpec, parts: Parts, domains: int) -> None:
    if domains <= 0:
        system = parts.system
        need_kw = system.rack_power_max_kw / system.domains_per_rack
        raise CompileError(
            ("sites", index, "it_mw" if site.it_mw is not None else "grid_mw"),
            f"site too small for one NVLink domain of {system.name} (needs about {need_kw:.0f} kW of IT power)",
        )
