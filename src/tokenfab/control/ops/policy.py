"""The operations loop's decisions, as pure functions over what Prometheus and the store say.

They use the twin's own functions (`tokenfab.twin.power`, `tokenfab.twin.autoscale`), so the live factory
and its simulation follow one policy.

Grid event / power cap (the twin's response, `tokenfab.twin.power`): bring IT power down by
:math:`\\Delta P = (P_{fac} - P_{cap}) / PUE` (plus a margin); first cap training GPUs to the highest
per-GPU cap that saves it, :math:`c = \\max(c_{floor}, \\min(P_{train}, (n P_{now} - \\Delta P) / n))`
(`training_cap_for_budget_w`); if the floor is reached, pause training jobs, flexible first and newest
first, until the rest is saved (each paused GPU saves :math:`c - P_{idle}`). Inference is never capped
or paused here (its SLO is kept).

SLO burn: replicas for the observed demand (`tokenfab.twin.autoscale.replicas_needed`, the twin's
Dynamo-style planner), with demand = served request rate + backlog growth + backlog / drain time, at
least one more than now, within the tenant's quota.

CDU failure: the racks a CDU cools are derated to the share of the hall's CDUs still running; if fewer
run than the hall needs, the twin's `racks_stopped_by_cdu_loss` racks are drained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tokenfab.twin import autoscale, power

SHED_MARGIN = 0.02
"""Shed this share more than the excess, so the draw lands under the cap, not on it [-]."""
BACKLOG_DRAIN_S = 60.0
"""Time in which added replicas should clear the queued requests [s]."""


@dataclass(frozen=True)
class TrainingJobView:
    id: str
    gpus: int
    flexible: bool
    started_unix: float


@dataclass(frozen=True)
class PowerDecision:
    training_cap_w: float
    pause: list[str]
    it_reduction_w: float
    saved_by_cap_w: float
    saved_by_pause_w: float


def power_response(
    facility_w: float,
    cap_w: float,
    pue: float,
    jobs: list[TrainingJobView],
    train_now_w: float,
    train_full_w: float,
    train_floor_w: float,
    idle_w: float,
) -> PowerDecision:
    """Training cap and jobs to pause to bring facility draw under `cap_w` (module docstring)."""
    over_it_w = max(0.0, (facility_w - cap_w) / pue) * (1.0 + SHED_MARGIN)
    n_train = sum(j.gpus for j in jobs)
    if over_it_w <= 0 or n_train == 0:
        return PowerDecision(train_now_w, [], over_it_w, 0.0, 0.0)
    cap = power.training_cap_for_budget_w(
        n_train * train_now_w - over_it_w, n_train, train_floor_w, train_full_w
    )
    saved = n_train * (train_now_w - power.training_gpu_power_w(cap, train_full_w))
    rest = over_it_w - saved
    pause, paused_w = [], 0.0
    if rest > 0:
        per_gpu = max(power.training_gpu_power_w(cap, train_full_w) - idle_w, 1e-9)
        for job in sorted(jobs, key=lambda j: (not j.flexible, -j.started_unix, j.id)):
            if paused_w >= rest:
                break
            pause.append(job.id)
            paused_w += job.gpus * per_gpu
    return PowerDecision(cap, pause, over_it_w, saved, paused_w)


def replicas_for_burn(
    served_requests_per_s: float,
    backlog: float,
    backlog_growth_per_s: float,
    output_tokens_per_request: float,
    tokens_per_s_per_gpu: float,
    gpus_per_replica: int,
    current: int,
    headroom: float = 0.1,
) -> int:
    """Replicas that carry the observed demand and drain the backlog; at least one more than now [-]."""
    demand = served_requests_per_s + max(backlog_growth_per_s, 0.0) + backlog / BACKLOG_DRAIN_S
    need = autoscale.replicas_needed(
        demand,
        max(output_tokens_per_request, 1.0),
        tokens_per_s_per_gpu,
        gpus_per_replica,
        headroom,
        current + 1,
    )
    return max(current + 1, need)


def replicas_within_quota(
    target: int, current: int, gpus_per_replica: int, quota_gpus: int | None, tenant_gpus_held: int
) -> int:
    """The most replicas up to `target` the tenant's quota allows (counting this service's own GPUs)."""
    if quota_gpus is None:
        return target
    others = tenant_gpus_held - current * gpus_per_replica
    return max(current, min(target, (quota_gpus - others) // max(gpus_per_replica, 1)))


def cdu_of_rack(rack_in_hall: int, hall_racks: int, cdus_installed: int) -> int:
    """The CDU (index within the hall) that cools a rack: racks split evenly, in order [-]."""
    return rack_in_hall * max(cdus_installed, 1) // max(hall_racks, 1)


def derate_fraction(cdus_running: int, cdus_installed: int) -> float:
    """Power share left to the racks of a failed CDU: the share of the hall's CDUs still running [-]."""
    return max(0.0, min(1.0, cdus_running / max(cdus_installed, 1)))


def racks_to_stop(cdus_required: int, cdus_running: int, racks_cooled: int) -> int:
    """Racks to drain when fewer CDUs run than the hall needs (the twin's function) [-]."""
    return power.racks_stopped_by_cdu_loss(cdus_required, cdus_running, racks_cooled) if racks_cooled else 0


def finite(value: float | None, default: float = 0.0) -> float:
    return default if value is None or not math.isfinite(value) else float(value)
