"""The facility side of the twin: the figures a design gives it, node health, failures and CDU losses.

`facility_figures` reduces a design to what the twin needs to turn GPU states into facility power, carbon
and cost. `NodeHealth` keeps why each node is out of service (failures and drains are counted, so
overlapping faults heal only when the last one is repaired) and which racks a CDU loss stopped. The
events `Failure`, `Repair`, `CduFailure` and `CduRepair` change it and return what follows (a repair, a
checkpoint of a draining job, a scheduling pass); `failure_events` draws the failures of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from tokenfab.blueprint.design import Design
from tokenfab.catalog.models import Gpu, System
from tokenfab.fleet import HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, Fleet
from tokenfab.twin import power
from tokenfab.twin.engine import Event
from tokenfab.twin.failures import FAILURE_RATES, draw_failures
from tokenfab.twin.training import Checkpoint, want_schedule

if TYPE_CHECKING:
    from tokenfab.twin.state import TwinState
    from tokenfab.twin.workload import WorkloadSpec


@dataclass(frozen=True)
class FacilityFigures:
    """What the twin needs from a design to turn GPU states into facility power, carbon and cost."""

    gpu_tdp_w: float
    gpu_idle_w: float
    host_w_per_gpu: float
    fabric_kw: float
    pue: float
    grid_kw: float
    price_usd_per_kwh: float
    carbon_g_per_kwh: float
    usd_per_gpu_hour: float
    gpus_per_node: int
    gpus_per_domain: int
    clock_power_exponent: float
    hall_cdus_required: tuple[int, ...]
    hall_cdus_installed: tuple[int, ...]
    system: str


def facility_figures(design: Design, catalog) -> FacilityFigures:
    """Fleet-wide figures from a design (GPU-weighted over sites)."""
    sites = design.sites
    weights = np.array([s.metrics.gpus for s in sites], dtype=float)
    weights = weights / weights.sum()
    gpus = [catalog.typed("gpus", s.gpu, Gpu) for s in sites]
    systems = [catalog.typed("systems", s.system, System) for s in sites]
    try:
        from tokenfab.perf.calibration import calibration_for

        gamma = float(calibration_for(catalog, gpus[0].architecture).clock_power_exponent)
    except (ImportError, KeyError):
        gamma = 2.5
    required = [hall.cdus_required for site in sites for hall in site.halls]
    installed = [hall.cdus_installed for site in sites for hall in site.halls]
    host_w = [
        power.host_power_per_gpu_w(s.rack_power_nominal_kw, s.gpus_per_rack, g.tdp_w)
        for s, g in zip(systems, gpus, strict=True)
    ]
    return FacilityFigures(
        gpu_tdp_w=float(np.dot(weights, [g.tdp_w for g in gpus])),
        gpu_idle_w=float(np.dot(weights, [g.idle_power_w for g in gpus])),
        host_w_per_gpu=float(np.dot(weights, host_w)),
        fabric_kw=float(sum(s.fabric.switch_power_kw + s.fabric.transceiver_power_kw for s in sites)),
        pue=float(np.dot(weights, [s.cooling.pue_annual for s in sites])),
        grid_kw=float(sum(s.power.grid_mw for s in sites) * 1000.0),
        price_usd_per_kwh=float(np.dot(weights, [s.price_usd_per_kwh for s in sites])),
        carbon_g_per_kwh=float(np.dot(weights, [s.carbon_g_per_kwh for s in sites])),
        usd_per_gpu_hour=float(design.metrics.usd_per_gpu_hour),
        gpus_per_node=int(systems[0].gpus_per_node),
        gpus_per_domain=int(systems[0].gpus_per_nvlink_domain),
        clock_power_exponent=gamma,
        hall_cdus_required=tuple(required),
        hall_cdus_installed=tuple(installed),
        system=sites[0].system,
    )


@dataclass
class NodeHealth:
    """Why nodes are out of service: open failures and drains per node, CDUs down and racks stopped per hall."""

    fleet: Fleet
    figures: FacilityFigures
    fail_count: np.ndarray = field(init=False)
    drain_count: np.ndarray = field(init=False)
    unhealthy: np.ndarray = field(init=False)
    """Nodes not OK now (failed or draining) [-]."""
    failure_nodes: dict[int, np.ndarray] = field(default_factory=dict)
    """Open failures by key: the nodes each took out."""
    next_failure_key: int = 0
    cdu_failed: np.ndarray = field(init=False)
    cdu_stopped_racks: np.ndarray = field(init=False)
    failure_counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in FAILURE_RATES})

    def __post_init__(self) -> None:
        f = self.fleet
        self.fail_count = np.zeros(f.n_nodes, dtype=np.int32)
        self.drain_count = np.zeros(f.n_nodes, dtype=np.int32)
        self.unhealthy = np.zeros(0, dtype=np.int64)
        self.cdu_failed = np.zeros(f.n_halls, dtype=np.int64)
        self.cdu_stopped_racks = np.zeros(f.n_halls, dtype=np.int64)
        self.node_first_gpu = np.concatenate([[0], np.cumsum(f.node_gpus.astype(np.int64))])
        self.node_rack = f.node_rack
        self.rack_hall = f.su_hall[f.rack_su]

    def down_gpus(self) -> int:
        """Free GPUs on unhealthy nodes (neither allocated nor usable) [-]."""
        return int(self.fleet.node_free_gpus[self.unhealthy].sum()) if len(self.unhealthy) else 0

    def nodes_of(self, component: str, unit: int) -> np.ndarray:
        """The nodes one failed unit takes out."""
        if component == "gpu":
            return np.array([np.searchsorted(self.node_first_gpu, unit, side="right") - 1], dtype=np.int64)
        if component == "node":
            return np.array([unit], dtype=np.int64)
        if component == "nvlink_tray":
            return np.flatnonzero(self.fleet.node_domain == unit)
        if component == "rack":
            return np.flatnonzero(self.node_rack == unit)
        raise ValueError(component)

    def open_failure(self, component: str, unit: int) -> tuple[int, np.ndarray]:
        """Count a failure (an NVLink tray drains its domain, anything else fails its nodes); its key and nodes."""
        nodes = self.nodes_of(component, unit)
        self.failure_counts[component] += 1
        key = self.next_failure_key
        self.next_failure_key += 1
        self.failure_nodes[key] = nodes
        if component == "nvlink_tray":
            self.drain_count[nodes] += 1
        else:
            self.fail_count[nodes] += 1
        return key, nodes

    def close_failure(self, component: str, key: int) -> np.ndarray:
        """Undo the failure `key`; the nodes it had taken out."""
        nodes = self.failure_nodes.pop(key)
        if component == "nvlink_tray":
            self.drain_count[nodes] -= 1
        else:
            self.fail_count[nodes] -= 1
        return nodes

    def change_cdus(self, hall: int, delta_units: int) -> np.ndarray | None:
        """CDUs of `hall` lost (+) or restored (-); the nodes whose racks stop or restart, None if none do."""
        self.cdu_failed[hall] += delta_units
        if delta_units > 0:
            self.failure_counts["cdu"] += delta_units
        fig = self.figures
        required = fig.hall_cdus_required[hall] if hall < len(fig.hall_cdus_required) else 1
        installed = fig.hall_cdus_installed[hall] if hall < len(fig.hall_cdus_installed) else 1
        racks = np.flatnonzero(self.rack_hall == hall)
        stop = power.racks_stopped_by_cdu_loss(required, installed - int(self.cdu_failed[hall]), len(racks))
        before = int(self.cdu_stopped_racks[hall])
        if stop == before:
            return None
        lo, hi = sorted((before, stop))
        changed_racks = racks[len(racks) - hi : len(racks) - lo] if hi > 0 else racks[:0]
        nodes = np.flatnonzero(np.isin(self.node_rack, changed_racks))
        self.fail_count[nodes] += 1 if stop > before else -1
        self.cdu_stopped_racks[hall] = stop
        return nodes

    def target_health(self, nodes: np.ndarray) -> np.ndarray:
        """What the counts say each node's health should be: failed, draining or OK."""
        draining = np.where(self.drain_count[nodes] > 0, HEALTH_DRAINING, HEALTH_OK)
        return np.where(self.fail_count[nodes] > 0, HEALTH_FAILED, draining)

    def recount_unhealthy(self, nodes: np.ndarray) -> None:
        candidates = np.union1d(self.unhealthy, nodes)
        self.unhealthy = candidates[self.fleet.node_health[candidates] != HEALTH_OK]


def apply_health(state: TwinState, t: float, nodes: np.ndarray) -> list[Event]:
    """Bring the scheduler's node health to what the counts say; interrupt work on failed nodes, and ask
    jobs on draining nodes to leave at their next checkpoint (replicas move at the next tick)."""
    health = state.health
    target = health.target_health(nodes)
    current = state.fleet.node_health[nodes]
    events: list[Event] = []
    for level in (HEALTH_OK, HEALTH_DRAINING, HEALTH_FAILED):
        changed = nodes[(target == level) & (current != level)]
        if not len(changed):
            continue
        affected = state.sched.set_health(changed, level)
        if level == HEALTH_FAILED:
            for request_id in affected:
                state.interrupt(t, request_id, "failure")
        elif level == HEALTH_DRAINING:
            events += _drain(state, t, affected)
    health.recount_unhealthy(nodes)
    return events


def _drain(state: TwinState, t: float, request_ids) -> list[Event]:
    events: list[Event] = []
    running = state.training.running
    for request_id in request_ids:
        if request_id in running and not running[request_id].draining:
            job = running[request_id]
            job.draining = True
            events.append(Checkpoint(state.training.next_checkpoint_s(job, t), job.id, job.epoch))
        elif request_id in state.inference.replica_owner:
            state.inference.draining_replicas.add(request_id)
    return events


@dataclass(slots=True, eq=False)
class Repair(Event):
    rank: ClassVar[int] = 0
    component: str
    nodes_key: int

    def handle(self, state: TwinState) -> list[Event]:
        nodes = state.health.close_failure(self.component, self.nodes_key)
        return [*apply_health(state, self.time_s, nodes), *want_schedule(state.training, self.time_s)]


@dataclass(slots=True, eq=False)
class CduRepair(Event):
    rank: ClassVar[int] = 1
    hall: int
    units: int

    def handle(self, state: TwinState) -> list[Event]:
        return cdu_change(state, self.time_s, self.hall, -self.units)


@dataclass(slots=True, eq=False)
class Failure(Event):
    rank: ClassVar[int] = 5
    component: str
    unit: int
    repair_s: float

    def handle(self, state: TwinState) -> list[Event]:
        t = self.time_s
        key, nodes = state.health.open_failure(self.component, self.unit)
        events = apply_health(state, t, nodes)
        return [*events, Repair(t + self.repair_s, self.component, key), *want_schedule(state.training, t)]


@dataclass(slots=True, eq=False)
class CduFailure(Event):
    rank: ClassVar[int] = 6
    hall: int
    units: int
    repair_s: float

    def handle(self, state: TwinState) -> list[Event]:
        t = self.time_s
        return [
            *cdu_change(state, t, self.hall, self.units),
            CduRepair(t + self.repair_s, self.hall, self.units),
        ]


def cdu_change(state: TwinState, t: float, hall: int, delta_units: int) -> list[Event]:
    """CDUs lost or restored in a hall: the racks over the remaining cooling stop (or restart)."""
    nodes = state.health.change_cdus(hall, delta_units)
    if nodes is None:
        return []
    return [*apply_health(state, t, nodes), *want_schedule(state.training, t)]


def failure_events(
    fleet: Fleet, workload: WorkloadSpec, figures: FacilityFigures, horizon_s: float, rng: np.random.Generator
) -> list[Event]:
    """The run's failures of GPUs, nodes, NVLink trays, racks and CDUs, drawn from `FAILURE_RATES`."""
    f = fleet
    multiplier = workload.failures.rate_multiplier
    units = {
        "gpu": (f.n_gpus, 1.0),
        "node": (f.n_nodes, f.n_gpus / max(f.n_nodes, 1)),
        "nvlink_tray": (f.n_domains, f.n_gpus / max(f.n_domains, 1)),
        "rack": (f.n_racks, f.n_gpus / max(f.n_racks, 1)),
    }
    draws = [
        draw_failures(FAILURE_RATES[component], count, gpus_per_unit, horizon_s, rng, multiplier)
        for component, (count, gpus_per_unit) in units.items()
    ]
    installed = np.asarray(figures.hall_cdus_installed[: f.n_halls] or (1,), dtype=float)
    cdu = draw_failures(
        FAILURE_RATES["cdu"], int(installed.sum()), 1.0, horizon_s, rng, multiplier, unit_weights=installed
    )
    events: list[Event] = []
    for draw in draws:
        for t, unit, repair in zip(
            draw.time_s.tolist(), draw.unit.tolist(), draw.repair_s.tolist(), strict=True
        ):
            events.append(Failure(t, draw.component, int(unit), repair))
    for t, hall, repair in zip(cdu.time_s.tolist(), cdu.unit.tolist(), cdu.repair_s.tolist(), strict=True):
        events.append(CduFailure(t, int(hall), 1, repair))
    return events
