"""HTTP routes of the operations loop (included by `tokenfab.control.api.create_app`).

``POST /api/v1/ops/alerts``: Alertmanager's webhook (``Authorization: Bearer <operator token>``, the
control plane's own tokens); 401 without a valid token, 403 for a tenant token, 422 for a malformed
payload, 404 when an alert names a node, rack, service or CDU the factory does not have; nothing changes
on any of these. ``GET /api/v1/ops/desired``: what node agents run. ``GET /api/v1/ops/actions`` and
``/history``: the loop's actions (with reaction times) and the telemetry it read, for the dashboard.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tokenfab.control.api import API_PREFIX, ERRORS, CurrentPrincipal, OperatorPrincipal
from tokenfab.control.ops.alerts import WebhookIn
from tokenfab.control.ops.controller import OpsController, OpsSettings

router = APIRouter(prefix=f"{API_PREFIX}/ops", tags=["operations loop"], responses=ERRORS)


def get_ops(request: Request) -> OpsController:
    ops = getattr(request.app.state, "ops", None)
    if ops is None:  # an app built without `tokenfab serve`'s settings: no Prometheus, default timings
        ops = request.app.state.ops = OpsController(request.app.state.service, OpsSettings())
    return ops


Ops = Annotated[OpsController, Depends(get_ops)]


@router.post("/alerts")
def receive_alerts(ops: Ops, principal: CurrentPrincipal, body: WebhookIn) -> dict:
    """Act on an Alertmanager notification (every alert resolved first; then one action each)."""
    return ops.handle(principal, body)


@router.get("/desired")
def desired_state(ops: Ops, principal: OperatorPrincipal) -> dict:
    """Placements, the training GPU power limit and derated racks, for node agents to apply."""
    return ops.desired(principal)


@router.get("/actions")
def actions(
    ops: Ops, principal: OperatorPrincipal, limit: Annotated[int, Query(ge=1, le=2000)] = 200
) -> dict:
    """The loop's recent actions, newest last, with the time from alert to action."""
    data = list(ops.actions)[-limit:]
    return {"data": data, "count": len(data)}


@router.get("/history")
def history(
    ops: Ops, principal: OperatorPrincipal, limit: Annotated[int, Query(ge=1, le=5000)] = 500
) -> dict:
    """Tokens/s, latency, SLO attainment and facility power the loop read from Prometheus, over time."""
    data = ops.telemetry.history_points(limit)
    return {"data": data, "count": len(data)}
