"""Training in the twin: the job queue, the running gangs, the work clock under power caps, checkpoints.

Work is measured on the training work clock (seconds at full clock). A power cap slows every training GPU
by the same clock fraction (`tokenfab.twin.power.training_clock_fraction`), so one clock serves every job:
it runs at `Training.speed` and its breakpoints are kept so a checkpoint in the past can be valued.

`Training` holds the state and answers questions about it; the events (`JobArrival`, `Schedule`,
`JobStart`, `JobFinish`, `Checkpoint`) act on it and return the events that follow. A job's events carry
the job's ``epoch`` (bumped at every start and stop) and are ignored when stale.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from tokenfab.sched.types import Request, Unplaceable, WorkloadKind
from tokenfab.twin import power
from tokenfab.twin.engine import Event
from tokenfab.twin.entities import JobState, TrainingJob
from tokenfab.twin.workload import TrainingJobs

if TYPE_CHECKING:
    from tokenfab.twin.state import TwinState

MAX_PLACEMENT_TRIES_PER_PASS = 64
"""Placements a scheduling pass tries before it stops (the rest waits for the next pass) [-]."""
MAX_QUEUE_SCAN = 4000
"""Queued jobs a scheduling pass looks at, highest priority and oldest first [-]."""
TRAINING_CAP_STEP_W = 10.0
"""Training power caps are set in steps of this many watts (as DCGM/nvidia-smi take whole watts) [W]."""


@dataclass
class Training:
    """Training jobs: arrivals, the queue, the running gangs and the work clock they share."""

    arrivals: TrainingJobs
    checkpoint_interval_s: float
    gpus_per_domain: int
    full_power_w: float
    """Board power of an uncapped training GPU [W]."""
    floor_power_w: float
    """Lowest per-GPU cap a grid event may impose [W]."""
    cap_w: float = field(init=False)
    jobs: dict[str, TrainingJob] = field(default_factory=dict)
    queue: list[tuple[tuple, str]] = field(default_factory=list)
    """((-priority, arrival, id), id), kept sorted: the order a scheduling pass looks at jobs."""
    running: dict[str, TrainingJob] = field(default_factory=dict)
    gpus: int = 0
    """GPUs held by running jobs [-]."""
    work_clock_s: float = 0.0
    clock_break_t: list[float] = field(default_factory=lambda: [0.0])
    clock_break_w: list[float] = field(default_factory=lambda: [0.0])
    speed: float = 1.0
    speed_epoch: int = 0
    """Bumped whenever the speed changes; `JobFinish` events made at an older speed are stale."""
    schedule_pending_at: float = -1.0
    finished: int = 0
    lost_gpu_s: dict[str, float] = field(
        default_factory=lambda: {"failure": 0.0, "power": 0.0, "preemption": 0.0}
    )
    paused_jobs: int = 0

    def __post_init__(self) -> None:
        self.cap_w = self.full_power_w

    def gpu_power_w(self) -> float:
        """Board power of a running training GPU under the cap in force [W]."""
        return power.training_gpu_power_w(self.cap_w, self.full_power_w)

    def add_job(self, t: float, index: int) -> TrainingJob:
        """Job `index` of the arrivals, arrived at `t`, in the queue."""
        arrays = self.arrivals
        gpus = int(arrays.gpus[index])
        job = TrainingJob(
            id=f"job{index}",
            gpus=gpus,
            slice_gpus=self.gpus_per_domain if arrays.gpus[index] > self.gpus_per_domain else 0,
            work_s=float(arrays.work_s[index]),
            arrival_s=t,
            checkpoint_interval_s=self.checkpoint_interval_s,
            flexible=bool(arrays.flexible[index]),
        )
        self.jobs[job.id] = job
        self.enqueue(job)
        return job

    def enqueue(self, job: TrainingJob) -> None:
        job.state = JobState.queued
        bisect.insort(self.queue, ((-job.priority, job.arrival_s, job.id), job.id))

    def mark_running(self, job: TrainingJob) -> None:
        """A job the scheduler just placed: running from now on (its segment starts at `JobStart`)."""
        self.gpus += job.gpus
        job.state = JobState.running
        job.epoch += 1
        self.running[job.id] = job

    def begin_segment(self, t: float, job: TrainingJob) -> None:
        job.segment_start_s = t
        job.last_checkpoint_s = t
        job.checkpoint_work_clock_s = self.work_clock_s
        if job.first_start_s is None:
            job.first_start_s = t

    def finish_time_s(self, t: float, job: TrainingJob) -> float:
        """When `job` finishes if the speed holds [s]."""
        return t + job.remaining_work_s(self.work_clock_s) / self.speed

    def work_clock_at(self, t: float) -> float:
        """The training work clock at wall time `t` (piecewise linear in t) [s]."""
        if t >= self.clock_break_t[-1]:
            return self.clock_break_w[-1] + self.speed * (t - self.clock_break_t[-1])
        return float(np.interp(t, self.clock_break_t, self.clock_break_w))

    def next_checkpoint_s(self, job: TrainingJob, t: float) -> float:
        done = math.floor((t - job.segment_start_s) / job.checkpoint_interval_s + 1e-9)
        return job.segment_start_s + (done + 1) * job.checkpoint_interval_s

    def sync_checkpoint(self, job: TrainingJob, t: float) -> None:
        """Account for the checkpoints a running job wrote up to `t` (every interval since its start).

        Checkpoints are periodic, so they are settled lazily (when the job stops) instead of as events;
        only a draining job gets a `Checkpoint` event, at which it leaves its nodes.
        """
        done = math.floor((t - job.segment_start_s) / job.checkpoint_interval_s + 1e-9)
        at = job.segment_start_s + done * job.checkpoint_interval_s
        if done > 0 and at > job.last_checkpoint_s:
            clock = self.work_clock_at(at)
            job.saved_work_s += clock - job.checkpoint_work_clock_s
            job.checkpoint_work_clock_s = clock
            job.last_checkpoint_s = at

    def complete(self, t: float, job: TrainingJob) -> None:
        """A job that did all its work (its GPUs already released)."""
        del self.running[job.id]
        self.gpus -= job.gpus
        job.saved_work_s = job.work_s
        job.state = JobState.finished
        job.finish_s = t
        job.epoch += 1
        self.finished += 1

    def stop(self, t: float, job: TrainingJob, reason: str | None) -> None:
        """Take a running job off its GPUs and requeue it; work since the last checkpoint is lost (counted
        under `reason`, unless None: the job just saved). The caller releases its placement."""
        self.sync_checkpoint(job, t)
        if reason is not None:
            lost = job.gpus * (t - job.last_checkpoint_s)
            job.lost_gpu_s += lost
            self.lost_gpu_s[reason] += lost
        del self.running[job.id]
        self.gpus -= job.gpus
        job.checkpoint_work_clock_s = self.work_clock_s
        job.draining = False
        job.epoch += 1
        self.enqueue(job)

    def set_cap(self, now_s: float, cap_w: float, idle_power_w: float, clock_power_exponent: float) -> bool:
        """Cap every training GPU at `cap_w` (within [floor, full], in whole steps); True when the speed changed."""
        cap_w = min(max(cap_w, self.floor_power_w), self.full_power_w)
        if cap_w < self.full_power_w:
            cap_w = max(self.floor_power_w, math.floor(cap_w / TRAINING_CAP_STEP_W) * TRAINING_CAP_STEP_W)
        if abs(cap_w - self.cap_w) < 1e-6:
            return False
        self.cap_w = cap_w
        speed = power.training_clock_fraction(cap_w, self.full_power_w, idle_power_w, clock_power_exponent)
        if abs(speed - self.speed) < 1e-12:
            return False
        self.clock_break_t.append(now_s)
        self.clock_break_w.append(self.work_clock_s)
        self.speed = speed
        self.speed_epoch += 1
        return True

    def finish_events(self, t: float) -> list[Event]:
        """A fresh `JobFinish` for every running job (after the speed changed)."""
        return [finish_event(self, t, job) for job in self.running.values()]


def finish_event(training: Training, t: float, job: TrainingJob) -> JobFinish:
    return JobFinish(training.finish_time_s(t, job), job.id, job.epoch, training.speed_epoch)


def want_schedule(training: Training, t: float) -> list[Event]:
    """A scheduling pass at `t` when jobs wait and none is already due then."""
    if training.schedule_pending_at == t or not training.queue:
        return []
    training.schedule_pending_at = t
    return [Schedule(t)]


@dataclass(slots=True, eq=False)
class JobFinish(Event):
    rank: ClassVar[int] = 3
    job_id: str
    epoch: int
    speed_epoch: int

    def handle(self, state: TwinState) -> list[Event]:
        t, training = self.time_s, state.training
        job = training.jobs[self.job_id]
        if (
            job.epoch != self.epoch
            or self.speed_epoch != training.speed_epoch
            or job.state is not JobState.running
        ):
            return []
        if job.remaining_work_s(training.work_clock_s) > 1e-6 * max(job.work_s, 1.0):
            return [finish_event(training, t, job)]
        state.sched.release(job.id)
        training.complete(t, job)
        return want_schedule(training, t)


@dataclass(slots=True, eq=False)
class Checkpoint(Event):
    """A draining job's next checkpoint: it saves its work and leaves its nodes."""

    rank: ClassVar[int] = 4
    job_id: str
    epoch: int

    def handle(self, state: TwinState) -> list[Event]:
        t, training = self.time_s, state.training
        job = training.jobs[self.job_id]
        if job.epoch != self.epoch or job.state is not JobState.running:
            return []
        training.sync_checkpoint(job, t)
        if job.draining:
            state.stop_job(t, job, reason=None)
            return want_schedule(training, t)
        return []


@dataclass(slots=True, eq=False)
class JobArrival(Event):
    rank: ClassVar[int] = 10
    index: int

    def handle(self, state: TwinState) -> list[Event]:
        training = state.training
        training.add_job(self.time_s, self.index)
        out = want_schedule(training, self.time_s)
        nxt = self.index + 1
        if nxt < len(training.arrivals):
            out.append(JobArrival(float(training.arrivals.arrival_s[nxt]), nxt))
        return out


@dataclass(slots=True, eq=False)
class Schedule(Event):
    """A scheduling pass: queued jobs placed into the GPUs free now, within the power headroom."""

    rank: ClassVar[int] = 11

    def handle(self, state: TwinState) -> list[Event]:
        training = state.training
        training.schedule_pending_at = -1.0
        if not training.queue:
            return []
        started = schedule_pass(state, self.time_s)
        events: list[Event] = []
        for item in started:
            training.queue.remove(item)
            job = training.jobs[item[1]]
            events.append(JobStart(self.time_s, job.id, job.epoch))
        return events


def schedule_pass(state: TwinState, t: float) -> list[tuple[tuple, str]]:
    """Place queued jobs (highest priority, oldest first) while GPUs and power headroom last; the queue
    entries of the jobs placed."""
    training = state.training
    free = state.idle_gpus()
    headroom_w = (
        state.grid.it_budget_w(state.figures) - state.it_kw * 1000.0 + state.figures.fabric_kw * 1000.0
    )
    add_w_per_gpu = state.training_gpu_added_w()
    smallest_failed = math.inf
    tries = 0
    started = []
    for key, job_id in training.queue[:MAX_QUEUE_SCAN]:
        job = training.jobs[job_id]
        if job.gpus > free or job.gpus >= smallest_failed:
            continue
        if job.gpus * add_w_per_gpu > headroom_w:
            continue
        if tries >= MAX_PLACEMENT_TRIES_PER_PASS:
            break
        tries += 1
        result = state.sched.place(now_s=t, request=training_request(job))
        if isinstance(result, Unplaceable):
            smallest_failed = min(smallest_failed, job.gpus)
            continue
        started.append((key, job_id))
        free -= job.gpus
        headroom_w -= job.gpus * add_w_per_gpu
        training.mark_running(job)
    return started


def training_request(job: TrainingJob) -> Request:
    """What the fleet scheduler is asked for a training job: whole NVLink domains when it spans several."""
    return Request(
        id=job.id,
        gpus=job.gpus,
        tenant=job.tenant,
        kind=WorkloadKind.training,
        slice_gpus=job.slice_gpus,
        whole_domains=job.slice_gpus > 0,
        priority=job.priority,
    )


@dataclass(slots=True, eq=False)
class JobStart(Event):
    rank: ClassVar[int] = 12
    job_id: str
    epoch: int

    def handle(self, state: TwinState) -> list[Event]:
        training = state.training
        job = training.jobs[self.job_id]
        if job.epoch != self.epoch or job.state is not JobState.running:
            return []
        training.begin_segment(self.time_s, job)
        return [finish_event(training, self.time_s, job)]
