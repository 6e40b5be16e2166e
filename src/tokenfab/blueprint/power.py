"""The power chain: grid → substation → MV/LV transformers → UPS → busway → racks, with losses.

Pure functions; powers in kW, ratings in kW or MVA as named.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tokenfab.blueprint.cooling import units_with_redundancy
from tokenfab.blueprint.design import HallDesign, PowerChainDesign, PowerStage

if TYPE_CHECKING:
    from tokenfab.blueprint.loads import Loads
    from tokenfab.blueprint.parts import Parts
    from tokenfab.spec import SiteSpec


def units_required(load_kw: float, unit_rating_kw: float, max_loading_fraction: float) -> int:
    """Units needed so that none runs above its loading limit.

    .. math:: n = \\lceil P / (P_{unit} \\, f_{max}) \\rceil
    """
    if load_kw <= 0:
        return 0
    return math.ceil(load_kw / (unit_rating_kw * max_loading_fraction) - 1e-9)


def stage_loss_kw(output_kw: float, efficiency: float) -> float:
    """Loss of a stage that delivers `output_kw` at `efficiency`: :math:`P_{loss} = P_{out}(1/\\eta - 1)`."""
    return output_kw * (1.0 / efficiency - 1.0)


def loading_fraction(load_kw: float, units_installed: int, unit_rating_kw: float, redundancy: str) -> float:
    """Loading of the units that carry the load in normal operation.

    With 2N, each side carries half and must carry all of it after a failure, so the loading that matters
    is the load on one side (N units); with N+1, the load spreads over N+1 units but must fit N.

    .. math:: f = P / (N_{carry} \\, P_{unit}), \\quad N_{carry} = N \\text{ (2N)}, \\; n-1 \\text{ (N+1)}, \\; n \\text{ (N)}
    """
    if units_installed <= 0:
        return 0.0 if load_kw <= 0 else math.inf
    carrying = {"2N": units_installed // 2, "N+1": units_installed - 1, "N": units_installed}[redundancy]
    return load_kw / (max(carrying, 1) * unit_rating_kw)


def apparent_power_kva(real_power_kw: float, power_factor: float) -> float:
    """:math:`S = P / \\cos\\varphi`."""
    return real_power_kw / power_factor


def installed_units(required: int, redundancy: str) -> int:
    return units_with_redundancy(required, redundancy)


def power_chain(parts: Parts, site: SiteSpec, loads: Loads, halls: list[HallDesign], rack_kw: float) -> PowerChainDesign:
    """Substation, MV/LV transformers, UPS and busway for the design-day loads, grid side first."""
    red = site.redundancy.power.value
    pf = parts.economics.power_factor
    stages: list[PowerStage] = []

    def add(stage, equipment, load_kw, rating_kw, max_loading, efficiency, loss_kw, redundancy, required=None):
        need = required if required is not None else units_required(load_kw, rating_kw, max_loading)
        installed = installed_units(need, redundancy)
        stages.append(
            PowerStage(
                stage=stage,
                equipment=equipment,
                units_required=need,
                units_installed=installed,
                unit_rating_kw=rating_kw,
                load_kw=load_kw,
                loading_fraction=loading_fraction(load_kw, installed, rating_kw, redundancy),
                max_loading_fraction=max_loading,
                efficiency=efficiency,
                loss_kw=loss_kw,
                redundancy=redundancy,
            )
        )

    busway_runs = sum(h.rows * math.ceil(h.racks_per_row * rack_kw / parts.busway.rating_kw - 1e-9) for h in halls)
    add("busway", parts.busway.name, loads.it_kw, parts.busway.rating_kw, 1.0, parts.busway.efficiency,
        loads.busway_loss_kw, red, required=busway_runs)
    add("ups", parts.ups.name, loads.it_kw + loads.busway_loss_kw, parts.ups.module_kw, parts.ups.max_loading_fraction,
        parts.ups.efficiency, loads.ups_loss_kw, red)
    mv_lv_load_kw = loads.it_kw + loads.busway_loss_kw + loads.ups_loss_kw + loads.mechanical_kw + loads.misc_kw
    add("mv_lv_transformer", parts.mv_lv.name, apparent_power_kva(mv_lv_load_kw, pf), parts.mv_lv.rating_mva * 1000,
        parts.mv_lv.max_loading_fraction, parts.mv_lv.efficiency, loads.mv_lv_loss_kw, red)
    substation_red = "N" if red == "N" else "N+1"
    add("substation_transformer", parts.substation.name,
        apparent_power_kva(mv_lv_load_kw + loads.mv_lv_loss_kw, pf), parts.substation.rating_mva * 1000,
        parts.substation.max_loading_fraction, parts.substation.efficiency, loads.substation_loss_kw, substation_red)
    stages.reverse()
    return PowerChainDesign(
        grid_mw=site.grid_mw if site.grid_mw is not None else loads.facility_kw / 1000.0,
        facility_power_peak_kw=loads.facility_kw,
        it_power_max_kw=loads.it_kw,
        it_power_nominal_kw=loads.it_kw,
        network_power_kw=loads.network_kw,
        mechanical_power_peak_kw=loads.mechanical_kw,
        misc_power_kw=loads.misc_kw,
        redundancy=red,
        stages=stages,
    )
