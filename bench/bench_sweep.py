"""Benchmark: sweep throughput (design + certify + tokens per point, 100 MW sites) and Ray's overhead.

Measures points per minute on the local process pool with 2 workers, cold (pool start and CoolProp import
included) and warm, a single in-process loop for reference, and the same sweep on a local Ray instance
(2 CPUs): `ray.init` time, the first sweep (workers import CoolProp) and a second, warm sweep.
Run: .venv/bin/python bench/bench_sweep.py   (writes bench/results/sweep.md)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402

from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.sweep import evaluate_point, plan_sweep, run_sweep, warm_up  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 2
POINTS = 240

SWEEP = f"""
name: bench-sweep
base: {ROOT / "examples" / "site-100mw.yaml"}
tokens: {{model: llama-3.1-70b, precision: fp8, itl_ms: 50}}
sampling: random
n: {POINTS}
seed: 11
parameters:
  sites[0].system: [gb200-nvl72, gb300-nvl72, vera-rubin-nvl72, hgx-h100, hgx-h200, hgx-b200, hgx-b300]
  sites[0].climate: [abilene-tx, ashburn-va, phoenix-az, dublin-ie, oslo-no, singapore]
  sites[0].cooling: [auto, dry_cooler, cooling_tower, chiller]
  sites[0].redundancy.power: [N+1, 2N]
  sites[0].grid_mw: {{low: 95, high: 105}}
"""


def per_minute(points: int, seconds: float) -> float:
    return points / seconds * 60.0


def timed_run(plan, out: Path, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    outcome = run_sweep(plan, out, workers=WORKERS, **kwargs)
    return time.perf_counter() - start, outcome


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        sweep_path = tmp_path / "bench.yaml"
        sweep_path.write_text(SWEEP)
        plan = plan_sweep(sweep_path)
        n = len(plan.points)

        start = time.perf_counter()
        warm_up()
        warm_up_s = time.perf_counter() - start
        catalog = load_catalog()
        start = time.perf_counter()
        serial_rows = [evaluate_point(p, catalog) for p in plan.points]
        serial_s = time.perf_counter() - start
        failed = sum(1 for r in serial_rows if r["error"])

        local_cold_s, local = timed_run(plan, tmp_path / "local-1")
        local_warm_s, _ = timed_run(plan, tmp_path / "local-2")
        point_ms = statistics.median(r["elapsed_s"] for r in local.rows) * 1000

        ray_rows = []
        try:
            import ray

            start = time.perf_counter()
            ray.init(address=None, include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=WORKERS,
                     log_to_driver=False, configure_logging=False)
            ray_init_s = time.perf_counter() - start
            ray_cold_s, _ = timed_run(plan, tmp_path / "ray-1", use_ray=True)
            ray_warm_s, _ = timed_run(plan, tmp_path / "ray-2", use_ray=True)
            start = time.perf_counter()
            ray.shutdown()
            ray_shutdown_s = time.perf_counter() - start
            ray_rows = [
                (f"`ray.init` (local, {WORKERS} CPUs, 127.0.0.1, no dashboard)", f"{ray_init_s:.1f} s", ""),
                ("Ray, first sweep (workers start and import CoolProp)", f"{per_minute(n, ray_cold_s):,.0f} pts/min",
                 f"{ray_cold_s:.1f} s"),
                ("Ray, second sweep (warm workers)", f"{per_minute(n, ray_warm_s):,.0f} pts/min", f"{ray_warm_s:.1f} s"),
                ("`ray.shutdown`", f"{ray_shutdown_s:.1f} s", ""),
                ("Ray overhead against the local pool, warm (Ray warm time / local warm time)",
                 f"{ray_warm_s / local_warm_s:.2f}×", f"+{(ray_warm_s - local_warm_s) * 1000 / n:.1f} ms per point"),
                ("Ray overhead, cold end to end (init + first sweep + shutdown against a cold local run)",
                 f"{(ray_init_s + ray_cold_s + ray_shutdown_s) / local_cold_s:.2f}×",
                 f"+{ray_init_s + ray_cold_s + ray_shutdown_s - local_cold_s:.1f} s"),
            ]
        except ImportError:
            ray_rows = [("Ray", "not installed", "")]

    lines = [
        "## Sweep throughput (issue 8)",
        "",
        f"Machine: {machine_line()}; 1-minute load average {load_before:.1f} when it started (other work was "
        "running on the machine). Command: `.venv/bin/python bench/bench_sweep.py`.",
        "",
        f"Sweep: {n} random points on ~100 MW sites (7 systems × 6 climates × 4 cooling choices × 2 power "
        "redundancies, grid 95–105 MW), each designed, certified and priced for Llama 3.1 70B FP8 at a 50 ms ITL "
        f"target; {failed} points recorded an error. Local pool and Ray both with {WORKERS} workers.",
        "",
        "| figure | value | wall |",
        "|---|---|---|",
        f"| one-off process warm-up (catalog + CoolProp import) | {warm_up_s:.1f} s | |",
        f"| median time of one point in a worker (design + certify + tokens) | {point_ms:.0f} ms | |",
        f"| single process, in a loop (reference) | {per_minute(n, serial_s):,.0f} pts/min | {serial_s:.1f} s |",
        f"| local pool, {WORKERS} workers, cold (fork + warm-up included) | {per_minute(n, local_cold_s):,.0f} pts/min | {local_cold_s:.1f} s |",
        f"| local pool, {WORKERS} workers, parent already warm | {per_minute(n, local_warm_s):,.0f} pts/min | {local_warm_s:.1f} s |",
        *(f"| {a} | {b} | {c} |" for a, b, c in ray_rows),
        "",
        "Rates count points finished per minute of wall time, including writing each row to `points.jsonl` "
        "(fsync per row). Workers on the local pool are forked after the parent imported CoolProp, so they pay "
        "its ~4 s import once in the parent; Ray workers pay it each on their first point.",
    ]
    out = ROOT / "bench" / "results" / "sweep.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
