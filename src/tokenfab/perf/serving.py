"""Serving layouts and modes for the token curve: one replica's step on arrays of (tp, ep, pp,
concurrency) layouts, aggregated serving, and disaggregated prefill and decode pools.

Step time comes from `perf.step` with the catalog's fitted parameters for the GPU generation, GEMM
precision and engine backend (`perf.params`); power and the power-capped clock from `perf.power`.

**aggregated**: prefill and decode share the GPUs (continuous batching with chunked prefill). Each
iteration decodes one token (``a`` with speculative decoding) for each of the ``C`` running sequences
and prefills :math:`C\\,ISL/OSL` prompt tokens on average:

.. math::
    ITL = \\frac{pp\\,t_{step}}{a}, \\qquad \\frac{tok}{s\\,GPU}\\Big|_{out} = \\frac{a\\,C}{pp\\,t_{step}\\,n\\,pp}

TTFT is one iteration that also carries the whole prompt plus half an iteration of waiting.

**disaggregated**: a prefill pool (its own layout, batches of about 8k prompt tokens) and a decode pool
sized so the prefill rate matches the decode pool's demand :math:`r_{out}\\,ISL/OSL`; TTFT adds the
KV-cache transfer over the scale-out NIC.

References
----------
.. [1] Zhong et al., "DistServe: Disaggregating Prefill and Decoding", OSDI 2024.
.. [2] Agrawal et al., "Sarathi-Serve: chunked prefills", OSDI 2024.
.. [3] DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv:2412.19437 (multi-token prediction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.catalog.models import Gpu, LlmModel, Precision, System
from tokenfab.catalog.perf_models import EngineProfile, PerfCalibration, PowerModel
from tokenfab.perf.calibration import calibration_for, compute_precision
from tokenfab.perf.engines import engine_profile, profiles_from
from tokenfab.perf.parallelism import link_bandwidth_gb_s, max_concurrency_per_replica
from tokenfab.perf.params import (
    MTP_DRAFT_TOKENS,
    PRECISIONS,
    ParamSet,
    from_catalog,
    from_theta,
    initial_theta,
)
from tokenfab.perf.power import power_model_for, step_clock_and_power
from tokenfab.perf.roofline import kv_bytes_per_sequence
from tokenfab.perf.step import phase_work, step_components

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog
    from tokenfab.units import Floats

PREFILL_BATCH_TOKENS = 8192
"""Prompt tokens per prefill-pool step in disaggregated serving (a compute-bound chunk) [-]."""

CONCURRENCY_GRID = np.unique(
    np.concatenate([np.round(np.geomspace(1, 65536, 56)), 2.0 ** np.arange(17)]).astype(int)
)
"""Sequences in flight per replica that the search tries [-] (beyond the engine's max batch only for
attention data parallelism, where the max batch holds per rank)."""

SPEC_DECODING = ("none", "mtp")

Pins = tuple[int | None, int | None, int | None, int | None]
"""A layout pinned by the caller: (tp, ep, pp, concurrency), None where the search chooses."""


@dataclass(frozen=True)
class ServingContext:
    """Everything a step needs besides the layout: entries, peaks, fitted values, engine limits."""

    model: LlmModel
    system: System
    gpu: Gpu
    cal: PerfCalibration
    """DVFS exponent (per architecture)"""
    power: PowerModel
    """board power against load: serving floor and compute / HBM weights (per architecture)"""
    precision: Precision
    peak: dict[str, float]
    values: dict[str, float]
    profile: EngineProfile
    power_cap_w: float | None
    draft_tokens: int
    tokens_per_step: float
    """accepted tokens per decode step (1 without speculative decoding)"""


def fitted_params(catalog: Catalog) -> ParamSet:
    """The catalog's fitted parameters (initial values when no fit is there)."""
    return from_catalog(catalog) or from_theta(initial_theta())


def serving_context(
    catalog: Catalog,
    llm: LlmModel,
    sys_: System,
    gpu: Gpu,
    prec: Precision,
    power_cap_w: float | None,
    engine: str,
    spec: str,
) -> ServingContext:
    params = fitted_params(catalog)
    profile = engine_profile(profiles_from(catalog), engine, "", "")
    cprec = compute_precision(gpu, prec)
    one = np.zeros(1, dtype=int)
    values = params.values(
        one + params.gen_index(gpu.architecture),
        one + PRECISIONS.index(prec),
        one + params.backend_index(profile.backend),
    )
    mtp = spec == "mtp"
    draft = int(params.meta.get("mtp_draft_tokens", MTP_DRAFT_TOKENS)) if mtp else 0
    return ServingContext(
        model=llm,
        system=sys_,
        gpu=gpu,
        cal=calibration_for(catalog, gpu.architecture),
        power=power_model_for(catalog, gpu.architecture),
        precision=prec,
        peak={
            "gemm_flops": gpu.dense_tflops[cprec] * 1e12,
            "attn_flops": gpu.dense_tflops.get(Precision.bf16, gpu.dense_tflops[cprec]) * 1e12,
            "bw": gpu.hbm_bandwidth_tb_s * 1e12,
        },
        values={k: float(v[0]) for k, v in values.items()},
        profile=profile,
        power_cap_w=power_cap_w,
        draft_tokens=draft,
        tokens_per_step=float(values["mtp_tokens"][0]) if mtp else 1.0,
    )


def step(
    ctx: ServingContext,
    decode_seqs: Floats,
    decode_context: Floats,
    prefill_tokens: Floats,
    prefill_context: Floats,
    tp: np.ndarray,
    ep: np.ndarray,
    pp: np.ndarray,
) -> dict[str, np.ndarray]:
    """Stage step time, board power and clock for arrays of layouts (``n = max(tp, ep)`` GPUs per stage)."""
    n = np.maximum(tp, ep)
    seqs = np.asarray(decode_seqs, dtype=float)
    draft = np.where(seqs > 0, ctx.draft_tokens, 0.0)
    work = phase_work(
        ctx.model,
        ctx.precision,
        ctx.system,
        ctx.gpu,
        seqs,
        decode_context,
        prefill_tokens,
        prefill_context,
        tp,
        n,
        ep,
        pp,
        draft,
    )
    v: dict[str, Floats] = dict(ctx.values)
    v["eager"] = np.where(seqs > ctx.profile.cuda_graph_max_batch, v["eager"], 1.0)
    tc, tm, other = step_components(work, ctx.peak, v)
    clock, t, power = step_clock_and_power(
        tc, tm, other, ctx.gpu, ctx.power, ctx.cal.clock_power_exponent, ctx.power_cap_w
    )
    return {"time_s": t, "power_w": power, "clock": clock}


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def layouts(
    ctx: ServingContext,
    tp_pin: int | None,
    ep_pin: int | None,
    pp_pin: int | None,
    conc_pin: int | None,
    conc_max: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tp, ep, pp, concurrency) arrays to evaluate; concurrency capped by the engine's max batch."""
    model, domain = ctx.model, ctx.system.gpus_per_nvlink_domain
    tps = [tp_pin] if tp_pin else [t for t in _powers_of_two(min(domain, 16)) if t <= model.num_heads]
    if model.is_moe:
        eps = [ep_pin] if ep_pin else _powers_of_two(min(max(domain, 8) * 8, 64, model.num_experts))
    else:
        eps = [ep_pin or 1]
    pps = [pp_pin] if pp_pin else [1, 2, 4]
    dp_max = max(eps) if model.is_moe else 1
    limit = (
        ctx.profile.max_batch * dp_max if conc_max is None else min(conc_max, ctx.profile.max_batch * dp_max)
    )
    concs = [conc_pin] if conc_pin else [c for c in CONCURRENCY_GRID.tolist() if c <= limit]
    grid = np.array(np.meshgrid(tps, eps, pps, concs, indexing="ij")).reshape(4, -1).astype(float)
    tp, ep, pp, conc = grid
    # The engine's max batch holds per attention rank: a replica runs max_batch x (n / tp) x pp sequences.
    keep: bool | np.ndarray = (
        conc_pin is not None or conc <= ctx.profile.max_batch * np.maximum(tp, ep) / tp * pp
    )
    if conc_max is not None:
        keep = keep & (conc <= conc_max)
    if model.is_moe and not ep_pin:
        # Expert groups beyond the NVLink domain only make sense as whole stages of wide EP.
        keep = keep & ((ep <= domain) | (tp == 1))
    keep = np.broadcast_to(keep, tp.shape)
    return tp[keep], ep[keep], pp[keep], conc[keep]


def _fitting(
    ctx: ServingContext, isl: float, osl: float, pins: Pins, conc_max: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp, ep, pp, conc = layouts(ctx, *pins, conc_max)
    kv_max = max_concurrency_per_replica(
        ctx.gpu, ctx.model, ctx.precision, tp, ep, pp, isl + osl, ctx.profile.kv_cache_fraction
    )
    fits = (conc <= kv_max) & (conc >= pp)
    if not ctx.model.is_moe:
        fits &= ep == 1
    return tp[fits], ep[fits], pp[fits], conc[fits], kv_max[fits]


def aggregated(
    ctx: ServingContext, isl: float, osl: float, pins: Pins, conc_max: int | None
) -> dict[str, np.ndarray]:
    """Columns of every fitting aggregated layout (`pins` = tp, ep, pp, concurrency or None)."""
    tp, ep, pp, conc, kv_max = _fitting(ctx, isl, osl, pins, conc_max)
    n = np.maximum(tp, ep)
    micro = conc / pp
    a = ctx.tokens_per_step
    decode_ctx = isl + osl / 2.0
    prefill_per_step = micro * isl / osl * a
    st = step(ctx, micro, decode_ctx, prefill_per_step, isl, tp, ep, pp)
    t_iter = pp * st["time_s"]
    first = step(ctx, micro, decode_ctx, prefill_per_step + isl, isl, tp, ep, pp)
    out_per_gpu = a * conc / t_iter / (n * pp)
    return {
        "mode": np.full(len(tp), "aggregated"),
        "tp": tp,
        "ep": ep,
        "pp": pp,
        "conc": conc,
        "kv_max": kv_max,
        "itl_s": t_iter / a,
        "ttft_s": pp * first["time_s"] + 0.5 * t_iter,
        "out_per_gpu": out_per_gpu,
        "decode_per_gpu": out_per_gpu,
        "prefill_per_gpu": out_per_gpu * isl / osl,
        "power_w": st["power_w"],
        "clock": st["clock"],
        "prefill_fraction": np.zeros(len(tp)),
    }


def prefill_pool(ctx: ServingContext, isl: int, ttft_ms: float | None) -> dict[str, float]:
    """Best prefill-pool layout: most prompt tokens/s per GPU whose single-prompt TTFT meets the target."""
    tp, ep, pp, _ = layouts(ctx, None, None, None, 1)
    kv_max = max_concurrency_per_replica(
        ctx.gpu, ctx.model, ctx.precision, tp, ep, pp, isl, ctx.profile.kv_cache_fraction
    )
    ok = kv_max >= 1
    tp, ep, pp = tp[ok], ep[ok], pp[ok]
    if not len(tp):
        return {}
    n = np.maximum(tp, ep)
    prompts = np.minimum(np.maximum(1.0, np.floor(PREFILL_BATCH_TOKENS / isl)), np.maximum(kv_max[ok], 1.0))
    batch = step(ctx, np.zeros_like(tp), 0.0, prompts * isl, isl, tp, ep, pp)
    single = step(ctx, np.zeros_like(tp), 0.0, float(isl), isl, tp, ep, pp)
    rate = prompts * isl / (pp * batch["time_s"]) / (n * pp)
    ttft = pp * single["time_s"]
    allowed = ttft * 1e3 <= ttft_ms if ttft_ms is not None else np.ones(len(tp), dtype=bool)
    pick = np.flatnonzero(allowed)
    i = pick[np.argmax(rate[pick])] if len(pick) else int(np.argmin(ttft))
    return {"rate": rate[i], "ttft_s": ttft[i], "power_w": batch["power_w"][i], "clock": batch["clock"][i]}


EMPTY_KEYS = (
    "tp",
    "ep",
    "pp",
    "conc",
    "kv_max",
    "itl_s",
    "ttft_s",
    "out_per_gpu",
    "decode_per_gpu",
    "prefill_per_gpu",
    "power_w",
    "clock",
    "prefill_fraction",
)


def disaggregated(
    ctx: ServingContext, isl: int, osl: int, pins: Pins, conc_max: int | None, ttft_ms: float | None
) -> dict[str, np.ndarray]:
    """Columns of every fitting decode-pool layout, each with the prefill pool it needs."""
    pre = prefill_pool(ctx, isl, ttft_ms)
    tp, ep, pp, conc, kv_max = _fitting(ctx, isl, osl, pins, conc_max)
    if not pre or not len(tp):
        return {k: np.zeros(0) for k in EMPTY_KEYS} | {"mode": np.zeros(0, dtype=str)}
    n = np.maximum(tp, ep)
    micro = conc / pp
    a = ctx.tokens_per_step
    st = step(ctx, micro, isl + osl / 2.0, 0.0, isl, tp, ep, pp)
    t_iter = pp * st["time_s"]
    decode_per_gpu = a * conc / t_iter / (n * pp)
    prefill_gpus_per_decode_gpu = decode_per_gpu * isl / osl / pre["rate"]
    fraction = prefill_gpus_per_decode_gpu / (1.0 + prefill_gpus_per_decode_gpu)
    link = link_bandwidth_gb_s(ctx.system, ctx.gpu, ctx.system.gpus_per_nvlink_domain + 1)
    kv_transfer = kv_bytes_per_sequence(ctx.model, ctx.precision, isl) / (link * 1e9)
    return {
        "mode": np.full(len(tp), "disaggregated"),
        "tp": tp,
        "ep": ep,
        "pp": pp,
        "conc": conc,
        "kv_max": kv_max,
        "itl_s": t_iter / a,
        "ttft_s": pre["ttft_s"] + kv_transfer + 0.5 * t_iter,
        "out_per_gpu": decode_per_gpu / (1.0 + prefill_gpus_per_decode_gpu),
        "decode_per_gpu": decode_per_gpu,
        "prefill_per_gpu": np.full(len(tp), pre["rate"]),
        "power_w": fraction * pre["power_w"] + (1.0 - fraction) * st["power_w"],
        "clock": (1.0 - fraction) * st["clock"] + fraction * pre["clock"],
        "prefill_fraction": fraction,
    }
