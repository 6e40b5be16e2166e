"""Invariants every run must keep; `check_invariants(run)` returns the violations (empty when sound).

1. No GPU in two allocations: for every node, the GPUs the allocations hold sum to at most the node's
   GPUs and equal installed − free (the fleet's own count).
2. GPU-hours are conserved: training + inference + idle + down = N × T.
3. Energy equals the integral of the facility power steps.
4. Determinism (same seed ⇒ same result) is checked by running twice (`same_result`).
"""

from __future__ import annotations

import numpy as np

from tokenfab.twin.power import energy_from_steps_kwh


def allocation_violations(node_gpus, node_free_gpus, allocations, where: str = "end") -> list[str]:
    """Nodes whose allocations overlap or disagree with the free count."""
    held = np.zeros(len(node_gpus), dtype=np.int64)
    for item in allocations.values():
        nodes, gpus = (item.nodes, item.gpus_per_node) if hasattr(item, "nodes") else item
        np.add.at(held, np.asarray(nodes, dtype=np.int64), np.asarray(gpus, dtype=np.int64))
    out = []
    over = np.flatnonzero(held > np.asarray(node_gpus))
    if len(over):
        out.append(f"{where}: {len(over)} nodes hold more GPUs than installed (first: node {over[0]})")
    mismatch = np.flatnonzero(
        held != np.asarray(node_gpus, dtype=np.int64) - np.asarray(node_free_gpus, dtype=np.int64)
    )
    if len(mismatch):
        out.append(
            f"{where}: {len(mismatch)} nodes where allocations != installed - free (first: node {mismatch[0]})"
        )
    return out


def check_invariants(run, rel_tol: float = 1e-9) -> list[str]:
    """All violations of the run's invariants, as readable lines (empty list when the run is sound)."""
    out = list(run.violations)
    out += allocation_violations(run.final_node_gpus, run.final_node_free_gpus, run.final_allocations)
    total = run.total_gpus * run.horizon_s
    states = sum(run.gpu_seconds.values())
    if abs(states - total) > rel_tol * max(total, 1.0) * 10:
        out.append(
            f"GPU-hours not conserved: states sum to {states / 3600:.6f} h, N×T = {total / 3600:.6f} h"
        )
    if min(run.gpu_seconds.values()) < -1e-6:
        out.append(f"negative GPU-hours in a state: {run.gpu_seconds}")
    integral = energy_from_steps_kwh(run.power_step_time_s, run.power_step_kw, run.horizon_s)
    if abs(integral - run.energy_kwh) > 1e-6 * max(run.energy_kwh, 1.0):
        out.append(f"energy {run.energy_kwh:.6f} kWh != integral of power {integral:.6f} kWh")
    return out


def same_result(a, b) -> bool:
    """Two runs are the same: identical summaries, series and job tables."""
    if a.summary != b.summary or a.series.keys() != b.series.keys():
        return False
    for key in a.series:
        if not np.array_equal(a.series[key], b.series[key]):
            return False
    for key in a.jobs:
        x, y = a.jobs[key], b.jobs[key]
        if x.dtype == object:
            if list(x) != list(y):
                return False
        elif not np.array_equal(x, y, equal_nan=True):
            return False
    return True
