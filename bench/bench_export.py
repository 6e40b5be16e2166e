"""Benchmark: time and output size of the Slurm, Kueue and NetBox exports, from 1 MW to the 2.75 GW campus.

Exports enumerate every node, switch and cable, so they are O(nodes + links); this measures how long a
1 GW design (≈ 101k nodes, 1.2M cables) takes and how big the files are.
Run: .venv/bin/python bench/bench_export.py   (writes bench/results/export.md)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_line  # noqa: E402

from tokenfab.blueprint.compile import compile  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.export.kueue import export_kueue  # noqa: E402
from tokenfab.export.netbox import export_netbox  # noqa: E402
from tokenfab.export.slurm import export_slurm  # noqa: E402
from tokenfab.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw"]
EXPORTS = {"slurm": export_slurm, "kueue": export_kueue, "netbox": export_netbox}


def main() -> None:
    catalog = load_catalog()
    export_slurm(compile(load_spec(ROOT / "examples" / "row-1mw.yaml")[0], catalog))  # warm up imports
    lines = [
        "## Exports: Slurm, Kueue, NetBox (issue 7)",
        "",
        f"Machine: {machine_line()}. Command: `.venv/bin/python bench/bench_export.py`.",
        "",
        "One run each (wall time of the pure export function: design → file texts, no disk writes). "
        f"Load average when the run started: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared "
        "machine: with a load above the core count, times are inflated by other processes).",
        "",
        "| design | nodes | cables | export | seconds | output MB | files |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in EXAMPLES:
        design = compile(load_spec(ROOT / "examples" / f"{name}.yaml")[0], catalog)
        nodes = sum(site.metrics.nodes for site in design.sites)
        cables = sum(sum(site.fabric.links_by_tier) for site in design.sites)
        for tool, export in EXPORTS.items():
            start = time.perf_counter()
            files = export(design)
            seconds = time.perf_counter() - start
            size_mb = sum(len(text.encode()) for text in files.values()) / 1e6
            lines.append(
                f"| {name} | {nodes:,} | {cables:,} | {tool} | {seconds:.2f} | {size_mb:,.1f} | {len(files)} |"
            )
            print(lines[-1], flush=True)
            del files
    lines += [
        "",
        "End to end for people: `tokenfab export TOOL examples/site-1gw.yaml --out DIR --json` (compile the spec, "
        "build, write the files), wall time and peak RSS from `/usr/bin/time`:",
        "",
        "| export | seconds | peak RSS MB |",
        "|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for tool in EXPORTS:
            result = subprocess.run(
                [
                    "/usr/bin/time",
                    "-f",
                    "%e %M",
                    str(ROOT / ".venv" / "bin" / "tokenfab"),
                    "export",
                    tool,
                    str(ROOT / "examples" / "site-1gw.yaml"),
                    "--out",
                    f"{folder}/{tool}",
                    "--json",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds, kb = result.stderr.strip().splitlines()[-1].split()
            lines.append(f"| {tool} | {float(seconds):.1f} | {int(kb) / 1024:,.0f} |")
            print(lines[-1], flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines += [
        "",
        f"Peak RSS of the benchmark process: {peak_mb:,.0f} MB (the NetBox export of the campus holds "
        "all its CSV text in memory).",
    ]
    out = ROOT / "bench" / "results" / "export.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
