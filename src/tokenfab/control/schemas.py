"""Request and response models of the control plane API (pydantic), shared by the service and the client.

Every input field is bounded (lengths, ranges, patterns), so that no request, however odd, reaches the
store with a value it cannot hold; a violation is answered 422 with the field's path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""Free text: no control characters (PostgreSQL text cannot hold NUL)."""
MAX_GPUS = 1_000_000
MAX_ID = 10_000_000

HealthAction = Literal["cordon", "drain", "fail", "return"]
WorkloadStateName = Literal["queued", "placed", "running", "cancelled", "failed"]
"""`store.WorkloadState`'s values, the only ones the store writes."""
HealthName = Literal["ok", "cordoned", "draining", "failed"]
"""`fleet.Health`'s names, the only ones the store writes."""


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Message(_Out):
    message: str


class HealthStatus(_Out):
    """`/healthz`: the server answers and its database does."""

    message: str
    database: Literal["ok"]


class ErrorBody(_Out):
    """Every 4xx answer: what was wrong, and which field when one is to blame."""

    error: str
    field: str | None = None
    detail: list[dict[str, Any]] | None = None


# --- identity ---------------------------------------------------------------------------------


class WhoAmI(_Out):
    token_id: str
    name: str
    role: Literal["operator", "tenant"]
    tenant: str | None


# --- tenants ----------------------------------------------------------------------------------


class TenantCreate(_In):
    name: str = Field(pattern=NAME_PATTERN, description="lower-case name, also the tenant's id")
    quota_gpus: int | None = Field(default=None, ge=0, le=MAX_GPUS, description="GPUs the tenant may hold")
    allowed_sites: list[int] | None = Field(
        default=None, max_length=1000, description="site ids the tenant is pinned to (residency)"
    )
    allowed_halls: list[int] | None = Field(default=None, max_length=10000, description="hall ids")


class TenantUpdate(_In):
    quota_gpus: int | None = Field(default=None, ge=0, le=MAX_GPUS)
    allowed_sites: list[int] | None = Field(default=None, max_length=1000)
    allowed_halls: list[int] | None = Field(default=None, max_length=10000)


class TenantPublic(_Out):
    name: str
    quota_gpus: int | None
    allowed_sites: list[int] | None
    allowed_halls: list[int] | None
    gpus_allocated: int
    gpu_equivalents_allocated: float = Field(
        default=0.0, description="GPUs held, a fractional workload counting its share (what the quota counts)"
    )
    workloads_active: int
    created_at: datetime


class TenantsPublic(_Out):
    data: list[TenantPublic]
    count: int


# --- tokens -----------------------------------------------------------------------------------


class TokenCreate(_In):
    name: str = Field(pattern=NAME_PATTERN)
    role: Literal["operator", "tenant"]
    tenant: str | None = Field(default=None, pattern=NAME_PATTERN, description="required for role tenant")
    expires_in_s: int | None = Field(default=None, ge=1, le=10 * 365 * 86400, description="lifetime [s]")


class TokenPublic(_Out):
    id: str
    name: str
    role: str
    tenant: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="the secret token; shown once, never stored")


class TokensPublic(_Out):
    data: list[TokenPublic]
    count: int


# --- workloads --------------------------------------------------------------------------------


class WorkloadCreate(_In):
    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["training", "inference", "small"] = "training"
    tenant: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="owner; operators must name it, tenants submit for themselves",
    )
    gpus: int = Field(
        default=0,
        ge=0,
        le=MAX_GPUS,
        description="training: GPUs of the gang; inference: GPUs per replica; small: 0 (omit it)",
    )
    gpu_fraction: float | None = Field(
        default=None, gt=0, lt=1, description="small: share of one GPU (0 < f < 1, in steps of 0.001)"
    )
    cpu_cores: float = Field(default=0.0, ge=0, le=4096, description="small: CPU cores on the node")
    memory_gb: float = Field(default=0.0, ge=0, le=1e6, description="small: host memory on the node [GB]")
    replicas: int = Field(default=1, ge=1, le=100_000, description="inference replicas (training: 1)")
    slice_gpus: int = Field(default=0, ge=0, le=MAX_GPUS, description="each slice inside one NVLink domain")
    whole_domains: bool = False
    priority: int = Field(default=0, ge=-1000, le=1000)
    preemptible: bool = True
    on_failure: Literal["requeue", "fail"] = Field(
        default="requeue", description="what happens when a node under the workload fails"
    )
    model: str | None = Field(default=None, max_length=128, pattern=TEXT_PATTERN)
    environment: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="run inside this ready environment of the tenant"
    )
    tokens_per_s_per_gpu: float | None = Field(
        default=None, ge=0, le=1e7, description="served tokens [1/s/GPU]"
    )


class WorkloadScale(_In):
    replicas: int = Field(ge=1, le=100_000)


class PlacementPublic(_Out):
    node_ids: list[int]
    gpus_per_node: list[int]
    gpus: int
    gpu_fraction: float = Field(default=0.0, description="small: the share of one GPU held")
    gpu_slot: int | None = Field(default=None, description="small: the GPU slot of the node it shares")
    racks: list[int]
    placed_at: datetime


class WorkloadPublic(_Out):
    id: str
    name: str
    tenant: str
    kind: str
    gpus: int
    replicas: int
    priority: int
    on_failure: str
    state: WorkloadStateName
    queue_reason: str
    created_at: datetime
    updated_at: datetime
    placement: PlacementPublic | None
    spec: dict[str, Any]


class WorkloadsPublic(_Out):
    data: list[WorkloadPublic]
    count: int


# --- inventory --------------------------------------------------------------------------------


class Occupancy(_Out):
    """GPUs of one element of the map (site, hall, SU or rack) and who holds them."""

    id: int
    gpus: int
    gpus_free: int
    gpus_own: int | None = Field(default=None, description="for a tenant: its own GPUs here")
    gpus_occupied: int = Field(
        default=0,
        description="GPUs held by workloads the caller may not see (for a tenant: other tenants', unnamed)",
    )
    tenants: dict[str, int] = Field(description="GPUs held per tenant (a tenant sees only itself)")
    health: dict[str, int] = Field(description="nodes per health state")


class RackSummary(Occupancy):
    su: int
    hall: int
    site: int


class SuSummary(Occupancy):
    hall: int
    site: int
    racks: int = Field(description="racks in the SU")


class HallSummary(Occupancy):
    site: int
    sus: list[SuSummary] = Field(default_factory=list, description="with depth su or rack")
    racks: list[RackSummary] = Field(default_factory=list, description="with depth rack")


class SiteSummary(Occupancy):
    name: str
    halls: list[HallSummary] = Field(default_factory=list, description="with depth hall, su or rack")


class FactoryMap(_Out):
    design: str
    system: list[str]
    gpus: int
    gpus_free: int
    gpus_own: int | None = None
    gpus_occupied: int = 0
    depth: Literal["site", "hall", "su", "rack"] = "rack"
    sites: list[SiteSummary]


class SearchHit(_Out):
    kind: Literal["rack", "node", "workload"]
    id: str
    label: str
    site: int | None = None
    hall: int | None = None
    su: int | None = None
    rack: int | None = None
    node: int | None = None


class SearchHits(_Out):
    data: list[SearchHit]
    count: int


class NodePublic(_Out):
    id: int
    rack: int
    domain: int
    gpus: int
    gpus_free: int
    gpus_shared: dict[int, int] = Field(
        default_factory=dict, description="GPU slot → milli-GPU used on each GPU shared by small workloads"
    )
    health: HealthName
    health_reason: str
    workloads: list[str]


class NodesPublic(_Out):
    data: list[NodePublic]
    count: int


class RackDetail(_Out):
    rack: RackSummary
    nodes: list[NodePublic]
    workloads: list[WorkloadPublic]


class HealthChange(_In):
    reason: str = Field(default="", max_length=500, pattern=TEXT_PATTERN)


class HealthResult(_Out):
    nodes: list[int]
    health: str
    requeued: list[str]
    failed: list[str]


# --- power, usage, audit ----------------------------------------------------------------------


class PowerCap(_In):
    cap_kw: float | None = Field(ge=0, le=1e9, description="facility power cap [kW]; null lifts it")


class GridEvent(_In):
    kind: Literal["curtailment", "restore"]
    cap_kw: float | None = Field(default=None, ge=0, le=1e9, description="curtailment: the cap [kW]")
    message: str = Field(default="", max_length=500, pattern=TEXT_PATTERN)


class PowerEventPublic(_Out):
    at: datetime
    kind: str
    cap_kw: float | None
    draw_kw: float
    message: str


class PowerStatus(_Out):
    cap_kw: float | None
    it_draw_kw: float
    facility_draw_kw: float
    facility_design_kw: float
    pue: float
    evicted: list[str] = []
    events: list[PowerEventPublic]


class TelemetryPoint(_Out):
    at: datetime
    draw_kw: float
    cap_kw: float | None
    gpus_allocated: int
    tokens_per_s: float


class TelemetryPublic(_Out):
    data: list[TelemetryPoint]
    count: int


class TenantUsage(_Out):
    tenant: str
    gpus_allocated: int
    gpu_equivalents_allocated: float = Field(
        default=0.0, description="GPUs held, a fractional workload counting its share"
    )
    gpu_hours: float
    workloads: dict[str, int]
    tokens_per_s: float


class UsagePublic(_Out):
    data: list[TenantUsage]
    count: int


class AuditPublic(_Out):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditsPublic(_Out):
    data: list[AuditPublic]
    count: int


# --- tenant environments ------------------------------------------------------------------------

EnvironmentKind = Literal["kubernetes", "vm", "slurm", "baremetal"]
EnvironmentUnit = Literal["domain", "rack"]
EnvironmentStateName = Literal[
    "requested", "provisioning", "ready", "updating", "deleting", "deleted", "failed"
]
"""`store.EnvironmentState`'s values, the only ones the store writes."""
VERSION_PATTERN = r"^v?[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$"
KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


class EnvironmentCreate(_In):
    name: str = Field(pattern=NAME_PATTERN)
    tenant: str | None = Field(default=None, pattern=NAME_PATTERN, description="operators: the owner")
    kind: EnvironmentKind = "kubernetes"
    template: str | None = Field(
        default=None,
        max_length=64,
        pattern=NAME_PATTERN,
        description="k0rdent cluster template (kubernetes: remote-cluster or openstack-standalone-cp; "
        "vm: kubevirt-standalone-cp or kubevirt-hosted-cp); default by kind",
    )
    domains: int = Field(
        ge=1, le=100_000, description="whole NVLink domains (or racks, with unit rack) to reserve"
    )
    unit: EnvironmentUnit = Field(default="domain", description="reserve whole domains or whole racks")
    version: str = Field(
        default="v1.32.5+k0s.1", pattern=VERSION_PATTERN, description="Kubernetes/OS version"
    )
    storage_tb: float = Field(default=10.0, ge=0, le=1e6, description="storage quota [TB]")
    sites: list[int] | None = Field(
        default=None, max_length=1000, description="within the tenant's residency"
    )
    halls: list[int] | None = Field(
        default=None, max_length=10000, description="within the tenant's residency"
    )
    request_key: str | None = Field(
        default=None, pattern=KEY_PATTERN, description="client key: a retried request with it changes nothing"
    )


class EnvironmentScale(_In):
    domains: int = Field(ge=1, le=100_000, description="the new size, in the environment's unit")


class EnvironmentUpgrade(_In):
    version: str = Field(pattern=VERSION_PATTERN)


class EnvironmentPublic(_Out):
    id: str
    name: str
    tenant: str
    kind: str
    template: str
    version: str
    state: EnvironmentStateName
    reason: str
    unit: EnvironmentUnit
    domains: list[int]
    racks: list[int]
    node_ids: list[int]
    nodes: list[str] = Field(description="hostnames (tokenfab.names)")
    gpus: int
    storage_tb: float
    pkey: int | None = Field(description="InfiniBand partition key")
    vlan: int | None = Field(description="front-end Ethernet VLAN")
    vrf: str | None
    sites: list[int]
    intent: dict[str, Any] | None
    steps: list[dict[str, Any]] = Field(default_factory=list, description="steps of the last operation")
    created_at: datetime
    updated_at: datetime


class EnvironmentsPublic(_Out):
    data: list[EnvironmentPublic]
    count: int


class EnvironmentCheck(_Out):
    ok: bool
    environments: int
    nodes: int
    problems: list[str]
