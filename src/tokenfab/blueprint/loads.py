"""Facility loads at one operating point, on the design day and across the year's outdoor bins.

The load balance: IT (racks + network) plus mechanical (CDU pumps, heat rejection, air fans, air-side
chiller) plus miscellaneous, plus the losses of each power-chain stage feeding them. Powers in kW.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint import power

if TYPE_CHECKING:
    from tokenfab.blueprint.parts import Parts
    from tokenfab.spec import SiteSpec


@dataclass(frozen=True)
class Loads:
    """Facility loads at one operating point (kW)."""

    it_kw: float
    network_kw: float
    mechanical_kw: float
    misc_kw: float
    busway_loss_kw: float
    ups_loss_kw: float
    mv_lv_loss_kw: float
    substation_loss_kw: float
    sst_loss_kw: float
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
            + self.sst_loss_kw
        )

    @property
    def pue(self) -> float:
        return self.facility_kw / self.it_kw


@dataclass(frozen=True)
class AnnualEnergy:
    """Energy and water over the 8,760 h of the year's outdoor bins."""

    facility_kwh: float
    it_kwh: float
    water_l: float
    spray_hours: float = 0.0

    @property
    def pue(self) -> float:
        return self.facility_kwh / self.it_kwh


def facility_loads(
    parts: Parts,
    rack_kw_total: float,
    network_kw: float,
    cdu_pump_kw: float,
    dry_bulb_c: float,
    wet_bulb_c: float,
    facility_supply_c: float,
) -> Loads:
    """Facility loads for a given rack draw and outdoor condition (all equations in the cooling/power modules)."""
    system, econ = parts.system, parts.economics
    it_kw = rack_kw_total + network_kw
    liquid_heat = rack_kw_total * system.liquid_heat_fraction
    air_heat = rack_kw_total - liquid_heat + network_kw
    design_db, design_wb = parts.climate.design_dry_bulb_c, parts.climate.design_wet_bulb_c
    rejection = 0.0
    if liquid_heat > 0:
        rejection = cool.heat_rejection_power_kw(
            parts.liquid_plant, liquid_heat, facility_supply_c, dry_bulb_c, wet_bulb_c, design_db, design_wb
        )
    air_fans = econ.air_cooling_kw_per_kw_heat * air_heat
    chiller = cool.heat_rejection_power_kw(
        parts.air_plant,
        air_heat + air_fans,
        cool.AIR_SIDE_CHILLED_WATER_C,
        dry_bulb_c,
        wet_bulb_c,
        design_db,
        design_wb,
    )
    mechanical = cdu_pump_kw + rejection + air_fans + chiller
    misc = econ.misc_load_fraction * it_kw
    losses = chain_losses_kw(parts, it_kw, mechanical + misc)
    spray = cool.spray_fraction(parts.liquid_plant, facility_supply_c, dry_bulb_c)
    water = (
        cool.water_use_l_per_h(parts.liquid_plant, liquid_heat + rejection, spray) if liquid_heat > 0 else 0.0
    )
    water += cool.water_use_l_per_h(parts.air_plant, air_heat + air_fans + chiller)
    return Loads(
        it_kw=it_kw,
        network_kw=network_kw,
        mechanical_kw=mechanical,
        misc_kw=misc,
        busway_loss_kw=losses["busway"],
        ups_loss_kw=losses["ups"],
        mv_lv_loss_kw=losses["mv_lv_transformer"],
        substation_loss_kw=losses["substation_transformer"],
        sst_loss_kw=losses["sst"],
        heat_rejection_kw=rejection,
        air_cooling_kw=air_fans,
        chiller_kw=chiller,
        cdu_pump_kw=cdu_pump_kw,
        water_l_per_h=water,
    )


def chain_losses_kw(parts: Parts, it_kw: float, non_it_kw: float) -> dict[str, float]:
    """Conversion losses of each power-chain stage, load side first.

    AC: busway → UPS → MV/LV transformer (which also feeds mechanical and misc loads) → substation.
    800 V DC: DC busway → SST (IT only); MV/LV transformers feed mechanical and misc; → substation.
    A site on a utility MV service has no substation of its own. Each stage loses
    :math:`P_{out}(1/\\eta - 1)` (`power.stage_loss_kw`).
    """
    busway = power.stage_loss_kw(it_kw, parts.busway.efficiency)
    if parts.dc and parts.sst is not None:
        ups = 0.0
        sst = power.stage_loss_kw(it_kw + busway, parts.sst.efficiency)
        mv_lv = power.stage_loss_kw(non_it_kw, parts.mv_lv.efficiency)
    else:
        ups = power.stage_loss_kw(it_kw + busway, parts.ups.efficiency)
        sst = 0.0
        mv_lv = power.stage_loss_kw(it_kw + busway + ups + non_it_kw, parts.mv_lv.efficiency)
    upstream = it_kw + busway + ups + sst + non_it_kw + mv_lv
    substation = power.stage_loss_kw(upstream, parts.substation.efficiency) if parts.substation else 0.0
    return {
        "busway": busway,
        "ups": ups,
        "sst": sst,
        "mv_lv_transformer": mv_lv,
        "substation_transformer": substation,
    }


def design_day_loads(parts: Parts, rack_kw_total: float, network_kw: float, cdu_pump_kw: float) -> Loads:
    """Loads at the climate's design day (dry- and wet-bulb)."""
    climate = parts.climate
    return facility_loads(
        parts,
        rack_kw_total,
        network_kw,
        cdu_pump_kw,
        climate.design_dry_bulb_c,
        climate.design_wet_bulb_c,
        parts.facility_supply_temp_c,
    )


def it_load_fractions(parts: Parts, site: SiteSpec) -> tuple[float, float]:
    """Mean IT draw over provisioned for the day and the night bins of the year.

    A stated hourly profile splits into day (07–19 h) and night means; a single figure serves both; the
    default is the economics' inference-fleet figure (catalog `inference_it_load_fraction`, with its source).
    """
    profile = site.load
    if profile.hourly_it_load_fraction:
        hours = profile.hourly_it_load_fraction
        return float(np.mean(hours[7:19])), float(np.mean(hours[:7] + hours[19:]))
    fraction = (
        profile.it_load_fraction
        if profile.it_load_fraction is not None
        else parts.economics.inference_it_load_fraction
    )
    return fraction, fraction


def annual_energy(
    parts: Parts,
    rack_kw_max: float,
    network_kw: float,
    cdu_pump_kw: float,
    day_night_fraction: tuple[float, float],
) -> AnnualEnergy:
    """Facility and IT energy and water over the 24 hour-weighted outdoor bins of `cool.outdoor_bins`.

    Racks draw their provisioned power times the load profile's day or night fraction; the fabric draws
    its full power. :math:`E = \\sum_b P_{fac}(u_b P_{rack}, T_{db,b}, T_{wb,b})\\, h_b`.
    """
    climate = parts.climate
    dry_bins, wet_bins, hours = cool.outdoor_bins(
        climate.monthly_dry_bulb_c, climate.monthly_wet_bulb_c, climate.daily_range_k
    )
    supply_c = parts.facility_supply_temp_c
    fractions = [day_night_fraction[0]] * 12 + [day_night_fraction[1]] * 12
    annual = [
        facility_loads(parts, rack_kw_max * u, network_kw, cdu_pump_kw, d, w, supply_c)
        for u, d, w in zip(fractions, dry_bins, wet_bins, strict=True)
    ]
    spray = [cool.spray_fraction(parts.liquid_plant, supply_c, d) for d in dry_bins]
    return AnnualEnergy(
        facility_kwh=float(sum(a.facility_kw * h for a, h in zip(annual, hours, strict=True))),
        it_kwh=float(sum(a.it_kw * h for a, h in zip(annual, hours, strict=True))),
        water_l=float(sum(a.water_l_per_h * h for a, h in zip(annual, hours, strict=True))),
        spray_hours=float(sum(f * h for f, h in zip(spray, hours, strict=True))),
    )


def pue_by_outdoor_temp(
    parts: Parts, rack_kw: float, network_kw: float, cdu_pump_kw: float
) -> list[tuple[float, float]]:
    """PUE against outdoor dry-bulb, with wet-bulb from the climate's own monthly dry/wet relation."""
    dry = np.asarray(parts.climate.monthly_dry_bulb_c)
    wet = np.asarray(parts.climate.monthly_wet_bulb_c)
    slope, intercept = (
        np.polyfit(dry, wet, 1) if np.ptp(dry) > 0.5 else (0.8, float(np.mean(wet - 0.8 * dry)))
    )
    curve = []
    for dry_bulb in range(-10, 50, 5):
        wet_bulb = min(float(dry_bulb), float(slope * dry_bulb + intercept))
        loads = facility_loads(
            parts, rack_kw, network_kw, cdu_pump_kw, float(dry_bulb), wet_bulb, parts.facility_supply_temp_c
        )
        curve.append((float(dry_bulb), round(loads.pue, 4)))
    return curve
