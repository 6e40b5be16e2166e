"""Workload life cycle: the queue places waiting work when capacity frees, inference services scale with
each replica inside one NVLink domain, and a reopened store rebuilds the same scheduler state."""

from __future__ import annotations

from collections import Counter

import numpy as np

from tokenfab.control.service import ControlService


def test_queued_workload_is_placed_when_capacity_frees(api):
    acme = api.tenant("acme")
    big = api.submit(acme, name="big", gpus=360)
    waiting = api.submit(acme, name="waiting", gpus=144)
    assert waiting["state"] == "queued" and "144" in waiting["queue_reason"]
    queue = api.client.get("/api/v1/queue", headers=acme).json()
    assert [w["id"] for w in queue["data"]] == [waiting["id"]]
    cancelled = api.client.delete(f"/api/v1/workloads/{big['id']}", headers=acme).json()
    assert cancelled["state"] == "cancelled" and cancelled["placement"] is None
    placed = api.client.get(f"/api/v1/workloads/{waiting['id']}", headers=acme).json()
    assert (
        placed["state"] == "running" and placed["placement"]["gpus"] == 144 and placed["queue_reason"] == ""
    )
    actions = [a["action"] for a in api.client.get("/api/v1/audit", headers=api.op).json()["data"]]
    assert "workload.place" in actions and "workload.cancel" in actions
    usage = api.client.get("/api/v1/usage", headers=acme).json()["data"][0]
    assert usage["gpus_allocated"] == 144 and usage["gpu_hours"] > 0


def test_inference_scales_with_replicas_inside_nvlink_domains(api):
    acme = api.tenant("acme")
    node_domain = api.service.fleet.node_domain
    service = api.submit(acme, name="chat", kind="inference", gpus=8, replicas=2, tokens_per_s_per_gpu=2500)
    assert service["gpus"] == 16

    def replicas_whole(workload) -> bool:
        per_domain = Counter()
        for node, gpus in zip(
            workload["placement"]["node_ids"], workload["placement"]["gpus_per_node"], strict=True
        ):
            per_domain[int(node_domain[node])] += gpus
        return all(count % 8 == 0 for count in per_domain.values())

    assert replicas_whole(service)
    scaled = api.client.post(
        f"/api/v1/workloads/{service['id']}/scale", headers=acme, json={"replicas": 9}
    ).json()
    assert scaled["state"] == "running" and scaled["gpus"] == 72 and scaled["replicas"] == 9
    assert replicas_whole(scaled)
    usage = api.client.get("/api/v1/usage", headers=acme).json()["data"][0]
    assert usage["tokens_per_s"] == 72 * 2500
    too_big = api.client.post(
        f"/api/v1/workloads/{service['id']}/scale", headers=acme, json={"replicas": 100}
    )
    assert too_big.status_code == 422 and too_big.json()["field"] == "replicas"
    down = api.client.post(
        f"/api/v1/workloads/{service['id']}/scale", headers=acme, json={"replicas": 1}
    ).json()
    assert down["gpus"] == 8 and down["state"] == "running"


def test_reopening_the_store_rebuilds_the_same_state(row_design, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'reopen.db'}"
    from control_helpers import Api

    from tokenfab.control.api import create_app

    opened = ControlService.open(row_design, db_url)
    from fastapi.testclient import TestClient

    handle = Api(
        TestClient(create_app(row_design, db_url, service=opened.service)),
        opened.bootstrap_token,
        opened.service,
    )
    acme, globex = handle.tenant("acme", quota_gpus=150), handle.tenant("globex", allowed_halls=[0])
    for i in range(5):
        handle.submit(acme, name=f"a{i}", gpus=36)
        handle.submit(globex, name=f"g{i}", gpus=12)
    handle.client.post("/api/v1/racks/2/drain", headers=handle.op)
    handle.client.post("/api/v1/nodes/100/fail", headers=handle.op)
    before = opened.service
    handle.client.close()
    before.engine.dispose()

    after = ControlService.open(row_design, db_url).service
    assert after.scheduler.allocations().keys() == before.scheduler.allocations().keys()
    for request_id, placement in before.scheduler.allocations().items():
        again = after.scheduler.allocation(request_id)
        assert np.array_equal(again.nodes, placement.nodes) and np.array_equal(
            again.gpus_per_node, placement.gpus_per_node
        )
    assert np.array_equal(after.fleet.node_free_gpus, before.fleet.node_free_gpus)
    assert np.array_equal(after.fleet.node_health, before.fleet.node_health)
    assert np.array_equal(after.fleet.domain_tenant >= 0, before.fleet.domain_tenant >= 0)
    assert np.array_equal(after.memory.slot_used, before.memory.slot_used)
    for level in ("domain", "rack", "su", "hall", "site"):
        assert np.array_equal(after.scheduler.free_gpus(level), before.scheduler.free_gpus(level)), level
    assert after.scheduler.used_gpus_by_tenant() == before.scheduler.used_gpus_by_tenant()
    assert after.scheduler.quotas_gpus() == {"acme": 150}
    after.engine.dispose()
