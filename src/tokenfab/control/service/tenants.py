"""Tenants: created and changed by operators, each with a GPU quota and a residency (sites, halls)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.errors import Conflict, Invalid, NotFound
from tokenfab.control.service.placement import process_queue
from tokenfab.control.service.state import ServiceState, audit
from tokenfab.control.store import ACTIVE_STATES, TenantRow, WorkloadRow, as_utc
from tokenfab.fleet import Fleet


def tenant_facts(row: TenantRow) -> dict[str, Any]:
    """What the audit log records of a tenant before and after a change."""
    return {
        "quota_gpus": row.quota_gpus,
        "allowed_sites": row.allowed_sites,
        "allowed_halls": row.allowed_halls,
    }


def find_tenant(session: Session, name: str, field: str = "name") -> TenantRow:
    """The tenant named ``name``; `NotFound` naming ``field`` when there is none."""
    row = session.scalar(select(TenantRow).where(TenantRow.name == name))
    if row is None:
        raise NotFound(f"tenant {name} not found", field)
    return row


def check_residency(fleet: Fleet, sites: list[int] | None, halls: list[int] | None) -> None:
    """Every allowed site and hall exists in the fleet."""
    for index, site in enumerate(sites or []):
        if not 0 <= site < fleet.n_sites:
            raise Invalid(f"no site {site} (sites 0..{fleet.n_sites - 1})", f"allowed_sites[{index}]")
    for index, hall in enumerate(halls or []):
        if not 0 <= hall < fleet.n_halls:
            raise Invalid(f"no hall {hall} (halls 0..{fleet.n_halls - 1})", f"allowed_halls[{index}]")


def tenant_public(state: ServiceState, session: Session, row: TenantRow) -> s.TenantPublic:
    active = session.scalar(
        select(func.count())
        .select_from(WorkloadRow)
        .where(WorkloadRow.tenant_id == row.id, WorkloadRow.state.in_(list(ACTIVE_STATES)))
    )
    return s.TenantPublic(
        name=row.name,
        quota_gpus=row.quota_gpus,
        allowed_sites=row.allowed_sites,
        allowed_halls=row.allowed_halls,
        gpus_allocated=state.memory.scheduler.used_gpus_by_tenant().get(row.name, 0),
        gpu_equivalents_allocated=state.memory.gpu_equivalents(row.name),
        workloads_active=int(active or 0),
        created_at=as_utc(row.created_at),
    )


def create_tenant(state: ServiceState, principal: Principal, body: s.TenantCreate) -> s.TenantPublic:
    """A new tenant (the caller is an operator: the route checks)."""
    check_residency(state.fleet, body.allowed_sites, body.allowed_halls)

    def _op(session: Session) -> s.TenantPublic:
        if session.scalar(select(TenantRow).where(TenantRow.name == body.name)) is not None:
            raise Conflict(f"tenant {body.name} exists", "name")
        row = TenantRow(
            name=body.name,
            quota_gpus=body.quota_gpus,
            allowed_sites=body.allowed_sites,
            allowed_halls=body.allowed_halls,
        )
        session.add(row)
        session.flush()
        state.memory.remember_tenant(row)
        audit(session, principal, "tenant.create", f"tenant/{body.name}", None, tenant_facts(row), row.id)
        return tenant_public(state, session, row)

    return state.mutate(_op)


def update_tenant(
    state: ServiceState, principal: Principal, name: str, body: s.TenantUpdate
) -> s.TenantPublic:
    """Change a tenant's quota or residency, then let the queue run (operator)."""
    check_residency(state.fleet, body.allowed_sites, body.allowed_halls)

    def _op(session: Session) -> s.TenantPublic:
        row = find_tenant(session, name)
        before = tenant_facts(row)
        for field in body.model_fields_set:
            setattr(row, field, getattr(body, field))
        state.memory.remember_tenant(row)
        audit(session, principal, "tenant.update", f"tenant/{name}", before, tenant_facts(row), row.id)
        process_queue(state.memory, session, principal)
        return tenant_public(state, session, row)

    return state.mutate(_op)


def list_tenants(state: ServiceState, principal: Principal) -> s.TenantsPublic:
    """Every tenant for an operator; a tenant sees itself."""
    with state.sessions() as session:
        query = select(TenantRow).order_by(TenantRow.name)
        if not principal.is_operator:
            query = query.where(TenantRow.id == principal.tenant_id)
        data = [tenant_public(state, session, row) for row in session.scalars(query)]
    return s.TenantsPublic(data=data, count=len(data))


def get_tenant(state: ServiceState, principal: Principal, name: str) -> s.TenantPublic:
    """One tenant; another tenant's is 'not found' to a tenant."""
    with state.sessions() as session:
        row = find_tenant(session, name)
        if not principal.is_operator and row.id != principal.tenant_id:
            raise NotFound(f"tenant {name} not found", "name")
        return tenant_public(state, session, row)
