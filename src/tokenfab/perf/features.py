"""Static features of measured points: for each row the layouts and loads it may have run at
(`Element`s) and the work of the steps it is made of, computed once so a fit re-times them cheaply.

A row becomes one or more elements:

- **wave** (offline, static batch): ``B`` sequences per replica are prefilled in chunks of the engine's
  ``max_num_tokens`` and decoded together; ``B`` is the batch of a static row, else the smallest of the
  engine's max batch, its max tokens per step and what the KV cache holds.
- **concurrency** (InferenceX aggregated): ``C`` sequences per replica; each step decodes them and
  prefills ``C·ISL/OSL`` prompt tokens on average; a request also waits one prompt's prefill.
- **disaggregated**: decode workers with ``C/D`` sequences each, prefill workers with their own layout.
- **latency** (MLPerf Server/Interactive): a grid of batches; the prediction keeps the largest whose ITL
  meets the TPOT limit (times a fitted headroom).
- **qps** (Triton online): the offered load, capped by the wave capacity.

Rows without a stated layout (MLPerf) get one element per candidate layout; the predictor keeps the best.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tokenfab.catalog.models import Gpu, LlmModel, Precision, System
from tokenfab.catalog.perf_models import EngineProfile
from tokenfab.perf.aliases import resolver_for, serving_precision
from tokenfab.perf.calibration import compute_precision
from tokenfab.perf.corpus import SCENARIOS, PointRow
from tokenfab.perf.engines import engine_profile, profiles_from
from tokenfab.perf.parallelism import max_concurrency_per_replica
from tokenfab.perf.params import MTP_DRAFT_TOKENS, PRECISIONS
from tokenfab.perf.step import WORK_KEYS, phase_work

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog
    from tokenfab.units import Floats

KINDS = ("wave", "concurrency", "disaggregated", "latency", "qps")
METRICS = ("output_tok_s_per_gpu", "total_tok_s_per_gpu", "itl_ms", "ttft_ms")
FALLBACK_LENGTHS = {"gpt-j": (871, 82), "gpt-oss": (4000, 1278)}
"""(ISL, OSL) for rows that leave them blank, by model family. Estimates: GPT-J runs the CNN/DailyMail set
of the llama3.1-8b benchmark (871 / 82 in its rows); gpt-oss as perf.yaml's mlperf-v6.0 point."""
BENCHMARK_BEAMS = {("mlperf", "gpt-j"): 4}
"""Beam width of benchmarks that decode with beam search (MLPerf GPT-J: 4 beams, mlcommons/inference
language/gpt-j reference implementation); every beam is a decoded sequence."""
DEFAULT_LENGTHS = (1024, 512)
"""(ISL, OSL) for any other row that leaves them blank (estimate)."""
NOMINAL_LENGTH_MEAN = 0.9
"""InferenceX draws lengths uniformly in [0.8 L, L]: mean 0.9 L [-]."""
LATENCY_BATCHES = 14


@dataclass(frozen=True)
class RowSetup:
    """What a row resolves to in the catalog."""

    model: LlmModel
    system: System
    gpu: Gpu
    precision: Precision
    profile: EngineProfile


@dataclass
class Elements:
    """Element arrays (one entry per element) and the per-phase work, for a list of rows."""

    row: np.ndarray
    kind: np.ndarray
    cols: dict[str, np.ndarray]
    work: dict[str, dict[str, np.ndarray]]
    """phase (``decode``, ``chunk``, ``first``) -> `WORK_KEYS` arrays"""
    peak: dict[str, np.ndarray]
    index: dict[str, np.ndarray]
    """``gen``, ``prec``, ``backend`` names per element (mapped to parameter indices by the predictor)"""
    unpredictable: dict[int, str] = field(default_factory=dict)
    """row position -> reason"""
    n_rows: int = 0


def resolve_row(catalog: Catalog, row: PointRow) -> RowSetup | str:
    """The catalog entries a row means, or the reason it cannot be predicted."""
    if row.scenario not in SCENARIOS:
        return f"unknown scenario {row.scenario!r} (known: {', '.join(SCENARIOS)})"
    r = resolver_for(catalog)
    model_name = r.model(row.model)
    if model_name is None:
        return f"unknown model {row.model!r}"
    system_name = r.system(row.gpu)
    if system_name is None:
        return f"unknown GPU {row.gpu!r}"
    model = catalog.typed("models", model_name, LlmModel)
    system = catalog.typed("systems", system_name, System)
    gpu = catalog.typed("gpus", system.gpu, Gpu)
    precision = serving_precision(row.precision, gpu, r.blank_precision.get(row.gpu))
    if precision is None:
        return f"unknown precision {row.precision!r}"
    if row.metric not in METRICS:
        return f"unknown metric {row.metric!r} (known: {', '.join(METRICS)})"
    try:
        profile = engine_profile(profiles_from(catalog), row.engine, row.engine_version, row.source_kind)
    except KeyError as exc:
        return str(exc.args[0])
    return RowSetup(model, system, gpu, precision, profile)


def _lengths(row: PointRow) -> tuple[float, float]:
    isl, osl = row.isl, row.osl
    if isl is None or osl is None:
        fi, fo = FALLBACK_LENGTHS.get(row.model_family, DEFAULT_LENGTHS)
        isl, osl = isl or fi, osl or fo
    if "random_range_ratio 0.8" in row.notes:
        isl, osl = isl * NOMINAL_LENGTH_MEAN, osl * NOMINAL_LENGTH_MEAN
    return float(isl), float(osl)


def _layouts(row: PointRow, s: RowSetup) -> list[tuple[int, int, int, int]]:
    """(attention tp, GPUs per stage, ep, pp) candidates for a row."""
    moe = s.model.is_moe
    if row.tp:
        n = max(row.tp, row.ep or 1)
        d = row.disaggregation
        if d and d.decode_workers:
            n = max(n, d.decode_gpus // d.decode_workers)
        attn_tp = 1 if row.dp_attention else row.tp
        ep = (n if row.dp_attention else (row.ep or 1)) if moe else 1
        return [(attn_tp, n, ep, row.pp or 1)]
    limit = min(8, row.system_gpus or 8, s.system.gpus_per_nvlink_domain)
    out = []
    for t in (1, 2, 4, 8):
        if t > limit or t > s.model.num_heads:
            continue
        out.append((t, t, 1, 1))
        if moe and t > 1:
            out.append((1, t, t, 1))
    return out


def _kv_cap(s: RowSetup, layout: tuple[int, int, int, int], context: float) -> float:
    """Sequences of `context` tokens the replica's KV cache holds (experts and data-parallel attention
    copies spread over all the stage's GPUs)."""
    attn_tp, n, _, pp = layout
    cap = max_concurrency_per_replica(
        s.gpu, s.model, s.precision, float(attn_tp), float(n), float(pp), context, s.profile.kv_cache_fraction
    )
    return float(cap)


def row_elements(row: PointRow, s: RowSetup) -> list[dict[str, Any]]:
    """Candidate elements of one row (empty: nothing fits)."""
    isl, osl = _lengths(row)
    prof = s.profile
    max_batch = row.max_batch or prof.max_batch
    max_tokens = row.max_num_tokens or prof.max_num_tokens
    graphs_off = "cuda_graphs_disabled" in row.flags or prof.cuda_graph_max_batch == 0
    mtp = row.spec_decoding not in ("", "none")
    beams = BENCHMARK_BEAMS.get((row.source_kind, row.model_family), 1)
    out = []
    for layout in _layouts(row, s):
        attn_tp, n, ep, pp = layout
        # KV for the whole ISL + OSL of each admitted sequence (the mean context fitted worse, cross-validated)
        cap = _kv_cap(s, layout, isl + osl) / beams
        if cap < 1:
            continue
        base = {
            "attn_tp": attn_tp, "n": n, "ep": ep, "pp": pp, "gpus": n * pp, "isl": isl, "osl": osl,
            "draft": MTP_DRAFT_TOKENS if mtp else 0, "beams": float(beams), "mtp": float(mtp),
            "system_gpus": row.system_gpus or n * pp, "p_attn_tp": attn_tp, "p_n": n, "p_ep": ep, "p_pp": pp,
            "workers": 1.0, "limit_s": np.inf, "offered": np.inf, "load": 0.0, "conc": 0.0,
        }  # fmt: skip
        wave_b = float(max(1, min(max_batch, max_tokens, cap)))
        wave = {"kind": "wave", "b": wave_b, "chunk": min(max_tokens, wave_b * isl), "pre_mix": 0.0}
        out += [base | e for e in _scenario_elements(row, s, wave, isl, osl, max_tokens, n * pp)]
    for e in out:
        e["eager_decode"] = float(graphs_off or e["b"] > prof.cuda_graph_max_batch)
    return out


def _scenario_elements(
    row: PointRow,
    s: RowSetup,
    wave: dict[str, Any],
    isl: Floats,
    osl: Floats,
    max_tokens: Floats,
    gpus: Floats,
) -> list[dict[str, Any]]:
    """The load(s) a row ran at, for one layout (see the module docstring)."""
    if row.scenario == "static_batch":
        b = float(row.concurrency or wave["b"])
        return [wave | {"b": b, "chunk": b * isl}]
    if row.scenario == "offline_max_throughput":
        return [wave]
    if row.scenario == "server" and row.qps is not None:
        return [wave | {"kind": "qps", "offered": row.qps * osl / (row.system_gpus or gpus), "load": 1.0}]
    if row.tpot_limit_ms and row.concurrency is None:
        limit = row.tpot_limit_ms * 1e-3
        return [
            {
                "kind": "latency",
                "b": float(b),
                "chunk": isl,
                "pre_mix": b * isl / osl,
                "limit_s": limit,
                "load": 1.0,
            }
            for b in np.unique(np.round(np.geomspace(1, wave["b"], LATENCY_BATCHES)))
        ]
    if row.disaggregation is not None and row.concurrency:
        d = row.disaggregation
        pn = max(d.prefill_gpus // max(d.prefill_workers, 1), 1)
        p_ep = (pn if d.prefill_dp_attention else d.prefill_ep) if s.model.is_moe else 1
        return [{
            "kind": "disaggregated", "b": row.concurrency / max(d.decode_workers, 1),
            "chunk": max(isl, float(max_tokens)), "pre_mix": 0.0, "p_attn_tp": 1 if d.prefill_dp_attention else d.prefill_tp,
            "p_n": pn, "p_ep": p_ep, "p_pp": 1, "workers": float(d.prefill_workers), "conc": row.concurrency,
            "system_gpus": float(d.prefill_gpus + d.decode_gpus),
        }]  # fmt: skip
    if row.concurrency:
        # InferenceX aggregated values are per GPU of one tp x pp replica carrying the whole concurrency
        # (concurrency x tok/s/user / value = tp on the development corpus's aggregated rows).
        b = row.concurrency
        return [{"kind": "concurrency", "b": b, "chunk": isl, "pre_mix": b * isl / osl}]
    # server without a latency limit we can read: saturated capacity times the load factor
    return [wave | {"load": 1.0}]


def _phase(group: list[dict[str, Any]], s: RowSetup, phase: str) -> dict[str, np.ndarray]:
    g = {k: np.array([e[k] for e in group], dtype=float) for k in group[0] if k != "kind"}
    if phase == "decode":
        return phase_work(
            s.model,
            s.precision,
            s.system,
            s.gpu,
            g["b"] * g["beams"] / g["pp"],
            g["isl"] + g["osl"] / 2,
            g["pre_mix"] / g["pp"],
            g["isl"],
            g["attn_tp"],
            g["n"],
            g["ep"],
            g["pp"],
            g["draft"],
        )
    tokens = g["chunk"] if phase == "chunk" else g["isl"]
    zero = np.zeros_like(tokens)
    return phase_work(
        s.model,
        s.precision,
        s.system,
        s.gpu,
        zero,
        zero,
        tokens,
        g["isl"],
        g["p_attn_tp"],
        g["p_n"],
        g["p_ep"],
        g["p_pp"],
    )


def build_elements(catalog: Catalog, rows: list[PointRow]) -> Elements:
    """Resolve every row and compute the static work of its candidate elements."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    setups: dict[tuple[Any, ...], RowSetup] = {}
    unpredictable: dict[int, str] = {}
    for i, row in enumerate(rows):
        s = resolve_row(catalog, row)
        if isinstance(s, str):
            unpredictable[i] = s
            continue
        els = row_elements(row, s)
        if not els:
            unpredictable[i] = (
                f"{s.model.name} at {s.precision.value} does not fit on {row.system_gpus or '?'} x {row.gpu}"
            )
            continue
        key = (s.model.name, s.precision, s.system.name, s.profile.name)
        setups[key] = s
        groups[key].extend([e | {"row": i} for e in els])
    parts = []
    for key, group in groups.items():
        s = setups[key]
        work = {ph: _phase(group, s, ph) for ph in ("decode", "chunk", "first")}
        cprec = compute_precision(s.gpu, s.precision)
        m = len(group)
        parts.append(
            {
                "row": np.array([e["row"] for e in group]),
                "kind": np.array([KINDS.index(e["kind"]) for e in group]),
                "cols": {
                    k: np.array([e[k] for e in group], dtype=float)
                    for k in group[0]
                    if k not in ("kind", "row")
                },
                "work": work,
                "peak": {
                    "gemm_flops": np.full(m, s.gpu.dense_tflops[cprec] * 1e12),
                    "attn_flops": np.full(
                        m, s.gpu.dense_tflops.get(Precision.bf16, s.gpu.dense_tflops[cprec]) * 1e12
                    ),
                    "bw": np.full(m, s.gpu.hbm_bandwidth_tb_s * 1e12),
                },
                "index": {
                    "gen": np.full(m, s.gpu.architecture, dtype=object),
                    "prec": np.full(m, PRECISIONS.index(s.precision)),
                    "backend": np.full(m, s.profile.backend, dtype=object),
                },
            }
        )
    return _concat(parts, unpredictable, len(rows))


def _concat(parts: list[dict[str, Any]], unpredictable: dict[int, str], n_rows: int) -> Elements:
    if not parts:
        empty = np.zeros(0)
        return Elements(empty.astype(int), empty.astype(int), {}, {}, {}, {}, unpredictable, n_rows)
    cat = np.concatenate
    row = cat([p["row"] for p in parts])
    order = np.argsort(row, kind="stable")
    return Elements(
        row=row[order],
        kind=cat([p["kind"] for p in parts])[order],
        cols={k: cat([p["cols"][k] for p in parts])[order] for k in parts[0]["cols"]},
        work={
            ph: {k: cat([p["work"][ph][k] for p in parts])[order] for k in WORK_KEYS}
            for ph in parts[0]["work"]
        },
        peak={k: cat([p["peak"][k] for p in parts])[order] for k in parts[0]["peak"]},
        index={k: cat([p["index"][k] for p in parts])[order] for k in parts[0]["index"]},
        unpredictable=unpredictable,
        n_rows=n_rows,
    )
