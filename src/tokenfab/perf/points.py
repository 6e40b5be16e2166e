"""Batch prediction of measured points (`tokenfab tokens --points`) and error summaries.

Each row is predicted under its own conditions with the catalog's fitted parameters: its own metric
(output or input+output tokens/s per GPU, median ITL or TTFT); the error is

.. math:: e = \\frac{\\hat{y} - y}{y}

and summaries give, per group (source, GPU, model family, precision, regime), the median, 90th
percentile and maximum of :math:`|e|` and the coverage (rows predicted / rows given), over the
output-throughput rows (the fitted metric); ``summary.metric`` gives the same per metric. Rows that cannot be
predicted are counted and named with the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tokenfab.perf.corpus import PointRow
from tokenfab.perf.features import METRICS, build_elements
from tokenfab.perf.params import ParamSet, from_catalog, from_theta, initial_theta
from tokenfab.perf.predict import row_metric_predictions

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog

GROUPINGS: dict[str, Callable[[PointRow], str]] = {
    "source": lambda r: r.source_kind or "?",
    "gpu": lambda r: r.gpu,
    "model_family": lambda r: r.model_family or r.model,
    "precision": lambda r: r.precision or "(blank)",
    "scenario": lambda r: r.regime,
}
"""Summary groupings: name -> key of a row (``scenario`` is the regime: offline, interactive, server)."""


def error_stats(errors: np.ndarray, given: int) -> dict[str, float]:
    """Median, p90 and max of |error| over the finite errors, with counts and coverage."""
    e = np.abs(errors[np.isfinite(errors)])
    stats = {"rows": int(given), "predicted": int(len(e)), "coverage": len(e) / given if given else 0.0}
    if len(e):
        stats |= {
            "median_abs_error": float(np.median(e)),
            "p90_abs_error": float(np.percentile(e, 90)),
            "max_abs_error": float(e.max()),
            "mean_signed_error": float(np.mean(errors[np.isfinite(errors)])),
        }
    return stats


def summarise(rows: list[PointRow], predicted: np.ndarray, scored: np.ndarray) -> dict[str, Any]:
    """Error tables overall and per grouping, over the `scored` rows (throughput rows with a value)."""
    measured = np.array([r.value if r.value is not None else np.nan for r in rows], dtype=float)
    errors = np.where(scored, predicted / measured - 1.0, np.nan)
    out: dict[str, Any] = {"overall": error_stats(errors[scored], int(scored.sum()))}
    for name, key in GROUPINGS.items():
        keys = np.array([key(r) for r in rows], dtype=object)
        table = {}
        for k in sorted({str(v) for v in keys[scored]}):
            sel = scored & (keys == k)
            table[k] = error_stats(errors[sel], int(sel.sum()))
        out[name] = table
    return out


def predict_points(catalog: Catalog, rows: list[PointRow], params: ParamSet | None = None) -> dict[str, Any]:
    """``{"rows": [...], "summary": {...}, "unpredictable": {...}}`` for a list of rows.

    Each output row carries ``id, line, model, gpu, scenario, metric, predicted, measured, error`` and,
    when it cannot be predicted, ``reason``. Errors are scored on throughput rows with a value.
    """
    params = params or from_catalog(catalog) or from_theta(initial_theta())
    elements = build_elements(catalog, rows)
    metric = np.array([METRICS.index(r.metric) if r.metric in METRICS else 0 for r in rows], dtype=int)
    predicted = row_metric_predictions(elements, params, metric)
    out_rows: list[dict[str, Any]] = []
    reasons: dict[str, int] = {}
    for i, r in enumerate(rows):
        p = predicted[i]
        reason = elements.unpredictable.get(i)
        error = (p / r.value - 1.0) if (reason is None and r.value and np.isfinite(p)) else None
        item = {
            "id": r.id,
            "line": r.line,
            "model": r.model,
            "gpu": r.gpu,
            "scenario": r.scenario,
            "metric": r.metric,
            "predicted": None if reason or not np.isfinite(p) else float(p),
            "measured": r.value,
            "error": error,
        }
        if reason:
            item["reason"] = reason
            reasons[reason] = reasons.get(reason, 0) + 1
        out_rows.append(item)
    throughput = np.array([r.is_throughput for r in rows], dtype=bool)
    has_value = np.array([r.value is not None for r in rows], dtype=bool)
    summary = summarise(rows, predicted, throughput & has_value) if (throughput & has_value).any() else {}
    if has_value.any():
        measured = np.array([r.value if r.value is not None else np.nan for r in rows], dtype=float)
        errors = predicted / measured - 1.0
        names = np.array([r.metric for r in rows], dtype=object)
        summary["metric"] = {
            m: error_stats(errors[has_value & (names == m)], int((has_value & (names == m)).sum()))
            for m in sorted({r.metric for r in rows if r.value is not None})
        }
    summary["unpredictable"] = {
        "count": len(elements.unpredictable),
        "throughput_rows": int(sum(1 for i in elements.unpredictable if rows[i].is_throughput)),
        "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "ids": [rows[i].id for i in sorted(elements.unpredictable)],
    }
    summary["parameters"] = params.meta or {"corpus": "initial values (no fit in the catalog)"}
    return {"rows": out_rows, "summary": summary}
