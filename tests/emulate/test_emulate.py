"""The emulated factory: its physics, telemetry formats (DCGM-exporter, vLLM, facility, Redfish) and
fault-injection API, on the 1 MW example row (standalone placement, no control plane)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tokenfab.emulate import build, faults
from tokenfab.emulate.exposition import DCGM_COUNTERS_CSV, EXTRA_COUNTERS, read_counter_list
from tokenfab.emulate.factory import KIND_INFERENCE, KIND_TRAINING
from tokenfab.emulate.runner import Runner, place_standalone
from tokenfab.emulate.server import create_app
from tokenfab.twin.workload import load_workload

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def emulation():
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec

    catalog = load_catalog()
    design = compile(load_spec(REPO / "examples" / "row-1mw.yaml")[0], catalog)
    emu = build(
        design, load_workload(REPO / "examples" / "workload-mixed.yaml"), catalog, base_dir=REPO / "examples"
    )
    emu.factory.apply_placements(place_standalone(emu.factory, emu.workload))
    emu.factory.step(1.0)
    return emu


@pytest.fixture
def client(emulation):
    runner = Runner(emulation.factory, speed=1.0)
    with TestClient(create_app(runner, emulation.node_names, emulation.rack_names)) as c:
        yield c


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_counter_list_is_the_exporters_default_plus_error_counters():
    rows = read_counter_list()
    fields = [r[0] for r in rows]
    enabled = [
        line.split(",")[0].strip()
        for line in DCGM_COUNTERS_CSV.read_text().splitlines()
        if line.startswith("DCGM_FI_")
    ]
    assert fields[: len(enabled)] == enabled or set(enabled) <= set(fields)
    assert set(EXTRA_COUNTERS) <= set(fields) and "DCGM_FI_DEV_XID_ERRORS" in fields


def test_dcgm_page_has_the_exporters_names_and_labels(client, emulation):
    f = emulation.factory
    text = client.get("/dcgm/rack/0/metrics").text
    fams = families(text)
    assert {
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    } <= set(fams)
    power = fams["DCGM_FI_DEV_POWER_USAGE"].samples
    assert len(power) == int(f.rack_first_gpu[1] - f.rack_first_gpu[0])
    assert set(power[0].labels) == {
        "gpu",
        "UUID",
        "pci_bus_id",
        "device",
        "modelName",
        "Hostname",
        "DCGM_FI_DRIVER_VERSION",
    }
    assert power[0].labels["Hostname"] == emulation.node_names[0]
    assert sum(s.value for s in power) == pytest.approx(float(f.gpu_power_w[: len(power)].sum()))
    assert client.get("/dcgm/rack/9999/metrics").status_code == 404


def test_vllm_and_facility_pages(client, emulation):
    svc = emulation.workload.services[0]
    fams = families(client.get(f"/vllm/{svc.name}/metrics").text)
    for name in ("vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds"):
        assert fams[name].type == "histogram"
    buckets = [s for s in fams["vllm:time_to_first_token_seconds"].samples if s.name.endswith("_bucket")]
    assert any(float(s.labels["le"]) == svc.ttft_target_s for s in buckets if s.labels["le"] != "+Inf")
    counts = [s.value for s in buckets]
    assert counts == sorted(counts)  # cumulative
    assert {
        "vllm:prompt_tokens",
        "vllm:generation_tokens",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
    } <= set(fams)
    info = fams["tokenfab_service_slo_info"].samples[0].labels
    assert float(info["ttft_le"]) == svc.ttft_target_s
    facility = families(client.get("/facility/metrics").text)
    meter = facility["facility_meter_power_watts"].samples[0].value
    assert meter == pytest.approx(emulation.factory.facility_kw * 1000.0)
    assert len(facility["facility_cdu_pump_running"].samples) == len(emulation.factory.cdu_hall)
    assert client.get("/vllm/nope/metrics").status_code == 404


def test_redfish_resources(client, emulation):
    root = client.get("/redfish/v1").json()
    assert root["Chassis"]["@odata.id"] == "/redfish/v1/Chassis"
    members = client.get("/redfish/v1/Chassis").json()["Members"]
    assert len(members) == emulation.factory.fleet.n_racks + 1
    power = client.get("/redfish/v1/Chassis/Facility/Power").json()
    assert power["PowerControl"][0]["PowerConsumedWatts"] == pytest.approx(
        emulation.factory.facility_kw * 1000, rel=1e-3
    )
    env = client.get("/redfish/v1/Chassis/Rack0/EnvironmentMetrics").json()
    assert env["@odata.type"].startswith("#EnvironmentMetrics") and env["PowerWatts"]["Reading"] > 0
    cdu = client.get("/redfish/v1/ThermalEquipment/CDUs/0").json()
    assert cdu["EquipmentType"] == "CDU" and cdu["PumpInfo"]["Running"]
    assert client.get("/redfish/v1/Chassis/Rack999").status_code == 404


def test_fault_api_records_and_rejects(client, emulation):
    bad = client.post("/faults", json={"kind": "meteor", "params": {}})
    assert bad.status_code == 422 and bad.json()["field"] == "kind"
    assert (
        client.post(
            "/faults", json={"kind": "xid", "params": {"node": 10**6, "gpu": 0, "code": 79}}
        ).status_code
        == 404
    )
    assert (
        client.post("/faults", json={"kind": "xid", "params": {"node": 0, "gpu": 0, "code": 13}}).status_code
        == 422
    )
    assert (
        client.post("/faults", content=b"{x", headers={"content-type": "application/json"}).status_code == 400
    )
    ok = client.post("/faults", json={"kind": "nvlink", "params": {"node": 0, "gpu": 1, "errors_per_s": 5}})
    assert ok.status_code == 201 and ok.json()["at_s"] == emulation.factory.t_s
    log = client.get("/faults").json()
    assert log["data"][-1]["kind"] == "nvlink"
    cleared = client.post(f"/faults/{ok.json()['id']}/clear").json()
    assert cleared["cleared_at_s"] is not None


def test_physics_of_faults(emulation):
    f = emulation.factory
    f.step(1.0)
    base_kw = f.facility_kw
    assert base_kw == pytest.approx(f.it_kw * f.fig.pue)
    train = np.flatnonzero(f.gpu_kind == KIND_TRAINING)
    node = int(f.gpu_node[train[0]])
    job = f.workloads[int(f.gpu_workload[train[0]])]["id"]
    record = faults.inject(f, "xid", {"node": node, "gpu": int(f.gpu_slot[train[0]]), "code": 79})
    f.step(1.0)
    assert not f.workload_running(job) and f.facility_kw < base_kw
    faults.clear(f, record["id"])
    # a training power limit lowers training GPUs' draw
    f.step(1.0)
    before = float(f.gpu_power_w[train].mean())
    f.training_limit_w = f.train_floor_w
    f.step(1.0)
    assert float(f.gpu_power_w[train].mean()) == pytest.approx(min(before, f.train_floor_w))
    f.training_limit_w = f.tdp_w
    # a node down reports nothing and draws nothing
    down = faults.inject(f, "node_down", {"node": node})
    f.step(1.0)
    assert f.gpu_power_w[f.gpu_node == node].sum() == 0
    faults.clear(f, down["id"])
    # losing CDUs below what the hall needs heats the coolant
    supply = f.hall_supply_c.copy()
    pumps = [faults.inject(f, "cdu_pump", {"hall": 0, "cdu": c}) for c in range(int((f.cdu_hall == 0).sum()))]
    f.step(1.0)
    assert f.hall_supply_c[0] > supply[0]
    for p in pumps:
        faults.clear(f, p["id"])
    # a surge beyond capacity builds a backlog and TTFT misses its target
    svc = next(i for i, s in enumerate(f.workload.services) if f.services[i].gpus > 0)
    name = f.workload.services[svc].name
    surge = faults.inject(f, "demand", {"service": name, "multiplier": 3.0, "duration_s": 60})
    for _ in range(20):
        f.step(1.0)
    state = f.services[svc]
    assert state.backlog > 0 and state.ttft_mean_s > f.workload.services[svc].ttft_target_s
    faults.clear(f, surge["id"])
    # a grid event caps the site at 75 % of its draw
    grid = faults.inject(f, "grid", {"cut_fraction": 0.25, "duration_s": 30})
    assert grid["effect"]["cap_kw"] == pytest.approx(0.75 * f.facility_kw)
    assert f.grid_event_active()
    for _ in range(31):
        f.step(1.0)
    assert not f.grid_event_active()


def test_placements_give_each_workload_its_own_gpus(emulation):
    f = emulation.factory
    items = [
        {
            "id": "a",
            "name": "a",
            "kind": "training",
            "tenant": "t",
            "node_ids": [0, 1],
            "gpus_per_node": [2, 4],
        },
        {
            "id": "b",
            "name": emulation.workload.services[0].name,
            "kind": "inference",
            "tenant": "t",
            "node_ids": [0],
            "gpus_per_node": [2],
        },
    ]
    f.apply_placements(items)
    first = f.node_first_gpu
    assert list(f.gpu_workload[first[0] : first[0] + 4]) == [0, 0, 1, 1]
    assert list(f.gpu_kind[first[1] : first[1] + 4]) == [KIND_TRAINING] * 4
    assert f.gpu_kind[first[0] + 2] == KIND_INFERENCE
    assert (f.gpu_workload >= 0).sum() == 8
    recent = {m["workload"]: m for m in f.moves[-40:]}
    assert recent["a"]["to_nodes"] == [0, 1] and recent["b"]["to_nodes"] == [0]
    f.apply_placements(place_standalone(f, emulation.workload))


def test_twin_driven_emulator_draws_what_the_twin_draws():
    """Driven by the twin (placements, failures, demand, caps, parking), the emulator's per-GPU physics gives
    the twin's facility power, hour by hour, through the grid event of the workload file."""
    from tokenfab.traces.llm import shared_data_dir

    if not (shared_data_dir() / "azure-llm").is_dir():
        pytest.skip(f"request traces not found under {shared_data_dir()} (TOKENFAB_DATA_DIR)")
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.cli.simulate import load_inputs
    from tokenfab.emulate.runner import TwinSource, apply_desired
    from tokenfab.spec import load_spec
    from tokenfab.twin.run import Simulation

    catalog = load_catalog()
    design = compile(load_spec(REPO / "examples" / "site-10mw.yaml")[0], catalog)
    path = REPO / "examples" / "workload-mixed.yaml"
    emu = build(design, load_workload(path), catalog, base_dir=path.parent)
    spec, traces, rows = load_inputs(path)
    source = TwinSource(
        Simulation(design, spec, 1.0, traces=traces, acme_rows=rows, catalog=catalog), emu.factory
    )
    for hour in (12.0, 13.0, 17.2, 18.0, 20.0, 22.0):  # the grid event runs from 17 h to 20 h
        emu.factory.t_s = hour * 3600.0 - 1.0
        for state in emu.factory.services:  # the twin keeps no queue: compare without the emulator's backlog
            state.backlog = 0.0
        apply_desired(emu.factory, source.desired())
        emu.factory.step(1.0)
        assert emu.factory.facility_kw == pytest.approx(source.sim.state.facility_kw, rel=1e-6), hour


def test_cli_bad_input_and_export(tmp_path):
    from typer.testing import CliRunner

    from tokenfab.cli import app

    runner = CliRunner()
    design = str(REPO / "examples" / "row-1mw.yaml")
    missing = runner.invoke(app, ["emulate", design, "--workload", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "nope.yaml" in missing.output
    no_token = runner.invoke(
        app,
        [
            "emulate",
            design,
            "--workload",
            str(REPO / "examples" / "workload-mixed.yaml"),
            "--control",
            "http://127.0.0.1:1",
        ],
    )
    assert no_token.exit_code == 2 and "--control-token" in no_token.output
    bad = runner.invoke(app, ["export", "prometheus", design, "--emulator", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "host:port" in bad.output
    ok = runner.invoke(
        app,
        [
            "export",
            "prometheus",
            design,
            "--workload",
            str(REPO / "examples" / "workload-mixed.yaml"),
            "--out",
            str(tmp_path / "prom"),
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert {"prometheus.yml", "alertmanager.yml", "rules/recording.yml", "rules/alerts.yml"} <= {
        str(p.relative_to(tmp_path / "prom")) for p in (tmp_path / "prom").rglob("*.yml")
    }
