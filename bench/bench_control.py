"""Control plane throughput: submissions per second and their latency, from a separate load process (wrk).

`tokenfab serve` (uvicorn, one process) runs on 127.0.0.1 for a design (default `examples/site-100mw.yaml`,
40,392 GPUs) on SQLite (WAL, synchronous=FULL) and on PostgreSQL (a throwaway local server, fsync on).
Debian's `wrk` drives it with `bench/control_submit.lua`: ``--connections`` keep-alive connections each
submit 4-GPU training jobs back to back for ``--duration-s`` seconds, with six tenant tokens (two per
tenant) taken in turn. A submission is answered 201 only after its transaction is committed (placed or
queued), so submissions/s counts durable writes; afterwards the store must hold at least as many
workloads as were acknowledged. Also reported: the server's CPU time per submission (from /proc), which
does not depend on what else the machine runs.

With ``--baseline REF`` the same runs are made, in the same session, against the code at git ``REF``
(checked out in a temporary worktree), so the table compares like with like on the same machine state.

    .venv/bin/python bench/bench_control.py [--baseline ec8690a] [--connections 32] [--duration-s 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
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

LUA = REPO / "bench" / "control_submit.lua"
TENANTS = ("acme", "globex", "initech")
TOKENS_PER_TENANT = 2
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
TARGETS = {"sqlite": (1000.0, 50.0), "postgresql": (500.0, None)}
"""Per store: (submissions/s at least, p99 ms at most) — issue 13, item 10."""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far [s] (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def wrk(url: str, tokens: list[str], connections: int, duration_s: float) -> dict:
    threads = min(2, connections)
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s:g}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
        env={**os.environ, "TOKENFAB_BENCH_TOKENS": ",".join(tokens)},
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRK_JSON "))
    return json.loads(line[len("WRK_JSON ") :])


def start_server(
    src: Path, design_path: Path, db_url: str, workdir: Path
) -> tuple[subprocess.Popen, str, str]:
    token = format_token(new_token_id(), secrets.token_urlsafe(32))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "server.log").open("ab")
    env = {**os.environ, "TOKENFAB_BOOTSTRAP_TOKEN": token, "PYTHONPATH": str(src)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tokenfab.cli",
            "serve",
            "--design",
            str(design_path),
            "--db",
            db_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=src.parent,
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url, token
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")
        time.sleep(0.2)


def tenant_tokens(url: str, operator: str) -> list[str]:
    headers = {"Authorization": f"Bearer {operator}"}
    tokens = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for tenant in TENANTS:
            http.post("/api/v1/tenants", json={"name": tenant}).raise_for_status()
            for i in range(TOKENS_PER_TENANT):
                created = http.post(
                    "/api/v1/tokens", json={"name": f"{tenant}-{i}", "role": "tenant", "tenant": tenant}
                )
                created.raise_for_status()
                tokens.append(created.json()["token"])
    return tokens


def stored_workloads(url: str, operator: str) -> int:
    """Workloads in the store, from the operator's /metrics (every state)."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {operator}"}, timeout=60).text
    return sum(int(float(m)) for m in re.findall(r'^tokenfab_workloads\{state="\w+"\} (\S+)$', text, re.M))


def run_backend(src: Path, design_path: Path, db_url: str, args: argparse.Namespace, workdir: Path) -> dict:
    server, url, operator = start_server(src, design_path, db_url, workdir)
    try:
        tokens = tenant_tokens(url, operator)
        warm = wrk(url, tokens, 4, 1)  # imports, caches and connections warm before the clock starts
        before = cpu_s(server.pid)
        result = wrk(url, tokens, args.connections, args.duration_s)
        result["cpu_ms_per_submission"] = 1000 * (cpu_s(server.pid) - before) / max(1, result["requests"])
        result["stored"] = stored_workloads(url, operator)
        result["acknowledged_total"] = result["acknowledged"] + warm["acknowledged"]
        result["rate_per_s"] = result["acknowledged"] / result["duration_s"]
        result["durable"] = result["stored"] >= result["acknowledged_total"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return result


def run_code(src: Path, design_path: Path, args: argparse.Namespace, workdir: Path) -> dict[str, dict]:
    results = {}
    if "sqlite" in args.backends:
        db = workdir / f"bench-{secrets.token_hex(4)}.db"
        results["sqlite"] = run_backend(src, design_path, f"sqlite:///{db}", args, workdir)
        print(src, "sqlite", results["sqlite"], flush=True)
    if "postgresql" in args.backends:
        if postgres_bin_dir() is None:
            print("PostgreSQL binaries absent: PostgreSQL skipped", file=sys.stderr)
        else:
            with throwaway_postgres() as admin_url:
                db_url = create_database(admin_url, "bench")
                results["postgresql"] = run_backend(src, design_path, db_url, args, workdir)
                print(src, "postgresql", results["postgresql"], flush=True)
    return results


def baseline_src(ref: str, workdir: Path) -> Path:
    tree = workdir / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
        check=True,
        capture_output=True,
    )
    return tree / "src"


def large_submission(src: Path, gpus: int) -> dict:
    """`control_large_submission.py` run on the code at ``src`` (its JSON line)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "control_large_submission.py"), str(gpus)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
        cwd=src.parent,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def large_table(rows: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "| code | GPUs | state | submit s | longest lock wait during submit s | cancel s | "
        "longest lock wait during cancel s |",
        "|---|---|---|---|---|---|---|",
    ]
    for code, r in rows:
        lines.append(
            f"| {code} | {r['gpus']:,} | {r['state']} | {r['submit_s']:.2f} | {r['submit_lock_wait_s']:.2f} | "
            f"{r['cancel_s']:.2f} | {r['cancel_lock_wait_s']:.2f} |"
        )
    return lines


def table(rows: list[tuple[str, str, dict]]) -> list[str]:
    lines = [
        "| code | store | submissions/s | p50 ms | p99 ms | max ms | acknowledged | other answers | "
        "stored ≥ acknowledged | server CPU ms / submission | target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for code, store, r in rows:
        rate, p99 = TARGETS[store]
        target = f"≥ {rate:,.0f}/s" + (f", p99 ≤ {p99:.0f} ms" if p99 else "")
        met = r["rate_per_s"] >= rate and (p99 is None or r["p99_ms"] <= p99)
        lines.append(
            f"| {code} | {store} | {r['rate_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['max_ms']:.1f} | {r['acknowledged']:,} | {r['failed'] + r['socket_errors']:,} | "
            f"{'yes' if r['durable'] else 'NO'} | {r['cpu_ms_per_submission']:.2f} | "
            f"{target}: {'met' if met else 'not met'} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=REPO / "examples" / "site-100mw.yaml")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--baseline", help="git ref of the code to compare with, run in the same session")
    parser.add_argument(
        "--large-gpus", type=int, default=0, help="also time one training gang this large at 1 GW (0: skip)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "control.md")
    args = parser.parse_args()
    args.backends = args.backends.split(",")
    if shutil.which("wrk") is None:
        print("wrk absent: run scripts/setup-system.sh (Debian's wrk)", file=sys.stderr)
        return 2
    spec, _ = load_spec(args.spec)
    design = compile_design(spec, load_catalog())
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str, dict]] = []
    large: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="tokenfab-bench-") as tmp:
        workdir = Path(tmp)
        design_path = workdir / "design.json"
        design_path.write_text(design.model_dump_json())
        try:
            trees = [("this tree", REPO / "src")]
            if args.baseline:
                trees.insert(0, (f"baseline `{args.baseline}`", baseline_src(args.baseline, workdir)))
            for code, src in trees:
                for store, r in run_code(src, design_path, args, workdir).items():
                    rows.append((code, store, r))
                if args.large_gpus:
                    large.append((code, large_submission(src, args.large_gpus)))
                    print(code, large[-1][1], flush=True)
        finally:
            if args.baseline:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(workdir / "baseline")],
                    capture_output=True,
                )
    load_after = os.getloadavg()[0]
    command = " ".join(["`.venv/bin/python bench/bench_control.py", *sys.argv[1:]]) + "`"
    lines = [
        "## Control plane throughput (issue 13, item 10)",
        "",
        f"Machine: {machine_line()}; 1-minute load average {load_before:.1f} when the run began and "
        f"{load_after:.1f} when it ended (the machine is shared: with other work running these rates are lower "
        f"bounds; the CPU time per submission does not depend on it). Command: {command}.",
        "",
        f"`wrk` ({args.connections} keep-alive connections, {args.duration_s:g} s, `bench/control_submit.lua`) "
        f"submits four-GPU training jobs with six tenant tokens to one `tokenfab serve` process for "
        f"`{args.spec.relative_to(REPO) if args.spec.is_relative_to(REPO) else args.spec}` "
        f"({design.metrics.gpus:,} GPUs). A 201 comes after the commit (SQLite WAL with synchronous=FULL, "
        "PostgreSQL with fsync on); after the run the store holds at least every acknowledged workload.",
        "",
        *table(rows),
        "",
    ]
    if large:
        lines += [
            "One large submission at 1 GW (`examples/site-1gw.yaml`, SQLite), then its cancellation, while a reader "
            "takes the service's lock every 5 ms as the map and node views do (`bench/control_large_submission.py`):",
            "",
            *large_table(large),
            "",
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
