"""Priority preemption inside one tenant: a higher-priority submission may evict the same tenant's
strictly lower-priority preemptible work (which goes back to the queue, audited with the evictor), and
never another tenant's."""

from __future__ import annotations

from control_helpers import assert_allocations_consistent


def state(api, headers, workload) -> dict:
    return api.client.get(f"/api/v1/workloads/{workload['id']}", headers=headers).json()


def test_higher_priority_evicts_the_same_tenants_lower_priority_work(api):
    acme = api.tenant("acme")
    low = api.submit(acme, name="low", gpus=432, priority=0)  # the whole factory
    fixed = api.submit(
        acme, **{"name": "fixed", "kind": "small", "gpu_fraction": 0.5, "priority": -5, "preemptible": False}
    )
    assert low["state"] == "running" and fixed["state"] == "queued"
    high = api.submit(acme, name="high", gpus=72, priority=10)
    assert high["state"] == "running"
    evicted = state(api, acme, low)
    assert evicted["state"] == "queued" and f"preempted by {high['id']}" in evicted["queue_reason"]
    # the freed GPUs the evictor does not need let the queue run: the small one is placed
    assert state(api, acme, fixed)["state"] == "running"
    audit = api.client.get("/api/v1/audit", headers=acme).json()["data"]
    preempt = [a for a in audit if a["action"] == "workload.preempt"]
    assert len(preempt) == 1 and preempt[0]["target"] == f"workload/{low['id']}"
    assert preempt[0]["after"]["evicted_by"] == high["id"] and preempt[0]["after"]["state"] == "queued"
    # an equal priority and a non-preemptible workload are never evicted
    same = api.submit(acme, name="same", gpus=432, priority=10)
    assert same["state"] == "queued"
    assert state(api, acme, high)["state"] == "running" and state(api, acme, fixed)["state"] == "running"
    assert_allocations_consistent(str(api.service.engine.url), api.service.fleet.node_gpus)


def test_on_failure_fail_workloads_fail_when_preempted(api):
    acme = api.tenant("acme")
    low = api.submit(acme, name="low", gpus=432, on_failure="fail")
    api.submit(acme, name="high", gpus=8, priority=1)
    assert state(api, acme, low)["state"] == "failed"


def test_another_tenants_work_is_never_evicted(api):
    acme = api.tenant("acme")
    beta = api.tenant("beta")
    theirs = api.submit(acme, name="theirs", gpus=360, priority=-100)  # five racks, lowest priority
    own_low = api.submit(beta, name="own-low", gpus=72, priority=0)  # the last rack
    urgent = api.submit(beta, name="urgent", gpus=144, priority=100)
    # evicting beta's own rack frees 72 GPUs, not 144; acme's racks are out of bounds
    assert urgent["state"] == "queued"
    assert state(api, acme, theirs)["state"] == "running"
    assert state(api, beta, own_low)["state"] == "running"
    actions = [a["action"] for a in api.client.get("/api/v1/audit", headers=api.op).json()["data"]]
    assert "workload.preempt" not in actions
    # a small urgent one fits by evicting beta's own rack only
    rack = api.submit(beta, name="rack", gpus=72, priority=100)
    assert rack["state"] == "running" and state(api, beta, own_low)["state"] == "queued"
    assert state(api, acme, theirs)["state"] == "running"
    assert_allocations_consistent(str(api.service.engine.url), api.service.fleet.node_gpus)
