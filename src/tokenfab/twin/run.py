"""`simulate`: the twin's entry point, and `Simulation`, the state the events act on.

`simulate(design, workload, days, policy, seed)` builds a fleet from the design, generates the workload
(training jobs calibrated to Acme, inference demand from request traces, failures, grid events), runs the
event loop (`tokenfab.twin.engine`) and returns a `Run`: summary metrics, a time series at every tick,
a table of jobs, the piecewise-constant facility power and the final allocation state (for the
invariants in `tokenfab.twin.invariants`). It writes nothing; the CLI writes ``run.json``, Parquet and the
report.

Placement goes through the fleet scheduler (`tokenfab.sched.scheduler.Scheduler`), the same code the
control plane uses.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tokenfab.blueprint.design import Design
from tokenfab.catalog.models import Gpu, System
from tokenfab.fleet import HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, Fleet, from_design
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Placement, Request, Unplaceable, WorkloadKind
from tokenfab.twin import autoscale, power
from tokenfab.twin.engine import EventQueue, run_events
from tokenfab.twin.entities import InferenceService, JobState, TrainingJob
from tokenfab.twin.events import (
    CduFailure,
    Checkpoint,
    Failure,
    GridEventEnd,
    GridEventStart,
    JobArrival,
    JobFinish,
    JobStart,
    PowerResponse,
    Repair,
    Schedule,
    Tick,
)
from tokenfab.twin.failures import FAILURE_RATES, draw_failures
from tokenfab.twin.workload import (
    ACME_KALOS_FALLBACK,
    AcmeShape,
    ScenarioSpec,
    TrainingJobs,
    WorkloadSpec,
    demand_at_ticks,
    demand_scale,
    generate_training_jobs,
    read_acme_shape,
    trace_minute_profile,
)

MAX_PLACEMENT_TRIES_PER_PASS = 64
TRAINING_CAP_STEP_W = 10.0
"""Training power caps are set in steps of this many watts (as DCGM/nvidia-smi take whole watts) [W]."""
PREDICTOR_WINDOW_TICKS = 6
"""The autoscaler predicts the next tick's demand as the highest of the last this-many ticks [-]."""
MAX_QUEUE_SCAN = 4000
RUN_SCHEMA_VERSION = "1.0"




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
    required, installed = [], []
    for site in sites:
        for hall in site.halls:
            required.append(hall.cdus_required)
            installed.append(hall.cdus_installed)
    return FacilityFigures(
        gpu_tdp_w=float(np.dot(weights, [g.tdp_w for g in gpus])),
        gpu_idle_w=float(np.dot(weights, [g.idle_power_w for g in gpus])),
        host_w_per_gpu=float(
            np.dot(weights, [power.host_power_per_gpu_w(s.rack_power_nominal_kw, s.gpus_per_rack, g.tdp_w) for s, g in zip(systems, gpus, strict=True)])
        ),
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
class Run:
    """The result of one simulation (plain arrays and dicts; `to_dict` gives run.json)."""

    name: str
    policy: str
    seed: int
    days: float
    horizon_s: float
    tick_s: float
    total_gpus: int
    summary: dict
    series: dict[str, np.ndarray]
    jobs: dict[str, np.ndarray]
    services: list[dict]
    grid_events: list[dict]
    power_step_time_s: np.ndarray
    power_step_kw: np.ndarray
    energy_kwh: float
    gpu_seconds: dict[str, float]
    final_node_gpus: np.ndarray
    final_node_free_gpus: np.ndarray
    final_allocations: dict[str, tuple[np.ndarray, np.ndarray]]
    events_handled: int
    scheduler: str
    request_level: dict | None = None
    violations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "schema_version": RUN_SCHEMA_VERSION,
            "name": self.name,
            "policy": self.policy,
            "seed": self.seed,
            "days": self.days,
            "tick_s": self.tick_s,
            "total_gpus": self.total_gpus,
            "scheduler": self.scheduler,
            "events_handled": self.events_handled,
            "summary": self.summary,
            "services": self.services,
            "grid_events": self.grid_events,
            "request_level": self.request_level,
            "gpu_hours": {k: v / 3600.0 for k, v in self.gpu_seconds.items()},
            "energy_mwh": self.energy_kwh / 1000.0,
        }


class Simulation:
    """The twin's mutable state and the actions events take on it."""

    def __init__(
        self,
        fleet: Fleet,
        figures: FacilityFigures,
        workload: WorkloadSpec,
        jobs: TrainingJobs,
        services: list[InferenceService],
        horizon_s: float,
        policy: str,
        check: bool = False,
    ) -> None:
        self.fleet = fleet
        self.fig = figures
        self.spec = workload
        self.job_arrays = jobs
        self.services = services
        self.horizon_s = horizon_s
        self.tick_s = workload.tick_min * 60.0
        self.sched = Scheduler(fleet, policy)
        self.check = check
        self.n_gpus = fleet.n_gpus
        self.node_first_gpu = np.concatenate([[0], np.cumsum(fleet.node_gpus.astype(np.int64))])
        self.node_rack = fleet.node_rack
        self.rack_hall = fleet.su_hall[fleet.rack_su]
        self.fail_count = np.zeros(fleet.n_nodes, dtype=np.int32)
        self.drain_count = np.zeros(fleet.n_nodes, dtype=np.int32)
        self.unhealthy = np.zeros(0, dtype=np.int64)
        self.failure_nodes: dict[int, np.ndarray] = {}
        self.next_failure_key = 0
        self.cdu_failed = np.zeros(fleet.n_halls, dtype=np.int64)
        self.cdu_stopped_racks = np.zeros(fleet.n_halls, dtype=np.int64)
        self.failure_counts: dict[str, int] = {k: 0 for k in FAILURE_RATES}
        # training
        self.jobs: dict[str, TrainingJob] = {}
        self.queue: list[tuple[tuple, str]] = []
        self.running: dict[str, TrainingJob] = {}
        self.n_train = 0
        self.work_clock_s = 0.0
        self.clock_break_t = [0.0]
        self.clock_break_w = [0.0]
        self.speed = 1.0
        self.speed_epoch = 0
        self.train_full_w = workload.power.training_power_fraction * figures.gpu_tdp_w
        self.train_cap_w = self.train_full_w
        self.train_floor_w = max(workload.power.training_cap_floor_fraction * figures.gpu_tdp_w, figures.gpu_idle_w * 1.2)
        self.schedule_pending_at = -1.0
        self.finished = 0
        self.lost_gpu_s = {"failure": 0.0, "power": 0.0, "preemption": 0.0}
        self.paused_jobs = 0
        # inference
        self.replica_owner: dict[str, InferenceService] = {}
        self.draining_replicas: set[str] = set()
        self.tick_index = 0
        self.demand_now = np.zeros(len(services))
        self.predicted = np.zeros(len(services))
        # power
        self.event_cap_kw = math.inf
        self.active_cuts: list[float] = []
        self.response_pending_until_s = -1.0
        self.parking = False
        """During a grid event, idle nodes are powered down (no GPU idle or host draw)."""
        self.grid_events: list[dict] = []
        self.base_cap_kw = workload.power.facility_cap_fraction * figures.grid_kw
        # integration
        self.last_t = 0.0
        self.gpu_s = {"training": 0.0, "inference": 0.0, "idle": 0.0, "down": 0.0}
        self.energy_kwh = 0.0
        self.over_cap_kwh = 0.0
        self.tokens_served = np.zeros(len(services))
        self.tokens_demanded = np.zeros(len(services))
        self.inference_busy_gpu_s = 0.0
        self.n_down = 0
        self.inference_dirty = True
        self.power_steps_t: list[float] = []
        self.power_steps_kw: list[float] = []
        self.series: dict[str, list] = {}
        self.violations: list[str] = []
        self._refresh()

    # --- helpers ----------------------------------------------------------------------------------------
    @property
    def cap_kw(self) -> float:
        return min(self.base_cap_kw, self.event_cap_kw)

    def it_budget_w(self) -> float:
        return self.cap_kw * 1000.0 / self.fig.pue - self.fig.fabric_kw * 1000.0

    def _service_capacity_tokens(self, svc: InferenceService, cap_index: int | None = None) -> float:
        row = svc.cap_index if cap_index is None else cap_index
        return svc.gpus * float(svc.rates.output_tokens_per_s_per_gpu[row])

    def _inference_state(self, service_caps: list[int] | None = None) -> tuple[float, int, float, list, list]:
        """(board power [W], GPUs, busy GPU-equivalents, served and demanded output tokens/s per service)."""
        power_w, gpus_total, busy = 0.0, 0, 0.0
        served, demanded = [], []
        idle_w = self.fig.gpu_idle_w
        for i, svc in enumerate(self.services):
            row = svc.cap_index if service_caps is None else service_caps[i]
            gpus = svc.gpus
            capacity = gpus * float(svc.rates.output_tokens_per_s_per_gpu[row])
            demand = float(self.demand_now[i]) * svc.osl
            share = min(demand / capacity, 1.0) if capacity > 0 else 0.0
            power_w += gpus * (idle_w + share * (float(svc.rates.gpu_power_w[row]) - idle_w))
            gpus_total += gpus
            busy += gpus * share
            served.append(min(demand, capacity))
            demanded.append(demand)
        return power_w, gpus_total, busy, served, demanded

    def _it_power_w(self, train_cap_w: float | None = None, service_caps: list[int] | None = None) -> float:
        """IT power without the fabric [W] (equation in `tokenfab.twin.power`)."""
        p_train = power.training_gpu_power_w(self.train_cap_w if train_cap_w is None else train_cap_w, self.train_full_w)
        inf_w, n_inf, _, _, _ = self._inference_state(service_caps)
        n_idle = self.n_gpus - self.n_train - n_inf - self.n_down
        return self._it_w(p_train, inf_w, n_idle)

    def _it_w(self, p_train_w: float, inference_w: float, n_idle: int) -> float:
        powered = self.n_gpus - self.n_down - (n_idle if self.parking else 0)
        idle_w = 0.0 if self.parking else n_idle * self.fig.gpu_idle_w
        return self.n_train * p_train_w + inference_w + idle_w + powered * self.fig.host_w_per_gpu

    def _refresh(self) -> None:
        """Recompute the rates that hold until the next event (power, tokens, GPU states)."""
        self.n_down = int(self.fleet.node_free_gpus[self.unhealthy].sum()) if len(self.unhealthy) else 0
        if self.inference_dirty:
            self.inference_w, self.n_inf, self.inference_busy_gpus, served, demanded = self._inference_state()
            self.served_rate = np.asarray(served, dtype=float)
            self.demand_rate = np.asarray(demanded, dtype=float)
            self.inference_dirty = False
        inf_w = self.inference_w
        p_train = power.training_gpu_power_w(self.train_cap_w, self.train_full_w)
        it_w = self._it_w(p_train, inf_w, self.n_gpus - self.n_train - self.n_inf - self.n_down)
        self.it_kw = it_w / 1000.0 + self.fig.fabric_kw
        self.facility_kw = self.it_kw * self.fig.pue
        if not self.power_steps_kw or self.power_steps_kw[-1] != self.facility_kw:
            if self.power_steps_t and self.power_steps_t[-1] == self.last_t:
                self.power_steps_kw[-1] = self.facility_kw
            else:
                self.power_steps_t.append(self.last_t)
                self.power_steps_kw.append(self.facility_kw)
        if self.grid_events and self.grid_events[-1]["complied_at_s"] is None:
            event = self.grid_events[-1]
            if self.facility_kw <= event["cap_kw"] + 1e-6:
                event["complied_at_s"] = self.last_t
                event["response_s"] = self.last_t - event["start_s"]

    def advance(self, t: float) -> None:
        """Integrate every rate from the last event to `t`."""
        dt = t - self.last_t
        if dt <= 0:
            return
        n_idle = self.n_gpus - self.n_train - self.n_inf - self.n_down
        self.gpu_s["training"] += self.n_train * dt
        self.gpu_s["inference"] += self.n_inf * dt
        self.gpu_s["down"] += self.n_down * dt
        self.gpu_s["idle"] += n_idle * dt
        self.energy_kwh += self.facility_kw * dt / 3600.0
        if self.facility_kw > self.cap_kw:
            self.over_cap_kwh += (self.facility_kw - self.cap_kw) * dt / 3600.0
        self.tokens_served += self.served_rate * dt
        self.tokens_demanded += self.demand_rate * dt
        self.inference_busy_gpu_s += self.inference_busy_gpus * dt
        self.work_clock_s += self.speed * dt
        self.last_t = t

    def after_event(self, _event) -> None:
        self._refresh()

    def _want_schedule(self, t: float) -> list:
        if self.schedule_pending_at == t or not self.queue:
            return []
        self.schedule_pending_at = t
        return [Schedule(t)]

    # --- training ---------------------------------------------------------------------------------------
    def _enqueue(self, job: TrainingJob) -> None:
        job.state = JobState.queued
        bisect.insort(self.queue, ((-job.priority, job.arrival_s, job.id), job.id))

    def arrive(self, t: float, index: int) -> list:
        arrays = self.job_arrays
        job = TrainingJob(
            id=f"job{index}",
            gpus=int(arrays.gpus[index]),
            slice_gpus=self.fig.gpus_per_domain if arrays.gpus[index] > self.fig.gpus_per_domain else 0,
            work_s=float(arrays.work_s[index]),
            arrival_s=t,
            checkpoint_interval_s=self.spec.training.checkpoint_interval_min * 60.0,
            flexible=bool(arrays.flexible[index]),
        )
        self.jobs[job.id] = job
        self._enqueue(job)
        out = self._want_schedule(t)
        nxt = index + 1
        if nxt < len(arrays):
            out.append(JobArrival(float(arrays.arrival_s[nxt]), nxt))
        return out

    def _train_power_per_gpu_w(self) -> float:
        return power.training_gpu_power_w(self.train_cap_w, self.train_full_w)

    def schedule_pass(self, t: float) -> list:
        self.schedule_pending_at = -1.0
        if not self.queue:
            return []
        free = self.n_gpus - self.n_train - self.n_inf - self.n_down
        headroom_w = self.it_budget_w() - self.it_kw * 1000.0 + self.fig.fabric_kw * 1000.0
        add_w_per_gpu = self._train_power_per_gpu_w() + (self.fig.host_w_per_gpu if self.parking else -self.fig.gpu_idle_w)
        smallest_failed = math.inf
        tries = 0
        started = []
        for key, job_id in self.queue[:MAX_QUEUE_SCAN]:
            job = self.jobs[job_id]
            if job.gpus > free or job.gpus >= smallest_failed:
                continue
            if job.gpus * add_w_per_gpu > headroom_w:
                continue
            if tries >= MAX_PLACEMENT_TRIES_PER_PASS:
                break
            tries += 1
            result = self.sched.place(
                now_s=t,
                request=Request(
                    id=job.id,
                    gpus=job.gpus,
                    tenant=job.tenant,
                    kind=WorkloadKind.training,
                    slice_gpus=job.slice_gpus,
                    whole_domains=job.slice_gpus > 0,
                    priority=job.priority,
                )
            )
            if isinstance(result, Unplaceable):
                smallest_failed = min(smallest_failed, job.gpus)
                continue
            started.append((key, job_id))
            free -= job.gpus
            headroom_w -= job.gpus * add_w_per_gpu
            self.n_train += job.gpus
            job.state = JobState.running
            job.epoch += 1
            self.running[job.id] = job
        events = []
        for item in started:
            self.queue.remove(item)
            job = self.jobs[item[1]]
            events.append(JobStart(t, job.id, job.epoch))
        return events

    def start_job(self, t: float, job_id: str, epoch: int) -> list:
        job = self.jobs[job_id]
        if job.epoch != epoch or job.state is not JobState.running:
            return []
        job.segment_start_s = t
        job.last_checkpoint_s = t
        job.checkpoint_work_clock_s = self.work_clock_s
        if job.first_start_s is None:
            job.first_start_s = t
        return [self._finish_event(t, job)]

    def work_clock_at(self, t: float) -> float:
        """The training work clock at wall time `t` (piecewise linear in t) [s]."""
        if t >= self.clock_break_t[-1]:
            return self.clock_break_w[-1] + self.speed * (t - self.clock_break_t[-1])
        return float(np.interp(t, self.clock_break_t, self.clock_break_w))

    def _next_checkpoint_s(self, job: TrainingJob, t: float) -> float:
        done = math.floor((t - job.segment_start_s) / job.checkpoint_interval_s + 1e-9)
        return job.segment_start_s + (done + 1) * job.checkpoint_interval_s

    def _sync_checkpoint(self, job: TrainingJob, t: float) -> None:
        """Account for the checkpoints a running job wrote up to `t` (every interval since its start).

        Checkpoints are periodic, so they are settled lazily (when the job stops) instead of as events;
        only a draining job gets a `Checkpoint` event, at which it leaves its nodes.
        """
        done = math.floor((t - job.segment_start_s) / job.checkpoint_interval_s + 1e-9)
        at = job.segment_start_s + done * job.checkpoint_interval_s
        if done > 0 and at > job.last_checkpoint_s:
            clock = self.work_clock_at(at)
            job.saved_work_s += clock - job.checkpoint_work_clock_s
            job.checkpoint_work_clock_s = clock
            job.last_checkpoint_s = at

    def _finish_event(self, t: float, job: TrainingJob) -> JobFinish:
        remaining = job.remaining_work_s(self.work_clock_s)
        return JobFinish(t + remaining / self.speed, job.id, job.epoch, self.speed_epoch)

    def checkpoint_job(self, t: float, job_id: str, epoch: int) -> list:
        job = self.jobs[job_id]
        if job.epoch != epoch or job.state is not JobState.running:
            return []
        self._sync_checkpoint(job, t)
        if job.draining:
            self._stop_job(t, job, reason=None)
            return self._want_schedule(t)
        return []

    def finish_job(self, t: float, job_id: str, epoch: int, speed_epoch: int) -> list:
        job = self.jobs[job_id]
        if job.epoch != epoch or speed_epoch != self.speed_epoch or job.state is not JobState.running:
            return []
        if job.remaining_work_s(self.work_clock_s) > 1e-6 * max(job.work_s, 1.0):
            return [self._finish_event(t, job)]
        self.sched.release(job.id)
        del self.running[job.id]
        self.n_train -= job.gpus
        job.saved_work_s = job.work_s
        job.state = JobState.finished
        job.finish_s = t
        job.epoch += 1
        self.finished += 1
        return self._want_schedule(t)

    def _stop_job(self, t: float, job: TrainingJob, reason: str | None, release: bool = True) -> None:
        """Take a running job off its GPUs; work since the last checkpoint is lost (unless just saved)."""
        self._sync_checkpoint(job, t)
        if reason is not None:
            lost = job.gpus * (t - job.last_checkpoint_s)
            job.lost_gpu_s += lost
            self.lost_gpu_s[reason] += lost
        if release:
            self.sched.release(job.id)
        del self.running[job.id]
        self.n_train -= job.gpus
        job.checkpoint_work_clock_s = self.work_clock_s
        job.draining = False
        job.epoch += 1
        self._enqueue(job)

    def set_training_cap(self, t: float, cap_w: float) -> list:
        cap_w = min(max(cap_w, self.train_floor_w), self.train_full_w)
        if cap_w < self.train_full_w:
            cap_w = max(self.train_floor_w, math.floor(cap_w / TRAINING_CAP_STEP_W) * TRAINING_CAP_STEP_W)
        if abs(cap_w - self.train_cap_w) < 1e-6:
            return []
        self.train_cap_w = cap_w
        speed = power.training_clock_fraction(cap_w, self.train_full_w, self.fig.gpu_idle_w, self.fig.clock_power_exponent)
        if abs(speed - self.speed) < 1e-12:
            return []
        self.clock_break_t.append(self.last_t)
        self.clock_break_w.append(self.work_clock_s)
        self.speed = speed
        self.speed_epoch += 1
        return [self._finish_event(t, job) for job in self.running.values()]

    # --- failures and health ----------------------------------------------------------------------------
    def _nodes_of(self, component: str, unit: int) -> np.ndarray:
        f = self.fleet
        if component == "gpu":
            return np.array([np.searchsorted(self.node_first_gpu, unit, side="right") - 1], dtype=np.int64)
        if component == "node":
            return np.array([unit], dtype=np.int64)
        if component == "nvlink_tray":
            return np.flatnonzero(f.node_domain == unit)
        if component == "rack":
            return np.flatnonzero(self.node_rack == unit)
        raise ValueError(component)

    def _apply_health(self, t: float, nodes: np.ndarray) -> list:
        target = np.where(self.fail_count[nodes] > 0, HEALTH_FAILED, np.where(self.drain_count[nodes] > 0, HEALTH_DRAINING, HEALTH_OK))
        current = self.fleet.node_health[nodes]
        events: list = []
        for health in (HEALTH_OK, HEALTH_DRAINING, HEALTH_FAILED):
            changed = nodes[(target == health) & (current != health)]
            if not len(changed):
                continue
            affected = self.sched.set_health(changed, health)
            if health == HEALTH_FAILED:
                for request_id in affected:
                    self._interrupt(t, request_id, "failure")
            elif health == HEALTH_DRAINING:
                for request_id in affected:
                    if request_id in self.running and not self.running[request_id].draining:
                        job = self.running[request_id]
                        job.draining = True
                        events.append(Checkpoint(self._next_checkpoint_s(job, t), job.id, job.epoch))
                    elif request_id in self.replica_owner:
                        self.draining_replicas.add(request_id)
        self.unhealthy = self._unhealthy_after(nodes)
        return events

    def _unhealthy_after(self, nodes: np.ndarray) -> np.ndarray:
        candidates = np.union1d(self.unhealthy, nodes)
        return candidates[self.fleet.node_health[candidates] != HEALTH_OK]

    def _interrupt(self, t: float, request_id: str, reason: str) -> None:
        if request_id in self.running:
            self.running[request_id].interruptions += 1
            self._stop_job(t, self.running[request_id], reason)
        elif request_id in self.replica_owner:
            svc = self.replica_owner.pop(request_id)
            svc.replicas.pop(request_id, None)
            self.inference_dirty = True
            self.draining_replicas.discard(request_id)
            self.sched.release(request_id)

    def fail(self, t: float, component: str, unit: int, repair_s: float) -> list:
        nodes = self._nodes_of(component, unit)
        self.failure_counts[component] += 1
        key = self.next_failure_key
        self.next_failure_key += 1
        self.failure_nodes[key] = nodes
        if component == "nvlink_tray":
            self.drain_count[nodes] += 1
        else:
            self.fail_count[nodes] += 1
        events = self._apply_health(t, nodes)
        return [*events, Repair(t + repair_s, component, key), *self._want_schedule(t)]

    def repair(self, t: float, component: str, key: int) -> list:
        nodes = self.failure_nodes.pop(key)
        if component == "nvlink_tray":
            self.drain_count[nodes] -= 1
        else:
            self.fail_count[nodes] -= 1
        return [*self._apply_health(t, nodes), *self._want_schedule(t)]

    def cdu_change(self, t: float, hall: int, delta_units: int) -> list:
        self.cdu_failed[hall] += delta_units
        if delta_units > 0:
            self.failure_counts["cdu"] += delta_units
        required = self.fig.hall_cdus_required[hall] if hall < len(self.fig.hall_cdus_required) else 1
        installed = self.fig.hall_cdus_installed[hall] if hall < len(self.fig.hall_cdus_installed) else 1
        racks = np.flatnonzero(self.rack_hall == hall)
        stop = power.racks_stopped_by_cdu_loss(required, installed - int(self.cdu_failed[hall]), len(racks))
        before = int(self.cdu_stopped_racks[hall])
        if stop == before:
            return []
        lo, hi = sorted((before, stop))
        changed_racks = racks[len(racks) - hi : len(racks) - lo] if hi > 0 else racks[:0]
        nodes = np.flatnonzero(np.isin(self.node_rack, changed_racks))
        self.fail_count[nodes] += 1 if stop > before else -1
        self.cdu_stopped_racks[hall] = stop
        return [*self._apply_health(t, nodes), *self._want_schedule(t)]

    # --- power ------------------------------------------------------------------------------------------
    def grid_event_start(self, t: float, cut: float, duration_s: float, respond_within_s: float) -> list:
        """The grid asks the facility to draw `cut` less than it draws now (and never above its cap)."""
        self.event_cap_kw = min(self.event_cap_kw, (1.0 - cut) * min(self.facility_kw, self.base_cap_kw))
        self.active_cuts.append(self.event_cap_kw)
        self.grid_events.append(
            {
                "start_s": t,
                "duration_s": duration_s,
                "cut_fraction": cut,
                "cap_kw": float(self.cap_kw),
                "respond_within_s": respond_within_s,
                "facility_kw_before": float(self.facility_kw),
                "complied_at_s": None,
                "response_s": None,
                "jobs_paused": 0,
                "training_cap_w": None,
            }
        )
        p = self.spec.power
        self.response_pending_until_s = t + max(p.cap_latency_s, p.pause_latency_s)
        return [
            PowerResponse(t + p.cap_latency_s, "cap"),
            PowerResponse(t + p.pause_latency_s, "pause"),
            GridEventEnd(t + duration_s, cut),
        ]

    def grid_event_end(self, t: float, cut: float) -> list:
        if self.active_cuts:
            self.active_cuts.pop(0)
        self.event_cap_kw = min(self.active_cuts) if self.active_cuts else math.inf
        return [*self.respond_to_power(t, "relax"), *self._want_schedule(t)]

    def respond_to_power(self, t: float, stage: str) -> list:
        """Bring IT power under the budget: training caps, SLO-safe inference caps, then pauses."""
        budget_w = self.it_budget_w()
        events: list = []
        if stage == "relax" and not self.active_cuts:
            self.parking = False
        elif stage == "cap" and self.spec.power.park_idle_nodes:
            self.parking = True
        # inference at the highest cap first; lower only when training alone cannot make room
        full_rows = [len(s.rates.power_cap_w) - 1 for s in self.services]
        caps = list(full_rows)
        need_train = self._cap_for(budget_w, caps)
        if need_train < self.train_floor_w - 1e-9 and stage != "relax":
            for i, svc in enumerate(self.services):
                caps[i] = self._lowest_safe_row(i, svc)
            need_train = self._cap_for(budget_w, caps)
        for i, svc in enumerate(self.services):
            if svc.cap_index != caps[i]:
                svc.cap_index = caps[i]
                self.inference_dirty = True
        events += self.set_training_cap(t, need_train)
        if stage in ("pause", "tick"):
            self._refresh()
            over_w = (self.it_kw - self.fig.fabric_kw) * 1000.0 - budget_w
            if over_w > 0:
                saving_per_gpu = self._train_power_per_gpu_w() + (
                    self.fig.host_w_per_gpu if self.parking else -self.fig.gpu_idle_w
                )
                for job in self.running.values():
                    self._sync_checkpoint(job, t)
                order = sorted(self.running.values(), key=lambda j: (not j.flexible, t - j.last_checkpoint_s, j.id))
                for job in order:
                    if over_w <= 0:
                        break
                    over_w -= job.gpus * saving_per_gpu
                    job.paused_for_power += 1
                    self.paused_jobs += 1
                    if self.grid_events:
                        self.grid_events[-1]["jobs_paused"] += 1
                    self._stop_job(t, job, "power")
        if self.grid_events and stage in ("cap", "pause"):
            self.grid_events[-1]["training_cap_w"] = float(self.train_cap_w)
        return events

    def _cap_for(self, budget_w: float, caps: list[int]) -> float:
        other = self._it_power_w(train_cap_w=self.train_full_w, service_caps=caps) - self.n_train * self.train_full_w
        if self.n_train == 0:
            return self.train_full_w if other <= budget_w else -math.inf
        return (budget_w - other) / self.n_train

    def _lowest_safe_row(self, i: int, svc: InferenceService) -> int:
        demand = self.demand_now[i] * svc.osl
        rows = len(svc.rates.power_cap_w)
        for row in range(rows):
            if svc.rates.meets_targets[row] and self._service_capacity_tokens(svc, row) >= demand:
                return row
        return rows - 1

    # --- tick -------------------------------------------------------------------------------------------
    def tick(self, t: float, index: int) -> list:
        self.tick_index = index
        events: list = []
        for i, svc in enumerate(self.services):
            if index < len(svc.demand_requests_per_s):
                # before an hour of history exists the planner is pre-provisioned for the first hour's peak
                lo, hi = (index - PREDICTOR_WINDOW_TICKS, index) if index >= PREDICTOR_WINDOW_TICKS else (0, PREDICTOR_WINDOW_TICKS)
                window = svc.demand_requests_per_s[lo:hi]
                observed = float(window.max())
                self.demand_now[i] = svc.demand_requests_per_s[index]
                self.inference_dirty = True
                self.predicted[i] = observed
                self._autoscale(t, svc, observed)
        if t >= self.response_pending_until_s:
            # the tick's control loop; right after a grid event the timed response owns the power
            events += self.respond_to_power(t, "tick")
        self._refresh()
        self._record(t)
        events += self._want_schedule(t)
        if t < self.horizon_s - 1e-9:
            events.append(Tick(min(t + self.tick_s, self.horizon_s), index + 1))
        return events

    def _autoscale(self, t: float, svc: InferenceService, observed_requests_per_s: float) -> None:
        rates = svc.rates
        needed = autoscale.replicas_needed(
            observed_requests_per_s,
            svc.osl,
            float(rates.output_tokens_per_s_per_gpu[svc.cap_index]),
            svc.gpus_per_placement,
            svc.headroom,
            math.ceil(svc.min_replicas / svc.replicas_per_placement),
        )
        # move replicas off draining nodes
        for replica_id in [r for r in svc.replicas if r in self.draining_replicas]:
            self._interrupt(t, replica_id, "drain")
        target = autoscale.scale_target(len(svc.replicas), needed)
        while len(svc.replicas) > target:
            replica_id = next(reversed(svc.replicas))
            self._interrupt(t, replica_id, "scale_down")
        while len(svc.replicas) < target:
            replica_id = f"{svc.name}/r{svc.next_replica}"
            svc.next_replica += 1
            result = self._place_replica(svc, replica_id)
            if result is None:
                break

    def _place_replica(self, svc: InferenceService, replica_id: str) -> Placement | None:
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
        result = self.sched.place(request, allow_preemption=True, now_s=self.last_t)
        if isinstance(result, Unplaceable):
            return None
        for evicted in result.evicted:
            if evicted in self.running:
                job = self.running[evicted]
                job.interruptions += 1
                self._stop_job(self.last_t, job, "preemption", release=False)
            elif evicted in self.replica_owner:
                other = self.replica_owner.pop(evicted)
                other.replicas.pop(evicted, None)
        svc.replicas[replica_id] = result.nodes
        self.inference_dirty = True
        self.replica_owner[replica_id] = svc
        return result

    def _record(self, t: float) -> None:
        row = {
            "time_s": t,
            "gpus_training": self.n_train,
            "gpus_inference": self.n_inf,
            "gpus_down": self.n_down,
            "gpus_idle": self.n_gpus - self.n_train - self.n_inf - self.n_down,
            "allocation": (self.n_train + self.n_inf) / self.n_gpus,
            "utilisation": (self.n_train * self.speed + self.inference_busy_gpus) / self.n_gpus,
            "fragmentation": float(self.sched.fragmentation()),
            "queue_jobs": len(self.queue),
            "queue_gpus": int(sum(self.jobs[j].gpus for _, j in self.queue)),
            "running_jobs": len(self.running),
            "facility_power_kw": self.facility_kw,
            "facility_cap_kw": self.cap_kw,
            "it_power_kw": self.it_kw,
            "training_cap_w": self.train_cap_w,
            "training_speed": self.speed,
            "output_tokens_per_s": float(self.served_rate.sum()),
            "output_tokens_per_s_demand": float(self.demand_rate.sum()),
            "energy_kwh": self.energy_kwh,
        }
        for i, svc in enumerate(self.services):
            row[f"{svc.name}.replicas"] = svc.replica_count
            row[f"{svc.name}.served_share"] = float(self.served_rate[i] / self.demand_rate[i]) if self.demand_rate[i] > 0 else 1.0
            row[f"{svc.name}.power_cap_w"] = float(svc.rates.power_cap_w[svc.cap_index])
        for key, value in row.items():
            self.series.setdefault(key, []).append(value)
        if self.check:
            from tokenfab.twin.invariants import allocation_violations

            allocated = self.n_gpus - int(self.fleet.node_free_gpus.sum())
            if allocated != self.n_train + self.n_inf:
                self.violations.append(f"t={t:.0f}s: fleet holds {allocated} allocated GPUs, twin counts {self.n_train + self.n_inf}")
            down = int(self.fleet.node_free_gpus[self.fleet.node_health != HEALTH_OK].sum())
            if down != self.n_down:
                self.violations.append(f"t={t:.0f}s: fleet has {down} free GPUs on unhealthy nodes, twin counts {self.n_down}")

            self.violations += allocation_violations(
                self.fleet.node_gpus, self.fleet.node_free_gpus, self.sched.allocations(), f"t={t:.0f}s"
            )


def replicas_per_placement(gpus_per_replica: int, gpus_per_domain: int, peak_gpus: float, min_placements: int = 16) -> int:
    """Replicas grouped into one placement: the largest power of two that fits one NVLink domain and
    still leaves at least `min_placements` placements at the service's peak [-].

    At gigawatt scale this keeps allocations in the thousands, not tens of thousands, while a small site
    still scales one replica at a time.
    """
    k = 1
    while 2 * k * gpus_per_replica <= gpus_per_domain and 2 * k * gpus_per_replica * min_placements <= peak_gpus:
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
        rates = service_rates(catalog, spec.model, system, isl, osl, spec.ttft_ms, spec.itl_ms, spec.min_gpus_per_replica)
        profile = trace_minute_profile(trace.arrival_s)
        scale = demand_scale(profile, spec.peak_gpu_share, fleet_gpus, float(rates.output_tokens_per_s_per_gpu[-1]), osl)
        per_placement = replicas_per_placement(
            rates.gpus_per_replica, gpus_per_domain, spec.peak_gpu_share * fleet_gpus
        )
        demand = demand_at_ticks(tick_start_s, tick_s, profile, scale, spec.daily_trough_fraction, spec.daily_peak_hour)
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


def simulate(
    design: Design,
    workload: WorkloadSpec,
    days: float,
    policy: str = "topology_packing",
    seed: int = 0,
    scenario: ScenarioSpec | None = None,
    traces: dict | None = None,
    acme_rows: list[dict] | None = None,
    catalog=None,
    fleet: Fleet | None = None,
    progress: Callable[[float, float], None] | None = None,
    check: bool = False,
) -> Run:
    """Run the twin for `days` of simulated time.

    Parameters
    ----------
    design : Design
        The factory (its fleet, power, cooling, prices and carbon).
    workload : WorkloadSpec
        Training, inference, failures and power events (sizes relative to the fleet).
    days : float
        Simulated time [d].
    policy : str
        Placement policy of the fleet scheduler.
    seed : int
        Seeds every random draw; the same seed gives the same `Run`.
    scenario : ScenarioSpec, optional
        Failures and power events replacing the workload file's own ``failures`` and ``power`` sections.
    traces : dict, optional
        Request traces by the names the workload uses (`tokenfab.traces.llm.RequestTrace`).
    acme_rows : list of dict, optional
        Rows of ``acme/cluster_summary.csv``; the bundled Kalos figures when absent.
    progress : callable, optional
        Called as ``progress(simulated_s, horizon_s)`` at every tick.
    check : bool
        Check the allocation invariants at every tick (slower); violations land in `Run.violations`.
    """
    if scenario is not None:
        workload = workload.model_copy(update={"failures": scenario.failures, "power": scenario.power})
    if catalog is None:
        from tokenfab.catalog.load import load_catalog

        catalog = load_catalog()
    figures = facility_figures(design, catalog)
    if fleet is None:
        fleet = from_design(design, {s.gpu: figures.gpu_tdp_w for s in design.sites})
    else:
        fleet = fleet.copy()
    horizon_s = days * 86400.0
    tick_s = workload.tick_min * 60.0
    streams = np.random.SeedSequence(seed).spawn(4)
    rng_jobs, rng_fail, rng_req, _ = (np.random.default_rng(s) for s in streams)

    if workload.training is not None and workload.training.load > 0:
        shape: AcmeShape = read_acme_shape(acme_rows, workload.training.cluster) if acme_rows else ACME_KALOS_FALLBACK
        arrivals, initial = generate_training_jobs(
            workload.training, shape, fleet.n_gpus, figures.gpus_per_node, figures.gpus_per_domain, horizon_s, rng_jobs
        )
        jobs = TrainingJobs(
            np.concatenate([initial.arrival_s, arrivals.arrival_s]),
            np.concatenate([initial.gpus, arrivals.gpus]),
            np.concatenate([initial.work_s, arrivals.work_s]),
            np.concatenate([initial.flexible, arrivals.flexible]),
            arrivals.arrival_rate_per_s,
            arrivals.mean_gpus,
            arrivals.mean_work_s,
        )
        n_initial = len(initial)
    else:
        empty = np.zeros(0)
        jobs = TrainingJobs(empty, empty.astype(np.int64), empty, empty.astype(bool), 0.0, 0.0, 0.0)
        n_initial = 0

    n_ticks = int(math.floor(horizon_s / tick_s + 1e-9)) + 1
    tick_start_s = np.arange(n_ticks) * tick_s
    services = build_services(
        workload, catalog, figures.system, fleet.n_gpus, figures.gpus_per_domain, tick_start_s, tick_s, traces or {}
    )
    sim = Simulation(fleet, figures, workload, jobs, services, horizon_s, policy, check=check)

    queue = EventQueue()
    queue.push(Tick(0.0, 0))
    if len(jobs):
        queue.push(JobArrival(float(jobs.arrival_s[0]), 0))
    if workload.failures.enabled:
        _push_failures(queue, sim, workload, figures, horizon_s, rng_fail)
    for cdu in workload.failures.cdu_failures:
        if cdu.hall < fleet.n_halls:
            queue.push(CduFailure(cdu.at_h * 3600.0, cdu.hall, cdu.units, cdu.repair_h * 3600.0))
    for grid in workload.power.grid_events:
        if grid.start_h * 3600.0 < horizon_s:
            queue.push(GridEventStart(grid.start_h * 3600.0, grid.cut_fraction, grid.duration_h * 3600.0, grid.respond_within_s))

    handled = 0
    for index in range(1, n_ticks + 1):
        until = min(index * tick_s, horizon_s) if index < n_ticks else horizon_s
        handled += run_events(queue, sim, until, sim.advance, sim.after_event)
        if progress is not None:
            progress(min(until, horizon_s), horizon_s)
    sim.advance(horizon_s)

    from tokenfab.twin.metrics import job_table, summarise

    table = job_table(sim, n_initial)
    series = {k: np.asarray(v) for k, v in sim.series.items()}
    allocations = {rid: (p.nodes.copy(), p.gpus_per_node.copy()) for rid, p in sim.sched.allocations().items()}
    run = Run(
        name=workload.name,
        policy=str(policy),
        seed=seed,
        days=days,
        horizon_s=horizon_s,
        tick_s=tick_s,
        total_gpus=fleet.n_gpus,
        summary={},
        series=series,
        jobs=table,
        services=[_service_dict(s, sim, i) for i, s in enumerate(services)],
        grid_events=sim.grid_events,
        power_step_time_s=np.asarray(sim.power_steps_t),
        power_step_kw=np.asarray(sim.power_steps_kw),
        energy_kwh=sim.energy_kwh,
        gpu_seconds=dict(sim.gpu_s),
        final_node_gpus=fleet.node_gpus.copy(),
        final_node_free_gpus=fleet.node_free_gpus.copy(),
        final_allocations=allocations,
        events_handled=handled,
        scheduler=type(sim.sched).__name__,
        violations=sim.violations,
    )
    if workload.inference.request_level:
        from tokenfab.twin.request_level import simulate_service_requests

        index = [s.name for s in services].index(workload.inference.request_level)
        spec = workload.inference.services[index]
        run.request_level = simulate_service_requests(
            services[index],
            (traces or {})[spec.trace],
            series[f"{spec.name}.replicas"],
            series[f"{spec.name}.power_cap_w"],
            tick_s,
            horizon_s,
            rng_req,
            workload.inference.request_level_max_requests,
            start_s=sim.grid_events[0]["start_s"]
            if workload.inference.request_level_window == "grid_event" and sim.grid_events
            else None,
        )
    run.summary = summarise(run, sim, figures)
    return run


def _push_failures(queue: EventQueue, sim: Simulation, workload: WorkloadSpec, fig: FacilityFigures, horizon_s: float, rng) -> None:
    f = sim.fleet
    multiplier = workload.failures.rate_multiplier
    units = {
        "gpu": (f.n_gpus, 1.0),
        "node": (f.n_nodes, f.n_gpus / max(f.n_nodes, 1)),
        "nvlink_tray": (f.n_domains, f.n_gpus / max(f.n_domains, 1)),
        "rack": (f.n_racks, f.n_gpus / max(f.n_racks, 1)),
    }
    draws = []
    for component, (count, gpus_per_unit) in units.items():
        draws.append(draw_failures(FAILURE_RATES[component], count, gpus_per_unit, horizon_s, rng, multiplier))
    installed = np.asarray(fig.hall_cdus_installed[: f.n_halls] or (1,), dtype=float)
    cdu = draw_failures(FAILURE_RATES["cdu"], int(installed.sum()), 1.0, horizon_s, rng, multiplier, unit_weights=installed)
    for draw in draws:
        for t, unit, repair in zip(draw.time_s.tolist(), draw.unit.tolist(), draw.repair_s.tolist(), strict=True):
            queue.push(Failure(t, draw.component, int(unit), repair))
    for t, hall, repair in zip(cdu.time_s.tolist(), cdu.unit.tolist(), cdu.repair_s.tolist(), strict=True):
        queue.push(CduFailure(t, int(hall), 1, repair))


def _service_dict(svc: InferenceService, sim: Simulation, i: int) -> dict:
    rates = svc.rates
    demanded = float(sim.tokens_demanded[i])
    return {
        "name": svc.name,
        "model": svc.model,
        "system": svc.system,
        "isl": svc.isl,
        "osl": svc.osl,
        "ttft_target_ms": svc.ttft_target_ms,
        "itl_target_ms": svc.itl_target_ms,
        "gpus_per_replica": rates.gpus_per_replica,
        "replicas_per_placement": svc.replicas_per_placement,
        "concurrency": rates.concurrency,
        "rates_source": rates.source,
        "output_tokens_per_s_per_gpu_at_tdp": float(rates.output_tokens_per_s_per_gpu[-1]),
        "gpu_power_w_at_tdp": float(rates.gpu_power_w[-1]),
        "output_tokens_served": float(sim.tokens_served[i]),
        "output_tokens_demanded": demanded,
        "served_share": float(sim.tokens_served[i] / demanded) if demanded > 0 else 1.0,
    }
