"""The experiment: workload top-up, arrival order, replay, allocation curve, and replays over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tokenfab.fgd.cluster import (
    Cluster,
    ClusterState,
    PodSet,
    allocate,
    best_fit_gpu,
    feasible_nodes,
    pod_request,
)
from tokenfab.fgd.scorers import ReplayPolicy, replay_policy

DEFAULT_INFLATION_RATIO = 1.3
"""The experiment tops the workload up to 1.3 × the cluster GPU capacity."""
CURVE_LEVELS_PCT = tuple(range(0, 131))
"""Arrived-load levels (percent of cluster GPU capacity) of the published allocation curves."""


# --------------------------------------------------------------------------------------------
# The experiment: workload top-up, arrival order, replay, allocation curve
# --------------------------------------------------------------------------------------------


def arrival_order(
    workload: PodSet, cluster_gpu_milli: int, ratio: float, rng: np.random.Generator
) -> np.ndarray:
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


def replay(
    cluster: Cluster,
    workload: PodSet,
    policy: str | ReplayPolicy,
    seed: int,
    inflation_ratio: float = DEFAULT_INFLATION_RATIO,
    tie_break: str = "node-order",
) -> ReplayResult:
    """Replay the workload (topped up to ``inflation_ratio`` × capacity, shuffled by ``seed``) on an
    empty cluster with one policy. Pods arrive one by one and never leave.

    Equal best scores go to the first node in a per-seed random node order ("node-order", as the
    reference simulator's renamed nodes and forked scheduler do), or to a uniformly random one of
    them ("random", stock Kubernetes ``selectHost``).
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie_break {tie_break!r}; choose from {', '.join(TIE_BREAKS)}")
    chosen = replay_policy(policy) if isinstance(policy, str) else policy
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


def _replay_curve(args: tuple[Cluster, PodSet, str, int, float, str]) -> np.ndarray:
    cluster, workload, policy, seed, ratio, tie_break = args
    return allocation_curve(replay(cluster, workload, policy, seed, ratio, tie_break))


def replay_seeds(
    cluster: Cluster,
    workload: PodSet,
    policy: str,
    seeds: Sequence[int],
    inflation_ratio: float = DEFAULT_INFLATION_RATIO,
    processes: int = 1,
    on_seed_done: Callable[[int], None] | None = None,
    tie_break: str = "node-order",
) -> ReplaySummary:
    """Replay one policy for each seed (optionally over a process pool) and take the median curve."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie_break {tie_break!r}; choose from {', '.join(TIE_BREAKS)}")
    jobs = [
        (cluster, workload, replay_policy(policy).name, int(s), inflation_ratio, tie_break) for s in seeds
    ]
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
        policy=replay_policy(policy).name,
        seeds=tuple(int(s) for s in seeds),
        levels_pct=CURVE_LEVELS_PCT,
        curves_pct=stacked,
        median_pct=np.round(median, 2),
    )
