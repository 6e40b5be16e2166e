"""Workload and scenario: what runs on the fleet, and generators calibrated to public traces.

A workload file (YAML, `WorkloadSpec`) describes training, inference, failures and power events with
sizes *relative to the fleet* (shares of its GPUs), so one file fits any site from one row to a campus.

Training generator
------------------
Job size (GPUs) and run time are lognormal, with the shape of one cluster of the Acme trace
(Hu et al., "Characterization of Large Language Model Development in the Datacenter", NSDI 2024;
``acme/cluster_summary.csv``). A lognormal with median :math:`m` and mean :math:`\\mu` has

.. math:: \\sigma = \\sqrt{2 \\ln(\\mu / m)}, \\qquad X = m\\,e^{\\sigma Z},\\ Z \\sim N(0, 1)

(the median and mean of ``med_gpu_num``/``avg_gpu_num`` and ``med_run_time_gpu``/``avg_run_time_gpu``).
Sizes are multiplied by ``gang_scale`` (default 9 = 72/8: the trace was taken on 8-GPU HGX nodes, NVL72
domains are 72 GPUs), rounded up to whole nodes below one NVLink domain and to whole domains above it,
and capped at ``max_gang_fraction`` of the fleet. Run times are multiplied by ``runtime_scale`` and
clipped to ``[60 s, max_run_h]``. Arrivals are Poisson with the rate that offers ``load`` of the fleet's
GPU-time: :math:`\\lambda = load \\cdot N_{GPU} / E[g\\,r]` (the expectation from a 20,000-job sample).

Inference generator
-------------------
Each service follows one request trace (Azure LLM 2023 conv/code, or Mooncake): the per-minute request
rate of the trace's hour is repeated, shaped by a daily pattern

.. math:: d(t) = d_{min} + (1 - d_{min})\\,\\frac{1 + \\cos(2\\pi (h(t) - h_{peak}) / 24)}{2}

and scaled so the peak needs ``peak_gpu_share`` of the fleet's GPUs at the token model's rate at TDP.
Mean prompt and output lengths are the trace's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenfab.io.yamlfile import InputError, load_located_yaml

ACME_CLUSTERS = ("Seren", "Kalos", "Philly", "Helios", "PAI")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainingSpec(_Strict):
    load: float = Field(
        default=0.5, ge=0, le=2, description="share of the fleet's GPU-time offered to training"
    )
    cluster: str = Field(default="Kalos", description="Acme cluster whose size and run-time shape is used")
    gang_scale: float = Field(default=9.0, gt=0, le=1000)
    runtime_scale: float = Field(default=10.0, gt=0, le=1000)
    max_gang_fraction: float = Field(default=0.05, gt=0, le=1)
    max_run_h: float = Field(default=168.0, gt=0)
    checkpoint_interval_min: float = Field(default=30.0, gt=0)
    flexible_fraction: float = Field(default=0.3, ge=0, le=1, description="jobs that may be paused for power")
    warm_start: bool = Field(default=True, description="start with the fleet loaded (residual jobs at t=0)")

    @model_validator(mode="after")
    def _known_cluster(self) -> TrainingSpec:
        if self.cluster not in ACME_CLUSTERS:
            raise ValueError(f"unknown Acme cluster {self.cluster!r} (known: {', '.join(ACME_CLUSTERS)})")
        return self


class ServiceSpec(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    trace: str = Field(description="azure-conv, azure-code, mooncake, or a trace file path")
    model: str
    ttft_ms: float = Field(gt=0)
    itl_ms: float = Field(gt=0)
    peak_gpu_share: float = Field(
        gt=0, le=1, description="GPUs the daily peak needs, as a share of the fleet"
    )
    min_gpus_per_replica: int = Field(default=1, ge=1, le=1024)
    daily_trough_fraction: float = Field(default=0.4, ge=0, le=1)
    daily_peak_hour: float = Field(default=14.0, ge=0, lt=24)
    headroom: float = Field(default=0.1, ge=0, le=2, description="autoscaler's spare capacity")
    min_replicas: int = Field(default=1, ge=0)
    priority: int = 10


class InferenceSpec(_Strict):
    services: list[ServiceSpec] = Field(default_factory=list)
    request_level: str | None = Field(default=None, description="service simulated request by request")
    request_level_max_requests: int = Field(default=300_000, ge=100)
    request_level_window: Literal["grid_event", "busiest"] = Field(
        default="grid_event",
        description="when the request budget allows only part of the run: from the first grid event (if any) or around the busiest tick",
    )

    @model_validator(mode="after")
    def _names(self) -> InferenceSpec:
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError("service names must be unique")
        if self.request_level is not None and self.request_level not in names:
            raise ValueError(f"request_level names unknown service {self.request_level!r}")
        return self


class CduFailureSpec(_Strict):
    at_h: float = Field(ge=0)
    hall: int = Field(default=0, ge=0)
    units: int = Field(default=1, ge=1)
    repair_h: float = Field(default=8.0, gt=0)


class FailureSpec(_Strict):
    enabled: bool = True
    rate_multiplier: float = Field(default=1.0, ge=0, le=1000)
    cdu_failures: list[CduFailureSpec] = Field(default_factory=list, description="scripted CDU failures")


class GridEventSpec(_Strict):
    start_h: float = Field(ge=0)
    duration_h: float = Field(gt=0)
    cut_fraction: float = Field(gt=0, lt=1, description="share of the facility draw at the start to shed")
    respond_within_s: float = Field(default=30.0, gt=0)


class PowerSpec(_Strict):
    facility_cap_fraction: float = Field(
        default=1.0, gt=0, le=2, description="of the design's grid connection"
    )
    training_cap_floor_fraction: float = Field(
        default=0.6, gt=0.2, le=1, description="lowest training cap, of TDP"
    )
    training_power_fraction: float = Field(
        default=0.85, gt=0.1, le=1, description="uncapped training draw, of TDP"
    )
    cap_latency_s: float = Field(default=5.0, ge=0, description="time to apply GPU power caps")
    pause_latency_s: float = Field(default=20.0, ge=0, description="time to stop a flexible job")
    park_idle_nodes: bool = Field(default=True, description="power idle nodes down during a grid event")
    grid_events: list[GridEventSpec] = Field(default_factory=list)


class ScenarioSpec(_Strict):
    """What happens to the factory (failures, power and grid events), separable from the work it runs."""

    failures: FailureSpec = Field(default_factory=FailureSpec)
    power: PowerSpec = Field(default_factory=PowerSpec)


class WorkloadSpec(_Strict):
    version: int = 1
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    tick_min: float = Field(
        default=10.0, ge=1, le=60, description="twin tick for rates, autoscaling and power"
    )
    training: TrainingSpec | None = Field(default_factory=TrainingSpec)
    inference: InferenceSpec = Field(default_factory=InferenceSpec)
    failures: FailureSpec = Field(default_factory=FailureSpec)
    power: PowerSpec = Field(default_factory=PowerSpec)


def load_workload(path: str | Path) -> WorkloadSpec:
    """Read a workload file; bad input raises InputError naming the file, line and field."""
    doc = load_located_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error([], "a workload is a mapping with `name`, `training`, `inference`, ...")
    try:
        return WorkloadSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.validation_error(exc) from None


def load_workload_inputs(path: str | Path) -> tuple[WorkloadSpec, dict, list[dict[str, str]] | None]:
    """A workload file with what a run of it reads: the request traces it names (by name from the shared
    data folder, or paths beside the file) and the Acme cluster rows (None when absent); InputError on bad
    input."""
    from tokenfab.traces.acme import read_acme_rows
    from tokenfab.traces.llm import read_trace

    path = Path(path)
    workload = load_workload(path)
    traces = {s.trace: read_trace(s.trace, path.parent) for s in workload.inference.services}
    return workload, traces, read_acme_rows()


# --- training generator -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcmeShape:
    """Median and mean of GPU job size and run time of one Acme cluster."""

    cluster: str
    median_gpus: float
    mean_gpus: float
    median_run_s: float
    mean_run_s: float

    @property
    def sigma_gpus(self) -> float:
        return lognormal_sigma(self.median_gpus, self.mean_gpus)

    @property
    def sigma_run(self) -> float:
        return lognormal_sigma(self.median_run_s, self.mean_run_s)


def lognormal_sigma(median: float, mean: float) -> float:
    """Shape of a lognormal from its median and mean: :math:`\\sigma = \\sqrt{2\\ln(\\mu/m)}` [-]."""
    return float(np.sqrt(2.0 * np.log(max(mean / median, 1.0))))


def read_acme_shape(rows: list[dict], cluster: str) -> AcmeShape:
    """Pick one cluster's row from ``cluster_summary.csv`` (as dicts of strings)."""
    for row in rows:
        if row.get("id") == cluster:
            return AcmeShape(
                cluster=cluster,
                median_gpus=float(row["med_gpu_num"]),
                mean_gpus=float(row["avg_gpu_num"]),
                median_run_s=float(row["med_run_time_gpu"]),
                mean_run_s=float(row["avg_run_time_gpu"]),
            )
    raise InputError(f"acme cluster_summary.csv: no row for cluster {cluster!r}")


ACME_KALOS_FALLBACK = AcmeShape("Kalos", 1.0, 26.77, 124.0, 1259.689)
"""Kalos row of ``acme/cluster_summary.csv`` (NSDI'24), used when the file is absent."""


@dataclass(frozen=True)
class TrainingJobs:
    """Generated training jobs as parallel arrays, in arrival order."""

    arrival_s: np.ndarray
    gpus: np.ndarray
    work_s: np.ndarray
    flexible: np.ndarray
    arrival_rate_per_s: float
    mean_gpus: float
    mean_work_s: float

    def __len__(self) -> int:
        return len(self.arrival_s)


def round_gang_gpus(
    raw_gpus: np.ndarray, gpus_per_node: int, gpus_per_domain: int, max_gpus: int
) -> np.ndarray:
    """Whole nodes below one NVLink domain, whole domains above; at most `max_gpus` (whole domains)."""
    raw = np.maximum(np.asarray(raw_gpus, dtype=float), 1.0)
    small = np.ceil(raw / gpus_per_node) * gpus_per_node
    large = np.ceil(raw / gpus_per_domain) * gpus_per_domain
    gpus = np.where(small <= gpus_per_domain, small, large)
    cap = max(gpus_per_domain, (max_gpus // gpus_per_domain) * gpus_per_domain)
    return np.minimum(gpus, cap).astype(np.int64)


def generate_training_jobs(
    spec: TrainingSpec,
    shape: AcmeShape,
    fleet_gpus: int,
    gpus_per_node: int,
    gpus_per_domain: int,
    horizon_s: float,
    rng: np.random.Generator,
) -> tuple[TrainingJobs, TrainingJobs]:
    """Arrivals over ``[0, horizon_s)`` and, with warm start, residual jobs present at t = 0.

    Returns ``(arrivals, initial)``.
    """
    max_gpus = max(int(spec.max_gang_fraction * fleet_gpus), gpus_per_node)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        raw = shape.median_gpus * np.exp(shape.sigma_gpus * rng.standard_normal(n)) * spec.gang_scale
        gpus = round_gang_gpus(raw, gpus_per_node, gpus_per_domain, max_gpus)
        run = shape.median_run_s * np.exp(shape.sigma_run * rng.standard_normal(n)) * spec.runtime_scale
        return gpus, np.clip(run, 60.0, spec.max_run_h * 3600.0)

    sample_gpus, sample_run = draw(20_000)
    mean_gpu_s = float((sample_gpus * sample_run).mean())
    rate = spec.load * fleet_gpus / mean_gpu_s if spec.load > 0 else 0.0
    n = int(rng.poisson(rate * horizon_s)) if rate > 0 else 0
    arrival = np.sort(rng.uniform(0.0, horizon_s, n))
    gpus, work = draw(n)
    flexible = rng.random(n) < spec.flexible_fraction
    arrivals = TrainingJobs(
        arrival, gpus, work, flexible, rate, float(sample_gpus.mean()), float(sample_run.mean())
    )

    init_gpus, init_work, init_flex = [], [], []
    if spec.warm_start and rate > 0:
        target = spec.load * fleet_gpus * 0.9
        total = 0
        while total < target:
            g, r = draw(256)
            # residual life of a job seen in progress: length-biased, then a uniform share remaining
            keep = rng.random(256) < r / r.max()
            for gi, ri in zip(g[keep], r[keep], strict=True):
                if total >= target:
                    break
                if total + gi > fleet_gpus:
                    continue
                init_gpus.append(gi)
                init_work.append(max(60.0, ri * rng.random()))
                init_flex.append(rng.random() < spec.flexible_fraction)
                total += gi
    initial = TrainingJobs(
        np.zeros(len(init_gpus)),
        np.asarray(init_gpus, dtype=np.int64),
        np.asarray(init_work, dtype=float),
        np.asarray(init_flex, dtype=bool),
        rate,
        float(sample_gpus.mean()),
        float(sample_run.mean()),
    )
    return arrivals, initial


# --- inference generator ------------------------------------------------------------------------------


def daily_factor(time_s, trough_fraction: float, peak_hour: float) -> np.ndarray:
    """Daily demand pattern :math:`d(t)` in [trough, 1] (equation in the module docstring) [-]."""
    hours = (np.asarray(time_s, dtype=float) / 3600.0) % 24.0
    return trough_fraction + (1.0 - trough_fraction) * 0.5 * (
        1.0 + np.cos(2.0 * np.pi * (hours - peak_hour) / 24.0)
    )


def trace_minute_profile(arrival_s: np.ndarray) -> np.ndarray:
    """Requests per second in each minute of the trace [1/s]."""
    minutes = max(1, int(np.ceil((arrival_s[-1] + 1e-9) / 60.0)))
    counts = np.bincount(np.minimum((arrival_s // 60.0).astype(np.int64), minutes - 1), minlength=minutes)
    return counts / 60.0


def demand_at_ticks(
    tick_start_s: np.ndarray,
    tick_s: float,
    minute_profile: np.ndarray,
    scale: float,
    trough_fraction: float,
    peak_hour: float,
) -> np.ndarray:
    """Mean request rate over each tick: the trace's minute profile, repeated, × daily pattern × scale [1/s]."""
    minutes_per_tick = max(1, int(round(tick_s / 60.0)))
    offsets = np.arange(minutes_per_tick) * 60.0
    t = tick_start_s[:, None] + offsets[None, :] + 30.0
    minute = (t // 60.0).astype(np.int64) % len(minute_profile)
    rate = minute_profile[minute] * daily_factor(t, trough_fraction, peak_hour)
    return scale * rate.mean(axis=1)


def demand_scale(
    minute_profile: np.ndarray,
    peak_gpu_share: float,
    fleet_gpus: int,
    output_tokens_per_s_per_gpu: float,
    mean_output_tokens: float,
) -> float:
    """Scale on the trace rate so the peak needs `peak_gpu_share` of the fleet at full rate [-].

    .. math:: s = \\frac{share \\cdot N_{GPU} \\cdot r_{out} / \\overline{OSL}}{\\max_{minute} \\lambda}
    """
    peak_rate = float(np.max(minute_profile))
    capacity_requests_per_s = peak_gpu_share * fleet_gpus * output_tokens_per_s_per_gpu / mean_output_tokens
    return capacity_requests_per_s / peak_rate if peak_rate > 0 else 0.0
