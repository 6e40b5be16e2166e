"""Redundancy rules (``RED``): N, N+1, 2N along the power and cooling paths."""

from __future__ import annotations

import math

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint import power, power_chain
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    _carrying_units,
    _cdu,
    _exceeds,
    _rack_flow_needed_lpm,
    _requested,
    _sites,
    _stage,
    _strength,
)


@rule(
    "RED-001",
    "redundancy",
    "power stages install their redundancy",
    "error",
    "A stage with fewer units than N plus its redundancy loses load when one unit fails or is maintained.",
    "n_installed ≥ N + 1 (N+1), 2N (2N); blocks: n_carrying ≥ N; N = ⌈P / (P_unit f_max)⌉",
    kind="consistency",
    basis="the compiler's own rule: N from loading limits plus the redundancy's spares",
)
def power_stage_units(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for stage in site.power.stages:
            if stage.stage == "busway":
                needed = stage.units_required
            else:
                needed = max(
                    stage.units_required,
                    power.units_required(stage.load_kw, stage.unit_rating_kw, stage.max_loading_fraction),
                )
            if stage.units_carrying is not None:
                # block designs: the units left after the worst failure must still be N, and spares must exist
                spares_ok = stage.redundancy == "N" or stage.units_installed > stage.units_carrying
                if stage.units_carrying >= needed and spares_ok:
                    continue
                required = needed + (0 if stage.redundancy == "N" else 1)
            else:
                required = cool.units_with_redundancy(needed, stage.redundancy)
            if stage.units_installed < required or (
                stage.units_carrying is not None and stage.units_carrying < needed
            ):
                yield finding(
                    "RED-001",
                    f"{path}.power.stage[{stage.stage}]",
                    stage.units_installed,
                    required,
                    "units",
                    f"{stage.stage} has {stage.units_installed} × {stage.equipment}; N = {needed} with {stage.redundancy} needs {required}",
                )


@rule(
    "RED-002",
    "redundancy",
    "power redundancy as requested",
    "error",
    "A buyer who asked for 2N and got N+1 has a facility that drops load during maintenance.",
    "redundancy(stage) ≥ requested (substation: N+1 suffices for 2N)",
    kind="consistency",
    basis="the spec's own requested redundancy",
)
def power_redundancy_as_requested(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        requested = _requested(design, i)
        if requested is None:
            continue
        want = power_chain.site_topology(design.spec.sites[i])
        if site.power.redundancy != want:
            yield finding(
                "RED-002",
                f"{path}.power",
                site.power.redundancy,
                want,
                "",
                f"power chain states {site.power.redundancy}; the spec asks for {want}",
            )
        for stage in site.power.stages:
            needed = want
            if stage.stage == "substation_transformer" or (
                stage.stage == "mv_lv_transformer" and _stage(site, "sst")
            ):
                needed = "N" if want == "N" else "N+1"
            elif stage.stage == "busway":
                needed = "2N" if want.split(" ")[0] in power_chain.DUAL_FEED_TOPOLOGIES else "N"
            if _strength(stage.redundancy) < _strength(needed):
                yield finding(
                    "RED-002",
                    f"{path}.power.stage[{stage.stage}]",
                    stage.redundancy,
                    needed,
                    "",
                    f"{stage.stage} is {stage.redundancy}; {want} power needs {needed} here",
                )


@rule(
    "RED-003",
    "redundancy",
    "2N sides balanced",
    "error",
    "With 2N each side must carry the whole load; an odd unit count leaves one side short.",
    "n_installed even and ≥ 2N",
    kind="engineering",
    basis="2N practice: two equal independent sides (Uptime Institute Tier IV)",
)
def two_n_sides_balanced(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for stage in site.power.stages:
            if stage.redundancy == "2N" and stage.units_installed % 2:
                yield finding(
                    "RED-003",
                    f"{path}.power.stage[{stage.stage}]",
                    stage.units_installed,
                    stage.units_installed + 1,
                    "units",
                    f"{stage.stage} has {stage.units_installed} units, which cannot split into two equal sides",
                )


@rule(
    "RED-004",
    "redundancy",
    "CDU redundancy as requested",
    "error",
    "A hall without the requested spare CDU loses cooling capacity on the first CDU failure or service.",
    "n_CDU ≥ N_CDU + 1 (N+1) or 2 N_CDU (2N); N_CDU = max(⌈Q/Q_CDU⌉, ⌈V̇/V̇_CDU⌉)",
    kind="consistency",
    basis="the compiler's own rule: blueprint.cooling.cdus_required plus spares",
)
def cdu_redundancy(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        requested = _requested(design, i)
        want = requested.cooling.value if requested else site.cooling.redundancy
        if site.cooling.redundancy != want:
            yield finding(
                "RED-004",
                f"{path}.cooling",
                site.cooling.redundancy,
                want,
                "",
                f"cooling plant states {site.cooling.redundancy}; the spec asks for {want}",
            )
        for h, hall in enumerate(site.halls):
            cdu = _cdu(site, hall.cdu_model, catalog)
            if cdu is None or hall.liquid_heat_kw <= 0:
                continue
            flow = max(hall.coolant_flow_lpm, _rack_flow_needed_lpm(site, hall.liquid_heat_kw))
            needed = cool.cdus_required(hall.liquid_heat_kw, flow, cdu.capacity_kw, cdu.flow_lpm_max)
            required = cool.units_with_redundancy(needed, want)
            if hall.cdus_installed < required:
                yield finding(
                    "RED-004",
                    f"{path}.hall[{h}]",
                    hall.cdus_installed,
                    required,
                    "CDUs",
                    f"{hall.liquid_heat_kw:,.0f} kW and {flow:,.0f} L/min need {needed} × {cdu.name}; {want} means {required}, "
                    f"the hall has {hall.cdus_installed}",
                )


@rule(
    "RED-005",
    "redundancy",
    "heat rejection capacity with redundancy",
    "error",
    "The outdoor plant must reject all liquid heat with a module (N+1) or a side (2N) out of service.",
    "(n_mod − spare) · Q_mod ≥ Q_liquid + P_rejection",
    kind="consistency",
    basis="the compiler's own rule: heat rejection modules of the size the design states",
)
def heat_rejection_redundancy(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        c = site.cooling
        if c.liquid_heat_kw <= 0:
            continue
        requested = _requested(design, i)
        want = requested.cooling.value if requested else c.redundancy
        module_kw = c.heat_rejection_module_kw
        modules = math.floor(c.heat_rejection_capacity_kw / module_kw + 1e-9)
        capacity = _carrying_units(modules, want) * module_kw
        load = c.liquid_heat_kw + c.heat_rejection_power_design_kw
        if _exceeds(load, capacity):
            yield finding(
                "RED-005",
                f"{path}.cooling",
                capacity,
                load,
                "kW",
                f"{modules} × {module_kw:,.0f} kW modules of {c.heat_rejection} reject {capacity:,.0f} kW with {want}; "
                f"the plant must reject {load:,.0f} kW",
            )


@rule(
    "RED-006",
    "redundancy",
    "power path has redundancy",
    "warning",
    "With N power every failure or maintenance of a UPS, transformer or busway drops racks.",
    "redundancy(power) ≠ N",
    kind="engineering",
    basis="concurrent maintainability (Uptime Institute Tier III needs redundant power paths)",
)
def power_path_redundant(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        if site.power.redundancy == "N":
            yield finding("RED-006", f"{path}.power", "N", "N+1", "", "power chain has no redundancy (N)")


@rule(
    "RED-007",
    "redundancy",
    "cooling path has redundancy",
    "warning",
    "With N cooling every CDU or heat rejection failure throttles racks.",
    "redundancy(cooling) ≠ N",
    kind="engineering",
    basis="concurrent maintainability (Uptime Institute Tier III needs redundant cooling)",
)
def cooling_path_redundant(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        if site.cooling.redundancy == "N" and site.cooling.liquid_heat_kw > 0:
            yield finding("RED-007", f"{path}.cooling", "N", "N+1", "", "cooling plant has no redundancy (N)")
