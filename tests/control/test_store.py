"""The store: migrations on start, append-only audit log, design fingerprint, power cap and grid events."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from tokenfab.control.service import ControlService
from tokenfab.io.yamlfile import InputError


def test_migrations_create_every_table_and_rerun_cleanly(row_design, tmp_path):
    db_url = f"sqlite:///{tmp_path / 's.db'}"
    first = ControlService.open(row_design, db_url)
    assert first.bootstrap_token
    tables = set(inspect(first.service.engine).get_table_names())
    assert {
        "sites",
        "halls",
        "racks",
        "nodes",
        "tenants",
        "api_tokens",
        "workloads",
        "placements",
        "gpu_allocations",
        "audit_log",
        "power_events",
        "telemetry",
        "alembic_version",
        "environments",
        "environment_steps",
        "environment_nodes",
        "environment_pkeys",
        "environment_vlans",
    } <= tables
    first.service.engine.dispose()
    again = ControlService.open(row_design, db_url)  # upgrade is idempotent; no second bootstrap token
    assert again.bootstrap_token is None
    again.service.engine.dispose()


def test_audit_log_is_append_only(api):
    api.tenant("acme")
    with api.service.engine.connect() as connection:
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(text(statement))
            connection.rollback()
        assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar() >= 3


def test_a_store_serves_only_its_design(row_design, two_site_design, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'one.db'}"
    ControlService.open(row_design, db_url).service.engine.dispose()
    with pytest.raises(InputError, match="cannot serve design two-sites"):
        ControlService.open(two_site_design, db_url)


def test_curtailment_evicts_low_priority_work_and_restore_places_it_again(api):
    acme = api.tenant("acme")
    important = api.submit(acme, name="important", gpus=72, priority=10)
    filler = [api.submit(acme, name=f"filler{i}", gpus=72) for i in range(3)]
    draw = api.client.get("/api/v1/power", headers=api.op).json()["facility_draw_kw"]
    cap = draw - 1.0
    result = api.client.post(
        "/api/v1/power/events",
        headers=api.op,
        json={"kind": "curtailment", "cap_kw": cap, "message": "grid operator request"},
    )
    assert result.status_code == 200, result.text
    status = result.json()
    assert status["evicted"] and important["id"] not in status["evicted"]
    assert status["facility_draw_kw"] <= cap and status["events"][0]["kind"] == "curtailment"
    evicted = api.client.get(f"/api/v1/workloads/{status['evicted'][0]}", headers=acme).json()
    assert evicted["state"] == "queued" and "power cap" in evicted["queue_reason"]
    # while capped, a new submission that would exceed the cap waits with the reason
    waiting = api.submit(acme, name="late", gpus=72)
    assert waiting["state"] == "queued" and "power cap" in waiting["queue_reason"]
    restored = api.client.post("/api/v1/power/events", headers=api.op, json={"kind": "restore"}).json()
    assert restored["cap_kw"] is None
    states = {w["id"]: w["state"] for w in api.client.get("/api/v1/workloads", headers=acme).json()["data"]}
    assert all(states[w["id"]] == "running" for w in filler)
    metrics = api.client.get("/metrics", headers=api.op).text
    assert "tokenfab_facility_power_draw_kw" in metrics and 'tokenfab_workloads{state="running"} 5' in metrics


def test_failed_node_requeues_or_fails_per_policy(api):
    acme = api.tenant("acme")
    keep = api.submit(acme, name="keep", gpus=8, on_failure="requeue")
    drop = api.submit(acme, name="drop", gpus=8, on_failure="fail")
    nodes = set(keep["placement"]["node_ids"]) | set(drop["placement"]["node_ids"])
    requeued, failed = [], []
    for node in sorted(nodes):
        result = api.client.post(f"/api/v1/nodes/{node}/fail", headers=api.op, json={"reason": "PSU"}).json()
        requeued += result["requeued"]
        failed += result["failed"]
    assert keep["id"] in requeued and drop["id"] in failed
    again = api.client.get(f"/api/v1/workloads/{keep['id']}", headers=acme).json()
    assert again["state"] == "running" and not set(again["placement"]["node_ids"]) & nodes
    assert api.client.get(f"/api/v1/workloads/{drop['id']}", headers=acme).json()["state"] == "failed"
    listed = api.client.get("/api/v1/nodes", headers=api.op, params={"health": "failed"}).json()
    assert {n["id"] for n in listed["data"]} == nodes and all(
        n["health_reason"] == "PSU" for n in listed["data"]
    )


def test_a_second_allocation_of_a_gpu_slot_cannot_commit(api):
    """Even with memory wrong, the store refuses a double allocation; the batch rolls back, memory is
    rebuilt from the store and the service goes on."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from tokenfab.control.store import GpuAllocationRow

    acme = api.tenant("acme")
    first = api.submit(acme, name="first", gpus=4)
    other = api.submit(acme, name="other", gpus=4)
    with api.service.sessions() as session:
        taken = session.scalars(
            select(GpuAllocationRow).where(GpuAllocationRow.workload_id == first["id"])
        ).first()
        placement_id = session.scalars(
            select(GpuAllocationRow.placement_id).where(GpuAllocationRow.workload_id == other["id"])
        ).first()
    free_before = api.service.fleet.node_free_gpus.copy()

    def double_allocate(session):
        api.service.fleet.node_free_gpus[:] = 0  # memory goes wrong as well
        session.add(
            GpuAllocationRow(
                node_id=taken.node_id, slot=taken.slot, workload_id=other["id"], placement_id=placement_id
            )
        )
        session.flush()

    with pytest.raises(IntegrityError):
        api.service.mutate(double_allocate)
    assert (api.service.fleet.node_free_gpus == free_before).all(), "memory was rebuilt from the store"
    after = api.submit(acme, name="after", gpus=4)
    assert after["state"] == "running"
