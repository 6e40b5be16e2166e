"""Coolant properties without importing CoolProp on every command.

Density and heat capacity of the fluids the standard uses come from a table generated from CoolProp
(``coolant_table.py``, by ``scripts/gen_coolant_table.py``), interpolated linearly in temperature. A fluid
or temperature outside the table asks CoolProp itself, imported only then.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

from tokenfab.blueprint.coolant_table import PRESSURE_PA, TABLE, TEMPS_C

TABLE_PRESSURE_TOLERANCE_PA = 5.0e5
"""Pressures this close to the table's are served from it: the liquids are nearly incompressible
(PG25 density changes by < 0.03 % per 5 bar, CoolProp)."""


def interpolate_linear(x: float, xs: list[float] | tuple[float, ...], ys: tuple[float, ...]) -> float:
    """Piecewise-linear interpolation of ``ys(xs)`` at `x` (xs ascending, `x` inside them).

    .. math:: y = y_i + (y_{i+1} - y_i)\\,\\frac{x - x_i}{x_{i+1} - x_i}
    """
    i = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)
    x0, x1 = xs[i], xs[i + 1]
    return ys[i] + (ys[i + 1] - ys[i]) * (x - x0) / (x1 - x0)


def tabulated_properties(fluid: str, mean_temp_c: float, pressure_pa: float) -> tuple[float, float] | None:
    """(density [kg/m³], c_p [J/(kg·K)]) from the table, or None when the table does not cover the state."""
    columns = TABLE.get(fluid)
    if columns is None or not TEMPS_C[0] <= mean_temp_c <= TEMPS_C[-1]:
        return None
    if abs(pressure_pa - PRESSURE_PA) > TABLE_PRESSURE_TOLERANCE_PA:
        return None
    density, cp = columns
    return interpolate_linear(mean_temp_c, TEMPS_C, density), interpolate_linear(mean_temp_c, TEMPS_C, cp)


@lru_cache(maxsize=256)
def coolprop_properties(fluid: str, mean_temp_c: float, pressure_pa: float) -> tuple[float, float]:
    """(density [kg/m³], c_p [J/(kg·K)]) from CoolProp (Bell et al., Ind. Eng. Chem. Res. 53 (2014))."""
    from CoolProp.CoolProp import PropsSI

    temp_k = mean_temp_c + 273.15
    return (
        float(PropsSI("D", "T", temp_k, "P", pressure_pa, fluid)),
        float(PropsSI("C", "T", temp_k, "P", pressure_pa, fluid)),
    )


def coolant_properties(fluid: str, mean_temp_c: float, pressure_pa: float = 2.0e5) -> tuple[float, float]:
    """Density [kg/m³] and isobaric heat capacity [J/(kg·K)] of `fluid` at `mean_temp_c` and `pressure_pa`.

    Tabulated from CoolProp where the table covers the state, else CoolProp itself.
    """
    return tabulated_properties(fluid, mean_temp_c, pressure_pa) or coolprop_properties(
        fluid, mean_temp_c, pressure_pa
    )
