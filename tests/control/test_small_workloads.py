"""Small workloads: a fraction of one GPU plus CPU and memory, placed on shared GPUs, counted in quotas as
their fraction, rebuilt exactly on restart, and held to ≤ 1000 milli-GPU per GPU by the database itself."""

from __future__ import annotations

import pytest
from control_helpers import Api, assert_allocations_consistent, open_api
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from tokenfab.control.api import create_app
from tokenfab.control.service import ControlService
from tokenfab.control.store import GpuAllocationRow, GpuShareRow, PlacementRow


def small(name: str, fraction: float, **extra) -> dict:
    return {"name": name, "kind": "small", "gpu_fraction": fraction, "cpu_cores": 4, "memory_gb": 16, **extra}


def test_small_workloads_share_a_gpu_and_count_their_fraction(api):
    acme = api.tenant("acme", quota_gpus=1)
    first = api.submit(acme, **small("notebook-a", 0.5))
    second = api.submit(acme, **small("notebook-b", 0.5))
    for workload in (first, second):
        assert workload["state"] == "running" and workload["gpus"] == 0
        assert workload["placement"]["gpu_fraction"] == 0.5
    where = {(w["placement"]["node_ids"][0], w["placement"]["gpu_slot"]) for w in (first, second)}
    assert len(where) == 1, "two halves share one GPU"
    node, slot = where.pop()
    tenant = api.client.get("/api/v1/tenants/acme", headers=acme).json()
    assert tenant["gpu_equivalents_allocated"] == 1.0 and tenant["gpus_allocated"] == 1
    over = api.submit(acme, **small("notebook-c", 0.25))
    assert over["state"] == "queued" and "quota" in over["queue_reason"]
    assert [w["id"] for w in api.client.get("/api/v1/queue", headers=acme).json()["data"]] == [over["id"]]

    rack = api.service.fleet.node_rack[node]
    detail = api.client.get(f"/api/v1/racks/{rack}", headers=acme).json()
    shown = next(n for n in detail["nodes"] if n["id"] == node)
    assert shown["gpus_shared"] == {str(slot): 1000} and set(shown["workloads"]) >= {
        first["id"],
        second["id"],
    }
    assert {w["id"] for w in detail["workloads"]} >= {first["id"], second["id"]}

    api.client.delete(f"/api/v1/workloads/{first['id']}", headers=acme)
    placed = api.client.get(f"/api/v1/workloads/{over['id']}", headers=acme).json()
    assert placed["state"] == "running" and placed["placement"]["gpu_slot"] == slot
    usage = api.client.get("/api/v1/usage", headers=acme).json()["data"][0]
    assert usage["gpu_equivalents_allocated"] == 0.75  # gpu_hours counts 0.5 × time: too short to show here
    assert_allocations_consistent(str(api.service.engine.url), api.service.fleet.node_gpus)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "s", "kind": "small"}, "gpu_fraction"),
        ({"name": "s", "kind": "small", "gpu_fraction": 1.5}, "gpu_fraction"),
        ({"name": "s", "kind": "small", "gpu_fraction": 0}, "gpu_fraction"),
        ({"name": "s", "kind": "small", "gpu_fraction": 0.0001}, "gpu_fraction"),
        ({"name": "s", "kind": "small", "gpu_fraction": 0.5, "gpus": 2}, "gpus"),
        ({"name": "s", "kind": "small", "gpu_fraction": 0.5, "replicas": 2}, "replicas"),
        ({"name": "s", "kind": "small", "gpu_fraction": 0.5, "cpu_cores": 4000}, "cpu_cores"),
        ({"name": "s", "kind": "small", "gpu_fraction": 0.5, "memory_gb": -1}, "memory_gb"),
        ({"name": "s", "kind": "training", "gpus": 4, "gpu_fraction": 0.5}, "gpu_fraction"),
        ({"name": "s", "kind": "training"}, "gpus"),
    ],
)
def test_bad_small_workload_is_422_naming_the_field(api, body, field):
    response = api.client.post("/api/v1/workloads", headers=api.op, json={**body, "tenant": "nobody"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_shared_gpus_survive_a_restart(row_design, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'shares.db'}"
    api = open_api(row_design, db_url)
    acme = api.tenant("acme")
    a = api.submit(acme, **small("a", 0.6))
    b = api.submit(acme, **small("b", 0.5))  # no room next to a: opens a second GPU
    c = api.submit(acme, **small("c", 0.4))  # fills a's GPU
    assert c["placement"]["gpu_slot"] == a["placement"]["gpu_slot"] != b["placement"]["gpu_slot"]
    api.client.delete(f"/api/v1/workloads/{a['id']}", headers=acme)
    # now two GPUs hold 0.4 and 0.5: a naive restore would merge them onto one GPU
    free_before = int(api.service.fleet.node_free_gpus.sum())
    api.client.close()
    api.service.close()

    reopened = ControlService.open(row_design, db_url).service
    from fastapi.testclient import TestClient

    again = Api(TestClient(create_app(row_design, db_url, service=reopened)), "", reopened)
    assert int(reopened.fleet.node_free_gpus.sum()) == free_before == row_design_gpus(reopened) - 2
    for before in (b, c):
        after = again.client.get(f"/api/v1/workloads/{before['id']}", headers=acme).json()
        assert after["placement"]["gpu_slot"] == before["placement"]["gpu_slot"]
    rest = again.submit(acme, name="rest", gpus=free_before)  # every whole GPU left: slot maps must agree
    assert rest["state"] == "running"
    assert_allocations_consistent(db_url, reopened.fleet.node_gpus)
    again.client.close()
    reopened.close()


def row_design_gpus(service: ControlService) -> int:
    return int(service.fleet.n_gpus)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_database_refuses_an_oversubscribed_or_mixed_gpu(row_design, tmp_path, request, backend):
    db_url = f"sqlite:///{tmp_path / 'db.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    api = open_api(row_design, db_url)
    acme = api.tenant("acme")
    shared = api.submit(acme, **small("shared", 0.7))
    whole = api.submit(acme, name="whole", gpus=1)
    node, slot = shared["placement"]["node_ids"][0], shared["placement"]["gpu_slot"]
    service = api.service
    with service.sessions() as session:
        placement_of = dict(session.execute(select(PlacementRow.workload_id, PlacementRow.id)).all())
        whole_slot = session.execute(select(GpuAllocationRow.node_id, GpuAllocationRow.slot)).one()
    attempts = [
        GpuShareRow(
            node_id=node,
            slot=slot,
            workload_id=whole["id"],
            milli=400,
            placement_id=placement_of[whole["id"]],
        ),  # 700 + 400 > 1000
        GpuShareRow(
            node_id=whole_slot[0],
            slot=whole_slot[1],
            workload_id=shared["id"],
            milli=100,
            placement_id=placement_of[shared["id"]],
        ),  # on a GPU allocated whole
        GpuAllocationRow(
            node_id=node, slot=slot, workload_id=whole["id"], placement_id=placement_of[whole["id"]]
        ),  # whole on a shared GPU
        GpuShareRow(
            node_id=node,
            slot=slot,
            workload_id=whole["id"],
            milli=1000,
            placement_id=placement_of[whole["id"]],
        ),  # a share is below one GPU
    ]
    for row in attempts:
        with pytest.raises(DBAPIError), service.sessions() as session, session.begin():
            session.add(row)
    with service.sessions() as session, session.begin():  # 700 + 300 = 1000 fits
        session.add(
            GpuShareRow(
                node_id=node,
                slot=slot,
                workload_id=whole["id"],
                milli=300,
                placement_id=placement_of[whole["id"]],
            )
        )
    api.client.close()
    service.close()


def test_draining_a_shared_gpus_rack_requeues_and_replaces_its_small_workloads(api):
    acme = api.tenant("acme")
    notebook = api.submit(acme, **small("nb", 0.3))
    rack = notebook["placement"]["racks"][0]
    drained = api.client.post(
        f"/api/v1/racks/{rack}/drain", headers=api.op, json={"reason": "CDU swap"}
    ).json()
    assert notebook["id"] in drained["requeued"]
    moved = api.client.get(f"/api/v1/workloads/{notebook['id']}", headers=acme).json()
    assert moved["state"] == "running" and moved["placement"]["racks"] != [rack]
    with api.service.sessions() as session:
        shares = session.execute(select(GpuShareRow.node_id, GpuShareRow.milli)).all()
    assert shares == [(moved["placement"]["node_ids"][0], 300)]
