"""What the twin keeps track of: training jobs, inference services and their replicas.

Plain mutable dataclasses; only events and the simulation state change them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    finished = "finished"


@dataclass
class TrainingJob:
    """A gang of GPUs that runs `work_s` seconds of work at full speed, checkpointing every interval.

    Work is measured on the training work clock (seconds at full clock); under a power cap the clock runs
    slower. A failure loses the work since the last checkpoint; the job goes back to the queue.
    """

    id: str
    gpus: int
    slice_gpus: int
    work_s: float
    """Work to do, in seconds at full speed [s]."""
    arrival_s: float
    checkpoint_interval_s: float
    flexible: bool
    """May be paused to meet a grid event."""
    tenant: str = "default"
    priority: int = 0
    state: JobState = JobState.queued
    saved_work_s: float = 0.0
    """Work kept by the last checkpoint [s]."""
    segment_start_s: float = 0.0
    """Wall time the current run segment started [s]."""
    last_checkpoint_s: float = 0.0
    """Wall time of the last checkpoint (or of the segment start) [s]."""
    checkpoint_work_clock_s: float = 0.0
    """The training work clock at the last checkpoint (or segment start) [s]."""
    first_start_s: float | None = None
    finish_s: float | None = None
    epoch: int = 0
    """Bumped on every start/stop; events carry the epoch they were made for and are ignored when stale."""
    interruptions: int = 0
    paused_for_power: int = 0
    draining: bool = False
    lost_gpu_s: float = 0.0
    """GPU-seconds of work lost to interruptions (work since the last checkpoint) [GPU·s]."""

    def work_done_s(self, work_clock_s: float) -> float:
        """Work done so far, including the part not yet checkpointed [s]."""
        if self.state is not JobState.running:
            return self.saved_work_s
        return self.saved_work_s + (work_clock_s - self.checkpoint_work_clock_s)

    def remaining_work_s(self, work_clock_s: float) -> float:
        return max(self.work_s - self.work_done_s(work_clock_s), 0.0)


@dataclass
class ServiceRates:
    """What one replica of a service delivers at a set of GPU power caps (rows), from the token model."""

    power_cap_w: np.ndarray
    """Per-GPU caps, ascending; the last is the TDP [W]."""
    output_tokens_per_s_per_gpu: np.ndarray
    total_tokens_per_s_per_gpu: np.ndarray
    gpu_power_w: np.ndarray
    """Mean board power at full load of the operating point [W]."""
    ttft_ms: np.ndarray
    itl_ms: np.ndarray
    meets_targets: np.ndarray
    gpus_per_replica: int
    concurrency: int
    """Sequences in flight per replica at the operating point [-]."""
    source: str
    """``perf.estimate`` or the documented fallback."""


@dataclass
class InferenceService:
    """One model served under TTFT/ITL targets, with token demand over time and autoscaled replicas."""

    name: str
    model: str
    system: str
    isl: int
    osl: int
    ttft_target_ms: float
    itl_target_ms: float
    rates: ServiceRates
    demand_requests_per_s: np.ndarray
    """Request rate at each tick [1/s]."""
    tenant: str = "default"
    priority: int = 10
    min_replicas: int = 1
    headroom: float = 0.1
    replicas_per_placement: int = 1
    """Replicas placed together in one NVLink domain as one allocation (fewer, larger placements at scale)."""
    replicas: dict[str, np.ndarray] = field(default_factory=dict)
    """Placement id → nodes it occupies (each placement holds `replicas_per_placement` replicas)."""
    cap_index: int = -1
    """Row of `rates` in force (power cap), -1 = TDP."""
    next_replica: int = 0

    @property
    def gpus_per_placement(self) -> int:
        return self.replicas_per_placement * self.rates.gpus_per_replica

    @property
    def replica_count(self) -> int:
        return len(self.replicas) * self.replicas_per_placement

    @property
    def gpus(self) -> int:
        return len(self.replicas) * self.gpus_per_placement
