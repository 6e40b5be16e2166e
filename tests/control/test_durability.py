"""A submission is acknowledged only after it is committed: SIGKILL the real server (uvicorn subprocess)
in the middle of a burst of concurrent submissions, restart it, and find every acknowledged workload, with
no GPU allocated twice and the scheduler's rebuilt state equal to the store."""

from __future__ import annotations

import os
import secrets
import signal
import threading

import httpx
import pytest
from control_helpers import (
    assert_allocations_consistent,
    bearer,
    free_port,
    start_server_process,
    wait_healthy,
)

from tokenfab.control import auth

CLIENTS = 8


@pytest.mark.xdist_group("control_e2e")
def test_sigkill_mid_burst_loses_no_acknowledged_submission(row_design, row_design_path, tmp_path):
    token = auth.format_token(auth.new_token_id(), secrets.token_urlsafe(32))
    headers = bearer(token)
    db_url = f"sqlite:///{tmp_path / 'durable.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server_process(row_design_path, db_url, port, token, tmp_path / "server.log")
    try:
        wait_healthy(url, process=server)
        for name in ("acme", "globex"):
            assert (
                httpx.post(f"{url}/api/v1/tenants", headers=headers, json={"name": name}).status_code == 201
            )
        acknowledged: list[str] = []
        lock = threading.Lock()
        enough = threading.Event()

        def submit_many(client_index: int) -> None:
            tenant = ("acme", "globex")[client_index % 2]
            with httpx.Client(base_url=url, headers=headers, timeout=10.0) as client:
                for i in range(400):
                    try:
                        response = client.post(
                            "/api/v1/workloads",
                            json={
                                "name": f"c{client_index}-{i}",
                                "gpus": 4 * (1 + (i + client_index) % 3),
                                "tenant": tenant,
                            },
                        )
                    except httpx.HTTPError:
                        return  # the server died under us: this one was never acknowledged
                    if response.status_code == 201:
                        with lock:
                            acknowledged.append(response.json()["id"])
                            if len(acknowledged) >= 60:
                                enough.set()

        threads = [threading.Thread(target=submit_many, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=90), "the burst did not get going"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(acknowledged) >= 60

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    restarted = start_server_process(row_design_path, db_url, port, token, tmp_path / "server.log")
    try:
        wait_healthy(url, process=restarted)
        listed = httpx.get(
            f"{url}/api/v1/workloads", headers=headers, params={"limit": 5000}, timeout=10
        ).json()
        present = {w["id"]: w for w in listed["data"]}
        missing = [w for w in acknowledged if w not in present]
        assert not missing, f"{len(missing)} acknowledged workloads lost, e.g. {missing[:3]}"
        held = assert_allocations_consistent(db_url, row_design and _node_gpus(row_design))
        metrics = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
        allocated = next(
            int(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("tokenfab_gpus_allocated ")
        )
        assert allocated == sum(held.values()), "the restarted scheduler disagrees with the store"
        # and the restarted server keeps working: a new submission is placed or queued with a reason
        after = httpx.post(
            f"{url}/api/v1/workloads",
            headers=headers,
            timeout=10,
            json={"name": "after-restart", "gpus": 4, "tenant": "acme"},
        ).json()
        assert after["state"] == "running" or after["queue_reason"]
    finally:
        restarted.terminate()
        restarted.wait(timeout=10)


def _node_gpus(design):
    from tokenfab.fleet import from_design

    return from_design(design).node_gpus
