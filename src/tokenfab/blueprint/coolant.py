"""Coolant properties without importing CoolProp on every command.

Density and heat capacity of the fluids the standard uses come from a table generated from CoolProp
(``coolant_table.json``, by ``scripts/gen_coolant_table.py``, which names the CoolProp version), read once
and interpolated linearly in temperature. Its 0.1 K steps hold CoolProp's own values at the temperatures
`compile` asks for. A fluid or state outside the table asks CoolProp itself, imported only then.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("coolant_table.json")

TABLE_PRESSURE_TOLERANCE_PA = 5.0e5
"""Pressures this close to the table's are served from it: the liquids are nearly incompressible
(PG25 density changes by < 0.03 % per 5 bar, CoolProp)."""


@dataclass(frozen=True)
class CoolantTable:
    pressure_pa: float
    temps_c: list[float]
    fluids: dict[str, tuple[list[float], list[float]]]
    """(density [kg/m³], c_p [J/(kg·K)]) at each of `temps_c`, by CoolProp fluid name."""
    source: str


@cache
def coolant_table() -> CoolantTable:
    """The bundled table (package data, read once per process)."""
    doc = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    fluids = {name: (cols["density_kg_m3"], cols["cp_j_per_kg_k"]) for name, cols in doc["fluids"].items()}
    return CoolantTable(doc["pressure_pa"], doc["temps_c"], fluids, doc["source"])


def interpolate_linear(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear interpolation of ``ys(xs)`` at `x` (xs ascending, `x` inside them).

    .. math:: y = y_i + (y_{i+1} - y_i)\\,\\frac{x - x_i}{x_{i+1} - x_i}
    """
    i = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)
    x0, x1 = xs[i], xs[i + 1]
    return ys[i] + (ys[i + 1] - ys[i]) * (x - x0) / (x1 - x0)


def tabulated_properties(fluid: str, mean_temp_c: float, pressure_pa: float) -> tuple[float, float] | None:
    """(density [kg/m³], c_p [J/(kg·K)]) from the table, or None when the table does not cover the state."""
    table = coolant_table()
    columns = table.fluids.get(fluid)
    temps = table.temps_c
    if columns is None or not temps[0] <= mean_temp_c <= temps[-1]:
        return None
    if abs(pressure_pa - table.pressure_pa) > TABLE_PRESSURE_TOLERANCE_PA:
        return None
    density, cp = columns
    return interpolate_linear(mean_temp_c, temps, density), interpolate_linear(mean_temp_c, temps, cp)


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
