"""The FGD experiment replay: GPU-sharing pods placed on heterogeneous GPU nodes (the openb traces).

This package reproduces the experiment of Weng et al., "Beware of Fragmentation: Scheduling
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

It is a study of its own, separate from the fleet scheduler `tokenfab.sched` (whose `Scheduler`,
`Placement`, `Request` and placement policies serve the twin and the control plane). Its rooms:

- `cluster`: the nodes (`Cluster`) and pods (`PodSet`) as arrays, a pod's ask (`PodRequest`) and the
  replay's mutable occupancy (`ClusterState`, `feasible_nodes`, `allocate`);
- `fragmentation`: FGD's typical pods and fragmentation measure;
- `scorers`: the node-scoring policies (`REPLAY_POLICIES`, `replay_policy`);
- `replay`: arrival order, `replay`, `allocation_curve`, `replay_seeds`.

Everything here is pure and deterministic for a given seed: no I/O, no global random state.
"""

from tokenfab.fgd.cluster import (
    MAX_NODE_SCORE,
    MAX_SPEC_CPU_MILLI,
    MAX_SPEC_GPU_MILLI,
    Cluster,
    ClusterState,
    PodRequest,
    PodSet,
    allocate,
    best_fit_gpu,
    feasible_nodes,
    pod_request,
)
from tokenfab.fgd.fragmentation import (
    DEFAULT_TYPICAL_POD_POPULARITY,
    FragmentationModel,
    TypicalPods,
    fragment_from_usable,
    fragment_scaled,
    fragmentation_model,
    sigmoid_score,
    typical_pods,
    usable_gpu,
)
from tokenfab.fgd.replay import (
    CURVE_LEVELS_PCT,
    DEFAULT_INFLATION_RATIO,
    TIE_BREAKS,
    ReplayResult,
    ReplaySummary,
    allocation_curve,
    arrival_order,
    replay,
    replay_seeds,
)
from tokenfab.fgd.scorers import (
    REPLAY_POLICIES,
    BestFitScorer,
    DotProductScorer,
    FgdMemScorer,
    FgdPackScorer,
    FgdScorer,
    GpuClusteringScorer,
    GpuPackingScorer,
    RandomScorer,
    ReplayPolicy,
    Scorer,
    best_fit_scores,
    dot_product_scores,
    gpu_clustering_scores,
    gpu_packing_scores,
    replay_policy,
)
from tokenfab.units import MILLI_PER_GPU

__all__ = [
    "CURVE_LEVELS_PCT",
    "DEFAULT_INFLATION_RATIO",
    "DEFAULT_TYPICAL_POD_POPULARITY",
    "MILLI_PER_GPU",
    "MAX_NODE_SCORE",
    "MAX_SPEC_CPU_MILLI",
    "MAX_SPEC_GPU_MILLI",
    "REPLAY_POLICIES",
    "TIE_BREAKS",
    "BestFitScorer",
    "Cluster",
    "ClusterState",
    "DotProductScorer",
    "FgdMemScorer",
    "FgdPackScorer",
    "FgdScorer",
    "FragmentationModel",
    "GpuClusteringScorer",
    "GpuPackingScorer",
    "PodRequest",
    "PodSet",
    "RandomScorer",
    "ReplayPolicy",
    "ReplayResult",
    "ReplaySummary",
    "Scorer",
    "TypicalPods",
    "allocate",
    "allocation_curve",
    "arrival_order",
    "best_fit_gpu",
    "best_fit_scores",
    "dot_product_scores",
    "feasible_nodes",
    "fragment_from_usable",
    "fragment_scaled",
    "fragmentation_model",
    "gpu_clustering_scores",
    "gpu_packing_scores",
    "pod_request",
    "replay",
    "replay_policy",
    "replay_seeds",
    "sigmoid_score",
    "typical_pods",
    "usable_gpu",
]
