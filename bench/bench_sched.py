"""Scheduler benchmark: placements + releases per second at the 1 GW example's size.

A seeded stream of mixed requests (60 % 1–8 GPUs, 25 % one NVLink domain, 12 % 2–16 domains, 3 % 32–114
domains up to 8,192-GPU gangs) is placed and released so that occupancy stays between 70 % and 85 %. Every
`place` (successful or not) and every `release` counts as one operation. Each policy is run five times (``--runs``);
the median rate is reported, with peak resident memory, the machine, date and command.

    .venv/bin/python bench/bench_sched.py [--ops 40000] [--runs 5] [--no-profile] [--out bench/results/sched.md]

Rates are operations per second of CPU time of this process (``time.process_time``), so that other
work on a shared machine does not count against the scheduler; the wall-clock rate is shown beside.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from machine import machine_line

from tokenfab.blueprint.compile import compile as compile_design
from tokenfab.catalog.load import load_catalog
from tokenfab.fleet import Fleet, from_design
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Level, Placement, Policy, Request, WorkloadKind
from tokenfab.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "examples" / "site-1gw.yaml"
LOW, HIGH = 0.70, 0.85


NOTES = (
    "- Rates are per CPU-second of this process (`time.process_time`): the machine is shared by other "
    "jobs (see the load average), which makes wall-clock rates several times lower and unrepeatable.",
    "- Fragmentation is the share of free GPUs in partly used NVLink domains (docs/sched.md), at the end "
    "of the last run. first_fit may split an unconstrained small gang over domains to fill holes; the "
    "other policies keep a gang of ≤ 72 GPUs inside one domain.",
)


def request_stream(n: int, domain_gpus: int, seed: int) -> list[Request]:
    """``n`` requests of the benchmark's size mix (seeded)."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, size=n, p=[0.60, 0.25, 0.12, 0.03])
    out = []
    for i, k in enumerate(kind):
        rid = f"r{i}"
        if k == 0:
            gpus = int(rng.choice([1, 2, 4, 8]))
            out.append(
                Request(
                    rid, gpus, kind=WorkloadKind.inference if gpus <= 4 and i % 2 else WorkloadKind.training
                )
            )
        elif k == 1:
            out.append(Request(rid, domain_gpus, kind=WorkloadKind.inference, whole_domains=bool(i % 2)))
        elif k == 2:
            domains = int(rng.integers(2, 17))
            out.append(Request(rid, domains * domain_gpus, slice_gpus=domain_gpus, level=Level.su))
        else:
            domains = int(rng.integers(32, 115))
            gpus = min(domains * domain_gpus, 8192)
            slice_gpus = domain_gpus if gpus % domain_gpus == 0 else 64
            out.append(Request(rid, gpus, slice_gpus=slice_gpus, whole_domains=False, level=Level.hall))
    return out


def run(fleet: Fleet, policy: Policy, ops: int, seed: int, profiler=None) -> dict:
    """Fill to ~75 %, then time ``ops`` operations at 70–85 % occupancy (profiled when a pyinstrument
    ``profiler`` is given: only the timed operations)."""
    fleet = fleet.copy()
    sched = Scheduler(fleet, policy)
    total = fleet.n_gpus
    requests = request_stream(ops * 2 + 20_000, int(fleet.domain_gpus.max()), seed)
    rng = np.random.default_rng(seed + 1)
    live: list[str] = []
    held: dict[str, int] = {}  # GPUs held per live request
    used = 0
    cursor = 0
    picks = iter(rng.random(ops * 2 + 20_000).tolist())  # drawn up front: time the scheduler, not the RNG

    def place_next() -> bool:
        nonlocal cursor, used
        request = requests[cursor]
        cursor += 1
        result = sched.place(request)
        if isinstance(result, Placement):
            live.append(request.id)
            gpus = int(result.gpus_per_node.sum())
            held[request.id] = gpus
            used += gpus
            return True
        return False

    def release_one() -> None:
        nonlocal used
        index = int(next(picks) * len(live))
        live[index], live[-1] = live[-1], live[index]
        rid = live.pop()
        used -= held.pop(rid)
        sched.release(rid)

    while used < 0.75 * total:
        place_next()
    placed = failed = released = 0
    coin = rng.random(ops).tolist()
    if profiler is not None:
        profiler.start()
    start = time.perf_counter()
    start_cpu = time.process_time()
    for i in range(ops):
        share = used / total
        if share > HIGH or (share >= LOW and coin[i] < 0.5):
            release_one()
            released += 1
        elif place_next():
            placed += 1
        else:
            failed += 1
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - start_cpu
    if profiler is not None:
        profiler.stop()
    return {
        "ops_per_s": ops / cpu_seconds,
        "wall_ops_per_s": ops / seconds,
        "seconds": seconds,
        "placed": placed,
        "failed": failed,
        "released": released,
        "occupancy": used / total,
        "fragmentation": sched.fragmentation(),
    }


def profile(fleet: Fleet, policy: Policy, ops: int) -> str:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    run(fleet, policy, ops, seed=7, profiler=profiler)
    return profiler.output_text(unicode=False, color=False, show_all=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--policy", action="append", default=None)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "sched.md")
    args = parser.parse_args()

    t0 = time.perf_counter()
    spec, _ = load_spec(SPEC)
    fleet = from_design(compile_design(spec, load_catalog()))
    build_s = time.perf_counter() - t0
    policies = [Policy(p) for p in args.policy] if args.policy else list(Policy)
    command = "python " + " ".join(sys.argv)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Scheduler: placements + releases per second at 1 GW",
        "",
        f"Fleet: `examples/site-1gw.yaml` compiled: {fleet.n_gpus:,} GPUs, {fleet.n_nodes:,} nodes, "
        f"{fleet.n_domains:,} NVLink domains, {fleet.n_sus:,} SUs, {fleet.n_halls} halls "
        f"(compile + fleet {build_s:.2f} s).",
        f"Mix: 60 % 1–8 GPUs, 25 % one domain, 12 % 2–16 domains (SU preferred), 3 % 32–114 domains "
        f"(≤ 8,192 GPUs, hall preferred); occupancy kept in {LOW:.0%}–{HIGH:.0%}; {args.ops:,} timed operations "
        f"per run, median of {args.runs} runs.",
        "",
        "| policy | placements + releases per CPU-second (median) | runs | wall-clock rate (median) | placed | failed | released | occupancy at end | fragmentation at end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for policy in policies:
        results = [run(fleet, policy, args.ops, seed=11 + r) for r in range(args.runs)]
        rates = [r["ops_per_s"] for r in results]
        last = results[-1]
        wall = statistics.median(r["wall_ops_per_s"] for r in results)
        row = (
            f"| {policy.value} | **{statistics.median(rates):,.0f}** | "
            f"{', '.join(f'{x:,.0f}' for x in rates)} | {wall:,.0f} | {last['placed']:,} | {last['failed']:,} | "
            f"{last['released']:,} | {last['occupancy']:.1%} | {last['fragmentation']:.3f} |"
        )
        print(row, flush=True)
        lines.append(row)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"- Peak resident memory of the whole benchmark process: {peak_mib:,.0f} MiB (getrusage ru_maxrss).",
        f"- Machine: {machine_line()}; load average during the run {os.getloadavg()[0]:.1f} (shared machine).",
        "- Target: ≥ 20,000 placements + releases per second.",
        *NOTES,
        f"- Date: {when}.",
        f"- Command: `{command}`.",
    ]
    if args.profile:
        text = profile(fleet, Policy.topology_packing, min(args.ops, 20_000))
        lines += [
            "",
            f"### pyinstrument (topology_packing, {min(args.ops, 20_000):,} timed operations, wall-clock samples)",
            "",
            "```",
            *[ln for ln in text.splitlines() if ln.strip()][:60],
            "```",
        ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
