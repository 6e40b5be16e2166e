"""Benchmark: sweep throughput (design + certify + tokens per point, 100 MW sites) and Ray's overhead.

Measures points per minute on the local process pool with 2 workers, warm (in this process) and cold (a fresh
process: imports, CoolProp, pool start), a single in-process loop for reference, and the same sweep on a
local Ray instance (2 CPUs): the first sweep (workers import CoolProp), a second, warm sweep, and cold in a
fresh process (ray.init + sweep + shutdown). Overhead of Ray = its time / the local pool's time.
Run: .venv/bin/python bench/bench_sweep.py   (writes bench/results/sweep.md)
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
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
REPEATS = 3
"""Warm figures are the best of this many runs: the machine is shared, and other work only adds time."""
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


def cold_run_s(sweep_path: Path, out: Path, use_ray: bool) -> float:
    """Wall time of a fresh Python process that plans and runs the whole sweep (imports, warm-up, start-up)."""
    code = (
        "import sys; from tokenfab.sweep import plan_sweep, run_sweep; "
        f"run_sweep(plan_sweep(sys.argv[1]), sys.argv[2], workers={WORKERS}, use_ray={use_ray})"
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code, str(sweep_path), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


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
        serial_s = math.inf
        for _ in range(REPEATS):
            start = time.perf_counter()
            serial_rows = [evaluate_point(p, catalog) for p in plan.points]
            serial_s = min(serial_s, time.perf_counter() - start)
        failed = sum(1 for r in serial_rows if r["error"])

        local_warm_s, local = min(
            (timed_run(plan, tmp_path / f"local-warm-{i}") for i in range(REPEATS)), key=lambda pair: pair[0]
        )
        point_ms = statistics.median(r["elapsed_s"] for r in local.rows) * 1000
        local_cold_s = cold_run_s(sweep_path, tmp_path / "local-cold", use_ray=False)
        rows = [
            (
                f"single process, in a loop, warm (reference), best of {REPEATS}",
                per_minute(n, serial_s),
                serial_s,
            ),
            (
                f"local pool, {WORKERS} workers, warm parent (pool start included), best of {REPEATS}",
                per_minute(n, local_warm_s),
                local_warm_s,
            ),
            (
                f"local pool, {WORKERS} workers, cold: a fresh process plans and runs the sweep",
                per_minute(n, local_cold_s),
                local_cold_s,
            ),
        ]
        overhead = []
        try:
            import ray

            start = time.perf_counter()
            ray.init(
                address=None,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                num_cpus=WORKERS,
                log_to_driver=False,
                configure_logging=False,
            )
            ray_init_s = time.perf_counter() - start
            ray_first_s, _ = timed_run(plan, tmp_path / "ray-1", use_ray=True)
            ray_warm_s = min(
                timed_run(plan, tmp_path / f"ray-warm-{i}", use_ray=True)[0] for i in range(REPEATS)
            )
            ray.shutdown()
            ray_cold_s = cold_run_s(sweep_path, tmp_path / "ray-cold", use_ray=True)
            rows += [
                (
                    f"Ray (local, {WORKERS} CPUs), first sweep after `ray.init` ({ray_init_s:.1f} s, not counted): "
                    "workers start and import CoolProp",
                    per_minute(n, ray_first_s),
                    ray_first_s,
                ),
                (
                    f"Ray (local, {WORKERS} CPUs), later sweeps, warm workers, best of {REPEATS}",
                    per_minute(n, ray_warm_s),
                    ray_warm_s,
                ),
                (
                    "Ray, cold: a fresh process starts Ray, runs the sweep, shuts Ray down",
                    per_minute(n, ray_cold_s),
                    ray_cold_s,
                ),
            ]
            overhead = [
                f"| Ray overhead, warm (Ray warm / local warm) | {ray_warm_s / local_warm_s:.2f}× | "
                f"{(ray_warm_s - local_warm_s) * 1000 / n:+.1f} ms per point |",
                f"| Ray overhead, cold end to end (Ray cold / local cold) | {ray_cold_s / local_cold_s:.2f}× | "
                f"{ray_cold_s - local_cold_s:+.1f} s per sweep |",
            ]
        except ImportError:
            overhead = ["| Ray | not installed | |"]

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
        f"| median time of one point in a pool worker (design + certify + tokens + row write) | {point_ms:.0f} ms | |",
        *(f"| {label} | {rate:,.0f} pts/min | {wall:.1f} s |" for label, rate, wall in rows),
        *overhead,
        "",
        "Rates count points finished per minute of wall time, including writing each row to `points.jsonl` "
        "(flushed per row, fsynced at most once a second). Workers of the local pool are forked after the parent imported CoolProp, so the "
        "~4 s import is paid once; Ray's workers are separate processes and each pays it on its first point, "
        "on top of `ray.init`. Ray pays off on a cluster with many more cores than one machine has, and for "
        "sweeps long enough that its start-up is small beside them.",
    ]
    out = ROOT / "bench" / "results" / "sweep.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
