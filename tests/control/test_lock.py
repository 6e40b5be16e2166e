"""Work that needs no lock is done outside the writer's lock: refusals of bad submissions (shape, owner)
and of bad tenant changes are answered while another thread holds the lock; a large placement writes its
GPU allocations in bulk (bench/bench_control_lock.py measures the lock hold)."""

from __future__ import annotations

import threading

from control_helpers import assert_allocations_consistent


def _while_locked(api, calls):
    """Run ``calls`` (client → response) while another thread holds the service's lock; their answers."""
    held, release = threading.Event(), threading.Event()

    def _hold():
        with api.service.lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=_hold)
    holder.start()
    held.wait(10)
    answers: list = []
    worker = threading.Thread(target=lambda: answers.extend(call(api.client) for call in calls))
    worker.start()
    worker.join(30)
    finished = not worker.is_alive()
    release.set()
    holder.join(10)
    worker.join(30)
    assert finished, "a refusal waited for the writer's lock"
    return answers


def test_refusals_do_not_wait_for_the_writer_lock(api):
    acme = api.tenant("acme")
    api.tenant("globex")
    answers = _while_locked(
        api,
        [
            lambda c: c.post("/api/v1/workloads", headers=acme, json={"name": "x", "gpus": 100_000}),
            lambda c: c.post(
                "/api/v1/workloads", headers=acme, json={"name": "x", "kind": "inference", "gpus": 80}
            ),
            lambda c: c.post(
                "/api/v1/workloads", headers=acme, json={"name": "x", "gpus": 8, "tenant": "globex"}
            ),
            lambda c: c.post(
                "/api/v1/workloads", headers=api.op, json={"name": "x", "gpus": 8, "tenant": "nobody"}
            ),
            lambda c: c.post("/api/v1/workloads", headers=api.op, json={"name": "x", "gpus": 8}),
            lambda c: c.patch("/api/v1/tenants/acme", headers=api.op, json={"allowed_halls": [99]}),
            lambda c: c.post("/api/v1/nodes/99999/cordon", headers=api.op),
        ],
    )
    assert [a.status_code for a in answers] == [422, 422, 404, 404, 422, 422, 404], [a.text for a in answers]


def test_a_large_placement_and_its_release_in_bulk(api):
    acme = api.tenant("acme")
    big = api.submit(acme, name="big", gpus=432)  # every GPU of the row
    assert big["state"] == "running" and sum(big["placement"]["gpus_per_node"]) == 432
    assert assert_allocations_consistent(
        f"sqlite:///{api.service.engine.url.database}", api.service.fleet.node_gpus
    ) == {big["id"]: 432}
    assert api.client.delete(f"/api/v1/workloads/{big['id']}", headers=acme).json()["state"] == "cancelled"
    assert not api.service.memory.slot_used.any()
    again = api.submit(acme, name="again", gpus=432)  # every slot was freed, in memory and in the store
    assert again["state"] == "running"
    assert assert_allocations_consistent(
        f"sqlite:///{api.service.engine.url.database}", api.service.fleet.node_gpus
    ) == {again["id"]: 432}
