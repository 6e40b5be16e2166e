"""Throughput per GPU of measured points from their static features (`perf.features`) and a `ParamSet`.

Per element, with the step times :math:`t_d` (decode step), :math:`t_c` (prefill chunk of :math:`T_c`
tokens), :math:`t_f` (one prompt) and :math:`a` tokens per decode step (1, or the MTP acceptance):

.. math::
    \\text{wave: } \\frac{B\\,O}{(B I / T_c)\\,t_c + O\\,t_d/a} \\qquad
    \\text{concurrency: } \\frac{B\\,O}{t_f + O\\,t_d/a} \\qquad
    \\text{latency: } \\frac{a B}{t_d}\\Big|_{t_d/a \\le h\\,TPOT_{p99}}

divided by the replica's GPUs; disaggregated runs take the smaller of the decode workers' rate and the
prefill workers' :math:`W T_c / t_c \\cdot O/I`, over all GPUs. Server loads (MLPerf, Triton) are scaled
by the fitted sustainable-load factor. A row's prediction is the best of its elements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tokenfab.perf.features import KINDS, Elements
from tokenfab.perf.params import ParamSet
from tokenfab.perf.step import step_time_s

WAVE, CONC, DISAGG, LATENCY, QPS = range(len(KINDS))


def _values(el: Elements, params: ParamSet) -> dict[str, np.ndarray]:
    gi = (
        np.array([params.gen_index(g) for g in el.index["gen"]], dtype=int)
        if len(el.row)
        else np.zeros(0, int)
    )
    bi = np.array([params.backend_index(b) for b in el.index["backend"]], dtype=int) if len(el.row) else gi
    return params.values(gi, el.index["prec"], bi)


def element_throughput(
    el: Elements,
    params: ParamSet,
    values: dict[str, Any] | None = None,
    latencies: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(output tok/s per GPU, feasible) per element; fills `latencies` (``itl_ms``, ``ttft_ms``) if given."""
    v = dict(values if values is not None else _values(el, params))
    c = el.cols
    eager = v["eager"]
    v["eager"] = np.where(c["eager_decode"] > 0, eager, 1.0)
    t_dec = step_time_s(el.work["decode"], el.peak, v)
    v["eager"] = eager
    t_chunk = step_time_s(el.work["chunk"], el.peak, v)
    t_first = step_time_s(el.work["first"], el.peak, v)
    a = np.where(c["mtp"] > 0, v["mtp_tokens"], 1.0)
    b, isl, osl, pp = c["b"], c["isl"], c["osl"], c["pp"]
    # pp micro-batches of b/pp sequences are in flight: every sequence advances once per pp stage-steps.
    t_round = pp * t_dec / a
    wave = b * osl / ((b * isl / c["chunk"]) * t_chunk + osl * t_round) / c["gpus"]
    conc = b * osl / (pp * t_first + osl * t_round) / c["gpus"]
    dis_dec = c["conc"] * osl / (c["p_pp"] * t_first + osl * t_round)
    dis_pre = c["workers"] * c["chunk"] / t_chunk * osl / isl
    disagg = np.minimum(dis_dec, dis_pre) / c["system_gpus"]
    latency = b / t_round / c["gpus"]
    k = el.kind
    out = np.select(
        [k == WAVE, k == CONC, k == DISAGG, k == LATENCY, k == QPS], [wave, conc, disagg, latency, wave]
    )
    out = out * np.where(c["load"] > 0, v["load"], 1.0)
    out = np.where(k == QPS, np.minimum(out, c["offered"]), out)
    feasible = (k != LATENCY) | (t_round <= v["headroom"] * c["limit_s"])
    if latencies is not None:
        # TTFT: one prompt's prefill (pp stages) plus half a decode round of waiting; waves: the first chunk
        first = np.where(k == DISAGG, c["p_pp"] * t_first, pp * t_first + 0.5 * t_round)
        latencies["ttft_ms"] = np.where((k == WAVE) | (k == QPS), t_chunk, first) * 1e3
        latencies["itl_ms"] = t_round * 1e3
    return out, feasible


def row_predictions(el: Elements, params: ParamSet, values: dict[str, Any] | None = None) -> np.ndarray:
    """Best feasible element per row (rows with none feasible: their smallest-batch element); NaN for
    rows without elements."""
    pred = np.full(el.n_rows, np.nan)
    if not len(el.row):
        return pred
    out, ok = element_throughput(el, params, values)
    starts = np.flatnonzero(np.r_[True, el.row[1:] != el.row[:-1]])
    rows = el.row[starts]
    best = np.maximum.reduceat(np.where(ok, out, -np.inf), starts)
    smallest = np.minimum.reduceat(np.where(ok, np.inf, el.cols["b"]), starts)
    fallback = np.maximum.reduceat(
        np.where(el.cols["b"] <= np.repeat(smallest, np.diff(np.r_[starts, len(el.row)])), out, -np.inf),
        starts,
    )
    pred[rows] = np.where(np.isfinite(best), best, fallback)
    return pred


def row_metric_predictions(el: Elements, params: ParamSet, metric: np.ndarray) -> np.ndarray:
    """Each row's own metric (`metric`: index in `perf.features.METRICS` per row), read at its best element (highest
    feasible output throughput); NaN for rows without elements."""
    pred = np.full(el.n_rows, np.nan)
    if not len(el.row):
        return pred
    lat: dict[str, Any] = {}
    out, ok = element_throughput(el, params, None, lat)
    score = np.where(ok, out, -1.0 / np.maximum(el.cols["b"], 1e-9))
    order = np.lexsort((score, el.row))
    last = order[np.r_[el.row[order][1:] != el.row[order][:-1], True]]
    c = el.cols
    per_element = np.select(
        [metric[el.row] == 0, metric[el.row] == 1, metric[el.row] == 2],
        [out, out * (c["isl"] + c["osl"]) / c["osl"], lat["itl_ms"]],
        lat["ttft_ms"],
    )
    pred[el.row[last]] = per_element[last]
    return pred
