"""The operations loop end to end, on loopback, with the real parts: `tokenfab emulate` (a 10 MW design at
4x), `tokenfab serve`, Debian's Prometheus and Alertmanager, wired by `tokenfab export prometheus`.

It shows with numbers (printed, and written to ``ops-e2e.json`` in the test's folder):

1. an XID 79 drains the node and its workload runs again on other nodes within `XID_STATED_S` simulated s;
2. a traffic surge breaches the TTFT SLO; the burn-rate alert adds replicas and attainment recovers;
3. a 25 % grid event brings facility draw under the cap within 30 simulated s with inference SLO
   attainment >= 99 % over the event;
4. every action is in the audit log; bad webhooks get a 4xx and change nothing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tokenfab.emulate.stack import Stack, binaries_missing

pytestmark = [
    pytest.mark.skipif(
        bool(binaries_missing()), reason=f"needs {', '.join(binaries_missing())} (scripts/setup-system.sh)"
    ),
    pytest.mark.xdist_group("ops-e2e"),
    pytest.mark.slow,
]
REPO = Path(__file__).resolve().parents[2]
SPEED = 4.0
XID_STATED_S = 60.0
"""A drained node's workloads run elsewhere within this many simulated seconds (at 4x, 1 s scrapes of the
services, 3 s scrapes of DCGM, 1 s rule evaluation, 0.2 s group wait)."""
GRID_RESPONSE_S = 30.0


def wait_for(what: str, check, timeout_s: float, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec

    workdir = tmp_path_factory.mktemp("ops-e2e")
    design = workdir / "design.json"
    design.write_text(
        compile(load_spec(REPO / "examples" / "site-10mw.yaml")[0], load_catalog()).model_dump_json()
    )
    st = Stack(
        workdir / "run",
        design,
        REPO / "examples" / "workload-mixed.yaml",
        speed=SPEED,
        time_scale=60.0,
        scrape_interval_s=1.0,
        dcgm_scrape_interval_s=3.0,
        evaluation_interval_s=1.0,
        group_wait_s=0.2,
    )
    try:
        st.start()
        yield st
    finally:
        st.stop()
        for name in ("control", "emulator"):
            print(f"--- {name} log (tail)\n{st.log(name)[-1500:]}")


def _audit(st: Stack) -> list[dict]:
    return st.get("control", "/api/v1/audit", params={"limit": 1000})["data"]


def test_operations_loop(stack: Stack):
    st = stack
    numbers: dict = {}
    workloads = wait_for("the emulator to run every placed workload", lambda: _all_running(st), 90)
    wait_for(
        "Prometheus to record SLO attainment",
        lambda: len(st.query("slo:ttft_attainment:ratio_rate5m")) == 3,
        60,
    )
    numbers["workloads"] = len(workloads)

    # 1. XID 79 on a GPU of the smallest training job's first node
    job = min((w for w in workloads if w["kind"] == "training"), key=lambda w: w["gpus"])
    node = job["placement"]["node_ids"][0]
    fault = st.post(
        "emulator", "/faults", {"kind": "xid", "params": {"node": node, "gpu": 0, "code": 79}}
    ).json()
    start_wall = time.monotonic()

    def moved():
        state = st.get("emulator", "/state")
        for move in state["moves"]:
            if (
                move["workload"] == job["id"]
                and move["t_s"] >= fault["at_s"]
                and move["to_nodes"]
                and node not in move["to_nodes"]
                and job["id"] not in state["stalled"]
            ):
                return move
        return None

    move = wait_for("the XID's workload to run on other nodes", moved, 90)
    numbers["xid"] = {
        "node": node,
        "workload": job["id"],
        "gpus": job["gpus"],
        "simulated_s": move["t_s"] - fault["at_s"],
        "wall_s": time.monotonic() - start_wall,
        "to_nodes": move["to_nodes"][:8],
    }
    assert numbers["xid"]["simulated_s"] <= XID_STATED_S
    drains = [a for a in _audit(st) if a["action"] == "node.drain" and a["target"] == f"node/{node}"]
    assert drains and job["id"] in drains[0]["after"]["requeued"]
    assert drains[0]["actor"].endswith("alertmanager")

    # 2. a traffic surge on `code` breaches its TTFT SLO; the burn-rate alert scales it out
    code = next(w for w in workloads if w["name"] == "code")
    surge = st.post(
        "emulator",
        "/faults",
        {"kind": "demand", "params": {"service": "code", "multiplier": 2.0, "duration_s": 3600}},
    ).json()
    surge_wall = time.monotonic()
    scaled = wait_for(
        "a scale-out of `code`",
        lambda: [
            a
            for a in _audit(st)
            if a["action"] == "ops.scale_out" and a["target"] == f"workload/{code['id']}"
        ],
        120,
    )
    scale_wall = time.monotonic()
    worst = min(
        float(r["value"][1])
        for r in st.query('min_over_time(slo:ttft_attainment:ratio_rate5m{service="code"}[2m])')
    )

    def recovered():
        svc = next(s for s in st.get("emulator", "/state")["services"] if s["name"] == "code")
        prom = st.query('slo:ttft_attainment:ratio_rate5m{service="code"}')
        return svc["backlog"] < 1 and prom and float(prom[0]["value"][1]) >= 0.99

    wait_for("`code` attainment to recover to 99 %", recovered, 120, every_s=1.0)
    after = st.get("control", f"/api/v1/workloads/{code['id']}")
    trigger = next(
        a
        for a in st.get("control", "/api/v1/ops/actions")["data"]
        if a["action"] == "scale_out" and a["acted"]
    )
    numbers["slo"] = {
        "replicas_before": scaled[0]["before"]["replicas"],
        "replicas_after": after["replicas"],
        "alert": trigger["alert"],
        "attainment_5m_worst": worst,
        "attainment_5m_recovered": float(
            st.query('slo:ttft_attainment:ratio_rate5m{service="code"}')[0]["value"][1]
        ),
        "surge_to_scale_wall_s": scale_wall - surge_wall,
        "alert_start_after_surge_wall_s": trigger["alert_starts_unix"] - surge["at_unix"],
        "scale_to_recovered_wall_s": time.monotonic() - scale_wall,
    }
    assert after["replicas"] > code["replicas"] and worst < 0.99
    st.post("emulator", f"/faults/{surge['id']}/clear", {})

    # 3. a 25 % grid event
    before = {s["name"]: s for s in st.get("emulator", "/state")["services"]}
    grid = st.post(
        "emulator", "/faults", {"kind": "grid", "params": {"cut_fraction": 0.25, "duration_s": 600}}
    ).json()
    event = wait_for("facility draw under the grid cap", lambda: _complied(st, grid["effect"]["event"]), 60)
    time.sleep(10.0 / SPEED * 2)
    state = st.get("emulator", "/state")
    attainment = {}
    for svc in state["services"]:
        b = before[svc["name"]]
        attainment[svc["name"]] = (svc["good"] - b["good"]) / max(svc["requests"] - b["requests"], 1e-9)
    numbers["grid"] = {
        "cap_kw": event["cap_kw"],
        "facility_kw_before": event["facility_kw_before"],
        "facility_kw_after": state["facility_kw"],
        "response_simulated_s": event["response_s"],
        "inference_attainment": attainment,
        "training_limit_w": state["training_limit_w"],
    }
    assert event["response_s"] <= GRID_RESPONSE_S
    assert state["facility_kw"] <= event["cap_kw"] * 1.001
    assert min(attainment.values()) >= 0.99

    # 4. every action the loop took is in the audit log
    actions = [a for a in st.get("control", "/api/v1/ops/actions")["data"] if a["acted"]]
    audit = _audit(st)
    names = {a["action"] for a in audit}
    assert {"node.drain", "ops.scale_out", "workload.scale", "ops.power.cap"} <= names
    for action in actions:
        expected = {
            "drain_node": "node.drain",
            "scale_out": "ops.scale_out",
            "shed_power": "ops.power.cap",
            "grid_event": "ops.power.cap",
        }.get(action["action"])
        if expected:
            assert any(a["action"] == expected for a in audit), action
    numbers["reaction_s"] = {a["action"]: round(a["reaction_s"], 4) for a in actions}

    # the control plane's own view: history read from Prometheus, and its /metrics
    history = st.get("control", "/api/v1/ops/history")["data"]
    assert len(history) > 10 and history[-1]["facility"]["power_w"] > 0
    assert "slo_attainment_5m" in history[-1]["services"]["code/serving"]
    metrics = httpx.get(st.url("control") + "/metrics", headers=st.auth(), timeout=10).text
    for name in (
        'tokenfab_service_slo_attainment_ratio{service="code",tenant="serving",window="5m"}',
        'tokenfab_service_ttft_seconds{quantile="p99",service="chat",tenant="serving"}',
        "tokenfab_service_error_budget_remaining_ratio",
        'tokenfab_tenant_output_tokens_per_second{tenant="serving"}',
        "tokenfab_tenant_gpus_allocated",
        "tokenfab_workloads",
        "tokenfab_ops_facility_power_watts",
        "tokenfab_ops_reaction_seconds_count",
    ):
        assert name in metrics, name
    numbers["history_points"] = len(history)

    # bad webhooks: a clear 4xx, nothing changes
    count = len(audit)
    hook = {
        "version": "4",
        "groupKey": "g",
        "status": "firing",
        "receiver": "tokenfab-control",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "GpuXidError", "action": "drain_node", "Hostname": "no-such-node"},
                "startsAt": "2026-01-01T00:00:00Z",
            }
        ],
    }
    url = st.url("control") + "/api/v1/ops/alerts"
    unsigned = httpx.post(url, json=hook, timeout=10)
    malformed = httpx.post(
        url, json={"alerts": "nope"}, headers={"Authorization": f"Bearer {st.alert_token}"}, timeout=10
    )
    unknown = httpx.post(url, json=hook, headers={"Authorization": f"Bearer {st.alert_token}"}, timeout=10)
    assert (unsigned.status_code, malformed.status_code, unknown.status_code) == (401, 422, 404)
    assert "no-such-node" in unknown.json()["error"]
    assert len(_audit(st)) == count
    numbers["bad_webhooks"] = [unsigned.status_code, malformed.status_code, unknown.status_code]

    (st.workdir / "ops-e2e.json").write_text(json.dumps(numbers, indent=2))
    print(json.dumps(numbers, indent=2))


def _all_running(st: Stack):
    workloads = st.get("control", "/api/v1/workloads", params={"limit": 1000})["data"]
    placed = [w for w in workloads if w["state"] in ("placed", "running")]
    state = st.get("emulator", "/state")
    if placed and state["workloads"] == len(placed) and not state["stalled"]:
        return placed
    return None


def _complied(st: Stack, index: int):
    event = st.get("emulator", "/state")["grid_events"][index]
    return event if event["complied_at_s"] is not None else None
