"""The twin's state between events: the fleet and its scheduler, the parts (training, inference, node
health, grid), the rates that hold until the next event and the integrals of those rates.

Events change the parts; after each event `TwinState.refresh` recomputes the rates (GPUs by state, IT and
facility power, tokens) and before each event `TwinState.advance` integrates them up to the event's time.
Between events nothing changes, so the integrals are exact for piecewise-constant rates.

IT power follows `tokenfab.twin.power` (equation in its docstring):
:math:`P_{IT} = n_{train} P_{train}(c_t) + \\sum_s n_s P_s + n_{idle} P_{idle} + n_{powered} P_{host}`
(without the fabric), and :math:`P_{facility} = PUE (P_{IT} + P_{fabric})`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tokenfab.fleet import HEALTH_OK, Fleet
from tokenfab.sched.scheduler import Scheduler
from tokenfab.twin import power
from tokenfab.twin.entities import InferenceService, TrainingJob
from tokenfab.twin.facility import FacilityFigures, NodeHealth
from tokenfab.twin.inference import Inference
from tokenfab.twin.response import Grid
from tokenfab.twin.training import Training
from tokenfab.twin.workload import TrainingJobs, WorkloadSpec


@dataclass
class Meter:
    """Integrals over the run so far, and the piecewise-constant facility power."""

    n_services: int
    gpu_s: dict[str, float] = field(
        default_factory=lambda: {"training": 0.0, "inference": 0.0, "idle": 0.0, "down": 0.0}
    )
    energy_kwh: float = 0.0
    over_cap_kwh: float = 0.0
    tokens_served: np.ndarray = field(init=False)
    """Output tokens served per service [-]."""
    tokens_demanded: np.ndarray = field(init=False)
    inference_busy_gpu_s: float = 0.0
    power_steps_t: list[float] = field(default_factory=list)
    power_steps_kw: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tokens_served = np.zeros(self.n_services)
        self.tokens_demanded = np.zeros(self.n_services)

    def note_power(self, t: float, facility_kw: float) -> None:
        """A new step of facility power from `t` (replacing one that started at the same instant)."""
        if not self.power_steps_kw or self.power_steps_kw[-1] != facility_kw:
            if self.power_steps_t and self.power_steps_t[-1] == t:
                self.power_steps_kw[-1] = facility_kw
            else:
                self.power_steps_t.append(t)
                self.power_steps_kw.append(facility_kw)


class TwinState:
    """Everything a run's events act on (see the module docstring)."""

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
        self.figures = figures
        self.spec = workload
        self.horizon_s = horizon_s
        self.tick_s = workload.tick_min * 60.0
        self.sched = Scheduler(fleet, policy)
        self.check = check
        self.n_gpus = fleet.n_gpus
        full_w = workload.power.training_power_fraction * figures.gpu_tdp_w
        self.training = Training(
            arrivals=jobs,
            checkpoint_interval_s=workload.training.checkpoint_interval_min * 60.0
            if workload.training
            else 0.0,
            gpus_per_domain=figures.gpus_per_domain,
            full_power_w=full_w,
            floor_power_w=max(
                workload.power.training_cap_floor_fraction * figures.gpu_tdp_w, figures.gpu_idle_w * 1.2
            ),
        )
        self.inference = Inference(services)
        self.health = NodeHealth(fleet, figures)
        self.grid = Grid(base_cap_kw=workload.power.facility_cap_fraction * figures.grid_kw)
        self.meter = Meter(len(services))
        self.now_s = 0.0
        """Time the integrals have reached (the time of the last event) [s]."""
        self.tick_index = 0
        self.series: dict[str, list] = {}
        self.violations: list[str] = []
        self.refresh()

    # --- GPUs and power ---------------------------------------------------------------------------------
    @property
    def services(self) -> list[InferenceService]:
        return self.inference.services

    def idle_gpus(self) -> int:
        """Free GPUs on healthy nodes [-]."""
        return self.n_gpus - self.training.gpus - self.n_inf - self.n_down

    def training_gpu_added_w(self) -> float:
        """IT power one more training GPU adds (or one fewer saves): its board power, less the idle draw
        it replaces or plus the host it powers up when idle nodes are parked [W]."""
        fig = self.figures
        return self.training.gpu_power_w() + (fig.host_w_per_gpu if self.grid.parking else -fig.gpu_idle_w)

    def it_power_w(self, train_cap_w: float | None = None, service_caps: list[int] | None = None) -> float:
        """IT power without the fabric at a training cap and inference caps (default: those in force) [W]."""
        training = self.training
        cap_w = training.cap_w if train_cap_w is None else train_cap_w
        p_train = power.training_gpu_power_w(cap_w, training.full_power_w)
        load = self.inference.load(self.figures.gpu_idle_w, service_caps)
        n_idle = self.n_gpus - training.gpus - load.gpus - self.n_down
        return self._it_w(p_train, load.power_w, n_idle)

    def _it_w(self, p_train_w: float, inference_w: float, n_idle: int) -> float:
        parking = self.grid.parking
        powered = self.n_gpus - self.n_down - (n_idle if parking else 0)
        busy_w = self.training.gpus * p_train_w + inference_w
        fig = self.figures
        return power.it_power_w(busy_w, 0 if parking else n_idle, powered, fig.gpu_idle_w, fig.host_w_per_gpu)

    def refresh(self) -> None:
        """Recompute the rates that hold until the next event (power, tokens, GPU states)."""
        self.n_down = self.health.down_gpus()
        inference = self.inference
        if inference.dirty:
            load = inference.load(self.figures.gpu_idle_w)
            self.inference_w, self.n_inf, self.inference_busy_gpus = load.power_w, load.gpus, load.busy_gpus
            self.served_rate = np.asarray(load.served, dtype=float)
            self.demand_rate = np.asarray(load.demanded, dtype=float)
            inference.dirty = False
        it_w = self._it_w(self.training.gpu_power_w(), self.inference_w, self.idle_gpus())
        self.it_kw = power.it_power_kw(it_w, self.figures.fabric_kw)
        self.facility_kw = power.facility_power_kw(self.it_kw, self.figures.pue)
        self.meter.note_power(self.now_s, self.facility_kw)
        self.grid.note_compliance(self.now_s, self.facility_kw)

    def advance(self, t: float) -> None:
        """Integrate every rate from the last event to `t`."""
        dt = t - self.now_s
        if dt <= 0:
            return
        m = self.meter
        m.gpu_s["training"] += self.training.gpus * dt
        m.gpu_s["inference"] += self.n_inf * dt
        m.gpu_s["down"] += self.n_down * dt
        m.gpu_s["idle"] += self.idle_gpus() * dt
        m.energy_kwh += self.facility_kw * dt / 3600.0
        if self.facility_kw > self.grid.cap_kw:
            m.over_cap_kwh += (self.facility_kw - self.grid.cap_kw) * dt / 3600.0
        m.tokens_served += self.served_rate * dt
        m.tokens_demanded += self.demand_rate * dt
        m.inference_busy_gpu_s += self.inference_busy_gpus * dt
        self.training.work_clock_s += self.training.speed * dt
        self.now_s = t

    def after_event(self, _event) -> None:
        self.refresh()

    # --- work that stops --------------------------------------------------------------------------------
    def stop_job(self, t: float, job: TrainingJob, reason: str | None) -> None:
        """Take a running job off its GPUs and requeue it (see `Training.stop`)."""
        self.sched.release(job.id)
        self.training.stop(t, job, reason)

    def interrupt(self, t: float, request_id: str, reason: str) -> None:
        """Stop whatever holds the placement `request_id`: a training job (requeued) or a replica group."""
        if request_id in self.training.running:
            job = self.training.running[request_id]
            job.interruptions += 1
            self.stop_job(t, job, reason)
        elif request_id in self.inference.replica_owner:
            self.inference.drop_replica(request_id)
            self.sched.release(request_id)

    # --- checks -----------------------------------------------------------------------------------------
    def check_allocations(self, t: float) -> None:
        """The twin's counts against the fleet's, and the allocation invariants (when `check` is on)."""
        from tokenfab.twin.invariants import allocation_violations

        fleet, where = self.fleet, f"t={t:.0f}s"
        allocated = self.n_gpus - int(fleet.node_free_gpus.sum())
        held = self.training.gpus + self.n_inf
        if allocated != held:
            self.violations.append(f"{where}: fleet holds {allocated} allocated GPUs, twin counts {held}")
        down = int(fleet.node_free_gpus[fleet.node_health != HEALTH_OK].sum())
        if down != self.n_down:
            self.violations.append(
                f"{where}: fleet has {down} free GPUs on unhealthy nodes, twin counts {self.n_down}"
            )
        self.violations += allocation_violations(
            fleet.node_gpus, fleet.node_free_gpus, self.sched.allocations(), where
        )
