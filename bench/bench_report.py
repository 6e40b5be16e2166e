"""Benchmark: certification and report time for the bundled examples.

Targets (issue 3): `write_report` for the 1 GW example (16 halls, 5,622 racks) in under ~20 s; `check`
(58 rules) fast enough to run on every design (milliseconds).
Run: .venv/bin/python bench/bench_report.py   (writes bench/results/report.md)
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

from tokenfab.blueprint.compile import compile  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.certify import RULES, check  # noqa: E402
from tokenfab.report import write_report  # noqa: E402
from tokenfab.spec import load_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ["row-1mw", "site-10mw", "site-100mw", "site-1gw", "campus-2750mw"]


def main() -> None:
    catalog = load_catalog()
    rows = []
    for name in EXAMPLES:
        spec, _ = load_spec(ROOT / "examples" / f"{name}.yaml")
        design = compile(spec, catalog)
        check(design, catalog)  # warm
        samples = []
        for _ in range(20):
            start = time.perf_counter()
            findings = check(design, catalog)
            samples.append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as tmp:
            start, start_cpu = time.perf_counter(), time.process_time()
            write_report(design, Path(tmp), findings=findings)
            report_s, report_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
            html_kb = (Path(tmp) / "report.html").stat().st_size / 1024
            figures = len(list((Path(tmp) / "figures").glob("*.png")))
        rows.append(
            (
                name,
                design.metrics.racks,
                design.metrics.halls,
                len(findings),
                statistics.median(samples),
                report_s,
                report_cpu_s,
                figures,
                html_kb,
            )
        )
    lines = [
        "## Certification and design report (issue 3)",
        "",
        f"Machine: {machine_line()}; 1-minute load average {os.getloadavg()[0]:.1f} when it finished (other jobs inflate",
        "the report times). Command: `.venv/bin/python bench/bench_report.py`.",
        "",
        f"`check` runs all {len(RULES)} rules (median of 20); `write_report` draws every figure as PNG and SVG and",
        "renders report.html (one run, matplotlib already imported). Target: site-1gw report ≤ 20 s.",
        "",
        "| example | racks | halls | findings | check ms | report wall s | report CPU s | figures | report.html KB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, racks, halls, count, check_s, report_s, report_cpu_s, figures, html_kb in rows:
        lines.append(
            f"| {name} | {racks:,} | {halls} | {count} | {check_s * 1000:.2f} | {report_s:.2f} | {report_cpu_s:.2f} | "
            f"{figures} | {html_kb:,.0f} |"
        )
    out = ROOT / "bench" / "results" / "report.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
