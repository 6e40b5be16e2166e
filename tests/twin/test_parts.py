"""The twin's parts on their own: node health, grid cuts, training caps, and events that return what follows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tokenfab.fleet import HEALTH_FAILED, HEALTH_OK, from_design
from tokenfab.twin.facility import CduFailure, CduRepair, Failure, NodeHealth, Repair, facility_figures
from tokenfab.twin.response import Grid, GridEventEnd, GridEventStart, PowerResponse
from tokenfab.twin.run import Simulation
from tokenfab.twin.training import JobFinish, Schedule, Training
from tokenfab.twin.workload import TrainingJobs, WorkloadSpec


@pytest.fixture
def health(design_1mw, catalog):
    return NodeHealth(from_design(design_1mw), facility_figures(design_1mw, catalog))


def test_overlapping_faults_heal_only_with_the_last_repair(health):
    gpu_key, nodes = health.open_failure("gpu", 0)
    node_key, _ = health.open_failure("node", int(nodes[0]))
    assert health.target_health(nodes).tolist() == [HEALTH_FAILED]
    health.close_failure("gpu", gpu_key)
    assert health.target_health(nodes).tolist() == [HEALTH_FAILED], "the node fault still holds it"
    health.close_failure("node", node_key)
    assert health.target_health(nodes).tolist() == [HEALTH_OK]
    assert health.failure_counts["gpu"] == health.failure_counts["node"] == 1 and not health.failure_nodes


def test_cdu_losses_beyond_redundancy_stop_racks_and_restore_them(health):
    """row-1mw: 1 CDU required, 2 installed, 6 racks in its hall."""
    assert health.change_cdus(0, 1) is None, "N+1 absorbs one loss"
    stopped = health.change_cdus(0, 1)
    assert stopped is not None and len(stopped) == health.fleet.n_nodes
    assert int(health.cdu_stopped_racks[0]) == health.fleet.n_racks
    restarted = health.change_cdus(0, -1)
    assert np.array_equal(np.sort(restarted), np.sort(stopped)) and int(health.cdu_stopped_racks[0]) == 0
    assert health.fail_count.sum() == 0 and health.failure_counts["cdu"] == 2


def test_grid_cuts_stack_and_lift_in_order():
    grid = Grid(base_cap_kw=100.0)
    grid.start_cut(0.0, 0.2, 3600.0, 60.0, facility_kw=80.0)
    assert grid.cap_kw == pytest.approx(64.0)
    grid.start_cut(10.0, 0.5, 3600.0, 60.0, facility_kw=60.0)
    assert grid.cap_kw == pytest.approx(30.0) and len(grid.events) == 2
    grid.note_compliance(20.0, facility_kw=29.0)
    assert grid.events[-1]["response_s"] == pytest.approx(10.0) and grid.events[0]["complied_at_s"] is None
    grid.end_cut()
    assert grid.cap_kw == pytest.approx(30.0), "the deeper cut still holds"
    grid.end_cut()
    assert grid.event_cap_kw == math.inf and grid.cap_kw == 100.0


def test_training_caps_are_whole_steps_within_floor_and_full():
    empty = TrainingJobs(
        np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool), 0.0, 0.0, 0.0
    )
    training = Training(empty, 1200.0, 72, full_power_w=1000.0, floor_power_w=400.0)
    assert training.set_cap(0.0, 555.5, idle_power_w=140.0, clock_power_exponent=2.5)
    assert training.cap_w == 550.0 and 0 < training.speed < 1 and training.speed_epoch == 1
    assert not training.set_cap(5.0, 559.0, 140.0, 2.5), "the same step changes nothing"
    training.set_cap(10.0, 10.0, 140.0, 2.5)
    assert training.cap_w == 400.0 and training.clock_break_t == [0.0, 0.0, 10.0]
    training.set_cap(20.0, 5000.0, 140.0, 2.5)
    assert training.cap_w == 1000.0 and training.speed == 1.0


def test_events_change_the_state_and_return_what_follows(design_1mw, catalog):
    workload = WorkloadSpec.model_validate(
        {
            "name": "w",
            "training": {"load": 0.9},
            "failures": {"enabled": False},
            "power": {"grid_events": [{"start_h": 5, "duration_h": 1, "cut_fraction": 0.3}]},
        }
    )
    sim = Simulation(design_1mw, workload, 0.5, seed=1, catalog=catalog)
    sim.step_until(3600.0)
    state, t = sim.state, 3600.0
    running = next(iter(state.training.running.values()))
    node = int(state.sched.allocations()[running.id].nodes[0])
    events = Failure(t, "node", node, 1800.0).handle(state)
    repairs = [e for e in events if isinstance(e, Repair)]
    assert len(repairs) == 1 and repairs[0].time_s == t + 1800.0
    assert running.id not in state.training.running and running.interruptions == 1
    assert any(isinstance(e, Schedule) for e in events) and state.fleet.node_health[node] == HEALTH_FAILED
    repairs[0].handle(state)
    assert state.fleet.node_health[node] == HEALTH_OK
    follow = CduFailure(t, 0, 2, 600.0).handle(state)
    assert isinstance(follow[-1], CduRepair) and follow[-1].time_s == t + 600.0
    cut = GridEventStart(t, 0.3, 900.0, 60.0).handle(state)
    assert [type(e) for e in cut] == [PowerResponse, PowerResponse, GridEventEnd]
    assert state.grid.cap_kw < state.grid.base_cap_kw
    assert all(isinstance(e, JobFinish) for e in cut[0].handle(state))
