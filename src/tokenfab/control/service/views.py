"""Read views (the factory map: `factory_view`): a rack's detail, nodes, usage, telemetry and the audit log.

A tenant sees its own share: its workloads on the map and the nodes, its own shares of shared GPUs, its
usage and its audit entries (with other tenants and the facility's figures redacted, `redact`).
"""

from __future__ import annotations

from typing import cast

import numpy as np
from sqlalchemy import func, select

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.errors import NotFound
from tokenfab.control.service.factory_view import rack_summary
from tokenfab.control.service.memory import FactoryMemory, tokens_per_s
from tokenfab.control.service.redact import actor_for, facts_for
from tokenfab.control.service.state import ServiceState
from tokenfab.control.service.workloads import workload_public
from tokenfab.control.store import (
    AuditRow,
    NodeRow,
    PlacementRow,
    TelemetryRow,
    TenantRow,
    WorkloadRow,
    WorkloadState,
    as_utc,
    utc_now,
)
from tokenfab.sched.types import WorkloadKind


def _visible_to(memory: FactoryMemory, principal: Principal, request_id: str) -> bool:
    return principal.is_operator or memory.workload_tenant.get(request_id) == principal.tenant_name


def rack_detail(state: ServiceState, principal: Principal, rack_id: int) -> s.RackDetail:
    """A rack's summary, its nodes and the workloads on them (those the caller may see)."""
    if not 0 <= rack_id < state.fleet.n_racks:
        raise NotFound(f"rack {rack_id} not found", "rack_id")
    rack = rack_summary(state, principal, rack_id)
    nodes = list_nodes(state, principal, rack_id=rack_id).data
    workload_ids = sorted({w for node in nodes for w in node.workloads})
    with state.sessions() as session:
        rows = session.execute(
            select(WorkloadRow, TenantRow.name)
            .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
            .where(WorkloadRow.id.in_(workload_ids))
        )
        workloads = [
            workload_public(state.memory, session, row, tenant, False, principal) for row, tenant in rows
        ]
    return s.RackDetail(rack=rack, nodes=nodes, workloads=workloads)


def shared_gpus(memory: FactoryMemory, principal: Principal) -> dict[int, dict[int, int]]:
    """Node → GPU slot → milli-GPU used by small workloads on each shared GPU; a tenant sees only its
    own shares (another tenant's share on the same GPU is neither named nor counted)."""
    shared: dict[int, dict[int, int]] = {}
    if principal.is_operator:
        for node, slot in zip(*np.nonzero(memory.slot_share_milli), strict=True):
            shared.setdefault(int(node), {})[int(slot)] = int(memory.slot_share_milli[node, slot])
        return shared
    for workload_id, (node, _, physical, milli) in memory.workload_share.items():
        if memory.workload_tenant.get(workload_id) == principal.tenant_name:
            slots = shared.setdefault(int(node), {})
            slots[int(physical)] = slots.get(int(physical), 0) + int(milli)
    return shared


def list_nodes(
    state: ServiceState,
    principal: Principal,
    rack_id: int | None = None,
    health: str | None = None,
    limit: int = 5000,
) -> s.NodesPublic:
    """Nodes with health, free GPUs, shared GPUs and workloads (a tenant: the nodes its workloads use)."""
    memory = state.memory
    with state.lock:
        on_node: dict[int, list[str]] = {}
        for request_id, placement in memory.scheduler.allocations().items():
            if _visible_to(memory, principal, request_id):
                for node in placement.nodes.tolist():
                    on_node.setdefault(node, []).append(request_id)
        free = memory.fleet.node_free_gpus.copy()
        shared = shared_gpus(memory, principal)
    with state.sessions() as session:
        query = select(NodeRow).order_by(NodeRow.id)
        if rack_id is not None:
            query = query.where(NodeRow.rack_id == rack_id)
        if health is not None:
            query = query.where(NodeRow.health == health)
        if not principal.is_operator and rack_id is None:
            query = query.where(NodeRow.id.in_(list(on_node)))
        rows = list(session.scalars(query.limit(limit)))
    data = [
        s.NodePublic(
            id=row.id,
            rack=row.rack_id,
            domain=row.domain,
            gpus=row.gpus,
            gpus_free=int(free[row.id]),
            gpus_shared=shared.get(row.id, {}),
            health=cast(s.HealthName, row.health),
            health_reason=row.health_reason,
            workloads=on_node.get(row.id, []),
        )
        for row in rows
    ]
    return s.NodesPublic(data=data, count=len(data))


def usage(state: ServiceState, principal: Principal) -> s.UsagePublic:
    """Per tenant: GPUs held, GPU-hours, workloads per state and tokens per second."""
    now = utc_now()
    memory = state.memory
    with state.sessions() as session:
        data = []
        for tenant in session.scalars(select(TenantRow).order_by(TenantRow.name)):
            if not principal.is_operator and tenant.id != principal.tenant_id:
                continue
            hours = 0.0
            for gpus, kind, spec, placed_at, released_at in session.execute(
                select(
                    PlacementRow.gpus,
                    WorkloadRow.kind,
                    WorkloadRow.spec,
                    PlacementRow.placed_at,
                    PlacementRow.released_at,
                )
                .join(WorkloadRow, PlacementRow.workload_id == WorkloadRow.id)
                .where(WorkloadRow.tenant_id == tenant.id)
            ):
                held = float(spec.get("gpu_fraction") or 0.0) if kind == WorkloadKind.small else gpus
                hours += held * ((as_utc(released_at) or now) - as_utc(placed_at)).total_seconds() / 3600.0
            states = dict(
                session.execute(
                    select(WorkloadRow.state, func.count())
                    .where(WorkloadRow.tenant_id == tenant.id)
                    .group_by(WorkloadRow.state)
                ).all()
            )
            running = session.scalars(
                select(WorkloadRow).where(
                    WorkloadRow.tenant_id == tenant.id, WorkloadRow.state == WorkloadState.running
                )
            )
            data.append(
                s.TenantUsage(
                    tenant=tenant.name,
                    gpus_allocated=memory.scheduler.used_gpus_by_tenant().get(tenant.name, 0),
                    gpu_equivalents_allocated=memory.gpu_equivalents(tenant.name),
                    gpu_hours=round(hours, 4),
                    workloads={k: int(v) for k, v in states.items()},
                    tokens_per_s=sum(tokens_per_s(w) for w in running),
                )
            )
    return s.UsagePublic(data=data, count=len(data))


def telemetry(state: ServiceState, limit: int = 500) -> s.TelemetryPublic:
    """The last ``limit`` telemetry samples, oldest first (operator)."""
    with state.sessions() as session:
        rows = list(session.scalars(select(TelemetryRow).order_by(TelemetryRow.id.desc()).limit(limit)))
    rows.reverse()
    data = [
        s.TelemetryPoint(
            at=as_utc(r.at),
            draw_kw=r.draw_kw,
            cap_kw=r.cap_kw,
            gpus_allocated=r.gpus_allocated,
            tokens_per_s=r.tokens_per_s,
        )
        for r in rows
    ]
    return s.TelemetryPublic(data=data, count=len(data))


def audit_log(state: ServiceState, principal: Principal, limit: int = 200) -> s.AuditsPublic:
    """The audit log, newest first (a tenant sees entries about itself)."""
    with state.sessions() as session:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if not principal.is_operator:
            query = query.where(AuditRow.tenant_id == principal.tenant_id)
        data = [
            s.AuditPublic(
                id=r.id,
                at=as_utc(r.at),
                actor=actor_for(principal, r.actor),
                action=r.action,
                target=r.target,
                before=facts_for(principal, r.before),
                after=facts_for(principal, r.after),
            )
            for r in session.scalars(query)
        ]
    return s.AuditsPublic(data=data, count=len(data))
