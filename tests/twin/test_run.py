"""Whole runs of the twin on small sites: invariants on every run, determinism, failures, grid events."""

from __future__ import annotations

import numpy as np
import pytest

from tokenfab.twin.invariants import check_invariants, same_result
from tokenfab.twin.run import Simulation, simulate
from tokenfab.twin.workload import WorkloadSpec


def stress_workload(**overrides) -> WorkloadSpec:
    doc = {
        "name": "stress",
        "tick_min": 10,
        "training": {"load": 0.8, "checkpoint_interval_min": 20, "flexible_fraction": 0.5},
        "inference": {
            "services": [
                {
                    "name": "chat",
                    "trace": "azure-conv",
                    "model": "llama-3.1-70b",
                    "ttft_ms": 2000,
                    "itl_ms": 50,
                    "peak_gpu_share": 0.15,
                    "min_gpus_per_replica": 4,
                }
            ],
            "request_level": "chat",
            "request_level_max_requests": 20_000,
        },
        "failures": {
            "rate_multiplier": 200,
            "cdu_failures": [{"at_h": 1, "hall": 0, "units": 2, "repair_h": 1}],
        },
        "power": {"grid_events": [{"start_h": 2, "duration_h": 1, "cut_fraction": 0.25}]},
    }
    doc.update(overrides)
    return WorkloadSpec.model_validate(doc)


@pytest.fixture(scope="module")
def stress_run(design_10mw, traces, acme_rows, catalog):
    return simulate(
        design_10mw,
        stress_workload(),
        4 / 24,
        seed=7,
        traces=traces,
        acme_rows=acme_rows,
        catalog=catalog,
        check=True,
    )


def test_stress_run_keeps_every_invariant(stress_run):
    assert check_invariants(stress_run) == []
    assert stress_run.events_handled > 100


def test_failures_interrupt_work_and_are_repaired(stress_run):
    s = stress_run.summary
    assert sum(s["failures"].values()) > 10
    assert s["interruptions"] > 0
    assert s["lost_gpu_hours"]["failure"] > 0
    assert s["gpu_hours_down"] > 0
    # the scripted CDU loss (2 of the hall's CDUs) stopped racks for an hour, then they came back
    down = stress_run.series["gpus_down"]
    t = stress_run.series["time_s"]
    assert down[(t > 3600) & (t < 7200)].max() > down[t >= 3 * 3600].min()


def test_grid_event_is_met_within_its_deadline(stress_run):
    (event,) = stress_run.grid_events
    assert event["response_s"] is not None and event["response_s"] <= event["respond_within_s"]
    steps_t, steps_kw = stress_run.power_step_time_s, stress_run.power_step_kw
    during = (steps_t >= event["start_s"] + event["respond_within_s"]) & (
        steps_t < event["start_s"] + event["duration_s"]
    )
    assert np.all(steps_kw[during] <= event["cap_kw"] + 1e-6)
    # inference kept serving while training gave way
    assert stress_run.summary["slo_attainment_tick"] > 0.9


def test_request_level_measures_slo(stress_run):
    r = stress_run.request_level
    assert r["service"] == "chat" and r["requests"] > 1000
    assert 0.0 <= r["slo_attainment"] <= 1.0
    assert r["ttft_p50_ms"] <= r["ttft_p99_ms"]


def test_gpu_hours_add_up(stress_run):
    s = stress_run.summary
    parts = s["gpu_hours_training"] + s["gpu_hours_inference"] + s["gpu_hours_idle"] + s["gpu_hours_down"]
    assert parts == pytest.approx(s["gpu_hours_total"], rel=1e-9)
    assert 0 < s["goodput_fraction"] <= s["allocation_mean"] + 1e-9


def test_same_seed_same_result_and_other_seed_differs(design_1mw, traces, acme_rows, catalog):
    workload = stress_workload(inference={"services": []}, failures={"rate_multiplier": 500})
    runs = [
        simulate(design_1mw, workload, 0.1, seed=seed, traces=traces, acme_rows=acme_rows, catalog=catalog)
        for seed in (3, 3, 4)
    ]
    for run in runs:
        assert check_invariants(run) == []
    assert same_result(runs[0], runs[1])
    assert not same_result(runs[0], runs[2])


def test_a_run_taken_in_steps_is_the_run_taken_whole(design_1mw, traces, acme_rows, catalog):
    workload = stress_workload(failures={"rate_multiplier": 500})
    inputs = dict(seed=5, traces=traces, acme_rows=acme_rows, catalog=catalog)
    whole = simulate(design_1mw, workload, 0.1, **inputs)
    stepped = Simulation(design_1mw, workload, 0.1, **inputs)
    seen = []
    for t_s in np.arange(0.0, stepped.horizon_s + 1000.0, 777.0):
        if not stepped.done:
            with pytest.raises(RuntimeError, match="step to the horizon"):
                stepped.finish()
        stepped.step_until(t_s)
        state = stepped.state
        assert stepped.now_s == min(t_s, stepped.horizon_s) and state.now_s <= stepped.now_s
        seen.append((state.training.gpus, state.n_inf, state.facility_kw))
    assert stepped.done and len(set(seen)) > 3, "the state is readable between steps and changes"
    run = stepped.finish()
    assert same_result(run, whole) and run.events_handled == whole.events_handled
    assert run.energy_kwh == whole.energy_kwh and check_invariants(run) == []


@pytest.mark.parametrize("policy", ["first_fit", "best_fit", "topology_packing", "fragmentation_aware"])
def test_every_policy_keeps_the_invariants(policy, design_1mw, catalog):
    workload = WorkloadSpec.model_validate(
        {"name": "training-only", "training": {"load": 0.9}, "failures": {"rate_multiplier": 300}}
    )
    run = simulate(design_1mw, workload, 0.125, policy=policy, seed=1, catalog=catalog, check=True)
    assert check_invariants(run) == []
    assert run.summary["jobs_finished"] > 0
    assert run.policy == policy


def test_a_scenario_replaces_the_workloads_failures_and_power(design_1mw, catalog):
    from tokenfab.twin.workload import ScenarioSpec

    workload = WorkloadSpec.model_validate(
        {"name": "w", "training": {"load": 0.6}, "failures": {"enabled": False}}
    )
    scenario = ScenarioSpec.model_validate(
        {
            "failures": {"rate_multiplier": 1000},
            "power": {"grid_events": [{"start_h": 0.5, "duration_h": 0.5, "cut_fraction": 0.3}]},
        }
    )
    quiet = simulate(design_1mw, workload, 0.05, seed=2, catalog=catalog)
    stormy = simulate(design_1mw, workload, 0.05, seed=2, scenario=scenario, catalog=catalog)
    assert sum(quiet.summary["failures"].values()) == 0 and not quiet.grid_events
    assert sum(stormy.summary["failures"].values()) > 0 and len(stormy.grid_events) == 1
    assert check_invariants(stormy) == []
