"""Benchmark: the FGD experiment replay on every shipped openb pod list, every policy, seeds 42–51.

Compares our median unallocated GPU share at 100 % arrived load with the published medians of
Weng et al. (USENIX ATC'23, artifact ``analysis_allo_discrete.csv``) and times each policy.
Writes ``bench/results/openb.md``.

    .venv/bin/python bench/bench_openb.py [--data ../shared/data] [--seeds 42-51] [--jobs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import pandas as pd
from machine import machine_line

from tokenfab.cli.replay_openb import parse_seeds
from tokenfab.fgd import REPLAY_POLICIES, Cluster, PodSet, replay_seeds
from tokenfab.traces.openb import read_node_list, read_pod_list

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
OUT = REPO_ROOT / "bench" / "results" / "openb.md"
CURVE_LEVELS = (50, 80, 90, 95, 100, 110, 120, 130)


def published_unallocated(expected: pd.DataFrame, trace: str, label: str | None) -> float:
    if label is None:
        return float("nan")
    rows = expected[(expected.workload == f"openb_pod_list_{trace}") & (expected.sc_policy == label)]
    return float("nan") if rows.empty else 100.0 - float(rows["100"].median())


def fmt(value: float, sign: bool = False) -> str:
    if value != value:  # NaN
        return "—"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="42-51")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    openb = args.data / "alibaba-openb"
    if not openb.is_dir():
        print(f"shared data not found at {openb}", file=sys.stderr)
        return 2
    seeds = parse_seeds(args.seeds)
    expected = pd.read_csv(args.data / "fgd-expected" / "analysis_allo_discrete.csv")
    cluster = Cluster.from_node_list(read_node_list(openb / "openb_node_list_gpu_node.csv"))
    traces = [p.stem.removeprefix("openb_pod_list_") for p in sorted(openb.glob("openb_pod_list_*.csv"))]
    traces.sort(key=lambda t: (t != "default", t))

    results: dict[tuple[str, str], dict] = {}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = time.time()
    for trace in traces:
        workload = PodSet.from_pod_list(read_pod_list(openb / f"openb_pod_list_{trace}.csv"), cluster)
        for name, policy in REPLAY_POLICIES.items():
            t0 = time.perf_counter()
            summary = replay_seeds(cluster, workload, name, seeds, processes=args.jobs)
            seconds = time.perf_counter() - t0
            ours = summary.unallocated_at(100)
            published = published_unallocated(expected, trace, policy.published_label)
            results[trace, name] = {
                "ours": ours,
                "published": published,
                "seconds": seconds,
                "summary": summary,
            }
            print(
                f"{trace:12s} {name:14s} ours {ours:6.2f}  published {fmt(published):>6s}  {seconds:6.1f} s",
                flush=True,
            )
    total_seconds = time.time() - started

    lines = [
        "## FGD experiment replay (Alibaba openb GPU trace): unallocated GPU at 100 % arrived load",
        "",
        "Figure: median over seeds of the share of cluster GPU left unallocated when the requested GPU reaches",
        "100 % of the cluster's 6,212 GPUs (pods topped up to 1.3×, shuffled per seed, never leaving); ours vs",
        'the published medians of Weng et al., "Beware of Fragmentation" (USENIX ATC\'23, artifact',
        "`analysis_allo_discrete.csv`). Lower is better. `fgd-mem` is our policy (docs/openb.md).",
        "",
        f"- machine: {machine_line()}; load average"
        f" {load_before:.1f} at the start (other jobs share the machine: times are upper bounds)",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `.venv/bin/python bench/bench_openb.py --seeds {args.seeds} --jobs {args.jobs}`",
        f"- seeds: {args.seeds} ({len(seeds)}); wall time of the whole benchmark {total_seconds / 60:.1f} min",
        "",
        "### Unallocated GPU % at 100 % arrived: ours / published (ours − published)",
        "",
        "| policy | " + " | ".join(traces) + " |",
        "|---|" + "---:|" * len(traces),
    ]
    for name in REPLAY_POLICIES:
        cells = []
        for trace in traces:
            r = results[trace, name]
            if r["published"] == r["published"]:
                cells.append(
                    f"{fmt(r['ours'])} / {fmt(r['published'])} ({fmt(r['ours'] - r['published'], True)})"
                )
            else:
                cells.append(f"**{fmt(r['ours'])}** / —")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"### Wall time for {len(seeds)} seeds of one policy (s, {args.jobs} worker processes)",
        "",
        "| policy | " + " | ".join(traces) + " |",
        "|---|" + "---:|" * len(traces),
    ]
    for name in REPLAY_POLICIES:
        lines.append(f"| {name} | " + " | ".join(f"{results[t, name]['seconds']:.1f}" for t in traces) + " |")
    default = traces[0]
    lines += [
        "",
        f"### Allocation curve on `{default}`: allocated GPU % (median over seeds) at arrived %",
        "",
        "| policy | " + " | ".join(str(level) for level in CURVE_LEVELS) + " |",
        "|---|" + "---:|" * len(CURVE_LEVELS),
    ]
    for name in REPLAY_POLICIES:
        s = results[default, name]["summary"]
        lines.append(f"| {name} | " + " | ".join(fmt(s.allocated_at(level)) for level in CURVE_LEVELS) + " |")
    lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
