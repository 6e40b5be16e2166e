"""The control plane's operations loop in process (no Prometheus): Alertmanager webhooks are
authenticated, validated in full before anything acts, and each accepted alert acts with an audit entry."""

from __future__ import annotations

import pytest
from control_helpers import open_api

from tokenfab.control.ops.policy import (
    TrainingJobView,
    cdu_of_rack,
    derate_fraction,
    power_response,
    racks_to_stop,
    replicas_for_burn,
    replicas_within_quota,
)
from tokenfab.names import inventory


@pytest.fixture
def api(tmp_path):
    from pathlib import Path

    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec

    design = compile(
        load_spec(Path(__file__).resolve().parents[2] / "examples" / "row-1mw.yaml")[0], load_catalog()
    )
    api = open_api(design, f"sqlite:///{tmp_path}/ops.db")
    api.names = inventory(design)
    yield api
    api.client.close()
    api.service.close()


def hook(*alerts, status="firing"):
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": status,
        "receiver": "tokenfab-control",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "test"},
                "startsAt": "2026-12-03T10:00:00Z",
            }
            for labels in alerts
        ],
    }


def audit_count(api) -> int:
    return api.client.get("/api/v1/audit", headers=api.op, params={"limit": 5000}).json()["count"]


def test_xid_alert_drains_the_node_and_replaces_its_workload(api):
    lab = api.tenant("lab")
    job = api.submit(lab, name="train", gpus=4)
    node = job["placement"]["node_ids"][0]
    host = api.names.node_names[node]
    response = api.client.post(
        "/api/v1/ops/alerts",
        headers=api.op,
        json=hook({"alertname": "GpuXidError", "action": "drain_node", "Hostname": host, "gpu": "0"}),
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["acted"] and result["detail"]["requeued"] == [job["id"]]
    moved = api.client.get(f"/api/v1/workloads/{job['id']}", headers=api.op).json()
    assert moved["state"] in ("placed", "running") and node not in moved["placement"]["node_ids"]
    entries = api.client.get("/api/v1/audit", headers=api.op).json()["data"]
    assert any(e["action"] == "node.drain" and e["target"] == f"node/{node}" for e in entries)
    # the same alert again acts no more (the node is already out of service)
    again = api.client.post(
        "/api/v1/ops/alerts",
        headers=api.op,
        json=hook({"alertname": "GpuXidError", "action": "drain_node", "Hostname": host}),
    )
    assert again.json()["results"][0]["acted"] is False


def test_bad_webhooks_get_4xx_and_change_nothing(api):
    lab = api.tenant("lab")
    job = api.submit(lab, name="train", gpus=4)
    host = api.names.node_names[job["placement"]["node_ids"][0]]
    good = {"alertname": "GpuXidError", "action": "drain_node", "Hostname": host}
    before = audit_count(api)
    url = "/api/v1/ops/alerts"
    assert api.client.post(url, json=hook(good)).status_code == 401
    assert (
        api.client.post(url, json=hook(good), headers={"Authorization": "Bearer tf_bad_secret"}).status_code
        == 401
    )
    assert api.client.post(url, json=hook(good), headers=lab).status_code == 403
    malformed = api.client.post(url, json={"version": "4", "alerts": [{"labels": "x"}]}, headers=api.op)
    assert malformed.status_code == 422 and "field" in malformed.json()
    assert (
        api.client.post(
            url, content=b"{not json", headers={**api.op, "content-type": "application/json"}
        ).status_code
        == 422
    )
    # one unknown node in a webhook: nothing acts, not even the alert naming a real node
    unknown = api.client.post(
        url,
        json=hook(
            good, {"alertname": "GpuXidError", "action": "drain_node", "Hostname": "s9-h9-su9-r99-n99"}
        ),
        headers=api.op,
    )
    assert unknown.status_code == 404
    assert (
        "s9-h9-su9-r99-n99" in unknown.json()["error"]
        and unknown.json()["field"] == "alerts.1.labels.Hostname"
    )
    no_host = api.client.post(
        url, json=hook({"alertname": "GpuXidError", "action": "drain_node"}), headers=api.op
    )
    assert no_host.status_code == 422
    for labels in (
        {"alertname": "SLOBurnRateFast", "service": "nope"},
        {"alertname": "CduPumpFailed", "hall": "0", "cdu": "h0-cdu99"},
        {"alertname": "RackExporterDown", "rack": "nope"},
    ):
        assert api.client.post(url, json=hook(labels), headers=api.op).status_code == 404
    assert audit_count(api) == before
    assert (
        api.client.get(f"/api/v1/workloads/{job['id']}", headers=api.op).json()["placement"]["node_ids"]
        == job["placement"]["node_ids"]
    )


def test_slo_burn_scales_out_within_quota_and_cdu_failure_derates(api):
    api.tenant("serving", quota_gpus=16)
    svc = api.submit(
        api.op,
        name="chat",
        kind="inference",
        tenant="serving",
        gpus=4,
        replicas=2,
        preemptible=False,
        tokens_per_s_per_gpu=1000,
    )
    url = "/api/v1/ops/alerts"
    result = api.client.post(
        url,
        json=hook(
            {"alertname": "SLOBurnRateFast", "action": "scale_out", "service": "chat", "tenant": "serving"}
        ),
        headers=api.op,
    ).json()["results"][0]
    assert result["acted"] and result["detail"]["replicas_after"] == 3
    assert api.client.get(f"/api/v1/workloads/{svc['id']}", headers=api.op).json()["replicas"] == 3
    entries = {e["action"] for e in api.client.get("/api/v1/audit", headers=api.op).json()["data"]}
    assert {"ops.scale_out", "workload.scale"} <= entries
    cdu = api.client.post(
        url,
        json=hook(
            {
                "alertname": "CduPumpFailed",
                "action": "derate_racks",
                "hall": "0",
                "cdu": "h0-cdu0",
                "site": "s0",
            }
        ),
        headers=api.op,
    ).json()["results"][0]
    assert cdu["acted"] and cdu["detail"]["racks"]
    desired = api.client.get("/api/v1/ops/desired", headers=api.op).json()
    assert set(desired["rack_limit_fraction"]) == {str(r) for r in cdu["detail"]["racks"]}
    assert any(w["id"] == svc["id"] and len(w["node_ids"]) for w in desired["workloads"])
    resolved = api.client.post(
        url,
        json=hook(
            {"alertname": "CduPumpFailed", "action": "derate_racks", "hall": "0", "cdu": "h0-cdu0"},
            status="resolved",
        ),
        headers=api.op,
    )
    assert resolved.status_code == 200
    assert api.client.get("/api/v1/ops/desired", headers=api.op).json()["rack_limit_fraction"] == {}
    metrics = api.client.get("/metrics", headers=api.op).text
    assert 'tokenfab_ops_actions_total{action="scale_out"} 1.0' in metrics
    assert "tokenfab_ops_reaction_seconds_bucket" in metrics


def test_power_response_caps_training_first_then_pauses_flexible_newest():
    jobs = [
        TrainingJobView("old", 72, False, 100.0),
        TrainingJobView("flex-old", 72, True, 200.0),
        TrainingJobView("flex-new", 72, True, 300.0),
    ]
    small = power_response(1.02e6, 1.0e6, 1.2, jobs, 1000.0, 1000.0, 700.0, 150.0)
    assert small.pause == [] and 700.0 < small.training_cap_w < 1000.0
    assert small.saved_by_cap_w == pytest.approx(small.it_reduction_w)
    big = power_response(1.15e6, 1.0e6, 1.2, jobs, 1000.0, 1000.0, 700.0, 150.0)
    assert big.training_cap_w == 700.0 and big.pause == ["flex-new", "flex-old"]
    assert big.saved_by_cap_w + big.saved_by_pause_w >= big.it_reduction_w
    assert power_response(0.9e6, 1.0e6, 1.2, jobs, 1000.0, 1000.0, 700.0, 150.0).pause == []


def test_scale_cdu_helpers():
    assert replicas_for_burn(100.0, 0.0, 0.0, 200.0, 1000.0, 4, 2) == max(3, 6)
    assert replicas_within_quota(10, 2, 4, 16, 8) == 4
    assert replicas_within_quota(10, 2, 4, None, 8) == 10
    assert [cdu_of_rack(r, 8, 4) for r in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert derate_fraction(3, 4) == 0.75 and racks_to_stop(3, 2, 8) == 3 and racks_to_stop(3, 3, 8) == 0


def test_dashboard_has_the_operations_card(api):
    page = api.client.get("/").text
    assert 'id="ops-card"' in page and "/static/ops.js" in page
    script = api.client.get("/static/ops.js")
    assert script.status_code == 200 and "ops/history" in script.text
    history = api.client.get("/api/v1/ops/history", headers=api.op)
    assert history.status_code == 200 and history.json()["count"] == 0  # no Prometheus in this app
    lab = api.tenant("lab")
    assert api.client.get("/api/v1/ops/history", headers=lab).status_code == 403
    assert api.client.get("/api/v1/ops/desired", headers=lab).status_code == 403


def test_grid_event_end_lifts_the_cap_and_resubmits_paused_jobs(api):
    from tokenfab.control.ops.router import get_ops

    class _Request:  # what get_ops reads: the app's state
        app = api.client.app

    ops = get_ops(_Request())
    lab = api.tenant("lab")
    job = api.submit(lab, name="flex", gpus=4, priority=-1)
    ops.training_limit_w = 700.0
    ops.paused[job["id"]] = {"name": "flex", "kind": "training", "tenant": "lab", "gpus": 4, "priority": -1}
    api.client.delete(f"/api/v1/workloads/{job['id']}", headers=api.op)
    response = api.client.post(
        "/api/v1/ops/alerts",
        headers=api.op,
        json=hook({"alertname": "GridEventActive", "action": "grid_event", "site": "s0"}, status="resolved"),
    )
    result = response.json()["results"][0]
    assert result["acted"] and job["id"] in result["detail"]["resumed"]
    new_id = result["detail"]["resumed"][job["id"]]
    assert api.client.get(f"/api/v1/workloads/{new_id}", headers=api.op).json()["state"] in (
        "placed",
        "running",
    )
    assert api.client.get("/api/v1/ops/desired", headers=api.op).json()["training_limit_w"] is None
    entries = [
        e
        for e in api.client.get("/api/v1/audit", headers=api.op).json()["data"]
        if e["action"] == "ops.power.restore"
    ]
    assert entries and entries[0]["after"]["resumed"] == {job["id"]: new_id}
    # without Prometheus a firing power alert changes nothing
    firing = api.client.post(
        "/api/v1/ops/alerts",
        headers=api.op,
        json=hook({"alertname": "FacilityPowerOverCap", "action": "shed_power", "site": "s0"}),
    )
    assert firing.json()["results"][0]["acted"] is False
