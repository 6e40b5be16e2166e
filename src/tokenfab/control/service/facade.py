"""`ControlService`: the shared state with one thin method per operation, for the API, CLI and tests.

Each method hands over to the module that owns the operation (`tenants`, `tokens`, `workloads`,
`health`, `power`, `views`, `metrics`). Authorisation is the caller's: the API's routes require an
operator where the method says "(operator)"; methods taking a ``principal`` scope what it may see.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.db import make_engine, upgrade_to_head
from tokenfab.control.service import (
    env_views,
    environments,
    health,
    metrics,
    power,
    tenants,
    tokens,
    views,
    workloads,
)
from tokenfab.control.service.bootstrap import initialise_store
from tokenfab.control.service.state import ServiceState


@dataclass(frozen=True)
class Opened:
    service: ControlService
    bootstrap_token: str | None
    """The bootstrap operator token of a new store (shown once), else None."""


class ControlService(ServiceState):
    """The factory's control-plane state and every operation on it."""

    @classmethod
    def open(cls, design: Design, db_url: str, catalog: Catalog | None = None) -> Opened:
        """Migrate the store, load or create the inventory, rebuild memory; a new store gets a bootstrap
        operator token (returned once). ``catalog``: the one the design was compiled with (default: the
        built-in catalog), for the figures of the power model."""
        engine = make_engine(db_url)
        upgrade_to_head(engine)
        service = cls(design, engine, catalog)
        with service.sessions.begin() as session:
            token = initialise_store(session, design, service.memory)
        service.rebuild()
        environments.resume_all(service)  # finish or roll back what a crash interrupted
        return Opened(service, token)

    def ping_database(self) -> None:
        """``SELECT 1`` on the store; raises SQLAlchemy's error when it does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # identity and tokens
    def authenticate(self, token: str) -> Principal | None:
        return tokens.authenticate(self, token)

    def create_token(self, principal: Principal, body: s.TokenCreate) -> s.TokenCreated:
        """(operator)"""
        return tokens.create_token(self, principal, body)

    def list_tokens(self, principal: Principal) -> s.TokensPublic:
        return tokens.list_tokens(self, principal)

    def revoke_token(self, principal: Principal, token_id: str) -> s.TokenPublic:
        """(operator)"""
        return tokens.revoke_token(self, principal, token_id)

    # tenants
    def create_tenant(self, principal: Principal, body: s.TenantCreate) -> s.TenantPublic:
        """(operator)"""
        return tenants.create_tenant(self, principal, body)

    def update_tenant(self, principal: Principal, name: str, body: s.TenantUpdate) -> s.TenantPublic:
        """(operator)"""
        return tenants.update_tenant(self, principal, name, body)

    def list_tenants(self, principal: Principal) -> s.TenantsPublic:
        return tenants.list_tenants(self, principal)

    def get_tenant(self, principal: Principal, name: str) -> s.TenantPublic:
        return tenants.get_tenant(self, principal, name)

    # workloads
    def submit(self, principal: Principal, body: s.WorkloadCreate) -> s.WorkloadPublic:
        return workloads.submit(self, principal, body)

    def cancel(self, principal: Principal, workload_id: str) -> s.WorkloadPublic:
        return workloads.cancel(self, principal, workload_id)

    def scale(self, principal: Principal, workload_id: str, body: s.WorkloadScale) -> s.WorkloadPublic:
        return workloads.scale(self, principal, workload_id, body)

    def get_workload(self, principal: Principal, workload_id: str) -> s.WorkloadPublic:
        return workloads.get_workload(self, principal, workload_id)

    def list_workloads(
        self, principal: Principal, state: str | None = None, limit: int = 500
    ) -> s.WorkloadsPublic:
        return workloads.list_workloads(self, principal, state, limit)

    def queue(self, principal: Principal) -> s.WorkloadsPublic:
        return workloads.queue(self, principal)

    # tenant environments
    def create_environment(self, principal: Principal, body: s.EnvironmentCreate) -> s.EnvironmentPublic:
        return environments.create(self, principal, body)

    def scale_environment(
        self, principal: Principal, env_id: str, body: s.EnvironmentScale
    ) -> s.EnvironmentPublic:
        return environments.scale(self, principal, env_id, body)

    def upgrade_environment(
        self, principal: Principal, env_id: str, body: s.EnvironmentUpgrade
    ) -> s.EnvironmentPublic:
        return environments.upgrade(self, principal, env_id, body)

    def delete_environment(self, principal: Principal, env_id: str) -> s.EnvironmentPublic:
        return environments.delete(self, principal, env_id)

    def get_environment(self, principal: Principal, env_id: str) -> s.EnvironmentPublic:
        return environments.get(self, principal, env_id)

    def list_environments(self, principal: Principal) -> s.EnvironmentsPublic:
        return env_views.list_environments(self, principal)

    def check_environments(self) -> s.EnvironmentCheck:
        """(operator)"""
        return env_views.check(self)

    # health and power
    def change_health(
        self, principal: Principal, level: str, element_id: int, action: str, body: s.HealthChange
    ) -> s.HealthResult:
        """(operator)"""
        return health.change_health(self, principal, level, element_id, action, body)

    def power(self) -> s.PowerStatus:
        """(operator)"""
        return power.power_status(self)

    def set_power_cap(self, principal: Principal, body: s.PowerCap) -> s.PowerStatus:
        """(operator)"""
        return power.set_power_cap(self, principal, body)

    def grid_event(self, principal: Principal, body: s.GridEvent) -> s.PowerStatus:
        """(operator)"""
        return power.grid_event(self, principal, body)

    def facility_draw_kw(self) -> float:
        return self.memory.facility_draw_kw()

    # views
    def factory_map(self, principal: Principal) -> s.FactoryMap:
        return views.factory_map(self, principal)

    def rack_detail(self, principal: Principal, rack_id: int) -> s.RackDetail:
        return views.rack_detail(self, principal, rack_id)

    def list_nodes(
        self, principal: Principal, rack_id: int | None = None, health: str | None = None, limit: int = 5000
    ) -> s.NodesPublic:
        return views.list_nodes(self, principal, rack_id, health, limit)

    def usage(self, principal: Principal) -> s.UsagePublic:
        return views.usage(self, principal)

    def telemetry(self, limit: int = 500) -> s.TelemetryPublic:
        """(operator)"""
        return views.telemetry(self, limit)

    def audit(self, principal: Principal, limit: int = 200) -> s.AuditsPublic:
        return views.audit_log(self, principal, limit)

    def metrics_text(self) -> str:
        """(operator)"""
        return metrics.metrics_text(self)
