"""The token curve: throughput per GPU against tokens per second per user, and the operating point.

`estimate` evaluates every (tp, ep, pp, concurrency) layout of one model on one system as numpy arrays
(`perf.serving`), keeps the layouts whose weights and KV cache fit and that the engine's limits allow,
turns work into time with the catalog's fitted parameters (`perf.step`, `perf.params`), applies the
power cap, and returns a `TokenCurve`: all points, the Pareto front and the operating point that meets
the TTFT and ITL targets. Mode ``auto`` (the default) evaluates aggregated and disaggregated serving and
says which one the operating point uses.

References
----------
.. [1] SemiAnalysis InferenceMAX methodology (throughput per GPU against interactivity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tokenfab.blueprint.cost import usd_per_million_tokens
from tokenfab.catalog.models import Gpu, LlmModel, Precision, Region, System
from tokenfab.perf.power import node_overhead_power_w_per_gpu
from tokenfab.perf.results import PerfInputError, TokenCurve, TokenPoint, pareto_front_mask, point_at
from tokenfab.perf.serving import (
    CONCURRENCY_GRID,
    PREFILL_BATCH_TOKENS,
    SPEC_DECODING,
    Pins,
    ServingContext,
    aggregated,
    disaggregated,
    serving_context,
    step,
)
from tokenfab.perf.tco import reference_cost_basis

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog

__all__ = [
    "CONCURRENCY_GRID",
    "DEFAULT_REGION",
    "PREFILL_BATCH_TOKENS",
    "PerfInputError",
    "TokenCurve",
    "TokenPoint",
    "estimate",
    "pareto_front_mask",
    "static_step_ms",
]

DEFAULT_REGION = "us-pjm-dominion"
DEFAULT_PUE = 1.2
DEFAULT_ENGINE = "tensorrt-llm"
MODES = ("auto", "aggregated", "disaggregated", "both")


def estimate(
    catalog: Catalog,
    model: str,
    system: str,
    precision: str | Precision | None = None,
    isl: int = 1024,
    osl: int = 1024,
    ttft_ms: float | None = None,
    itl_ms: float | None = None,
    power_cap_w: float | None = None,
    mode: str = "auto",
    tp: int | None = None,
    ep: int | None = None,
    pp: int | None = None,
    concurrency: int | None = None,
    max_concurrency: int | None = None,
    region: str = DEFAULT_REGION,
    pue: float = DEFAULT_PUE,
    usd_per_gpu_hour: float | None = None,
    engine: str = DEFAULT_ENGINE,
    spec_decoding: str = "none",
) -> TokenCurve:
    """Predict the token curve of `model` served on `system`.

    Parameters
    ----------
    catalog : Catalog
        Source of the model, system, GPU, region, fitted parameters and engine profiles.
    model, system : str
        Catalog names.
    precision : str, optional
        ``bf16``, ``fp8`` or ``fp4`` (weights; the KV cache is FP8 below BF16). Default: the model's native.
    isl, osl : int
        Mean input and output tokens per request [tok].
    ttft_ms, itl_ms : float, optional
        Targets for time to first token and inter-token latency [ms].
    power_cap_w : float, optional
        Per-GPU board power cap [W]; default the TDP.
    mode : str
        ``auto`` (both, the better one chosen and named), ``aggregated``, ``disaggregated`` or ``both``.
    tp, ep, pp, concurrency : int, optional
        Pin the layout or the sequences per replica instead of searching.
    max_concurrency : int, optional
        Highest sequences in flight per replica (a server's max batch; the engine's max batch caps it too).
    region, pue : str, float
        For $ per token and carbon.
    usd_per_gpu_hour : float, optional
        Price of a GPU-hour [$]; default the TCO of the reference design of `system` in `region`
        (`tokenfab.perf.tco`), the figure `tokenfab design` gives for it.
    engine : str
        Engine whose limits apply (``tensorrt-llm``, ``dynamo``, ``vllm``, ``sglang``; catalog engine_profiles).
    spec_decoding : str
        ``none`` or ``mtp`` (multi-token prediction drafts, acceptance fitted on InferenceX MTP points).

    Returns
    -------
    TokenCurve
    """
    llm, sys_, gpu, reg, prec = _resolve(catalog, model, system, region, precision)
    _validate(
        llm, gpu, isl, osl, mode, pue, power_cap_w, spec_decoding, tp, ep, pp, concurrency, max_concurrency
    )
    _validate_tensor_parallelism(llm, sys_, tp)
    try:
        ctx = serving_context(catalog, llm, sys_, gpu, prec, power_cap_w, engine, spec_decoding)
    except KeyError as exc:
        raise PerfInputError(str(exc.args[0])) from None
    cols = _evaluate(ctx, isl, osl, mode, (tp, ep, pp, concurrency), max_concurrency, ttft_ms)
    if not len(cols["tp"]):
        pinned = tp or ep or pp or concurrency
        raise PerfInputError(
            f"{model} at {prec.value} does not fit on {system} "
            + ("with the pinned layout" if pinned else "in any layout tried (tp, ep, pp)")
        )
    usd_gpu_h = (
        usd_per_gpu_hour
        if usd_per_gpu_hour is not None
        else _reference_usd_per_gpu_hour(catalog, system, region)
    )
    columns = _point_columns(
        cols, model, system, prec, isl, osl, sys_, gpu, reg, pue, usd_gpu_h, ttft_ms, itl_ms
    )
    front, operating = _front_and_operating_point(columns, cols, ttft_ms, itl_ms)
    return TokenCurve(
        model=model,
        system=system,
        precision=prec.value,
        isl=isl,
        osl=osl,
        mode=mode,
        ttft_target_ms=ttft_ms,
        itl_target_ms=itl_ms,
        power_cap_w=power_cap_w,
        usd_per_gpu_hour=usd_gpu_h,
        provisioned_kw_per_gpu=sys_.rack_power_max_kw / sys_.gpus_per_rack * pue,
        calibration=ctx.cal.name,
        columns=columns,
        front=front,
        operating_point=operating,
        mode_reason=_mode_reason(mode, columns, operating),
        engine=ctx.profile.name,
        spec_decoding=spec_decoding,
    )


def _reference_usd_per_gpu_hour(catalog: Catalog, system: str, region: str) -> float:
    """The TCO per GPU-hour of the reference design of `system` in `region` (`perf.tco`)."""
    try:
        return reference_cost_basis(catalog, system, region).usd_per_gpu_hour
    except (KeyError, ValueError) as exc:
        raise PerfInputError(str(exc.args[0])) from None


def _resolve(
    catalog: Catalog, model: str, system: str, region: str, precision: str | Precision | None
) -> tuple[LlmModel, System, Gpu, Region, Precision]:
    try:
        llm = catalog.typed("models", model, LlmModel)
        sys_ = catalog.typed("systems", system, System)
        gpu = catalog.typed("gpus", sys_.gpu, Gpu)
        reg = catalog.typed("regions", region, Region)
    except KeyError as exc:
        raise PerfInputError(str(exc.args[0])) from None
    return llm, sys_, gpu, reg, Precision(precision) if precision else llm.native_precision


def _validate(
    llm: LlmModel,
    gpu: Gpu,
    isl: int,
    osl: int,
    mode: str,
    pue: float,
    power_cap_w: float | None,
    spec: str,
    tp: int | None,
    ep: int | None,
    pp: int | None,
    concurrency: int | None,
    max_concurrency: int | None,
) -> None:
    if isl < 1 or osl < 1:
        raise PerfInputError("isl and osl must be at least 1 token")
    if mode not in MODES:
        raise PerfInputError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    if spec not in SPEC_DECODING:
        raise PerfInputError(f"unknown spec decoding {spec!r} (known: {', '.join(SPEC_DECODING)})")
    limits = (
        ("tp", tp),
        ("ep", ep),
        ("pp", pp),
        ("concurrency", concurrency),
        ("max_concurrency", max_concurrency),
    )
    for label, value in limits:
        if value is not None and value < 1:
            raise PerfInputError(f"{label} must be at least 1")
    if power_cap_w is not None and power_cap_w <= gpu.idle_power_w:
        raise PerfInputError(
            f"power cap {power_cap_w} W is at or below the GPU's idle power {gpu.idle_power_w} W"
        )
    if pue < 1:
        raise PerfInputError("pue must be at least 1")
    if ep and not llm.is_moe and ep > 1:
        raise PerfInputError(f"model {llm.name!r} has no experts; ep must be 1")


def _validate_tensor_parallelism(llm: LlmModel, sys_: System, tp: int | None) -> None:
    """A pinned tp must fit one NVLink domain and divide the attention heads."""
    if tp is None:
        return
    if tp > sys_.gpus_per_nvlink_domain:
        raise PerfInputError(
            f"tp {tp} spans more than one NVLink domain of {sys_.name} ({sys_.gpus_per_nvlink_domain} GPUs)"
        )
    if llm.num_heads % tp:
        raise PerfInputError(f"tp {tp} does not divide the {llm.num_heads} attention heads of {llm.name}")


def _evaluate(
    ctx: ServingContext,
    isl: int,
    osl: int,
    mode: str,
    pins: Pins,
    max_concurrency: int | None,
    ttft_ms: float | None,
) -> dict[str, np.ndarray]:
    parts = []
    if mode in ("auto", "aggregated", "both"):
        parts.append(aggregated(ctx, isl, osl, pins, max_concurrency))
    if mode in ("auto", "disaggregated", "both"):
        parts.append(disaggregated(ctx, isl, osl, pins, max_concurrency, ttft_ms))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _point_columns(
    cols: dict[str, np.ndarray],
    model: str,
    system: str,
    prec: Precision,
    isl: int,
    osl: int,
    sys_: System,
    gpu: Gpu,
    reg: Region,
    pue: float,
    usd_gpu_h: float,
    ttft_ms: float | None,
    itl_ms: float | None,
) -> dict[str, np.ndarray]:
    """TokenPoint fields as arrays: rates per GPU, rack and MW, power, energy, cost and carbon."""
    out_gpu = cols["out_per_gpu"]
    total_gpu = out_gpu * (1.0 + isl / osl)
    power = cols["power_w"]
    provisioned_kw = sys_.rack_power_max_kw / sys_.gpus_per_rack * pue
    host_w = node_overhead_power_w_per_gpu(sys_.rack_power_nominal_kw, sys_.gpus_per_rack, gpu.tdp_w)
    count = len(out_gpu)
    usd_at_one = usd_per_million_tokens(usd_gpu_h, 1.0)  # $/M scales as 1 / rate
    return {
        "model": np.full(count, model),
        "system": np.full(count, system),
        "precision": np.full(count, prec.value),
        "mode": cols["mode"],
        "tp": cols["tp"].astype(int),
        "ep": cols["ep"].astype(int),
        "pp": cols["pp"].astype(int),
        "gpus_per_replica": (np.maximum(cols["tp"], cols["ep"]) * cols["pp"]).astype(int),
        "concurrency": cols["conc"].astype(int),
        "isl": np.full(count, isl),
        "osl": np.full(count, osl),
        "ttft_ms": cols["ttft_s"] * 1e3,
        "itl_ms": cols["itl_s"] * 1e3,
        "tokens_per_s_per_user": 1.0 / cols["itl_s"],
        "prefill_tokens_per_s_per_gpu": cols["prefill_per_gpu"],
        "decode_tokens_per_s_per_gpu": cols["decode_per_gpu"],
        "tokens_per_s_per_gpu_total": total_gpu,
        "tokens_per_s_per_gpu_output": out_gpu,
        "tokens_per_s_per_rack_total": total_gpu * sys_.gpus_per_rack,
        "tokens_per_s_per_rack_output": out_gpu * sys_.gpus_per_rack,
        "tokens_per_s_per_mw_total": total_gpu / provisioned_kw * 1000.0,
        "tokens_per_s_per_mw_output": out_gpu / provisioned_kw * 1000.0,
        "gpu_power_w": power,
        "clock_fraction": cols["clock"],
        "joules_per_token": power / out_gpu,
        "joules_per_token_total": power / total_gpu,
        "usd_per_million_tokens": usd_at_one / out_gpu,
        "usd_per_million_tokens_total": usd_at_one / total_gpu,
        # facility W / (tok/s) = J/tok; / 3.6e6 J/kWh x g/kWh x 1e6 tokens
        "gco2_per_million_tokens": (power + host_w) * pue / out_gpu / 3.6e6 * reg.grid_carbon_g_per_kwh * 1e6,
        "kv_max_concurrency": cols["kv_max"].astype(int),
        "prefill_gpu_fraction": cols["prefill_fraction"],
        "meets_targets": _meets(cols, ttft_ms, itl_ms),
    }


def _meets(cols: dict[str, np.ndarray], ttft_ms: float | None, itl_ms: float | None) -> np.ndarray:
    meets = np.ones(len(cols["tp"]), dtype=bool)
    if ttft_ms is not None:
        meets &= cols["ttft_s"] * 1e3 <= ttft_ms
    if itl_ms is not None:
        meets &= cols["itl_s"] * 1e3 <= itl_ms
    return meets


def _front_and_operating_point(
    columns: dict[str, np.ndarray], cols: dict[str, np.ndarray], ttft_ms: float | None, itl_ms: float | None
) -> tuple[list[TokenPoint], TokenPoint]:
    """Pareto front (most tokens/s/user first) and the operating point (best meeting the targets, else
    the point that misses them by the smallest factor)."""
    user, total = columns["tokens_per_s_per_user"], columns["tokens_per_s_per_gpu_total"]
    front_idx = np.flatnonzero(pareto_front_mask(user, total))
    front = [point_at(columns, i) for i in front_idx[np.argsort(-user[front_idx])]]
    candidates = np.flatnonzero(columns["meets_targets"])
    if len(candidates):
        return front, point_at(columns, int(candidates[np.argmax(total[candidates])]))
    miss = np.ones(len(user))
    if ttft_ms is not None:
        miss = np.maximum(miss, cols["ttft_s"] * 1e3 / ttft_ms)
    if itl_ms is not None:
        miss = np.maximum(miss, cols["itl_s"] * 1e3 / itl_ms)
    return front, point_at(columns, int(np.argmin(miss)))


def _mode_reason(mode: str, columns: dict[str, np.ndarray], op: TokenPoint) -> str:
    if mode != "auto":
        return f"mode {mode} requested"
    best: dict[str, float] = {}
    for m in ("aggregated", "disaggregated"):
        sel = (columns["mode"] == m) & columns["meets_targets"]
        best[m] = float(columns["tokens_per_s_per_gpu_total"][sel].max()) if sel.any() else 0.0
    other = "disaggregated" if op.mode == "aggregated" else "aggregated"
    if not best[other]:
        return (
            f"{op.mode}: the only mode with a layout meeting the targets"
            if best[op.mode]
            else (f"{op.mode}: no layout meets the targets; closest miss")
        )
    return (
        f"{op.mode}: {best[op.mode]:,.0f} tok/s/GPU (in+out) against {best[other]:,.0f} "
        f"{other} at the targets ({best[op.mode] / best[other] - 1:+.0%})"
    )


def static_step_ms(
    catalog: Catalog,
    model: str,
    system: str,
    precision: str | Precision | None,
    phase: str,
    isl: int,
    osl: int,
    batch: int,
    tp: int,
    ep: int = 1,
    pp: int = 1,
) -> float:
    """One static step, for comparing with step-level predictors (AIConfigurator ``static_gen`` and
    ``static_ctx``) [ms].

    ``phase="decode"``: one decode step of `batch` sequences at mean context ``isl + osl/2`` (the TPOT);
    ``phase="prefill"``: the prefill of `batch` prompts of `isl` tokens (the TTFT of the batch).
    """
    llm, sys_, gpu, _, prec = _resolve(catalog, model, system, DEFAULT_REGION, precision)
    ctx = serving_context(catalog, llm, sys_, gpu, prec, None, DEFAULT_ENGINE, "none")
    tp_a, ep_a, pp_a = (np.array([float(v)]) for v in (tp, ep, pp))
    if phase == "decode":
        st = step(ctx, np.array([batch / pp]), isl + osl / 2.0, 0.0, isl, tp_a, ep_a, pp_a)
    else:
        st = step(ctx, np.array([0.0]), 0.0, float(batch * isl), isl, tp_a, ep_a, pp_a)
    return float(pp * st["time_s"][0] * 1e3)
