"""Cooling: coolant properties, flow from heat, CDU counts, heat rejection choice and power, PUE, WUE.

Every function is pure; temperatures in °C, powers in kW, flows in L/min.
"""

from __future__ import annotations

import math

import numpy as np

from tokenfab.blueprint import coolant
from tokenfab.catalog.models import HeatRejection, HeatRejectionKind

COOLANT_PG25 = "INCOMP::MPG[0.25]"
"""Technology cooling system fluid: 25 % propylene glycol in water (PG25), as NVIDIA specifies for NVL72."""

DEFAULT_COOLANT_DELTA_T_K = 10.0
"""Rack return minus supply temperature at design flow (facility-figures notes: TCS ΔT ≈ 10 K)."""

AIR_SIDE_CHILLED_WATER_C = 18.0
"""Chilled-water supply that CRAHs / fan walls need for air-cooled heat (estimate)."""

ECONOMISER_BAND_K = 4.0
"""Width of the partial free-cooling band of a chiller plant with a water-side economiser (estimate)."""

MAX_CHILLER_COP = 12.0


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


def heat_rejection_feasible(plant: HeatRejection, supply_temp_c: float, dry_bulb_c: float, wet_bulb_c: float) -> bool:
    """Whether the plant holds `supply_temp_c` at the given outdoor conditions without compressors.

    Dry coolers approach the dry-bulb, towers the wet-bulb:
    :math:`T_{db} + a_{dry} \\le T_{sup}` or :math:`T_{wb} + a_{tower} \\le T_{sup}`. A chiller is always feasible.
    """
    if plant.kind == HeatRejectionKind.dry_cooler:
        return dry_bulb_c + plant.approach_k <= supply_temp_c
    if plant.kind == HeatRejectionKind.cooling_tower:
        return wet_bulb_c + plant.approach_k <= supply_temp_c
    return True


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
    return float(np.clip(shortfall_k / ECONOMISER_BAND_K, 0.0, 1.0))


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
    A dry cooler that cannot reach the supply temperature (above its design day) runs an adiabatic/trim
    chiller for the shortfall. A chiller plant adds compressor power :math:`f_{comp}\\,Q/COP`.
    """
    heat_mw = heat_kw / 1000.0
    pumps = plant.pump_power_kw_per_mw * heat_mw
    if plant.kind == HeatRejectionKind.dry_cooler:
        design_approach = max(supply_temp_c - design_dry_bulb_c, plant.approach_k)
        available = supply_temp_c - dry_bulb_c
    else:
        design_approach = max(supply_temp_c - design_wet_bulb_c, plant.approach_k)
        available = supply_temp_c - wet_bulb_c
    ratio = design_approach / available if available > 0 else 1.0
    fans = plant.fan_power_kw_per_mw * heat_mw * float(np.clip(ratio**3, 0.1, 1.0))
    compressors = 0.0
    if plant.kind == HeatRejectionKind.chiller:
        share = compressor_fraction(supply_temp_c, wet_bulb_c, plant.approach_k)
        compressors = share * heat_kw / chiller_cop(supply_temp_c, wet_bulb_c, plant.approach_k, plant.carnot_fraction)
    elif available < plant.approach_k:
        trim_share = float(np.clip((plant.approach_k - available) / ECONOMISER_BAND_K, 0.0, 1.0))
        compressors = trim_share * heat_kw / chiller_cop(supply_temp_c, wet_bulb_c, plant.approach_k, 0.5)
    return pumps + fans + compressors


def water_use_l_per_h(plant: HeatRejection, heat_kw: float) -> float:
    """Water consumed by evaporation, drift and blowdown: :math:`W = w \\times Q` [L/h] for Q in kW."""
    return plant.water_l_per_kwh_heat * heat_kw


def outdoor_bins(monthly_dry_bulb_c: list[float], monthly_wet_bulb_c: list[float], daily_range_k: float):
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
