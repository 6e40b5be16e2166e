"""Helpers for the control plane tests (imported by name: ``from control_helpers import ...``): a
TestClient wrapper with tenant/token helpers, a uvicorn server in a thread, `tokenfab serve` as a
process, and the store-level check that no GPU is allocated twice."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tokenfab.blueprint.design import Design

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """A TestClient on the app plus the operator token, with helpers to make tenants and their tokens."""

    def __init__(self, client, operator_token: str, service):
        self.client = client
        self.op = bearer(operator_token)
        self.service = service

    def tenant(self, name: str, **fields) -> dict[str, str]:
        """Create a tenant and a token for it; return the token's headers."""
        response = self.client.post("/api/v1/tenants", headers=self.op, json={"name": name, **fields})
        assert response.status_code == 201, response.text
        token = self.client.post(
            "/api/v1/tokens",
            headers=self.op,
            json={"name": f"{name}-token", "role": "tenant", "tenant": name},
        )
        assert token.status_code == 201, token.text
        return bearer(token.json()["token"])

    def submit(self, headers, **body) -> dict:
        response = self.client.post("/api/v1/workloads", headers=headers, json=body)
        assert response.status_code == 201, response.text
        return response.json()


def open_api(design: Design, db_url: str, settings=None) -> Api:
    from fastapi.testclient import TestClient

    from tokenfab.control.api import create_app
    from tokenfab.control.service import ControlService

    opened = ControlService.open(design, db_url)
    client = TestClient(create_app(design, db_url, service=opened.service, settings=settings))
    return Api(client, opened.bootstrap_token, opened.service)


class ThreadServer:
    """uvicorn serving the app on 127.0.0.1 from a thread of this process."""

    def __init__(self, design: Design, db_url: str, settings=None):
        """``settings``: the server's limits (default: from the environment), as `tokenfab serve` applies them."""
        import uvicorn

        from tokenfab.control.api import create_app
        from tokenfab.control.limits import server_options
        from tokenfab.control.service import ControlService
        from tokenfab.settings import load_settings

        settings = settings if settings is not None else load_settings()
        opened = ControlService.open(design, db_url)
        self.service = opened.service
        self.operator_token = opened.bootstrap_token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(design, db_url, service=self.service, settings=settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **server_options(settings),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_healthy(self.url)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.service.engine.dispose()


def wait_healthy(url: str, timeout_s: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout_s} s")


def start_server_process(
    design_path: Path, db_url: str, port: int, token: str, log: Path
) -> subprocess.Popen:
    """`tokenfab serve` as a real process (uvicorn) with a known bootstrap token."""
    env = {**os.environ, "TOKENFAB_BOOTSTRAP_TOKEN": token}
    handle = log.open("ab")
    return subprocess.Popen(
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
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
    )


def assert_allocations_consistent(db_url: str, node_gpus) -> dict[str, int]:
    """No GPU allocated twice: allocation rows are distinct slots below each node's GPU count, and match
    the active placements exactly; no NVLink domain holds two tenants. Returns GPUs held per workload."""
    from collections import Counter

    from sqlalchemy import select

    from tokenfab.control.db import make_engine, session_factory
    from tokenfab.control.store import GpuAllocationRow, NodeRow, PlacementRow, WorkloadRow

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(GpuAllocationRow.node_id, GpuAllocationRow.slot, GpuAllocationRow.workload_id)
            ).all()
            placements = session.execute(
                select(PlacementRow.workload_id, PlacementRow.node_ids, PlacementRow.gpus_per_node).where(
                    PlacementRow.released_at.is_(None)
                )
            ).all()
            states = dict(session.execute(select(WorkloadRow.id, WorkloadRow.state)).all())
            tenant_of = dict(session.execute(select(WorkloadRow.id, WorkloadRow.tenant_id)).all())
            domain_of = dict(session.execute(select(NodeRow.id, NodeRow.domain)).all())
    finally:
        engine.dispose()
    slots = Counter((node, slot) for node, slot, _ in rows)
    assert all(count == 1 for count in slots.values()), "a GPU slot is allocated twice"
    assert all(0 <= slot < int(node_gpus[node]) for node, slot, _ in rows), "a slot beyond the node's GPUs"
    per_node_rows = Counter(node for node, _, _ in rows)
    per_node_placed: Counter = Counter()
    held: Counter = Counter()
    for workload_id, nodes, gpus in placements:
        assert states[workload_id] in ("placed", "running"), (workload_id, states[workload_id])
        for node, take in zip(nodes, gpus, strict=True):
            per_node_placed[node] += take
            held[workload_id] += take
    assert per_node_rows == per_node_placed, "allocation rows and placements disagree"
    assert all(per_node_placed[n] <= int(node_gpus[n]) for n in per_node_placed), "a node is oversubscribed"
    assert len({w for w, _, _ in placements}) == len(placements), "a workload holds two active placements"
    owners: dict[int, set] = {}
    for workload_id, nodes, _ in placements:
        for node in nodes:
            owners.setdefault(domain_of[node], set()).add(tenant_of[workload_id])
    assert all(len(t) == 1 for t in owners.values()), "two tenants share an NVLink domain"
    return dict(held)
