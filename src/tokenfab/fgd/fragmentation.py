"""FGD's fragmentation measure: typical pods, and the GPU a node cannot give to them (Weng et al., ATC'23)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.fgd.cluster import MAX_NODE_SCORE, PodSet
from tokenfab.units import MILLI_PER_GPU

DEFAULT_TYPICAL_POD_POPULARITY = 0.95
"""FGD's "typical pods" are the most frequent pod shapes that cover 95 % of the pods."""


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


def typical_pods(workload: PodSet, popularity: float = DEFAULT_TYPICAL_POD_POPULARITY) -> TypicalPods:
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


def fragmentation_model(
    typical: TypicalPods, workload: PodSet, memory_aware: bool = False
) -> FragmentationModel:
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
        shape_rows = np.stack(
            [typical.cpu_milli, typical.gpu_milli, typical.num_gpu, typical.spec_code], axis=1
        )[is_gpu]
        pod_rows = np.stack(
            [workload.cpu_milli, workload.gpu_milli, workload.num_gpu, workload.spec_code], axis=1
        )
        match = (pod_rows[:, None, :] == shape_rows[None, :, :]).all(axis=2)  # [pod, typical GPU shape]
        pod_idx, shape_idx = np.nonzero(match)
        cpu, weight, mem = cpu[shape_idx], np.ones(len(pod_idx), dtype=np.int64), workload.memory_mib[pod_idx]
        group_of = group_of[shape_idx]
    cpu_thresholds = np.unique(cpu)
    mem_thresholds = np.unique(mem) if memory_aware else np.zeros(0, dtype=np.int64)
    table = np.zeros((len(cpu_thresholds) + 1, len(mem_thresholds) + 1, len(groups)), dtype=np.int64)
    cpu_level = np.searchsorted(cpu_thresholds, cpu, side="left") + 1  # pod k counts once c >= its cpu
    mem_level = (
        np.searchsorted(mem_thresholds, mem, side="left") + 1 if memory_aware else np.zeros(len(cpu), int)
    )
    np.add.at(table, (cpu_level, mem_level, group_of), weight)
    table = np.cumsum(np.cumsum(table, axis=0), axis=1)
    access = (
        workload.spec_allowed[groups[:, 2]].T
        if len(groups)
        else np.zeros((workload.spec_allowed.shape[1], 0), dtype=bool)
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


def fragment_from_usable(
    model: FragmentationModel,
    total_free: np.ndarray,
    count_usable: np.ndarray,
    usable_milli: np.ndarray,
    cpu_free: np.ndarray,
    model_code: np.ndarray,
    mem_free: np.ndarray | None = None,
) -> np.ndarray:
    """``F × total_weight = G·Σw − Σ_j A_μj [cnt_j ≥ n_j] U_j W_j(c, m)`` from the per-group parts."""
    cpu_level = np.searchsorted(model.cpu_thresholds, cpu_free, side="right")
    if len(model.mem_thresholds) and mem_free is not None:
        mem_level = np.searchsorted(model.mem_thresholds, mem_free, side="right")
    else:
        mem_level = np.zeros_like(cpu_level)
    weight = model.weight_table[cpu_level, mem_level]  # (..., J)
    satisfied = (count_usable >= model.group_num_gpu) & model.access[model_code]
    return total_free * model.total_weight - (satisfied * usable_milli * weight).sum(axis=-1)


def fragment_scaled(
    model: FragmentationModel,
    gpu_free: np.ndarray,
    cpu_free: np.ndarray,
    model_code: np.ndarray,
    mem_free: np.ndarray | None = None,
) -> np.ndarray:
    """FGD's expected GPU fragment of node states, in milli-GPU × ``model.total_weight`` (exact).

    ``gpu_free`` has shape ``(..., G)``; ``cpu_free``, ``model_code`` (and ``mem_free``, used only by
    a memory-aware model) broadcast to ``(...)``.
    """
    gpu_free = np.asarray(gpu_free, dtype=np.int64)
    count_usable, usable_milli = usable_gpu(model, gpu_free)
    return fragment_from_usable(
        model, gpu_free.sum(axis=-1), count_usable, usable_milli, cpu_free, model_code, mem_free
    )


def sigmoid_score(delta_scaled: np.ndarray, total_weight: int) -> np.ndarray:
    """FGD node score: ``floor(100 · σ(ΔF / 1000))``, ΔF = fragment before − after (milli-GPU).

    Integer truncation as in the reference ``FGDScorePlugin`` (many nodes tie; see :func:`replay` for ties).
    """
    x = np.asarray(delta_scaled, dtype=np.float64) / (float(total_weight) * MILLI_PER_GPU)
    with np.errstate(over="ignore"):
        return np.floor(MAX_NODE_SCORE / (1.0 + np.exp(-x))).astype(np.int64)
