"""The facility's power response: the cap in force, grid events, and how IT power is brought under it.

A grid event asks the facility to draw a share less than it draws now, for a while. `respond` (at the
event's cap and pause latencies, at its end, and at every tick) brings IT power under the budget that cap
leaves (:math:`P_{cap} / PUE - P_{fabric}`), in order: cap training GPUs down to a floor; cap inference GPUs
only to caps whose capacity still covers demand with SLO-meeting rates; then pause flexible training jobs,
those with the newest checkpoint first; then other training. Inference is never paused. The equations of
GPU power under a cap are in `tokenfab.twin.power`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from tokenfab.twin.engine import Event
from tokenfab.twin.training import want_schedule

if TYPE_CHECKING:
    from tokenfab.twin.facility import FacilityFigures
    from tokenfab.twin.state import TwinState


@dataclass
class Grid:
    """The facility power cap: the design's own, lowered by the grid events in force; their log."""

    base_cap_kw: float
    event_cap_kw: float = math.inf
    active_cuts: list[float] = field(default_factory=list)
    response_pending_until_s: float = -1.0
    """Until then the grid event's timed response owns the power, not the tick's control loop [s]."""
    parking: bool = False
    """During a grid event, idle nodes are powered down (no GPU idle or host draw)."""
    events: list[dict] = field(default_factory=list)
    """One record per grid event: cap, when it was met, jobs paused, the training cap it took."""

    @property
    def cap_kw(self) -> float:
        return min(self.base_cap_kw, self.event_cap_kw)

    def it_budget_w(self, figures: FacilityFigures) -> float:
        """IT power (without the fabric) the cap in force leaves [W]: :math:`P_{cap} / PUE - P_{fabric}`."""
        return self.cap_kw * 1000.0 / figures.pue - figures.fabric_kw * 1000.0

    def start_cut(
        self, t: float, cut: float, duration_s: float, respond_within_s: float, facility_kw: float
    ) -> None:
        self.event_cap_kw = min(self.event_cap_kw, (1.0 - cut) * min(facility_kw, self.base_cap_kw))
        self.active_cuts.append(self.event_cap_kw)
        self.events.append(
            {
                "start_s": t,
                "duration_s": duration_s,
                "cut_fraction": cut,
                "cap_kw": float(self.cap_kw),
                "respond_within_s": respond_within_s,
                "facility_kw_before": float(facility_kw),
                "complied_at_s": None,
                "response_s": None,
                "jobs_paused": 0,
                "training_cap_w": None,
            }
        )

    def end_cut(self) -> None:
        if self.active_cuts:
            self.active_cuts.pop(0)
        self.event_cap_kw = min(self.active_cuts) if self.active_cuts else math.inf

    def note_compliance(self, t: float, facility_kw: float) -> None:
        """The latest grid event is met from `t` on once the facility draws no more than its cap."""
        if self.events and self.events[-1]["complied_at_s"] is None:
            event = self.events[-1]
            if facility_kw <= event["cap_kw"] + 1e-6:
                event["complied_at_s"] = t
                event["response_s"] = t - event["start_s"]


@dataclass(slots=True, eq=False)
class GridEventEnd(Event):
    rank: ClassVar[int] = 2
    cut_fraction: float

    def handle(self, state: TwinState) -> list[Event]:
        state.grid.end_cut()
        return [*respond(state, self.time_s, "relax"), *want_schedule(state.training, self.time_s)]


@dataclass(slots=True, eq=False)
class GridEventStart(Event):
    rank: ClassVar[int] = 7
    cut_fraction: float
    duration_s: float
    respond_within_s: float

    def handle(self, state: TwinState) -> list[Event]:
        """The grid asks the facility to draw `cut_fraction` less than it draws now (and never above its cap)."""
        t = self.time_s
        state.grid.start_cut(t, self.cut_fraction, self.duration_s, self.respond_within_s, state.facility_kw)
        p = state.spec.power
        state.grid.response_pending_until_s = t + max(p.cap_latency_s, p.pause_latency_s)
        return [
            PowerResponse(t + p.cap_latency_s, "cap"),
            PowerResponse(t + p.pause_latency_s, "pause"),
            GridEventEnd(t + self.duration_s, self.cut_fraction),
        ]


@dataclass(slots=True, eq=False)
class PowerResponse(Event):
    rank: ClassVar[int] = 8
    stage: str

    def handle(self, state: TwinState) -> list[Event]:
        return respond(state, self.time_s, self.stage)


def respond(state: TwinState, t: float, stage: str) -> list[Event]:
    """Bring IT power under the budget at one `stage` ("cap", "pause", "relax" or "tick"): training caps,
    SLO-safe inference caps, then pauses; the `JobFinish` events of a new training speed."""
    grid, training, inference = state.grid, state.training, state.inference
    budget_w = grid.it_budget_w(state.figures)
    if stage == "relax" and not grid.active_cuts:
        grid.parking = False
    elif stage == "cap" and state.spec.power.park_idle_nodes:
        grid.parking = True
    # inference at the highest cap first; lower only when training alone cannot make room
    caps = [len(s.rates.power_cap_w) - 1 for s in inference.services]
    need_train = training_cap_for(state, budget_w, caps)
    if need_train < training.floor_power_w - 1e-9 and stage != "relax":
        caps = [inference.lowest_safe_row(i, svc) for i, svc in enumerate(inference.services)]
        need_train = training_cap_for(state, budget_w, caps)
    inference.set_caps(caps)
    events: list[Event] = []
    if training.set_cap(
        state.now_s, need_train, state.figures.gpu_idle_w, state.figures.clock_power_exponent
    ):
        events += training.finish_events(t)
    if stage in ("pause", "tick"):
        state.refresh()
        over_w = (state.it_kw - state.figures.fabric_kw) * 1000.0 - budget_w
        if over_w > 0:
            pause_training(state, t, over_w)
    if grid.events and stage in ("cap", "pause"):
        grid.events[-1]["training_cap_w"] = float(training.cap_w)
    return events


def training_cap_for(state: TwinState, budget_w: float, caps: list[int]) -> float:
    """Per-GPU training cap that fits the IT budget with inference at `caps` [W]; -inf when nothing fits
    and no training runs (unclamped: the caller compares it with the floor)."""
    training = state.training
    full_w = training.full_power_w
    other = state.it_power_w(train_cap_w=full_w, service_caps=caps) - training.gpus * full_w
    if training.gpus == 0:
        return full_w if other <= budget_w else -math.inf
    return (budget_w - other) / training.gpus


def pause_training(state: TwinState, t: float, over_w: float) -> None:
    """Pause running jobs until `over_w` is saved: flexible ones first, newest checkpoint first."""
    training = state.training
    saving_per_gpu = state.training_gpu_added_w()
    for job in training.running.values():
        training.sync_checkpoint(job, t)
    order = sorted(training.running.values(), key=lambda j: (not j.flexible, t - j.last_checkpoint_s, j.id))
    for job in order:
        if over_w <= 0:
            break
        over_w -= job.gpus * saving_per_gpu
        job.paused_for_power += 1
        training.paused_jobs += 1
        if state.grid.events:
            state.grid.events[-1]["jobs_paused"] += 1
        state.stop_job(t, job, "power")
