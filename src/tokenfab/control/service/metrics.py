"""The factory's gauges: a telemetry sample after each change, and the Prometheus text exposition."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.service.state import ServiceState
from tokenfab.control.store import TelemetryRow, WorkloadRow, WorkloadState, utc_now
from tokenfab.fleet import Health

Gauge = tuple[str, str, list[tuple[dict[str, Any], Any]]]


def sample(memory: FactoryMemory, session: Session) -> None:
    """Record the draw, the cap, the GPUs allocated and the tokens per second now."""
    session.add(
        TelemetryRow(
            at=utc_now(),
            draw_kw=round(memory.facility_draw_kw(), 3),
            cap_kw=memory.power_cap_kw,
            gpus_allocated=int(memory.fleet.n_gpus - memory.fleet.node_free_gpus.sum()),
            tokens_per_s=sum(memory.workload_tokens_per_s.values()),
        )
    )


def gauges(memory: FactoryMemory, states: dict[str, int]) -> list[Gauge]:
    """(name, help, samples) of every gauge, from memory and the workload counts per state."""
    fleet = memory.fleet
    health = Counter(Health(int(h)).name for h in fleet.node_health)
    by_tenant = memory.scheduler.used_gpus_by_tenant()
    return [
        ("tokenfab_gpus_installed", "GPUs in the factory", [({}, fleet.n_gpus)]),
        (
            "tokenfab_gpus_allocated",
            "GPUs allocated to workloads",
            [({}, int(fleet.n_gpus - fleet.node_free_gpus.sum()))],
        ),
        (
            "tokenfab_tenant_gpus_allocated",
            "GPUs allocated per tenant",
            [({"tenant": t}, n) for t, n in sorted(by_tenant.items())],
        ),
        (
            "tokenfab_workloads",
            "workloads per state",
            [({"state": st.value}, int(states.get(st.value, 0))) for st in WorkloadState],
        ),
        (
            "tokenfab_nodes",
            "nodes per health state",
            [({"health": h.name}, health.get(h.name, 0)) for h in Health],
        ),
        (
            "tokenfab_facility_power_draw_kw",
            "facility power draw [kW]",
            [({}, round(memory.facility_draw_kw(), 3))],
        ),
        (
            "tokenfab_facility_power_cap_kw",
            "facility power cap [kW] (absent when none)",
            [] if memory.power_cap_kw is None else [({}, memory.power_cap_kw)],
        ),
        (
            "tokenfab_tokens_per_second",
            "tokens served per second (estimate)",
            [({}, sum(memory.workload_tokens_per_s.values()))],
        ),
    ]


def metrics_text(state: ServiceState) -> str:
    """Prometheus text exposition of the factory's gauges (operator)."""
    with state.sessions() as session:
        states = dict(
            session.execute(select(WorkloadRow.state, func.count()).group_by(WorkloadRow.state)).all()
        )
    with state.lock:
        lines = gauges(state.memory, states)
    out = []
    for name, help_text, samples in lines:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for labels, value in samples:
            label = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{label}}} {value}" if label else f"{name} {value}")
    return "\n".join(out) + "\n"


def _escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
