"""`simulate`: the twin's entry point, and `Simulation`, a run that advances in steps.

`simulate(design, workload, days, policy, seed)` builds a fleet from the design, generates the workload
(training jobs calibrated to Acme, inference demand from request traces, failures, grid events), runs the
event loop (`tokenfab.twin.engine`) tick by tick and returns a `Run`: summary metrics, a time series at
every tick, a table of jobs, the piecewise-constant facility power and the final allocation state (for the
invariants in `tokenfab.twin.invariants`). It writes nothing; the CLI writes ``run.json``, Parquet and the
report.

`Simulation` is the same run held open: `step_until(t)` handles every event up to `t`, `state` is
readable between steps (GPUs by state, power, queue, the series so far), and `finish()` returns the
`Run`; stepping does not change the result. An emulator can pace `step_until` against a wall clock.

The parts of the state live in their own modules: `facility` (design figures, node health, failures),
`training`, `inference`, `response` (grid events and the power response), `state` (the rates between
events and their integrals) and `result`. Placement goes through the fleet scheduler
(`tokenfab.sched.scheduler.Scheduler`), the same code the control plane uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from tokenfab.blueprint.design import Design
from tokenfab.fleet import Fleet, from_design
from tokenfab.twin.engine import EventQueue, run_events
from tokenfab.twin.events import Tick
from tokenfab.twin.facility import CduFailure, FacilityFigures, facility_figures, failure_events
from tokenfab.twin.inference import build_services, replicas_per_placement
from tokenfab.twin.response import GridEventStart
from tokenfab.twin.result import RUN_SCHEMA_VERSION, Run, make_run
from tokenfab.twin.state import TwinState
from tokenfab.twin.training import JobArrival
from tokenfab.twin.workload import (
    ACME_KALOS_FALLBACK,
    ScenarioSpec,
    TrainingJobs,
    WorkloadSpec,
    generate_training_jobs,
    read_acme_shape,
)


class Simulation:
    """One run of the twin, advanced in steps (see the module docstring)."""

    def __init__(
        self,
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
        check: bool = False,
    ) -> None:
        if scenario is not None:
            workload = workload.model_copy(update={"failures": scenario.failures, "power": scenario.power})
        if catalog is None:
            from tokenfab.catalog.load import load_catalog

            catalog = load_catalog()
        figures = facility_figures(design, catalog)
        fleet = (
            from_design(design, {s.gpu: figures.gpu_tdp_w for s in design.sites})
            if fleet is None
            else fleet.copy()
        )
        self.workload, self.days, self.policy, self.seed = workload, days, policy, seed
        self.traces = traces or {}
        self.horizon_s = days * 86400.0
        self.tick_s = workload.tick_min * 60.0
        self.n_ticks = int(math.floor(self.horizon_s / self.tick_s + 1e-9)) + 1
        rng_jobs, rng_fail, self._rng_requests, _ = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        jobs, self.n_initial = training_jobs(workload, acme_rows, fleet, figures, self.horizon_s, rng_jobs)
        tick_start_s = np.arange(self.n_ticks) * self.tick_s
        services = build_services(
            workload,
            catalog,
            figures.system,
            fleet.n_gpus,
            figures.gpus_per_domain,
            tick_start_s,
            self.tick_s,
            self.traces,
        )
        self.state = TwinState(fleet, figures, workload, jobs, services, self.horizon_s, policy, check=check)
        self.queue = initial_events(self.state, jobs, rng_fail)
        self.events_handled = 0
        self.reached_s = 0.0
        self._next_tick = 1

    @property
    def now_s(self) -> float:
        """Simulated time stepped to [s]; the state holds from its last event (`state.now_s`) until the next."""
        return self.reached_s

    @property
    def done(self) -> bool:
        return self.reached_s >= self.horizon_s

    def step_until(self, t_s: float) -> int:
        """Handle every event up to `t_s` (at most the horizon); the number handled.

        The integrals (energy, GPU-hours, tokens) stay at the last event: they are brought forward by the
        next event, so a run taken in steps is the same, bit for bit, as one taken whole. The rates
        (`state.facility_kw`, `state.training.gpus`, ...) hold until the next event, so they are the
        state at `t_s`.
        """
        t_s = min(t_s, self.horizon_s)
        handled = run_events(self.queue, self.state, t_s, self.state.advance, self.state.after_event)
        self.events_handled += handled
        self.reached_s = max(self.reached_s, t_s)
        while self._next_tick <= self.n_ticks and self._tick_boundary_s(self._next_tick) <= self.reached_s:
            self._next_tick += 1
        return handled

    def _tick_boundary_s(self, index: int) -> float:
        return min(index * self.tick_s, self.horizon_s) if index < self.n_ticks else self.horizon_s

    def run(self, progress: Callable[[float, float], None] | None = None) -> Run:
        """Run on to the horizon one tick at a time (`progress(simulated_s, horizon_s)` after each), and
        return the `Run`."""
        while self._next_tick <= self.n_ticks:
            until = self._tick_boundary_s(self._next_tick)
            self.events_handled += run_events(
                self.queue, self.state, until, self.state.advance, self.state.after_event
            )
            self.reached_s = max(self.reached_s, until)
            self._next_tick += 1
            if progress is not None:
                progress(min(until, self.horizon_s), self.horizon_s)
        return self.finish()

    def finish(self) -> Run:
        """The `Run`, once `step_until` reached the horizon (`run` calls it); between steps read `state`."""
        from tokenfab.twin.metrics import summarise

        if not self.done:
            raise RuntimeError(
                f"the run is at {self.reached_s:g} s of {self.horizon_s:g} s: step to the horizon first"
            )
        self.state.advance(self.horizon_s)
        state, workload = self.state, self.workload
        run = make_run(
            state, workload.name, self.policy, self.seed, self.days, self.n_initial, self.events_handled
        )
        if workload.inference.request_level:
            run.request_level = self._request_level(run)
        run.summary = summarise(run, state, state.figures)
        return run

    def _request_level(self, run: Run) -> dict:
        from tokenfab.twin.request_level import simulate_service_requests

        workload, services = self.workload, self.state.services
        index = [s.name for s in services].index(str(workload.inference.request_level))
        spec = workload.inference.services[index]
        grid_events = self.state.grid.events
        windowed = workload.inference.request_level_window == "grid_event" and grid_events
        return simulate_service_requests(
            services[index],
            self.traces[spec.trace],
            run.series[f"{spec.name}.replicas"],
            run.series[f"{spec.name}.power_cap_w"],
            self.tick_s,
            self.horizon_s,
            self._rng_requests,
            workload.inference.request_level_max_requests,
            start_s=grid_events[0]["start_s"] if windowed else None,
        )


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
    simulation = Simulation(
        design, workload, days, policy, seed, scenario, traces, acme_rows, catalog, fleet, check
    )
    return simulation.run(progress)


def training_jobs(
    workload: WorkloadSpec,
    acme_rows: list[dict] | None,
    fleet: Fleet,
    figures: FacilityFigures,
    horizon_s: float,
    rng,
) -> tuple[TrainingJobs, int]:
    """The run's training jobs (those running at the start first, then the arrivals) and how many start."""
    if workload.training is None or workload.training.load <= 0:
        empty = np.zeros(0)
        return TrainingJobs(empty, empty.astype(np.int64), empty, empty.astype(bool), 0.0, 0.0, 0.0), 0
    shape = read_acme_shape(acme_rows, workload.training.cluster) if acme_rows else ACME_KALOS_FALLBACK
    arrivals, initial = generate_training_jobs(
        workload.training, shape, fleet.n_gpus, figures.gpus_per_node, figures.gpus_per_domain, horizon_s, rng
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
    return jobs, len(initial)


def initial_events(state: TwinState, jobs: TrainingJobs, rng_fail: np.random.Generator) -> EventQueue:
    """The queue at time 0: the first tick and arrival, the drawn failures, the scheduled CDU losses and
    grid events (pushed in this order, which sets their order at equal times)."""
    workload, horizon_s = state.spec, state.horizon_s
    queue = EventQueue()
    queue.push(Tick(0.0, 0))
    if len(jobs):
        queue.push(JobArrival(float(jobs.arrival_s[0]), 0))
    if workload.failures.enabled:
        for event in failure_events(state.fleet, workload, state.figures, horizon_s, rng_fail):
            queue.push(event)
    for cdu in workload.failures.cdu_failures:
        if cdu.hall < state.fleet.n_halls:
            queue.push(CduFailure(cdu.at_h * 3600.0, cdu.hall, cdu.units, cdu.repair_h * 3600.0))
    for grid in workload.power.grid_events:
        if grid.start_h * 3600.0 < horizon_s:
            queue.push(
                GridEventStart(
                    grid.start_h * 3600.0, grid.cut_fraction, grid.duration_h * 3600.0, grid.respond_within_s
                )
            )
    return queue


__all__ = ["RUN_SCHEMA_VERSION", "Run", "Simulation", "replicas_per_placement", "simulate", "training_jobs"]
