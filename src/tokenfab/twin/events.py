"""The twin's events, and the order of events that share an instant.

Each event kind lives with the part of the twin it acts on (`tokenfab.twin.training`,
`tokenfab.twin.facility`, `tokenfab.twin.response`; `Tick` here). An event's ``handle(state)`` changes the
state and *returns* the events it causes; it never pushes them (the loop in `tokenfab.twin.engine` does).

Same-time order (``rank``, lower first), chosen so that capacity and power freed at an instant are seen by
everything that wants them at that instant:

====  =================  ======================================================================
rank  event              why here
====  =================  ======================================================================
0     Repair             returns nodes to service before anything looks for room
1     CduRepair          restores cooling (and the racks it stopped)
2     GridEventEnd       lifts the cut before power is checked
3     JobFinish          frees GPUs
4     Checkpoint         saves work before a failure at the same instant can lose it
5     Failure            takes nodes away
6     CduFailure         stops racks
7     GridEventStart     lowers the cap
8     PowerResponse      applies caps/pauses for the cap now in force
9     Tick               records the interval, autoscales inference, manages power
10    JobArrival         queues new work
11    Schedule           places queued jobs into what is free now
12    JobStart           starts the placed jobs
====  =================  ======================================================================

Ties within a rank keep the order in which they were scheduled (the queue's sequence number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from tokenfab.twin.engine import Event
from tokenfab.twin.facility import CduFailure, CduRepair, Failure, Repair
from tokenfab.twin.inference import autoscale
from tokenfab.twin.response import GridEventEnd, GridEventStart, PowerResponse, respond
from tokenfab.twin.result import record
from tokenfab.twin.training import Checkpoint, JobArrival, JobFinish, JobStart, Schedule, want_schedule

if TYPE_CHECKING:
    from tokenfab.twin.state import TwinState


@dataclass(slots=True, eq=False)
class Tick(Event):
    """The control interval: inference demand and autoscaling, the power loop, one row of the time series."""

    rank: ClassVar[int] = 9
    index: int

    def handle(self, state: TwinState) -> list[Event]:
        t = self.time_s
        state.tick_index = self.index
        for svc, predicted_requests_per_s in state.inference.observe(self.index):
            autoscale(state, t, svc, predicted_requests_per_s)
        events: list[Event] = []
        if t >= state.grid.response_pending_until_s:
            # the tick's control loop; right after a grid event the timed response owns the power
            events += respond(state, t, "tick")
        state.refresh()
        record(state, t)
        events += want_schedule(state.training, t)
        if t < state.horizon_s - 1e-9:
            events.append(Tick(min(t + state.tick_s, state.horizon_s), self.index + 1))
        return events


EVENT_KINDS: tuple[type[Event], ...] = (
    Repair,
    CduRepair,
    GridEventEnd,
    JobFinish,
    Checkpoint,
    Failure,
    CduFailure,
    GridEventStart,
    PowerResponse,
    Tick,
    JobArrival,
    Schedule,
    JobStart,
)
EVENT_RANKS = {cls.__name__: cls.rank for cls in EVENT_KINDS}
"""Rank of every event kind by name (lower first at the same instant)."""

__all__ = [
    "EVENT_KINDS",
    "EVENT_RANKS",
    "CduFailure",
    "CduRepair",
    "Checkpoint",
    "Failure",
    "GridEventEnd",
    "GridEventStart",
    "JobArrival",
    "JobFinish",
    "JobStart",
    "PowerResponse",
    "Repair",
    "Schedule",
    "Tick",
]
