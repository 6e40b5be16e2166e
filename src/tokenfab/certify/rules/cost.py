"""Cost rules (``COST``): bill of materials and cost roll-ups."""

from __future__ import annotations

from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    _differs,
    _sites,
)


@rule(
    "COST-001",
    "cost",
    "bill-of-materials lines multiply out",
    "error",
    "A line whose total is not count × unit cost misprices the factory.",
    "total = count · unit cost",
    kind="consistency",
    basis="the design's own numbers: count × unit cost",
)
def bom_lines_multiply(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for k, line in enumerate(site.bom):
            derived = line.count * line.unit_cost_usd
            if _differs(line.total_usd, derived, 1e-6):
                yield finding(
                    "COST-001",
                    f"{path}.bom[{k}]",
                    line.total_usd,
                    derived,
                    "USD",
                    f"{line.item}: {line.count:,g} × ${line.unit_cost_usd:,.0f} = ${derived:,.0f}, stated ${line.total_usd:,.0f}",
                )


@rule(
    "COST-002",
    "cost",
    "capex is the sum of the bill of materials",
    "error",
    "Capex by category and in total must be the sum of what is bought, or the price quoted is not the price paid.",
    "capex_c = Σ_{lines in c} total; capex = Σ_c capex_c",
    kind="consistency",
    basis="the design's own numbers: capex as the sum of the BOM",
)
def capex_sums(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        by_category: dict[str, float] = {}
        for line in site.bom:
            by_category[line.category] = by_category.get(line.category, 0.0) + line.total_usd
        stated = site.metrics.capex_usd_by_category
        for category in sorted(set(by_category) | set(stated)):
            if _differs(stated.get(category, 0.0), by_category.get(category, 0.0), 1e-6):
                yield finding(
                    "COST-002",
                    f"{path}.metrics.capex_usd_by_category[{category}]",
                    stated.get(category, 0.0),
                    by_category.get(category, 0.0),
                    "USD",
                    f"{category} capex stated ${stated.get(category, 0.0):,.0f}; its lines sum to ${by_category.get(category, 0.0):,.0f}",
                )
        total = sum(by_category.values())
        if _differs(site.metrics.capex_usd, total, 1e-6):
            yield finding(
                "COST-002",
                f"{path}.metrics.capex_usd",
                site.metrics.capex_usd,
                total,
                "USD",
                f"capex stated ${site.metrics.capex_usd:,.0f}; the bill of materials sums to ${total:,.0f}",
            )


@rule(
    "COST-003",
    "cost",
    "opex and factory totals add up",
    "error",
    "Opex and factory totals are what budgets are set from; they must be the sums of their parts.",
    "opex = Σ_c opex_c; design totals = Σ sites",
    kind="consistency",
    basis="the design's own numbers: opex and factory totals",
)
def totals_add_up(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        derived = sum(site.metrics.opex_usd_per_year_by_category.values())
        if _differs(site.metrics.opex_usd_per_year, derived, 1e-6):
            yield finding(
                "COST-003",
                f"{path}.metrics.opex_usd_per_year",
                site.metrics.opex_usd_per_year,
                derived,
                "USD/yr",
                f"opex stated ${site.metrics.opex_usd_per_year:,.0f}/yr; its categories sum to ${derived:,.0f}/yr",
            )
    m = design.metrics
    for name in ("capex_usd", "opex_usd_per_year", "gpus", "racks", "it_mw", "facility_mw"):
        derived = sum(getattr(s.metrics, name) for s in design.sites)
        if _differs(float(getattr(m, name)), float(derived), 1e-6):
            yield finding(
                "COST-003",
                f"metrics.{name}",
                getattr(m, name),
                derived,
                name,
                f"factory {name} stated {getattr(m, name):,.6g}; the sites sum to {derived:,.6g}",
            )


@rule(
    "COST-004",
    "cost",
    "bill of materials buys what the design installs",
    "error",
    "Equipment the design installs but the bill of materials leaves out is equipment nobody orders or pays for.",
    "BOM count ≥ installed count (racks, switches, transceivers, CDUs, power units)",
    kind="consistency",
    basis="the design's own numbers: BOM counts against installed counts",
)
def bom_matches_design(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        counts: dict[str, float] = {}
        for line in site.bom:
            counts[line.item] = counts.get(line.item, 0.0) + line.count
        installed: dict[str, int] = {site.rack.system: site.metrics.racks}
        if site.fabric.items:  # every network's switches and modules, as counted (blueprint.netparts)
            for item in site.fabric.items:
                if item.kind in ("switch", "transceiver"):
                    installed[item.item] = installed.get(item.item, 0) + item.count
            compute = sum(
                i.count for i in site.fabric.items if i.network == "compute" and i.item == site.fabric.switch
            )
            tiers = sum(t.switches for t in site.fabric.tiers)
            if compute < tiers:
                yield finding(
                    "COST-004",
                    f"{path}.fabric.items",
                    compute,
                    tiers,
                    site.fabric.switch,
                    f"the fabric's tiers hold {tiers:,} × {site.fabric.switch}; its parts list counts {compute:,}",
                )
        else:
            installed[site.fabric.switch] = sum(t.switches for t in site.fabric.tiers)
            installed[site.fabric.transceiver] = site.fabric.transceivers
        for hall in site.halls:
            if hall.cdu_model:
                installed[hall.cdu_model] = installed.get(hall.cdu_model, 0) + hall.cdus_installed
        for stage in site.power.stages:
            installed[stage.equipment] = installed.get(stage.equipment, 0) + stage.units_installed
        for name, count in installed.items():
            if count and counts.get(name, 0.0) < count:
                yield finding(
                    "COST-004",
                    f"{path}.bom",
                    counts.get(name, 0.0),
                    count,
                    name,
                    f"the design installs {count:,} × {name}; the bill of materials buys {counts.get(name, 0.0):,g}",
                )
