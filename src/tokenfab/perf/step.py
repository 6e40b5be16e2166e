"""Time of one serving step from its work and the fitted efficiency factors (shared by the curve and the
batch predictor).

A step of one pipeline stage on one GPU costs, per operator class (dense GEMMs, routed-expert GEMMs,
attention core), the slower of its compute and its memory traffic, plus communication and overheads:

.. math::
    t = k_{eng}\\left(\\sum_{op}\\max\\left(\\frac{F_{op}}{\\eta_{op} P_{op}}, \\frac{B_{op}}{\\mu_{op} BW}\\right)
        + \\frac{T_{comm}}{\\lambda_{link}} + n_{coll}\\,\\alpha + t_0 + \\frac{L}{pp}\\,t_L\\,g_{eager}
        + S\\,t_{seq} + T_{moe}\\,t_{moe}\\right)

where the max is softened to the p-norm :math:`(t_c^p + t_m^p)^{1/p}` (compute and memory overlap
imperfectly near the ridge point), with :math:`P_{op}` the GPU's dense peak at the GEMM's precision (attention at BF16), :math:`T_{comm}` the
collectives' time at peak link bandwidth, :math:`n_{coll}` their count, :math:`S` sequences in the step,
:math:`T_{moe}` tokens per GPU through MoE layers (routing, permutation and load imbalance) and
:math:`g_{eager}` the layer-overhead multiplier when the step runs outside a CUDA graph.

References
----------
.. [1] Williams, Waterman, Patterson, "Roofline", CACM 52(4), 2009.
.. [2] Leviathan, Kalman, Matias, "Fast Inference from Transformers via Speculative Decoding", ICML 2023.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.catalog.models import Gpu, LlmModel, Precision, System
from tokenfab.perf.parallelism import collective_time_per_step_s
from tokenfab.perf.roofline import step_work_per_gpu

if TYPE_CHECKING:
    from tokenfab.units import Floats

WORK_KEYS = (
    "gemm_flops",
    "gemm_bytes",
    "moe_flops",
    "moe_bytes",
    "attn_flops",
    "attn_bytes",
    "comm_nvlink_s",
    "comm_scaleout_s",
    "collectives",
    "layers",
    "sequences",
    "moe_tokens",
)
"""Per-GPU work of one step, as arrays (FLOPs, bytes, seconds at peak link rate, counts)."""


def collectives_per_step(model: LlmModel, tp: Floats, ep: Floats, pp: Floats) -> np.ndarray:
    """Collectives one stage launches per step: per layer an all-reduce after attention when ``tp > 1``,
    and after the FFN an all-reduce (dense) or dispatch + combine all-to-all (MoE, ``ep > 1``) [-]."""
    tp = np.asarray(tp, dtype=float)
    ep = np.asarray(ep, dtype=float)
    n = np.maximum(tp, ep)
    per_layer = (tp > 1).astype(float)
    if model.is_moe:
        moe_fraction = (model.num_layers - model.dense_layers) / model.num_layers
        moe = 2.0 * (ep > 1) + (n / ep > 1)
        per_layer = per_layer + moe_fraction * moe + (1.0 - moe_fraction) * (tp > 1)
    else:
        per_layer = per_layer + (tp > 1)
    per_step: np.ndarray = per_layer * model.num_layers / np.asarray(pp, dtype=float)
    return per_step


def phase_work(
    model: LlmModel,
    precision: Precision,
    system: System,
    gpu: Gpu,
    decode_seqs: Floats,
    decode_context: Floats,
    prefill_tokens: Floats,
    prefill_context: Floats,
    attn_tp: Floats,
    gpus_per_stage: Floats,
    ep: Floats,
    pp: Floats,
    draft_tokens: Floats = 0.0,
) -> dict[str, np.ndarray]:
    """Work of one step on one GPU (`WORK_KEYS`), for arrays of layouts and loads.

    `decode_seqs` sequences decode (each verifying ``draft_tokens`` speculative tokens as well: their
    GEMM and attention FLOPs count, the KV cache is read once per sequence) and `prefill_tokens` prompt
    tokens are prefilled. Attention runs `attn_tp`-way tensor parallel (``gpus_per_stage / attn_tp``-way
    data parallel), routed experts `ep`-way expert parallel over the stage.
    """
    seqs = np.asarray(decode_seqs, dtype=float)
    verify = 1.0 + np.asarray(draft_tokens, dtype=float)
    dec_tokens = seqs * verify
    pre = np.asarray(prefill_tokens, dtype=float)
    n = np.asarray(gpus_per_stage, dtype=float)
    pp = np.asarray(pp, dtype=float)
    ep = np.asarray(ep, dtype=float)
    w = step_work_per_gpu(model, precision, dec_tokens, decode_context, pre, prefill_context, attn_tp, n, pp)
    tokens = dec_tokens + pre
    comm = collective_time_per_step_s(
        model, precision, system, gpu, tokens, attn_tp, np.maximum(ep, 1), pp, 1.0, 0.0
    )
    scaleout = n * pp > system.gpus_per_nvlink_domain
    kv_share = np.where(dec_tokens > 0, (seqs + pre) / np.maximum(dec_tokens + pre, 1e-9), 1.0)
    moe_tokens = tokens / (n * pp) if model.is_moe else np.zeros_like(tokens)
    return {
        "gemm_flops": w.linear_flops,
        "gemm_bytes": w.linear_bytes,
        "moe_flops": w.expert_flops,
        "moe_bytes": w.expert_bytes,
        "attn_flops": w.attention_flops,
        "attn_bytes": w.attention_bytes * kv_share,
        "comm_nvlink_s": np.where(scaleout, 0.0, comm),
        "comm_scaleout_s": np.where(scaleout, comm, 0.0),
        "collectives": collectives_per_step(model, attn_tp, np.maximum(ep, 1), pp) * (n > 1),
        "layers": np.broadcast_to(model.num_layers / pp, tokens.shape).astype(float),
        "sequences": seqs + (pre > 0),
        "moe_tokens": moe_tokens,
    }


def step_components(
    work: dict[str, np.ndarray], peak: Mapping[str, Floats], v: Mapping[str, Floats]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compute times, memory times, other time) of a step [s], engine factor applied.

    Compute and memory times are stacked per operator class (dense GEMM, routed experts, attention);
    `other` is communication and overheads. ``v`` holds the parameter values (``gemm, moe_gemm, attn,
    mem, moe_mem`` efficiencies, ``link_nvlink, link_scaleout``, ``coll_lat_s, step_s, layer_s, seq_s,
    moe_tok_s, eager, engine``), ``peak`` the GPU's ``gemm_flops``, ``attn_flops`` (BF16) and ``bw`` per second.
    """
    bw, k = peak["bw"], v["engine"]
    tc = np.stack(
        [
            work["gemm_flops"] / (v["gemm"] * peak["gemm_flops"]),
            work["moe_flops"] / (v["moe_gemm"] * peak["gemm_flops"]),
            work["attn_flops"] / (v["attn"] * peak["attn_flops"]),
        ]
    )
    tm = np.stack(
        [
            work["gemm_bytes"] / (v["mem"] * bw),
            work["moe_bytes"] / (v["moe_mem"] * bw),
            work["attn_bytes"] / (v["mem"] * bw),
        ]
    )
    # Compute and memory traffic overlap imperfectly: a step takes the p-norm of the two instead of the
    # larger; the excess is kept apart (in `other`) so the busy times the power model sees stay the roofline's.
    p = v["overlap_p"]
    stretch = ((tc**p + tm**p) ** (1.0 / p) - np.maximum(tc, tm)).sum(axis=0)
    other = work["comm_nvlink_s"] / v["link_nvlink"] + work["comm_scaleout_s"] / v["link_scaleout"]
    other = (
        other
        + work["collectives"] * v["coll_lat_s"]
        + v["step_s"]
        + work["layers"] * v["layer_s"] * v["eager"]
    )
    other = other + work["sequences"] * v["seq_s"] + work["moe_tokens"] * v["moe_tok_s"] + stretch
    return k * tc, k * tm, k * other


def step_time_s(
    work: dict[str, np.ndarray], peak: Mapping[str, Floats], v: Mapping[str, Floats]
) -> np.ndarray:
    """Step time [s]: :math:`\\sum_{op} \\max(t_c, t_m) + t_{other}` from `step_components`."""
    tc, tm, other = step_components(work, peak, v)
    step_s: np.ndarray = np.maximum(tc, tm).sum(axis=0) + other
    return step_s
