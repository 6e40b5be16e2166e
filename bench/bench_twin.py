"""Twin benchmarks: the 1 GW example for 7 simulated days (wall time, CPU time, peak RSS), and topology
packing against first-fit on the same workload (queueing delay of large gangs, fragmentation).

    .venv/bin/python bench/bench_twin.py                 # both, writes bench/results/twin.md
    .venv/bin/python bench/bench_twin.py --one SPEC DAYS POLICY SEED   # one run, prints JSON (used internally)

Each measured run is its own process so peak RSS belongs to that run alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import machine_line

REPO = Path(__file__).resolve().parents[1]
WORKLOAD = REPO / "examples" / "workload-mixed.yaml"
RESULTS = REPO / "bench" / "results" / "twin.md"


def one(spec: str, days: float, policy: str, seed: int, training_load: float | None = None) -> dict:
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec
    from tokenfab.traces.acme import read_acme_rows
    from tokenfab.traces.llm import read_trace
    from tokenfab.twin.invariants import check_invariants
    from tokenfab.twin.run import simulate
    from tokenfab.twin.workload import load_workload

    wall0, cpu0 = time.perf_counter(), time.process_time()
    catalog = load_catalog()
    design = compile(load_spec(REPO / "examples" / f"{spec}.yaml")[0], catalog)
    workload = load_workload(WORKLOAD)
    if training_load is not None:
        workload.training.load = training_load
    traces = {s.trace: read_trace(s.trace) for s in workload.inference.services}
    rows = read_acme_rows()
    wall1, cpu1 = time.perf_counter(), time.process_time()
    run = simulate(
        design, workload, days, policy=policy, seed=seed, traces=traces, acme_rows=rows, catalog=catalog
    )
    wall2, cpu2 = time.perf_counter(), time.process_time()
    s = run.summary
    large = [r for r in s["by_size"] if r["size_class"] in ("2-8 domains", "9-64 domains", ">64 domains")]
    started = sum(r["started"] for r in large)
    return {
        "spec": spec,
        "days": days,
        "policy": policy,
        "seed": seed,
        "gpus": run.total_gpus,
        "events": run.events_handled,
        "setup_wall_s": wall1 - wall0,
        "simulate_wall_s": wall2 - wall1,
        "simulate_cpu_s": cpu2 - cpu1,
        "total_wall_s": wall2 - wall0,
        "total_cpu_s": cpu2 - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "invariant_violations": check_invariants(run),
        "allocation_mean": s["allocation_mean"],
        "fragmentation_mean": s["fragmentation_mean"],
        "large_gang_delay_mean_h": sum((r["queue_delay_mean_h"] or 0) * r["started"] for r in large) / started
        if started
        else None,
        "large_gang_delay_p95_h": max((r["queue_delay_p95_h"] or 0) for r in large) if large else None,
        "large_gangs_started": started,
        "large_gangs_waiting": sum(r["waiting"] for r in large),
        "jobs_finished": s["jobs_finished"],
        "goodput_fraction": s["goodput_fraction"],
        "slo_attainment_tick": s["slo_attainment_tick"],
        "slo_attainment_measured": s.get("slo_attainment_measured"),
        "failures": sum(s["failures"].values()),
        "grid_events": [
            {k: e[k] for k in ("start_s", "cut_fraction", "cap_kw", "response_s", "jobs_paused")}
            for e in run.grid_events
        ],
        "energy_mwh": s["energy_mwh"],
        "scheduler": run.scheduler,
    }


def measure(spec: str, days: float, policy: str, seed: int = 0, training_load: float | None = None) -> dict:
    extra = [] if training_load is None else [str(training_load)]
    out = subprocess.run(
        [sys.executable, __file__, "--one", spec, str(days), policy, str(seed), *extra],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _responses(events: list[dict]) -> str:
    return ", ".join("not met" if e["response_s"] is None else f"{e['response_s']:.0f}" for e in events)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs="+", metavar="SPEC DAYS POLICY SEED [TRAINING_LOAD]")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--compare-spec", default="site-100mw")
    parser.add_argument("--compare-days", type=float, default=2.0)
    parser.add_argument(
        "--compare-load", type=float, default=0.9, help="training load for the policy comparison"
    )
    args = parser.parse_args()
    if args.one:
        spec, days, policy, seed, *load = args.one
        print(json.dumps(one(spec, float(days), policy, int(seed), float(load[0]) if load else None)))
        return
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    big = measure("site-1gw", args.days, "topology_packing")
    rows = [
        measure(args.compare_spec, args.compare_days, p, 0, args.compare_load)
        for p in ("first_fit", "best_fit", "topology_packing", "fragmentation_aware")
    ]
    cmd = (
        f"`.venv/bin/python bench/bench_twin.py --days {args.days:g} --compare-spec {args.compare_spec} "
        f"--compare-days {args.compare_days:g} --compare-load {args.compare_load:g}`"
    )
    lines = [
        "## Digital twin (`tokenfab simulate`)",
        "",
        f"Machine: {machine_line()}; load average at start {load:.1f}. Date: {when}. Command: {cmd}.",
        "Workload: `examples/workload-mixed.yaml` (training calibrated to Acme Kalos, three inference services from the "
        "Azure conv/code and Mooncake traces with request-level SLO for one, failures at Llama 3 rates, a scripted CDU "
        "loss beyond N+1, one grid event shedding 25 % for 3 h).",
        "",
        "### 1 GW example, 7 simulated days (target: ≤ 120 s and ≤ 4 GB on a 2-core machine)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| GPUs | {big['gpus']:,} |",
        f"| simulated days | {big['days']:g} |",
        f"| events handled | {big['events']:,} |",
        f"| wall time, whole run incl. compile and trace loading [s] | {big['total_wall_s']:.1f} |",
        f"| wall time, simulation only [s] | {big['simulate_wall_s']:.1f} |",
        f"| CPU time, whole run [s] | {big['total_cpu_s']:.1f} |",
        f"| peak RSS [MB] | {big['peak_rss_mb']:,.0f} |",
        f"| invariant violations | {len(big['invariant_violations'])} |",
        f"| failures drawn | {big['failures']:,} |",
        f"| grid event response [s] | {_responses(big['grid_events'])} |",
        f"| allocation (mean) | {big['allocation_mean']:.1%} |",
        f"| SLO attainment tick / measured | {big['slo_attainment_tick']:.2%} / {big['slo_attainment_measured']:.2%} |",
        f"| energy [MWh] | {big['energy_mwh']:,.0f} |",
        "",
        "The run is single-threaded, so its CPU time is the wall time it needs on an otherwise idle 2-core "
        "machine; the wall times above were taken while the machine's 2 cores were shared with other jobs "
        f"(load average {load:.1f} at start), so they include time spent waiting for a core.",
        "",
        f"### Topology packing against first-fit ({args.compare_spec}, {args.compare_days:g} simulated days, "
        f"same workload and seed, training load raised to {args.compare_load:g} so large gangs contend)",
        "",
        "Large gangs are jobs of two or more NVLink domains. Fragmentation is the scheduler's measure: the share of "
        "free GPUs that sit in partly used NVLink domains (mean over ticks).",
        "",
        "| policy | large gangs started | mean queue delay of large gangs [h] | p95 [h] | large gangs still waiting | fragmentation | allocation | jobs finished |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        delay = "–" if r["large_gang_delay_mean_h"] is None else f"{r['large_gang_delay_mean_h']:.2f}"
        p95 = "–" if r["large_gang_delay_p95_h"] is None else f"{r['large_gang_delay_p95_h']:.2f}"
        lines.append(
            f"| {r['policy']} | {r['large_gangs_started']:,} | {delay} | {p95} | {r['large_gangs_waiting']} | "
            f"{r['fragmentation_mean']:.1%} | {r['allocation_mean']:.1%} | {r['jobs_finished']:,} |"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
