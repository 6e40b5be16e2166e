"""Isolation of tenant environments: a hypothesis property test over random create/scale/delete sequences
for several tenants (no node, NVLink domain, partition key or VLAN shared; every environment inside its
tenant's residency; the service's own check agrees), and a real `tokenfab serve` killed between the steps
of an operation and restarted: every environment is then completed or rolled back."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import httpx
import pytest
from control_helpers import bearer, free_port, start_server_process, wait_healthy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tokenfab.control import schemas as s
from tokenfab.control.db import make_engine, session_factory
from tokenfab.control.service import ControlService, ServiceError
from tokenfab.control.store import EnvironmentNodeRow, EnvironmentPkeyRow, EnvironmentRow, EnvironmentVlanRow

TENANTS = {  # name: (quota GPUs, allowed sites)
    "north": (216, [0]),
    "south": (288, [1]),
    "anywhere": (None, None),
}
OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "scale", "delete"]),
        st.sampled_from(sorted(TENANTS)),
        st.integers(min_value=0, max_value=2),  # which of the tenant's environments
        st.integers(min_value=1, max_value=4),  # domains
    ),
    min_size=1,
    max_size=12,
)


def _invariants(service: ControlService) -> None:
    fleet = service.fleet
    with service.sessions() as session:
        envs = {e.id: e for e in session.scalars(select(EnvironmentRow))}
        node_rows = list(session.scalars(select(EnvironmentNodeRow)))
        pkeys = list(session.scalars(select(EnvironmentPkeyRow)))
        vlans = list(session.scalars(select(EnvironmentVlanRow)))
    tenants = {t.name: t for t in service.list_tenants(service.authenticate(service._operator_token)).data}
    names = {e.id: e.tenant_id for e in envs.values()}
    assert len({r.node_id for r in node_rows}) == len(node_rows)
    assert len({p.pkey for p in pkeys}) == len(pkeys) and len({v.vlan for v in vlans}) == len(vlans)
    holding = {e.id for e in envs.values() if e.state in ("ready", "provisioning", "updating", "deleting")}
    assert {p.environment_id for p in pkeys} == holding == {v.environment_id for v in vlans}
    domains = Counter(d for e in envs.values() if e.id in holding for d in e.domains)
    assert all(count == 1 for count in domains.values()), "an NVLink domain in two environments"
    public = {e.id: e for e in service.list_environments(service.authenticate(service._operator_token)).data}
    for row in node_rows:
        env = public[row.environment_id]
        allowed = tenants[env.tenant].allowed_sites
        assert allowed is None or int(fleet.node_site[row.node_id]) in allowed, "outside residency"
        assert names[row.environment_id] is not None
    for env in public.values():
        assert env.state in ("ready", "deleted"), env  # no operation is left half done
    check = service.check_environments()
    assert check.ok, check.problems


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_operations_never_share_and_stay_resident(two_site_design, ops):
    with tempfile.TemporaryDirectory() as folder:
        opened = ControlService.open(two_site_design, f"sqlite:///{Path(folder) / 'p.db'}")
        service = opened.service
        service._operator_token = opened.bootstrap_token
        operator = service.authenticate(opened.bootstrap_token)
        for name, (quota, sites) in TENANTS.items():
            service.create_tenant(operator, s.TenantCreate(name=name, quota_gpus=quota, allowed_sites=sites))
        made: dict[str, list[str]] = {name: [] for name in TENANTS}
        try:
            for step, (op, tenant, which, domains) in enumerate(ops):
                try:
                    if op == "create":
                        env = service.create_environment(
                            operator, s.EnvironmentCreate(name=f"e{step}", tenant=tenant, domains=domains)
                        )
                        made[tenant].append(env.id)
                    elif made[tenant]:
                        env_id = made[tenant][which % len(made[tenant])]
                        if op == "scale":
                            service.scale_environment(operator, env_id, s.EnvironmentScale(domains=domains))
                        else:
                            service.delete_environment(operator, env_id)
                except ServiceError:
                    pass  # refused (over quota, no room, deleted): nothing changed, which the invariants check
                _invariants(service)
        finally:
            service.close()


@pytest.mark.xdist_group("control_e2e")
@pytest.mark.parametrize(
    "crash_after", ["create:network", "create:provision", "scale:network", "delete:slurm"]
)
def test_killed_between_steps_then_restarted(row_design_path, tmp_path, crash_after):
    """The server exits (as if SIGKILLed) right after committing one step; on restart the operation is
    finished: every environment is ready or deleted, never half made, and the isolation check holds."""
    db_url = f"sqlite:///{tmp_path / 'kill.db'}"
    token = "tf_000000000001_" + "killtestsecret" * 3  # a secret of at least 32 characters
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    op, _, _step = crash_after.partition(":")
    kind = "slurm" if op == "delete" else "kubernetes"  # only Slurm environments have a slurm step

    server = start_server_process(row_design_path, db_url, port, token, log)
    try:
        wait_healthy(url, process=server)
        headers = bearer(token)
        httpx.post(f"{url}/api/v1/tenants", headers=headers, json={"name": "acme"}).raise_for_status()
        env = httpx.post(
            f"{url}/api/v1/environments",
            headers=headers,
            json={"name": "ok", "tenant": "acme", "kind": kind, "domains": 1},
        ).json()
        assert env["state"] == "ready"
    finally:
        server.terminate()
        server.wait(timeout=30)

    os.environ["TOKENFAB_ENV_FAULT_AFTER"] = crash_after  # read by the server process it starts
    try:
        server = start_server_process(row_design_path, db_url, port, token, log)
    finally:
        del os.environ["TOKENFAB_ENV_FAULT_AFTER"]
    try:
        wait_healthy(url, process=server)
        with pytest.raises(httpx.HTTPError):  # the server dies in the middle of answering
            if op == "create":
                httpx.post(
                    f"{url}/api/v1/environments",
                    headers=bearer(token),
                    timeout=30,
                    json={"name": "crash", "tenant": "acme", "domains": 2},
                )
            elif op == "scale":
                httpx.post(
                    f"{url}/api/v1/environments/{env['id']}/scale",
                    headers=bearer(token),
                    timeout=30,
                    json={"domains": 3},
                )
            else:
                httpx.delete(f"{url}/api/v1/environments/{env['id']}", headers=bearer(token), timeout=30)
        assert server.wait(timeout=30) == 137
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        busy = [e.state for e in session.scalars(select(EnvironmentRow))]
    engine.dispose()
    assert {"provisioning", "updating", "deleting"} & set(busy), busy  # the crash left an operation in flight

    server = start_server_process(row_design_path, db_url, port, token, log)
    try:
        wait_healthy(url, process=server)
        listed = httpx.get(f"{url}/api/v1/environments", headers=bearer(token)).json()["data"]
        states = {e["name"]: e["state"] for e in listed}
        if op == "create":
            assert states == {"ok": "ready", "crash": "ready"}
        elif op == "scale":
            assert states == {"ok": "ready"} and len(listed[0]["domains"]) == 3
        else:
            assert states == {"ok": "deleted"} and listed[0]["nodes"] == []
        check = httpx.get(f"{url}/api/v1/environments/check", headers=bearer(token)).json()
        assert check["ok"], check["problems"]
    finally:
        server.terminate()
        server.wait(timeout=30)
