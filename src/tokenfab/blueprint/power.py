"""The power chain: grid → substation → MV/LV transformers → UPS → busway → racks, with losses.

Pure functions; powers in kW, ratings in kW or MVA as named.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tokenfab.blueprint.cooling import units_with_redundancy

if TYPE_CHECKING:
    pass


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


def loading_fraction(
    load_kw: float,
    units_installed: int,
    unit_rating_kw: float,
    redundancy: str,
    units_carrying: int | None = None,
) -> float:
    """Loading of the units that must carry the load after the worst single failure.

    With 2N each side must carry all of it, so the loading that matters is the load on one side (N units);
    with N+1 the load must fit N; with blocks (distributed or block redundant) the carrying blocks are
    stated by the design (`units_carrying`).

    .. math:: f = P / (N_{carry} \\, P_{unit})
    """
    if units_installed <= 0:
        return 0.0 if load_kw <= 0 else math.inf
    carrying = units_carrying if units_carrying is not None else carrying_units(units_installed, redundancy)
    return load_kw / (max(carrying, 1) * unit_rating_kw)


def carrying_units(units_installed: int, redundancy: str) -> int:
    """Units left to carry the load once the redundancy is spent: n (N), n−1 (N+1), n/2 (2N)."""
    return {"2N": units_installed // 2, "N+1": units_installed - 1}.get(redundancy, units_installed)


def apparent_power_kva(real_power_kw: float, power_factor: float) -> float:
    """:math:`S = P / \\cos\\varphi`."""
    return real_power_kw / power_factor


def installed_units(required: int, redundancy: str) -> int:
    return units_with_redundancy(required, redundancy)


def topology_label(topology: str, redundancy: str, distributed_make: int, catcher_group_max: int) -> str:
    """The block topology as the design states it: N, N+1, 2N, 'DR 4/3' (4-make-3) or 'BR 6+1' (catcher)."""
    if topology == "auto":
        return redundancy
    if topology == "distributed_redundant":
        return f"DR {distributed_make}/{distributed_make - 1}"
    if topology == "block_redundant":
        return f"BR {catcher_group_max}+1"
    return topology


def block_counts(required: int, topology: str) -> tuple[int, int]:
    """(installed, carrying) blocks of a hall that needs `required` blocks to carry its load.

    * N: r blocks; a failure drops load.
    * N+1: r + 1 blocks on the hall's tie; the spare reaches any block.
    * DR n/(n−1): groups of n blocks, any n−1 of a group carry it: :math:`g = \\lceil r/(n-1) \\rceil`, gn installed.
    * BR c+1: r active blocks and a catcher per c, reached through static transfer switches.
    * 2N: two full sides of r blocks.

    Carrying blocks are those left to carry the load after the worst single block failure.
    """
    if required <= 0:
        return 0, 0
    if topology == "N":
        return required, required
    if topology == "N+1":
        return required + 1, required
    if topology == "2N":
        return 2 * required, required
    kind, _, spec = topology.partition(" ")
    if kind == "DR":
        make = int(spec.split("/")[0])
        groups = math.ceil(required / (make - 1))
        return groups * make, groups * (make - 1)
    if kind == "BR":
        group = int(spec.split("+")[0])
        return required + math.ceil(required / group), required
    raise ValueError(f"unknown block topology {topology!r}")


def units_after_worst_failure(installed: int, carrying: int, topology: str) -> int:
    """Units left carrying a block group after its worst single unit failure (N: one fewer than installed)."""
    return max(installed - 1, 0) if topology == "N" else carrying


def short_circuit_current_ka(
    rating_kva: float, voltage_v: float, impedance_pct: float, dc: bool = False
) -> float:
    """Bolted fault current at a transformer's secondary from an infinite source.

    .. math:: I_{sc} = \\frac{S}{\\sqrt{3}\\, V\\, z} \\;(AC), \\qquad I_{sc} = \\frac{P}{V z} \\;(DC)

    Reference: IEEE Std 141 (Red Book) ch. 4, the per-unit (infinite bus) method.
    """
    z = impedance_pct / 100.0
    phases = 1.0 if dc else math.sqrt(3.0)
    return rating_kva * 1000.0 / (phases * voltage_v * z) / 1000.0


def busway_voltage_drop_pct(
    current_a: float,
    length_m: float,
    r_mohm_per_m: float,
    x_mohm_per_m: float,
    voltage_v: float,
    power_factor: float,
    dc: bool = False,
) -> float:
    """Voltage drop along a feeder, in % of nominal.

    .. math:: \\Delta V\\% = \\frac{k\\, I\\, (R\\cos\\varphi + X\\sin\\varphi)\\, L}{V} \\times 100,
              \\quad k = \\sqrt{3} \\text{ (3-phase)}, \\; 2 \\text{ (DC, two poles, } \\cos\\varphi = 1)

    For a busway whose load is spread evenly along a row, L is the feed plus half the row.
    Reference: IEEE Std 141 (Red Book) ch. 3, approximate voltage-drop formula.
    """
    if dc:
        return 2.0 * current_a * r_mohm_per_m / 1000.0 * length_m / voltage_v * 100.0
    sin_phi = math.sqrt(max(0.0, 1.0 - power_factor**2))
    ohm_per_m = (r_mohm_per_m * power_factor + x_mohm_per_m * sin_phi) / 1000.0
    return math.sqrt(3.0) * current_a * ohm_per_m * length_m / voltage_v * 100.0


def line_current_a(power_kw: float, voltage_v: float, power_factor: float, dc: bool = False) -> float:
    """:math:`I = P / (\\sqrt{3} V \\cos\\varphi)` (3-phase AC) or :math:`I = P / V` (DC)."""
    if dc:
        return power_kw * 1000.0 / voltage_v
    return power_kw * 1000.0 / (math.sqrt(3.0) * voltage_v * power_factor)


def interrupting_rating_ka(fault_ka: float, ratings_ka: list[float]) -> float:
    """The smallest standard interrupting rating at or above the fault level (the largest when none is)."""
    fitting = [r for r in sorted(ratings_ka) if r >= fault_ka]
    return fitting[0] if fitting else max(ratings_ka)


def voltage_thd_pct(current_thd_pct: float, load_kva: float, short_circuit_kva: float) -> float:
    """Voltage distortion at the point of interconnection from the load's harmonic current.

    .. math:: THD_V \\approx THD_I \\, S_{load} / S_{sc}

    (harmonic currents through the source impedance, which is :math:`1/S_{sc}` per unit; frequency
    dependence ignored). Reference: IEEE 519-2014 clause 5 (limits at the PCC).
    """
    return current_thd_pct * load_kva / short_circuit_kva


def smoothed_ramp_fraction_per_min(
    swing_kw: float, storage_kwh: float, facility_kw: float, max_window_s: float = 3600.0
) -> tuple[float, float]:
    """(window s, ramp as a share of facility power per minute) of a load swing smoothed by storage.

    Storage that covers a linear ramp over T seconds holds :math:`E = \\Delta P\\, T / 2`, so
    :math:`T = 2E/\\Delta P` (capped) and the ramp the grid sees is :math:`\\Delta P / T`.
    """
    if swing_kw <= 0 or facility_kw <= 0:
        return max_window_s, 0.0
    window_s = min(2.0 * storage_kwh * 3600.0 / swing_kw, max_window_s)
    if window_s <= 0:
        return 0.0, math.inf
    return window_s, swing_kw / (window_s / 60.0) / facility_kw


def fuel_l(load_kw: float, autonomy_h: float, fuel_l_per_kwh: float) -> float:
    """Fuel stored for `autonomy_h` hours at the generators' design load: :math:`V = P\\, t\\, b`."""
    return load_kw * autonomy_h * fuel_l_per_kwh
