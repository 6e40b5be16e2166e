"""Inference in the twin: services with their token-model rates, demand, power caps and autoscaled replicas.

`build_services` prices each service with the token model (`tokenfab.twin.rates.service_rates`) and lays
its demand over the run's ticks. `Inference` holds the services and which placement belongs to which;
`Inference.load` turns demand into board power, busy GPUs and served tokens at the caps in force.
`autoscale` sets a service's replica count at a tick (in the manner of Dynamo's planner,
`tokenfab.twin.autoscale`), moving replicas off draining nodes and placing new ones through the fleet
scheduler, whose preemptions may stop training jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.sched.types import Placement, Request, Unplaceable, WorkloadKind
from tokenfab.twin import autoscale as planner
from tokenfab.twin.entities import InferenceService
from tokenfab.twin.power import service_gpu_power_w
from tokenfab.twin.workload import WorkloadSpec, demand_at_ticks, demand_scale, trace_minute_profile

if TYPE_CHECKING:
    from tokenfab.twin.state import TwinState

PREDICTOR_WINDOW_TICKS = 6
"""The autoscaler predicts the next tick's demand as the highest of the last this-many ticks [-]."""


@dataclass(frozen=True)
class InferenceLoad:
    """What the services draw and deliver at a set of caps, for the demand of the current tick."""

    power_w: float
    """Board power of every replica GPU [W]."""
    gpus: int
    busy_gpus: float
    """GPU-equivalents busy serving (GPUs × load share) [-]."""
    served: list[float]
    """Output tokens/s served per service [1/s]."""
    demanded: list[float]


@dataclass
class Inference:
    """The services, their replicas' owners, and the demand of the current tick."""

    services: list[InferenceService]
    replica_owner: dict[str, InferenceService] = field(default_factory=dict)
    draining_replicas: set[str] = field(default_factory=set)
    demand_now: np.ndarray = field(init=False)
    """Request rate of each service this tick [1/s]."""
    predicted: np.ndarray = field(init=False)
    """Request rate the planner provisions for, per service [1/s]."""
    dirty: bool = True
    """Replicas, caps or demand changed since `load` was last taken."""

    def __post_init__(self) -> None:
        self.demand_now = np.zeros(len(self.services))
        self.predicted = np.zeros(len(self.services))

    def capacity_tokens_per_s(self, svc: InferenceService, cap_index: int | None = None) -> float:
        """Output tokens/s a service's replicas deliver at a cap row (default: the row in force) [1/s]."""
        row = svc.cap_index if cap_index is None else cap_index
        return svc.gpus * float(svc.rates.output_tokens_per_s_per_gpu[row])

    def load(self, idle_power_w: float, service_caps: list[int] | None = None) -> InferenceLoad:
        """Power, GPUs, busy GPUs and tokens of every service at `service_caps` (default: the caps in force).

        A service at load share :math:`u = \\min(demand / capacity, 1)` draws
        `tokenfab.twin.power.service_gpu_power_w` per GPU.
        """
        power_w, gpus_total, busy = 0.0, 0, 0.0
        served, demanded = [], []
        for i, svc in enumerate(self.services):
            row = svc.cap_index if service_caps is None else service_caps[i]
            gpus = svc.gpus
            capacity = self.capacity_tokens_per_s(svc, row)
            demand = float(self.demand_now[i]) * svc.osl
            share = min(demand / capacity, 1.0) if capacity > 0 else 0.0
            power_w += gpus * service_gpu_power_w(float(svc.rates.gpu_power_w[row]), idle_power_w, share)
            gpus_total += gpus
            busy += gpus * share
            served.append(min(demand, capacity))
            demanded.append(demand)
        return InferenceLoad(power_w, gpus_total, busy, served, demanded)

    def lowest_safe_row(self, i: int, svc: InferenceService) -> int:
        """The lowest cap whose rates still meet the SLO and cover this tick's demand (else the TDP row)."""
        demand = self.demand_now[i] * svc.osl
        rows = len(svc.rates.power_cap_w)
        for row in range(rows):
            if svc.rates.meets_targets[row] and self.capacity_tokens_per_s(svc, row) >= demand:
                return row
        return rows - 1

    def set_caps(self, rows: list[int]) -> None:
        for svc, row in zip(self.services, rows, strict=True):
            if svc.cap_index != row:
                svc.cap_index = row
                self.dirty = True

    def observe(self, index: int) -> list[tuple[InferenceService, float]]:
        """Take tick `index`'s demand; each service with demand then and the rate its planner predicts.

        Before an hour of history exists the planner is pre-provisioned for the first hour's peak.
        """
        observed = []
        for i, svc in enumerate(self.services):
            if index < len(svc.demand_requests_per_s):
                if index >= PREDICTOR_WINDOW_TICKS:
                    lo, hi = index - PREDICTOR_WINDOW_TICKS, index
                else:
                    lo, hi = 0, PREDICTOR_WINDOW_TICKS
                peak = float(svc.demand_requests_per_s[lo:hi].max())
                self.demand_now[i] = svc.demand_requests_per_s[index]
                self.dirty = True
                self.predicted[i] = peak
                observed.append((svc, peak))
        return observed

    def add_replica(self, svc: InferenceService, replica_id: str, nodes: np.ndarray) -> None:
        svc.replicas[replica_id] = nodes
        self.dirty = True
        self.replica_owner[replica_id] = svc

    def drop_replica(self, replica_id: str) -> None:
        """A placement gone (its GPUs released by the caller)."""
        svc = self.replica_owner.pop(replica_id)
        svc.replicas.pop(replica_id, None)
        self.dirty = True
        self.draining_replicas.discard(replica_id)


def autoscale(state: TwinState, t: float, svc: InferenceService, observed_requests_per_s: float) -> None:
    """Set a service's replicas for the predicted demand: off draining nodes, then up or down."""
    needed = planner.replicas_needed(
        observed_requests_per_s,
        svc.osl,
        float(svc.rates.output_tokens_per_s_per_gpu[svc.cap_index]),
        svc.gpus_per_placement,
        svc.headroom,
        math.ceil(svc.min_replicas / svc.replicas_per_placement),
    )
    for replica_id in [r for r in svc.replicas if r in state.inference.draining_replicas]:
        state.interrupt(t, replica_id, "drain")
    target = planner.scale_target(len(svc.replicas), needed)
    while len(svc.replicas) > target:
        state.interrupt(t, next(reversed(svc.replicas)), "scale_down")
    while len(svc.replicas) < target:
        replica_id = f"{svc.name}/r{svc.next_replica}"
        svc.next_replica += 1
        if place_replica(state, svc, replica_id) is None:
            break


def place_replica(state: TwinState, svc: InferenceService, replica_id: str) -> Placement | None:
    """Place one replica group, preempting lower-priority work if need be; None when it fits nowhere."""
    g = svc.gpus_per_placement
    request = Request(
        id=replica_id,
        gpus=g,
        tenant=svc.tenant,
        kind=WorkloadKind.inference,
        slice_gpus=g,
        priority=svc.priority,
        preemptible=False,
    )
    result = state.sched.place(request, allow_preemption=True, now_s=state.now_s)
    if isinstance(result, Unplaceable):
        return None
    inference = state.inference
    for evicted in result.evicted:
        if evicted in state.training.running:
            job = state.training.running[evicted]
            job.interruptions += 1
            state.training.stop(state.now_s, job, "preemption")
        elif evicted in inference.replica_owner:
            other = inference.replica_owner.pop(evicted)
            other.replicas.pop(evicted, None)
    inference.add_replica(svc, replica_id, result.nodes)
    return result


def replicas_per_placement(
    gpus_per_replica: int, gpus_per_domain: int, peak_gpus: float, min_placements: int = 16
) -> int:
    """Replicas grouped into one placement: the largest power of two that fits one NVLink domain and
    still leaves at least `min_placements` placements at the service's peak [-].

    At gigawatt scale this keeps allocations in the thousands, not tens of thousands, while a small site
    still scales one replica at a time.
    """
    k = 1
    while (
        2 * k * gpus_per_replica <= gpus_per_domain and 2 * k * gpus_per_replica * min_placements <= peak_gpus
    ):
        k *= 2
    return k


def build_services(
    workload: WorkloadSpec,
    catalog,
    system: str,
    fleet_gpus: int,
    gpus_per_domain: int,
    tick_start_s: np.ndarray,
    tick_s: float,
    traces: dict,
) -> list[InferenceService]:
    """Inference services with their token-model rates and demand at every tick."""
    from tokenfab.twin.rates import service_rates

    services = []
    for spec in workload.inference.services:
        trace = traces[spec.trace]
        isl = max(1, int(round(trace.mean_input_tokens)))
        osl = max(1, int(round(trace.mean_output_tokens)))
        rates = service_rates(
            catalog, spec.model, system, isl, osl, spec.ttft_ms, spec.itl_ms, spec.min_gpus_per_replica
        )
        profile = trace_minute_profile(trace.arrival_s)
        scale = demand_scale(
            profile, spec.peak_gpu_share, fleet_gpus, float(rates.output_tokens_per_s_per_gpu[-1]), osl
        )
        per_placement = replicas_per_placement(
            rates.gpus_per_replica, gpus_per_domain, spec.peak_gpu_share * fleet_gpus
        )
        demand = demand_at_ticks(
            tick_start_s, tick_s, profile, scale, spec.daily_trough_fraction, spec.daily_peak_hour
        )
        services.append(
            InferenceService(
                name=spec.name,
                model=spec.model,
                system=system,
                isl=isl,
                osl=osl,
                ttft_target_ms=spec.ttft_ms,
                itl_target_ms=spec.itl_ms,
                rates=rates,
                demand_requests_per_s=demand,
                priority=spec.priority,
                min_replicas=spec.min_replicas,
                headroom=spec.headroom,
                cap_index=len(rates.power_cap_w) - 1,
                replicas_per_placement=per_placement,
            )
        )
    return services
