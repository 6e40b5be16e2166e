"""The token curve: throughput per GPU against tokens per second per user, and the operating point.

`estimate` evaluates every (tp, ep, pp, concurrency) layout of one model on one system as numpy arrays,
keeps the layouts whose weights and KV cache fit, turns roofline work into time with the catalog's
efficiency factors, applies the power cap, and returns a `TokenCurve`: all points, the Pareto front and the
operating point that meets the TTFT and ITL targets.

Serving modes
-------------
**aggregated**: prefill and decode share the GPUs (continuous batching with chunked prefill). In steady
state each iteration decodes one token for each of the ``C`` running sequences and prefills the prompts of
the sequences that replace finished ones, :math:`C \\cdot ISL/OSL` tokens on average:

.. math::
    t_{it} = pp\\left(\\sum_{op} \\max\\left(\\frac{F_{op}}{\\eta_{op} P},\\frac{B_{op}}{\\eta_{m} BW}\\right)
             + t_{comm} + t_0 + C_{mb}\\,t_{seq}\\right), \\qquad
    ITL = t_{it}, \\qquad \\frac{tok}{s\\,GPU}\\Big|_{out} = \\frac{C}{t_{it}\\,n\\,pp}

with :math:`C_{mb} = C/pp` sequences per micro-batch. TTFT is one iteration that also carries the whole
prompt plus half an iteration of waiting.

**disaggregated**: a prefill pool (its own tp, batches of about 8k prompt tokens) and a decode pool; the
pools are sized so the prefill rate matches the decode pool's demand :math:`r_{out} \\cdot ISL/OSL`; TTFT
adds the KV-cache transfer over the scale-out NIC.

References
----------
.. [1] Zhong et al., "DistServe: Disaggregating Prefill and Decoding", OSDI 2024.
.. [2] Agrawal et al., "Sarathi-Serve: chunked prefills", OSDI 2024.
.. [3] SemiAnalysis InferenceMAX methodology (throughput per GPU against interactivity).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import cached_property

import numpy as np

from tokenfab.blueprint.cost import usd_per_million_tokens
from tokenfab.catalog.models import Gpu, LlmModel, PerfCalibration, PowerModel, Precision, Region, System
from tokenfab.perf.calibration import calibration_for, compute_precision
from tokenfab.perf.parallelism import (
    collective_time_per_step_s,
    link_bandwidth_gb_s,
    max_concurrency_per_replica,
)
from tokenfab.perf.power import power_model_for, step_clock_and_power
from tokenfab.perf.roofline import kv_bytes_per_sequence, step_work_per_gpu
from tokenfab.perf.tco import reference_cost_basis

DEFAULT_REGION = "us-pjm-dominion"
DEFAULT_PUE = 1.2
PREFILL_BATCH_TOKENS = 8192
"""Prompt tokens per prefill-pool step in disaggregated serving (a compute-bound chunk) [-]."""

CONCURRENCY_GRID = np.unique(
    np.concatenate([np.round(np.geomspace(1, 8192, 48)), 2.0 ** np.arange(14)]).astype(int)
)
"""Sequences in flight per replica that the search tries [-]."""


@dataclass(frozen=True)
class TokenPoint:
    """One serving layout and load, with what it produces and costs (units in the names)."""

    model: str
    system: str
    precision: str
    mode: str
    tp: int
    ep: int
    pp: int
    gpus_per_replica: int
    concurrency: int
    """Sequences in flight per replica (decode replica in disaggregated mode) [-]."""
    isl: int
    osl: int
    ttft_ms: float
    itl_ms: float
    tokens_per_s_per_user: float
    """Output tokens per second one sequence sees, 1000 / itl_ms [tok/s]."""
    prefill_tokens_per_s_per_gpu: float
    """Input tokens processed per second per GPU that does prefill [tok/s]."""
    decode_tokens_per_s_per_gpu: float
    """Output tokens generated per second per GPU that does decode [tok/s]."""
    tokens_per_s_per_gpu_total: float
    """Input + output tokens per second per GPU of the whole deployment [tok/s]."""
    tokens_per_s_per_gpu_output: float
    """Output tokens per second per GPU of the whole deployment [tok/s]."""
    tokens_per_s_per_rack_total: float
    tokens_per_s_per_rack_output: float
    tokens_per_s_per_mw_total: float
    """Input + output tokens per second per MW of provisioned power (rack max × PUE) [tok/s/MW]."""
    tokens_per_s_per_mw_output: float
    gpu_power_w: float
    """Mean board power drawn per GPU at this point [W]."""
    clock_fraction: float
    """SM clock relative to nominal after the power cap [-]."""
    joules_per_token: float
    """GPU board energy per output token (all phases charged to output tokens) [J/tok]."""
    joules_per_token_total: float
    """GPU board energy per input + output token [J/tok]."""
    usd_per_million_tokens: float
    """Capex amortised + opex per million output tokens [$]."""
    usd_per_million_tokens_total: float
    """Capex amortised + opex per million input + output tokens [$]."""
    gco2_per_million_tokens: float
    """Grid carbon of the drawn energy (board + host share) × PUE per million output tokens [g]."""
    kv_max_concurrency: int
    """Sequences of ISL+OSL tokens the replica's KV cache holds [-]."""
    prefill_gpu_fraction: float
    """Share of GPUs in the prefill pool (0 in aggregated mode) [-]."""
    meets_targets: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TokenCurve:
    """All evaluated points, the Pareto front and the chosen operating point.

    ``points`` (every feasible layout and load) is built on first access from ``columns``, the same
    figures as arrays; the front and the operating point are built eagerly.
    """

    model: str
    system: str
    precision: str
    isl: int
    osl: int
    mode: str
    ttft_target_ms: float | None
    itl_target_ms: float | None
    power_cap_w: float | None
    usd_per_gpu_hour: float
    provisioned_kw_per_gpu: float
    """Rack maximum power / GPUs per rack × PUE [kW]."""
    calibration: str
    columns: dict[str, np.ndarray] = field(repr=False)
    """TokenPoint fields as arrays over every evaluated point."""
    front: list[TokenPoint] = field(repr=False)
    """Pareto front: no other point has both more tokens/s/user and more tokens/s/GPU (total)."""
    operating_point: TokenPoint | None = None
    """Highest tokens/s/GPU (total) meeting the targets; when nothing meets them, the point that misses
    them by the smallest factor (its ``meets_targets`` is False)."""

    @cached_property
    def points(self) -> list[TokenPoint]:
        return [_point(self.columns, i) for i in range(len(self.columns["tp"]))]

    def to_dict(self) -> dict:
        out = self.operating_point.to_dict() if self.operating_point else {}
        out.update(
            {
                "model": self.model,
                "system": self.system,
                "precision": self.precision,
                "mode_requested": self.mode,
                "ttft_target_ms": self.ttft_target_ms,
                "itl_target_ms": self.itl_target_ms,
                "power_cap_w": self.power_cap_w,
                "usd_per_gpu_hour": self.usd_per_gpu_hour,
                "provisioned_kw_per_gpu": self.provisioned_kw_per_gpu,
                "calibration": self.calibration,
                "meets_targets": self.operating_point is not None and self.operating_point.meets_targets,
                "curve": [p.to_dict() for p in self.front],
            }
        )
        return out


_POINT_FIELDS = tuple(f.name for f in fields(TokenPoint))


def _point(columns: dict[str, np.ndarray], i: int) -> TokenPoint:
    """Row `i` of the column arrays as a TokenPoint of plain Python numbers."""
    return TokenPoint(**{name: columns[name][i].item() for name in _POINT_FIELDS})


class PerfInputError(ValueError):
    """A model, system or serving setting the token model cannot use (one line, for the CLI)."""


def pareto_front_mask(x, y) -> np.ndarray:
    """Points not dominated in (x, y), both to be maximised.

    A point is dominated when another has ``x' >= x`` and ``y' >= y`` with one strictly greater. Sort by x
    descending (y descending on ties) and keep points whose y beats every y seen so far.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.lexsort((-y, -x))
    keep = np.zeros(len(x), dtype=bool)
    best = -np.inf
    for i in order:
        if y[i] > best:
            keep[i] = True
            best = y[i]
    return keep


def _powers_of_two(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


@dataclass(frozen=True)
class _Context:
    model: LlmModel
    system: System
    gpu: Gpu
    cal: PerfCalibration
    precision: Precision
    peak_flops: float
    gemm_efficiency: float
    attn_flops: float
    bw: float
    power_cap_w: float | None
    power: PowerModel


def _context(catalog, llm: LlmModel, sys_: System, gpu: Gpu, prec: Precision, power_cap_w) -> _Context:
    cal = calibration_for(catalog, gpu.architecture)
    gemm_precision = compute_precision(gpu, prec)
    return _Context(
        model=llm,
        system=sys_,
        gpu=gpu,
        cal=cal,
        precision=prec,
        peak_flops=gpu.dense_tflops[gemm_precision] * 1e12,
        gemm_efficiency=cal.compute_efficiency.get(gemm_precision, min(cal.compute_efficiency.values())),
        attn_flops=gpu.dense_tflops[Precision.bf16] * 1e12,
        bw=gpu.hbm_bandwidth_tb_s * 1e12,
        power_cap_w=power_cap_w,
        power=power_model_for(catalog, gpu.architecture),
    )


def static_step_ms(
    catalog,
    model: str,
    system: str,
    precision: str | Precision,
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
    llm = catalog.typed("models", model, LlmModel)
    sys_ = catalog.typed("systems", system, System)
    gpu = catalog.typed("gpus", sys_.gpu, Gpu)
    ctx = _context(catalog, llm, sys_, gpu, Precision(precision), None)
    tp_a, ep_a, pp_a = (np.array([float(v)]) for v in (tp, ep, pp))
    if phase == "decode":
        step = _step(ctx, np.array([batch / pp]), isl + osl / 2.0, 0.0, isl, tp_a, ep_a, pp_a)
    else:
        step = _step(ctx, np.array([0.0]), 0.0, float(batch * isl), isl, tp_a, ep_a, pp_a)
    return float(pp * step["time_s"][0] * 1e3)


def _step(ctx: _Context, decode_tokens, decode_context, prefill_tokens, prefill_context, tp, ep, pp):
    """Stage step time, FLOPs, bytes and clock for arrays of layouts; returns a dict of arrays."""
    model, cal = ctx.model, ctx.cal
    n = np.maximum(tp, ep)
    work = step_work_per_gpu(
        model, ctx.precision, decode_tokens, decode_context, prefill_tokens, prefill_context, tp, n, pp
    )
    tc = np.stack(
        [
            work.linear_flops / (ctx.peak_flops * ctx.gemm_efficiency),
            work.expert_flops / (ctx.peak_flops * cal.moe_compute_efficiency),
            work.attention_flops / (ctx.attn_flops * cal.attention_efficiency),
        ]
    )
    tm = np.stack(
        [
            work.linear_bytes / (ctx.bw * cal.memory_efficiency),
            work.expert_bytes / (ctx.bw * cal.moe_memory_efficiency),
            work.attention_bytes / (ctx.bw * cal.memory_efficiency),
        ]
    )
    tokens = np.asarray(decode_tokens, dtype=float) + np.asarray(prefill_tokens, dtype=float)
    comm = collective_time_per_step_s(
        model,
        ctx.precision,
        ctx.system,
        ctx.gpu,
        tokens,
        tp,
        ep,
        pp,
        cal.collective_efficiency,
        cal.collective_latency_us,
    )
    overhead = (
        cal.step_overhead_ms * 1e-3
        + cal.layer_overhead_us * 1e-6 * model.num_layers / np.asarray(pp, dtype=float)
        + cal.per_sequence_overhead_us * 1e-6 * np.asarray(decode_tokens)
    )
    if model.is_moe:
        overhead = overhead + cal.moe_token_overhead_us * 1e-6 * tokens / (n * np.asarray(pp, dtype=float))
    other = comm + overhead
    clock, t, power = step_clock_and_power(
        tc, tm, other, ctx.gpu, ctx.power, cal.clock_power_exponent, ctx.power_cap_w
    )
    return {"time_s": t, "power_w": power, "clock": clock}


def _layouts(model: LlmModel, system: System, tp_pin, ep_pin, pp_pin, conc_pin, conc_max=None):
    domain = system.gpus_per_nvlink_domain
    tps = [tp_pin] if tp_pin else [t for t in _powers_of_two(min(domain, 16)) if t <= model.num_heads]
    if model.is_moe:
        eps = [ep_pin] if ep_pin else _powers_of_two(min(max(domain, 8) * 8, 64, model.num_experts))
    else:
        eps = [ep_pin or 1]
    pps = [pp_pin] if pp_pin else [1, 2, 4]
    concs = [conc_pin] if conc_pin else [c for c in CONCURRENCY_GRID.tolist() if not conc_max or c <= conc_max]
    grid = np.array(np.meshgrid(tps, eps, pps, concs, indexing="ij")).reshape(4, -1).astype(float)
    tp, ep, pp, conc = grid
    if model.is_moe and not ep_pin:
        # Expert groups beyond the NVLink domain only make sense as whole stages of wide EP.
        keep = (ep <= domain) | (tp == 1)
        tp, ep, pp, conc = tp[keep], ep[keep], pp[keep], conc[keep]
    return tp, ep, pp, conc


def estimate(
    catalog,
    model: str,
    system: str,
    precision: str | Precision | None = None,
    isl: int = 1024,
    osl: int = 1024,
    ttft_ms: float | None = None,
    itl_ms: float | None = None,
    power_cap_w: float | None = None,
    mode: str = "aggregated",
    tp: int | None = None,
    ep: int | None = None,
    pp: int | None = None,
    concurrency: int | None = None,
    max_concurrency: int | None = None,
    region: str = DEFAULT_REGION,
    pue: float = DEFAULT_PUE,
    usd_per_gpu_hour: float | None = None,
) -> TokenCurve:
    """Predict the token curve of `model` served on `system`.

    Parameters
    ----------
    catalog : Catalog
        Source of the model, system, GPU, region and efficiency factors.
    model, system : str
        Catalog names.
    precision : str, optional
        ``bf16``, ``fp8`` or ``fp4`` (weights; the KV cache is FP8 below BF16). Default: the model's
        native precision.
    isl, osl : int
        Mean input and output tokens per request [tok].
    ttft_ms, itl_ms : float, optional
        Targets for time to first token and inter-token latency [ms].
    power_cap_w : float, optional
        Per-GPU board power cap [W]; default the TDP.
    mode : str
        ``aggregated``, ``disaggregated`` or ``both``.
    tp, ep, pp, concurrency : int, optional
        Pin the layout or the sequences per replica instead of searching.
    max_concurrency : int, optional
        Highest sequences in flight per replica the search may use (a server's max batch).
    region, pue : str, float
        For $ per token and carbon.
    usd_per_gpu_hour : float, optional
        Price of a GPU-hour [$]; default the TCO of the reference design of `system` in `region`
        (`tokenfab.perf.tco`), the figure `tokenfab design` gives for it.

    Returns
    -------
    TokenCurve
    """
    try:
        llm = catalog.typed("models", model, LlmModel)
        sys_ = catalog.typed("systems", system, System)
        gpu = catalog.typed("gpus", sys_.gpu, Gpu)
        reg = catalog.typed("regions", region, Region)
    except KeyError as exc:
        raise PerfInputError(str(exc.args[0])) from None
    prec = Precision(precision) if precision else llm.native_precision
    if isl < 1 or osl < 1:
        raise PerfInputError("isl and osl must be at least 1 token")
    if mode not in ("aggregated", "disaggregated", "both"):
        raise PerfInputError(f"unknown mode {mode!r} (known: aggregated, disaggregated, both)")
    limits = (("tp", tp), ("ep", ep), ("pp", pp), ("concurrency", concurrency), ("max_concurrency", max_concurrency))
    for label, value in limits:
        if value is not None and value < 1:
            raise PerfInputError(f"{label} must be at least 1")
    if power_cap_w is not None and power_cap_w <= gpu.idle_power_w:
        raise PerfInputError(f"power cap {power_cap_w} W is at or below the GPU's idle power {gpu.idle_power_w} W")
    if pue < 1:
        raise PerfInputError("pue must be at least 1")
    if ep and not llm.is_moe and ep > 1:
        raise PerfInputError(f"model {model!r} has no experts; ep must be 1")
    ctx = _context(catalog, llm, sys_, gpu, prec, power_cap_w)
    cal = ctx.cal
    if usd_per_gpu_hour is None:
        try:
            usd_per_gpu_hour = reference_cost_basis(catalog, system, region).usd_per_gpu_hour
        except (KeyError, ValueError) as exc:
            raise PerfInputError(str(exc.args[0])) from None
    usd_gpu_h = usd_per_gpu_hour
    provisioned_kw = sys_.rack_power_max_kw / sys_.gpus_per_rack * pue
    host_w = max(sys_.rack_power_nominal_kw * 1000.0 / sys_.gpus_per_rack - gpu.tdp_w, 0.0)

    columns = []
    if mode in ("aggregated", "both"):
        columns.append(_aggregated(ctx, isl, osl, tp, ep, pp, concurrency, max_concurrency))
    if mode in ("disaggregated", "both"):
        columns.append(_disaggregated(ctx, isl, osl, tp, ep, pp, concurrency, max_concurrency, ttft_ms))
    cols = {k: np.concatenate([c[k] for c in columns]) for k in columns[0]}
    if not len(cols["tp"]):
        raise PerfInputError(
            f"{model} at {prec.value} does not fit on {system} in any layout tried (tp, ep, pp)"
            if not (tp or ep or pp or concurrency)
            else f"{model} at {prec.value} does not fit on {system} with the pinned layout"
        )

    out_gpu = cols["out_per_gpu"]
    total_gpu = out_gpu * (1.0 + isl / osl)
    power = cols["power_w"]
    facility_w = (power + host_w) * pue
    meets = np.ones(len(out_gpu), dtype=bool)
    if ttft_ms is not None:
        meets &= cols["ttft_s"] * 1e3 <= ttft_ms
    if itl_ms is not None:
        meets &= cols["itl_s"] * 1e3 <= itl_ms
    count = len(out_gpu)
    columns = {
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
        # $/M scales as 1 / rate: the price at 1 tok/s/GPU divided by the rate.
        "usd_per_million_tokens": usd_per_million_tokens(usd_gpu_h, 1.0) / out_gpu,
        "usd_per_million_tokens_total": usd_per_million_tokens(usd_gpu_h, 1.0) / total_gpu,
        # facility W / (tok/s) = J/tok; / 3.6e6 J/kWh x g/kWh x 1e6 tokens
        "gco2_per_million_tokens": facility_w / out_gpu / 3.6e6 * reg.grid_carbon_g_per_kwh * 1e6,
        "kv_max_concurrency": cols["kv_max"].astype(int),
        "prefill_gpu_fraction": cols["prefill_fraction"],
        "meets_targets": meets,
    }
    user = columns["tokens_per_s_per_user"]
    front_idx = np.flatnonzero(pareto_front_mask(user, total_gpu))
    front_idx = front_idx[np.argsort(-user[front_idx])]
    front = [_point(columns, i) for i in front_idx]
    candidates = np.flatnonzero(meets)
    if len(candidates):
        operating = _point(columns, int(candidates[np.argmax(total_gpu[candidates])]))
    else:
        # Nothing meets the targets: the point that misses them by the smallest factor.
        miss = np.ones(count)
        if ttft_ms is not None:
            miss = np.maximum(miss, cols["ttft_s"] * 1e3 / ttft_ms)
        if itl_ms is not None:
            miss = np.maximum(miss, cols["itl_s"] * 1e3 / itl_ms)
        operating = _point(columns, int(np.argmin(miss)))
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
        provisioned_kw_per_gpu=provisioned_kw,
        calibration=cal.name,
        columns=columns,
        front=front,
        operating_point=operating,
    )


def _aggregated(ctx: _Context, isl, osl, tp_pin, ep_pin, pp_pin, conc_pin, conc_max) -> dict:
    tp, ep, pp, conc = _layouts(ctx.model, ctx.system, tp_pin, ep_pin, pp_pin, conc_pin, conc_max)
    kv_max = max_concurrency_per_replica(ctx.gpu, ctx.model, ctx.precision, tp, ep, pp, isl + osl)
    fits = (conc <= kv_max) & (conc >= pp)
    if not ctx.model.is_moe:
        fits &= ep == 1
    tp, ep, pp, conc, kv_max = tp[fits], ep[fits], pp[fits], conc[fits], kv_max[fits]
    n = np.maximum(tp, ep)
    micro = conc / pp
    decode_ctx = isl + osl / 2.0
    prefill_per_step = micro * isl / osl
    step = _step(ctx, micro, decode_ctx, prefill_per_step, isl, tp, ep, pp)
    t_iter = pp * step["time_s"]
    first = _step(ctx, micro, decode_ctx, prefill_per_step + isl, isl, tp, ep, pp)
    ttft = pp * first["time_s"] + 0.5 * t_iter
    out_per_gpu = conc / t_iter / (n * pp)
    return {
        "mode": np.full(len(tp), "aggregated"),
        "tp": tp,
        "ep": ep,
        "pp": pp,
        "conc": conc,
        "kv_max": kv_max,
        "itl_s": t_iter,
        "ttft_s": ttft,
        "out_per_gpu": out_per_gpu,
        "decode_per_gpu": out_per_gpu,
        "prefill_per_gpu": out_per_gpu * isl / osl,
        "power_w": step["power_w"],
        "clock": step["clock"],
        "prefill_fraction": np.zeros(len(tp)),
    }


def _prefill_pool(ctx: _Context, isl: int, ttft_ms: float | None) -> dict:
    """Best prefill-pool layout: most prompt tokens/s per GPU whose single-prompt TTFT meets the target."""
    tp, ep, pp, _ = _layouts(ctx.model, ctx.system, None, None, None, 1)
    kv_max = max_concurrency_per_replica(ctx.gpu, ctx.model, ctx.precision, tp, ep, pp, isl)
    ok = kv_max >= 1
    tp, ep, pp = tp[ok], ep[ok], pp[ok]
    if not len(tp):
        return {}
    n = np.maximum(tp, ep)
    prompts = np.maximum(1.0, np.floor(PREFILL_BATCH_TOKENS / isl))
    prompts = np.minimum(prompts, np.maximum(kv_max[ok], 1.0))
    batch = _step(ctx, np.zeros_like(tp), 0.0, prompts * isl, isl, tp, ep, pp)
    single = _step(ctx, np.zeros_like(tp), 0.0, float(isl), isl, tp, ep, pp)
    rate = prompts * isl / (pp * batch["time_s"]) / (n * pp)
    ttft = pp * single["time_s"]
    allowed = ttft * 1e3 <= ttft_ms if ttft_ms is not None else np.ones(len(tp), dtype=bool)
    pick = np.flatnonzero(allowed)
    i = pick[np.argmax(rate[pick])] if len(pick) else int(np.argmin(ttft))
    return {"rate": rate[i], "ttft_s": ttft[i], "power_w": batch["power_w"][i], "clock": batch["clock"][i]}


def _disaggregated(ctx: _Context, isl, osl, tp_pin, ep_pin, pp_pin, conc_pin, conc_max, ttft_ms) -> dict:
    pre = _prefill_pool(ctx, isl, ttft_ms)
    tp, ep, pp, conc = _layouts(ctx.model, ctx.system, tp_pin, ep_pin, pp_pin, conc_pin, conc_max)
    kv_max = max_concurrency_per_replica(ctx.gpu, ctx.model, ctx.precision, tp, ep, pp, isl + osl)
    fits = (conc <= kv_max) & (conc >= pp) & bool(pre)
    if not ctx.model.is_moe:
        fits &= ep == 1
    tp, ep, pp, conc, kv_max = tp[fits], ep[fits], pp[fits], conc[fits], kv_max[fits]
    empty = {k: np.zeros(0) for k in ("tp", "ep", "pp", "conc", "kv_max", "itl_s", "ttft_s", "out_per_gpu")}
    if not len(tp):
        empty.update(
            mode=np.zeros(0, dtype=str),
            decode_per_gpu=np.zeros(0),
            prefill_per_gpu=np.zeros(0),
            power_w=np.zeros(0),
            clock=np.zeros(0),
            prefill_fraction=np.zeros(0),
        )
        return empty
    n = np.maximum(tp, ep)
    micro = conc / pp
    step = _step(ctx, micro, isl + osl / 2.0, 0.0, isl, tp, ep, pp)
    t_iter = pp * step["time_s"]
    decode_per_gpu = conc / t_iter / (n * pp)
    prefill_gpus_per_decode_gpu = decode_per_gpu * isl / osl / pre["rate"]
    out_per_gpu = decode_per_gpu / (1.0 + prefill_gpus_per_decode_gpu)
    fraction = prefill_gpus_per_decode_gpu / (1.0 + prefill_gpus_per_decode_gpu)
    kv_transfer = kv_bytes_per_sequence(ctx.model, ctx.precision, isl) / (
        link_bandwidth_gb_s(ctx.system, ctx.gpu, ctx.system.gpus_per_nvlink_domain + 1) * 1e9
    )
    ttft = pre["ttft_s"] + kv_transfer + 0.5 * t_iter
    power = fraction * pre["power_w"] + (1.0 - fraction) * step["power_w"]
    return {
        "mode": np.full(len(tp), "disaggregated"),
        "tp": tp,
        "ep": ep,
        "pp": pp,
        "conc": conc,
        "kv_max": kv_max,
        "itl_s": t_iter,
        "ttft_s": ttft,
        "out_per_gpu": out_per_gpu,
        "decode_per_gpu": decode_per_gpu,
        "prefill_per_gpu": np.full(len(tp), pre["rate"]),
        "power_w": power,
        "clock": (1.0 - fraction) * step["clock"] + fraction * pre["clock"],
        "prefill_fraction": fraction,
    }
