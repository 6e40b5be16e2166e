"""Failures of GPUs, nodes, NVLink switch trays, racks and CDUs, drawn from rates with sources.

Each component class fails as a Poisson process: with :math:`\\lambda` failures per unit-hour and
:math:`n` units, the count over :math:`T` hours is :math:`K \\sim \\mathrm{Poisson}(\\lambda n T)`, the
times are uniform over :math:`T` and the unit is uniform over the units. Repair times are exponential
with the mean in `FAILURE_RATES`.

Per-GPU rates come from the Llama 3 training run (Dubey et al. 2024, "The Llama 3 Herd of Models",
§3.3.4, Table 5): 419 unexpected interruptions in 54 days on 16,384 H100 GPUs
(:math:`16384 \\times 54 \\times 24 = 21.23\\,\\mathrm{M}` GPU-hours); 58.7 % were GPU-related (faulty GPU,
HBM3, SRAM, GPU system processor, thermal/sensor, silent data corruption), 35 were network
switch/cable, the rest host, software and other. Effects:

* ``gpu``: the node (tray) holding the GPU fails; the work on it is interrupted.
* ``node``: host-side faults; the node fails.
* ``nvlink_tray``: the NVLink domain is *drained*: no new work; running jobs stop at their next
  checkpoint and are requeued (nothing lost); inference replicas are moved at the next tick.
* ``rack``: power shelf / busbar / manifold fault; every node of the rack fails.
* ``cdu``: a hall loses one CDU; with N+1 the others absorb it, beyond that the hall's racks over the
  remaining cooling capacity stop (see `tokenfab.twin.power.racks_stopped_by_cdu_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LLAMA3_GPU_HOURS = 16_384 * 54 * 24
"""GPU-hours of the Llama 3 405B pre-training snapshot [GPU·h] (Dubey et al. 2024, §3.3.4)."""
LLAMA3_UNEXPECTED = 419
LLAMA3_GPU_RELATED = round(0.587 * LLAMA3_UNEXPECTED)
LLAMA3_NETWORK = 35


@dataclass(frozen=True)
class FailureRate:
    """Failures per unit-hour of one component class, its repair time, and where both come from."""

    component: str
    unit: str
    """What one unit is: gpu, node, nvlink_domain, rack, cdu."""
    per_unit_hour: float
    """Failures per unit per hour when ``per_gpu`` is false, per GPU of the unit otherwise [1/h]."""
    per_gpu: bool
    repair_h: float
    """Mean time to repair [h]."""
    source: str
    repair_source: str


FAILURE_RATES: dict[str, FailureRate] = {
    "gpu": FailureRate(
        "gpu",
        "gpu",
        LLAMA3_GPU_RELATED / LLAMA3_GPU_HOURS,
        True,
        12.0,
        "Llama 3 (Dubey et al. 2024) §3.3.4 Table 5: 58.7 % of 419 interruptions GPU-related, 16,384 GPUs, 54 days",
        "estimate: tray swap from spares and burn-in within a shift (12 h)",
    ),
    "node": FailureRate(
        "node",
        "node",
        (LLAMA3_UNEXPECTED - LLAMA3_GPU_RELATED - LLAMA3_NETWORK) / LLAMA3_GPU_HOURS,
        True,
        4.0,
        "Llama 3 (Dubey et al. 2024) Table 5: interruptions not GPU-related nor network (host, software, other)",
        "estimate: reboot/reimage or host part swap (4 h)",
    ),
    "nvlink_tray": FailureRate(
        "nvlink_tray",
        "nvlink_domain",
        LLAMA3_NETWORK / LLAMA3_GPU_HOURS,
        True,
        8.0,
        "Llama 3 (Dubey et al. 2024) Table 5: 35 network switch/cable interruptions, applied per GPU to its "
        "NVLink domain (estimate: scale-out switch faults taken as a proxy for NVLink switch trays)",
        "estimate: switch tray swap (8 h)",
    ),
    "rack": FailureRate(
        "rack",
        "rack",
        1.0 / 50_000.0,
        False,
        8.0,
        "estimate: rack power shelf / busbar / manifold faults, MTBF 50,000 h per rack",
        "estimate: 8 h",
    ),
    "cdu": FailureRate(
        "cdu",
        "cdu",
        1.0 / 40_000.0,
        False,
        12.0,
        "estimate: CDU pump/controls MTBF 40,000 h",
        "estimate: pump swap 12 h",
    ),
}


@dataclass(frozen=True)
class FailureDraw:
    """Failures of one component class over the horizon, in time order."""

    component: str
    time_s: np.ndarray
    unit: np.ndarray
    """Index of the failed unit (gpu index, node, domain, rack, or hall for CDUs)."""
    repair_s: np.ndarray


def draw_failures(
    rate: FailureRate,
    units: int,
    gpus_per_unit: float,
    horizon_s: float,
    rng: np.random.Generator,
    multiplier: float = 1.0,
    unit_weights: np.ndarray | None = None,
) -> FailureDraw:
    """Poisson failures of `units` identical units over ``[0, horizon_s)``.

    Parameters
    ----------
    rate : FailureRate
    units : int
        Number of units [-].
    gpus_per_unit : float
        GPUs per unit, used when the rate is per GPU [-].
    horizon_s : float
        Simulated time [s].
    rng : numpy.random.Generator
    multiplier : float
        Scales the rate (stress scenarios) [-].
    unit_weights : array, optional
        Relative chance of each unit (e.g. CDUs per hall); uniform by default.
    """
    per_unit_hour = rate.per_unit_hour * (gpus_per_unit if rate.per_gpu else 1.0) * multiplier
    expected = per_unit_hour * units * horizon_s / 3600.0
    count = int(rng.poisson(expected)) if expected > 0 and units > 0 else 0
    times = np.sort(rng.uniform(0.0, horizon_s, count))
    if unit_weights is None:
        unit = rng.integers(0, max(units, 1), count)
    else:
        p = np.asarray(unit_weights, dtype=float)
        unit = rng.choice(len(p), size=count, p=p / p.sum())
    repair = rng.exponential(rate.repair_h * 3600.0, count)
    return FailureDraw(rate.component, times, unit, np.maximum(repair, 60.0))
