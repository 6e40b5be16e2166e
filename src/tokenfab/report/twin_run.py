"""Writing a twin `Run`: ``run.json``, ``timeseries.parquet``, ``jobs.parquet`` and ``report.html`` with
PNG plots (allocation/utilisation, facility power against the cap, tokens/s, queue length)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from tokenfab.io.atomic import atomic_path, write_text_atomic


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def run_document(run) -> dict:
    """The run.json document (see docs/twin.md for the schema)."""
    return _jsonable(run.to_dict())


def write_parquet(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({k: (v.astype(str) if v.dtype == object else v) for k, v in columns.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _plots(run, out_dir: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = run.series
    hours = s["time_s"] / 3600.0
    figures = []

    def save(fig, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        figures.append((name, title))

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.stackplot(
        hours,
        s["gpus_training"] / run.total_gpus,
        s["gpus_inference"] / run.total_gpus,
        s["gpus_down"] / run.total_gpus,
        labels=["training", "inference", "down"],
        colors=["#4c72b0", "#55a868", "#c44e52"],
        alpha=0.8,
    )
    ax.plot(hours, s["utilisation"], color="black", lw=1.2, label="utilisation")
    ax.plot(hours, s["fragmentation"], color="#8172b2", lw=1, ls="--", label="fragmentation")
    ax.set_ylim(0, 1)
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("share of GPUs")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    save(fig, "allocation.png", "Allocation and utilisation")

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.step(run.power_step_time_s / 3600.0, run.power_step_kw / 1000.0, where="post", label="facility power", lw=1)
    ax.plot(hours, s["facility_cap_kw"] / 1000.0, color="#c44e52", lw=1.2, ls="--", label="cap")
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("MW")
    ax.legend(loc="lower left", fontsize=8)
    save(fig, "power.png", "Facility power against the cap")

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(hours, s["output_tokens_per_s_demand"] / 1e6, color="#999999", lw=1, label="demand")
    ax.plot(hours, s["output_tokens_per_s"] / 1e6, color="#55a868", lw=1.2, label="served")
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("M output tokens/s")
    ax.legend(loc="upper left", fontsize=8)
    save(fig, "tokens.png", "Output tokens per second")

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(hours, s["queue_jobs"], color="#4c72b0", lw=1.2, label="queued jobs")
    ax2 = ax.twinx()
    ax2.plot(hours, s["queue_gpus"], color="#dd8452", lw=1, label="queued GPUs")
    ax.set_xlabel("simulated hours")
    ax.set_ylabel("jobs")
    ax2.set_ylabel("GPUs")
    save(fig, "queue.png", "Training queue")
    return figures


def _summary_rows(summary: dict) -> str:
    rows = []
    for key, value in summary.items():
        if key == "by_size" or isinstance(value, (dict, list)):
            continue
        text = f"{value:,.4g}" if isinstance(value, float) else str(value)
        rows.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(text)}</td></tr>")
    return "\n".join(rows)


def _size_rows(by_size: list[dict]) -> str:
    def fmt(v):
        return "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

    return "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(row[k]))}</td>" for k in ("size_class", "jobs", "started", "waiting", "queue_delay_mean_h", "queue_delay_p95_h", "finished", "jct_mean_h")) + "</tr>"
        for row in by_size
    )


def _grid_item(event: dict) -> str:
    met = "never" if event["response_s"] is None else f"{event['response_s']:.0f} s"
    return (
        f"<li>grid event at {event['start_s'] / 3600:.1f} h: shed {event['cut_fraction']:.0%} for "
        f"{event['duration_s'] / 3600:.1f} h (cap {event['cap_kw'] / 1000:,.1f} MW); met after {met} "
        f"(target {event['respond_within_s']:.0f} s), {event['jobs_paused']} jobs paused</li>"
    )


def write_run(run, out_dir: Path) -> dict[str, Path]:
    """Write every output of `run` into `out_dir`; returns the paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "run_json": out_dir / "run.json",
        "timeseries": out_dir / "timeseries.parquet",
        "jobs": out_dir / "jobs.parquet",
        "report": out_dir / "report.html",
    }
    write_text_atomic(paths["run_json"], json.dumps(run_document(run), indent=2, default=str))
    write_parquet(run.series, paths["timeseries"])
    write_parquet(run.jobs, paths["jobs"])
    figures = _plots(run, out_dir)
    summary = run.summary
    grid = "".join(_grid_item(e) for e in run.grid_events)
    request_level = ""
    if run.request_level:
        r = run.request_level
        request_level = (
            f"<h2>Request-level SLO ({html.escape(r['service'])})</h2><p>{r['requests']:,} requests; "
            f"SLO attainment {r['slo_attainment']:.2%}; TTFT p50/p90/p99 "
            f"{r['ttft_p50_ms']:.0f}/{r['ttft_p90_ms']:.0f}/{r['ttft_p99_ms']:.0f} ms (target {r['ttft_target_ms']:.0f}); "
            f"ITL p50 {r['itl_p50_ms']:.1f} ms (target {r['itl_target_ms']:.0f})</p>"
        )
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>tokenfab run {html.escape(run.name)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head><body>
<h1>Twin run: {html.escape(run.name)}</h1>
<p>{run.total_gpus:,} GPUs, {run.days:g} simulated days, policy <b>{html.escape(run.policy)}</b>, seed {run.seed},
{run.events_handled:,} events.</p>
<ul>{grid}</ul>
{"".join(f'<h2>{html.escape(title)}</h2><img src="{name}" alt="{html.escape(title)}">' for name, title in figures)}
<h2>Queueing delay and completion time by job size (hours)</h2>
<table><tr><th>size</th><th>jobs</th><th>started</th><th>waiting</th><th>delay mean</th><th>delay p95</th><th>finished</th><th>JCT mean</th></tr>
{_size_rows(summary.get("by_size", []))}</table>
{request_level}
<h2>Summary</h2><table>{_summary_rows(summary)}</table>
</body></html>"""
    write_text_atomic(paths["report"], body)
    return paths
