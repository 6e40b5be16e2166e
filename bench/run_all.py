"""`make bench`: run every benchmark script, then assemble bench/RESULTS.md from bench/results/*.md.

`python bench/run_all.py compile perf` runs only those; `python bench/run_all.py --assemble` only assembles.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ORDER = [
    "startup",
    "compile",
    "certify",
    "report",
    "perf",
    "sched",
    "openb",
    "twin",
    "export",
    "control",
    "control_lock",
    "environments",
    "ops",
    "sweep",
    "facility",
]


def assemble() -> Path:
    parts = sorted(
        (BENCH / "results").glob("*.md"),
        key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else 99, p.stem),
    )
    text = [
        "# Benchmark results",
        "",
        "Assembled by `make bench` from `bench/results/*.md`; each section names its machine, date and command.",
        "",
    ]
    for part in parts:
        text.append(part.read_text().rstrip() + "\n")
    out = BENCH / "RESULTS.md"
    out.write_text("\n".join(text))
    return out


def main() -> int:
    if sys.argv[1:] == ["--assemble"]:
        print(f"wrote {assemble()}")
        return 0
    only = sys.argv[1:]
    failed = []
    for script in sorted(BENCH.glob("bench_*.py")):
        if only and script.stem.removeprefix("bench_") not in only:
            continue
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
    print(f"wrote {assemble()}")
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
