"""Facility power in the control plane: the twin's power model on the allocation state, and curtailment
that evicts the fewest workloads covering the shed, with nothing evicted and then placed again."""

from __future__ import annotations

import pytest

from tokenfab.control.service.power import Candidate, curtailment_victims
from tokenfab.twin import power


def ids(victims: list[Candidate]) -> list[str]:
    return [c.workload_id for c in victims]


def test_the_fewest_workloads_that_cover_the_shed():
    # newest first within a priority: b and c (8 kW each) are newer than a (72 kW)
    candidates = [Candidate("b", 0, 8.0), Candidate("c", 0, 8.0), Candidate("a", 0, 72.0)]
    assert ids(curtailment_victims(candidates, 40.0)) == ["a"]  # one workload, not b + c + a
    assert ids(curtailment_victims(candidates, 5.0)) == ["b"]  # the smallest that covers, newest on ties
    assert ids(curtailment_victims(candidates, 80.0)) == ["a", "b"]  # 72 + 8 = 80: two, not three
    assert ids(curtailment_victims(candidates, 100.0)) == ["a", "b", "c"]  # 88 < 100: all, short of it


def test_lower_priorities_go_first_but_a_victim_not_needed_stays():
    candidates = [Candidate("low-a", 0, 10.0), Candidate("low-b", 0, 10.0), Candidate("high", 5, 30.0)]
    assert ids(curtailment_victims(candidates, 15.0)) == ["low-a", "low-b"]  # priority 5 untouched
    # 45 kW: priority 0 gives 20, "high" the other 25; without either low one only 40 would be shed
    assert ids(curtailment_victims(candidates, 45.0)) == ["low-a", "low-b", "high"]
    # 25 kW: 20 from priority 0 and 30 from "high"; "high" alone covers it, so the low ones, which
    # would only be placed again under the cap, are not evicted
    assert ids(curtailment_victims(candidates, 25.0)) == ["high"]


def test_workloads_that_save_nothing_are_never_chosen():
    candidates = [Candidate("shares-a-gpu", 0, 0.0), Candidate("whole", 0, 3.0)]
    assert ids(curtailment_victims(candidates, 2.0)) == ["whole"]


def test_the_control_plane_draw_is_the_twin_power_model(api):
    memory = api.service.memory
    fig = memory.figures
    n = memory.fleet.n_gpus  # 432 GB200: TDP 1,200 W, idle 140 W, host 466.7 W per GPU, fabric 55.8 kW
    empty_kw = power.facility_power_kw(
        power.it_power_kw(power.it_power_w(0.0, n, n, fig.gpu_idle_w, fig.host_w_per_gpu), fig.fabric_kw),
        fig.pue,
    )
    assert memory.facility_draw_kw() == pytest.approx(empty_kw)
    acme = api.tenant("acme")
    api.submit(acme, name="gang", gpus=72)
    # 72 GPUs from idle (140 W) to the twin's uncapped training draw (0.85 × 1,200 W), × the design's PUE
    gang_kw = 72 * (1020 - 140) * fig.pue / 1000.0
    assert memory.facility_draw_kw() - empty_kw == pytest.approx(gang_kw)
    status = api.client.get("/api/v1/power", headers=api.op).json()
    assert status["facility_draw_kw"] == pytest.approx(empty_kw + gang_kw, abs=0.01)
    assert status["pue"] == pytest.approx(fig.pue)


def test_curtailment_evicts_one_big_workload_not_three_with_two_placed_again(api):
    acme = api.tenant("acme")
    big = api.submit(acme, name="big", gpus=72)  # oldest
    small = [api.submit(acme, name=f"small{i}", gpus=8) for i in range(2)]  # newer
    memory = api.service.memory
    draw_kw = memory.facility_draw_kw()
    gpu_kw = draw_kw - memory.facility_draw_kw(freed_gpus=1)
    assert gpu_kw == pytest.approx(
        (1020 - 140) * memory.figures.pue / 1000.0, abs=0.001
    )  # (1,020 − 140) W × PUE
    cap_kw = round(draw_kw - 40 * gpu_kw, 1)  # shed the power of 40 GPUs: ~40 kW
    audit_before = api.client.get("/api/v1/audit", headers=api.op).json()["data"][0]["id"]

    status = api.client.post(
        "/api/v1/power/events", headers=api.op, json={"kind": "curtailment", "cap_kw": cap_kw}
    ).json()

    # newest-first eviction would take small0, small1 (16 GPUs, not enough) and big (72), then place
    # both small ones again in the 48 GPUs of headroom; the fewest covering set is big alone
    assert status["evicted"] == [big["id"]]
    assert cap_kw - 32 * gpu_kw - 0.1 <= status["facility_draw_kw"] <= cap_kw  # 32 GPUs of headroom left
    after = api.client.get("/api/v1/audit", headers=api.op).json()["data"]
    actions = [entry["action"] for entry in after if entry["id"] > audit_before]
    assert "workload.place" not in actions  # nothing evicted and placed again
    states = {w["id"]: w["state"] for w in api.client.get("/api/v1/workloads", headers=acme).json()["data"]}
    assert states[big["id"]] == "queued" and all(states[w["id"]] == "running" for w in small)
