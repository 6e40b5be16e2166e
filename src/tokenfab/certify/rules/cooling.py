"""Cooling rules (``COOL``): CDUs, coolant temperatures and flows, heat rejection, air side, WUE."""

from __future__ import annotations

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import Cdu, HeatRejection, HeatRejectionKind, System
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    RELATIVE_TOLERANCE,
    _carrying_units,
    _cdu,
    _differs,
    _economics,
    _entry,
    _exceeds,
    _rack_flow_needed_lpm,
    _requested,
    _sites,
)


@rule(
    "COOL-001",
    "cooling",
    "CDU heat capacity with the requested redundancy",
    "error",
    "With one CDU (N+1) or one side (2N) out, the rest must still carry the hall's liquid heat or the GPUs throttle.",
    "(n_CDU − spare) · Q_CDU ≥ Q_liquid,hall",
    kind="engineering",
    basis="vendor rating: CDU heat capacity (catalog cdus)",
)
def cdu_heat_capacity(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        requested = _requested(design, i)
        redundancy = requested.cooling.value if requested else site.cooling.redundancy
        for h, hall in enumerate(site.halls):
            if hall.liquid_heat_kw <= 0:
                continue
            cdu = _cdu(site, hall.cdu_model, catalog)
            if cdu is None:
                yield finding(
                    "COOL-001",
                    f"{path}.hall[{h}]",
                    hall.cdu_model or "none",
                    "a catalog CDU",
                    "",
                    f"hall carries {hall.liquid_heat_kw:,.0f} kW of liquid heat but names no known CDU ({hall.cdu_model!r})",
                )
                continue
            carrying = _carrying_units(hall.cdus_installed, redundancy)
            capacity = carrying * cdu.capacity_kw
            if _exceeds(hall.liquid_heat_kw, capacity):
                yield finding(
                    "COOL-001",
                    f"{path}.hall[{h}]",
                    capacity,
                    hall.liquid_heat_kw,
                    "kW",
                    f"{hall.cdus_installed} × {cdu.name} with {redundancy} leave {carrying} carrying {capacity:,.0f} kW, "
                    f"short of the hall's {hall.liquid_heat_kw:,.0f} kW liquid heat",
                )


@rule(
    "COOL-002",
    "cooling",
    "CDU flow capacity with the requested redundancy",
    "error",
    "CDU pumps short of the hall's coolant flow starve the far racks of coolant.",
    "(n_CDU − spare) · V̇_CDU,max ≥ max(V̇_hall, Q_liquid/(ρ c_p ΔT))",
    kind="engineering",
    basis="vendor rating: CDU pump flow (catalog cdus)",
)
def cdu_flow_capacity(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        requested = _requested(design, i)
        redundancy = requested.cooling.value if requested else site.cooling.redundancy
        for h, hall in enumerate(site.halls):
            cdu = _cdu(site, hall.cdu_model, catalog)
            if hall.liquid_heat_kw <= 0 or cdu is None:
                continue
            needed = max(hall.coolant_flow_lpm, _rack_flow_needed_lpm(site, hall.liquid_heat_kw))
            capacity = _carrying_units(hall.cdus_installed, redundancy) * cdu.flow_lpm_max
            if _exceeds(needed, capacity):
                yield finding(
                    "COOL-002",
                    f"{path}.hall[{h}]",
                    capacity,
                    needed,
                    "L/min",
                    f"CDUs that remain with {redundancy} pump {capacity:,.0f} L/min, short of the {needed:,.0f} L/min the hall needs",
                )


@rule(
    "COOL-003",
    "cooling",
    "rack coolant supply within the system's class",
    "error",
    "Coolant warmer than the system's liquid-cooling class allows makes the GPUs throttle or shut down.",
    "T_rack,supply ≤ T_system,max (catalog coolant class)",
    kind="engineering",
    basis="vendor limit: the system's liquid-cooling class (catalog systems)",
)
def rack_supply_within_class(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        if r.liquid_heat_kw <= 0:
            continue
        system = _entry(catalog, "systems", r.system, System)
        limit = min(r.supply_temp_max_c, system.supply_temp_max_c) if system else r.supply_temp_max_c
        supply = max(r.supply_temp_c, site.cooling.rack_supply_temp_c)
        if _exceeds(supply, limit):
            label = f" ({system.coolant_class})" if system else ""
            yield finding(
                "COOL-003",
                f"{path}.rack",
                supply,
                limit,
                "°C",
                f"rack coolant supply {supply:.1f} °C exceeds the {r.system} limit {limit:.1f} °C{label}",
            )


@rule(
    "COOL-004",
    "cooling",
    "heat rejection holds the supply temperature on the design day",
    "error",
    "A plant that cannot reach the facility supply temperature on the hottest design day lets the coolant drift above the racks' limit.",
    "T_db + a_dry ≤ T_sup (dry cooler); T_wb + a_tower ≤ T_sup (tower); min(T_db + a_dry, T_wb + a_wet) ≤ T_sup (hybrid); "
    "else a trim chiller of ≥ f_trim Q_liquid",
    kind="engineering",
    basis="design-day climate (ASHRAE 0.4 % design conditions) and the plant's approach (catalog)",
)
def heat_rejection_holds_supply(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        c = site.cooling
        plant = _entry(catalog, "heat_rejection", c.heat_rejection, HeatRejection)
        if plant is None:
            yield finding(
                "COOL-004",
                f"{path}.cooling",
                c.heat_rejection,
                "a catalog plant",
                "",
                f"heat rejection {c.heat_rejection!r} is not in the catalog",
            )
            continue
        if c.liquid_heat_kw <= 0:
            continue
        climate = site.climate
        trim_share = cool.trim_fraction(
            plant, c.facility_supply_temp_c, climate.design_dry_bulb_c, climate.design_wet_bulb_c
        )
        if trim_share > 0 and c.trim_chiller_kw >= trim_share * c.liquid_heat_kw * (1 - 1e-6):
            continue  # a trim chiller sized for the design day's shortfall holds the supply temperature
        if not cool.heat_rejection_feasible(
            plant, c.facility_supply_temp_c, climate.design_dry_bulb_c, climate.design_wet_bulb_c
        ):
            outdoor = (
                climate.design_dry_bulb_c
                if plant.kind == HeatRejectionKind.dry_cooler
                else climate.design_wet_bulb_c
            )
            bulb = "dry" if plant.kind == HeatRejectionKind.dry_cooler else "wet"
            yield finding(
                "COOL-004",
                f"{path}.cooling",
                outdoor + plant.approach_k,
                c.facility_supply_temp_c,
                "°C",
                f"{plant.name} reaches {outdoor + plant.approach_k:.1f} °C on the design day ({bulb}-bulb {outdoor:.1f} °C + "
                f"{plant.approach_k:g} K approach), above the {c.facility_supply_temp_c:.1f} °C facility supply",
            )


@rule(
    "COOL-005",
    "cooling",
    "facility supply plus CDU approach within the rack limit",
    "error",
    "The CDU adds its approach to the facility water; the rack sees facility supply plus approach.",
    "T_facility,supply + a_CDU ≤ T_rack,max",
    kind="engineering",
    basis="vendor figures: CDU approach and the rack's supply limit (catalog)",
)
def cdu_approach_honoured(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        c = site.cooling
        cdu = _entry(catalog, "cdus", c.cdu_model, Cdu)
        if cdu is None or c.liquid_heat_kw <= 0:
            continue
        at_rack = c.facility_supply_temp_c + cdu.approach_k
        if _exceeds(at_rack, site.rack.supply_temp_max_c):
            yield finding(
                "COOL-005",
                f"{path}.cooling",
                at_rack,
                site.rack.supply_temp_max_c,
                "°C",
                f"facility supply {c.facility_supply_temp_c:.1f} °C + {cdu.approach_k:g} K CDU approach = {at_rack:.1f} °C at the rack, "
                f"above its {site.rack.supply_temp_max_c:.1f} °C limit",
            )


@rule(
    "COOL-006",
    "cooling",
    "rack flow within the manifold's range",
    "error",
    "Below the manifold's minimum flow the cold plates run hot; above its maximum, erosion and pressure drop rise.",
    "V̇_min ≤ V̇_rack ≤ V̇_max",
    kind="engineering",
    basis="vendor limit: the rack manifold's flow range (catalog systems)",
)
def rack_flow_within_manifold(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        if r.liquid_heat_kw <= 0:
            continue
        if _exceeds(r.coolant_flow_lpm, r.manifold_flow_lpm_max):
            yield finding(
                "COOL-006",
                f"{path}.rack",
                r.coolant_flow_lpm,
                r.manifold_flow_lpm_max,
                "L/min",
                f"rack flow {r.coolant_flow_lpm:.1f} L/min exceeds the manifold maximum {r.manifold_flow_lpm_max:.1f} L/min",
            )
        elif _exceeds(r.manifold_flow_lpm_min, r.coolant_flow_lpm):
            yield finding(
                "COOL-006",
                f"{path}.rack",
                r.coolant_flow_lpm,
                r.manifold_flow_lpm_min,
                "L/min",
                f"rack flow {r.coolant_flow_lpm:.1f} L/min is below the manifold minimum {r.manifold_flow_lpm_min:.1f} L/min",
            )


@rule(
    "COOL-007",
    "cooling",
    "rack flow carries the rack's liquid heat",
    "error",
    "Too little flow for the heat raises the coolant temperature rise and the GPUs' temperature.",
    "V̇_rack ≥ Q_liquid / (ρ c_p ΔT)",
    kind="consistency",
    basis="the compiler's own rule: flow from heat at the design ΔT (blueprint.cooling.coolant_flow_lpm)",
)
def rack_flow_carries_heat(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        if r.liquid_heat_kw <= 0:
            continue
        needed = _rack_flow_needed_lpm(site, r.liquid_heat_kw)
        if _exceeds(needed, r.coolant_flow_lpm * (1 + RELATIVE_TOLERANCE)):
            yield finding(
                "COOL-007",
                f"{path}.rack",
                r.coolant_flow_lpm,
                needed,
                "L/min",
                f"{r.liquid_heat_kw:.1f} kW at ΔT {site.cooling.coolant_delta_t_k:g} K needs {needed:.1f} L/min; the rack gets {r.coolant_flow_lpm:.1f}",
            )


@rule(
    "COOL-008",
    "cooling",
    "hall heat balances its IT power",
    "error",
    "Every kW drawn becomes heat; heat that is not assigned to liquid or air is heat nobody removes.",
    "Q_liquid + Q_air = P_hall; Q_liquid = P_hall · f_liquid",
    kind="consistency",
    basis="the design's own numbers: heat balance of the hall",
)
def hall_heat_balances(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        fraction = site.rack.liquid_heat_kw / site.rack.power_max_kw if site.rack.power_max_kw else 0.0
        for h, hall in enumerate(site.halls):
            total = hall.liquid_heat_kw + hall.air_heat_kw
            if _differs(total, hall.it_power_max_kw):
                yield finding(
                    "COOL-008",
                    f"{path}.hall[{h}]",
                    total,
                    hall.it_power_max_kw,
                    "kW",
                    f"liquid + air heat {total:,.1f} kW but the hall draws {hall.it_power_max_kw:,.1f} kW",
                )
            elif _differs(hall.liquid_heat_kw, hall.it_power_max_kw * fraction):
                derived = hall.it_power_max_kw * fraction
                yield finding(
                    "COOL-008",
                    f"{path}.hall[{h}]",
                    hall.liquid_heat_kw,
                    derived,
                    "kW",
                    f"liquid heat {hall.liquid_heat_kw:,.1f} kW but the racks send {fraction:.0%} of {hall.it_power_max_kw:,.0f} kW = {derived:,.1f} kW to liquid",
                )


@rule(
    "COOL-009",
    "cooling",
    "air-side heat within the hall's air system",
    "error",
    "Air-side heat (fans, PSUs, network) above what the hall's air system removes heats the white space until equipment trips.",
    "Q_air,hall ≤ min(Q_air system, A_white · q_air)",
    kind="engineering",
    basis="air system capacity per m² of white space (catalog economics)",
)
def air_heat_within_air_system(design: Design, catalog: Catalog):
    economics = _economics(design, catalog)
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            capacity = hall.air_system_capacity_kw
            if economics is not None:
                capacity = min(capacity, hall.white_space_m2 * economics.air_system_capacity_kw_per_m2)
            if _exceeds(hall.air_heat_kw, capacity):
                yield finding(
                    "COOL-009",
                    f"{path}.hall[{h}]",
                    hall.air_heat_kw,
                    capacity,
                    "kW",
                    f"air-side heat {hall.air_heat_kw:,.0f} kW exceeds the {capacity:,.0f} kW the hall's air system removes "
                    f"({hall.white_space_m2:,.0f} m² of white space)",
                )


@rule(
    "COOL-010",
    "cooling",
    "mechanical power is the sum of the plant",
    "error",
    "Mechanical power feeds PUE and the transformer sizing; it must be the sum of pumps, fans and chillers.",
    "P_mech = P_CDU pumps + P_rejection + P_air fans + P_chiller",
    kind="consistency",
    basis="the design's own numbers: mechanical power as the sum of the plant",
)
def mechanical_power_sums(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        c = site.cooling
        derived = (
            c.cdu_pump_power_kw
            + c.heat_rejection_power_design_kw
            + c.air_cooling_power_design_kw
            + c.chiller_power_design_kw
        )
        if _differs(c.mechanical_power_design_kw, derived):
            yield finding(
                "COOL-010",
                f"{path}.cooling",
                c.mechanical_power_design_kw,
                derived,
                "kW",
                f"mechanical power {c.mechanical_power_design_kw:,.1f} kW but its parts sum to {derived:,.1f} kW",
            )


@rule(
    "COOL-011",
    "cooling",
    "site cooling totals are the halls' sums",
    "error",
    "The site plant is sized from its totals; totals below the halls' sums undersize it.",
    "Q_liquid = Σ Q_hall; V̇ = Σ V̇_hall; n_CDU = Σ n_CDU,hall",
    kind="consistency",
    basis="the design's own numbers: site totals as the halls' sums",
)
def cooling_totals_sum(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        c = site.cooling
        checks = (
            ("liquid_heat_kw", c.liquid_heat_kw, sum(h.liquid_heat_kw for h in site.halls), "kW"),
            ("coolant_flow_lpm", c.coolant_flow_lpm, sum(h.coolant_flow_lpm for h in site.halls), "L/min"),
            (
                "cdus_installed",
                float(c.cdus_installed),
                float(sum(h.cdus_installed for h in site.halls)),
                "CDUs",
            ),
        )
        for name, stated, derived, unit in checks:
            if _differs(stated, derived):
                yield finding(
                    "COOL-011",
                    f"{path}.cooling.{name}",
                    stated,
                    derived,
                    unit,
                    f"site {name} {stated:,.6g} but the halls sum to {derived:,.6g}",
                )


@rule(
    "COOL-012",
    "cooling",
    "WUE consistent with the plant",
    "error",
    "Water use is a permit and sustainability figure; it must follow from the plants' water rates (≈ 0 for dry coolers).",
    "WUE ≤ [w_liq (Q_liq + P_rej) + w_air (Q_air + P_fans + P_chiller)] / P_IT,nominal",
    kind="consistency",
    basis="the compiler's own rule: water from the plants' catalog water rates",
)
def wue_consistent(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        c = site.cooling
        liquid_plant = _entry(catalog, "heat_rejection", c.heat_rejection, HeatRejection)
        air_plant = next(
            (p for p in catalog.all("heat_rejection", HeatRejection) if p.kind == HeatRejectionKind.chiller),
            None,
        )
        if liquid_plant is None or air_plant is None:
            continue
        it_nominal_kw = site.metrics.it_mw_nominal * 1000.0
        if it_nominal_kw <= 0:
            continue
        water_l_per_h = liquid_plant.water_l_per_kwh_heat * (
            c.liquid_heat_kw + c.heat_rejection_power_design_kw
        )
        water_l_per_h += air_plant.water_l_per_kwh_heat * (
            c.air_heat_kw + c.air_cooling_power_design_kw + c.chiller_power_design_kw
        )
        bound = water_l_per_h / it_nominal_kw * (1 + RELATIVE_TOLERANCE)
        if _exceeds(c.wue_l_per_kwh, bound) or _exceeds(site.metrics.wue_l_per_kwh, bound):
            stated = max(c.wue_l_per_kwh, site.metrics.wue_l_per_kwh)
            yield finding(
                "COOL-012",
                f"{path}.cooling",
                stated,
                bound,
                "L/kWh",
                f"WUE {stated:.3f} L/kWh exceeds the most the {liquid_plant.name} and air-side plants can use ({bound:.3f} L/kWh)",
            )


@rule(
    "COOL-013",
    "cooling",
    "PUE rises with outdoor temperature",
    "warning",
    "Every heat rejection plant works harder in warmer air; a PUE curve that falls with temperature misstates the plant.",
    "PUE(T_i+1) ≥ PUE(T_i) − 0.001; PUE ≥ 1",
    kind="consistency",
    basis="the design's own numbers: the PUE curve's shape",
)
def pue_curve_monotone(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        curve = sorted(site.cooling.pue_by_outdoor_temp_c)
        for (t0, p0), (t1, p1) in zip(curve, curve[1:], strict=False):
            if p1 < p0 - 1e-3:
                yield finding(
                    "COOL-013",
                    f"{path}.cooling.pue_by_outdoor_temp_c",
                    p1,
                    p0,
                    "",
                    f"PUE falls from {p0:.4f} at {t0:g} °C to {p1:.4f} at {t1:g} °C",
                )
        for t, p in curve:
            if p < 1.0:
                yield finding(
                    "COOL-013",
                    f"{path}.cooling.pue_by_outdoor_temp_c",
                    p,
                    1.0,
                    "",
                    f"PUE {p:.4f} at {t:g} °C is below 1",
                    severity="error",
                )


@rule(
    "COOL-014",
    "cooling",
    "air supply within the ASHRAE recommended envelope",
    "error",
    "The racks' air-cooled parts (NICs, drives, power shelves, switches) are rated for inlet air in the ASHRAE envelope; hotter air throttles or fails them.",
    "18 °C ≤ T_air,supply = T_chw + a_coil ≤ 27 °C",
    kind="engineering",
    basis="ASHRAE TC 9.9 Thermal Guidelines, 5th ed. (2021), recommended envelope (catalog facility_limits)",
)
def air_supply_envelope(design: Design, catalog: Catalog):
    from tokenfab.catalog.models import FacilityLimits

    limits = next(iter(catalog.all("facility_limits", FacilityLimits)), None)
    for _, site, path in _sites(design):
        c = site.cooling
        if limits is None or c.air_supply_temp_c is None or c.air_heat_kw <= 0:
            continue
        if _exceeds(c.air_supply_temp_c, limits.air_supply_max_c):
            yield finding(
                "COOL-014",
                f"{path}.cooling",
                c.air_supply_temp_c,
                limits.air_supply_max_c,
                "°C",
                f"air reaches the racks at {c.air_supply_temp_c:.1f} °C, above the {limits.air_supply_max_c:g} °C recommended inlet",
            )
        elif c.air_supply_temp_c < limits.air_supply_min_c - 1e-9:
            yield finding(
                "COOL-014",
                f"{path}.cooling",
                c.air_supply_temp_c,
                limits.air_supply_min_c,
                "°C",
                f"air reaches the racks at {c.air_supply_temp_c:.1f} °C, below the {limits.air_supply_min_c:g} °C recommended inlet",
            )
