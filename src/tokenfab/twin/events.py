"""The twin's events, one class per kind. Each `handle(sim)` calls the simulation state and returns the
events it causes (never pushes them).

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

from tokenfab.twin.engine import Event


class Repair(Event):
    rank = 0
    __slots__ = ("component", "nodes_key")

    def __init__(self, time_s: float, component: str, nodes_key: int) -> None:
        super().__init__(time_s)
        self.component = component
        self.nodes_key = nodes_key

    def handle(self, sim):
        return sim.repair(self.time_s, self.component, self.nodes_key)


class CduRepair(Event):
    rank = 1
    __slots__ = ("hall", "units")

    def __init__(self, time_s: float, hall: int, units: int) -> None:
        super().__init__(time_s)
        self.hall = hall
        self.units = units

    def handle(self, sim):
        return sim.cdu_change(self.time_s, self.hall, -self.units)


class GridEventEnd(Event):
    rank = 2
    __slots__ = ("cut_fraction",)

    def __init__(self, time_s: float, cut_fraction: float) -> None:
        super().__init__(time_s)
        self.cut_fraction = cut_fraction

    def handle(self, sim):
        return sim.grid_event_end(self.time_s, self.cut_fraction)


class JobFinish(Event):
    rank = 3
    __slots__ = ("job_id", "epoch", "speed_epoch")

    def __init__(self, time_s: float, job_id: str, epoch: int, speed_epoch: int) -> None:
        super().__init__(time_s)
        self.job_id = job_id
        self.epoch = epoch
        self.speed_epoch = speed_epoch

    def handle(self, sim):
        return sim.finish_job(self.time_s, self.job_id, self.epoch, self.speed_epoch)


class Checkpoint(Event):
    rank = 4
    __slots__ = ("job_id", "epoch")

    def __init__(self, time_s: float, job_id: str, epoch: int) -> None:
        super().__init__(time_s)
        self.job_id = job_id
        self.epoch = epoch

    def handle(self, sim):
        return sim.checkpoint_job(self.time_s, self.job_id, self.epoch)


class Failure(Event):
    rank = 5
    __slots__ = ("component", "unit", "repair_s")

    def __init__(self, time_s: float, component: str, unit: int, repair_s: float) -> None:
        super().__init__(time_s)
        self.component = component
        self.unit = unit
        self.repair_s = repair_s

    def handle(self, sim):
        return sim.fail(self.time_s, self.component, self.unit, self.repair_s)


class CduFailure(Event):
    rank = 6
    __slots__ = ("hall", "units", "repair_s")

    def __init__(self, time_s: float, hall: int, units: int, repair_s: float) -> None:
        super().__init__(time_s)
        self.hall = hall
        self.units = units
        self.repair_s = repair_s

    def handle(self, sim):
        return [*sim.cdu_change(self.time_s, self.hall, self.units), CduRepair(self.time_s + self.repair_s, self.hall, self.units)]


class GridEventStart(Event):
    rank = 7
    __slots__ = ("cut_fraction", "duration_s", "respond_within_s")

    def __init__(self, time_s: float, cut_fraction: float, duration_s: float, respond_within_s: float) -> None:
        super().__init__(time_s)
        self.cut_fraction = cut_fraction
        self.duration_s = duration_s
        self.respond_within_s = respond_within_s

    def handle(self, sim):
        return sim.grid_event_start(self.time_s, self.cut_fraction, self.duration_s, self.respond_within_s)


class PowerResponse(Event):
    rank = 8
    __slots__ = ("stage",)

    def __init__(self, time_s: float, stage: str) -> None:
        super().__init__(time_s)
        self.stage = stage

    def handle(self, sim):
        return sim.respond_to_power(self.time_s, self.stage)


class Tick(Event):
    rank = 9
    __slots__ = ("index",)

    def __init__(self, time_s: float, index: int) -> None:
        super().__init__(time_s)
        self.index = index

    def handle(self, sim):
        return sim.tick(self.time_s, self.index)


class JobArrival(Event):
    rank = 10
    __slots__ = ("index",)

    def __init__(self, time_s: float, index: int) -> None:
        super().__init__(time_s)
        self.index = index

    def handle(self, sim):
        return sim.arrive(self.time_s, self.index)


class Schedule(Event):
    rank = 11
    __slots__ = ()

    def handle(self, sim):
        return sim.schedule_pass(self.time_s)


class JobStart(Event):
    rank = 12
    __slots__ = ("job_id", "epoch")

    def __init__(self, time_s: float, job_id: str, epoch: int) -> None:
        super().__init__(time_s)
        self.job_id = job_id
        self.epoch = epoch

    def handle(self, sim):
        return sim.start_job(self.time_s, self.job_id, self.epoch)


EVENT_RANKS = {
    cls.__name__: cls.rank
    for cls in (
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
}
