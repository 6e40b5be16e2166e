"""Bad requests get 4xx with a JSON body naming the field; nothing already submitted is lost."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "ok", "gpus": 0}, "gpus"),
        ({"name": "ok", "gpus": -3}, "gpus"),
        ({"name": "ok", "gpus": "many"}, "gpus"),
        ({"name": "Bad Name!", "gpus": 1}, "name"),
        ({"gpus": 1}, "name"),
        ({"name": "ok", "gpus": 1, "kind": "batch"}, "kind"),
        ({"name": "ok", "gpus": 1, "colour": "red"}, "colour"),
        ({"name": "ok", "gpus": 100000}, "gpus"),  # more than the factory holds
        ({"name": "ok", "gpus": 1, "priority": 10**30}, "priority"),
        ({"name": "ok", "gpus": 144, "kind": "inference"}, "gpus"),  # a replica must fit one NVLink domain
        ({"name": "ok", "gpus": 10, "slice_gpus": 4}, "slice_gpus"),
        ({"name": "ok", "gpus": 4, "replicas": 2}, "replicas"),  # training gangs have one replica
        ({"name": "ok", "gpus": 4}, "tenant"),  # the operator must name the owner
        ({"name": "ok", "gpus": 4, "model": "nul\u0000byte"}, "model"),  # PostgreSQL text cannot hold NUL
    ],
)
def test_bad_workload_is_422_naming_the_field(api, body, field):
    response = api.client.post("/api/v1/workloads", headers=api.op, json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["field"] == field and field in payload["error"]


def test_malformed_bodies_and_params(api):
    headers = {**api.op, "Content-Type": "application/json"}
    for content in (b"{", b"[]", b"null", b"\xff\xfe", b'{"name": "a", "gpus": 1e400}'):
        response = api.client.post("/api/v1/workloads", headers=headers, content=content)
        assert 400 <= response.status_code < 500 and "error" in response.json(), content
    for path in (
        "/api/v1/racks/-1",
        "/api/v1/racks/abc",
        "/api/v1/racks/99999",
        "/api/v1/nodes/5/explode",
        "/api/v1/workloads?state=sleeping",
        "/api/v1/workloads?limit=0",
        "/api/v1/nope",
    ):
        response = api.client.request("POST" if "explode" in path else "GET", path, headers=api.op)
        assert 400 <= response.status_code < 500 and "error" in response.json(), path
    response = api.client.get("/api/v1/workloads?state=sleeping", headers=api.op)
    assert response.json()["field"] == "state"


def test_conflicts_and_missing_things_are_4xx(api):
    headers = api.tenant("acme")
    assert api.client.post("/api/v1/tenants", headers=api.op, json={"name": "acme"}).status_code == 409
    assert (
        api.client.patch("/api/v1/tenants/nobody", headers=api.op, json={"quota_gpus": 1}).status_code == 404
    )
    workload = api.submit(headers, name="train", gpus=8)
    scaled = api.client.post(
        f"/api/v1/workloads/{workload['id']}/scale", headers=headers, json={"replicas": 2}
    )
    assert scaled.status_code == 422 and scaled.json()["field"] == "replicas"
    token = api.client.post("/api/v1/tokens", headers=api.op, json={"name": "t", "role": "tenant"})
    assert token.status_code == 422 and token.json()["field"] == "tenant"
    curtail = api.client.post("/api/v1/power/events", headers=api.op, json={"kind": "curtailment"})
    assert curtail.status_code == 422 and curtail.json()["field"] == "cap_kw"
    # nothing submitted before the bad requests was lost
    assert api.client.get(f"/api/v1/workloads/{workload['id']}", headers=headers).json()["state"] == "running"
