"""Static inputs (the cluster's nodes and the pods as arrays) and the mutable node occupancy of a replay."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.traces.openb import NodeList, PodList
from tokenfab.units import MILLI_PER_GPU

MAX_SPEC_CPU_MILLI = 128_000
"""Largest node CPU in the openb cluster; the reference simulator normalises CPU by it."""
MAX_SPEC_GPU_MILLI = 8_000
"""Largest node GPU capacity (8 GPUs); the reference simulator normalises GPU by it."""
MAX_NODE_SCORE = 100
"""Kubernetes scheduler score range is [0, 100]."""

# Affinity tags of GpuClustering: share-gpu, 1-gpu, 2-gpu, 4-gpu, 8-gpu, other multi-GPU counts.
_AFFINITY_TAGS = ("share-gpu", "1-gpu", "2-gpu", "4-gpu", "8-gpu", "other-gpu")


# --------------------------------------------------------------------------------------------
# Static inputs: cluster and workload as arrays
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The nodes of a cluster as arrays; ``model_code`` indexes ``models``."""

    names: tuple[str, ...]
    cpu_milli: np.ndarray
    memory_mib: np.ndarray
    gpu_count: np.ndarray
    model_code: np.ndarray
    models: tuple[str, ...]

    @property
    def n_nodes(self) -> int:
        return len(self.names)

    @property
    def gpu_slots(self) -> int:
        """Width of the per-GPU state array (the largest GPU count of any node, at least 1)."""
        return max(1, int(self.gpu_count.max(initial=0)))

    @property
    def total_gpu_milli(self) -> int:
        return int(self.gpu_count.sum()) * MILLI_PER_GPU

    @classmethod
    def from_node_list(cls, nodes: NodeList) -> Cluster:
        models = tuple(sorted({m for m in nodes.gpu_model}))
        code_of = {m: i for i, m in enumerate(models)}
        return cls(
            names=nodes.names,
            cpu_milli=nodes.cpu_milli.astype(np.int64),
            memory_mib=nodes.memory_mib.astype(np.int64),
            gpu_count=nodes.gpu_count.astype(np.int64),
            model_code=np.asarray([code_of[m] for m in nodes.gpu_model], dtype=np.int64),
            models=models,
        )


@dataclass(frozen=True)
class PodSet:
    """Pods as arrays, normalised the way the reference simulator reads them.

    ``gpu_milli`` is the per-GPU share (0 for a CPU-only pod); ``spec_code`` indexes
    ``spec_allowed[spec, model]`` (spec 0 is "any model"); ``shape_code`` numbers the distinct
    (cpu, memory, gpu_milli, num_gpu, spec) requests (the key of the score caches).
    """

    names: tuple[str, ...]
    cpu_milli: np.ndarray
    memory_mib: np.ndarray
    num_gpu: np.ndarray
    gpu_milli: np.ndarray
    spec_code: np.ndarray
    specs: tuple[str, ...]
    spec_allowed: np.ndarray
    shape_code: np.ndarray

    @property
    def n_pods(self) -> int:
        return len(self.names)

    @property
    def gpu_milli_total(self) -> np.ndarray:
        """GPU request of each pod in milli-GPU: ``num_gpu × gpu_milli``."""
        return self.num_gpu * self.gpu_milli

    @classmethod
    def from_pod_list(cls, pods: PodList, cluster: Cluster) -> PodSet:
        num_gpu = pods.num_gpu.astype(np.int64)
        is_gpu = num_gpu > 0
        gpu_milli = np.where(is_gpu, np.clip(pods.gpu_milli, 0, MILLI_PER_GPU), 0).astype(np.int64)
        spec_text = [_canonical_spec(s) if g else "" for s, g in zip(pods.gpu_spec, is_gpu, strict=True)]
        specs = ("",) + tuple(sorted({s for s in spec_text if s}))
        spec_index = {s: i for i, s in enumerate(specs)}
        spec_code = np.asarray([spec_index[s] for s in spec_text], dtype=np.int64)
        allowed = np.zeros((len(specs), max(1, len(cluster.models))), dtype=bool)
        for i, s in enumerate(specs):
            allowed[i, : len(cluster.models)] = [_model_accepted(m, s) for m in cluster.models]
        shapes = np.stack(
            [
                pods.cpu_milli.astype(np.int64),
                pods.memory_mib.astype(np.int64),
                gpu_milli,
                num_gpu,
                spec_code,
            ],
            axis=1,
        )
        _, shape_code = np.unique(shapes, axis=0, return_inverse=True)
        return cls(
            names=pods.names,
            cpu_milli=pods.cpu_milli.astype(np.int64),
            memory_mib=pods.memory_mib.astype(np.int64),
            num_gpu=num_gpu,
            gpu_milli=gpu_milli,
            spec_code=spec_code,
            specs=specs,
            spec_allowed=allowed,
            shape_code=shape_code.reshape(-1).astype(np.int64),
        )


def _canonical_spec(spec: str) -> str:
    return "|".join(part for part in spec.split("|") if part)


def _model_accepted(model: str, spec: str) -> bool:
    """GPU-model constraint: an empty spec accepts any model; a node without GPUs accepts no spec."""
    wanted = [part for part in spec.split("|") if part]
    if not wanted:
        return True
    return bool(model) and model in wanted


# --------------------------------------------------------------------------------------------
# Mutable cluster state (arrays) and the pod request
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodRequest:
    """One pod as the engine sees it."""

    cpu_milli: int
    memory_mib: int
    num_gpu: int
    gpu_milli: int
    spec_code: int
    shape_code: int

    @property
    def is_gpu_share(self) -> bool:
        return self.num_gpu == 1 and 0 < self.gpu_milli < MILLI_PER_GPU

    @property
    def gpu_milli_total(self) -> int:
        return self.num_gpu * self.gpu_milli

    @property
    def affinity_tag(self) -> int:
        """GpuClustering's pod class: -1 CPU-only, else an index into the affinity tags."""
        if self.num_gpu == 0:
            return -1
        if self.is_gpu_share:
            return 0
        return {1: 1, 2: 2, 4: 3, 8: 4}.get(self.num_gpu, 5)


def pod_request(workload: PodSet, index: int) -> PodRequest:
    return PodRequest(
        cpu_milli=int(workload.cpu_milli[index]),
        memory_mib=int(workload.memory_mib[index]),
        num_gpu=int(workload.num_gpu[index]),
        gpu_milli=int(workload.gpu_milli[index]),
        spec_code=int(workload.spec_code[index]),
        shape_code=int(workload.shape_code[index]),
    )


@dataclass
class ClusterState:
    """Free resources of every node, as arrays, plus derived per-node counters kept up to date."""

    cluster: Cluster
    cpu_free: np.ndarray
    mem_free: np.ndarray
    gpu_free: np.ndarray  # [node, slot] milli-GPU free; 0 beyond the node's GPU count
    gpu_free_total: np.ndarray
    gpu_full_count: np.ndarray  # GPUs with all 1000 milli free
    gpu_free_max: np.ndarray
    affinity_count: np.ndarray  # [node, tag] pods of each GpuClustering class on the node
    version: np.ndarray  # bumped on every change of the node, for score caches
    allocated_gpu_milli: int = 0

    @classmethod
    def empty(cls, cluster: Cluster) -> ClusterState:
        slots = np.arange(cluster.gpu_slots)
        gpu_free = np.where(slots[None, :] < cluster.gpu_count[:, None], MILLI_PER_GPU, 0).astype(np.int64)
        return cls(
            cluster=cluster,
            cpu_free=cluster.cpu_milli.copy(),
            mem_free=cluster.memory_mib.copy(),
            gpu_free=gpu_free,
            gpu_free_total=gpu_free.sum(axis=1),
            gpu_full_count=(gpu_free == MILLI_PER_GPU).sum(axis=1),
            gpu_free_max=gpu_free.max(axis=1),
            affinity_count=np.zeros((cluster.n_nodes, len(_AFFINITY_TAGS)), dtype=np.int64),
            version=np.zeros(cluster.n_nodes, dtype=np.int64),
        )


def feasible_nodes(state: ClusterState, pod: PodRequest, spec_allowed: np.ndarray) -> np.ndarray:
    """Indices of the nodes that can host ``pod`` now.

    A node fits when free CPU ≥ request, free memory ≥ request and, for a GPU pod, its GPU model
    is accepted and at least ``num_gpu`` of its GPUs each have ≥ ``gpu_milli`` free (one GPU for a
    sharing pod; whole free GPUs for a multi-GPU pod). This is Kubernetes' NodeResourcesFit plus the
    reference simulator's Open-Gpu-Share filter.
    """
    ok = (state.cpu_free >= pod.cpu_milli) & (state.mem_free >= pod.memory_mib)
    if pod.num_gpu > 0:
        ok &= spec_allowed[pod.spec_code][state.cluster.model_code]
        if pod.num_gpu == 1:
            ok &= state.gpu_free_max >= pod.gpu_milli
        else:
            ok &= (state.gpu_free >= pod.gpu_milli).sum(axis=1) >= pod.num_gpu
    return np.flatnonzero(ok)


def best_fit_gpu(gpu_free_rows: np.ndarray, gpu_milli: int) -> np.ndarray:
    """For each row, the GPU with the least free milli that still fits ``gpu_milli`` (first on ties)."""
    masked = np.where(gpu_free_rows >= gpu_milli, gpu_free_rows, np.iinfo(np.int64).max)
    return masked.argmin(axis=-1)


def allocate(state: ClusterState, node: int, pod: PodRequest, gpu_index: int) -> None:
    """Place ``pod`` on ``node`` (in place). A sharing pod goes on GPU ``gpu_index``; a whole-GPU
    pod takes the first ``num_gpu`` fully free GPUs in index order (the reference simulator's
    ``AllocateExclusiveGpuId``)."""
    state.cpu_free[node] -= pod.cpu_milli
    state.mem_free[node] -= pod.memory_mib
    if pod.num_gpu > 0:
        row = state.gpu_free[node]
        if pod.is_gpu_share:
            if row[gpu_index] < pod.gpu_milli:
                raise ValueError(f"GPU {gpu_index} of node {node} cannot fit {pod.gpu_milli} milli-GPU")
            row[gpu_index] -= pod.gpu_milli
        else:
            free_slots = np.flatnonzero(row >= MILLI_PER_GPU)[: pod.num_gpu]
            if len(free_slots) < pod.num_gpu:
                raise ValueError(f"node {node} has fewer than {pod.num_gpu} free GPUs")
            row[free_slots] = 0
        state.gpu_free_total[node] = row.sum()
        state.gpu_full_count[node] = int((row == MILLI_PER_GPU).sum())
        state.gpu_free_max[node] = row.max()
        state.affinity_count[node, pod.affinity_tag] += 1
        state.allocated_gpu_milli += pod.gpu_milli_total
    state.version[node] += 1
