"""The sweep report: Pareto fronts of $ per million tokens, the parameters that matter most, as HTML + PNG.

`pareto_rows` marks the points no other point beats on both axes; `effect_sizes` is a one-way analysis of
variance per parameter (η², the share of a metric's variance explained by the parameter's levels);
`write_report` draws the figures with matplotlib (Agg, no display) and writes ``report.html`` beside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tokenfab.perf.curve import pareto_front_mask

OBJECTIVE = "usd_per_million_tokens"
FALLBACK_OBJECTIVE = "usd_per_gpu_hour"
IMPORTANCE_METRICS = (
    "usd_per_million_tokens",
    "usd_per_gpu_hour",
    "tokens_per_s_per_mw",
    "capex_usd",
    "pue_annual",
)
NUMERIC_BINS = 5
"""A numeric parameter with more distinct values than this is grouped into this many quantile bins [-]."""
MAX_COLOURS = 12
"""Points are coloured by the most important parameter when it has at most this many levels [-]."""


def objective_of(frame: pd.DataFrame) -> str:
    """The metric to minimise: $ per million tokens when the tokens stage ran, else $ per GPU-hour."""
    if OBJECTIVE in frame and frame[OBJECTIVE].notna().any():
        return OBJECTIVE
    return FALLBACK_OBJECTIVE


def usable(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """Rows with a finite value in every one of `columns`."""
    mask = np.ones(len(frame), dtype=bool)
    for column in columns:
        if column not in frame:
            return frame.iloc[0:0]
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        mask &= np.isfinite(values)
    return frame[mask]


def certified_mask(frame: pd.DataFrame) -> np.ndarray:
    """Points that passed certification (no error finding) and ran without error; every point when the sweep
    did not run the certify stage."""
    mask = np.ones(len(frame), dtype=bool)
    if "certified" in frame:
        mask &= frame["certified"].fillna(False).astype(bool).to_numpy()
    if "certify_errors" in frame:
        errors = pd.to_numeric(frame["certify_errors"], errors="coerce").to_numpy(dtype=float)
        mask &= np.nan_to_num(errors, nan=1.0) == 0
    if "error" in frame:
        mask &= frame["error"].isna().to_numpy()
    return mask


def ranked(frame: pd.DataFrame, cost: str) -> pd.DataFrame:
    """Certified points by `cost`, lowest first; a point that fails certification is never ranked."""
    rows = frame[certified_mask(frame)]
    return rows.sort_values(cost, na_position="last") if cost in rows else rows


def pareto_rows(frame: pd.DataFrame, cost: str, other: str, other_higher_is_better: bool) -> pd.DataFrame:
    """Certified rows on the Pareto front of minimum `cost` against `other` (maximised or minimised), sorted by
    `other`. A point that fails certification is never on the front.

    Uses `tokenfab.perf.curve.pareto_front_mask` (both axes maximised) on ``(±other, -cost)``.
    """
    rows = usable(frame[certified_mask(frame)], (cost, other))
    if rows.empty:
        return rows
    sign = 1.0 if other_higher_is_better else -1.0
    mask = pareto_front_mask(sign * rows[other].to_numpy(dtype=float), -rows[cost].to_numpy(dtype=float))
    return rows[mask].sort_values(other)


def levels_of(values: pd.Series) -> pd.Series:
    """Group labels for one parameter: its values, or quantile bins when it is numeric with many values."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all() and values.nunique() > NUMERIC_BINS:
        return pd.qcut(numeric, NUMERIC_BINS, duplicates="drop").astype(str)
    return values.astype(str)


def eta_squared(levels: pd.Series, metric: pd.Series) -> float:
    """Share of the variance of `metric` explained by the groups in `levels` (one-way ANOVA effect size).

    .. math::
        \\eta^2 = \\frac{SS_{between}}{SS_{total}}
                = \\frac{\\sum_g n_g (\\bar y_g - \\bar y)^2}{\\sum_i (y_i - \\bar y)^2}

    0 when the groups' means are equal, 1 when the parameter alone explains every difference. In a full
    grid the main effects' η² sum to at most 1; the rest is interaction between parameters.

    Reference: Cohen, "Statistical Power Analysis for the Behavioral Sciences", 2nd ed. (1988), §8.2.
    """
    y = metric.to_numpy(dtype=float)
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0 or len(y) < 2:
        return 0.0
    grand = y.mean()
    between = 0.0
    for _, group in pd.Series(y, index=levels.index).groupby(levels.to_numpy()):
        between += len(group) * (group.mean() - grand) ** 2
    return float(between / total)


def effect_sizes(frame: pd.DataFrame, parameters, metrics=IMPORTANCE_METRICS) -> pd.DataFrame:
    """η² of each parameter (rows) on each metric (columns) over the rows where the metric is finite."""
    table = {}
    for metric in metrics:
        rows = usable(frame, (metric,))
        if rows.empty:
            continue
        table[metric] = {
            name: eta_squared(levels_of(rows[name]), rows[metric].astype(float)) if name in rows else math.nan
            for name in parameters
        }
    return pd.DataFrame(table, index=list(parameters))


# --- figures and HTML ---------------------------------------------------------------------------


def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.8), dpi=110)
    return figure, figure.add_subplot()


def _scatter_with_front(
    rows: pd.DataFrame,
    front: pd.DataFrame,
    x: str,
    y: str,
    colour_by: str | None,
    title: str,
    xlabel: str,
    ylabel: str,
    path: Path,
    x_scale: float = 1.0,
) -> None:
    figure, axes = _figure()
    failing = rows[~certified_mask(rows)]
    rows = rows[certified_mask(rows)]
    if not failing.empty:
        axes.scatter(
            failing[x].astype(float) * x_scale,
            failing[y].astype(float),
            s=30,
            marker="x",
            color="#b00020",
            alpha=0.8,
            label="fails certification (not ranked)",
        )
    levels = levels_of(rows[colour_by]) if colour_by else None
    groups: Iterable[tuple[Any, pd.DataFrame]]
    if levels is None or levels.nunique() > MAX_COLOURS:
        groups, colour_by = [("all points", rows)], None
    else:
        groups = rows.groupby(levels.to_numpy())
    for label, group in groups:
        axes.scatter(group[x].astype(float) * x_scale, group[y].astype(float), s=22, alpha=0.75, label=label)
    axes.plot(
        front[x].astype(float) * x_scale,
        front[y].astype(float),
        color="black",
        linewidth=1.2,
        marker="o",
        markerfacecolor="none",
        markersize=9,
        label="Pareto front",
    )
    axes.set_xlabel(_plain(xlabel))
    axes.set_ylabel(_plain(ylabel))
    axes.set_title(_plain(title))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, title=colour_by, title_fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path)


def _plain(text: str) -> str:
    """Text shown as written: matplotlib reads a pair of `$` as mathtext."""
    return text.replace("$", r"\$")


def _importance_figure(effects: pd.Series, metric: str, path: Path) -> None:
    figure, axes = _figure()
    ordered = effects.sort_values()
    values = ordered.fillna(0.0).to_numpy(dtype=float)
    axes.barh(list(ordered.index), values, color="#3b6ea5", label=_plain(f"η² on {_label(metric)}"))
    for position, value in enumerate(values):
        axes.text(min(value + 0.01, 0.9), position, f"{value:.2f}", va="center", fontsize=8)
    axes.set_xlim(0, 1)
    axes.set_xlabel(_plain(f"η² on {_label(metric)} (share of variance explained)"))
    axes.set_title("Parameters that matter most (one-way ANOVA effect size)")
    axes.grid(alpha=0.3, axis="x")
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def write_report(
    frame: pd.DataFrame, parameters, out_dir: str | Path, *, title: str, notes=()
) -> dict[str, str]:
    """Write the figures and ``report.html`` into `out_dir`; returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parameters = list(parameters)
    cost = objective_of(frame)
    effects = effect_sizes(frame, parameters)
    top = None
    if cost in effects and effects[cost].notna().any() and len(parameters):
        top = str(effects[cost].fillna(-1).idxmax())
    files: dict[str, str] = {}
    fronts: dict[str, pd.DataFrame] = {}

    for name, other, higher, xlabel, scale in (
        (
            "pareto_tokens_per_mw",
            "tokens_per_s_per_mw",
            True,
            "output tokens/s per MW of facility power",
            1.0,
        ),
        ("pareto_capex", "capex_usd", False, "capex [$ billion]", 1e-9),
    ):
        rows = usable(frame, (cost, other))
        if rows.empty:
            continue
        front = pareto_rows(frame, cost, other, higher)
        fronts[name] = front
        path = out / f"{name}.png"
        _scatter_with_front(
            rows,
            front,
            other,
            cost,
            top,
            f"{_label(cost)} against {xlabel}",
            xlabel,
            _label(cost),
            path,
            scale,
        )
        files[name] = str(path)
    if top is not None:
        path = out / "importance.png"
        _importance_figure(effects[cost], cost, path)
        files["importance"] = str(path)

    report = out / "report.html"
    report.write_text(
        _html(frame, parameters, cost, effects, fronts, files, title, list(notes)), encoding="utf-8"
    )
    files["report"] = str(report)
    return files


def _label(metric: str) -> str:
    return {
        "usd_per_million_tokens": "$ per million output tokens",
        "usd_per_gpu_hour": "$ per GPU-hour",
    }.get(metric, metric)


def _table(frame: pd.DataFrame, columns):
    from tokenfab.report.render import PageTable

    columns = [c for c in columns if c in frame]
    rows = [[_fmt(row[c]) for c in columns] for _, row in frame[columns].iterrows()]
    numeric = {c for c in columns if pd.api.types.is_numeric_dtype(frame[c])}
    return PageTable(columns=[str(c) for c in columns], rows=rows, numeric=numeric)


def _fmt(value) -> str:
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return "–"
        return f"{number:.4g}" if abs(number) < 1000 else f"{number:,.0f}"
    return "–" if value is None else str(value)


FRONT_HEADINGS = (
    (
        "pareto_tokens_per_mw",
        "Pareto front: cost against tokens per MW",
        "each point a design; the black line its Pareto front (lower cost, more output tokens/s per MW)",
    ),
    (
        "pareto_capex",
        "Pareto front: cost against capex",
        "each point a design; the black line its Pareto front (lower cost, lower capex in $ billion)",
    ),
)


def _html(frame, parameters, cost, effects, fronts, files, title, notes) -> str:
    """The sweep report page, from the templates every tokenfab report shares (report/templates)."""
    from tokenfab.report.render import file_figure, render_page

    failed = frame[frame["error"].notna()] if "error" in frame else frame.iloc[0:0]
    uncertified = frame[~certified_mask(frame) & (frame["error"].isna() if "error" in frame else True)]
    rule_column = ["certify_failed_rules"] if "certify_failed_rules" in frame else []
    metrics = [
        cost,
        "tokens_per_s_per_gpu",
        "tokens_per_s_per_mw",
        "capex_usd",
        "usd_per_gpu_hour",
        "pue_annual",
        "gpus",
        "it_mw",
        "certify_errors",
        "certify_warnings",
    ]
    sections = [
        {
            "heading": heading,
            "figure": file_figure(files[name], heading, caption),
            "table": _table(fronts[name], [*parameters, *metrics]),
        }
        for name, heading, caption in FRONT_HEADINGS
        if name in files
    ]
    importance = None
    if "importance" in files:
        importance = file_figure(
            files["importance"],
            "parameter importance",
            f"η² of each parameter on {_label(cost)}: the share of its variance the parameter explains",
        )
    return render_page(
        "sweep.html.j2",
        title=title,
        points=len(frame),
        failed=len(failed),
        cost_label=_label(cost),
        notes=notes,
        uncertified=_table(uncertified, [*parameters, *rule_column, "certify_errors", cost])
        if not uncertified.empty
        else None,
        uncertified_count=len(uncertified),
        fronts=sections,
        importance=importance,
        numeric_bins=NUMERIC_BINS,
        effects=_table(effects.reset_index(names="parameter"), ["parameter", *effects.columns])
        if not effects.empty
        else None,
        errors=_table(failed, [*parameters, "error"]) if len(failed) else None,
    )


__all__ = [
    "effect_sizes",
    "eta_squared",
    "levels_of",
    "objective_of",
    "pareto_rows",
    "certified_mask",
    "ranked",
    "usable",
    "write_report",
]
