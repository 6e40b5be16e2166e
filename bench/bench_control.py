"""Control plane load benchmark: 32 concurrent clients submitting workloads over loopback.

The real server (`tokenfab serve`, uvicorn, one process) runs on 127.0.0.1 for `examples/site-10mw.yaml`
(4,392 GPUs) with SQLite (WAL, synchronous=FULL) and then PostgreSQL (a throwaway local server). 32 client
threads, each with its own httpx connection, submit 4-GPU training jobs for three tenants; every
submission is answered after its transaction is committed (placed or queued). Reported: submissions per
second (acknowledged submissions / wall time of the burst) and the p50 / p99 latency of one submission.
Bounded: a fixed number of requests per client and a time limit per request and per run.

    .venv/bin/python bench/bench_control.py [--clients 32] [--per-client 30] [--out bench/results/control.md]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "control"))
sys.path.insert(0, str(REPO / "bench"))

from machine import machine_line  # noqa: E402
from pgserver import create_database, postgres_bin_dir, throwaway_postgres  # noqa: E402

from tokenfab.blueprint.compile import compile as compile_design  # noqa: E402
from tokenfab.catalog.load import load_catalog  # noqa: E402
from tokenfab.control.auth import format_token, new_token_id  # noqa: E402
from tokenfab.spec import load_spec  # noqa: E402

SPEC = REPO / "examples" / "site-10mw.yaml"
TENANTS = ("acme", "globex", "initech")
REQUEST_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 300.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_backend(design_path: Path, db_url: str, clients: int, per_client: int, workdir: Path) -> dict:
    token = format_token(new_token_id(), secrets.token_urlsafe(32))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "tokenfab.cli", "serve", "--design", str(design_path), "--db", db_url,
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TOKENFAB_BOOTSTRAP_TOKEN": token})
    headers = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")
            time.sleep(0.1)
        for tenant in TENANTS:
            httpx.post(f"{url}/api/v1/tenants", headers=headers, json={"name": tenant}).raise_for_status()
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        start_gate = threading.Barrier(clients + 1)

        def client(index: int) -> None:
            mine: list[float] = []
            with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
                http.get("/healthz")  # open the connection before the clock starts
                start_gate.wait()
                for i in range(per_client):
                    body = {"name": f"c{index}-{i}", "gpus": 4, "tenant": TENANTS[index % len(TENANTS)]}
                    began = time.perf_counter()
                    response = http.post("/api/v1/workloads", json=body)
                    elapsed = time.perf_counter() - began
                    if response.status_code == 201:
                        mine.append(elapsed)
                    else:
                        with lock:
                            failures.append(f"{response.status_code} {response.text[:120]}")
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        start_gate.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join(timeout=RUN_TIMEOUT_S)
        wall_s = time.perf_counter() - began
        placed = httpx.get(f"{url}/api/v1/workloads", headers=headers, params={"state": "running", "limit": 5000},
                           timeout=REQUEST_TIMEOUT_S).json()["count"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    latencies.sort()
    return {
        "acknowledged": len(latencies), "failures": len(failures), "placed": placed, "wall_s": wall_s,
        "rate_per_s": len(latencies) / wall_s,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max_ms": 1000 * latencies[-1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "control.md")
    args = parser.parse_args()
    spec, _ = load_spec(SPEC)
    design = compile_design(spec, load_catalog())
    results: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tokenfab-bench-") as tmp:
        workdir = Path(tmp)
        design_path = workdir / "design.json"
        design_path.write_text(design.model_dump_json())
        results["SQLite (file, WAL, synchronous=FULL)"] = run_backend(
            design_path, f"sqlite:///{workdir / 'bench.db'}", args.clients, args.per_client, workdir)
        print("sqlite", results, flush=True)
        if postgres_bin_dir() is not None:
            with throwaway_postgres() as admin_url:
                db_url = create_database(admin_url, "bench")
                results["PostgreSQL 15 (local, fsync on)"] = run_backend(
                    design_path, db_url, args.clients, args.per_client, workdir)
        else:
            print("PostgreSQL binaries absent: PostgreSQL row skipped", file=sys.stderr)
    command = "`.venv/bin/python bench/bench_control.py" + (
        f" --clients {args.clients} --per-client {args.per_client}`" if (args.clients, args.per_client) != (32, 30)
        else "`")
    lines = [
        "## Control plane load (issue 6)",
        "",
        f"Machine: {machine_line()} (1-minute load average {load_before:.1f} when the run began; on a shared "
        f"machine these figures are lower bounds). Command: {command}.",
        "",
        f"{args.clients} concurrent clients (threads, one keep-alive httpx connection each) on loopback submit "
        f"{args.per_client} four-GPU training jobs each to one `tokenfab serve` process (uvicorn) for "
        f"`examples/site-10mw.yaml` ({design.metrics.gpus:,} GPUs). Each answer comes after the commit "
        "(durable before acknowledged); one writer thread serialises scheduler + store mutations under one "
        "lock and commits the waiting ones together.",
        "",
        "| store | submissions acknowledged | placed | submissions/s | p50 latency ms | p99 latency ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['acknowledged']:,} | {r['placed']:,} | {r['rate_per_s']:.1f} | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} |")
    lines += ["", "Latency is dominated by queueing behind the single mutation lock: with 32 clients waiting, "
              "p50 ≈ clients / rate. Commits are grouped (one fsync per batch of waiting submissions), so the "
              "rate is bounded by CPU work per request (HTTP, validation, ORM), shared on 2 cores with the 32 "
              "client threads of this benchmark.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
