"""How long one large submission holds the control plane's write lock at 1 GW (issue 13, item 9).

`examples/site-1gw.yaml` (389,304 GPUs) in a SQLite store; an operator submits training gangs of 7,200,
36,000 and 72,000 GPUs for one tenant, then cancels them. The writer's lock is wrapped to time each hold
(the whole batch: placement, GPU allocation rows, audit, telemetry sample; not the commit's fsync, which
is outside the lock). Bounded: three submissions and three cancellations.

    .venv/bin/python bench/bench_control_lock.py [--out bench/results/control_lock.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from machine import machine_line  # noqa: E402

from tokenfab.blueprint.compile import compile as compile_design  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.control import schemas as s  # noqa: E402
from tokenfab.control.auth import Principal  # noqa: E402
from tokenfab.control.service import ControlService  # noqa: E402
from tokenfab.control.store import Role  # noqa: E402
from tokenfab.spec import load_spec  # noqa: E402

SPEC = REPO / "examples" / "site-1gw.yaml"
GANGS = (7_200, 36_000, 72_000)


class TimedLock:
    """The writer's lock, recording how long each outermost hold lasted [s]."""

    def __init__(self, lock: threading.RLock):
        self.lock = lock
        self.depth = 0
        self.holds: list[float] = []

    def __enter__(self):
        self.lock.acquire()
        self.depth += 1
        if self.depth == 1:
            self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0:
            self.holds.append(time.perf_counter() - self.started)
        self.lock.release()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "control_lock.md")
    args = parser.parse_args()
    spec, _ = load_spec(SPEC)
    design = compile_design(spec, load_catalog())
    rows = []
    with tempfile.TemporaryDirectory(prefix="tokenfab-lock-") as tmp:
        service = ControlService.open(design, f"sqlite:///{tmp}/control.db").service
        operator = Principal(token_id="bench", name="bench", role=Role.operator)
        service.create_tenant(operator, s.TenantCreate(name="acme"))
        timed = TimedLock(service.lock)
        service.writer.lock = timed
        for gpus in GANGS:
            started = time.perf_counter()
            workload = service.submit(
                operator, s.WorkloadCreate(name=f"gang-{gpus}", gpus=gpus, tenant="acme")
            )
            answered = time.perf_counter() - started
            submit_hold = timed.holds[-1]
            started = time.perf_counter()
            service.cancel(operator, workload.id)
            rows.append(
                (gpus, workload.state, submit_hold, answered, timed.holds[-1], time.perf_counter() - started)
            )
        service.close()
    lines = [
        f"Machine: {machine_line()}. Design: {SPEC.name} ({design.metrics.gpus:,} GPUs), SQLite.",
        "",
        "| gang GPUs | state | submit: lock held [s] | submit: answered [s] | cancel: lock held [s] | cancel: answered [s] |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {g:,} | {st} | {h:.2f} | {a:.2f} | {ch:.2f} | {ca:.2f} |" for g, st, h, a, ch, ca in rows]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
