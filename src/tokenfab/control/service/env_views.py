"""Tenant environments as the API shows them, and the isolation check.

`check` proves, from the store and the scheduler's memory together, what the environments promise:
no node, NVLink domain, partition key or VLAN held by two environments; every environment inside its
tenant's residency and holding whole domains; nothing on an environment's domains but its own holds and
its tenant's workloads that run inside it; and an environment that holds nothing once deleted or failed.
"""

from __future__ import annotations

from collections import Counter
from typing import cast

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.env_plan import vrf_name
from tokenfab.control.service.errors import NotFound
from tokenfab.control.service.holds import hold_id
from tokenfab.control.service.state import ServiceState
from tokenfab.control.store import (
    ENV_HOLDING_STATES,
    EnvironmentNodeRow,
    EnvironmentPkeyRow,
    EnvironmentRow,
    EnvironmentStepRow,
    EnvironmentVlanRow,
    TenantRow,
    WorkloadRow,
    as_utc,
)

STEPS_SHOWN = 20


def node_names(state: ServiceState) -> list[str]:
    """Every node's hostname (`tokenfab.names`), computed once per service."""
    return state.node_names


def owned_environment(session: Session, principal: Principal, env_id: str) -> tuple[EnvironmentRow, str]:
    """The environment (by id, or by its live name among the caller's) and its tenant's name, if the caller
    may see it; another tenant's is 'not found'."""
    row = session.get(EnvironmentRow, env_id)
    if row is None and principal.tenant_id is not None:
        row = session.scalar(
            select(EnvironmentRow).where(
                EnvironmentRow.tenant_id == principal.tenant_id, EnvironmentRow.live_name == env_id
            )
        )
    if row is None and principal.is_operator:
        matches = list(session.scalars(select(EnvironmentRow).where(EnvironmentRow.live_name == env_id)))
        row = matches[0] if len(matches) == 1 else None
    if row is None or (not principal.is_operator and row.tenant_id != principal.tenant_id):
        raise NotFound(f"environment {env_id} not found", "environment")
    return row, session.get_one(TenantRow, row.tenant_id).name


def env_public(
    state: ServiceState, session: Session, row: EnvironmentRow, tenant: str
) -> s.EnvironmentPublic:
    node_ids = sorted(
        session.scalars(select(EnvironmentNodeRow.node_id).where(EnvironmentNodeRow.environment_id == row.id))
    )
    names = node_names(state)
    fleet = state.fleet
    pkey = session.scalar(select(EnvironmentPkeyRow.pkey).where(EnvironmentPkeyRow.environment_id == row.id))
    vlan = session.scalar(select(EnvironmentVlanRow.vlan).where(EnvironmentVlanRow.environment_id == row.id))
    steps = session.scalars(
        select(EnvironmentStepRow)
        .where(EnvironmentStepRow.environment_id == row.id)
        .order_by(EnvironmentStepRow.id.desc())
        .limit(STEPS_SHOWN)
    )
    return s.EnvironmentPublic(
        id=row.id,
        name=row.name,
        tenant=tenant,
        kind=row.kind,
        template=row.template,
        version=row.version,
        state=cast(s.EnvironmentStateName, row.state),
        reason=row.reason,
        unit=cast(s.EnvironmentUnit, row.unit),
        domains=list(row.domains),
        racks=sorted({int(fleet.domain_rack[d]) for d in row.domains}),
        node_ids=node_ids,
        nodes=[names[n] for n in node_ids],
        gpus=int(fleet.node_gpus[node_ids].sum()) if node_ids else 0,
        storage_tb=row.storage_tb,
        pkey=pkey,
        vlan=vlan,
        vrf=vrf_name(row.id) if vlan is not None else None,
        sites=sorted({int(state.memory.node_site[n]) for n in node_ids}),
        intent=row.intent,
        steps=[
            {"op": x.op, "step": x.step, "status": x.status, "at": as_utc(x.at).isoformat()} for x in steps
        ][::-1],
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def list_environments(state: ServiceState, principal: Principal) -> s.EnvironmentsPublic:
    """Environments, newest first (a tenant sees its own)."""
    with state.sessions() as session:
        query = select(EnvironmentRow, TenantRow.name).join(
            TenantRow, EnvironmentRow.tenant_id == TenantRow.id
        )
        if not principal.is_operator:
            query = query.where(EnvironmentRow.tenant_id == principal.tenant_id)
        rows = session.execute(query.order_by(EnvironmentRow.created_at.desc()).limit(1000)).all()
        data = [env_public(state, session, row, tenant) for row, tenant in rows]
    return s.EnvironmentsPublic(data=data, count=len(data))


def check(state: ServiceState) -> s.EnvironmentCheck:
    """The isolation invariant of every environment, from the store and the scheduler (operator)."""
    with state.lock, state.sessions() as session:
        envs = session.execute(
            select(EnvironmentRow, TenantRow).join(TenantRow, EnvironmentRow.tenant_id == TenantRow.id)
        ).all()
        node_rows = list(session.scalars(select(EnvironmentNodeRow)))
        pkeys = Counter(session.scalars(select(EnvironmentPkeyRow.environment_id)))
        vlans = Counter(session.scalars(select(EnvironmentVlanRow.environment_id)))
        inside = {
            w.id: w.spec.get("environment")
            for w in session.scalars(select(WorkloadRow))
            if w.spec.get("environment")
        }
        problems = _problems(state, envs, node_rows, pkeys, vlans, inside)
    return s.EnvironmentCheck(
        ok=not problems, environments=len(envs), nodes=len(node_rows), problems=problems
    )


def _problems(state: ServiceState, envs, node_rows, pkeys, vlans, inside) -> list[str]:
    fleet, memory = state.fleet, state.memory
    scheduler = memory.scheduler
    problems: list[str] = []
    nodes_of: dict[str, set[int]] = {}
    for node_row in node_rows:
        nodes_of.setdefault(node_row.environment_id, set()).add(node_row.node_id)
    domain_owner: dict[int, str] = {}
    for env, tenant in envs:
        held = nodes_of.get(env.id, set())
        if env.state not in ENV_HOLDING_STATES:
            if held or pkeys[env.id] or vlans[env.id] or memory.environments.domains_of(env.id):
                problems.append(f"{env.id} is {env.state} but still holds nodes, a partition key or a VLAN")
            continue
        if pkeys[env.id] != 1 or vlans[env.id] != 1:
            problems.append(
                f"{env.id} holds {pkeys[env.id]} partition keys and {vlans[env.id]} VLANs, not 1 and 1"
            )
        whole = {int(n) for d in env.domains for n in memory.environments.domain_nodes[d]}
        if env.state != "updating" and held != whole:
            problems.append(f"{env.id}: its nodes are not exactly its NVLink domains {env.domains}")
        if env.unit == "rack":
            racks = {int(fleet.domain_rack[d]) for d in env.domains}
            if set(env.domains) != {int(d) for d in np.flatnonzero(np.isin(fleet.domain_rack, list(racks)))}:
                problems.append(f"{env.id}: reserved by rack but does not hold whole racks {sorted(racks)}")
        for domain in env.domains:
            if domain in domain_owner:
                problems.append(f"domain {domain} is in {domain_owner[domain]} and {env.id}")
            domain_owner[domain] = env.id
            hall = int(fleet.su_hall[fleet.rack_su[fleet.domain_rack[domain]]])
            site = int(fleet.hall_site[hall])
            if (tenant.allowed_sites is not None and site not in tenant.allowed_sites) or (
                tenant.allowed_halls is not None and hall not in tenant.allowed_halls
            ):
                problems.append(
                    f"{env.id}: domain {domain} (site {site}, hall {hall}) is outside {tenant.name}'s residency"
                )
            if env.state != "updating" and sorted(memory.environments.domains_of(env.id)) != sorted(
                env.domains
            ):
                problems.append(f"{env.id}: the scheduler's holds are not its domains")
                break
        for request_id, placement in scheduler.allocations().items():
            on = set(placement.nodes.tolist()) & whole
            if not on:
                continue
            ours = request_id.startswith(f"{env.id}:d") or inside.get(request_id) == env.id
            if not ours:
                problems.append(
                    f"{request_id} runs on nodes {sorted(on)[:4]} of {env.id} without being inside it"
                )
    for env, tenant in envs:
        for request_id in (hold_id(env.id, d) for d in memory.environments.domains_of(env.id)):
            request = scheduler.request_of(request_id)
            if request is not None and request.tenant != tenant.name:
                problems.append(f"{request_id} is held for {request.tenant}, not {tenant.name}")
    return problems
