"""Benchmark: compile time and peak memory of the design compiler, and how it grows with size.

Targets (issue 2): the 1 GW example compiles in a median <= 0.5 s with peak memory <= 300 MB on a 2-core
machine; compile time grows no worse than linearly in racks from 1 MW to 5 GW.
Run: .venv/bin/python bench/bench_compile.py   (writes bench/results/compile.md)
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402

from tokenfab.blueprint.compile import compile  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.spec import load_spec, parse_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = 15


def timed(spec, catalog, runs=RUNS):
    samples = []
    design = None
    for _ in range(runs):
        start = time.perf_counter()
        design = compile(spec, catalog)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), design


def main() -> None:
    catalog = load_catalog()
    spec_1gw, _ = load_spec(ROOT / "examples" / "site-1gw.yaml")
    compile(spec_1gw, catalog)  # warm: CoolProp import and property cache
    median_s, design = timed(spec_1gw, catalog)
    tracemalloc.start()
    compile(spec_1gw, catalog)
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = []
    for grid_mw in [1, 10, 100, 1000, 2500, 5000]:
        spec = parse_spec(
            {
                "name": "scale",
                "sites": [
                    {
                        "name": "s",
                        "grid_mw": grid_mw,
                        "climate": "abilene-tx",
                        "system": "gb300-nvl72",
                        "fabric": "infiniband_xdr",
                    }
                ],
            }
        )
        t, d = timed(spec, catalog, runs=7)
        rows.append((grid_mw, d.metrics.racks, d.metrics.gpus, t))
    lines = [
        "## Design compiler (issue 2)",
        "",
        f"Machine: {machine_line()}. Command: `.venv/bin/python bench/bench_compile.py`.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| compile `examples/site-1gw.yaml` ({design.metrics.gpus:,} GPUs, {design.metrics.racks:,} racks), median of {RUNS} | {median_s * 1000:.1f} ms | ≤ 500 ms |",
        f"| peak Python heap during one 1 GW compile (tracemalloc) | {peak_traced / 1e6:.1f} MB | ≤ 300 MB |",
        f"| peak RSS of the whole benchmark process (includes CoolProp, numpy, pydantic) | {rss_mb:.0f} MB | ≤ 300 MB |",
        "",
        "Compile time against size (GB300 NVL72, Abilene, XDR), median of 7:",
        "",
        "| grid MW | racks | GPUs | compile ms | µs per rack |",
        "|---|---|---|---|---|",
    ]
    for grid_mw, racks, gpus, t in rows:
        lines.append(f"| {grid_mw:,} | {racks:,} | {gpus:,} | {t * 1000:.2f} | {t * 1e6 / racks:.2f} |")
    lines.append("")
    lines.append(
        "Per-rack time falls as size grows: the compiler works on counts (halls × SUs), not on racks or GPUs."
    )
    out = ROOT / "bench" / "results" / "compile.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
