"""The control plane's tables (SQLAlchemy 2): inventory, tenants, tokens, workloads, placements, audit.

The store is the truth; the scheduler's in-memory state is rebuilt from it on start. Two rules are held
by the database itself, not only by the code that writes it:

- a GPU slot is allocated at most once: `gpu_allocations` has the primary key (node_id, slot), so a
  second allocation of the same slot fails to commit, whatever happened in memory or across a crash;
- a shared GPU is never oversubscribed nor handed out whole: `gpu_shares` rows (one per fractional
  workload on a GPU slot, primary key (node_id, slot, workload_id), 0 < milli < 1000) are checked by
  triggers (migration 0002): an insert fails when the slot's shares would sum past 1000 milli-GPU or when
  the slot is allocated whole, and a whole allocation fails on a slot that holds shares;
- the audit log is append-only: triggers (created by the migration) reject UPDATE and DELETE on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, overload

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tokenfab.fleet import Health


def utc_now() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Role(StrEnum):
    operator = "operator"
    tenant = "tenant"


class WorkloadState(StrEnum):
    queued = "queued"
    placed = "placed"
    running = "running"
    cancelled = "cancelled"
    failed = "failed"


ACTIVE_STATES = (WorkloadState.queued, WorkloadState.placed, WorkloadState.running)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[int]: JSON, datetime: DateTime(timezone=True)}


class Meta(Base):
    """Key/value facts about this control plane: the design it runs, the facility power cap."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SiteRow(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128))


class HallRow(Base):
    __tablename__ = "halls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))


class RackRow(Base):
    __tablename__ = "racks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id"))
    su: Mapped[int] = mapped_column(Integer)


class NodeRow(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rack_id: Mapped[int] = mapped_column(ForeignKey("racks.id"), index=True)
    domain: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer)
    health: Mapped[str] = mapped_column(String(16), default=Health.ok.name)
    health_reason: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class TenantRow(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    quota_gpus: Mapped[int | None] = mapped_column(Integer, nullable=True)
    allowed_sites: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    allowed_halls: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class ApiTokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), nullable=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WorkloadRow(Base):
    __tablename__ = "workloads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    gpus: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    on_failure: Mapped[str] = mapped_column(String(16), default="requeue")
    state: Mapped[str] = mapped_column(String(16), index=True)
    queue_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class PlacementRow(Base):
    """One stay of a workload on the fleet: which nodes, how many GPUs each, from when to when."""

    __tablename__ = "placements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id"), index=True)
    node_ids: Mapped[list[int]] = mapped_column(JSON)
    gpus_per_node: Mapped[list[int]] = mapped_column(JSON)
    gpus: Mapped[int] = mapped_column(Integer)
    placed_at: Mapped[datetime] = mapped_column(default=utc_now)
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    release_reason: Mapped[str] = mapped_column(Text, default="")


class GpuAllocationRow(Base):
    """One allocated GPU slot. The primary key (node_id, slot) makes a double allocation impossible."""

    __tablename__ = "gpu_allocations"
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id"), index=True)
    placement_id: Mapped[int] = mapped_column(ForeignKey("placements.id"))


class GpuShareRow(Base):
    """One fractional workload's share of one GPU slot [milli-GPU]. Triggers keep Σ milli ≤ 1000 per slot
    and keep shared slots and whole allocations apart (see the module docstring)."""

    __tablename__ = "gpu_shares"
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id"), primary_key=True, index=True)
    milli: Mapped[int] = mapped_column(Integer)
    placement_id: Mapped[int] = mapped_column(ForeignKey("placements.id"))
    __table_args__ = (CheckConstraint("milli > 0 AND milli < 1000", name="ck_gpu_shares_milli"),)


class AuditRow(Base):
    """Append-only: who did what, when, with the state before and after."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    actor: Mapped[str] = mapped_column(String(160))
    tenant_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(160))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class PowerEventRow(Base):
    __tablename__ = "power_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utc_now)
    kind: Mapped[str] = mapped_column(String(32))
    cap_kw: Mapped[float | None] = mapped_column(nullable=True)
    draw_kw: Mapped[float] = mapped_column()
    message: Mapped[str] = mapped_column(Text, default="")


class TelemetryRow(Base):
    """A sample of the factory after each change: power draw, allocated GPUs, tokens per second."""

    __tablename__ = "telemetry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    draw_kw: Mapped[float] = mapped_column()
    cap_kw: Mapped[float | None] = mapped_column(nullable=True)
    gpus_allocated: Mapped[int] = mapped_column(Integer)
    tokens_per_s: Mapped[float] = mapped_column()


Index("ix_workloads_queue", WorkloadRow.state, WorkloadRow.priority, WorkloadRow.created_at)


# ------------------------------------------------------------------ tenant environments (migration 0004)


class EnvironmentState(StrEnum):
    requested = "requested"
    provisioning = "provisioning"
    ready = "ready"
    updating = "updating"
    deleting = "deleting"
    deleted = "deleted"
    failed = "failed"


ENV_BUSY_STATES = (
    EnvironmentState.requested,
    EnvironmentState.provisioning,
    EnvironmentState.updating,
    EnvironmentState.deleting,
)
"""States of an operation in flight: on start, the service finishes or rolls back each of them."""
ENV_HOLDING_STATES = (*ENV_BUSY_STATES, EnvironmentState.ready)
"""States in which an environment holds nodes, a partition key and a VLAN."""


class EnvironmentRow(Base):
    """A tenant environment: its kind, template, reserved NVLink domains, state and the operation in flight.

    ``intent`` is the operation being carried out (``{"op": ..., "target": ..., "previous": ...}``) until it
    completes or is rolled back; ``request_key`` makes a client's retried request idempotent.
    """

    __tablename__ = "environments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(8), default="domain")
    """What the environment is sized in: whole NVLink domains or whole racks."""
    domains: Mapped[list[int]] = mapped_column(JSON)
    storage_tb: Mapped[float] = mapped_column()
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    intent: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    request_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    live_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The name while the environment is not deleted (unique per tenant); NULL once deleted."""
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    __table_args__ = (
        UniqueConstraint("tenant_id", "live_name", name="uq_environments_live_name"),
        UniqueConstraint("tenant_id", "request_key", name="uq_environments_request_key"),
    )


class EnvironmentStepRow(Base):
    """One step of an environment operation, recorded when it is done (or undone on a rollback)."""

    __tablename__ = "environment_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    op: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(default=utc_now)


class EnvironmentNodeRow(Base):
    """A node held by an environment: the primary key makes sharing a node between environments impossible."""

    __tablename__ = "environment_nodes"
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), index=True)
    domain: Mapped[int] = mapped_column(Integer)


class EnvironmentPkeyRow(Base):
    """An InfiniBand partition key held by an environment (primary key: never two holders)."""

    __tablename__ = "environment_pkeys"
    pkey: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), unique=True)


class EnvironmentVlanRow(Base):
    """A front-end Ethernet VLAN held by an environment (primary key: never two holders)."""

    __tablename__ = "environment_vlans"
    vlan: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    environment_id: Mapped[str] = mapped_column(ForeignKey("environments.id"), unique=True)
