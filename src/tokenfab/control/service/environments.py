"""Tenant environments: create, scale, upgrade and delete, step by step, resumable after a crash.

An operation is carried out in three parts, each committed before the next starts:

1. the *request* transaction checks everything (template, residency, quota, capacity, name) and either
   refuses, changing nothing, or takes what the operation needs at once: the NVLink domains (through the
   scheduler, `tokenfab.control.service.holds`), the nodes, a partition key and a VLAN (rows whose
   primary keys forbid sharing), and records the *intent* (operation, target, previous state);
2. the *steps* (`tokenfab.control.service.env_driver`), each recorded in ``environment_steps`` when done;
3. the *finish* transaction makes the target the environment's state (ready, or deleted) and clears the
   intent; a failing step instead *rolls back*: what the steps did is undone and what was taken is
   given back (a create ends ``failed`` with the reason, a scale or upgrade returns to ``ready``).

On start (`resume_all`), every environment with an intent carries it on from the first step not
recorded, so a crash leaves no environment half made. Every state change is in the audit log.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service import env_driver
from tokenfab.control.service.env_plan import (
    PKEY_FIRST,
    PKEY_LAST,
    VLAN_FIRST,
    VLAN_LAST,
    first_free,
    template_for,
)
from tokenfab.control.service.env_views import env_public, node_names, owned_environment
from tokenfab.control.service.errors import Conflict, Invalid
from tokenfab.control.service.metrics import sample
from tokenfab.control.service.state import ServiceState, audit
from tokenfab.control.service.workloads import owner_for
from tokenfab.control.store import (
    ACTIVE_STATES,
    ENV_BUSY_STATES,
    EnvironmentNodeRow,
    EnvironmentPkeyRow,
    EnvironmentRow,
    EnvironmentState,
    EnvironmentStepRow,
    EnvironmentVlanRow,
    Role,
    TenantRow,
    WorkloadRow,
    utc_now,
)


def env_facts(row: EnvironmentRow) -> dict[str, Any]:
    """What the audit log records of an environment before and after a change."""
    return {"state": row.state, "domains": list(row.domains), "version": row.version, "reason": row.reason}


def _transition(
    session: Session, principal: Principal, row: EnvironmentRow, new_state: str, action: str, reason: str = ""
) -> None:
    before = env_facts(row)
    row.state = new_state
    row.reason = reason
    row.updated_at = utc_now()
    audit(session, principal, action, f"environment/{row.id}", before, env_facts(row), row.tenant_id)


def _intent(session: Session, op: str, target: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    last_step = session.scalar(select(func.max(EnvironmentStepRow.id))) or 0
    return {"op": op, "target": target, "previous": previous, "after_step": int(last_step)}


# ------------------------------------------------------------------ the request transactions


def _check_residency(fleet, tenant: TenantRow, body: s.EnvironmentCreate):
    """The sites and halls the environment may use: the request's, inside the tenant's residency."""
    allowed_sites, allowed_halls = tenant.allowed_sites, tenant.allowed_halls
    for index, site in enumerate(body.sites or []):
        if not 0 <= site < fleet.n_sites:
            raise Invalid(f"no site {site}", f"sites[{index}]")
        if allowed_sites is not None and site not in allowed_sites:
            raise Invalid(f"site {site} is outside tenant {tenant.name}'s residency {allowed_sites}", "sites")
    for index, hall in enumerate(body.halls or []):
        if not 0 <= hall < fleet.n_halls:
            raise Invalid(f"no hall {hall}", f"halls[{index}]")
        site = int(fleet.hall_site[hall])
        if (allowed_halls is not None and hall not in allowed_halls) or (
            allowed_sites is not None and site not in allowed_sites
        ):
            raise Invalid(f"hall {hall} is outside tenant {tenant.name}'s residency", "halls")
    sites = tuple(body.sites) if body.sites is not None else (tuple(allowed_sites) if allowed_sites else None)
    halls = tuple(body.halls) if body.halls is not None else (tuple(allowed_halls) if allowed_halls else None)
    return sites, halls


def _reserve(state: ServiceState, env_id: str, tenant: str, n: int, sites, halls, unit: str) -> list[int]:
    """Reserve ``n`` whole domains (or racks) through the scheduler or refuse, nothing changed: over quota
    422, no room 409."""
    fleet = state.fleet
    available = fleet.n_racks if unit == "rack" else fleet.n_domains
    if n > available:
        raise Invalid(f"{n} {unit}s asked; the factory has {available}", "domains")
    taken = state.memory.environments.reserve(env_id, tenant, n, sites, halls, whole_racks=unit == "rack")
    if isinstance(taken, str):
        if "quota" in taken:
            raise Invalid(f"over quota: {taken}", "domains")
        what = "rack" if unit == "rack" else "NVLink domain"
        raise Conflict(f"no room for {n} whole {what}(s): {taken}", "domains")
    return taken


def size_groups(state: ServiceState, row: EnvironmentRow) -> list[list[int]]:
    """The environment's domains grouped in its unit (one domain, or the domains of one rack), in order."""
    if row.unit != "rack":
        return [[d] for d in row.domains]
    groups: dict[int, list[int]] = {}
    for domain in row.domains:
        groups.setdefault(int(state.fleet.domain_rack[domain]), []).append(domain)
    return list(groups.values())


def _add_nodes(state: ServiceState, session: Session, env_id: str, domains: list[int]) -> None:
    domain_nodes = state.memory.environments.domain_nodes
    for domain in domains:
        for node in domain_nodes[domain].tolist():
            session.add(EnvironmentNodeRow(node_id=node, environment_id=env_id, domain=domain))


def _take_pools(session: Session, env_id: str) -> None:
    """A partition key and a VLAN for the environment: the smallest free ones (primary keys forbid sharing)."""
    pkey = first_free(set(session.scalars(select(EnvironmentPkeyRow.pkey))), PKEY_FIRST, PKEY_LAST)
    vlan = first_free(set(session.scalars(select(EnvironmentVlanRow.vlan))), VLAN_FIRST, VLAN_LAST)
    if pkey is None or vlan is None:
        raise Conflict("no InfiniBand partition key or VLAN left for another environment")
    session.add(EnvironmentPkeyRow(pkey=pkey, environment_id=env_id))
    session.add(EnvironmentVlanRow(vlan=vlan, environment_id=env_id))


def request_create(state: ServiceState, principal: Principal, body: s.EnvironmentCreate) -> str:
    """Check and take what a new environment needs, or refuse; its id (an existing one for a retried key)."""
    template = template_for(body.kind, body.template)
    if template is None:
        raise Invalid(f"unknown template {body.template} for a {body.kind} environment", "template")

    def _op(session: Session) -> str:
        tenant = owner_for(session, principal, body.tenant)
        if body.request_key is not None:
            existing = session.scalar(
                select(EnvironmentRow).where(
                    EnvironmentRow.tenant_id == tenant.id, EnvironmentRow.request_key == body.request_key
                )
            )
            if existing is not None:
                return existing.id
        taken = session.scalar(
            select(EnvironmentRow).where(
                EnvironmentRow.tenant_id == tenant.id, EnvironmentRow.live_name == body.name
            )
        )
        if taken is not None:
            raise Conflict(
                f"tenant {tenant.name} already has an environment {body.name} ({taken.state})", "name"
            )
        sites, halls = _check_residency(state.fleet, tenant, body)
        env_id = f"e-{secrets.token_hex(6)}"
        domains = _reserve(state, env_id, tenant.name, body.domains, sites, halls, body.unit)
        now = utc_now()
        row = EnvironmentRow(
            id=env_id,
            tenant_id=tenant.id,
            name=body.name,
            kind=body.kind,
            template=template,
            version=body.version,
            unit=body.unit,
            domains=domains,
            storage_tb=body.storage_tb,
            state=EnvironmentState.requested,
            reason="",
            intent=None,
            request_key=body.request_key,
            live_name=body.name,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        audit(
            session,
            principal,
            "environment.request",
            f"environment/{env_id}",
            None,
            env_facts(row),
            tenant.id,
        )
        session.flush()
        _add_nodes(state, session, env_id, domains)
        _take_pools(session, env_id)
        session.flush()  # the primary keys refuse a shared node, partition key or VLAN here
        row.intent = _intent(session, "create", {"domains": domains}, {"domains": []})
        _transition(session, principal, row, EnvironmentState.provisioning, "environment.provision")
        state.memory.note_environment(env_id, tenant.name)
        sample(state.memory, session)
        return env_id

    return state.mutate(_op)


def request_scale(state: ServiceState, principal: Principal, env_id: str, body: s.EnvironmentScale) -> str:
    def _op(session: Session) -> str:
        row, tenant = owned_environment(session, principal, env_id)
        if row.state != EnvironmentState.ready:
            raise Conflict(f"environment {row.name} is {row.state}; scale it when ready", "state")
        current = list(row.domains)
        groups = size_groups(state, row)
        if body.domains == len(groups):
            return row.id
        if body.domains > len(groups):
            residency = state.memory.residency.get(tenant, (None, None))
            added = _reserve(state, row.id, tenant, body.domains - len(groups), *residency, row.unit)
            _add_nodes(state, session, row.id, added)
            session.flush()
            target = current + added
            state.memory.note_environment(row.id, tenant)
        else:
            free = set(state.memory.environments.free_domains(row.id))
            droppable = [group for group in reversed(groups) if set(group) <= free]
            need = len(groups) - body.domains
            if len(droppable) < need:
                raise Conflict(
                    f"only {len(droppable)} of {len(groups)} {row.unit}s are free of workloads; cannot shrink "
                    f"to {body.domains}",
                    "domains",
                )
            drop = {d for group in droppable[:need] for d in group}
            target = [d for d in current if d not in drop]
        row.intent = _intent(session, "scale", {"domains": target}, {"domains": current})
        _transition(session, principal, row, EnvironmentState.updating, "environment.scale")
        return row.id

    return state.mutate(_op)


def request_upgrade(
    state: ServiceState, principal: Principal, env_id: str, body: s.EnvironmentUpgrade
) -> str:
    def _op(session: Session) -> str:
        row, _tenant = owned_environment(session, principal, env_id)
        if row.state != EnvironmentState.ready:
            raise Conflict(f"environment {row.name} is {row.state}; upgrade it when ready", "state")
        if body.version == row.version:
            return row.id
        row.intent = _intent(session, "upgrade", {"version": body.version}, {"version": row.version})
        _transition(session, principal, row, EnvironmentState.updating, "environment.upgrade")
        return row.id

    return state.mutate(_op)


def request_delete(state: ServiceState, principal: Principal, env_id: str) -> str:
    def _op(session: Session) -> str:
        row, _tenant = owned_environment(session, principal, env_id)
        if row.state in (EnvironmentState.deleted, EnvironmentState.failed):
            return row.id
        if row.state == EnvironmentState.deleting:
            return row.id  # already under way (a retried request): the steps carry on
        if row.state != EnvironmentState.ready:
            raise Conflict(f"environment {row.name} is {row.state}; delete it when ready", "state")
        inside = session.scalar(
            select(func.count())
            .select_from(WorkloadRow)
            .where(WorkloadRow.tenant_id == row.tenant_id, WorkloadRow.state.in_(list(ACTIVE_STATES)))
            .where(WorkloadRow.spec["environment"].as_string() == row.id)
        )
        if inside:
            raise Conflict(
                f"environment {row.name} still runs {inside} workload(s): cancel them first", "state"
            )
        row.intent = _intent(session, "delete", {}, {"domains": list(row.domains)})
        _transition(session, principal, row, EnvironmentState.deleting, "environment.delete")
        return row.id

    return state.mutate(_op)


# ------------------------------------------------------------------ steps, finish, rollback


def _snapshot(state: ServiceState, session: Session, row: EnvironmentRow) -> env_driver.Snapshot:
    names = node_names(state)
    intent = row.intent or {}
    target = intent.get("target", {})
    previous = intent.get("previous", {})
    domains = target.get("domains", row.domains)
    new_domains = [d for d in domains if d not in previous.get("domains", [])]
    nodes_of = state.memory.environments.domain_nodes
    tenant = session.get_one(TenantRow, row.tenant_id).name
    pkey = session.scalar(select(EnvironmentPkeyRow.pkey).where(EnvironmentPkeyRow.environment_id == row.id))
    vlan = session.scalar(select(EnvironmentVlanRow.vlan).where(EnvironmentVlanRow.environment_id == row.id))
    return env_driver.Snapshot(
        env_id=row.id,
        tenant=tenant,
        name=row.name,
        kind=row.kind,
        op=intent.get("op", ""),
        nodes=[names[n] for d in domains for n in nodes_of[d].tolist()],
        new_nodes=[names[n] for d in new_domains for n in nodes_of[d].tolist()],
        pkey=pkey,
        vlan=vlan,
        storage_tb=row.storage_tb,
        target=target,
    )


def _next_step(state: ServiceState, env_id: str) -> tuple[env_driver.Snapshot | None, str | None]:
    """The operation in flight and its first step not yet done (None: all done; no snapshot: nothing in flight)."""
    with state.sessions() as session:
        row = session.get(EnvironmentRow, env_id)
        if row is None or row.intent is None:
            return None, None
        snap = _snapshot(state, session, row)
        done = set(
            session.scalars(
                select(EnvironmentStepRow.step).where(
                    EnvironmentStepRow.environment_id == env_id,
                    EnvironmentStepRow.id > row.intent["after_step"],
                    EnvironmentStepRow.status == "done",
                )
            )
        )
    todo = [step for step in env_driver.steps_of(snap.kind, snap.op) if step not in done]
    return snap, (todo[0] if todo else None)


def _record_step(
    state: ServiceState, snap: env_driver.Snapshot, step: str, status: str, detail: dict
) -> None:
    def _op(session: Session) -> None:
        session.add(
            EnvironmentStepRow(
                environment_id=snap.env_id, op=snap.op, step=step, status=status, detail=detail, at=utc_now()
            )
        )

    state.mutate(_op)


_RUNNING_LOCK = threading.Lock()


def carry_out(state: ServiceState, principal: Principal, env_id: str) -> None:
    """Run the steps of ``env_id``'s operation in flight, then finish it; roll it back if a step fails.
    One caller at a time per environment: another one (a retried request) returns at once."""
    running: set[str] = state.__dict__.setdefault("_environments_running", set())
    with _RUNNING_LOCK:
        if env_id in running:
            return
        running.add(env_id)
    try:
        _carry_out(state, principal, env_id)
    finally:
        with _RUNNING_LOCK:
            running.discard(env_id)


def _carry_out(state: ServiceState, principal: Principal, env_id: str) -> None:
    while True:
        snap, step = _next_step(state, env_id)
        if snap is None:
            return
        if step is None:
            _finish(state, principal, env_id)
            return
        try:
            detail = env_driver.run_step(snap, step)
        except Exception as exc:  # a failed step: undo the operation (a deletion stays under way)
            _record_step(state, snap, step, "failed", {"error": str(exc)})
            _roll_back(state, principal, snap, f"{snap.op} failed at step {step}: {exc}")
            return
        _record_step(state, snap, step, "done", detail)
        env_driver.maybe_crash(snap.op, step)


def _give_back(state: ServiceState, session: Session, row: EnvironmentRow, domains: list[int] | None) -> None:
    """Give back ``domains`` of the environment (all, with its partition key and VLAN, when None)."""
    memory = state.memory
    dropped = list(row.domains) if domains is None else domains
    for domain in dropped:
        memory.workload_tenant.pop(f"{row.id}:d{domain}", None)
    memory.environments.unhold(row.id, None if domains is None else dropped)
    for node_row in session.scalars(
        select(EnvironmentNodeRow).where(
            EnvironmentNodeRow.environment_id == row.id, EnvironmentNodeRow.domain.in_(dropped)
        )
    ):
        session.delete(node_row)
    if domains is None:
        for table in (EnvironmentPkeyRow, EnvironmentVlanRow):
            for pool_row in session.scalars(select(table).where(table.environment_id == row.id)):
                session.delete(pool_row)
    session.flush()


def _finish(state: ServiceState, principal: Principal, env_id: str) -> None:
    def _op(session: Session) -> None:
        row = session.get_one(EnvironmentRow, env_id)
        if row.intent is None:  # finished already (by a concurrent caller)
            return
        intent = row.intent
        op, target = intent.get("op"), intent.get("target", {})
        if op == "delete":
            _give_back(state, session, row, None)
            row.live_name = None
            row.intent = None
            _transition(session, principal, row, EnvironmentState.deleted, "environment.deleted")
        else:
            if op == "scale":
                dropped = [d for d in row.domains if d not in target["domains"]]
                if dropped:
                    _give_back(state, session, row, dropped)
                row.domains = list(target["domains"])
            if op == "upgrade":
                row.version = target["version"]
            row.intent = None
            _transition(session, principal, row, EnvironmentState.ready, "environment.ready")
        sample(state.memory, session)

    state.mutate(_op)


def _roll_back(state: ServiceState, principal: Principal, snap: env_driver.Snapshot, reason: str) -> None:
    """Undo a failed operation: slurmctld put back, what the request took given back, the state restored."""
    if (
        snap.op == "delete"
    ):  # nothing to undo: it stays under way and is retried (by a new delete or a restart)
        state.mutate(lambda session: setattr(session.get(EnvironmentRow, snap.env_id), "reason", reason))
        return
    previous_nodes = [n for n in snap.nodes if n not in snap.new_nodes] if snap.op == "scale" else []
    undo_error = ""
    try:
        if snap.op in ("create", "scale"):
            env_driver.undo_slurm(snap, previous_nodes)
    except Exception as exc:  # recorded; the store is rolled back all the same
        undo_error = f"; undoing slurm: {exc}"

    def _op(session: Session) -> None:
        row = session.get_one(EnvironmentRow, snap.env_id)
        intent = row.intent or {}
        if snap.op == "create":
            _give_back(state, session, row, None)
            row.live_name = None
            row.intent = None
            _transition(
                session, principal, row, EnvironmentState.failed, "environment.failed", reason + undo_error
            )
        else:
            if snap.op == "scale":
                added = [d for d in intent["target"]["domains"] if d not in intent["previous"]["domains"]]
                if added:
                    _give_back(state, session, row, added)
                row.domains = list(intent["previous"]["domains"])
            row.intent = None
            _transition(
                session,
                principal,
                row,
                EnvironmentState.ready,
                "environment.rolled_back",
                f"rolled back: {reason}{undo_error}",
            )
        sample(state.memory, session)

    state.mutate(_op)


def resume_all(state: ServiceState) -> list[str]:
    """On start: carry on (or roll back) every environment operation a crash interrupted; their ids."""
    system = Principal(token_id="system", name="resume-on-start", role=Role.operator)
    with state.sessions() as session:
        stuck = list(
            session.scalars(
                select(EnvironmentRow.id)
                .where(EnvironmentRow.state.in_([str(x) for x in ENV_BUSY_STATES]))
                .order_by(EnvironmentRow.created_at)
            )
        )
    for env_id in stuck:
        carry_out(state, system, env_id)
    return stuck


# ------------------------------------------------------------------ the operations


def create(state: ServiceState, principal: Principal, body: s.EnvironmentCreate) -> s.EnvironmentPublic:
    env_id = request_create(state, principal, body)
    carry_out(state, principal, env_id)  # a retried request finds it done (or under way) and only reads
    return get(state, principal, env_id)


def scale(
    state: ServiceState, principal: Principal, env_id: str, body: s.EnvironmentScale
) -> s.EnvironmentPublic:
    env_id = request_scale(state, principal, env_id, body)
    carry_out(state, principal, env_id)
    return get(state, principal, env_id)


def upgrade(
    state: ServiceState, principal: Principal, env_id: str, body: s.EnvironmentUpgrade
) -> s.EnvironmentPublic:
    env_id = request_upgrade(state, principal, env_id, body)
    carry_out(state, principal, env_id)
    return get(state, principal, env_id)


def delete(state: ServiceState, principal: Principal, env_id: str) -> s.EnvironmentPublic:
    env_id = request_delete(state, principal, env_id)
    carry_out(state, principal, env_id)
    return get(state, principal, env_id)


def get(state: ServiceState, principal: Principal, env_id: str) -> s.EnvironmentPublic:
    with state.sessions() as session:
        row, tenant = owned_environment(session, principal, env_id)
        return env_public(state, session, row, tenant)
