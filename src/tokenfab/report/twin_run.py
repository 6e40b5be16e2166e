"""Writing a twin `Run`: ``run.json``, ``timeseries.parquet``, ``jobs.parquet`` and ``report.html`` with
PNG plots (allocation/utilisation, facility power against the cap, tokens/s, queue length)."""

from __future__ import annotations

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


def _plots(run, out_dir: Path) -> list[tuple[str, str, str]]:
    """The run's charts as PNG files in `out_dir`: (file name, title, caption); each has a legend and units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = run.series
    hours = s["time_s"] / 3600.0
    figures = []

    def save(fig, name: str, title: str, caption: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        figures.append((name, title, caption))

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
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("share of GPUs [-]")
    ax.legend(loc="upper left", fontsize=8, ncol=5)
    save(
        fig,
        "allocation.png",
        "Allocation and utilisation",
        "GPUs held by training, inference and down, with utilisation and fragmentation, as shares of the fleet",
    )

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.step(
        run.power_step_time_s / 3600.0, run.power_step_kw / 1000.0, where="post", label="facility power", lw=1
    )
    ax.plot(hours, s["facility_cap_kw"] / 1000.0, color="#c44e52", lw=1.2, ls="--", label="cap")
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("facility power [MW]")
    ax.legend(loc="lower left", fontsize=8)
    save(fig, "power.png", "Facility power against the cap", "facility draw and the cap in force, in MW")

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(hours, s["output_tokens_per_s_demand"] / 1e6, color="#999999", lw=1, label="demand")
    ax.plot(hours, s["output_tokens_per_s"] / 1e6, color="#55a868", lw=1.2, label="served")
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("output tokens [M tokens/s]")
    ax.legend(loc="upper left", fontsize=8)
    save(
        fig,
        "tokens.png",
        "Output tokens per second",
        "inference demand and what was served, millions of output tokens per second",
    )

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(hours, s["queue_jobs"], color="#4c72b0", lw=1.2, label="queued jobs")
    ax2 = ax.twinx()
    ax2.plot(hours, s["queue_gpus"], color="#dd8452", lw=1, label="queued GPUs")
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("queued jobs [count]")
    ax2.set_ylabel("GPUs the queued jobs ask for [count]")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [str(line.get_label()) for line in lines], loc="upper left", fontsize=8)
    save(
        fig,
        "queue.png",
        "Training queue",
        "training jobs waiting (left axis) and the GPUs they ask for (right axis)",
    )
    return figures


def _summary_table(summary: dict):
    from tokenfab.report.render import PageTable

    rows = []
    for key, value in summary.items():
        if key == "by_size" or isinstance(value, dict | list):
            continue
        rows.append([key, f"{value:,.4g}" if isinstance(value, float) else str(value)])
    return PageTable(columns=["metric", "value"], rows=rows, numeric={"value"})


SIZE_COLUMNS = (
    ("size_class", "job size"),
    ("jobs", "jobs"),
    ("started", "started"),
    ("waiting", "waiting"),
    ("queue_delay_mean_h", "queue delay mean [h]"),
    ("queue_delay_p95_h", "queue delay p95 [h]"),
    ("finished", "finished"),
    ("jct_mean_h", "completion time mean [h]"),
)


def _size_table(by_size: list[dict]):
    from tokenfab.report.render import PageTable

    def fmt(v):
        return "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

    rows = [[fmt(row[key]) for key, _ in SIZE_COLUMNS] for row in by_size]
    return PageTable(
        columns=[label for _, label in SIZE_COLUMNS],
        rows=rows,
        numeric={label for key, label in SIZE_COLUMNS if key != "size_class"},
    )


def _grid_item(event: dict) -> str:
    met = "never" if event["response_s"] is None else f"{event['response_s']:.0f} s"
    return (
        f"grid event at {event['start_s'] / 3600:.1f} h: shed {event['cut_fraction']:.0%} for "
        f"{event['duration_s'] / 3600:.1f} h (cap {event['cap_kw'] / 1000:,.1f} MW); met after {met} "
        f"(target {event['respond_within_s']:.0f} s), {event['jobs_paused']} jobs paused"
    )


def _cards(run) -> list[tuple[str, str]]:
    s = run.summary
    return [
        ("GPUs", f"{run.total_gpus:,}"),
        ("allocation (mean)", f"{s['allocation_mean']:.1%}"),
        ("utilisation (mean)", f"{s['utilisation_mean']:.1%}"),
        ("goodput", f"{s['goodput_fraction']:.1%}"),
        ("jobs finished", f"{s['jobs_finished']:,}"),
        ("energy", f"{s['energy_mwh']:,.1f} MWh"),
    ]


def _request_level(run) -> dict | None:
    r = run.request_level
    if not r:
        return None
    return {
        "service": r["service"],
        "text": (
            f"{r['requests']:,} requests; SLO attainment {r['slo_attainment']:.2%}; TTFT p50/p90/p99 "
            f"{r['ttft_p50_ms']:.0f}/{r['ttft_p90_ms']:.0f}/{r['ttft_p99_ms']:.0f} ms (target "
            f"{r['ttft_target_ms']:.0f} ms); ITL p50 {r['itl_p50_ms']:.1f} ms (target {r['itl_target_ms']:.0f} ms)"
        ),
    }


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
    from tokenfab.report.render import file_figure, render_page

    figures = [file_figure(out_dir / name, title, caption) for name, title, caption in _plots(run, out_dir)]
    body = render_page(
        "run.html.j2",
        run=run,
        cards=_cards(run),
        grid_events=[_grid_item(e) for e in run.grid_events],
        figures=figures,
        by_size=_size_table(run.summary.get("by_size", [])),
        request_level=_request_level(run),
        summary=_summary_table(run.summary),
    )
    write_text_atomic(paths["report"], body)
    return paths
