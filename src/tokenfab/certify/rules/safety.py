"""Safety rules (``SAFE``): post-failure loading, return temperature, condensation, freezing."""

from __future__ import annotations

from tokenfab.blueprint import power
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import HeatRejectionKind
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    CONDENSATION_MARGIN_K,
    GLYCOL_FREEZE_POINT_C,
    INDOOR_DEW_POINT_MAX_C,
    MAX_RETURN_TEMP_C,
    _exceeds,
    _sites,
    _stage_carrying,
)


@rule(
    "SAFE-001",
    "safety",
    "no stage above 100 % after its worst single failure",
    "error",
    "After a failure the surviving units carry everything; above 100 % of rating they trip and cascade.",
    "P / (N_carry · P_unit) ≤ 1",
    kind="engineering",
    basis="equipment rating: 100 % of nameplate after the worst single failure",
)
def post_failure_loading(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for stage in site.power.stages:
            if stage.redundancy == "N" or stage.load_kw <= 0:
                continue
            loading = power.loading_fraction(
                stage.load_kw,
                stage.units_installed,
                stage.unit_rating_kw,
                stage.redundancy,
                _stage_carrying(stage),
            )
            if _exceeds(loading, 1.0):
                yield finding(
                    "SAFE-001",
                    f"{path}.power.stage[{stage.stage}]",
                    loading,
                    1.0,
                    "fraction",
                    f"after losing {stage.units_installed - _stage_carrying(stage)} unit(s) "
                    f"{stage.stage} runs at {loading:.0%} of rating",
                )


@rule(
    "SAFE-002",
    "safety",
    "rack return temperature within material limits",
    "warning",
    "Hot return water ages hoses, quick disconnects and seals and is a burn hazard during service.",
    "T_return = T_supply + Q / (ρ c_p V̇) ≤ 60 °C",
    kind="engineering",
    basis="material limit ≈ 60 °C return (estimate; ASHRAE TC 9.9 liquid-cooling guidelines)",
)
def return_temperature(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r, c = site.rack, site.cooling
        if r.liquid_heat_kw <= 0 or r.coolant_flow_lpm <= 0:
            continue
        rise_k = (
            r.liquid_heat_kw
            * 1000.0
            / (c.coolant_density_kg_m3 * c.coolant_cp_j_per_kg_k * r.coolant_flow_lpm / 60_000.0)
        )
        derived = max(r.supply_temp_c + rise_k, c.rack_return_temp_c)
        if _exceeds(derived, MAX_RETURN_TEMP_C):
            yield finding(
                "SAFE-002",
                f"{path}.rack",
                derived,
                MAX_RETURN_TEMP_C,
                "°C",
                f"coolant leaves the rack at {derived:.1f} °C ({r.supply_temp_c:.1f} °C + {rise_k:.1f} K)",
            )


@rule(
    "SAFE-003",
    "safety",
    "coolant supply above the white-space dew point",
    "error",
    "Coolant below the room's dew point condenses on cold plates and manifolds, next to live electronics.",
    "T_rack,supply ≥ 15 °C (ASHRAE max dew point) + 2 K",
    kind="engineering",
    basis="ASHRAE TC 9.9 recommended envelope: dew point ≤ 15 °C, plus 2 K margin",
)
def above_dew_point(design: Design, catalog: Catalog):
    limit = INDOOR_DEW_POINT_MAX_C + CONDENSATION_MARGIN_K
    for _, site, path in _sites(design):
        r = site.rack
        if r.liquid_heat_kw > 0 and r.supply_temp_c < limit:
            yield finding(
                "SAFE-003",
                f"{path}.rack",
                r.supply_temp_c,
                limit,
                "°C",
                f"rack supply {r.supply_temp_c:.1f} °C is below the {limit:.1f} °C condensation floor",
            )


@rule(
    "SAFE-004",
    "safety",
    "coolant protected against freezing",
    "warning",
    "Outdoor dry coolers freeze and burst in winter unless the loop's glycol protects below the coldest night.",
    "T_coldest = min(T_month) − range/2 ≥ T_freeze(coolant)",
    kind="engineering",
    basis="glycol freeze points (ASHRAE Handbook—Fundamentals ch. 31)",
)
def freeze_protection(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        c = site.cooling
        if c.heat_rejection_kind != HeatRejectionKind.dry_cooler.value or c.liquid_heat_kw <= 0:
            continue
        coldest = min(site.climate.monthly_dry_bulb_c) - site.climate.daily_range_k / 2.0
        fluid = next((name for name in GLYCOL_FREEZE_POINT_C if name in c.coolant.upper()), None)
        freeze_c = GLYCOL_FREEZE_POINT_C[fluid] if fluid else 0.0
        if coldest < freeze_c:
            yield finding(
                "SAFE-004",
                f"{path}.cooling",
                coldest,
                freeze_c,
                "°C",
                f"coldest nights reach {coldest:.1f} °C; {c.coolant} freezes at {freeze_c:.0f} °C",
                severity="error" if fluid is None else None,
            )


@rule(
    "SAFE-005",
    "safety",
    "fire detection, suppression and leak detection present",
    "error",
    "A white space without early smoke detection and automatic suppression, or a liquid-cooled hall without leak "
    "detection, cannot be insured or occupied, and a leak at a manifold goes unseen until equipment fails.",
    "every hall: detection ≠ none, suppression ≠ none; liquid heat > 0 ⇒ leak detection ≠ none",
    kind="engineering",
    basis="NFPA 75 (2024) ch. 8 and NFPA 76 (detection, sprinklers in ITE rooms); ASHRAE TC 9.9 Liquid Cooling Guidelines (leak detection)",
)
def life_safety_present(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        for h, hall in enumerate(site.halls):
            needed = [("fire detection", hall.fire_detection), ("fire suppression", hall.fire_suppression)]
            if hall.liquid_heat_kw > 0:
                needed.append(("leak detection", hall.leak_detection))
            for what, system in needed:
                if not system.strip() or system.strip().lower() == "none":
                    yield finding(
                        "SAFE-005",
                        f"{path}.hall[{h}]",
                        system or "none",
                        "present",
                        "",
                        f"hall {h} states no {what}"
                        + (
                            f" while carrying {hall.liquid_heat_kw:,.0f} kW of liquid heat"
                            if what == "leak detection"
                            else ""
                        ),
                    )
