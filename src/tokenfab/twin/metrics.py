"""Run metrics: allocation, utilisation, fragmentation, queueing delay and completion time by job size,
goodput, tokens, SLO attainment, energy, power, carbon and cost.

Definitions (all over the simulated horizon :math:`T` with :math:`N` GPUs):

* GPU-hours by state: training (allocated to running jobs), inference (allocated to replicas), idle
  (free on healthy nodes), down (free on failed/draining nodes); they sum to :math:`N T`.
* allocation: :math:`(H_{train} + H_{inf}) / (N T)`; utilisation (per tick): training GPUs × training speed
  plus inference GPUs × their load share, over :math:`N`.
* fragmentation (per tick): the scheduler's measure (`Scheduler.fragmentation`).
* queueing delay: first start − arrival, for jobs that arrived during the run (warm-start jobs excluded);
  jobs still waiting at the end count in ``waiting``. Job completion time (JCT): finish − arrival.
  Size classes are in NVLink domains: below one domain, one domain, 2–8, 9–64, more than 64.
* goodput: useful GPU-hours = training GPU-hours − work lost (to failures, power pauses, preemption)
  + inference GPU-hours × load share; goodput fraction = useful / (N T).
* tokens served: output tokens, :math:`\\int \\min(demand, capacity)\\,dt` per service; SLO attainment
  at tick level = served / demanded (capacity meeting targets is assumed); the request-level mode
  measures it per request (`tokenfab.twin.request_level`).
* energy: :math:`\\int P_{facility}\\,dt`; carbon: energy × grid intensity; energy cost: energy × price;
  ownership cost: the design's $/GPU-hour × :math:`N T`.
"""

from __future__ import annotations

import numpy as np

SIZE_CLASSES = ("<1 domain", "1 domain", "2-8 domains", "9-64 domains", ">64 domains")


def size_class(gpus: np.ndarray, gpus_per_domain: int) -> np.ndarray:
    """Index into `SIZE_CLASSES` for each job size [-]."""
    domains = np.asarray(gpus, dtype=float) / gpus_per_domain
    return np.digitize(domains, [1.0 - 1e-9, 1.0 + 1e-9, 8.0 + 1e-9, 64.0 + 1e-9])


def job_table(training, n_initial: int) -> dict[str, np.ndarray]:
    """One row per job that arrived (`training`: the twin's `Training`): sizes, times (NaN when not reached),
    interruptions, lost work."""
    jobs = list(training.jobs.values())
    nan = float("nan")
    return {
        "id": np.asarray([j.id for j in jobs], dtype=object),
        "gpus": np.asarray([j.gpus for j in jobs], dtype=np.int64),
        "work_s": np.asarray([j.work_s for j in jobs]),
        "arrival_s": np.asarray([j.arrival_s for j in jobs]),
        "first_start_s": np.asarray([j.first_start_s if j.first_start_s is not None else nan for j in jobs]),
        "finish_s": np.asarray([j.finish_s if j.finish_s is not None else nan for j in jobs]),
        "interruptions": np.asarray([j.interruptions for j in jobs], dtype=np.int64),
        "paused_for_power": np.asarray([j.paused_for_power for j in jobs], dtype=np.int64),
        "lost_gpu_s": np.asarray([j.lost_gpu_s for j in jobs]),
        "flexible": np.asarray([j.flexible for j in jobs], dtype=bool),
        "initial": np.asarray([int(j.id[3:]) < n_initial for j in jobs], dtype=bool),
    }


def delay_by_size(jobs: dict[str, np.ndarray], horizon_s: float, gpus_per_domain: int) -> list[dict]:
    """Queueing delay and JCT statistics per size class (hours)."""
    fresh = ~jobs["initial"]
    classes = size_class(jobs["gpus"], gpus_per_domain)
    rows = []
    for index, label in enumerate(SIZE_CLASSES):
        mask = fresh & (classes == index)
        started = mask & ~np.isnan(jobs["first_start_s"])
        waiting = mask & np.isnan(jobs["first_start_s"])
        finished = mask & ~np.isnan(jobs["finish_s"])
        delay_h = (jobs["first_start_s"][started] - jobs["arrival_s"][started]) / 3600.0
        jct_h = (jobs["finish_s"][finished] - jobs["arrival_s"][finished]) / 3600.0
        rows.append(
            {
                "size_class": label,
                "jobs": int(mask.sum()),
                "started": int(started.sum()),
                "waiting": int(waiting.sum()),
                "waiting_mean_h": float(((horizon_s - jobs["arrival_s"][waiting]) / 3600.0).mean())
                if waiting.any()
                else 0.0,
                "queue_delay_mean_h": float(delay_h.mean()) if len(delay_h) else None,
                "queue_delay_p50_h": float(np.median(delay_h)) if len(delay_h) else None,
                "queue_delay_p95_h": float(np.percentile(delay_h, 95)) if len(delay_h) else None,
                "finished": int(finished.sum()),
                "jct_mean_h": float(jct_h.mean()) if len(jct_h) else None,
                "jct_p50_h": float(np.median(jct_h)) if len(jct_h) else None,
            }
        )
    return rows


def summarise(run, state, figures) -> dict:
    """The headline figures of a run (the ``summary`` block of run.json) from its final `TwinState`."""
    training, meter = state.training, state.meter
    total_gpu_h = run.total_gpus * run.horizon_s / 3600.0
    hours = {k: v / 3600.0 for k, v in run.gpu_seconds.items()}
    lost_h = {k: v / 3600.0 for k, v in training.lost_gpu_s.items()}
    inference_busy_h = meter.inference_busy_gpu_s / 3600.0
    useful_h = max(hours["training"] - sum(lost_h.values()), 0.0) + inference_busy_h
    series = run.series
    served = float(meter.tokens_served.sum())
    demanded = float(meter.tokens_demanded.sum())
    energy_mwh = run.energy_kwh / 1000.0
    inference_cost = hours["inference"] * figures.usd_per_gpu_hour
    out = {
        "gpus": run.total_gpus,
        "simulated_h": run.horizon_s / 3600.0,
        "gpu_hours_total": total_gpu_h,
        "gpu_hours_training": hours["training"],
        "gpu_hours_inference": hours["inference"],
        "gpu_hours_idle": hours["idle"],
        "gpu_hours_down": hours["down"],
        "allocation_mean": (hours["training"] + hours["inference"]) / total_gpu_h,
        "utilisation_mean": float(np.mean(series["utilisation"]))
        if len(series.get("utilisation", []))
        else 0.0,
        "fragmentation_mean": float(np.mean(series["fragmentation"]))
        if len(series.get("fragmentation", []))
        else 0.0,
        "goodput_gpu_hours": useful_h,
        "goodput_fraction": useful_h / total_gpu_h,
        "lost_gpu_hours": lost_h,
        "inference_headroom_gpu_hours": hours["inference"] - inference_busy_h,
        "jobs_arrived": int((~run.jobs["initial"]).sum()) if len(run.jobs["gpus"]) else 0,
        "jobs_initial": int(run.jobs["initial"].sum()) if len(run.jobs["gpus"]) else 0,
        "jobs_finished": int(np.sum(~np.isnan(run.jobs["finish_s"]))) if len(run.jobs["gpus"]) else 0,
        "jobs_waiting_at_end": int(len(training.queue)),
        "interruptions": int(run.jobs["interruptions"].sum()) if len(run.jobs["gpus"]) else 0,
        "jobs_paused_for_power": int(training.paused_jobs),
        "failures": dict(state.health.failure_counts),
        "by_size": delay_by_size(run.jobs, run.horizon_s, figures.gpus_per_domain)
        if len(run.jobs["gpus"])
        else [],
        "output_tokens_served": served,
        "output_tokens_demanded": demanded,
        "slo_attainment_tick": served / demanded if demanded > 0 else 1.0,
        "energy_mwh": energy_mwh,
        "facility_power_mean_mw": energy_mwh / (run.horizon_s / 3600.0),
        "facility_power_peak_mw": float(run.power_step_kw.max() / 1000.0) if len(run.power_step_kw) else 0.0,
        "facility_cap_mw": state.grid.base_cap_kw / 1000.0,
        "over_cap_mwh": meter.over_cap_kwh / 1000.0,
        "carbon_t": run.energy_kwh * figures.carbon_g_per_kwh / 1e6,
        "energy_cost_usd": run.energy_kwh * figures.price_usd_per_kwh,
        "ownership_cost_usd": total_gpu_h * figures.usd_per_gpu_hour,
        "usd_per_million_output_tokens": inference_cost / (served / 1e6) if served > 0 else None,
        "pue": figures.pue,
        "scheduler": run.scheduler,
    }
    if run.request_level:
        out["slo_attainment_measured"] = run.request_level["slo_attainment"]
    return out


SLO_OBJECTIVE = 0.99
"""Inference SLO objective: the share of requests whose time to first token is within the service's target
[-]; the operations loop's alert rules and its control actions share it."""
