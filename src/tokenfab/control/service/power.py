"""Facility power: the cap, grid events (curtailment, restore) and shedding load to fit a cap.

The draw is `FactoryMemory.facility_draw_kw` (the model is documented there and in docs/control.md).
A facility power cap refuses placements that would exceed it; a curtailment below the current draw
evicts preemptible workloads, lowest priority first, back to the queue until the draw fits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.errors import Invalid
from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.service.metrics import sample
from tokenfab.control.service.placement import process_queue, release
from tokenfab.control.service.state import ServiceState, audit
from tokenfab.control.store import Meta, PowerEventRow, WorkloadRow, WorkloadState, as_utc, utc_now


def power_status(state: ServiceState, evicted: list[str] | None = None) -> s.PowerStatus:
    """Cap, IT and facility draw, and the last 50 grid events (operator: the facility's figures)."""
    with state.sessions() as session:
        events = list(session.scalars(select(PowerEventRow).order_by(PowerEventRow.id.desc()).limit(50)))
    memory = state.memory
    it_kw = memory.it_draw_kw()
    return s.PowerStatus(
        cap_kw=memory.power_cap_kw,
        it_draw_kw=round(it_kw, 3),
        facility_draw_kw=round(it_kw * memory.pue, 3),
        facility_design_kw=round(state.design.metrics.facility_mw * 1000.0, 3),
        pue=memory.pue,
        evicted=evicted or [],
        events=[
            s.PowerEventPublic(
                at=as_utc(e.at), kind=e.kind, cap_kw=e.cap_kw, draw_kw=e.draw_kw, message=e.message
            )
            for e in events
        ],
    )


def set_power_cap(state: ServiceState, principal: Principal, body: s.PowerCap) -> s.PowerStatus:
    """Set or lift the facility power cap (operator)."""
    return apply_cap(state, principal, "cap", body.cap_kw, "")


def grid_event(state: ServiceState, principal: Principal, body: s.GridEvent) -> s.PowerStatus:
    """A curtailment (to a cap) or a restore (the cap lifted), and the factory's response (operator)."""
    if body.kind == "curtailment" and body.cap_kw is None:
        raise Invalid("a curtailment states the cap it imposes", "cap_kw")
    cap_kw = body.cap_kw if body.kind == "curtailment" else None
    return apply_cap(state, principal, body.kind, cap_kw, body.message)


def apply_cap(
    state: ServiceState, principal: Principal, kind: str, cap_kw: float | None, message: str
) -> s.PowerStatus:
    """Store the cap, shed load to fit it, record the event, let the queue run; the status after."""
    memory = state.memory

    def _op(session: Session) -> list[str]:
        before = memory.power_cap_kw
        memory.power_cap_kw = cap_kw
        session.merge(Meta(key="power_cap_kw", value="" if cap_kw is None else repr(cap_kw)))
        evicted = shed_load(memory, session) if cap_kw is not None else []
        text = message or (f"cap {cap_kw:.1f} kW" if cap_kw is not None else "cap lifted")
        if evicted:
            text += f"; evicted {len(evicted)} workload(s) to the queue"
        session.add(PowerEventRow(kind=kind, cap_kw=cap_kw, draw_kw=memory.facility_draw_kw(), message=text))
        audit(
            session,
            principal,
            f"power.{kind}",
            "power",
            {"cap_kw": before},
            {"cap_kw": cap_kw, "evicted": evicted},
        )
        process_queue(memory, session, principal)
        sample(memory, session)
        return evicted

    return power_status(state, state.mutate(_op))


def shed_load(memory: FactoryMemory, session: Session) -> list[str]:
    """Evict preemptible workloads, lowest priority and newest first, until the draw fits the cap."""
    evicted: list[str] = []
    cap_kw = memory.power_cap_kw
    if cap_kw is None or memory.facility_draw_kw() <= cap_kw:
        return evicted
    victims = session.scalars(
        select(WorkloadRow)
        .where(WorkloadRow.state.in_([WorkloadState.placed, WorkloadState.running]))
        .order_by(WorkloadRow.priority, WorkloadRow.created_at.desc())
    )
    for workload in victims:
        if memory.facility_draw_kw() <= cap_kw:
            break
        if not workload.spec.get("preemptible", True):
            continue
        release(memory, session, workload, "power cap")
        workload.state = WorkloadState.queued
        workload.queue_reason = f"evicted: facility power cap {cap_kw:.1f} kW"
        workload.updated_at = utc_now()
        evicted.append(workload.id)
    return evicted
