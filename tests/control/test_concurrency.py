"""Many clients submitting and cancelling at once never double-allocate, on SQLite and on PostgreSQL
(a real server), through a real uvicorn server on loopback."""

from __future__ import annotations

import random
import threading

import httpx
import pytest
from control_helpers import ThreadServer, assert_allocations_consistent, bearer

CLIENTS = 8
OPERATIONS_PER_CLIENT = 16


@pytest.mark.xdist_group("control_e2e")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_submit_and_cancel_never_double_allocates(backend, row_design, tmp_path, request):
    db_url = f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    with ThreadServer(row_design, db_url) as server:
        headers = bearer(server.operator_token)
        tenants = ["acme", "globex", "initech"]
        for name in tenants:
            assert (
                httpx.post(f"{server.url}/api/v1/tenants", headers=headers, json={"name": name}).status_code
                == 201
            )
        acknowledged: list[str] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(index: int) -> None:
            rng = random.Random(index)
            mine: list[str] = []
            with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as http:
                for i in range(OPERATIONS_PER_CLIENT):
                    if mine and rng.random() < 0.35:
                        response = http.delete(f"/api/v1/workloads/{mine.pop(rng.randrange(len(mine)))}")
                        expected = 200
                    else:
                        response = http.post(
                            "/api/v1/workloads",
                            json={
                                "name": f"c{index}-{i}",
                                "gpus": rng.choice([1, 2, 4, 8, 12, 36, 72]),
                                "tenant": tenants[index % len(tenants)],
                            },
                        )
                        expected = 201
                        if response.status_code == 201:
                            mine.append(response.json()["id"])
                            with lock:
                                acknowledged.append(response.json()["id"])
                    if response.status_code != expected:
                        with lock:
                            errors.append(f"{response.status_code}: {response.text[:200]}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors[:5]
        held = assert_allocations_consistent(db_url, server.service.fleet.node_gpus)
        fleet = server.service.fleet
        assert int((fleet.node_gpus - fleet.node_free_gpus).sum()) == sum(held.values())
        assert (fleet.node_free_gpus >= 0).all()
        listed = httpx.get(f"{server.url}/api/v1/workloads", headers=headers, params={"limit": 5000}).json()
        assert {w["id"] for w in listed["data"]} >= set(acknowledged)
