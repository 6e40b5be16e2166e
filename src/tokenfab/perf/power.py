"""GPU power while serving, by phase and load, and throughput under a power cap.

The board draws its idle power plus a dynamic part that follows how busy the tensor cores and HBM are:

.. math::
    P = P_{idle} + (P_{TDP} - P_{idle})\\,\\left(w_c\\,u_c\\,f^{\\gamma-1} + w_m\\,u_m\\right)

with :math:`u_c` the share of the step the tensor cores are busy (compute time at the calibrated sustained
rate over step time, at nominal clock), :math:`u_m` the share HBM is busy, :math:`f` the SM clock relative to nominal and :math:`\\gamma` the DVFS exponent
(dynamic power :math:`\\propto f V^2` with voltage roughly following clock, so energy per FLOP
:math:`\\propto f^{\\gamma-1}`). Memory-bound decode at small batch keeps :math:`u_c` low and draws well
below TDP; prefill keeps :math:`u_c` high and reaches TDP, where the GPU's own limit clamps the clock.

A cap :math:`P_{cap} \\le P_{TDP}` lowers :math:`f` until :math:`P \\le P_{cap}`. Compute time scales as
:math:`1/f` and HBM time does not, so decode stays nearly flat down to a deep cap and prefill slows with
the clock.

References
----------
.. [1] Samsi et al., "From Words to Watts: Benchmarking the Energy Costs of LLM Inference",
       arXiv:2310.03003 (power caps to ~70 % TDP cost a few % latency).
.. [2] NVIDIA technical blog, workload power profiles on Blackwell (up to 15 % energy at >= 97 % perf).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def gpu_power_w(
    compute_utilisation: ArrayLike,
    memory_utilisation: ArrayLike,
    idle_power_w: float,
    tdp_w: float,
    compute_weight: float,
    memory_weight: float,
    clock_fraction: ArrayLike = 1.0,
    clock_power_exponent: float = 2.5,
) -> np.ndarray:
    """Board power at a given load and clock [W] (equation in the module docstring).

    Parameters
    ----------
    compute_utilisation : array-like
        Share of time the tensor cores are busy, at nominal clock [-].
    memory_utilisation : array-like
        Share of time HBM is busy [-].
    idle_power_w, tdp_w : float
        Idle and rated board power [W].
    compute_weight, memory_weight : float
        Dynamic power with tensor cores (HBM) busy all the time, as shares of :math:`P_{TDP} - P_{idle}` [-].
    clock_fraction : array-like
        SM clock relative to nominal [-].
    clock_power_exponent : float
        :math:`\\gamma` [-].
    """
    f = np.asarray(clock_fraction, dtype=float)
    dynamic = compute_weight * np.asarray(compute_utilisation) * f ** (clock_power_exponent - 1.0) + (
        memory_weight * np.asarray(memory_utilisation)
    )
    return idle_power_w + (tdp_w - idle_power_w) * dynamic


def capped_clock_fraction(
    compute_time_s: ArrayLike,
    memory_time_s: ArrayLike,
    other_time_s: ArrayLike,
    flops: ArrayLike,
    bytes_: ArrayLike,
    peak_flops_per_s: float,
    peak_bytes_per_s: float,
    idle_power_w: float,
    tdp_w: float,
    power_cap_w: float,
    compute_weight: float,
    memory_weight: float,
    clock_power_exponent: float,
    min_clock_fraction: float = 0.3,
    iterations: int = 24,
) -> np.ndarray:
    """Highest clock fraction :math:`f \\le 1` whose power stays under ``min(cap, TDP)`` (bisection).

    `compute_time_s` and `memory_time_s` stack the operator groups on axis 0; the step time at clock
    :math:`f` is :math:`t(f) = \\sum_{op} \\max(t_{c,op} / f, t_{m,op}) + t_o` and the utilisations are
    ``flops / peak_flops_per_s`` and ``bytes_ / peak_bytes_per_s`` over :math:`t(f)` (pass busy seconds
    with unit peaks to use busy fractions).
    """
    cap = min(power_cap_w, tdp_w)
    tc = np.asarray(compute_time_s, dtype=float)
    tm = np.asarray(memory_time_s, dtype=float)
    to = np.asarray(other_time_s, dtype=float)
    flops = np.asarray(flops, dtype=float)
    bytes_ = np.asarray(bytes_, dtype=float)

    def power(f: np.ndarray) -> np.ndarray:
        t = step_time_at_clock_s(tc, tm, to, f)
        return gpu_power_w(
            flops / (t * peak_flops_per_s),
            bytes_ / (t * peak_bytes_per_s),
            idle_power_w,
            tdp_w,
            compute_weight,
            memory_weight,
            f,
            clock_power_exponent,
        )

    shape = np.broadcast_shapes(tc.shape[1:], tm.shape[1:], to.shape)
    lo = np.full(shape, min_clock_fraction)
    hi = np.ones(shape)
    ok_at_full = power(hi) <= cap
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        fits = power(mid) <= cap
        lo = np.where(fits, mid, lo)
        hi = np.where(fits, hi, mid)
    return np.where(ok_at_full, 1.0, lo)


def step_time_at_clock_s(compute_time_s: ArrayLike, memory_time_s: ArrayLike, other_time_s: ArrayLike, clock_fraction: ArrayLike = 1.0) -> np.ndarray:
    """Step time when the SM clock runs at `clock_fraction` of nominal [s].

    Operator groups are stacked on axis 0 of the compute and memory times:

    .. math:: t(f) = \\sum_{op} \\max(t_{c,op} / f,\\; t_{m,op}) + t_o
    """
    per_op = np.maximum(np.asarray(compute_time_s) / clock_fraction, np.asarray(memory_time_s))
    step_s: np.ndarray = per_op.sum(axis=0) + other_time_s
    return step_s
