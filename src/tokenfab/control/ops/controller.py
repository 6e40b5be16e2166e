"""`OpsController`: turns Alertmanager alerts into actions on the factory, reading Prometheus to decide.

=====================  ===============================  ==================================================
alert ``action``       examples                         what the controller does (each with an audit entry)
=====================  ===============================  ==================================================
``drain_node``         GpuXidError, NvlinkErrors        drain the node (``ControlService.change_health``);
                                                        its workloads requeue and are placed elsewhere
``drain_rack``         RackExporterDown                 drain the rack
``scale_out``          SLOBurnRateFast/Slow             add replicas within quota (``ControlService.scale``)
``shed_power``,        FacilityPowerOverCap,            cap training GPUs, pause training (flexible first);
``grid_event``         GridEventActive                  resolved: lift the cap, resubmit the paused jobs
``derate_racks``       CduPumpFailed                    derate the racks the CDU cools; drain racks the
                                                        hall's remaining CDUs cannot carry
=====================  ===============================  ==================================================

Every alert of a webhook is resolved to its target (node, rack, service, hall) before any acts, so a
webhook naming something unknown changes nothing. What the factory should run (placements, the training
GPU power limit, derated racks) is served as the desired state (``GET /api/v1/ops/desired``), which node
agents (here the emulator) apply.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.ops import policy
from tokenfab.control.ops.alerts import AlertIn, WebhookIn
from tokenfab.control.ops.prom import Prometheus, PrometheusError
from tokenfab.control.ops.telemetry import Telemetry
from tokenfab.control.service import ControlService, Forbidden, Invalid, NotFound
from tokenfab.twin.metrics import SLO_OBJECTIVE

ACTION_OF_ALERT = {
    "GpuXidError": "drain_node",
    "GpuDoubleBitEcc": "drain_node",
    "NvlinkErrors": "drain_node",
    "GpuTelemetryLost": "drain_node",
    "RackExporterDown": "drain_rack",
    "SLOBurnRateFast": "scale_out",
    "SLOBurnRateSlow": "scale_out",
    "FacilityPowerOverCap": "shed_power",
    "GridEventActive": "grid_event",
    "CduPumpFailed": "derate_racks",
}
"""Default actions when an alert carries no ``action`` label (the shipped rules carry one)."""


@dataclass(frozen=True)
class OpsSettings:
    prometheus_url: str | None = None
    poll_s: float = 15.0
    scale_cooldown_s: float = 300.0
    power_settle_s: float = 60.0
    rate_window: str = "1m"
    time_scale: float = 1.0
    """Simulated seconds per wall second of the telemetry (an emulated factory); rates read from Prometheus
    are per wall second and are divided by it [-]."""
    train_power_fraction: float = 0.85
    """Uncapped training draw as a share of TDP (the twin's `PowerSpec` default) [-]."""
    train_floor_fraction: float = 0.6
    """Lowest training cap as a share of TDP (the twin's `PowerSpec` default) [-]."""
    history_points: int = 2000


@dataclass
class Planned:
    alert: AlertIn
    action: str
    target: str
    element: int | str | tuple[int, int] | None = None
    """The node or rack id, the workload id, or (hall, CDU) the action is for."""


class OpsController:
    """Alerts in, actions out; also the desired state node agents apply and the loop's own metrics."""

    def __init__(self, service: ControlService, settings: OpsSettings | None = None):
        from tokenfab.catalog.load import load_catalog
        from tokenfab.names import inventory
        from tokenfab.twin.facility import facility_figures

        self.service = service
        self.settings = settings or OpsSettings()
        design = service.design
        inv = inventory(design)
        self.node_id = {name: i for i, name in enumerate(inv.node_names)}
        self.rack_id = {name: i for i, name in enumerate(inv.rack_names)}
        self.rack_hall = inv.rack_hall.tolist()
        self.rack_in_hall = inv.rack_in_hall.tolist()
        halls = [h for site in design.sites for h in site.halls]
        self.hall_racks = [h.racks for h in halls]
        self.hall_cdus_installed = [max(1, h.cdus_installed) for h in halls]
        self.hall_cdus_required = [max(1, h.cdus_required) for h in halls]
        fig = facility_figures(design, load_catalog())
        self.pue, self.tdp_w, self.idle_w = fig.pue, fig.gpu_tdp_w, fig.gpu_idle_w
        self.train_full_w = self.settings.train_power_fraction * self.tdp_w
        self.train_floor_w = self.settings.train_floor_fraction * self.tdp_w
        self.training_limit_w: float | None = None
        self.rack_limit: dict[int, float] = {}
        self.cdu_racks: dict[tuple[int, int], list[int]] = {}
        self.paused: dict[str, dict] = {}
        self.scaled_at: dict[str, float] = {}
        self.power_acted_at = -1e18
        self.actions: deque = deque(maxlen=2000)
        self.lock = threading.RLock()
        self.prom = Prometheus(self.settings.prometheus_url) if self.settings.prometheus_url else None
        self.telemetry = Telemetry(self, self.settings.history_points)
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.prom is not None and self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, daemon=True, name="ops-poll")
            self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        if self.prom is not None:
            self.prom.close()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            try:
                self.telemetry.poll(self.prom)
            except PrometheusError:
                self.telemetry.poll_errors += 1

    # ------------------------------------------------------------------ webhook
    def handle(self, principal: Principal, hook: WebhookIn) -> dict:
        """Resolve every alert, then act on each; the answer lists the actions taken and skipped."""
        if not principal.is_operator:
            raise Forbidden("alerts are accepted from operator tokens only")
        received = time.time()
        plans = [self._resolve(principal, i, alert) for i, alert in enumerate(hook.alerts)]
        out = []
        with self.lock:
            for plan in plans:
                out.append(self._act(principal, plan, received))
        return {"received": len(hook.alerts), "results": out}

    def _resolve(self, principal: Principal, i: int, alert: AlertIn) -> Planned:
        labels = alert.labels
        name = labels.get("alertname", "")
        action = labels.get("action") or ACTION_OF_ALERT.get(name, "none")
        field = f"alerts.{i}.labels"
        if action == "drain_node":
            host = labels.get("Hostname")
            if not host:
                raise Invalid(f"alert {name} names no node (label Hostname)", f"{field}.Hostname")
            if host not in self.node_id:
                raise NotFound(
                    f"alert {name}: node {host!r} not found in {self.service.design.name}",
                    f"{field}.Hostname",
                )
            return Planned(alert, action, f"node/{self.node_id[host]}", self.node_id[host])
        if action == "drain_rack":
            rack = labels.get("rack", "")
            if rack not in self.rack_id:
                raise NotFound(f"alert {name}: rack {rack!r} not found", f"{field}.rack")
            return Planned(alert, action, f"rack/{self.rack_id[rack]}", self.rack_id[rack])
        if action == "scale_out":
            service = labels.get("service", "")
            workload = self._service_workload(principal, service)
            if workload is None:
                raise NotFound(f"alert {name}: no active inference service {service!r}", f"{field}.service")
            return Planned(alert, action, f"workload/{workload.id}", workload.id)
        if action == "derate_racks":
            hall, cdu = labels.get("hall", ""), labels.get("cdu", "")
            prefix = f"h{hall}-cdu"
            if not hall.isdigit() or int(hall) >= len(self.hall_racks):
                raise NotFound(f"alert {name}: hall {hall!r} not found", f"{field}.hall")
            if (
                not cdu.startswith(prefix)
                or not cdu[len(prefix) :].isdigit()
                or int(cdu[len(prefix) :]) >= self.hall_cdus_installed[int(hall)]
            ):
                raise NotFound(f"alert {name}: CDU {cdu!r} not found in hall {hall}", f"{field}.cdu")
            return Planned(alert, action, f"cdu/{cdu}", (int(hall), int(cdu[len(prefix) :])))
        if action in ("shed_power", "grid_event"):
            return Planned(alert, action, f"site/{labels.get('site', 's0')}")
        return Planned(alert, "none", name)

    def _service_workload(self, principal: Principal, name: str) -> s.WorkloadPublic | None:
        for w in self._workloads(principal):
            if w.name == name and w.kind == "inference" and w.state in ("placed", "running"):
                return w
        return None

    def _workloads(self, principal: Principal) -> list[s.WorkloadPublic]:
        return self.service.list_workloads(principal, limit=100_000).data

    # ------------------------------------------------------------------ actions
    def _act(self, principal: Principal, plan: Planned, received: float) -> dict:
        alert = plan.alert
        handler = {
            "drain_node": self._drain_node,
            "drain_rack": self._drain_rack,
            "scale_out": self._scale_out,
            "shed_power": self._power,
            "grid_event": self._power,
            "derate_racks": self._derate,
        }.get(plan.action)
        if handler is None:
            detail, acted = {"reason": "no action for this alert"}, False
        else:
            detail, acted = handler(principal, plan)
        done = time.time()
        record = {
            "alert": alert.labels.get("alertname", ""),
            "status": alert.status,
            "action": plan.action,
            "target": plan.target,
            "acted": acted,
            "detail": detail,
            "alert_starts_unix": alert.startsAt.timestamp(),
            "received_unix": received,
            "done_unix": done,
            "reaction_s": done - received,
        }
        self.actions.append(record)
        self.telemetry.count_action(plan.action if acted else "skipped", done - received)
        return record

    def audit(
        self, principal: Principal, action: str, target: str, before: dict | None, after: dict | None
    ) -> None:
        """An audit entry for an action the service does not record itself (limits, derates, pauses)."""
        from tokenfab.control.service.state import audit

        self.service.mutate(lambda session: audit(session, principal, action, target, before, after))

    def _drain_node(self, principal: Principal, plan: Planned) -> tuple[dict, bool]:
        assert isinstance(plan.element, int)  # planned with the node's id
        node = plan.element
        if plan.alert.status == "resolved":
            return {"reason": "resolved; the node stays drained until repaired and returned"}, False
        if int(self.service.fleet.node_health[node]) != 0:
            return {"reason": "node already out of service"}, False
        reason = f"{plan.alert.labels.get('alertname')}: {plan.alert.annotations.get('summary', '')}"[:500]
        result = self.service.change_health(principal, "node", node, "drain", s.HealthChange(reason=reason))
        moved = {}
        for wid in result.requeued:
            w = self.service.get_workload(principal, wid)
            moved[wid] = w.placement.node_ids if w.placement else None
        return {"requeued": result.requeued, "placed_on": moved}, True

    def _drain_rack(self, principal: Principal, plan: Planned) -> tuple[dict, bool]:
        if plan.alert.status == "resolved":
            return {"reason": "resolved; the rack stays drained until returned"}, False
        reason = f"{plan.alert.labels.get('alertname')}: rack exporter down"
        assert isinstance(plan.element, int)  # planned with the rack's id
        result = self.service.change_health(
            principal, "rack", plan.element, "drain", s.HealthChange(reason=reason)
        )
        return {"requeued": result.requeued}, True

    def _scale_out(self, principal: Principal, plan: Planned) -> tuple[dict, bool]:
        if plan.alert.status == "resolved":
            return {"reason": "resolved"}, False
        wid = str(plan.element)
        now = time.time()
        if now - self.scaled_at.get(wid, -1e18) < self.settings.scale_cooldown_s:
            return {"reason": "scaled recently; waiting for the new replicas to take load"}, False
        w = self.service.get_workload(principal, wid)
        name, spec = w.name, w.spec
        current, g = int(spec.get("replicas", 1)), int(spec.get("gpus", 1))
        rate = float(spec.get("tokens_per_s_per_gpu") or 1000.0)
        inputs = self._service_inputs(name)
        if inputs.get("errors_5m") is not None and inputs["errors_5m"] <= 1 - SLO_OBJECTIVE:
            return {"reason": "the short window meets the SLO again", **inputs}, False
        target = policy.replicas_for_burn(
            inputs.get("requests_per_s", 0.0),
            inputs.get("backlog", 0.0),
            inputs.get("backlog_growth_per_s", 0.0),
            inputs.get("tokens_per_request", 1.0),
            rate,
            g,
            current,
        )
        tenant = self.service.get_tenant(principal, w.tenant)
        target = policy.replicas_within_quota(target, current, g, tenant.quota_gpus, tenant.gpus_allocated)
        if target <= current:
            return {
                "reason": "the tenant's quota allows no more replicas",
                "quota_gpus": tenant.quota_gpus,
            }, False
        self.service.scale(principal, wid, s.WorkloadScale(replicas=target))
        self.scaled_at[wid] = now
        self.audit(
            principal,
            "ops.scale_out",
            f"workload/{wid}",
            {"replicas": current},
            {"replicas": target, "alert": plan.alert.labels.get("alertname"), **inputs},
        )
        return {"replicas_before": current, "replicas_after": target, **inputs}, True

    def _service_inputs(self, name: str) -> dict:
        if self.prom is None:
            return {}
        sel, w = f'{{service="{name}"}}', self.settings.rate_window
        try:
            k = self.settings.time_scale
            requests = policy.finite(self.prom.value(f"sum(rate(vllm:request_success_total{sel}[{w}]))"))
            tokens = policy.finite(self.prom.value(f"sum(rate(vllm:generation_tokens_total{sel}[{w}]))"))
            growth = policy.finite(self.prom.value(f"sum(deriv(vllm:num_requests_waiting{sel}[{w}]))"))
            return {
                "requests_per_s": requests / k,
                "tokens_per_request": tokens / requests if requests > 0 else 1.0,
                "backlog": policy.finite(self.prom.value(f"sum(vllm:num_requests_waiting{sel})")),
                "backlog_growth_per_s": growth / k,
                "errors_5m": self.prom.value(f"slo:ttft_errors:ratio_rate5m{sel}"),
            }
        except PrometheusError as exc:
            return {"prometheus_error": str(exc)[:200]}

    def _power(self, principal: Principal, plan: Planned) -> tuple[dict, bool]:
        if plan.alert.status == "resolved":
            if plan.action == "grid_event":
                return self._restore_power(principal)
            return {"reason": "resolved: draw under the limit"}, False
        now = time.time()
        if now - self.power_acted_at < self.settings.power_settle_s:
            return {"reason": "a power response is taking effect"}, False
        if self.prom is None:
            return {"reason": "no Prometheus to read the draw from"}, False
        try:
            facility_w = policy.finite(self.prom.value("sum(facility_meter_power_watts)"))
            cap_w = policy.finite(self.prom.value("sum(facility_grid_power_limit_watts)"), float("inf"))
        except PrometheusError as exc:
            return {"reason": str(exc)[:200]}, False
        if facility_w <= cap_w:
            return {"reason": "draw already under the limit", "facility_w": facility_w, "cap_w": cap_w}, False
        jobs = [
            policy.TrainingJobView(
                w.id, w.gpus, w.priority < 0, w.placement.placed_at.timestamp() if w.placement else 0.0
            )
            for w in self._workloads(principal)
            if w.kind == "training" and w.state in ("placed", "running")
        ]
        now_w = self.training_limit_w if self.training_limit_w is not None else self.train_full_w
        decision = policy.power_response(
            facility_w, cap_w, self.pue, jobs, now_w, self.train_full_w, self.train_floor_w, self.idle_w
        )
        before = {"training_limit_w": self.training_limit_w, "facility_w": facility_w, "cap_w": cap_w}
        self.training_limit_w = decision.training_cap_w
        self.audit(
            principal,
            "ops.power.cap",
            "power/training-gpus",
            before,
            {
                "training_limit_w": decision.training_cap_w,
                "it_reduction_w": decision.it_reduction_w,
                "saved_by_cap_w": decision.saved_by_cap_w,
            },
        )
        for wid in decision.pause:
            w = self.service.get_workload(principal, wid)
            self.paused[wid] = {
                "name": w.name,
                "kind": "training",
                "tenant": w.tenant,
                "gpus": w.gpus,
                "priority": w.priority,
                **{k: w.spec[k] for k in ("slice_gpus", "whole_domains", "preemptible") if k in w.spec},
            }
            self.service.cancel(principal, wid)
            self.audit(
                principal,
                "ops.power.pause",
                f"workload/{wid}",
                {"state": w.state},
                {"state": "paused", "resume": "when the grid event ends", "gpus": w.gpus},
            )
        self.power_acted_at = now
        return {
            "facility_w": facility_w,
            "cap_w": cap_w,
            "training_limit_w": decision.training_cap_w,
            "paused": decision.pause,
            "saved_by_cap_w": decision.saved_by_cap_w,
            "saved_by_pause_w": decision.saved_by_pause_w,
        }, True

    def _restore_power(self, principal: Principal) -> tuple[dict, bool]:
        before = self.training_limit_w
        self.training_limit_w = None
        resumed = {}
        for old_id, body in list(self.paused.items()):
            w = self.service.submit(principal, s.WorkloadCreate(**body))
            resumed[old_id] = w.id
            del self.paused[old_id]
        self.audit(
            principal,
            "ops.power.restore",
            "power/training-gpus",
            {"training_limit_w": before},
            {"training_limit_w": None, "resumed": resumed},
        )
        self.power_acted_at = -1e18
        return {"resumed": resumed}, True

    def _derate(self, principal: Principal, plan: Planned) -> tuple[dict, bool]:
        assert isinstance(plan.element, tuple)  # planned with (hall, CDU)
        hall, cdu = plan.element
        key = (hall, cdu)
        racks = [
            r
            for r in range(len(self.rack_hall))
            if self.rack_hall[r] == hall
            and policy.cdu_of_rack(
                self.rack_in_hall[r], self.hall_racks[hall], self.hall_cdus_installed[hall]
            )
            == cdu
        ]
        if plan.alert.status == "resolved":
            for r in self.cdu_racks.pop(key, []):
                self.rack_limit.pop(r, None)
            self.audit(principal, "ops.cdu.restore", plan.target, None, {"racks": racks})
            return {"racks": racks, "restored": True}, True
        installed = self.hall_cdus_installed[hall]
        running = installed - 1 - sum(1 for k in self.cdu_racks if k[0] == hall)
        if self.prom is not None:
            try:
                running = int(
                    policy.finite(
                        self.prom.value(f'sum(facility_cdu_pump_running{{hall="{hall}"}})'), running
                    )
                )
            except PrometheusError:
                pass
        fraction = policy.derate_fraction(running, installed)
        for r in racks:
            self.rack_limit[r] = min(self.rack_limit.get(r, 1.0), fraction)
        self.cdu_racks[key] = racks
        stop = policy.racks_to_stop(self.hall_cdus_required[hall], running, len(racks))
        drained = []
        for r in racks[len(racks) - stop :] if stop else []:
            self.service.change_health(
                principal, "rack", r, "drain", s.HealthChange(reason=f"CDU {plan.target} failed")
            )
            drained.append(r)
        self.audit(
            principal,
            "ops.cdu.derate",
            plan.target,
            {"cdus_running": running + 1},
            {"racks": racks, "power_fraction": fraction, "racks_drained": drained},
        )
        return {
            "racks": racks,
            "power_fraction": fraction,
            "racks_drained": drained,
            "cdus_running": running,
        }, True

    # ------------------------------------------------------------------ desired state
    def desired(self, principal: Principal) -> dict:
        """What node agents should run: placements, the training GPU power limit, derated racks."""
        if not principal.is_operator:
            raise Forbidden("the desired state is for operator tokens (node agents) only")
        items = []
        for w in self.service.list_workloads(principal, limit=100_000).data:
            if w.placement is None or w.state not in ("placed", "running"):
                continue
            items.append(
                {
                    "id": w.id,
                    "name": w.name,
                    "kind": w.kind,
                    "tenant": w.tenant,
                    "node_ids": w.placement.node_ids,
                    "gpus_per_node": w.placement.gpus_per_node,
                }
            )
        with self.lock:
            return {
                "workloads": items,
                "training_limit_w": self.training_limit_w,
                "rack_limit_fraction": {str(r): f for r, f in sorted(self.rack_limit.items())},
                "paused": sorted(self.paused),
            }
