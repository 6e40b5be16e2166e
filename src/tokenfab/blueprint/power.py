"""The power chain: grid → substation → MV/LV transformers → UPS → busway → racks, with losses.

Pure functions; powers in kW, ratings in kW or MVA as named.
"""

from __future__ import annotations

import math

from tokenfab.blueprint.cooling import units_with_redundancy


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
