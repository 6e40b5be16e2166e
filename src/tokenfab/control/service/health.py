"""Node and rack health: cordon, drain, fail and return to service (operator).

Cordoning stops new placements; draining also requeues the workloads on the nodes; a failure requeues
or fails them per their ``on_failure``; returning to service lets the queue run.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.errors import NotFound
from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.service.metrics import sample
from tokenfab.control.service.placement import process_queue, release
from tokenfab.control.service.state import ServiceState, audit
from tokenfab.control.store import ACTIVE_STATES, NodeRow, WorkloadRow, WorkloadState, utc_now
from tokenfab.fleet import Health

HEALTH_OF_ACTION = {
    "cordon": Health.cordoned,
    "drain": Health.draining,
    "fail": Health.failed,
    "return": Health.ok,
}


def nodes_of(memory: FactoryMemory, level: str, element_id: int) -> np.ndarray:
    """The nodes of a node or a rack; `NotFound` when there is no such element."""
    fleet = memory.fleet
    if level == "node":
        if not 0 <= element_id < fleet.n_nodes:
            raise NotFound(f"node {element_id} not found", "node_id")
        return np.asarray([element_id])
    if not 0 <= element_id < fleet.n_racks:
        raise NotFound(f"rack {element_id} not found", "rack_id")
    return np.flatnonzero(memory.node_rack == element_id)


def change_health(
    state: ServiceState, principal: Principal, level: str, element_id: int, action: str, body: s.HealthChange
) -> s.HealthResult:
    """Cordon, drain, fail or return a node (``level`` "node") or every node of a rack ("rack")."""
    memory = state.memory
    nodes = nodes_of(memory, level, element_id)
    health = HEALTH_OF_ACTION[action]
    where = f"{level} {element_id}"

    def _op(session: Session) -> s.HealthResult:
        node_rows = list(session.scalars(select(NodeRow).where(NodeRow.id.in_(nodes.tolist()))))
        before = Counter(row.health for row in node_rows)
        now = utc_now()
        for row in node_rows:
            row.health = health.name
            row.health_reason = body.reason
            row.updated_at = now
        requeued, failed = [], []
        for workload_id in memory.scheduler.set_health(nodes, health.value):
            workload = session.get(WorkloadRow, workload_id)
            if workload is None or workload.state not in ACTIVE_STATES:
                continue
            release(memory, session, workload, f"{where} {health.name}")
            workload.updated_at = now
            if health == Health.failed and workload.on_failure == "fail":
                workload.state = WorkloadState.failed
                workload.queue_reason = f"{where} failed"
                failed.append(workload_id)
            else:
                workload.state = WorkloadState.queued
                workload.queue_reason = f"requeued: {where} {health.name}"
                requeued.append(workload_id)
        for env_id in list(memory.environments.holds):  # environments keep (or take back) their domains
            memory.environments.refill(env_id)
        after = {"health": health.name, "reason": body.reason, "requeued": requeued, "failed": failed}
        audit(
            session, principal, f"{level}.{action}", f"{level}/{element_id}", {"health": dict(before)}, after
        )
        process_queue(memory, session, principal)
        sample(memory, session)
        return s.HealthResult(nodes=nodes.tolist(), health=health.name, requeued=requeued, failed=failed)

    return state.mutate(_op)
