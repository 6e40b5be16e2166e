"""The scheduler's vocabulary, shared by the twin and the control plane.

A `Request` asks for GPUs with topology constraints; a `Placement` says which nodes got how many GPUs.
The scheduler itself (`tokenfab.sched.scheduler.Scheduler`) works on a `tokenfab.fleet.Fleet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class WorkloadKind(StrEnum):
    training = "training"
    inference = "inference"
    small = "small"


class Level(StrEnum):
    """Topology levels, narrowest first."""

    node = "node"
    domain = "domain"
    rack = "rack"
    su = "su"
    hall = "hall"
    site = "site"


class Policy(StrEnum):
    first_fit = "first_fit"
    best_fit = "best_fit"
    topology_packing = "topology_packing"
    fragmentation_aware = "fragmentation_aware"


@dataclass(frozen=True)
class Request:
    """What a workload asks of the fleet.

    gpus: total GPUs (a gang is placed all at once or not at all).
    slice_gpus: each part of the gang (e.g. one TP×EP replica, Slurm's --segment, Kueue's podset slice)
        must lie inside one NVLink domain; 0 means "no slicing constraint".
    whole_domains: take NVLink domains whole (no other workload shares them).
    level / level_required: keep the gang inside one `level` (domain / su / hall); required or only preferred.
    gpu_fraction: for small requests, a share of one GPU (0 < f < 1), with cpu_cores and memory_gb.
    tenant / exclusive_domains: a tenant never shares an NVLink domain with another tenant when
        exclusive_domains is true (sovereign tenants); allowed_sites / allowed_halls pin residency;
        allowed_domains keeps the request inside those NVLink domains (a tenant environment's).
    priority: larger wins; preemptible: may be evicted by a higher priority request.
    """

    id: str
    gpus: int
    tenant: str = "default"
    kind: WorkloadKind = WorkloadKind.training
    slice_gpus: int = 0
    whole_domains: bool = False
    level: Level | None = None
    level_required: bool = False
    gpu_fraction: float = 0.0
    cpu_cores: float = 0.0
    memory_gb: float = 0.0
    priority: int = 0
    preemptible: bool = True
    exclusive_domains: bool = False
    allowed_sites: tuple[int, ...] | None = None
    allowed_halls: tuple[int, ...] | None = None
    allowed_domains: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Eviction:
    """What a preempting placement cost: the evicted requests and the work they lose."""

    request_id: str
    victims: tuple[str, ...]
    gpus_freed: int
    lost_gpu_hours: float
    """Σ over victims of GPUs × hours since placement (GPUs held, i.e. one hour each, without a clock)."""


@dataclass
class Placement:
    """Where a request landed: parallel arrays of node index and GPUs taken on that node.

    A fractional request holds ``gpu_fraction`` of the scheduler's shared GPU ``share_slot`` of
    ``nodes[0]``. A placement that preempted other work carries its ``eviction``.
    """

    request_id: str
    nodes: np.ndarray
    gpus_per_node: np.ndarray
    gpu_fraction: float = 0.0
    eviction: Eviction | None = None
    share_slot: int = -1

    @property
    def gpus(self) -> int:
        return int(self.gpus_per_node.sum())

    @property
    def evicted(self) -> list[str]:
        """Ids of the requests this placement evicted (in the order they were chosen)."""
        return [] if self.eviction is None else list(self.eviction.victims)


@dataclass(frozen=True)
class Unplaceable:
    """Why a request could not be placed now, in words a user can read."""

    request_id: str
    reason: str
