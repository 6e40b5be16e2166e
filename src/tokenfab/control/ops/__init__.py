"""The operations loop of the control plane: alerts in (Alertmanager webhooks), telemetry read from
Prometheus, actions out through the service (drain, scale, cap, derate), each with an audit entry.

`controller.OpsController` decides and acts; `policy` holds the pure decisions (the twin's power and
autoscaling functions); `prom` reads Prometheus' HTTP API; `alerts` validates webhooks; `router` is the
HTTP face (``/api/v1/ops/...``).
"""
