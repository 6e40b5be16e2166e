"""Placing, releasing and requeuing workloads, in the writer's transaction.

Each function changes the scheduler, the GPU slot map and the rows that record the change together.
With a facility power cap, a placement that would draw more than the cap is undone and the workload
stays queued with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tokenfab.control.auth import Principal
from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.service.pending import add_row, add_rows
from tokenfab.control.service.state import audit
from tokenfab.control.store import (
    GpuAllocationRow,
    GpuShareRow,
    PlacementRow,
    TenantRow,
    WorkloadRow,
    WorkloadState,
    utc_now,
)
from tokenfab.sched.types import Level, Unplaceable, WorkloadKind
from tokenfab.units import MILLI_PER_GPU

PLACEMENT_COLUMNS = tuple(column.name for column in PlacementRow.__table__.columns)
QUEUE_ATTEMPTS_PER_PASS = 256
"""Queued workloads tried per pass of the queue (bounds the work one freed node can trigger)."""


def workload_facts(row: WorkloadRow) -> dict[str, Any]:
    """What the audit log records of a workload before and after a change."""
    return {"state": row.state, "gpus": row.gpus, "queue_reason": row.queue_reason}


@dataclass(frozen=True)
class Placed:
    """A workload placed now: its placement row and the workloads it evicted to fit."""

    row: PlacementRow
    evicted: list[str]


def try_place(
    memory: FactoryMemory,
    session: Session,
    row: WorkloadRow,
    tenant_name: str,
    principal: Principal | None = None,
) -> Placed | None:
    """Place a queued workload if it fits now; else leave it queued with why.

    With a ``principal`` (a submission) and no facility power cap, a workload that does not fit may
    evict strictly lower-priority preemptible workloads of its own tenant (never another tenant's);
    they go back to the queue, or fail when their ``on_failure`` is ``fail``, with an audit entry naming
    the evictor.
    """
    scheduler = memory.scheduler
    preempt = principal is not None and memory.power_cap_kw is None
    request = memory.request(row, tenant_name, session)
    env_id = row.spec.get("environment")
    if env_id:  # inside a tenant environment: its holds make room, its domains bound the search
        with memory.environments.lifted(env_id):
            result = scheduler.place(request)
    else:
        result = scheduler.place(request, allow_preemption=preempt)
    if isinstance(result, Unplaceable):
        row.queue_reason = result.reason
        return None
    if result.evicted:
        assert principal is not None
        record_evictions(memory, session, principal, row, result.evicted)
    if memory.power_cap_kw is not None and memory.facility_draw_kw() > memory.power_cap_kw:
        scheduler.release(row.id)
        if env_id:
            memory.environments.refill(env_id)
        row.queue_reason = (
            f"facility power cap {memory.power_cap_kw:.1f} kW: placing it would draw more than the cap"
        )
        return None
    placement_row = PlacementRow(
        id=memory.take_placement_id(),
        workload_id=row.id,
        node_ids=result.nodes.tolist(),
        gpus_per_node=result.gpus_per_node.tolist(),
        gpus=result.gpus,
        placed_at=utc_now(),
        released_at=None,
        release_reason="",
    )
    add_row(session, PlacementRow.__table__, {c: getattr(placement_row, c) for c in PLACEMENT_COLUMNS})
    if row.kind == WorkloadKind.small:
        node = int(result.nodes[0])
        milli = int(round(float(row.spec["gpu_fraction"]) * MILLI_PER_GPU))
        physical = memory.take_share(row.id, node, milli)
        add_row(
            session,
            GpuShareRow.__table__,
            {
                "node_id": node,
                "slot": physical,
                "workload_id": row.id,
                "milli": milli,
                "placement_id": placement_row.id,
            },
        )
    whole = result.gpus_per_node > 0
    if whole.any():
        nodes, slots = memory.take_whole_slots_of(result.nodes[whole], result.gpus_per_node[whole])
        # the (node, slot) primary key refuses a double allocation when the batch is written
        add_rows(
            session,
            GpuAllocationRow.__table__,
            [
                {"node_id": node, "slot": slot, "workload_id": row.id, "placement_id": placement_row.id}
                for node, slot in zip(nodes.tolist(), slots.tolist(), strict=True)
            ],
        )
    memory.note_placed(row, tenant_name)
    row.state = WorkloadState.running
    row.queue_reason = ""
    row.updated_at = utc_now()
    return Placed(placement_row, result.evicted)


def record_evictions(
    memory: FactoryMemory, session: Session, principal: Principal, evictor: WorkloadRow, victims: list[str]
) -> None:
    """Store what a preempting placement did: each victim's rows released, requeued (or failed), audited."""
    now = utc_now()
    for victim_id in victims:
        victim = session.get_one(WorkloadRow, victim_id)
        before = workload_facts(victim)
        release_rows(memory, session, victim, f"preempted by {evictor.id}")
        if victim.on_failure == "fail":
            victim.state = WorkloadState.failed
            victim.queue_reason = f"preempted by {evictor.id} (priority {evictor.priority})"
        else:
            victim.state = WorkloadState.queued
            victim.queue_reason = f"evicted: preempted by {evictor.id} (priority {evictor.priority})"
        victim.updated_at = now
        audit(
            session,
            principal,
            "workload.preempt",
            f"workload/{victim.id}",
            before,
            {**workload_facts(victim), "evicted_by": evictor.id, "evictor_priority": evictor.priority},
            tenant_id=victim.tenant_id,
        )


def release(memory: FactoryMemory, session: Session, row: WorkloadRow, reason: str) -> bool:
    """Free a workload's GPUs (scheduler, slot map, allocation rows); True when it held any."""
    if memory.scheduler.allocation(row.id) is None:
        return False
    memory.scheduler.release(row.id)
    release_rows(memory, session, row, reason)
    return True


def release_rows(memory: FactoryMemory, session: Session, row: WorkloadRow, reason: str) -> None:
    """Free what the store and the slot map hold for a workload the scheduler has already released
    (inside a tenant environment, the environment's holds take its GPUs back).

    The GPU slot rows go with one Core ``DELETE`` each (a 200,000-GPU gang is 200,000 rows: not ORM
    objects) and the slot map is freed with one array assignment."""
    if row.spec.get("environment"):
        memory.environments.refill(row.spec["environment"])
    if memory.forget(row.id):
        session.execute(
            delete(GpuShareRow).where(GpuShareRow.workload_id == row.id),
            execution_options={"synchronize_session": False},
        )
    held = session.execute(
        select(GpuAllocationRow.node_id, GpuAllocationRow.slot).where(GpuAllocationRow.workload_id == row.id)
    ).all()
    if held:
        pairs = np.fromiter(chain.from_iterable(held), dtype=np.int64, count=2 * len(held)).reshape(-1, 2)
        memory.free_slots(pairs[:, 0], pairs[:, 1])
        session.execute(
            delete(GpuAllocationRow).where(GpuAllocationRow.workload_id == row.id),
            execution_options={"synchronize_session": False},
        )
    now = utc_now()
    for placement in session.scalars(
        select(PlacementRow).where(PlacementRow.workload_id == row.id, PlacementRow.released_at.is_(None))
    ):
        placement.released_at = now
        placement.release_reason = reason
    session.flush()


def process_queue(memory: FactoryMemory, session: Session, principal: Principal) -> list[str]:
    """Try the queue in order (priority, then age) and place what fits now; the placed workloads' ids."""
    placed = []
    queued = session.execute(
        select(WorkloadRow, TenantRow.name)
        .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
        .where(WorkloadRow.state == WorkloadState.queued)
        .order_by(WorkloadRow.priority.desc(), WorkloadRow.created_at)
        .limit(QUEUE_ATTEMPTS_PER_PASS)
    ).all()
    free_gpus = int(memory.scheduler.free_gpus(Level.site).sum())
    for row, tenant in queued:
        inside = bool(row.spec.get("environment"))  # its environment's held GPUs are not counted free
        if row.gpus > free_gpus and not inside:  # cannot fit anywhere now
            if row.queue_reason.startswith(("requeued", "evicted")) and "waiting" not in row.queue_reason:
                row.queue_reason += f"; waiting: needs {row.gpus} GPUs, {free_gpus} free"
            continue
        if try_place(memory, session, row, tenant):
            free_gpus -= 0 if inside else row.gpus
            placed.append(row.id)
            audit(
                session,
                principal,
                "workload.place",
                f"workload/{row.id}",
                {"state": "queued"},
                workload_facts(row),
                tenant_id=row.tenant_id,
            )
    return placed


def active_placements(session: Session, workload_ids: list[str]) -> dict[str, PlacementRow]:
    """The unreleased placement row of each of ``workload_ids`` that has one."""
    if not workload_ids:
        return {}
    rows = session.scalars(
        select(PlacementRow).where(
            PlacementRow.workload_id.in_(workload_ids), PlacementRow.released_at.is_(None)
        )
    )
    return {row.workload_id: row for row in rows}
