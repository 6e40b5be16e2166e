"""Placement of GPU-sharing pods on heterogeneous GPU nodes, and the FGD experiment replay.

This module reproduces the experiment of Weng et al., "Beware of Fragmentation: Scheduling
GPU-Sharing Workloads with Fragmentation Gradient Descent" (USENIX ATC'23), whose reference
simulator is github.com/hkust-adsl/kubernetes-scheduler-simulator. Pods ask for CPU (milli-cores),
memory (MiB) and either ``num_gpu`` whole GPUs or one fraction ``gpu_milli`` (< 1000) of one GPU,
optionally restricted to some GPU models. Pods arrive one by one and never leave; a pod that fits
nowhere is dropped. The metric is the share of cluster GPU capacity allocated as a function of the
share that has arrived.

State is arrays: per node ``cpu_free``, ``mem_free``, ``gpu_free[node, slot]`` (milli-GPU free on each
GPU; slots beyond the node's GPU count hold 0), and a few derived per-node counters. Every policy
scores all feasible nodes at once with numpy; the node with the highest score wins and ties go to
the first node in a per-seed random node order, as in the reference simulator (which renames the
nodes with a random prefix per seed and runs a forked scheduler).

Everything here is pure and deterministic for a given seed: no I/O, no global random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tokenfab.traces.openb import NodeList, PodList

GPU_MILLI = 1000
"""milli-GPU in one whole GPU."""
MAX_SPEC_CPU_MILLI = 128_000
"""Largest node CPU in the openb cluster; the reference simulator normalises CPU by it."""
MAX_SPEC_GPU_MILLI = 8_000
"""Largest node GPU capacity (8 GPUs); the reference simulator normalises GPU by it."""
MAX_NODE_SCORE = 100
"""Kubernetes scheduler score range is [0, 100]."""
DEFAULT_INFLATION_RATIO = 1.3
"""The experiment tops the workload up to 1.3 × the cluster GPU capacity."""
DEFAULT_TYPICAL_POD_POPULARITY = 0.95
"""FGD's "typical pods" are the most frequent pod shapes that cover 95 % of the pods."""
CURVE_LEVELS_PCT = tuple(range(0, 131))
"""Arrived-load levels (percent of cluster GPU capacity) of the published allocation curves."""

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
        return int(self.gpu_count.sum()) * GPU_MILLI

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
class Workload:
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
    def from_pod_list(cls, pods: PodList, cluster: Cluster) -> Workload:
        num_gpu = pods.num_gpu.astype(np.int64)
        is_gpu = num_gpu > 0
        gpu_milli = np.where(is_gpu, np.clip(pods.gpu_milli, 0, GPU_MILLI), 0).astype(np.int64)
        spec_text = [_canonical_spec(s) if g else "" for s, g in zip(pods.gpu_spec, is_gpu, strict=True)]
        specs = ("",) + tuple(sorted({s for s in spec_text if s}))
        spec_index = {s: i for i, s in enumerate(specs)}
        spec_code = np.asarray([spec_index[s] for s in spec_text], dtype=np.int64)
        allowed = np.zeros((len(specs), max(1, len(cluster.models))), dtype=bool)
        for i, s in enumerate(specs):
            allowed[i, : len(cluster.models)] = [_model_accepted(m, s) for m in cluster.models]
        shapes = np.stack([pods.cpu_milli.astype(np.int64), pods.memory_mib.astype(np.int64), gpu_milli, num_gpu,
                           spec_code], axis=1)
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
# FGD's fragmentation measure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypicalPods:
    """FGD's target workload: the most popular pod shapes and their integer weights (pod counts).

    The frequency of shape k is ``weight[k] / weight.sum()``.
    """

    cpu_milli: np.ndarray
    gpu_milli: np.ndarray
    num_gpu: np.ndarray
    spec_code: np.ndarray
    weight: np.ndarray


def typical_pods(workload: Workload, popularity: float = DEFAULT_TYPICAL_POD_POPULARITY) -> TypicalPods:
    """The pod shapes that make up ``popularity`` of the pods, most frequent first.

    A shape is (cpu_milli, gpu_milli, num_gpu, gpu_spec); memory is not part of it. Shapes are
    sorted by decreasing count (ties: larger cpu, gpu_milli, num_gpu, spec first) and taken until
    their cumulative count reaches ``popularity`` of all pods, as in the reference simulator's
    ``GetTypicalPods`` (CPU-only pods included, popularity 95 %, step 1).
    """
    shapes = np.stack([workload.cpu_milli, workload.gpu_milli, workload.num_gpu, workload.spec_code], axis=1)
    unique, counts = np.unique(shapes, axis=0, return_counts=True)
    spec_rank = np.argsort(np.argsort(np.asarray(workload.specs, dtype=object)[unique[:, 3]].astype(str)))
    order = np.lexsort((-spec_rank, -unique[:, 2], -unique[:, 1], -unique[:, 0], -counts))
    unique, counts = unique[order], counts[order]
    target = popularity * counts.sum()
    cumulative = np.cumsum(counts)
    n_taken = int(np.searchsorted(cumulative, target, side="left")) + 1
    n_taken = min(n_taken, len(counts))
    unique, counts = unique[:n_taken], counts[:n_taken]
    return TypicalPods(
        cpu_milli=unique[:, 0].copy(),
        gpu_milli=unique[:, 1].copy(),
        num_gpu=unique[:, 2].copy(),
        spec_code=unique[:, 3].copy(),
        weight=counts.astype(np.int64),
    )


@dataclass(frozen=True)
class FragmentationModel:
    """Precomputed form of FGD's fragmentation measure for fast, exact (integer) evaluation.

    Typical GPU pods are grouped by (gpu_milli, num_gpu, spec) = group j. For a node with free
    CPU ``c``, per-GPU free milli ``g_1..g_G`` and model ``μ``, FGD's expected fragment is

    .. math::

        F(n) = \\sum_k p_k F_k(n), \\qquad
        F_k(n) = \\begin{cases}
            \\sum_{i: g_i < m_k} g_i & \\text{if } \\mu \\in \\mathrm{spec}_k,\\;
                c \\ge c_k,\\; |\\{i: g_i \\ge m_k\\}| \\ge n_k \\\\
            \\sum_i g_i & \\text{otherwise (pod } k \\text{ cannot run: all free GPU is a fragment)}
        \\end{cases}

    which rearranges to :math:`F(n) = \\sum_i g_i - \\sum_j A_{\\mu j}\\,[\\mathrm{cnt}_j \\ge n_j]\\,
    U_j\\,W_j(c)` with :math:`U_j = \\sum_{i: g_i \\ge m_j} g_i` (GPU usable by group j) and
    :math:`W_j(c) = \\sum_{k \\in j,\\, c_k \\le c} p_k`. CPU-only typical pods never count as
    satisfied. We keep the weights as integer pod counts, so ``F × total_weight`` is an exact
    integer (``fragment_scaled``).

    Reference: Weng et al., USENIX ATC'23, §4 (Eq. 1–3); ``NodeGpuShareFragAmountScore`` in the
    reference simulator.
    """

    group_gpu_milli: np.ndarray
    group_num_gpu: np.ndarray
    access: np.ndarray  # [model, group] bool
    cpu_thresholds: np.ndarray  # sorted distinct typical CPU requests
    mem_thresholds: np.ndarray  # sorted distinct typical memory requests (empty: memory ignored, as in FGD)
    weight_table: np.ndarray  # [cpu level, memory level, group]: W_j (integer weights)
    total_weight: int


def fragmentation_model(typical: TypicalPods, workload: Workload, memory_aware: bool = False) -> FragmentationModel:
    """Build the :class:`FragmentationModel` of a typical-pod distribution.

    With ``memory_aware`` (our extension, not in FGD), a typical pod also needs its memory: the
    weight of each typical shape is spread over the memory requests of the workload's pods of that
    shape, and :math:`W_j(c, m)` counts the pods of group j with ``cpu ≤ c`` and ``memory ≤ m``.
    """
    is_gpu = typical.gpu_milli > 0
    keys = np.stack([typical.gpu_milli, typical.num_gpu, typical.spec_code], axis=1)[is_gpu]
    if len(keys):
        groups, group_of = np.unique(keys, axis=0, return_inverse=True)
        group_of = group_of.reshape(-1)
    else:
        groups, group_of = np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.int64)
    cpu = typical.cpu_milli[is_gpu]
    weight = typical.weight[is_gpu]
    mem = np.zeros(len(cpu), dtype=np.int64)
    if memory_aware and len(cpu):
        shape_rows = np.stack([typical.cpu_milli, typical.gpu_milli, typical.num_gpu, typical.spec_code], axis=1)[is_gpu]
        pod_rows = np.stack([workload.cpu_milli, workload.gpu_milli, workload.num_gpu, workload.spec_code], axis=1)
        match = (pod_rows[:, None, :] == shape_rows[None, :, :]).all(axis=2)  # [pod, typical GPU shape]
        pod_idx, shape_idx = np.nonzero(match)
        cpu, weight, mem = cpu[shape_idx], np.ones(len(pod_idx), dtype=np.int64), workload.memory_mib[pod_idx]
        group_of = group_of[shape_idx]
    cpu_thresholds = np.unique(cpu)
    mem_thresholds = np.unique(mem) if memory_aware else np.zeros(0, dtype=np.int64)
    table = np.zeros((len(cpu_thresholds) + 1, len(mem_thresholds) + 1, len(groups)), dtype=np.int64)
    cpu_level = np.searchsorted(cpu_thresholds, cpu, side="left") + 1  # pod k counts once c >= its cpu
    mem_level = np.searchsorted(mem_thresholds, mem, side="left") + 1 if memory_aware else np.zeros(len(cpu), int)
    np.add.at(table, (cpu_level, mem_level, group_of), weight)
    table = np.cumsum(np.cumsum(table, axis=0), axis=1)
    access = workload.spec_allowed[groups[:, 2]].T if len(groups) else np.zeros(
        (workload.spec_allowed.shape[1], 0), dtype=bool
    )
    return FragmentationModel(
        group_gpu_milli=groups[:, 0].astype(np.int64),
        group_num_gpu=groups[:, 1].astype(np.int64),
        access=np.ascontiguousarray(access),
        cpu_thresholds=cpu_thresholds.astype(np.int64),
        mem_thresholds=mem_thresholds.astype(np.int64),
        weight_table=table,
        total_weight=int(typical.weight.sum()),
    )


def usable_gpu(model: FragmentationModel, gpu_free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per typical-pod group j: the number of GPUs that fit its share, ``cnt_j``, and their free
    milli, ``U_j``. ``gpu_free`` is ``(..., G)``; both results are ``(..., J)``."""
    usable_mask = gpu_free[..., :, None] >= model.group_gpu_milli  # (..., G, J)
    return usable_mask.sum(axis=-2), (gpu_free[..., :, None] * usable_mask).sum(axis=-2)


def fragment_from_usable(model: FragmentationModel, total_free: np.ndarray, count_usable: np.ndarray,
                         usable_milli: np.ndarray, cpu_free: np.ndarray, model_code: np.ndarray,
                         mem_free: np.ndarray | None = None) -> np.ndarray:
    """``F × total_weight = G·Σw − Σ_j A_μj [cnt_j ≥ n_j] U_j W_j(c, m)`` from the per-group parts."""
    cpu_level = np.searchsorted(model.cpu_thresholds, cpu_free, side="right")
    if len(model.mem_thresholds) and mem_free is not None:
        mem_level = np.searchsorted(model.mem_thresholds, mem_free, side="right")
    else:
        mem_level = np.zeros_like(cpu_level)
    weight = model.weight_table[cpu_level, mem_level]  # (..., J)
    satisfied = (count_usable >= model.group_num_gpu) & model.access[model_code]
    return total_free * model.total_weight - (satisfied * usable_milli * weight).sum(axis=-1)


def fragment_scaled(model: FragmentationModel, gpu_free: np.ndarray, cpu_free: np.ndarray,
                    model_code: np.ndarray, mem_free: np.ndarray | None = None) -> np.ndarray:
    """FGD's expected GPU fragment of node states, in milli-GPU × ``model.total_weight`` (exact).

    ``gpu_free`` has shape ``(..., G)``; ``cpu_free``, ``model_code`` (and ``mem_free``, used only by
    a memory-aware model) broadcast to ``(...)``.
    """
    gpu_free = np.asarray(gpu_free, dtype=np.int64)
    count_usable, usable_milli = usable_gpu(model, gpu_free)
    return fragment_from_usable(model, gpu_free.sum(axis=-1), count_usable, usable_milli, cpu_free, model_code,
                                mem_free)


def sigmoid_score(delta_scaled: np.ndarray, total_weight: int) -> np.ndarray:
    """FGD node score: ``floor(100 · σ(ΔF / 1000))``, ΔF = fragment before − after (milli-GPU).

    Integer truncation as in the reference ``FGDScorePlugin`` (many nodes tie; see :func:`replay` for ties).
    """
    x = np.asarray(delta_scaled, dtype=np.float64) / (float(total_weight) * GPU_MILLI)
    with np.errstate(over="ignore"):
        return np.floor(MAX_NODE_SCORE / (1.0 + np.exp(-x))).astype(np.int64)


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
        return self.num_gpu == 1 and 0 < self.gpu_milli < GPU_MILLI

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


def pod_request(workload: Workload, index: int) -> PodRequest:
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
        gpu_free = np.where(slots[None, :] < cluster.gpu_count[:, None], GPU_MILLI, 0).astype(np.int64)
        return cls(
            cluster=cluster,
            cpu_free=cluster.cpu_milli.copy(),
            mem_free=cluster.memory_mib.copy(),
            gpu_free=gpu_free,
            gpu_free_total=gpu_free.sum(axis=1),
            gpu_full_count=(gpu_free == GPU_MILLI).sum(axis=1),
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
            free_slots = np.flatnonzero(row >= GPU_MILLI)[: pod.num_gpu]
            if len(free_slots) < pod.num_gpu:
                raise ValueError(f"node {node} has fewer than {pod.num_gpu} free GPUs")
            row[free_slots] = 0
        state.gpu_free_total[node] = row.sum()
        state.gpu_full_count[node] = int((row == GPU_MILLI).sum())
        state.gpu_free_max[node] = row.max()
        state.affinity_count[node, pod.affinity_tag] += 1
        state.allocated_gpu_milli += pod.gpu_milli_total
    state.version[node] += 1


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------

ScoreResult = tuple[np.ndarray, np.ndarray | None]
"""Scores of the candidate nodes (higher is better) and, optionally, the GPU each would use."""


class Scorer:
    """A node-scoring policy bound to one replay (it may keep caches).

    ``gpu_selection`` says how a sharing pod picks its GPU on the chosen node when ``score`` does
    not return one: "best" (least free that fits) or "random".
    """

    gpu_selection = "best"

    def score(self, state: ClusterState, pod: PodRequest, nodes: np.ndarray,
              rng: np.random.Generator) -> ScoreResult:
        raise NotImplementedError


class RandomScorer(Scorer):
    """Random: one feasible node, drawn uniformly, scores 100 and the others 0 (the reference
    ``RandomScorePlugin`` draws it in PreScore); a sharing pod takes a random GPU that fits."""

    gpu_selection = "random"

    def score(self, state, pod, nodes, rng):
        scores = np.zeros(len(nodes), dtype=np.int64)
        scores[rng.integers(len(nodes))] = MAX_NODE_SCORE
        return scores, None


def dot_product_scores(cpu_free: np.ndarray, gpu_free_total: np.ndarray, pod: PodRequest) -> np.ndarray:
    """DotProd (Tetris, Grandl et al. SIGCOMM'14) with merged GPU dimension and max normalisation.

    .. math:: s = \\lfloor 100\\,(1 - \\tfrac12 (\\tfrac{c_{free}}{C_{max}}\\tfrac{c_{req}}{C_{max}}
              + \\tfrac{g_{free}}{G_{max}}\\tfrac{g_{req}}{G_{max}})) \\rfloor

    ``C_max = 128000`` milli-CPU, ``G_max = 8000`` milli-GPU: smaller dot product = higher score.
    """
    node_cpu = cpu_free / MAX_SPEC_CPU_MILLI
    node_gpu = gpu_free_total / MAX_SPEC_GPU_MILLI
    dot = node_cpu * (pod.cpu_milli / MAX_SPEC_CPU_MILLI) + node_gpu * (pod.gpu_milli_total / MAX_SPEC_GPU_MILLI)
    return np.trunc(MAX_NODE_SCORE * (1.0 - dot / 2.0)).astype(np.int64)


class DotProductScorer(Scorer):
    def score(self, state, pod, nodes, rng):
        return dot_product_scores(state.cpu_free[nodes], state.gpu_free_total[nodes], pod), None


def best_fit_scores(cpu_free: np.ndarray, gpu_free_total: np.ndarray, pod: PodRequest) -> np.ndarray:
    """BestFit: prefer the node left with the least normalised free CPU and GPU.

    .. math:: s = \\lfloor 100\\,(1 - [\\tfrac12 \\tfrac{c_{free} - c_{req}}{C_{max}}
              + \\tfrac12 \\tfrac{g_{free} - g_{req}}{G_{max}}]) \\rfloor
    """
    left = ((cpu_free - pod.cpu_milli) / MAX_SPEC_CPU_MILLI) * 0.5
    left = left + ((gpu_free_total - pod.gpu_milli_total) / MAX_SPEC_GPU_MILLI) * 0.5
    return np.trunc((1.0 - left) * MAX_NODE_SCORE).astype(np.int64)


class BestFitScorer(Scorer):
    def score(self, state, pod, nodes, rng):
        return best_fit_scores(state.cpu_free[nodes], state.gpu_free_total[nodes], pod), None


def gpu_packing_scores(gpu_free: np.ndarray, gpu_count: np.ndarray, pod: PodRequest) -> np.ndarray:
    """GpuPacking: prefer (1) already-shared GPUs, then (2) free GPUs on used nodes, then (3) idle nodes.

    Case 1: ``max(100 - ⌊⌊100 a/1000⌋/10⌋, 50)`` with ``a`` the free milli of the tightest GPU that
    fits; case 2: ``max(50 - k, 33)`` with ``k`` fully free GPUs used; case 3 (all GPUs idle):
    ``max(33 - f, f)`` with ``f`` free GPUs. CPU-only pods score 0 everywhere.
    """
    n = len(gpu_count)
    if pod.num_gpu == 0:
        return np.zeros(n, dtype=np.int64)
    full = (gpu_free == GPU_MILLI).sum(axis=1)
    idle_node = full == gpu_count
    scores = np.empty(n, dtype=np.int64)
    scores[idle_node] = np.maximum(MAX_NODE_SCORE // 3 - full[idle_node], full[idle_node])
    used = ~idle_node
    if pod.is_gpu_share:
        rows = gpu_free[used]
        tightest = np.take_along_axis(rows, best_fit_gpu(rows, pod.gpu_milli)[:, None], axis=1)[:, 0]
        shared = np.maximum(MAX_NODE_SCORE - (tightest * 100 // GPU_MILLI) // 10, MAX_NODE_SCORE // 2)
        fresh = max(MAX_NODE_SCORE // 2 - 1, MAX_NODE_SCORE // 3)
        scores[used] = np.where(tightest == GPU_MILLI, fresh, shared)
    else:
        scores[used] = max(MAX_NODE_SCORE // 2 - pod.num_gpu, MAX_NODE_SCORE // 3)
    return scores


class GpuPackingScorer(Scorer):
    def score(self, state, pod, nodes, rng):
        return gpu_packing_scores(state.gpu_free[nodes], state.cluster.gpu_count[nodes], pod), None


def gpu_clustering_scores(affinity_count: np.ndarray, gpu_free_total: np.ndarray, pod: PodRequest) -> np.ndarray:
    """GpuClustering: put pods of the same GPU class (share, 1-, 2-, 4-, 8-GPU) together.

    Base 75 if the node hosts only this class, 50 if it hosts it among others, 25 if it hosts no GPU
    pod, 0 otherwise; plus ``⌊25 (8000 - g_free) / 8000⌋``. CPU-only pods score 0.
    """
    n = len(gpu_free_total)
    tag = pod.affinity_tag
    if tag < 0:
        return np.zeros(n, dtype=np.int64)
    present = affinity_count > 0
    n_classes = present.sum(axis=1)
    has_own = present[:, tag]
    base = np.where(has_own, np.where(n_classes == 1, 75, 50), np.where(n_classes == 0, 25, 0))
    quarter = MAX_NODE_SCORE // 4
    return (quarter * (MAX_SPEC_GPU_MILLI - gpu_free_total)) // MAX_SPEC_GPU_MILLI + base


class GpuClusteringScorer(Scorer):
    def score(self, state, pod, nodes, rng):
        return gpu_clustering_scores(state.affinity_count[nodes], state.gpu_free_total[nodes], pod), None


class FgdScorer(Scorer):
    """Fragmentation Gradient Descent (Weng et al., ATC'23): place the pod where the expected
    fragmentation of the node grows least, ``score = ⌊100 σ((F_before − F_after)/1000)⌋``; a sharing
    pod also picks, on each node, the GPU with the best score (first index on ties).

    Node scores depend only on the node's own state, so they are cached per pod shape and recomputed
    only for nodes changed since that shape was last scored.
    """

    gpu_selection = "own"

    def __init__(self, frag: FragmentationModel, cluster: Cluster):
        self.frag = frag
        self.cluster = cluster
        n = cluster.n_nodes
        self._frag_now = np.zeros(n, dtype=np.int64)
        self._frag_version = np.full(n, -1, dtype=np.int64)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def fragment_now(self, state: ClusterState, nodes: np.ndarray) -> np.ndarray:
        stale = nodes[self._frag_version[nodes] != state.version[nodes]]
        if len(stale):
            self._frag_now[stale] = fragment_scaled(
                self.frag, state.gpu_free[stale], state.cpu_free[stale], self.cluster.model_code[stale],
                state.mem_free[stale],
            )
            self._frag_version[stale] = state.version[stale]
        return self._frag_now[nodes]

    def node_deltas(self, state: ClusterState, pod: PodRequest, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fragment decrease (scaled, exact) of placing ``pod`` on each node: ``[n, options]`` and,
        for sharing pods, the GPU of each option (options = GPUs); else one option."""
        before = self.fragment_now(state, nodes)
        rows = state.gpu_free[nodes]
        cpu_after = state.cpu_free[nodes] - pod.cpu_milli
        mem_after = state.mem_free[nodes] - pod.memory_mib
        model = self.cluster.model_code[nodes]
        if pod.is_gpu_share:
            # Option i changes only GPU i (a → a − m): update the per-group counts incrementally.
            frag = self.frag
            count_usable, usable_milli = usable_gpu(frag, rows)  # (n, J)
            before_gpu = rows[:, :, None]
            after_gpu = before_gpu - pod.gpu_milli
            was_usable = before_gpu >= frag.group_gpu_milli  # (n, G, J)
            is_usable = after_gpu >= frag.group_gpu_milli
            count_after = count_usable[:, None, :] - was_usable + is_usable
            usable_after = usable_milli[:, None, :] - before_gpu * was_usable + after_gpu * is_usable
            total_after = rows.sum(axis=1)[:, None] - pod.gpu_milli
            after = fragment_from_usable(frag, total_after, count_after, usable_after, cpu_after[:, None],
                                         model[:, None], mem_after[:, None])
            fits = rows >= pod.gpu_milli
            return np.where(fits, before[:, None] - after, np.iinfo(np.int64).min), fits
        after_rows = rows.copy()
        if pod.num_gpu > 0:
            full = after_rows >= GPU_MILLI
            taken = full & (np.cumsum(full, axis=1) <= pod.num_gpu)
            after_rows[taken] = 0
        after = fragment_scaled(self.frag, after_rows, cpu_after, model, mem_after)
        return (before - after)[:, None], np.ones((len(nodes), 1), dtype=bool)

    def node_scores(self, deltas: np.ndarray, fits: np.ndarray) -> np.ndarray:
        scores = sigmoid_score(np.where(fits, deltas, 0), self.frag.total_weight)
        return np.where(fits, scores, -1)

    def fresh_scores(self, state: ClusterState, pod: PodRequest, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score and GPU choice of ``nodes`` computed from their current state (no cache)."""
        deltas, fits = self.node_deltas(state, pod, nodes)
        scores = self.node_scores(deltas, fits)
        best = scores.argmax(axis=1)  # first GPU on ties
        return scores[np.arange(len(nodes)), best], best

    def score(self, state, pod, nodes, rng):
        cache = self._cache.get(pod.shape_code)
        if cache is None:
            n = self.cluster.n_nodes
            cache = (np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
            self._cache[pod.shape_code] = cache
        seen_version, cached_score, cached_gpu = cache
        stale = nodes[seen_version[nodes] != state.version[nodes]]
        if len(stale):
            cached_score[stale], cached_gpu[stale] = self.fresh_scores(state, pod, stale)
            seen_version[stale] = state.version[stale]
        return cached_score[nodes], cached_gpu[nodes]


class FgdPackScorer(FgdScorer):
    """"fgd-pack" (a negative result): FGD's fragmentation gradient without the score quantisation,
    with packing as the tie-break.

    The reference FGD turns the fragment decrease ΔF into ``⌊100 σ(ΔF/1000)⌋``; its 100 levels make
    every ΔF within ~40 milli-GPU of another a tie, and ties go to the first node in the seed's order.
    Here nodes rank by the exact ΔF (integer, in milli-GPU × total weight), then by the BestFit score:
    lexicographic ``ΔF · 128 + bestfit``. It does worse than FGD on four of five traces: the
    quantisation plus ordered tie-break consolidates pods better.
    """

    def fresh_scores(self, state, pod, nodes):
        deltas, fits = self.node_deltas(state, pod, nodes)
        best = np.where(fits, deltas, np.iinfo(np.int64).min).argmax(axis=1)
        delta = deltas[np.arange(len(nodes)), best]
        packing = best_fit_scores(state.cpu_free[nodes], state.gpu_free_total[nodes], pod)
        return delta * 128 + packing, best


class FgdMemScorer(FgdScorer):
    """Ours, "fgd-mem": FGD with a memory-aware fragmentation measure and a consolidating tie-break.

    FGD judges whether a typical pod still fits a node by its GPU and CPU only; on the openb nodes
    memory binds too (a G2 node has 48 GiB per GPU, the median whole-GPU pod asks 47 GiB). Here a
    typical pod also needs its memory (:func:`fragmentation_model` with ``memory_aware``). Among the
    nodes with the best FGD score we prefer one already running GPU pods over an idle one, then the
    seed's node order: ``score = 2 · fgd + [node in use]``.
    """

    def score(self, state, pod, nodes, rng):
        scores, gpus = super().score(state, pod, nodes, rng)
        in_use = state.gpu_full_count[nodes] < state.cluster.gpu_count[nodes]
        return scores * 2 + in_use, gpus


@dataclass(frozen=True)
class Policy:
    """A registered placement policy: ``make(cluster, workload)`` builds its scorer for one replay."""

    name: str
    description: str
    make: Callable[[Cluster, Workload], Scorer]
    published_label: str | None = None  # its name in the FGD expected-results CSV


def _make_fgd(cls: type[FgdScorer], memory_aware: bool = False) -> Callable[[Cluster, Workload], Scorer]:
    def make(cluster: Cluster, workload: Workload) -> Scorer:
        return cls(fragmentation_model(typical_pods(workload), workload, memory_aware), cluster)

    return make


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("random", "a uniformly random feasible node (and GPU)", lambda c, w: RandomScorer(), "01-Random"),
        Policy("dotprod", "Tetris dot product of free and requested (CPU, GPU)", lambda c, w: DotProductScorer(),
               "02-DotProd"),
        Policy("gpuclustering", "keep pods of the same GPU class on the same nodes",
               lambda c, w: GpuClusteringScorer(), "03-GpuClustering"),
        Policy("gpupacking", "fill shared GPUs, then used nodes, then idle nodes", lambda c, w: GpuPackingScorer(),
               "04-GpuPacking"),
        Policy("bestfit", "the node left with the least free CPU and GPU", lambda c, w: BestFitScorer(),
               "05-BestFit"),
        Policy("fgd", "Fragmentation Gradient Descent (Weng et al., ATC'23)", _make_fgd(FgdScorer), "06-FGD"),
        Policy("fgd-pack", "FGD's exact fragment gradient, BestFit tie-break", _make_fgd(FgdPackScorer)),
        Policy("fgd-mem", "ours: FGD with memory-aware typical pods, busy nodes first on ties",
               _make_fgd(FgdMemScorer, True)),
    )
}
"""Policies by name (lower case)."""


def get_policy(name: str) -> Policy:
    key = name.strip().lower()
    if key not in POLICIES:
        raise KeyError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    return POLICIES[key]


# --------------------------------------------------------------------------------------------
# The experiment: workload top-up, arrival order, replay, allocation curve
# --------------------------------------------------------------------------------------------


def arrival_order(workload: Workload, cluster_gpu_milli: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Pod indices in arrival order: every pod of the list, shuffled, then random copies until the
    requested GPU reaches ``ratio`` × cluster capacity.

    As in the reference simulator (``SortClusterPods`` then ``TunePodsByNodeTotalResource``): pods
    are sorted by name and shuffled; copies are drawn uniformly with replacement and appended while
    ``requested + gpu_milli ≤ ratio × capacity`` (the check uses the per-GPU share, as upstream). If
    the list already asks for more, random pods are removed until it fits.
    """
    by_name = np.argsort(np.asarray(workload.names, dtype=object).astype(str), kind="stable")
    order = by_name[rng.permutation(len(by_name))]
    requested = int(workload.gpu_milli_total.sum())
    target = ratio * cluster_gpu_milli
    if ratio <= 0:
        return order
    if requested > target:
        keep = list(order)
        while requested > target and keep:
            removed = keep.pop(int(rng.integers(len(keep))))
            requested -= int(workload.gpu_milli_total[removed])
        return np.asarray(keep, dtype=np.int64)
    copies: list[int] = []
    per_gpu = workload.gpu_milli
    total = workload.gpu_milli_total
    while True:
        pick = int(by_name[rng.integers(len(by_name))])
        if requested + int(per_gpu[pick]) > target:
            break
        requested += int(total[pick])
        copies.append(pick)
    return np.concatenate([order, np.asarray(copies, dtype=np.int64)])


@dataclass(frozen=True)
class ReplayResult:
    """One replay: after each arriving pod, the GPU requested so far and the GPU allocated."""

    policy: str
    seed: int
    pod_index: np.ndarray  # index into the workload of each arrival
    node_index: np.ndarray  # node chosen (-1: not placed)
    gpu_index: np.ndarray  # GPU slot for sharing pods (-1 otherwise)
    arrived_gpu_milli: np.ndarray
    allocated_gpu_milli: np.ndarray
    cluster_gpu_milli: int

    @property
    def allocated_pct_at_end(self) -> float:
        return 100.0 * float(self.allocated_gpu_milli[-1]) / self.cluster_gpu_milli


def _pick_max(scores: np.ndarray, node_rank: np.ndarray) -> int:
    """Position of the best score; ties go to the node ranked first in the seed's node order."""
    best = np.flatnonzero(scores == scores.max())
    return int(best[0]) if len(best) == 1 else int(best[node_rank[best].argmin()])


TIE_BREAKS = ("node-order", "random")


def replay(cluster: Cluster, workload: Workload, policy: str | Policy, seed: int,
           inflation_ratio: float = DEFAULT_INFLATION_RATIO, tie_break: str = "node-order") -> ReplayResult:
    """Replay the workload (topped up to ``inflation_ratio`` × capacity, shuffled by ``seed``) on an
    empty cluster with one policy. Pods arrive one by one and never leave.

    Equal best scores go to the first node in a per-seed random node order ("node-order", as the
    reference simulator's renamed nodes and forked scheduler do), or to a uniformly random one of
    them ("random", stock Kubernetes ``selectHost``).
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie_break {tie_break!r}; choose from {', '.join(TIE_BREAKS)}")
    chosen = get_policy(policy) if isinstance(policy, str) else policy
    rng = np.random.default_rng(seed)
    order = arrival_order(workload, cluster.total_gpu_milli, inflation_ratio, rng)
    node_rank = rng.permutation(cluster.n_nodes)
    scorer = chosen.make(cluster, workload)
    state = ClusterState.empty(cluster)
    n = len(order)
    node_index = np.full(n, -1, dtype=np.int64)
    gpu_index = np.full(n, -1, dtype=np.int64)
    arrived = np.cumsum(workload.gpu_milli_total[order])
    allocated = np.zeros(n, dtype=np.int64)
    requests = [pod_request(workload, int(i)) for i in range(workload.n_pods)]
    for t, pod_idx in enumerate(order):
        pod = requests[pod_idx]
        nodes = feasible_nodes(state, pod, workload.spec_allowed)
        if len(nodes):
            scores, gpus = scorer.score(state, pod, nodes, rng)
            if tie_break == "random":
                best = np.flatnonzero(scores == scores.max())
                pick = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
            else:
                pick = _pick_max(scores, node_rank[nodes])
            node = int(nodes[pick])
            gpu = -1
            if pod.is_gpu_share:
                if gpus is not None:
                    gpu = int(gpus[pick])
                elif scorer.gpu_selection == "random":
                    gpu = int(rng.choice(np.flatnonzero(state.gpu_free[node] >= pod.gpu_milli)))
                else:
                    gpu = int(best_fit_gpu(state.gpu_free[node], pod.gpu_milli))
            allocate(state, node, pod, gpu)
            node_index[t] = node
            gpu_index[t] = gpu
        allocated[t] = state.allocated_gpu_milli
    return ReplayResult(
        policy=chosen.name,
        seed=seed,
        pod_index=order,
        node_index=node_index,
        gpu_index=gpu_index,
        arrived_gpu_milli=arrived,
        allocated_gpu_milli=allocated,
        cluster_gpu_milli=cluster.total_gpu_milli,
    )


def allocation_curve(result: ReplayResult, levels_pct: Iterable[int] = CURVE_LEVELS_PCT) -> np.ndarray:
    """Allocated % of cluster GPU at each arrived-load level, as the FGD artifact computes it.

    Each arrival is an event with arrived % = requested/capacity and allocated % (rounded to 0.01);
    level x takes the mean allocated % of the events whose arrived % rounds to x (or, if none, those
    within x ± 1); NaN if still none. Reference: ``merge_alloc_discrete`` of the FGD artifact.
    """
    arrived_pct = np.round(100.0 * result.arrived_gpu_milli / result.cluster_gpu_milli)
    allocated_pct = np.round(100.0 * result.allocated_gpu_milli / result.cluster_gpu_milli, 2)
    out = []
    for level in levels_pct:
        hit = arrived_pct == level
        if not hit.any():
            hit = (arrived_pct >= level - 1) & (arrived_pct <= level + 1)
        out.append(round(float(allocated_pct[hit].mean()), 2) if hit.any() else math.nan)
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class ReplaySummary:
    """Median allocation curve over seeds, and each seed's curve."""

    policy: str
    seeds: tuple[int, ...]
    levels_pct: tuple[int, ...]
    curves_pct: np.ndarray  # [seed, level]
    median_pct: np.ndarray = field(repr=False)

    def allocated_at(self, level_pct: int) -> float:
        return float(self.median_pct[self.levels_pct.index(level_pct)])

    def unallocated_at(self, level_pct: int = 100) -> float:
        """Unallocated share (%) of cluster GPU at an arrived level: ``100 − median allocated``."""
        return 100.0 - self.allocated_at(level_pct)


def _replay_curve(args: tuple[Cluster, Workload, str, int, float, str]) -> np.ndarray:
    cluster, workload, policy, seed, ratio, tie_break = args
    return allocation_curve(replay(cluster, workload, policy, seed, ratio, tie_break))


def replay_seeds(cluster: Cluster, workload: Workload, policy: str, seeds: Sequence[int],
                 inflation_ratio: float = DEFAULT_INFLATION_RATIO, processes: int = 1,
                 on_seed_done: Callable[[int], None] | None = None, tie_break: str = "node-order") -> ReplaySummary:
    """Replay one policy for each seed (optionally over a process pool) and take the median curve."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie_break {tie_break!r}; choose from {', '.join(TIE_BREAKS)}")
    jobs = [(cluster, workload, get_policy(policy).name, int(s), inflation_ratio, tie_break) for s in seeds]
    curves: list[np.ndarray] = []
    if processes > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(processes, len(jobs))) as pool:
            for seed, curve in zip(seeds, pool.map(_replay_curve, jobs), strict=True):
                curves.append(curve)
                if on_seed_done:
                    on_seed_done(int(seed))
    else:
        for job in jobs:
            curves.append(_replay_curve(job))
            if on_seed_done:
                on_seed_done(job[3])
    stacked = np.vstack(curves)
    median = np.full(stacked.shape[1], np.nan)
    reached = np.isfinite(stacked).any(axis=0)
    median[reached] = np.nanmedian(stacked[:, reached], axis=0)
    return ReplaySummary(
        policy=get_policy(policy).name,
        seeds=tuple(int(s) for s in seeds),
        levels_pct=CURVE_LEVELS_PCT,
        curves_pct=stacked,
        median_pct=np.round(median, 2),
    )
