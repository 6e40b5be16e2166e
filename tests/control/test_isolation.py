"""Tenants: no view of or change to another's workloads (404), never a shared NVLink domain, never outside
their residency."""

from __future__ import annotations

from control_helpers import open_api


def test_tenant_cannot_see_or_change_another_tenants_workload(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    theirs = api.submit(globex, name="secret-run", gpus=8)
    mine = api.submit(acme, name="mine", gpus=4)
    for method, path, body in (
        ("GET", f"/api/v1/workloads/{theirs['id']}", None),
        ("DELETE", f"/api/v1/workloads/{theirs['id']}", None),
        ("POST", f"/api/v1/workloads/{theirs['id']}/scale", {"replicas": 2}),
    ):
        response = api.client.request(method, path, headers=acme, json=body)
        assert response.status_code == 404, (method, path, response.text)
        # exactly what an id that never existed gets
        missing = api.client.request(
            method, path.replace(theirs["id"], "w-000000000000"), headers=acme, json=body
        )
        assert (
            missing.status_code == 404
            and missing.json()["error"].replace("w-000000000000", theirs["id"]) == response.json()["error"]
        )
    assert api.client.get(f"/api/v1/workloads/{theirs['id']}", headers=globex).json()["state"] == "running"
    listed = api.client.get("/api/v1/workloads", headers=acme).json()["data"]
    assert [w["id"] for w in listed] == [mine["id"]]
    queue = api.client.get("/api/v1/queue", headers=acme).json()["data"]
    assert all(w["tenant"] == "acme" for w in queue)
    # a tenant cannot submit in another's name either
    response = api.client.post(
        "/api/v1/workloads", headers=acme, json={"name": "x", "gpus": 1, "tenant": "globex"}
    )
    assert response.status_code == 404
    # the map and nodes show only the caller's share
    racks = [
        r
        for s in api.client.get("/api/v1/factory", headers=acme).json()["sites"]
        for h in s["halls"]
        for r in h["racks"]
    ]
    assert all(set(r["tenants"]) <= {"acme"} for r in racks)
    nodes = api.client.get("/api/v1/nodes", headers=acme).json()["data"]
    assert all(theirs["id"] not in n["workloads"] for n in nodes)
    usage = api.client.get("/api/v1/usage", headers=acme).json()["data"]
    assert [u["tenant"] for u in usage] == ["acme"]
    audit = api.client.get("/api/v1/audit", headers=acme).json()["data"]
    assert all(theirs["id"] not in a["target"] for a in audit)


def test_tenants_never_share_an_nvlink_domain(api):
    tenants = {name: api.tenant(name) for name in ("acme", "globex", "initech")}
    node_domain = api.service.fleet.node_domain
    placed: dict[str, set[int]] = {name: set() for name in tenants}
    # small, odd-sized jobs from all tenants in turn would share domains if isolation were not enforced
    for round_ in range(12):
        for name, headers in tenants.items():
            workload = api.submit(headers, name=f"j{round_}", gpus=(round_ % 3) + 3)
            if workload["placement"]:
                placed[name] |= {int(node_domain[n]) for n in workload["placement"]["node_ids"]}
    names = list(placed)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not placed[a] & placed[b], f"{a} and {b} share NVLink domains {placed[a] & placed[b]}"
    # and what the store holds agrees
    by_domain: dict[int, set[str]] = {}
    for workload in api.client.get("/api/v1/workloads", headers=api.op).json()["data"]:
        for node in (workload["placement"] or {}).get("node_ids", []):
            by_domain.setdefault(int(node_domain[node]), set()).add(workload["tenant"])
    assert all(len(owners) == 1 for owners in by_domain.values())


def test_residency_pins_a_tenant_to_its_site(two_site_design, tmp_path):
    handle = open_api(two_site_design, f"sqlite:///{tmp_path / 'two.db'}")
    fleet = handle.service.fleet
    assert fleet.n_sites == 2
    south = int(fleet.node_gpus[fleet.node_site == 1].sum())
    sovereign = handle.tenant("sovereign", allowed_sites=[1])
    workloads = [handle.submit(sovereign, name=f"s{i}", gpus=72) for i in range(south // 72 + 2)]
    placed = [w for w in workloads if w["placement"]]
    queued = [w for w in workloads if w["state"] == "queued"]
    assert placed and queued, "the pinned site fills up and the rest waits"
    for workload in placed:
        assert set(fleet.node_site[workload["placement"]["node_ids"]].tolist()) == {1}
    assert all(w["queue_reason"] for w in queued)
    # site 0 still has every GPU free: nothing spilled over
    assert int(fleet.node_free_gpus[fleet.node_site == 0].sum()) == int(
        fleet.node_gpus[fleet.node_site == 0].sum()
    )
    # a residency that names a site that does not exist is refused, naming the field
    bad = handle.client.post("/api/v1/tenants", headers=handle.op, json={"name": "x", "allowed_sites": [7]})
    assert bad.status_code == 422 and bad.json()["field"] == "allowed_sites[0]"
    handle.client.close()
    handle.service.engine.dispose()
