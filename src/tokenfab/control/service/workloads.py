"""Workloads: submit, cancel, scale, read and list; the queue.

A submission is recorded, placed now if it fits (else queued with the reason) and answered after its
transaction is committed. Cancelling or shrinking frees GPUs and lets the queue run.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.errors import Conflict, Invalid, NotFound
from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.service.metrics import sample
from tokenfab.control.service.pending import add_row
from tokenfab.control.service.placement import (
    active_placements,
    process_queue,
    release,
    try_place,
    workload_facts,
)
from tokenfab.control.service.redact import reason_for_tenant
from tokenfab.control.service.state import ServiceState, audit
from tokenfab.control.service.tenants import find_tenant
from tokenfab.control.store import (
    ACTIVE_STATES,
    EnvironmentRow,
    EnvironmentState,
    PlacementRow,
    TenantRow,
    WorkloadRow,
    WorkloadState,
    as_utc,
    utc_now,
)
from tokenfab.sched.types import WorkloadKind
from tokenfab.units import MILLI_PER_GPU

# ------------------------------------------------------------------ shape checks


def check_workload_shape(memory: FactoryMemory, body: s.WorkloadCreate) -> None:
    """A submission fits this factory's shape (sizes, NVLink domains, slices); `Invalid` naming the field."""
    if body.kind == "small":
        check_small_shape(memory, body)
        return
    if body.gpu_fraction is not None:
        raise Invalid("only small workloads ask for a fraction of a GPU (kind: small)", "gpu_fraction")
    if body.gpus < 1:
        raise Invalid(f"a {body.kind} workload needs at least 1 GPU", "gpus")
    total = body.gpus * body.replicas if body.kind == "inference" else body.gpus
    n_gpus, domain_gpus = memory.n_gpus, memory.max_domain_gpus
    if body.kind == "training" and body.replicas != 1:
        raise Invalid("training gangs have one replica; ask for more GPUs", "replicas")
    if total > n_gpus:
        raise Invalid(f"{total} GPUs asked; the factory has {n_gpus}", "gpus")
    if body.kind == "inference" and body.gpus > domain_gpus:
        raise Invalid(f"a replica must fit one NVLink domain of {domain_gpus} GPUs", "gpus")
    if body.slice_gpus > domain_gpus:
        raise Invalid(f"a slice must fit one NVLink domain of {domain_gpus} GPUs", "slice_gpus")
    if body.slice_gpus and total % body.slice_gpus:
        raise Invalid(f"{total} GPUs do not split into slices of {body.slice_gpus}", "slice_gpus")


def check_small_shape(memory: FactoryMemory, body: s.WorkloadCreate) -> None:
    """A small workload: a share of one GPU (0 < f < 1, whole milli-GPU) with CPU and memory on one node."""
    if body.gpu_fraction is None:
        raise Invalid("a small workload states its share of one GPU, 0 < gpu_fraction < 1", "gpu_fraction")
    milli = round(body.gpu_fraction * MILLI_PER_GPU)
    if not 0 < milli < MILLI_PER_GPU:
        raise Invalid(
            f"gpu_fraction {body.gpu_fraction} rounds to {milli} milli-GPU; it must be 1..999", "gpu_fraction"
        )
    if body.gpus != 0:
        raise Invalid("a small workload asks for gpu_fraction, not whole GPUs (leave gpus 0)", "gpus")
    for field, value in (
        ("replicas", body.replicas - 1),
        ("slice_gpus", body.slice_gpus),
        ("whole_domains", int(body.whole_domains)),
    ):
        if value > 0:
            raise Invalid(f"a small workload has no {field}", field)
    fleet = memory.fleet
    most_cpu = float(fleet.node_cpu_cores.max()) if fleet.n_nodes else 0.0
    if body.cpu_cores > most_cpu:
        raise Invalid(f"{body.cpu_cores:g} CPU cores asked; the largest node has {most_cpu:g}", "cpu_cores")
    most_memory = float(fleet.node_memory_gb.max()) if fleet.n_nodes else 0.0
    if body.memory_gb > most_memory:
        raise Invalid(f"{body.memory_gb:g} GB asked; the largest node has {most_memory:g} GB", "memory_gb")


# ------------------------------------------------------------------ who may see and own what


def owner_for(session: Session, principal: Principal, tenant_name: str | None) -> TenantRow:
    """The tenant a submission is for: the caller's own, or the one an operator names."""
    if principal.is_operator:
        if tenant_name is None:
            raise Invalid("operators submit on behalf of a tenant: name it", "tenant")
        return find_tenant(session, tenant_name, field="tenant")
    if tenant_name is not None and tenant_name != principal.tenant_name:
        raise NotFound(f"tenant {tenant_name} not found", "tenant")
    return session.get_one(TenantRow, principal.tenant_id)


def owner_of(state: ServiceState, principal: Principal, tenant_name: str | None) -> tuple[int, str]:
    """`owner_for` as (id, name), before the writer is asked (tenants are never deleted or renamed): from
    the principal or the memory's tenant ids; the store is read only for a name memory does not know."""
    if principal.is_operator and tenant_name is not None:
        tenant_id = state.memory.tenant_ids.get(tenant_name)
        if tenant_id is not None:
            return tenant_id, tenant_name
    elif not principal.is_operator and tenant_name in (None, principal.tenant_name):
        assert principal.tenant_id is not None and principal.tenant_name is not None  # a tenant's token
        return principal.tenant_id, principal.tenant_name
    with state.sessions() as session:
        tenant = owner_for(session, principal, tenant_name)
        return tenant.id, tenant.name


def ready_environment_id(session: Session, tenant: TenantRow, name: str) -> str:
    """The id of the tenant's ready environment ``name`` (a workload runs inside it); else refused."""
    env = session.scalar(
        select(EnvironmentRow).where(EnvironmentRow.tenant_id == tenant.id, EnvironmentRow.live_name == name)
    )
    if env is None:
        raise NotFound(f"environment {name} not found", "environment")
    if env.state != EnvironmentState.ready:
        raise Conflict(f"environment {name} is {env.state}, not ready", "environment")
    return env.id


def visible_workload(session: Session, principal: Principal, workload_id: str) -> tuple[WorkloadRow, str]:
    """The workload and its tenant's name if the caller may see it; another tenant's workload is
    'not found', like a missing one."""
    row = session.get(WorkloadRow, workload_id)
    if row is None or (not principal.is_operator and row.tenant_id != principal.tenant_id):
        raise NotFound(f"workload {workload_id} not found", "workload_id")
    return row, session.get_one(TenantRow, row.tenant_id).name


def workload_public(
    memory: FactoryMemory,
    session: Session,
    row: WorkloadRow,
    tenant: str,
    placement: PlacementRow | None | bool = False,
    viewer: Principal | None = None,
) -> s.WorkloadPublic:
    """A workload as the API shows ``viewer`` (a tenant reads its queue reason redacted, `redact`);
    ``placement`` False: look its active placement up."""
    if placement is False:
        placement = active_placements(session, [row.id]).get(row.id)
    placement_public = None
    small = row.kind == WorkloadKind.small
    if isinstance(placement, PlacementRow):
        share = memory.workload_share.get(row.id) if small else None
        placement_public = s.PlacementPublic(
            node_ids=placement.node_ids,
            gpus_per_node=placement.gpus_per_node,
            gpus=placement.gpus,
            gpu_fraction=float(row.spec.get("gpu_fraction") or 0.0) if small else 0.0,
            gpu_slot=share[2] if share is not None else None,
            racks=sorted({int(memory.node_rack[n]) for n in placement.node_ids}),
            placed_at=as_utc(placement.placed_at),
        )
    return s.WorkloadPublic(
        id=row.id,
        name=row.name,
        tenant=tenant,
        kind=row.kind,
        gpus=row.gpus,
        replicas=int(row.spec.get("replicas", 1)),
        priority=row.priority,
        on_failure=row.on_failure,
        state=cast(s.WorkloadStateName, row.state),
        queue_reason=row.queue_reason
        if viewer is None or viewer.is_operator
        else reason_for_tenant(row.queue_reason),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        placement=placement_public,
        spec=row.spec,
    )


# ------------------------------------------------------------------ mutations


def submit(state: ServiceState, principal: Principal, body: s.WorkloadCreate) -> s.WorkloadPublic:
    """Record the workload, place it now if it fits (else queue it with the reason); commit, then answer.

    What needs no lock is done before the writer is asked (the shape checks, the row's fields); the
    writer only places, records and audits."""
    check_workload_shape(state.memory, body)
    owner = owner_of(state, principal, body.tenant)
    return state.mutate(submit_operation(state.memory, principal, body, owner))


async def submit_async(state: ServiceState, principal: Principal, body: s.WorkloadCreate) -> s.WorkloadPublic:
    """`submit` for a caller on the event loop (no thread waits for the commit)."""
    check_workload_shape(state.memory, body)
    owner = owner_of(state, principal, body.tenant)
    return await state.mutate_async(submit_operation(state.memory, principal, body, owner))


_ids = random.Random(os.urandom(16))
"""Workload ids: 48 random bits from a generator seeded once from the OS (an id is a name, not a secret;
no system call per submission)."""
WORKLOAD_COLUMNS = tuple(column.name for column in WorkloadRow.__table__.columns)


def submit_operation(
    memory: FactoryMemory, principal: Principal, body: s.WorkloadCreate, owner: tuple[int, str]
) -> Callable[[Session], s.WorkloadPublic]:
    """The writer's operation for a submission whose shape and owner (id, name) are checked; its rows are
    inserted with the batch (`pending`), not through the ORM's unit of work."""
    tenant_id, tenant_name = owner
    spec = body.model_dump(exclude={"tenant", "name", "kind", "priority", "on_failure"})
    gpus = body.gpus * body.replicas if body.kind == "inference" else body.gpus

    def _op(session: Session) -> s.WorkloadPublic:
        now = utc_now()
        row_spec = spec
        if body.environment is not None:
            owner = find_tenant(session, tenant_name)
            row_spec = {**spec, "environment": ready_environment_id(session, owner, body.environment)}
        row = WorkloadRow(
            id=f"w-{_ids.getrandbits(48):012x}",
            tenant_id=tenant_id,
            name=body.name,
            kind=body.kind,
            spec=row_spec,
            gpus=gpus,
            priority=body.priority,
            on_failure=body.on_failure,
            state=WorkloadState.queued,
            queue_reason="",
            created_at=now,
            updated_at=now,
        )
        placed = try_place(memory, session, row, tenant_name, principal)
        add_row(session, WorkloadRow.__table__, {c: getattr(row, c) for c in WORKLOAD_COLUMNS})
        audit(
            session, principal, "workload.submit", f"workload/{row.id}", None, workload_facts(row), tenant_id
        )
        if placed is not None and placed.evicted:
            process_queue(memory, session, principal)  # what the evictor left free may fit a victim
        sample(memory, session)
        return workload_public(memory, session, row, tenant_name, placed.row if placed else None, principal)

    return _op


def cancel(state: ServiceState, principal: Principal, workload_id: str) -> s.WorkloadPublic:
    """Cancel a workload and free its GPUs; the queue then runs."""
    memory = state.memory

    def _op(session: Session) -> s.WorkloadPublic:
        row, tenant = visible_workload(session, principal, workload_id)
        before = workload_facts(row)
        if row.state in ACTIVE_STATES:
            freed = release(memory, session, row, "cancelled")
            row.state = WorkloadState.cancelled
            row.queue_reason = ""
            row.updated_at = utc_now()
            audit(
                session,
                principal,
                "workload.cancel",
                f"workload/{row.id}",
                before,
                workload_facts(row),
                row.tenant_id,
            )
            if freed:
                process_queue(memory, session, principal)
            sample(memory, session)
        active = row.state in ACTIVE_STATES  # a cancelled or failed workload holds no placement
        return workload_public(memory, session, row, tenant, False if active else None, principal)

    return state.mutate(_op)


def scale(
    state: ServiceState, principal: Principal, workload_id: str, body: s.WorkloadScale
) -> s.WorkloadPublic:
    """Change an inference service's replicas: re-place it at the new size, or keep it queued with why."""
    memory = state.memory

    def _op(session: Session) -> s.WorkloadPublic:
        row, tenant = visible_workload(session, principal, workload_id)
        if row.kind != "inference":
            raise Invalid("only inference services scale; training gangs are resubmitted", "replicas")
        if row.state not in ACTIVE_STATES:
            raise Conflict(f"workload {row.id} is {row.state}")
        spec = dict(row.spec)
        total = spec["gpus"] * body.replicas
        if total > memory.n_gpus:
            raise Invalid(
                f"{body.replicas} replicas need {total} GPUs; the factory has {memory.n_gpus}",
                "replicas",
            )
        before = workload_facts(row)
        release(memory, session, row, "rescaled")
        spec["replicas"] = body.replicas
        row.spec = spec
        row.gpus = total
        row.state = WorkloadState.queued
        try_place(memory, session, row, tenant)
        audit(
            session,
            principal,
            "workload.scale",
            f"workload/{row.id}",
            before,
            workload_facts(row),
            row.tenant_id,
        )
        process_queue(memory, session, principal)
        sample(memory, session)
        return workload_public(memory, session, row, tenant, False, principal)

    return state.mutate(_op)


# ------------------------------------------------------------------ reads


def get_workload(state: ServiceState, principal: Principal, workload_id: str) -> s.WorkloadPublic:
    with state.sessions() as session:
        row, tenant = visible_workload(session, principal, workload_id)
        return workload_public(state.memory, session, row, tenant, False, principal)


def list_workloads(
    state: ServiceState, principal: Principal, state_filter: str | None = None, limit: int = 500
) -> s.WorkloadsPublic:
    """Workloads, newest first (a tenant sees its own)."""
    with state.sessions() as session:
        query = select(WorkloadRow, TenantRow.name).join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
        if not principal.is_operator:
            query = query.where(WorkloadRow.tenant_id == principal.tenant_id)
        if state_filter is not None:
            query = query.where(WorkloadRow.state == state_filter)
        rows = list(session.execute(query.order_by(WorkloadRow.created_at.desc()).limit(limit)))
        placements = active_placements(session, [row.id for row, _ in rows])
        data = [
            workload_public(state.memory, session, row, tenant, placements.get(row.id, False), principal)
            for row, tenant in rows
        ]
    return s.WorkloadsPublic(data=data, count=len(data))


def queue(state: ServiceState, principal: Principal) -> s.WorkloadsPublic:
    """Queued workloads in the order the queue tries them (priority, then age)."""
    with state.sessions() as session:
        query = (
            select(WorkloadRow, TenantRow.name)
            .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
            .where(WorkloadRow.state == WorkloadState.queued)
            .order_by(WorkloadRow.priority.desc(), WorkloadRow.created_at)
        )
        if not principal.is_operator:
            query = query.where(WorkloadRow.tenant_id == principal.tenant_id)
        data = [
            workload_public(state.memory, session, row, tenant, None, principal)
            for row, tenant in session.execute(query.limit(1000))
        ]
    return s.WorkloadsPublic(data=data, count=len(data))
