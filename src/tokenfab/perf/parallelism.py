"""Tensor, expert and pipeline parallelism: collective time over NVLink or the scale-out NIC, weights
and KV cache per GPU, and the concurrency the KV cache leaves room for.

A replica is ``pp`` pipeline stages of ``n = max(tp, ep)`` GPUs. Inside a stage attention runs ``tp``-way
tensor parallel and ``n / tp``-way data parallel; routed experts run ``ep``-way expert parallel and
``n / ep``-way tensor parallel. Groups that fit in one NVLink domain talk over NVLink; larger ones over the
scale-out NICs.

References
----------
.. [1] Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication Operations in MPICH",
       IJHPCA 19(1), 2005 (ring all-reduce moves 2(g-1)/g of the buffer).
.. [2] Kwon et al., "Efficient Memory Management for LLM Serving with PagedAttention", SOSP 2023.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tokenfab.catalog.models import Gpu, LlmModel, Precision, System
from tokenfab.perf.roofline import ACTIVATION_BYTES, kv_bytes_per_sequence, weight_bytes

if TYPE_CHECKING:
    from tokenfab.units import Floats

HBM_USABLE_FRACTION = 0.9
"""Share of HBM a serving engine gives to weights + KV cache (vLLM's default gpu_memory_utilization) [-]."""

ACTIVATION_RESERVE_GB = 4.0
"""Workspace kept free for activations, CUDA graphs and the runtime, per GPU [GB]."""


def link_bandwidth_gb_s(system: System, gpu: Gpu, group_gpus: Floats) -> np.ndarray:
    """One-direction bandwidth per GPU for a collective over `group_gpus` GPUs [GB/s].

    NVLink inside one NVLink domain, the GPU's scale-out NICs beyond it.

    .. math:: BW = \\begin{cases} BW_{NVLink} & g \\le g_{domain} \\\\
              n_{NIC}\\,r_{NIC}/8 & \\text{otherwise} \\end{cases}
    """
    g = np.asarray(group_gpus, dtype=float)
    scaleout = system.scaleout_nics_per_gpu * system.scaleout_nic_gbps / 8.0
    return np.where(g <= system.gpus_per_nvlink_domain, gpu.nvlink_bandwidth_gb_s, scaleout)


def allreduce_time_s(
    message_bytes: Floats, group_gpus: Floats, bandwidth_gb_s: Floats, efficiency: float, latency_us: float
) -> np.ndarray:
    """Ring all-reduce of `message_bytes` over `group_gpus` GPUs [s] [1]_.

    .. math:: t = \\frac{2 (g-1)}{g} \\frac{M}{\\eta\\,BW} + \\alpha \\quad (0 \\text{ when } g = 1)
    """
    g = np.asarray(group_gpus, dtype=float)
    t = (
        2.0 * (g - 1.0) / g * np.asarray(message_bytes) / (efficiency * bandwidth_gb_s * 1e9)
        + latency_us * 1e-6
    )
    return np.where(g > 1, t, 0.0)


def alltoall_time_s(
    message_bytes: Floats, group_gpus: Floats, bandwidth_gb_s: Floats, efficiency: float, latency_us: float
) -> np.ndarray:
    """All-to-all where each GPU sends `message_bytes` in total, spread over the group [s].

    .. math:: t = \\frac{g-1}{g} \\frac{M}{\\eta\\,BW} + \\alpha \\quad (0 \\text{ when } g = 1)
    """
    g = np.asarray(group_gpus, dtype=float)
    t = (g - 1.0) / g * np.asarray(message_bytes) / (efficiency * bandwidth_gb_s * 1e9) + latency_us * 1e-6
    return np.where(g > 1, t, 0.0)


def collective_time_per_step_s(
    model: LlmModel,
    precision: Precision,
    system: System,
    gpu: Gpu,
    tokens: Floats,
    tp: Floats,
    ep: Floats,
    pp: Floats,
    efficiency: float,
    latency_us: float,
) -> np.ndarray:
    """Communication time of one step of one pipeline stage [s].

    Per layer on the stage: one all-reduce after attention over the ``tp`` group; after the FFN another
    all-reduce (dense model, or MoE with ``ep = 1``) or an all-to-all dispatch and combine over the ``ep``
    group (each token goes to ``k`` experts; FP8 dispatch when serving in FP8/FP4). Between stages one
    point-to-point send of the activations.
    """
    tokens = np.asarray(tokens, dtype=float)
    tp = np.asarray(tp, dtype=float)
    ep = np.asarray(ep, dtype=float)
    pp = np.asarray(pp, dtype=float)
    n = np.maximum(tp, ep)
    dp = n / tp
    layers = model.num_layers / pp
    h = model.hidden_size
    tokens_per_tp_group = tokens / dp
    message = tokens_per_tp_group * h * ACTIVATION_BYTES
    bw_tp = link_bandwidth_gb_s(system, gpu, tp)
    attn_ar = allreduce_time_s(message, tp, bw_tp, efficiency, latency_us)
    if model.is_moe:
        moe_fraction = (model.num_layers - model.dense_layers) / model.num_layers
        dispatch_bytes = 1.0 if precision != Precision.bf16 else ACTIVATION_BYTES
        per_gpu_tokens = tokens / n
        a2a_bytes = per_gpu_tokens * model.active_experts * h
        bw_ep = link_bandwidth_gb_s(system, gpu, ep)
        a2a = alltoall_time_s(
            a2a_bytes * dispatch_bytes, ep, bw_ep, efficiency, latency_us
        ) + alltoall_time_s(a2a_bytes * ACTIVATION_BYTES, ep, bw_ep, efficiency, latency_us)
        # Expert tensor parallelism inside each expert group (n / ep GPUs) reduces like a dense FFN.
        expert_tp = n / ep
        ffn_ar = allreduce_time_s(message, expert_tp, bw_tp, efficiency, latency_us)
        ffn = moe_fraction * (a2a + ffn_ar) + (1.0 - moe_fraction) * allreduce_time_s(
            message, tp, bw_tp, efficiency, latency_us
        )
    else:
        ffn = allreduce_time_s(message, tp, bw_tp, efficiency, latency_us)
    per_layer = attn_ar + ffn
    # Pipeline stages: in the NVLink domain when the whole replica fits, else over the NIC.
    bw_pp = link_bandwidth_gb_s(system, gpu, n * pp)
    p2p = np.where(
        pp > 1, tokens * h * ACTIVATION_BYTES / (efficiency * bw_pp * 1e9) + latency_us * 1e-6, 0.0
    )
    time_s: np.ndarray = layers * per_layer + p2p
    return time_s


def weight_bytes_per_gpu(
    model: LlmModel, precision: Precision, tp: Floats, ep: Floats, pp: Floats
) -> np.ndarray:
    """Weights one GPU holds [B]: non-expert weights split ``tp`` ways, experts over the whole stage.

    .. math:: W_{GPU} = \\frac{1}{pp}\\left(\\frac{W_{dense}}{tp} + \\frac{W_{experts}}{\\max(tp, ep)}\\right)
    """
    tp = np.asarray(tp, dtype=float)
    n = np.maximum(tp, np.asarray(ep, dtype=float))
    dense, experts = weight_bytes(model, precision)
    weights: np.ndarray = (dense / tp + experts / n) / np.asarray(pp, dtype=float)
    return weights


def kv_capacity_bytes_per_gpu(
    gpu: Gpu,
    model: LlmModel,
    precision: Precision,
    tp: Floats,
    ep: Floats,
    pp: Floats,
    kv_fraction: float | None = None,
) -> np.ndarray:
    """HBM left for the KV cache on one GPU after weights and workspace [B] (negative: does not fit).

    .. math:: M_{KV} = u\\,M_{HBM} - W_{GPU} - M_{act}

    With an engine's `kv_fraction` (TensorRT-LLM ``kv_cache_free_gpu_mem_fraction``, SGLang
    ``mem_fraction_static``) the cache takes that share of what weights and workspace leave:
    :math:`M_{KV} = f\\,(M_{HBM} - W_{GPU} - M_{act})`.
    """
    free = gpu.hbm_gb * 1e9 - weight_bytes_per_gpu(model, precision, tp, ep, pp) - ACTIVATION_RESERVE_GB * 1e9
    if kv_fraction is not None:
        return np.where(free > 0, kv_fraction * free, free)
    return free - (1.0 - HBM_USABLE_FRACTION) * gpu.hbm_gb * 1e9


def max_concurrency_per_replica(
    gpu: Gpu,
    model: LlmModel,
    precision: Precision,
    tp: Floats,
    ep: Floats,
    pp: Floats,
    context_tokens: Floats,
    kv_fraction: float | None = None,
) -> np.ndarray:
    """Sequences of `context_tokens` whose KV cache fits in one replica (PagedAttention-style, [2]_).

    Each GPU stores its data-parallel share of the sequences, its share of the KV heads (GQA heads split
    ``min(tp, n_kv)`` ways; an MLA latent is not split) and its stage's layers:

    .. math:: C_{max} = \\left\\lfloor \\frac{M_{KV}\\,dp\\,s_{kv}\\,pp}{b_{seq}(c)} \\right\\rfloor
    """
    tp = np.asarray(tp, dtype=float)
    n = np.maximum(tp, np.asarray(ep, dtype=float))
    dp = n / tp
    kv_split = np.minimum(tp, model.num_kv_heads) if model.attention == "gqa" else np.ones_like(tp)
    free = kv_capacity_bytes_per_gpu(gpu, model, precision, tp, ep, pp, kv_fraction)
    per_seq = kv_bytes_per_sequence(model, precision, context_tokens)
    cap: np.ndarray = np.floor(np.maximum(free, 0.0) * dp * kv_split * np.asarray(pp, dtype=float) / per_seq)
    return cap
