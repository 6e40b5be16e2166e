"""Tenant environments through the API: lifecycle with audited transitions, idempotent requests, bad
requests refused with a clear 4xx and nothing changed, workloads inside an environment, a failing step
rolled back, and operations interrupted before their steps finished carried on when the service opens."""

from __future__ import annotations

import pytest
from control_helpers import open_api
from sqlalchemy import func, select

from tokenfab.control import schemas as s
from tokenfab.control.service import ControlService
from tokenfab.control.service import environments as envs
from tokenfab.control.store import (
    AuditRow,
    EnvironmentNodeRow,
    EnvironmentPkeyRow,
    EnvironmentRow,
    EnvironmentVlanRow,
)

ENVS = "/api/v1/environments"


def _counts(service) -> dict[str, int]:
    """Rows of every environment table and the scheduler's allocations: what a refused request must not change."""
    with service.sessions() as session:
        counts = {
            table.__tablename__: session.scalar(select(func.count()).select_from(table))
            for table in (EnvironmentRow, EnvironmentNodeRow, EnvironmentPkeyRow, EnvironmentVlanRow)
        }
    counts["allocations"] = len(service.memory.scheduler.allocations())
    counts["free_gpus"] = int(service.fleet.node_free_gpus.sum())
    return counts


def _check_ok(api) -> dict:
    result = api.client.get(f"{ENVS}/check", headers=api.op).json()
    assert result["ok"], result["problems"]
    return result


def test_lifecycle_with_audited_transitions(api):
    acme = api.tenant("acme", quota_gpus=288)
    created = api.client.post(ENVS, headers=acme, json={"name": "k8s", "domains": 2})
    assert created.status_code == 201, created.text
    env = created.json()
    domain_gpus = int(api.service.fleet.domain_gpus[0])
    assert env["state"] == "ready" and env["template"] == "remote-cluster"
    assert len(env["domains"]) == 2 and env["gpus"] == 2 * domain_gpus
    assert set(env["node_ids"]) == {
        n for d in env["domains"] for n in (api.service.fleet.node_domain == d).nonzero()[0].tolist()
    }
    assert env["pkey"] == 0x0002 and env["vlan"] == 100 and env["vrf"] == f"vrf-{env['id']}"
    assert [x["step"] for x in env["steps"]] == ["network", "storage", "provision"]
    assert api.client.get("/api/v1/tenants/acme", headers=api.op).json()["gpus_allocated"] == 2 * domain_gpus
    _check_ok(api)

    scaled = api.client.post(f"{ENVS}/k8s/scale", headers=acme, json={"domains": 3}).json()
    assert (
        scaled["state"] == "ready" and len(scaled["domains"]) == 3 and scaled["domains"][:2] == env["domains"]
    )
    upgraded = api.client.post(f"{ENVS}/k8s/upgrade", headers=acme, json={"version": "v1.33.1+k0s.0"}).json()
    assert upgraded["version"] == "v1.33.1+k0s.0" and upgraded["state"] == "ready"
    shrunk = api.client.post(f"{ENVS}/k8s/scale", headers=acme, json={"domains": 1}).json()
    assert shrunk["domains"] == env["domains"][:1] and len(shrunk["nodes"]) == len(env["nodes"]) // 2
    _check_ok(api)
    deleted = api.client.delete(f"{ENVS}/k8s", headers=acme).json()
    assert deleted["state"] == "deleted" and deleted["nodes"] == [] and deleted["pkey"] is None
    assert api.client.get("/api/v1/tenants/acme", headers=api.op).json()["gpus_allocated"] == 0
    _check_ok(api)

    with api.service.sessions() as session:
        actions = list(
            session.scalars(
                select(AuditRow.action)
                .where(AuditRow.target == f"environment/{env['id']}")
                .order_by(AuditRow.id)
            )
        )
    assert actions == [
        "environment.request",
        "environment.provision",
        "environment.ready",
        "environment.scale",
        "environment.ready",
        "environment.upgrade",
        "environment.ready",
        "environment.scale",
        "environment.ready",
        "environment.delete",
        "environment.deleted",
    ]
    # the name is free again once deleted
    assert api.client.post(ENVS, headers=acme, json={"name": "k8s", "domains": 1}).status_code == 201


def test_a_retried_request_changes_nothing(api):
    acme = api.tenant("acme")
    first = api.client.post(ENVS, headers=acme, json={"name": "a", "domains": 1, "request_key": "req-1"})
    before = _counts(api.service)
    again = api.client.post(ENVS, headers=acme, json={"name": "a", "domains": 1, "request_key": "req-1"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert _counts(api.service) == before


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"name": "big", "domains": 3}, 422, "over quota"),
        ({"name": "far", "domains": 1, "sites": [1]}, 422, "residency"),
        ({"name": "odd", "domains": 1, "template": "no-such-template"}, 422, "unknown template"),
        ({"name": "vm", "kind": "vm", "domains": 1, "template": "remote-cluster"}, 422, "unknown template"),
        ({"name": "taken", "domains": 1}, 409, "already has an environment"),
        ({"name": "huge", "domains": 7}, 422, "the factory has 6"),
        ({"name": "neg", "domains": 0}, 422, "domains"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_change_nothing(two_site_design, tmp_path, body, status, words):
    api = open_api(two_site_design, f"sqlite:///{tmp_path / 'bad.db'}")
    try:
        acme = api.tenant("acme", quota_gpus=144, allowed_sites=[0])
        assert api.client.post(ENVS, headers=acme, json={"name": "taken", "domains": 1}).status_code == 201
        before = _counts(api.service)
        answer = api.client.post(ENVS, headers=acme, json=body)
        assert answer.status_code == status, answer.text
        assert words in answer.json()["error"]
        assert _counts(api.service) == before
        _check_ok(api)
    finally:
        api.client.close()
        api.service.engine.dispose()


def test_no_room_is_409_and_other_tenants_never_share(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    a = api.client.post(ENVS, headers=acme, json={"name": "a", "domains": 4}).json()
    g = api.client.post(ENVS, headers=globex, json={"name": "g", "domains": 2}).json()
    assert not set(a["node_ids"]) & set(g["node_ids"]) and a["pkey"] != g["pkey"] and a["vlan"] != g["vlan"]
    before = _counts(api.service)
    full = api.client.post(ENVS, headers=globex, json={"name": "more", "domains": 1})
    assert full.status_code == 409 and "no room" in full.json()["error"]
    assert _counts(api.service) == before
    # a tenant sees only its own; another tenant's environment is "not found"
    assert [e["name"] for e in api.client.get(ENVS, headers=globex).json()["data"]] == ["g"]
    assert api.client.get(f"{ENVS}/{a['id']}", headers=globex).status_code == 404
    assert api.client.delete(f"{ENVS}/{a['id']}", headers=globex).status_code == 404
    assert api.client.get(f"{ENVS}/check", headers=globex).status_code == 403
    assert len(api.client.get(ENVS, headers=api.op).json()["data"]) == 2


def test_workloads_run_inside_their_environment(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    env = api.client.post(ENVS, headers=acme, json={"name": "train", "domains": 2}).json()
    inside = api.submit(acme, name="job", gpus=72, environment="train")
    assert inside["state"] == "running" and set(inside["placement"]["node_ids"]) <= set(env["node_ids"])
    # the rest of the factory is for everyone else; the environment's domains are not
    other = api.submit(globex, name="big", gpus=4 * 72)
    assert other["state"] == "running" and not set(other["placement"]["node_ids"]) & set(env["node_ids"])
    more = api.submit(globex, name="more", gpus=4)
    assert more["state"] == "queued"
    # a job too big for the environment waits, even though acme's quota would allow it
    too_big = api.submit(acme, name="too-big", gpus=144, environment="train")
    assert too_big["state"] == "queued"
    _check_ok(api)
    # busy domains cannot be given back, nor the environment deleted
    assert api.client.post(f"{ENVS}/train/scale", headers=acme, json={"domains": 0}).status_code == 422
    assert api.client.delete(f"{ENVS}/train", headers=acme).status_code == 409
    api.client.delete(f"/api/v1/workloads/{inside['id']}", headers=acme)
    placed = api.client.get(f"/api/v1/workloads/{too_big['id']}", headers=acme).json()
    assert placed["state"] == "running" and set(placed["placement"]["node_ids"]) == set(env["node_ids"])
    _check_ok(api)
    api.client.delete(f"/api/v1/workloads/{too_big['id']}", headers=acme)
    assert api.client.delete(f"{ENVS}/train", headers=acme).json()["state"] == "deleted"
    _check_ok(api)
    missing = api.client.post(
        "/api/v1/workloads", headers=acme, json={"name": "x", "gpus": 4, "environment": "train"}
    )
    assert missing.status_code == 404


def test_a_failing_step_rolls_the_create_back(api, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENFAB_SLURM_CONF", str(tmp_path / "no-controller.conf"))
    acme = api.tenant("acme")
    before = _counts(api.service)
    answer = api.client.post(ENVS, headers=acme, json={"name": "hpc", "kind": "slurm", "domains": 1})
    assert answer.status_code == 201
    env = answer.json()
    assert env["state"] == "failed" and "create failed at step slurm" in env["reason"]
    assert env["nodes"] == [] and env["pkey"] is None and env["vlan"] is None
    after = _counts(api.service)
    assert after["allocations"] == before["allocations"] and after["free_gpus"] == before["free_gpus"]
    assert after["environment_nodes"] == 0
    _check_ok(api)


def test_interrupted_operations_finish_when_the_service_opens(row_design, tmp_path):
    """An operation whose request was committed but whose steps never ran (a crash) is carried out on open."""
    db_url = f"sqlite:///{tmp_path / 'resume.db'}"
    opened = ControlService.open(row_design, db_url)
    service = opened.service
    operator = service.authenticate(opened.bootstrap_token)
    service.create_tenant(operator, s.TenantCreate(name="acme"))
    envs.request_create(service, operator, s.EnvironmentCreate(name="a", tenant="acme", domains=1))
    done = service.create_environment(operator, s.EnvironmentCreate(name="b", tenant="acme", domains=1))
    envs.request_delete(service, operator, done.id)
    service.close()

    reopened = ControlService.open(row_design, db_url).service
    listed = {e.name: e for e in reopened.list_environments(operator).data}
    assert listed["a"].state == "ready" and listed["a"].intent is None
    assert listed["b"].state == "deleted" and listed["b"].nodes == []
    assert reopened.check_environments().ok
    assert sorted(reopened.memory.environments.domains_of(listed["a"].id)) == listed["a"].domains
    reopened.close()


def test_a_drained_rack_stays_its_environments(api):
    acme, globex = api.tenant("acme"), api.tenant("globex")
    env = api.client.post(ENVS, headers=acme, json={"name": "k", "domains": 1}).json()
    rack = int(api.service.memory.node_rack[env["node_ids"][0]])
    node = env["node_ids"][0]
    assert api.client.post(f"/api/v1/nodes/{node}/fail", headers=api.op).status_code == 200
    _check_ok(api)
    # the rest of the factory fills up; the environment's healthy nodes are not taken
    for i in range(5):
        api.submit(globex, name=f"g{i}", gpus=72)
    queued = api.submit(globex, name="more", gpus=4)
    assert queued["state"] == "queued"
    for w in api.client.get("/api/v1/workloads", headers=globex).json()["data"]:
        if w["placement"]:
            assert not set(w["placement"]["node_ids"]) & set(env["node_ids"])
    assert api.client.post(f"/api/v1/nodes/{node}/return", headers=api.op).status_code == 200
    assert api.client.post(f"/api/v1/racks/{rack}/drain", headers=api.op).status_code == 200
    assert api.client.post(f"/api/v1/racks/{rack}/return", headers=api.op).status_code == 200
    _check_ok(api)
    inside = api.submit(acme, name="full", gpus=72, environment="k")
    assert inside["state"] == "running" and set(inside["placement"]["node_ids"]) == set(env["node_ids"])


def test_environments_on_postgresql(row_design, pg_url):
    """The same store rules on PostgreSQL: the migration, the pools' primary keys, resume on open."""
    api = open_api(row_design, pg_url)
    try:
        acme, globex = api.tenant("acme"), api.tenant("globex")
        a = api.client.post(ENVS, headers=acme, json={"name": "a", "domains": 2}).json()
        g = api.client.post(ENVS, headers=globex, json={"name": "g", "domains": 1, "kind": "vm"}).json()
        assert a["state"] == g["state"] == "ready" and a["pkey"] != g["pkey"] and a["vlan"] != g["vlan"]
        job = api.submit(acme, name="j", gpus=8, environment="a")
        assert set(job["placement"]["node_ids"]) <= set(a["node_ids"])
        assert api.client.delete(f"{ENVS}/a", headers=acme).status_code == 409  # a workload runs inside
        envs.request_delete(api.service, api.service.authenticate(api.op["Authorization"][7:]), g["id"])
        _check_ok(api)
    finally:
        api.client.close()
        api.service.close()
    reopened = ControlService.open(row_design, pg_url).service
    try:
        states = {
            e.name: e.state
            for e in reopened.list_environments(reopened.authenticate(api.op["Authorization"][7:])).data
        }
        assert states == {"a": "ready", "g": "deleted"}
        assert reopened.check_environments().ok
    finally:
        reopened.close()


def test_whole_racks_on_a_design_with_small_nvlink_domains(tmp_path):
    """On HGX nodes (an NVLink domain is one node) an environment may reserve whole racks instead."""
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import parse_spec

    spec = {
        "name": "hgx",
        "sites": [{"name": "a", "it_mw": 1.15, "climate": "ashburn-va", "system": "hgx-h100"}],
    }
    design = compile(parse_spec(spec), load_catalog())
    api = open_api(design, f"sqlite:///{tmp_path / 'hgx.db'}")
    try:
        fleet = api.service.fleet
        acme = api.tenant("acme")
        env = api.client.post(ENVS, headers=acme, json={"name": "r", "unit": "rack", "domains": 2}).json()
        assert env["state"] == "ready" and env["unit"] == "rack" and len(env["racks"]) == 2
        whole = {int(n) for r in env["racks"] for n in (fleet.node_rack == r).nonzero()[0]}
        assert set(env["node_ids"]) == whole and len(env["domains"]) > 2
        _check_ok(api)
        grown = api.client.post(f"{ENVS}/r/scale", headers=acme, json={"domains": 3}).json()
        assert len(grown["racks"]) == 3 and set(grown["racks"]) > set(env["racks"])
        shrunk = api.client.post(f"{ENVS}/r/scale", headers=acme, json={"domains": 1}).json()
        assert shrunk["racks"] == env["racks"][:1]
        assert set(shrunk["node_ids"]) == {
            int(n) for n in (fleet.node_rack == shrunk["racks"][0]).nonzero()[0]
        }
        _check_ok(api)
        too_many = api.client.post(
            ENVS, headers=acme, json={"name": "x", "unit": "rack", "domains": fleet.n_racks + 1}
        )
        assert too_many.status_code == 422 and "racks asked" in too_many.json()["error"]
    finally:
        api.client.close()
        api.service.close()


def test_concurrent_retries_make_one_environment(api):
    """The same request sent eight times at once: one environment, carried out once."""
    from concurrent.futures import ThreadPoolExecutor

    api.tenant("acme")
    operator = api.service.authenticate(api.op["Authorization"][7:])
    body = s.EnvironmentCreate(name="once", tenant="acme", domains=1, request_key="k-1")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.service.create_environment(operator, body), range(8)))
    assert len({a.id for a in answers}) == 1
    final = api.service.get_environment(operator, answers[0].id)
    assert final.state == "ready" and len(final.nodes) == 18
    with api.service.sessions() as session:
        readies = session.scalar(
            select(func.count()).select_from(AuditRow).where(AuditRow.action == "environment.ready")
        )
    assert readies == 1
    _check_ok(api)
