"""What a run gives back: `Run` (summary, time series, jobs, services, power steps, final allocations),
the time-series row recorded at every tick, and run.json's shape (`Run.to_dict`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.twin.entities import InferenceService

if TYPE_CHECKING:
    from tokenfab.twin.state import TwinState

RUN_SCHEMA_VERSION = "1.0"


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


def series_row(state: TwinState, t: float) -> dict[str, float | int]:
    """The time-series row at `t`: GPUs by state, allocation, utilisation, queue, power, tokens, per service."""
    training, n_gpus = state.training, state.n_gpus
    row: dict[str, float | int] = {
        "time_s": t,
        "gpus_training": training.gpus,
        "gpus_inference": state.n_inf,
        "gpus_down": state.n_down,
        "gpus_idle": state.idle_gpus(),
        "allocation": (training.gpus + state.n_inf) / n_gpus,
        "utilisation": (training.gpus * training.speed + state.inference_busy_gpus) / n_gpus,
        "fragmentation": float(state.sched.fragmentation()),
        "queue_jobs": len(training.queue),
        "queue_gpus": int(sum(training.jobs[j].gpus for _, j in training.queue)),
        "running_jobs": len(training.running),
        "facility_power_kw": state.facility_kw,
        "facility_cap_kw": state.grid.cap_kw,
        "it_power_kw": state.it_kw,
        "training_cap_w": training.cap_w,
        "training_speed": training.speed,
        "output_tokens_per_s": float(state.served_rate.sum()),
        "output_tokens_per_s_demand": float(state.demand_rate.sum()),
        "energy_kwh": state.meter.energy_kwh,
    }
    served, demanded = state.served_rate, state.demand_rate
    for i, svc in enumerate(state.services):
        row[f"{svc.name}.replicas"] = svc.replica_count
        row[f"{svc.name}.served_share"] = float(served[i] / demanded[i]) if demanded[i] > 0 else 1.0
        row[f"{svc.name}.power_cap_w"] = float(svc.rates.power_cap_w[svc.cap_index])
    return row


def record(state: TwinState, t: float) -> None:
    """Append the row at `t` to the state's series (and check the allocations when asked to)."""
    for key, value in series_row(state, t).items():
        state.series.setdefault(key, []).append(value)
    if state.check:
        state.check_allocations(t)


def service_dict(svc: InferenceService, meter, i: int) -> dict:
    """One service of run.json: its layout and rates, and the tokens it served against demand."""
    rates = svc.rates
    demanded = float(meter.tokens_demanded[i])
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
        "output_tokens_served": float(meter.tokens_served[i]),
        "output_tokens_demanded": demanded,
        "served_share": float(meter.tokens_served[i] / demanded) if demanded > 0 else 1.0,
    }


def make_run(
    state: TwinState, name: str, policy: str, seed: int, days: float, n_initial: int, events_handled: int
) -> Run:
    """The `Run` of a finished state (its summary is filled by the caller, once request-level results exist)."""
    from tokenfab.twin.metrics import job_table

    fleet, meter = state.fleet, state.meter
    allocations = {
        rid: (p.nodes.copy(), p.gpus_per_node.copy()) for rid, p in state.sched.allocations().items()
    }
    return Run(
        name=name,
        policy=str(policy),
        seed=seed,
        days=days,
        horizon_s=state.horizon_s,
        tick_s=state.tick_s,
        total_gpus=fleet.n_gpus,
        summary={},
        series={k: np.asarray(v) for k, v in state.series.items()},
        jobs=job_table(state.training, n_initial),
        services=[service_dict(s, meter, i) for i, s in enumerate(state.services)],
        grid_events=state.grid.events,
        power_step_time_s=np.asarray(meter.power_steps_t),
        power_step_kw=np.asarray(meter.power_steps_kw),
        energy_kwh=meter.energy_kwh,
        gpu_seconds=dict(meter.gpu_s),
        final_node_gpus=fleet.node_gpus.copy(),
        final_node_free_gpus=fleet.node_free_gpus.copy(),
        final_allocations=allocations,
        events_handled=events_handled,
        scheduler=type(state.sched).__name__,
        violations=state.violations,
    )
