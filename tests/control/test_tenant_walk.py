"""Tenant isolation, exhaustively: every route of the OpenAPI document (so a new route cannot escape) is
called as each of two tenants, with every path parameter the caller could use, and no answer holds a
name, an id or a figure of the other tenant, nor the facility's power cap.

The scene has the leaks the issue found: tenant B's queued work starts because tenant A cancelled (the
audit entry's actor is A), both tenants hold small workloads sharing GPUs, work waits for free capacity
and for the facility power cap. Each tenant's workloads carry figures no other answer would hold by
chance (a 4321-GPU quota, a 0.137-GPU share, 12,345.678 tokens/s per GPU).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from control_helpers import bearer

OPERATOR_ONLY_STATUS = 403
ROUTE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/tenants"): {"name": "newco"},
    ("patch", "/api/v1/tenants/{name}"): {"quota_gpus": 10},
    ("post", "/api/v1/tokens"): {"name": "more", "role": "tenant", "tenant": "{tenant}"},
    ("post", "/api/v1/workloads"): {"name": "{tenant}-probe", "gpus": 4},
    ("post", "/api/v1/workloads/{workload_id}/scale"): {"replicas": 1},
    ("post", "/api/v1/nodes/{node_id}/{action}"): {"reason": "probe"},
    ("post", "/api/v1/racks/{rack_id}/{action}"): {"reason": "probe"},
    ("put", "/api/v1/power/cap"): {"cap_kw": 1.0},
    ("post", "/api/v1/power/events"): {"kind": "restore"},
    ("post", "/api/v1/environments"): {"name": "{tenant}-env", "domains": 1},
    ("post", "/api/v1/environments/{env}/scale"): {"domains": 1},
    ("post", "/api/v1/environments/{env}/upgrade"): {"version": "v1.32.4+k0s.0"},
    ("post", "/api/v1/ops/alerts"): {
        "version": "4",
        "groupKey": "probe",
        "status": "resolved",
        "receiver": "probe",
        "alerts": [
            {"status": "resolved", "labels": {"alertname": "Probe"}, "startsAt": "2026-01-01T00:00:00Z"}
        ],
    },
}
"""A body for every route that takes one: a new route with a body must be added here to pass."""


@dataclass
class Tenant:
    name: str
    headers: dict[str, str]
    token_id: str = ""
    workloads: dict[str, dict] = field(default_factory=dict)
    strings: set[str] = field(default_factory=set)
    numbers: set[float] = field(default_factory=set)
    figures: set[str] = field(default_factory=set)
    """Its figures as a page prints them."""

    def submit(self, api, **body) -> dict:
        workload = api.submit(self.headers, **body)
        self.workloads[body["name"]] = workload
        self.strings |= {workload["id"], body["name"]}
        return workload


def _scene(api) -> tuple[Tenant, Tenant, float]:
    """Tenants acme and globex with running, queued, small and inference work; the power cap set."""
    acme = Tenant("acme", api.tenant("acme", quota_gpus=411))
    globex = Tenant("globex", api.tenant("globex", quota_gpus=4321))
    for tenant in (acme, globex):
        tenant.token_id = api.client.get("/api/v1/whoami", headers=tenant.headers).json()["token_id"]
        tenant.strings |= {tenant.name, tenant.token_id, f"{tenant.name}-token"}
    globex.numbers |= {4321, 137, 0.137, 12345.678, 12345.678 * 4 * 2}
    acme.numbers |= {271, 0.271, 411}
    globex.figures |= {"4321", "4,321", "12345.678", "12,345.678", "98,765", "98765", "0.137"}
    acme.figures |= {"0.271"}
    globex.submit(api, name="globex-train", gpus=37)
    globex.submit(
        api, name="globex-serve", kind="inference", gpus=4, replicas=2, tokens_per_s_per_gpu=12345.678
    )
    globex.submit(api, name="globex-nb", kind="small", gpu_fraction=0.137, cpu_cores=3, memory_gb=17)
    acme.submit(api, name="acme-big", gpus=288)
    acme.submit(api, name="acme-nb", kind="small", gpu_fraction=0.271, cpu_cores=2, memory_gb=9)
    acme.submit(api, name="acme-serve", kind="inference", gpus=4, replicas=1)
    waiting = globex.submit(api, name="globex-wait", gpus=72)
    assert waiting["state"] == "queued", waiting
    cancelled = api.client.delete(
        f"/api/v1/workloads/{acme.workloads['acme-big']['id']}", headers=acme.headers
    )
    assert cancelled.status_code == 200
    started = api.client.get(f"/api/v1/workloads/{waiting['id']}", headers=globex.headers).json()
    assert started["state"] == "running"  # acme's cancel let globex's work start
    acme.submit(api, name="acme-wait", gpus=411)  # more than is free: waits, the reason counts free GPUs
    draw = api.client.get("/api/v1/power", headers=api.op).json()["facility_draw_kw"]
    cap_kw = round(draw + 0.123, 3)
    assert api.client.put("/api/v1/power/cap", headers=api.op, json={"cap_kw": cap_kw}).status_code == 200
    for tenant in (acme, globex):
        capped = tenant.submit(api, name=f"{tenant.name}-capped", gpus=8)
        assert capped["state"] == "queued" and "power cap" in capped["queue_reason"]
    return acme, globex, cap_kw


def _leaks(answer: Any, other: Tenant, cap_kw: float) -> list[str]:
    """Every value in ``answer`` that names or counts ``other``, or gives the power cap."""
    found = []
    strings = {s for s in other.strings}
    numbers = other.numbers | {cap_kw}
    cap_texts = {f"{cap_kw:.1f}", f"{cap_kw:g}", repr(cap_kw)}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(str(key), f"{where}.<key>")
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, int | float):
            if any(abs(float(value) - n) < 1e-9 for n in numbers):
                found.append(f"{where} = {value}")
        elif isinstance(value, str):
            words = set(re.findall(r"[A-Za-z0-9_.-]+", value))
            hits = [s for s in strings if s in value] + [t for t in cap_texts if t in words]
            if hits:
                found.append(f"{where} = {value!r} ({', '.join(hits)})")

    walk(answer, "")
    return found


def _calls(
    api, me: Tenant, route: str, method: str, racks: int, my_node: int
) -> list[tuple[str, dict | None]]:
    """The concrete calls of one route as ``me``: every value a path parameter can take that ``me`` knows."""
    body = ROUTE_BODIES.get((method, route))
    if body is not None:
        body = json.loads(json.dumps(body).replace("{tenant}", me.name))
    values = {
        "name": [me.name],
        "token_id": [me.token_id],
        "workload_id": [w["id"] for w in me.workloads.values()],
        "rack_id": [str(r) for r in range(racks)],
        "node_id": [str(my_node)],
        "action": ["cordon"],
        "env": [f"{me.name}-env"],
    }
    paths = [route]
    for param in re.findall(r"{(\w+)}", route):
        assert param in values, f"new path parameter {param} in {route}: give the walk its values"
        paths = [p.replace(f"{{{param}}}", v) for p in paths for v in values[param]]
    if route == "/api/v1/nodes" and method == "get":
        paths += [f"{route}?rack={r}" for r in range(racks)]
    if route == "/api/v1/workloads" and method == "get":
        paths += [f"{route}?state={s}" for s in ("queued", "running", "cancelled")]
    return [(path, body) for path in paths]


def test_every_route_as_each_tenant_shows_nothing_of_the_other(api):
    acme, globex, cap_kw = _scene(api)
    schema = api.client.app.openapi()
    racks = api.service.fleet.n_racks
    routes = [(route, method, op) for route, item in schema["paths"].items() for method, op in item.items()]
    for method_route in {(m, r) for r, m, op in routes if op.get("requestBody")}:
        assert method_route in ROUTE_BODIES, (
            f"{method_route}: a new route with a body; add it to ROUTE_BODIES"
        )
    order = sorted(
        routes, key=lambda r: (r[1] != "get", r[1] == "delete")
    )  # reads, then writes, deletes last
    for me, other in ((acme, globex), (globex, acme)):
        my_node = api.client.get(
            f"/api/v1/workloads/{me.workloads[f'{me.name}-nb']['id']}", headers=me.headers
        ).json()["placement"]["node_ids"][0]
        visited, statuses = set(), {}
        for route, method, _ in order:
            for path, body in _calls(api, me, route, method, racks, my_node):
                if (
                    method == "delete"
                    and "workloads" in path
                    and not path.endswith(me.workloads[f"{me.name}-serve"]["id"])
                ):
                    continue  # cancel one workload of its own, keep the rest of the scene
                if method == "delete" and "tokens" in path:
                    body = None
                response = api.client.request(method.upper(), path, headers=me.headers, json=body)
                assert response.status_code < 500, (method, path, response.text)
                statuses[(method, path)] = response.status_code
                answer = (
                    response.json() if "json" in response.headers.get("content-type", "") else response.text
                )
                leaks = _leaks(answer, other, cap_kw)
                assert not leaks, f"{me.name} {method.upper()} {path} shows {other.name}: {leaks[:5]}"
                visited.add((method, route))
        assert visited == {(m, r) for r, m, _ in routes}
        assert statuses[("get", "/api/v1/power")] == OPERATOR_ONLY_STATUS
        assert statuses[("get", "/metrics")] == OPERATOR_ONLY_STATUS
    # the operator sees it all: the same walk's figures are there for it
    operator_audit = json.dumps(api.client.get("/api/v1/audit", headers=api.op).json())
    assert "tenant:acme/acme-token" in operator_audit and "globex" in operator_audit
    operator_queue = json.dumps(api.client.get("/api/v1/queue", headers=api.op).json())
    assert f"{cap_kw:.1f}" in operator_queue


def test_another_tenants_ids_are_answered_like_missing_ones(api):
    acme, globex, _ = _scene(api)
    for workload in globex.workloads.values():
        for method, suffix, body in (
            ("GET", "", None),
            ("DELETE", "", None),
            ("POST", "/scale", {"replicas": 1}),
        ):
            theirs = api.client.request(
                method, f"/api/v1/workloads/{workload['id']}{suffix}", headers=acme.headers, json=body
            )
            missing = api.client.request(
                method, f"/api/v1/workloads/w-000000000000{suffix}", headers=acme.headers, json=body
            )
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json()["error"].replace(workload["id"], "w-000000000000") == missing.json()["error"]
    assert api.client.get("/api/v1/tenants/globex", headers=acme.headers).status_code == 404
    assert (
        api.client.get(
            f"/api/v1/workloads/{globex.workloads['globex-train']['id']}",
            headers=bearer(api.op["Authorization"].split()[1]),
        ).status_code
        == 200
    )
