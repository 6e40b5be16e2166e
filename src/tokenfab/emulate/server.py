"""The emulated factory's HTTP face (FastAPI): telemetry, Redfish, fault injection and its own state.

=================================================  ==============================================
``GET /dcgm/rack/{rack}/metrics``                  DCGM-exporter page of one rack (503 when down)
``GET /vllm/{service}/metrics``                    vLLM page of one inference service
``GET /facility/metrics``                          meter, grid limit, UPS, PDU, CDUs
``GET /metrics``                                   the emulator's own counters
``GET /redfish/v1/...``                            Chassis, Power, EnvironmentMetrics, CDUs
``POST /faults`` ``{kind, params}``                inject a fault (201, its record)
``GET /faults``, ``POST /faults/{id}/clear``       the fault log; repair
``GET /state``                                     clock, power, grid events, services, moves
=================================================  ==============================================
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tokenfab.emulate import exposition, faults, redfish
from tokenfab.emulate.runner import Runner


def _text(body: bytes) -> Response:
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def state_summary(runner: Runner, moves_limit: int = 200) -> dict:
    f = runner.factory
    with f.lock:
        services = []
        for i, svc in enumerate(f.workload.services):
            st = f.services[i]
            services.append(
                {
                    "name": svc.name,
                    "model": svc.model,
                    "gpus": st.gpus,
                    "backlog": st.backlog,
                    "offered_requests_per_s": st.offered_per_s,
                    "ttft_mean_s": st.ttft_mean_s,
                    "ttft_target_s": svc.ttft_target_s,
                    "attainment_cumulative": f.attainment(i),
                    "requests": st.requests,
                    "good": st.good,
                    "demand_multiplier": svc.demand_multiplier,
                }
            )
        return {
            "design": f.design.name,
            "t_s": f.t_s,
            "elapsed_s": f.t_s - f.start_s,
            "speed": runner.speed,
            "gpus": f.n_gpus,
            "nodes": f.fleet.n_nodes,
            "racks": f.fleet.n_racks,
            "facility_kw": f.facility_kw,
            "it_kw": f.it_kw,
            "grid_limit_kw": f.grid_limit_kw,
            "training_limit_w": f.training_limit_w,
            "grid_events": list(f.grid_events),
            "services": services,
            "workloads": len(f.workloads),
            "stalled": [w["id"] for w in f.workloads if not f.workload_running(w["id"])],
            "moves": f.moves[-moves_limit:],
            "faults": list(f.faults),
            "syncs": runner.syncs,
            "sync_errors": runner.sync_errors,
            "last_sync_error": runner.last_sync_error,
        }


def create_app(runner: Runner, node_names: list[str], rack_names: list[str], site: str = "s0") -> FastAPI:
    f = runner.factory
    from tokenfab.catalog.load import load_catalog
    from tokenfab.catalog.models import Gpu

    try:
        gpu = load_catalog().typed("gpus", f.design.sites[0].gpu, Gpu)
        model_name, fb_mib = (
            f"NVIDIA {gpu.name if hasattr(gpu, 'name') else f.design.sites[0].gpu}",
            gpu.hbm_gb * 1024,
        )
    except Exception:  # an unknown GPU still gets an exporter page
        model_name, fb_mib = f"NVIDIA {f.design.sites[0].gpu}", 196608.0
    dcgm = exposition.DcgmView(f, node_names, model_name, fb_mib)
    services = {s.name: i for i, s in enumerate(f.workload.services)}
    app = FastAPI(title="tokenfab emulated factory", docs_url=None, redoc_url=None)
    app.state.runner = runner

    @app.get("/dcgm/rack/{rack}/metrics")
    def dcgm_rack(rack: int) -> Response:
        if not 0 <= rack < f.fleet.n_racks:
            return _error(404, f"rack {rack} not found (0..{f.fleet.n_racks - 1})", "rack")
        body = dcgm.rack_text(rack)
        if body is None:
            return Response("rack is down\n", status_code=503, media_type="text/plain")
        return _text(body)

    @app.get("/vllm/{service}/metrics")
    def vllm(service: str) -> Response:
        if service not in services:
            return _error(404, f"service {service!r} not found (known: {', '.join(services)})", "service")
        return _text(exposition.vllm_text(f, services[service]))

    @app.get("/facility/metrics")
    def facility() -> Response:
        return _text(exposition.facility_text(f, site, rack_names))

    @app.get("/metrics")
    def own() -> Response:
        clock = GaugeMetricFamily(
            "tokenfab_emulator_simulated_seconds", "Simulated time since the start [s]."
        )
        clock.add_metric([], f.t_s - f.start_s)
        speed = GaugeMetricFamily("tokenfab_emulator_speed_ratio", "Simulated seconds per wall second [-].")
        speed.add_metric([], runner.speed)
        steps = CounterMetricFamily("tokenfab_emulator_steps", "Steps taken.")
        steps.add_metric([], runner.steps)
        injected = CounterMetricFamily("tokenfab_emulator_faults", "Faults injected.")
        injected.add_metric([], len(f.faults))
        return _text(exposition.render([clock, speed, steps, injected]))

    @app.get("/redfish/v1")
    @app.get("/redfish/v1/")
    def root() -> dict:
        return redfish.service_root()

    @app.get("/redfish/v1/Chassis")
    def chassis_collection() -> dict:
        return redfish.chassis_collection(f)

    def _chassis(chassis_id: str, view) -> Any:
        if not redfish.known(f, chassis_id):
            return _error(404, f"chassis {chassis_id!r} not found", "chassis_id")
        return view(f, chassis_id)

    @app.get("/redfish/v1/Chassis/{chassis_id}")
    def chassis(chassis_id: str):
        return _chassis(chassis_id, redfish.chassis)

    @app.get("/redfish/v1/Chassis/{chassis_id}/Power")
    def chassis_power(chassis_id: str):
        return _chassis(chassis_id, redfish.power)

    @app.get("/redfish/v1/Chassis/{chassis_id}/EnvironmentMetrics")
    def chassis_environment(chassis_id: str):
        return _chassis(chassis_id, redfish.environment_metrics)

    @app.get("/redfish/v1/ThermalEquipment/CDUs")
    def cdus() -> dict:
        return redfish.cdu_collection(f)

    @app.get("/redfish/v1/ThermalEquipment/CDUs/{index}")
    def cdu(index: int):
        if not 0 <= index < len(f.cdu_hall):
            return _error(404, f"CDU {index} not found", "cdu")
        return redfish.cdu(f, index)

    @app.post("/faults", status_code=201)
    async def inject(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "body: JSON is required")
        if not isinstance(body, dict) or not isinstance(body.get("params", {}), dict):
            return _error(422, "body: an object {kind, params} is required", "body")
        try:
            return faults.inject(f, str(body.get("kind")), dict(body.get("params", {})))
        except faults.FaultError as exc:
            return _error(exc.status, str(exc), exc.field)

    @app.get("/faults")
    def fault_log() -> dict:
        with f.lock:
            return {"data": list(f.faults), "count": len(f.faults)}

    @app.post("/faults/{fault_id}/clear")
    def clear(fault_id: int):
        try:
            return faults.clear(f, fault_id)
        except faults.FaultError as exc:
            return _error(exc.status, str(exc), exc.field)

    @app.get("/state")
    def state() -> dict:
        return state_summary(runner)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"message": "ok"}

    return app
