"""Facility power: the cap, grid events (curtailment, restore) and shedding load to fit a cap.

The draw is `FactoryMemory.facility_draw_kw`, the one facility power model of `tokenfab.twin.power`
applied to the allocation state (docs/control.md). A facility power cap refuses placements that would
exceed it. A curtailment below the current draw evicts the smallest set of preemptible workloads whose
power covers the shed (`curtailment_victims`), lower priorities first, back to the queue: no victim could
be placed again under the cap, so nothing is evicted and then re-placed.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    return s.PowerStatus(
        cap_kw=memory.power_cap_kw,
        it_draw_kw=round(memory.it_draw_kw(), 3),
        facility_draw_kw=round(memory.facility_draw_kw(), 3),
        facility_design_kw=round(state.design.metrics.facility_mw * 1000.0, 3),
        pue=memory.figures.pue,
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


@dataclass(frozen=True)
class Candidate:
    """A workload curtailment may evict: its priority and the facility power its release saves [kW]."""

    workload_id: str
    priority: int
    saving_kw: float


def fewest_covering(candidates: list[Candidate], shed_kw: float) -> list[Candidate]:
    """The fewest candidates whose savings cover ``shed_kw`` (all of them if they do not), with the least
    excess among the fewest found: the largest first up to the last one needed, which is then the
    smallest remaining candidate that still covers the remainder.

    Taking the largest first needs the fewest candidates, k; swapping the k-th for the smallest one
    that still covers what the first k − 1 leave keeps k and shrinks the excess.
    """
    order = sorted(candidates, key=lambda c: -c.saving_kw)  # stable: ties keep the caller's order
    chosen: list[Candidate] = []
    left = shed_kw
    for position, candidate in enumerate(order):
        if left <= 0:
            break
        if candidate.saving_kw >= left:
            rest = [c for c in order[position:] if c.saving_kw >= left]
            chosen.append(min(rest, key=lambda c: c.saving_kw))
            return chosen
        chosen.append(candidate)
        left -= candidate.saving_kw
    return chosen


def curtailment_victims(candidates: list[Candidate], shed_kw: float) -> list[Candidate]:
    """The workloads to evict so that the facility sheds ``shed_kw``: lower priorities first (a priority
    is only touched when every lower one together cannot cover what is left), the fewest within the
    priority where the shed is covered (`fewest_covering`), then every victim that is not needed put
    back (smallest saving first), so that each victim saves more than the excess and could not be placed
    again under the cap. Candidates come newest first within a priority (ties go to the newest).
    A result that does not cover the shed means no set of these candidates does.
    """
    useful = [c for c in candidates if c.saving_kw > 0]
    chosen: list[Candidate] = []
    left = shed_kw
    for priority in sorted({c.priority for c in useful}):
        if left <= 0:
            break
        tier = [c for c in useful if c.priority == priority]
        picked = fewest_covering(tier, left)
        chosen += picked
        left -= sum(c.saving_kw for c in picked)
    if left > 0:
        return chosen
    for candidate in sorted(chosen, key=lambda c: c.saving_kw):
        if sum(c.saving_kw for c in chosen) - candidate.saving_kw >= shed_kw:
            chosen.remove(candidate)
    return chosen


def shed_load(memory: FactoryMemory, session: Session) -> list[str]:
    """Evict the workloads `curtailment_victims` picks; should the draw still exceed the cap (small
    workloads sharing GPUs save nothing alone), evict further, lowest priority and newest first."""
    cap_kw = memory.power_cap_kw
    draw_kw = memory.facility_draw_kw()
    if cap_kw is None or draw_kw <= cap_kw:
        return []
    active = list(
        session.scalars(
            select(WorkloadRow)
            .where(WorkloadRow.state.in_([WorkloadState.placed, WorkloadState.running]))
            .order_by(WorkloadRow.priority, WorkloadRow.created_at.desc())
        )
    )
    preemptible = [w for w in active if w.spec.get("preemptible", True)]
    gpu_saving_kw = draw_kw - memory.facility_draw_kw(freed_gpus=1)  # the model is linear in GPUs freed
    candidates = [
        Candidate(w.id, w.priority, memory.gpus_freed_by_release(w.id) * gpu_saving_kw) for w in preemptible
    ]
    victims = {c.workload_id for c in curtailment_victims(candidates, draw_kw - cap_kw)}
    evicted: list[str] = []
    for workload in preemptible:
        if workload.id in victims:
            _evict(memory, session, workload, cap_kw)
            evicted.append(workload.id)
    for workload in preemptible:  # the fallback, when the chosen set fell short
        if memory.facility_draw_kw() <= cap_kw:
            break
        if workload.id not in evicted:
            _evict(memory, session, workload, cap_kw)
            evicted.append(workload.id)
    return evicted


def _evict(memory: FactoryMemory, session: Session, workload: WorkloadRow, cap_kw: float) -> None:
    release(memory, session, workload, "power cap")
    workload.state = WorkloadState.queued
    workload.queue_reason = f"evicted: facility power cap {cap_kw:.1f} kW"
    workload.updated_at = utc_now()
