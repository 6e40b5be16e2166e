"""What the operations loop reads from Prometheus, keeps as history and exposes on the control plane's
``/metrics``: tokens/s, TTFT/ITL p50/p99, SLO attainment and error budget per tenant and service,
facility power and its limit, and the loop's own actions and reaction times."""

from __future__ import annotations

import threading
import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest

SERVICE_SERIES = {
    "output_tokens_per_s": "tokenfab:service_output_tokens:rate1m",
    "ttft_p50_s": "tokenfab:service_ttft_seconds:p50_1m",
    "ttft_p99_s": "tokenfab:service_ttft_seconds:p99_1m",
    "itl_p50_s": "tokenfab:service_itl_seconds:p50_1m",
    "itl_p99_s": "tokenfab:service_itl_seconds:p99_1m",
    "slo_attainment_5m": "slo:ttft_attainment:ratio_rate5m",
    "slo_attainment_1h": "slo:ttft_attainment:ratio_rate1h",
    "error_budget_remaining": "slo:error_budget_remaining:ratio_rate3d",
}
"""Recorded series (ops/prometheus/rules/recording.yml) read per service and tenant."""
REACTION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry:
    def __init__(self, controller, history_points: int = 2000):
        self.controller = controller
        self.lock = threading.Lock()
        self.services: dict[tuple[str, str], dict[str, float]] = {}
        self.facility: dict[str, float] = {}
        self.history: deque = deque(maxlen=history_points)
        self.poll_errors = 0
        self.registry = CollectorRegistry(auto_describe=True)
        self.actions = Counter(
            "tokenfab_ops_actions",
            "Actions the operations loop took, by kind.",
            ["action"],
            registry=self.registry,
        )
        self.reaction = Histogram(
            "tokenfab_ops_reaction_seconds",
            "Time from an alert's arrival to its action.",
            buckets=REACTION_BUCKETS_S,
            registry=self.registry,
        )
        self.registry.register(self)

    def count_action(self, action: str, seconds: float) -> None:
        self.actions.labels(action=action).inc()
        if action != "skipped":
            self.reaction.observe(seconds)

    def poll(self, prom) -> None:
        """Read the recorded series once and append a history point."""
        services: dict[tuple[str, str], dict[str, float]] = {}
        for key, series in SERVICE_SERIES.items():
            for labels, value in prom.query(series):
                services.setdefault((labels.get("service", ""), labels.get("tenant", "")), {})[key] = value
        facility = {
            "power_w": prom.value("sum(facility_meter_power_watts)", 0.0),
            "limit_w": prom.value("sum(facility_grid_power_limit_watts)", 0.0),
        }
        point = {
            "at_unix": time.time(),
            "facility": facility,
            "services": {f"{svc}/{tenant}": values for (svc, tenant), values in services.items()},
        }
        with self.lock:
            self.services, self.facility = services, facility
            self.history.append(point)

    def collect(self):
        """Gauges of the last poll (a prometheus_client custom collector)."""
        with self.lock:
            services, facility = dict(self.services), dict(self.facility)
        labels = ["service", "tenant"]
        families = {
            "output_tokens_per_s": GaugeMetricFamily(
                "tokenfab_service_output_tokens_per_second",
                "Output tokens per second per service (Prometheus, 1 m rate).",
                labels=labels,
            ),
            "ttft": GaugeMetricFamily(
                "tokenfab_service_ttft_seconds",
                "Time to first token per service.",
                labels=[*labels, "quantile"],
            ),
            "itl": GaugeMetricFamily(
                "tokenfab_service_itl_seconds",
                "Inter-token latency per service.",
                labels=[*labels, "quantile"],
            ),
            "attainment": GaugeMetricFamily(
                "tokenfab_service_slo_attainment_ratio",
                "Share of requests within the TTFT target.",
                labels=[*labels, "window"],
            ),
            "budget": GaugeMetricFamily(
                "tokenfab_service_error_budget_remaining_ratio",
                "TTFT error budget left over 3 days.",
                labels=labels,
            ),
        }
        tenant_tokens: dict[str, float] = {}
        for (svc, tenant), v in sorted(services.items()):
            row = [svc, tenant]
            if "output_tokens_per_s" in v:
                families["output_tokens_per_s"].add_metric(row, v["output_tokens_per_s"])
                tenant_tokens[tenant] = tenant_tokens.get(tenant, 0.0) + v["output_tokens_per_s"]
            for q in ("p50", "p99"):
                if f"ttft_{q}_s" in v:
                    families["ttft"].add_metric([*row, q], v[f"ttft_{q}_s"])
                if f"itl_{q}_s" in v:
                    families["itl"].add_metric([*row, q], v[f"itl_{q}_s"])
            for window in ("5m", "1h"):
                if f"slo_attainment_{window}" in v:
                    families["attainment"].add_metric([*row, window], v[f"slo_attainment_{window}"])
            if "error_budget_remaining" in v:
                families["budget"].add_metric(row, v["error_budget_remaining"])
        tenant = GaugeMetricFamily(
            "tokenfab_tenant_output_tokens_per_second",
            "Output tokens per second per tenant.",
            labels=["tenant"],
        )
        for name, value in sorted(tenant_tokens.items()):
            tenant.add_metric([name], value)
        out = [*families.values(), tenant]
        meter = GaugeMetricFamily(
            "tokenfab_ops_facility_power_watts", "Facility draw at the meter (Prometheus)."
        )
        limit = GaugeMetricFamily("tokenfab_ops_grid_limit_watts", "Draw the grid allows now (Prometheus).")
        if facility:
            meter.add_metric([], facility.get("power_w") or 0.0)
            limit.add_metric([], facility.get("limit_w") or 0.0)
        ctl = self.controller
        train = GaugeMetricFamily(
            "tokenfab_ops_training_power_limit_watts", "Per-GPU power limit on training (absent when none)."
        )
        if ctl.training_limit_w is not None:
            train.add_metric([], ctl.training_limit_w)
        derated = GaugeMetricFamily("tokenfab_ops_derated_racks", "Racks running under a cooling derate.")
        derated.add_metric([], len(ctl.rack_limit))
        paused = GaugeMetricFamily("tokenfab_ops_paused_workloads", "Training workloads paused for power.")
        paused.add_metric([], len(ctl.paused))
        return [*out, meter, limit, train, derated, paused]

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def history_points(self, limit: int = 500) -> list[dict]:
        with self.lock:
            return list(self.history)[-limit:]
