"""What the emulated factory runs: inference services and training jobs drawn from a twin workload file.

The emulator takes from a `tokenfab.twin.workload.WorkloadSpec` what is running at the moment it starts:
the inference services with their token-model rates (`tokenfab.twin.rates.service_rates`, the twin's
code) and the replicas the twin's autoscaler gives them for the demand at that hour
(`tokenfab.twin.autoscale.replicas_needed`), and the training jobs of the twin's warm start
(`tokenfab.twin.workload.generate_training_jobs`, residual jobs that fill the ``load`` share of the fleet).

Demand of a service at simulated time t is the twin's:

.. math:: \\lambda(t) = \\frac{share \\cdot N_{GPU} \\cdot r_{out}}{\\overline{OSL}} \\, d(t)

with :math:`d(t)` the daily pattern (`tokenfab.twin.workload.daily_factor`) and :math:`r_{out}` the output
tokens per second per GPU at TDP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokenfab.twin import autoscale
from tokenfab.twin.entities import ServiceRates
from tokenfab.twin.workload import (
    ACME_KALOS_FALLBACK,
    WorkloadSpec,
    daily_factor,
    generate_training_jobs,
)

FALLBACK_ISL_OSL = (1024, 256)
"""estimate: mean prompt and output tokens of a service whose trace file cannot be read [tokens]."""
SERVING_TENANT = "serving"
TRAINING_TENANT = "lab"
FLEXIBLE_PRIORITY = -1
"""Flexible (pausable) training runs below the others, so the control plane sheds it first."""
SERVICE_QUOTA_MARGIN = 1.5
"""The serving tenant's GPU quota, as a multiple of what its services hold at the start [-]."""


@dataclass
class EmulatedService:
    name: str
    tenant: str
    model: str
    isl: int
    osl: int
    ttft_target_s: float
    itl_target_s: float
    rates: ServiceRates
    peak_requests_per_s: float
    trough_fraction: float
    peak_hour: float
    headroom: float
    replicas_at_start: int
    priority: int
    demand_multiplier: float = 1.0
    demand_override: float | None = None
    """Offered request rate set from outside (the twin's demand when it drives the emulator) [1/s]."""

    @property
    def gpus_per_replica(self) -> int:
        return int(self.rates.gpus_per_replica)

    def demand_requests_per_s(self, t_s: float) -> float:
        """Offered request rate at simulated time `t_s` [1/s] (equation in the module docstring)."""
        if self.demand_override is not None:
            return self.demand_override * self.demand_multiplier
        d = float(daily_factor(t_s, self.trough_fraction, self.peak_hour))
        return self.peak_requests_per_s * d * self.demand_multiplier


@dataclass(frozen=True)
class EmulatedJob:
    name: str
    tenant: str
    gpus: int
    flexible: bool
    slice_gpus: int


@dataclass
class EmulatedWorkload:
    name: str
    services: list[EmulatedService]
    jobs: list[EmulatedJob]
    training_power_fraction: float
    training_cap_floor_fraction: float
    quotas: dict[str, int] = field(default_factory=dict)

    def submissions(self) -> list[dict]:
        """Bodies for the control plane's ``POST /api/v1/workloads`` (inference first, then training)."""
        out = []
        for svc in self.services:
            out.append(
                {
                    "name": svc.name,
                    "kind": "inference",
                    "tenant": svc.tenant,
                    "gpus": svc.gpus_per_replica,
                    "replicas": svc.replicas_at_start,
                    "slice_gpus": svc.gpus_per_replica,
                    "priority": svc.priority,
                    "preemptible": False,
                    "model": svc.model,
                    "tokens_per_s_per_gpu": round(float(svc.rates.output_tokens_per_s_per_gpu[-1]), 3),
                }
            )
        for job in self.jobs:
            out.append(
                {
                    "name": job.name,
                    "kind": "training",
                    "tenant": job.tenant,
                    "gpus": job.gpus,
                    "slice_gpus": job.slice_gpus,
                    "whole_domains": job.slice_gpus > 0,
                    "priority": FLEXIBLE_PRIORITY if job.flexible else 0,
                    "preemptible": True,
                }
            )
        return out


def _isl_osl(trace_name: str, base_dir: Path | None) -> tuple[int, int]:
    from tokenfab.io.yamlfile import InputError
    from tokenfab.traces.llm import read_trace

    try:
        trace = read_trace(trace_name, base_dir)
    except (InputError, OSError):
        return FALLBACK_ISL_OSL
    return max(1, int(round(trace.mean_input_tokens))), max(1, int(round(trace.mean_output_tokens)))


def build_workload(
    spec: WorkloadSpec,
    catalog,
    system: str,
    fleet_gpus: int,
    gpus_per_node: int,
    gpus_per_domain: int,
    start_s: float,
    seed: int = 0,
    base_dir: Path | None = None,
) -> EmulatedWorkload:
    """The services and jobs running at simulated time `start_s` (see the module docstring)."""
    from tokenfab.twin.rates import service_rates

    services = []
    for s in spec.inference.services:
        isl, osl = _isl_osl(s.trace, base_dir)
        rates = service_rates(catalog, s.model, system, isl, osl, s.ttft_ms, s.itl_ms, s.min_gpus_per_replica)
        rate_out = float(rates.output_tokens_per_s_per_gpu[-1])
        svc = EmulatedService(
            name=s.name,
            tenant=SERVING_TENANT,
            model=s.model,
            isl=isl,
            osl=osl,
            ttft_target_s=s.ttft_ms / 1000.0,
            itl_target_s=s.itl_ms / 1000.0,
            rates=rates,
            peak_requests_per_s=s.peak_gpu_share * fleet_gpus * rate_out / osl,
            trough_fraction=s.daily_trough_fraction,
            peak_hour=s.daily_peak_hour,
            headroom=s.headroom,
            replicas_at_start=1,
            priority=s.priority,
        )
        svc.replicas_at_start = autoscale.replicas_needed(
            svc.demand_requests_per_s(start_s),
            osl,
            rate_out,
            rates.gpus_per_replica,
            s.headroom,
            max(1, s.min_replicas),
        )
        services.append(svc)
    jobs: list[EmulatedJob] = []
    if spec.training is not None and spec.training.load > 0:
        inference_gpus = sum(s.replicas_at_start * s.gpus_per_replica for s in services)
        rng = np.random.default_rng(seed)
        _, initial = generate_training_jobs(
            spec.training, ACME_KALOS_FALLBACK, fleet_gpus, gpus_per_node, gpus_per_domain, 3600.0, rng
        )
        budget = max(0, int(spec.training.load * fleet_gpus))
        budget = min(budget, fleet_gpus - inference_gpus)
        for i in range(len(initial)):
            g = int(initial.gpus[i])
            if g > budget:
                continue
            budget -= g
            jobs.append(
                EmulatedJob(
                    name=f"job{i}",
                    tenant=TRAINING_TENANT,
                    gpus=g,
                    flexible=bool(initial.flexible[i]),
                    slice_gpus=gpus_per_domain if g > gpus_per_domain else 0,
                )
            )
    held = sum(s.replicas_at_start * s.gpus_per_replica for s in services)
    quotas = {SERVING_TENANT: int(max(held * SERVICE_QUOTA_MARGIN, held + 2 * gpus_per_domain))}
    return EmulatedWorkload(
        name=spec.name,
        services=services,
        jobs=jobs,
        training_power_fraction=spec.power.training_power_fraction,
        training_cap_floor_fraction=spec.power.training_cap_floor_fraction,
        quotas=quotas,
    )
