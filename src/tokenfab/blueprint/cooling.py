"""Cooling: coolant properties, flow from heat, CDU counts, heat rejection choice and power, PUE, WUE.

Every function is pure; temperatures in °C, powers in kW, flows in L/min.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.blueprint import coolant
from tokenfab.blueprint.design import CoolingDesign, HallDesign, RackDesign
from tokenfab.catalog.models import Cdu, HeatRejection, HeatRejectionKind

if TYPE_CHECKING:
    from tokenfab.blueprint.loads import AnnualEnergy, Loads
    from tokenfab.blueprint.parts import Parts

COOLANT_PG25 = "INCOMP::MPG[0.25]"
"""Technology cooling system fluid: 25 % propylene glycol in water (PG25), as NVIDIA specifies for NVL72."""

DEFAULT_COOLANT_DELTA_T_K = 10.0
"""Rack return minus supply temperature at design flow (facility-figures notes: TCS ΔT ≈ 10 K)."""

AIR_SIDE_CHILLED_WATER_C = 18.0
"""Chilled-water supply that CRAHs / fan walls need for air-cooled heat (estimate)."""

ECONOMISER_BAND_K = 4.0
"""Width of the partial free-cooling band of a chiller plant with a water-side economiser (estimate)."""

MAX_CHILLER_COP = 12.0

HEAT_REJECTION_MODULE_KW = 2000.0
"""Largest heat-rejection module: plants are installed in modules, so that N+1 means one more module (estimate)."""

HEAT_REJECTION_MODULE_SIZES_KW = (250.0, 500.0, 1000.0, 2000.0)
"""Module sizes of dry coolers, towers and chillers (estimate: packaged units from ~250 kW to ~2 MW)."""


def _clamp(value: float, low: float, high: float) -> float:
    """`value` limited to [low, high] (scalar; numpy's clip costs microseconds per call in the annual loop)."""
    return low if value < low else high if value > high else float(value)


def coolant_properties(fluid: str, mean_temp_c: float, pressure_pa: float = 2.0e5) -> tuple[float, float]:
    """Density [kg/m³] and isobaric heat capacity [J/(kg·K)] of `fluid` (see `tokenfab.blueprint.coolant`:
    tabulated from CoolProp, which is imported only for a fluid or state outside the table).

    Reference: Bell et al., "Pure and Pseudo-pure Fluid Thermophysical Property Evaluation and the
    Open-Source Thermophysical Property Library CoolProp", Ind. Eng. Chem. Res. 53 (2014).
    """
    return coolant.coolant_properties(fluid, mean_temp_c, pressure_pa)


def coolant_flow_lpm(heat_kw: float, delta_t_k: float, density_kg_m3: float, cp_j_per_kg_k: float) -> float:
    """Volumetric coolant flow that carries `heat_kw` at a temperature rise `delta_t_k`.

    .. math:: \\dot V = \\frac{Q}{\\rho\\, c_p\\, \\Delta T} \\times 60\\,000 \\quad [L/min]

    with Q in W. Reference: the steady-flow energy balance, :math:`Q = \\dot m c_p \\Delta T`.
    """
    if delta_t_k <= 0:
        raise ValueError("delta_t_k must be positive")
    return heat_kw * 1000.0 / (density_kg_m3 * cp_j_per_kg_k * delta_t_k) * 60_000.0


def units_with_redundancy(units_required: int, redundancy: str) -> int:
    """Installed units for N, N+1 or 2N redundancy.

    .. math:: N \\to N, \\quad N{+}1 \\to N + 1, \\quad 2N \\to 2N
    """
    if units_required <= 0:
        return 0
    if redundancy == "N":
        return units_required
    if redundancy == "N+1":
        return units_required + 1
    if redundancy == "2N":
        return 2 * units_required
    raise ValueError(f"unknown redundancy {redundancy!r}")


def cdus_required(liquid_heat_kw: float, flow_lpm: float, capacity_kw: float, flow_lpm_max: float) -> int:
    """CDUs needed so that both the heat and the flow fit: :math:`\\max(\\lceil Q/Q_{cdu}\\rceil, \\lceil \\dot V/\\dot V_{cdu}\\rceil)`."""
    if liquid_heat_kw <= 0:
        return 0
    return max(math.ceil(liquid_heat_kw / capacity_kw - 1e-9), math.ceil(flow_lpm / flow_lpm_max - 1e-9))


def heat_rejection_feasible(
    plant: HeatRejection, supply_temp_c: float, dry_bulb_c: float, wet_bulb_c: float
) -> bool:
    """Whether the plant holds `supply_temp_c` at the given outdoor conditions without compressors.

    Dry coolers approach the dry-bulb, towers the wet-bulb, hybrid (adiabatic) dry coolers the dry-bulb when
    dry and the wet-bulb when sprayed:
    :math:`T_{db} + a_{dry} \\le T_{sup}`, :math:`T_{wb} + a_{tower} \\le T_{sup}`,
    :math:`\\min(T_{db} + a_{dry}, T_{wb} + a_{wet}) \\le T_{sup}`. A chiller is always feasible.
    """
    return reachable_supply_temp_c(plant, dry_bulb_c, wet_bulb_c) <= supply_temp_c


def reachable_supply_temp_c(plant: HeatRejection, dry_bulb_c: float, wet_bulb_c: float) -> float:
    """Lowest leaving-water temperature the plant reaches without compressors (−inf for a chiller)."""
    if plant.kind == HeatRejectionKind.dry_cooler:
        return dry_bulb_c + plant.approach_k
    if plant.kind == HeatRejectionKind.hybrid_dry_cooler:
        return min(dry_bulb_c + plant.approach_k, wet_bulb_c + (plant.wet_approach_k or plant.approach_k))
    if plant.kind == HeatRejectionKind.cooling_tower:
        return wet_bulb_c + plant.approach_k
    return -math.inf


def spray_fraction(plant: HeatRejection, supply_temp_c: float, dry_bulb_c: float) -> float:
    """Share of the heat a hybrid dry cooler rejects with its sprays on.

    .. math:: f_{spray} = \\mathrm{clip}\\left(\\frac{T_{db} + a_{dry} - T_{sup}}{B}, 0, 1\\right)

    0 while the dry coil alone reaches the supply temperature; 1 once it falls `ECONOMISER_BAND_K` short.
    """
    if plant.kind != HeatRejectionKind.hybrid_dry_cooler:
        return 0.0
    return _clamp((dry_bulb_c + plant.approach_k - supply_temp_c) / ECONOMISER_BAND_K, 0.0, 1.0)


def trim_fraction(plant: HeatRejection, supply_temp_c: float, dry_bulb_c: float, wet_bulb_c: float) -> float:
    """Share of the heat a trim chiller moves beside dry / hybrid coolers that fall short of the supply temperature.

    .. math:: f_{trim} = \\mathrm{clip}\\left(\\frac{T_{reach} - T_{sup}}{B}, 0, 1\\right)
    """
    if plant.kind not in (HeatRejectionKind.dry_cooler, HeatRejectionKind.hybrid_dry_cooler):
        return 0.0
    shortfall_k = reachable_supply_temp_c(plant, dry_bulb_c, wet_bulb_c) - supply_temp_c
    return _clamp(shortfall_k / ECONOMISER_BAND_K, 0.0, 1.0)


def chiller_cop(supply_temp_c: float, wet_bulb_c: float, approach_k: float, carnot_fraction: float) -> float:
    """Chiller coefficient of performance from lift, as a fraction of the Carnot COP.

    .. math:: COP = \\eta_C \\frac{T_{evap}}{T_{cond} - T_{evap}}, \\quad
              T_{evap} = T_{sup} - 2\\,K, \\quad T_{cond} = T_{wb} + a + 5\\,K

    (temperatures in K, capped at 12). Reference: Carnot refrigeration cycle; practical chillers reach
    50–60 % of it (ASHRAE Handbook—HVAC Systems and Equipment, ch. 43).
    """
    evap_k = supply_temp_c - 2.0 + 273.15
    cond_k = wet_bulb_c + approach_k + 5.0 + 273.15
    lift_k = max(cond_k - evap_k, 1.0)
    return min(carnot_fraction * evap_k / lift_k, MAX_CHILLER_COP)


def compressor_fraction(supply_temp_c: float, wet_bulb_c: float, tower_approach_k: float) -> float:
    """Share of the heat a chiller plant with a water-side economiser must move by compressor.

    .. math:: f_{comp} = \\mathrm{clip}\\left(\\frac{T_{wb} + a - T_{sup}}{B}, 0, 1\\right)

    0 when towers alone reach the supply temperature, 1 when they fall `ECONOMISER_BAND_K` (B) or more
    short, linear in between (partial free cooling).
    """
    shortfall_k = wet_bulb_c + tower_approach_k - supply_temp_c
    return _clamp(shortfall_k / ECONOMISER_BAND_K, 0.0, 1.0)


def heat_rejection_power_kw(
    plant: HeatRejection,
    heat_kw: float,
    supply_temp_c: float,
    dry_bulb_c: float,
    wet_bulb_c: float,
    design_dry_bulb_c: float,
    design_wet_bulb_c: float,
) -> float:
    """Fan, pump and compressor power of a heat rejection plant at one outdoor condition.

    Fans follow the fan affinity law on the approach available: airflow scales with the design approach over
    the approach available, power with its cube,
    :math:`P_{fan} = P_{fan,d}\\,\\min(1, (a_d / a)^3)`, floored at 10 % (minimum fan speed).
    A hybrid dry cooler that sprays runs its fans at full speed. A dry or hybrid cooler that cannot reach the
    supply temperature runs a trim chiller for the shortfall. A chiller plant adds compressor power :math:`f_{comp}\\,Q/COP`.
    """
    heat_mw = heat_kw / 1000.0
    pumps = plant.pump_power_kw_per_mw * heat_mw
    if plant.kind in (HeatRejectionKind.dry_cooler, HeatRejectionKind.hybrid_dry_cooler):
        design_approach = max(supply_temp_c - design_dry_bulb_c, plant.approach_k)
        available = supply_temp_c - dry_bulb_c
        if plant.kind == HeatRejectionKind.hybrid_dry_cooler and available < plant.approach_k:
            available = 0.0  # sprayed: the fans run flat out while the pads cool the inlet air
    else:
        design_approach = max(supply_temp_c - design_wet_bulb_c, plant.approach_k)
        available = supply_temp_c - wet_bulb_c
    ratio = design_approach / available if available > 0 else 1.0
    fans = plant.fan_power_kw_per_mw * heat_mw * _clamp(ratio**3, 0.1, 1.0)
    compressors = 0.0
    if plant.kind == HeatRejectionKind.chiller:
        share = compressor_fraction(supply_temp_c, wet_bulb_c, plant.approach_k)
        compressors = (
            share * heat_kw / chiller_cop(supply_temp_c, wet_bulb_c, plant.approach_k, plant.carnot_fraction)
        )
    else:
        trim_share = trim_fraction(plant, supply_temp_c, dry_bulb_c, wet_bulb_c)
        if trim_share > 0:
            compressors = trim_share * heat_kw / chiller_cop(supply_temp_c, wet_bulb_c, plant.approach_k, 0.5)
    return pumps + fans + compressors


def water_use_l_per_h(plant: HeatRejection, heat_kw: float, spray_share: float = 1.0) -> float:
    """Water consumed by evaporation, drift and blowdown: :math:`W = w \\times Q` [L/h] for Q in kW.

    A hybrid dry cooler uses water only while it sprays: :math:`W = f_{spray}\\, w_{spray}\\, Q`.
    """
    if plant.kind == HeatRejectionKind.hybrid_dry_cooler:
        return spray_share * (plant.spray_water_l_per_kwh_heat or plant.water_l_per_kwh_heat) * heat_kw
    return plant.water_l_per_kwh_heat * heat_kw


def outdoor_bins(
    monthly_dry_bulb_c: list[float], monthly_wet_bulb_c: list[float], daily_range_k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hour-weighted outdoor bins for annual figures: each month's mean ± half the daily swing.

    Returns arrays (dry_bulb_c, wet_bulb_c, hours) of 24 bins (12 months × day/night), 8,760 h in all.
    """
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
    dry = np.asarray(monthly_dry_bulb_c, dtype=float)
    wet = np.asarray(monthly_wet_bulb_c, dtype=float)
    half = daily_range_k / 2.0
    dry_bins = np.concatenate([dry + half, dry - half])
    wet_bins = np.concatenate([wet + half * 0.4, wet - half * 0.4])
    hours = np.concatenate([days * 12.0, days * 12.0])
    return dry_bins, np.minimum(wet_bins, dry_bins), hours


def rack_design(parts: Parts) -> RackDesign:
    """One rack of the site's system, with its coolant flow at the rack supply temperature."""
    system = parts.system
    rack_supply_c = parts.facility_supply_temp_c + parts.cdus[0].approach_k
    density, cp = rack_coolant_properties(parts)
    rack_liquid_kw = system.rack_power_max_kw * system.liquid_heat_fraction
    rack_flow = (
        coolant_flow_lpm(rack_liquid_kw, DEFAULT_COOLANT_DELTA_T_K, density, cp) if rack_liquid_kw else 0.0
    )
    return RackDesign(
        system=system.name,
        gpus=system.gpus_per_rack,
        nodes=system.nodes_per_rack,
        nvlink_domains=system.domains_per_rack,
        gpus_per_nvlink_domain=system.gpus_per_nvlink_domain,
        cpu_cores_per_node=system.cpu_cores_per_node,
        memory_gb_per_node=system.memory_gb_per_node,
        power_nominal_kw=system.rack_power_nominal_kw,
        power_max_kw=system.rack_power_max_kw,
        power_shelf_capacity_kw=system.power_shelf_capacity_kw,
        busbar_limit_kw=system.busbar_limit_kw,
        liquid_heat_kw=rack_liquid_kw,
        air_heat_kw=system.rack_power_max_kw - rack_liquid_kw,
        coolant_flow_lpm=rack_flow,
        manifold_flow_lpm_min=system.manifold_flow_lpm_min,
        manifold_flow_lpm_max=system.manifold_flow_lpm_max,
        supply_temp_c=rack_supply_c,
        supply_temp_max_c=system.supply_temp_max_c,
        weight_kg=system.rack_weight_kg,
        footprint_m2=system.rack_footprint_m2,
    )


def rack_coolant_properties(parts: Parts) -> tuple[float, float]:
    """PG25 density and heat capacity at the rack loop's mean temperature (supply + ΔT/2)."""
    rack_supply_c = parts.facility_supply_temp_c + parts.cdus[0].approach_k
    return coolant_properties(COOLANT_PG25, round(rack_supply_c + DEFAULT_COOLANT_DELTA_T_K / 2, 1))


def cheapest_cdu(
    cdus: list[Cdu], liquid_kw: float, flow_lpm: float, redundancy: str
) -> tuple[Cdu | None, int]:
    """The CDU model whose installed count (with redundancy) costs least, and the count it needs (N)."""
    if liquid_kw <= 0:
        return None, 0
    options = []
    for cdu in cdus:
        required = cdus_required(liquid_kw, flow_lpm, cdu.capacity_kw, cdu.flow_lpm_max)
        installed = units_with_redundancy(required, redundancy)
        options.append((installed * cdu.cost_usd, cdu.name, cdu, required))
    _, _, cdu, required = min(options)
    return cdu, required


def cdu_pump_power_kw(parts: Parts, halls: list[HallDesign]) -> float:
    """Pump power of the CDUs that carry the heat (N per hall)."""
    pumps_kw = {cdu.name: cdu.pump_power_kw for cdu in parts.cdus}
    return sum(h.cdus_required * pumps_kw[h.cdu_model] for h in halls if h.cdu_model)


def rejection_module_kw(heat_kw: float) -> float:
    """Module size for a plant of `heat_kw`: the largest size that still splits it into at least four modules
    (so that one spare is a quarter of the plant, not all of it), at least the smallest size."""
    fitting = [m for m in HEAT_REJECTION_MODULE_SIZES_KW if m * 4 <= heat_kw]
    return fitting[-1] if fitting else HEAT_REJECTION_MODULE_SIZES_KW[0]


def rejection_modules(heat_kw: float, redundancy: str, module_kw: float = HEAT_REJECTION_MODULE_KW) -> int:
    """Heat-rejection modules installed for `heat_kw`: :math:`\\lceil Q / Q_{mod} \\rceil` plus redundancy."""
    needed = math.ceil(heat_kw / module_kw - 1e-9) if heat_kw > 0 else 0
    return units_with_redundancy(needed, redundancy)


def cooling_design(
    parts: Parts,
    redundancy: str,
    halls: list[HallDesign],
    rack: RackDesign,
    design_loads: Loads,
    annual: AnnualEnergy,
    pue_curve: list[tuple[float, float]],
) -> CoolingDesign:
    """The site's cooling plant: CDUs, heat rejection and its capacity, design-day power, PUE and WUE."""
    density, cp = rack_coolant_properties(parts)
    total_liquid = sum(h.liquid_heat_kw for h in halls)
    rejected_kw = total_liquid + design_loads.heat_rejection_kw
    module_kw = rejection_module_kw(rejected_kw)
    capacity = rejection_modules(rejected_kw, redundancy, module_kw) * module_kw if total_liquid else 0.0
    plant = parts.liquid_plant if total_liquid else parts.air_plant
    climate = parts.climate
    trim_share = trim_fraction(
        plant, parts.facility_supply_temp_c, climate.design_dry_bulb_c, climate.design_wet_bulb_c
    )
    trim_kw = trim_share * total_liquid if parts.trim_chiller else 0.0
    return CoolingDesign(
        heat_rejection=plant.name,
        heat_rejection_kind=plant.kind.value,
        coolant="PG25 (25 % propylene glycol)",
        facility_supply_temp_c=parts.facility_supply_temp_c,
        rack_supply_temp_c=rack.supply_temp_c,
        rack_return_temp_c=rack.supply_temp_c + DEFAULT_COOLANT_DELTA_T_K,
        coolant_delta_t_k=DEFAULT_COOLANT_DELTA_T_K,
        coolant_density_kg_m3=density,
        coolant_cp_j_per_kg_k=cp,
        liquid_heat_kw=total_liquid,
        air_heat_kw=design_loads.it_kw - total_liquid,
        coolant_flow_lpm=sum(h.coolant_flow_lpm for h in halls),
        cdu_model=next((h.cdu_model for h in halls if h.cdu_model), None),
        cdus_installed=sum(h.cdus_installed for h in halls),
        cdu_pump_power_kw=design_loads.cdu_pump_kw,
        heat_rejection_capacity_kw=capacity,
        heat_rejection_power_design_kw=design_loads.heat_rejection_kw,
        air_cooling_power_design_kw=design_loads.air_cooling_kw,
        chiller_power_design_kw=design_loads.chiller_kw,
        mechanical_power_design_kw=design_loads.mechanical_kw,
        pue_design=design_loads.pue,
        pue_annual=annual.pue,
        wue_l_per_kwh=annual.water_l / annual.it_kwh,
        redundancy=redundancy,
        pue_by_outdoor_temp_c=pue_curve,
        trim_chiller_kw=trim_kw,
        spray_hours_per_year=annual.spray_hours,
        air_supply_temp_c=AIR_SIDE_CHILLED_WATER_C + parts.limits.crah_approach_k,
        heat_rejection_module_kw=module_kw,
        supply_temp_source=(
            "spec: coolant_supply_temp_c"
            if parts.rack_supply_temp_c != parts.system.supply_temp_max_c
            else f"{parts.system.name}: {parts.system.sources.get('supply_temp_max_c', parts.system.sources.get('*', ''))}"
        ),
    )
