"""Service rates from the token model: what one inference replica delivers at each GPU power cap.

The twin asks one question of the token model (`tokenfab.perf.estimate`): for a model served on a system
under TTFT/ITL targets, which layout to run (GPUs per replica, sequences in flight), and for that layout,
tokens per second per GPU, board power, TTFT and ITL at a set of per-GPU power caps. The answer is a
`ServiceRates` table (one row per cap); the twin interpolates in it at every tick.

When the token model cannot answer (it raises `PerfInputError`, e.g. the model does not fit), the
documented fallback `fallback_service_rates` is used and ``ServiceRates.source`` says so.
"""

from __future__ import annotations

import math

import numpy as np

from tokenfab.catalog.models import Gpu, LlmModel, System
from tokenfab.twin.entities import ServiceRates

CAP_FRACTIONS_OF_TDP = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Per-GPU power caps at which the rates are tabulated, as shares of TDP [-]."""


def service_rates(
    catalog,
    model: str,
    system: str,
    isl: int,
    osl: int,
    ttft_ms: float,
    itl_ms: float,
    min_gpus_per_replica: int = 1,
    cap_fractions: tuple[float, ...] = CAP_FRACTIONS_OF_TDP,
) -> ServiceRates:
    """Tabulate one replica's rates against the per-GPU power cap.

    The layout is the token model's best point at TDP that meets both targets and uses at least
    `min_gpus_per_replica` GPUs inside one NVLink domain; each cap then re-evaluates that pinned layout
    (``tp``, ``ep``, ``pp``, ``concurrency``) with ``power_cap_w`` set.
    """
    from tokenfab.perf import PerfInputError, estimate

    sys_ = catalog.typed("systems", system, System)
    gpu = catalog.typed("gpus", sys_.gpu, Gpu)
    try:
        curve = estimate(catalog, model, system, isl=isl, osl=osl, ttft_ms=ttft_ms, itl_ms=itl_ms)
    except PerfInputError:
        return fallback_service_rates(catalog, model, system, isl, osl, ttft_ms, itl_ms, cap_fractions)
    fits = [
        p
        for p in curve.points
        if p.meets_targets
        and p.mode == "aggregated"
        and min_gpus_per_replica <= p.gpus_per_replica <= sys_.gpus_per_nvlink_domain
    ]
    if not fits:
        fits = [
            p
            for p in curve.points
            if p.mode == "aggregated" and p.gpus_per_replica <= sys_.gpus_per_nvlink_domain
        ]
        fits.sort(key=lambda p: (p.itl_ms > itl_ms, p.ttft_ms > ttft_ms, -p.tokens_per_s_per_gpu_total))
        fits = fits[:1]
    if not fits:
        return fallback_service_rates(catalog, model, system, isl, osl, ttft_ms, itl_ms, cap_fractions)
    best = max(fits, key=lambda p: p.tokens_per_s_per_gpu_total)
    rows = [
        _pinned_row(catalog, model, system, isl, osl, ttft_ms, itl_ms, best, f, gpu.tdp_w)
        for f in cap_fractions
    ]
    table = np.array(rows, dtype=float)
    return ServiceRates(
        power_cap_w=table[:, 0],
        output_tokens_per_s_per_gpu=table[:, 1],
        total_tokens_per_s_per_gpu=table[:, 2],
        gpu_power_w=table[:, 3],
        ttft_ms=table[:, 4],
        itl_ms=table[:, 5],
        meets_targets=table[:, 6].astype(bool),
        gpus_per_replica=best.gpus_per_replica,
        concurrency=best.concurrency,
        source=f"perf.estimate tp={best.tp} ep={best.ep} pp={best.pp} concurrency={best.concurrency}",
    )


def _pinned_row(
    catalog,
    model: str,
    system: str,
    isl: int,
    osl: int,
    ttft_ms: float,
    itl_ms: float,
    best,
    fraction: float,
    tdp_w: float,
) -> tuple:
    """One row of the table: the layout `best` re-evaluated under a cap of `fraction` × TDP."""
    from tokenfab.perf import estimate

    cap_w = fraction * tdp_w
    pinned = estimate(
        catalog,
        model,
        system,
        isl=isl,
        osl=osl,
        ttft_ms=ttft_ms,
        itl_ms=itl_ms,
        power_cap_w=cap_w if fraction < 1.0 else None,
        tp=best.tp,
        ep=best.ep,
        pp=best.pp,
        concurrency=best.concurrency,
    )
    point = pinned.points[0]
    return (
        cap_w,
        point.tokens_per_s_per_gpu_output,
        point.tokens_per_s_per_gpu_total,
        point.gpu_power_w,
        point.ttft_ms,
        point.itl_ms,
        point.ttft_ms <= ttft_ms and point.itl_ms <= itl_ms,
    )


def fallback_service_rates(
    catalog,
    model: str,
    system: str,
    isl: int,
    osl: int,
    ttft_ms: float,
    itl_ms: float,
    cap_fractions: tuple[float, ...] = CAP_FRACTIONS_OF_TDP,
    memory_efficiency: float = 0.6,
    concurrency: int = 64,
) -> ServiceRates:
    """A memory-bound decode estimate from catalog GPU figures, used only when the token model fails.

    A replica holds the weights (2 bytes per parameter at BF16, 1 at FP8/FP4 rounded up) on
    ``g = 2^ceil(log2(weights / (0.6 HBM)))`` GPUs; each decode step streams the weights once:

    .. math:: ITL = \\frac{W / g}{\\eta_m\\, BW}, \\qquad
              \\frac{tok}{s\\,GPU}\\Big|_{out} = \\frac{C}{ITL\\, g}

    with :math:`C` = `concurrency`. Power at full load is 70 % of TDP (memory-bound decode, an estimate);
    a cap below that slows the replica in proportion. TTFT is one ITL plus the prompt at the same rate.
    """
    sys_ = catalog.typed("systems", system, System)
    gpu = catalog.typed("gpus", sys_.gpu, Gpu)
    llm = catalog.typed("models", model, LlmModel)
    bytes_per_param = 2.0 if llm.native_precision.value == "bf16" else 1.0
    weights_bytes = llm.total_params_b * 1e9 * bytes_per_param
    gpus = 2 ** max(0, math.ceil(math.log2(weights_bytes / (0.6 * gpu.hbm_gb * 1e9))))
    gpus = min(gpus, sys_.gpus_per_nvlink_domain)
    itl_s = weights_bytes / gpus / (memory_efficiency * gpu.hbm_bandwidth_tb_s * 1e12)
    out_per_gpu = concurrency / itl_s / gpus
    caps = np.asarray(cap_fractions) * gpu.tdp_w
    full_power_w = 0.7 * gpu.tdp_w
    slow = np.minimum(1.0, (caps - gpu.idle_power_w) / (full_power_w - gpu.idle_power_w))
    itl_ms_row = itl_s * 1e3 / slow
    ttft_ms_row = itl_ms_row * (1.0 + isl / max(concurrency, 1))
    return ServiceRates(
        power_cap_w=caps,
        output_tokens_per_s_per_gpu=out_per_gpu * slow,
        total_tokens_per_s_per_gpu=out_per_gpu * slow * (1.0 + isl / osl),
        gpu_power_w=np.minimum(caps, full_power_w),
        ttft_ms=ttft_ms_row,
        itl_ms=itl_ms_row,
        meets_targets=(ttft_ms_row <= ttft_ms) & (itl_ms_row <= itl_ms),
        gpus_per_replica=int(gpus),
        concurrency=concurrency,
        source="fallback: memory-bound decode from catalog GPU figures (token model unavailable)",
    )
