"""Facility power: GPU power by state, the facility cap, grid events and CDU losses.

This is the one facility power model of tokenfab: the twin applies it to its GPU states, and the control
plane (`tokenfab.control.service.memory`) to its allocation state (allocated GPUs at the uncapped
training draw, free GPUs idle, no parking), both with the figures `tokenfab.twin.facility.facility_figures`
reduces a design to.

IT power is the sum over GPUs of their board power by state, plus a host share per powered GPU, plus the
fabric:

.. math:: P_{IT} = n_{train} P_{train}(c_t) + \\sum_s n_s P_s(c_s, u_s) + n_{idle} P_{idle}
          + (N - n_{down}) P_{host} + P_{fabric}, \\qquad P_{facility} = PUE \\cdot P_{IT}

with :math:`P_{host}` the rack's nominal power per GPU above the GPU's TDP (CPUs, NVLink switches, NICs,
fans), :math:`P_s(c, u) = P_{idle} + u (P_{s,op}(c) - P_{idle})` for a service at load share :math:`u`
from the token model's table, and PUE the design's annual PUE.

Training is compute-bound. Its uncapped draw is a share of TDP; under a cap :math:`c` the clock falls to

.. math:: f = \\min\\left(1, \\left(\\frac{c - P_{idle}}{P_{train} - P_{idle}}\\right)^{1/\\gamma}\\right)

because dynamic power at full compute use scales as :math:`f \\cdot f^{\\gamma - 1}` (the token model's
power law, `tokenfab.perf.power.gpu_power_w`, with :math:`u_c \\propto f`); training speed is :math:`f`.

A grid event cuts the facility cap. The response (`tokenfab.twin.response.respond`), in
order: cap training GPUs down to a floor (after ``cap_latency_s``); cap inference GPUs only to caps whose
capacity still covers demand with SLO-meeting rates; then pause flexible training jobs, those with the
newest checkpoint first (after ``pause_latency_s``); then other training. Inference is never paused.
"""

from __future__ import annotations

import math

import numpy as np


def it_power_w(
    busy_power_w: float, idle_gpus: int, powered_gpus: int, idle_power_w: float, host_power_per_gpu_w: float
) -> float:
    """IT power without the fabric [W]: the busy GPUs' board power, plus the idle GPUs at idle power, plus
    the host share of every powered GPU.

    .. math:: P = P_{busy} + n_{idle} P_{idle} + n_{powered} P_{host}

    (:math:`P_{busy} = n_{train} P_{train}(c_t) + \\sum_s n_s P_s(c_s, u_s)` in the module docstring;
    idle GPUs of parked nodes count neither as idle nor as powered).
    """
    return busy_power_w + idle_gpus * idle_power_w + powered_gpus * host_power_per_gpu_w


def it_power_kw(it_power_without_fabric_w: float, fabric_kw: float) -> float:
    """IT power with the fabric [kW]: :math:`P_{IT} = P / 1000 + P_{fabric}`."""
    return it_power_without_fabric_w / 1000.0 + fabric_kw


def facility_power_kw(it_kw: float, pue: float) -> float:
    """Facility power [kW]: :math:`P_{facility} = PUE \\cdot P_{IT}`."""
    return it_kw * pue


def training_gpu_power_w(cap_w: float, full_power_w: float) -> float:
    """Board power of a training GPU under a cap [W]: :math:`\\min(c, P_{train})`."""
    return min(cap_w, full_power_w)


def training_clock_fraction(
    cap_w: float, full_power_w: float, idle_power_w: float, clock_power_exponent: float
) -> float:
    """Clock (and speed) of compute-bound training under a per-GPU cap [-] (equation in the module docstring)."""
    if cap_w >= full_power_w:
        return 1.0
    share = max(cap_w - idle_power_w, 0.0) / max(full_power_w - idle_power_w, 1e-9)
    return float(share ** (1.0 / clock_power_exponent))


def training_cap_for_budget_w(budget_w: float, gpus: int, floor_w: float, full_power_w: float) -> float:
    """Highest per-GPU cap for `gpus` training GPUs to draw at most `budget_w`, within [floor, full] [W]."""
    if gpus <= 0:
        return full_power_w
    return float(min(full_power_w, max(floor_w, budget_w / gpus)))


def service_gpu_power_w(operating_power_w: float, idle_power_w: float, load_share: float) -> float:
    """Board power of an inference GPU at a load share of its capacity [W]."""
    u = min(max(load_share, 0.0), 1.0)
    return idle_power_w + u * (operating_power_w - idle_power_w)


def host_power_per_gpu_w(rack_power_nominal_kw: float, gpus_per_rack: int, tdp_w: float) -> float:
    """Non-GPU power per GPU: rack nominal power per GPU above the GPU's TDP [W]."""
    return max(rack_power_nominal_kw * 1000.0 / gpus_per_rack - tdp_w, 0.0)


def racks_stopped_by_cdu_loss(cdus_required: int, cdus_available: int, hall_racks: int) -> int:
    """Racks of a hall that must stop when only `cdus_available` of `cdus_required` CDUs run [-].

    .. math:: n_{stop} = \\lceil n_{racks} (1 - \\min(1, a / r)) \\rceil
    """
    if cdus_required <= 0 or cdus_available >= cdus_required:
        return 0
    return int(math.ceil(hall_racks * (1.0 - max(cdus_available, 0) / cdus_required) - 1e-9))


def energy_from_steps_kwh(step_time_s: np.ndarray, step_power_kw: np.ndarray, end_s: float) -> float:
    """Integral of a piecewise-constant power series [kWh]: :math:`\\sum_i P_i (t_{i+1} - t_i) / 3600`."""
    t = np.append(np.asarray(step_time_s, dtype=float), end_s)
    return float(np.sum(np.asarray(step_power_kw, dtype=float) * np.diff(t)) / 3600.0)
