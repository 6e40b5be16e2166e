"""Tenant environments: how long create, scale, delete and the isolation check take on a 1 GW factory.

`examples/site-1gw.yaml` (393,696 GPUs, about 5,400 NVLink domains) is served from a SQLite store (WAL,
synchronous=FULL: every step of an operation is its own fsynced commit). Three tenants create
environments of 1 and 8 domains, scale them up and down and delete them, in-process (no HTTP); the
median and maximum of each operation are reported, with the time `check` takes over all of them.

    .venv/bin/python bench/bench_environments.py [--rounds 20] [--out bench/results/environments.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from machine import machine_line  # noqa: E402

from tokenfab.blueprint.compile import compile as compile_design  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.control import schemas as s  # noqa: E402
from tokenfab.control.service import ControlService  # noqa: E402
from tokenfab.spec import load_spec  # noqa: E402

SPEC = REPO / "examples" / "site-1gw.yaml"
TENANTS = ("acme", "globex", "initech")


def timed(action) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return (time.perf_counter() - start) * 1000.0, result


def run(rounds: int) -> tuple[dict[str, list[float]], float, int, int]:
    spec, _ = load_spec(SPEC)
    design = compile_design(spec, load_catalog())
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        open_ms, opened = timed(lambda: ControlService.open(design, f"sqlite:///{Path(folder) / 'b.db'}"))
        service = opened.service
        operator = service.authenticate(opened.bootstrap_token)
        for name in TENANTS:
            service.create_tenant(operator, s.TenantCreate(name=name))
        for i in range(rounds):
            tenant = TENANTS[i % len(TENANTS)]
            for label, domains in (("create 1 domain", 1), ("create 8 domains", 8)):
                body = s.EnvironmentCreate(name=f"e{i}-{domains}", tenant=tenant, domains=domains)
                ms, env = timed(lambda b=body: service.create_environment(operator, b))
                samples.setdefault(label, []).append(ms)
            ms, _ = timed(
                lambda e=env: service.scale_environment(operator, e.id, s.EnvironmentScale(domains=12))
            )
            samples.setdefault("scale 8 → 12 domains", []).append(ms)
            ms, _ = timed(
                lambda e=env: service.scale_environment(operator, e.id, s.EnvironmentScale(domains=4))
            )
            samples.setdefault("scale 12 → 4 domains", []).append(ms)
            ms, _ = timed(lambda e=env: service.delete_environment(operator, e.id))
            samples.setdefault("delete 4 domains", []).append(ms)
        check_ms, check = timed(service.check_environments)
        assert check.ok, check.problems
        n_domains = service.fleet.n_domains
        service.close()
    samples["open the store (migrate, rebuild)"] = [open_ms]
    return samples, check_ms, check.environments, n_domains


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "environments.md")
    args = parser.parse_args()
    samples, check_ms, environments, n_domains = run(args.rounds)
    lines = [
        "## Tenant environments (issue 16)",
        "",
        f"Machine: {machine_line()}. Command: `.venv/bin/python bench/bench_environments.py --rounds {args.rounds}`.",
        "",
        f"`examples/site-1gw.yaml` ({n_domains:,} NVLink domains), SQLite store, in-process; each operation is its",
        "request transaction, one committed transaction per step and the finishing one.",
        "",
        "| operation | runs | median ms | max ms |",
        "|---|---|---|---|",
    ]
    for label, values in samples.items():
        lines.append(f"| {label} | {len(values)} | {statistics.median(values):.1f} | {max(values):.1f} |")
    lines += ["", f"`check` over {environments} environments: {check_ms:.1f} ms.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
