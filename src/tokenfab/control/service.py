"""The control plane's service layer: every transaction on the factory, in one place.

The routes in `api.py` only translate HTTP to these calls. Every mutation runs in one writer thread,
under one process-wide lock around the scheduler and the database: the scheduler changes its in-memory
fleet and the rows that record the change are written in the writer's transaction. The writer runs all
mutations waiting at that moment in one transaction (group commit: one fsync for the batch), and each
call returns only after that commit (acknowledged ⇒ durable). If the transaction fails, the in-memory
state is rebuilt from the store, which stays the truth. On start the fleet is instantiated from the
design and every active placement is replayed from the store.

Power model (documented in docs/control.md): a site's IT draw is its racks' nominal power scaled between
an idle share and full load by the share of its GPUs that are allocated,

    P_it = Σ_sites N_racks · P_rack,nominal · (f_idle + (1 − f_idle) · G_alloc / G_installed)

and the facility draw is P_it · PUE_design. A facility power cap refuses placements that would exceed it;
a curtailment below the current draw evicts preemptible workloads, lowest priority first, back to the
queue until the draw fits.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tokenfab.blueprint.design import Design
from tokenfab.control import schemas as s
from tokenfab.control.auth import (
    Principal,
    format_token,
    hash_secret,
    new_secret,
    new_token_id,
    parse_token,
    secret_matches,
    token_is_live,
)
from tokenfab.control.db import make_engine, session_factory, upgrade_to_head
from tokenfab.control.store import (
    ACTIVE_STATES,
    ApiTokenRow,
    AuditRow,
    GpuAllocationRow,
    GpuShareRow,
    HallRow,
    Health,
    Meta,
    NodeRow,
    PlacementRow,
    PowerEventRow,
    RackRow,
    Role,
    SiteRow,
    TelemetryRow,
    TenantRow,
    WorkloadRow,
    WorkloadState,
    as_utc,
    utc_now,
)
from tokenfab.fleet import HEALTH_CORDONED, HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, from_design
from tokenfab.io.yamlfile import InputError
from tokenfab.sched.quota import MILLI_PER_GPU
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Level, Placement, Policy, Request, Unplaceable, WorkloadKind

IDLE_POWER_FRACTION = 0.3
"""estimate: share of a rack's nominal power drawn with no GPU allocated (fans, pumps, CPUs, idle GPUs)."""
DEFAULT_TOKENS_PER_S_PER_GPU = 1000.0
"""estimate: served tokens per second per GPU of an inference workload that does not state its own."""
MAX_BATCH = 64
"""Mutations committed together at most (group commit)."""
QUEUE_ATTEMPTS_PER_PASS = 256
"""Queued workloads tried per pass of the queue (bounds the work one freed node can trigger)."""
HEALTH_OF_ACTION = {
    "cordon": Health.cordoned,
    "drain": Health.draining,
    "fail": Health.failed,
    "return": Health.ok,
}
HEALTH_CODE = {
    Health.ok: HEALTH_OK,
    Health.cordoned: HEALTH_CORDONED,
    Health.draining: HEALTH_DRAINING,
    Health.failed: HEALTH_FAILED,
}
BOOTSTRAP_TOKEN_ENV = "TOKENFAB_BOOTSTRAP_TOKEN"
T = TypeVar("T")


class ServiceError(Exception):
    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    status = 422


@dataclass(frozen=True)
class Opened:
    service: ControlService
    bootstrap_token: str | None


def design_fingerprint(design: Design) -> str:
    import hashlib

    return hashlib.sha256(design.model_dump_json().encode()).hexdigest()


class ControlService:
    """The factory's state (store + scheduler over a fleet) and every operation on it."""

    def __init__(self, design: Design, engine: Engine):
        self.design = design
        self.engine = engine
        self.sessions = session_factory(engine)
        self.lock = threading.RLock()
        self.fleet = from_design(design)
        fleet = self.fleet
        self.node_rack = fleet.node_rack
        self.node_hall = fleet.node_hall
        self.node_site = fleet.node_site
        self.rack_hall = fleet.su_hall[fleet.rack_su]
        self.rack_site = fleet.hall_site[self.rack_hall]
        self.rack_gpus = np.bincount(self.node_rack, weights=fleet.node_gpus, minlength=fleet.n_racks).astype(
            int
        )
        self.site_racks = np.bincount(self.rack_site, minlength=fleet.n_sites)
        self.max_domain_gpus = int(fleet.domain_gpus.max()) if fleet.n_domains else 0
        self._pending: list[tuple[Callable[[Session], Any] | None, Future | None]] = []
        self._pending_ready = threading.Condition()
        self._writer: threading.Thread | None = None
        self._memory_stale = False
        self._reset_memory()

    # ------------------------------------------------------------------ start-up

    @classmethod
    def open(cls, design: Design, db_url: str) -> Opened:
        """Migrate the store, load or create the inventory, rebuild the scheduler; a new store gets a
        bootstrap operator token (returned once)."""
        engine = make_engine(db_url)
        upgrade_to_head(engine)
        service = cls(design, engine)
        token = service._initialise_store()
        service.rebuild()
        return Opened(service, token)

    def _initialise_store(self) -> str | None:
        fingerprint = design_fingerprint(self.design)
        with self.sessions.begin() as session:
            stored = session.get(Meta, "design_fingerprint")
            if stored is not None:
                if stored.value != fingerprint:
                    name = session.get(Meta, "design_name")
                    raise InputError(
                        f"the database holds the control plane of design {name.value if name else '?'}; "
                        f"it cannot serve design {self.design.name} (use another --db)"
                    )
                return None
            self._write_inventory(session)
            session.add_all(
                [
                    Meta(key="design_fingerprint", value=fingerprint),
                    Meta(key="design_name", value=self.design.name),
                ]
            )
            token = os.environ.get(BOOTSTRAP_TOKEN_ENV) or None
            parsed = parse_token(token) if token else None
            if parsed is None:
                parsed = (new_token_id(), new_secret())
            token_id, secret = parsed
            session.add(
                ApiTokenRow(
                    id=token_id, name="bootstrap", role=Role.operator, secret_sha256=hash_secret(secret)
                )
            )
            session.add(
                AuditRow(
                    actor="system",
                    action="bootstrap",
                    target=f"design/{self.design.name}",
                    after={"gpus": self.fleet.n_gpus, "token": token_id},
                )
            )
            return format_token(token_id, secret)

    def _write_inventory(self, session: Session) -> None:
        fleet = self.fleet
        session.add_all(SiteRow(id=i, name=name) for i, name in enumerate(fleet.site_names))
        session.flush()
        session.add_all(HallRow(id=i, site_id=int(site)) for i, site in enumerate(fleet.hall_site))
        session.flush()
        session.add_all(
            RackRow(id=i, hall_id=int(self.rack_hall[i]), su=int(su)) for i, su in enumerate(fleet.rack_su)
        )
        session.flush()
        session.add_all(
            NodeRow(
                id=i,
                rack_id=int(self.node_rack[i]),
                domain=int(fleet.node_domain[i]),
                gpus=int(fleet.node_gpus[i]),
                health=Health.ok,
                health_reason="",
            )
            for i in range(fleet.n_nodes)
        )

    def _reset_memory(self) -> None:
        fleet = self.fleet
        fleet.node_free_gpus[:] = fleet.node_gpus
        fleet.node_health[:] = HEALTH_OK
        fleet.domain_tenant[:] = -1
        self.scheduler = Scheduler(fleet, Policy.topology_packing)
        self.scheduler.preempt_within_tenant = True  # read by tokenfab.sched.preemption.plan
        self.residency: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = {}
        self.slot_used = np.zeros((fleet.n_nodes, int(fleet.node_gpus.max())), dtype=bool)
        self.slot_share_milli = np.zeros(self.slot_used.shape, dtype=np.int32)
        """milli-GPU held on each physical GPU slot by small workloads (0: not shared)."""
        self.share_physical: dict[tuple[int, int], int] = {}
        """(node, the scheduler's share slot) → the physical GPU slot it stands for."""
        self.workload_share: dict[str, tuple[int, int, int, int]] = {}
        """small workload → (node, scheduler share slot, physical slot, milli-GPU)."""
        self.workload_tenant: dict[str, str] = {}
        self.workload_tokens_per_s: dict[str, float] = {}
        self.power_cap_kw: float | None = None

    def rebuild(self) -> None:
        """Rebuild the in-memory fleet and scheduler from the store (on start, and after a failed write)."""
        with self.lock, self.sessions() as session:
            self._reset_memory()
            unhealthy: dict[str, list[int]] = {}
            for node_id, health in session.execute(
                select(NodeRow.id, NodeRow.health).where(NodeRow.health != Health.ok)
            ):
                unhealthy.setdefault(health, []).append(node_id)
            for health, nodes in unhealthy.items():
                self.scheduler.set_health(nodes, HEALTH_CODE[Health(health)])
            for tenant in session.scalars(select(TenantRow)):
                self._remember_tenant(tenant)
            cap = session.get(Meta, "power_cap_kw")
            self.power_cap_kw = float(cap.value) if cap is not None and cap.value != "" else None
            rows = session.execute(
                select(PlacementRow, WorkloadRow, TenantRow.name)
                .join(WorkloadRow, PlacementRow.workload_id == WorkloadRow.id)
                .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
                .where(PlacementRow.released_at.is_(None))
                .order_by(PlacementRow.id)
            )
            for placement_row, workload, tenant_name in rows:
                if workload.kind == WorkloadKind.small:
                    continue  # restored below, one shared GPU at a time
                placement = Placement(
                    workload.id,
                    np.asarray(placement_row.node_ids, dtype=np.int64),
                    np.asarray(placement_row.gpus_per_node, dtype=np.int64),
                )
                self.scheduler.restore(self._request(workload, tenant_name, session), placement)
                self.workload_tenant[workload.id] = tenant_name
                self.workload_tokens_per_s[workload.id] = _tokens_per_s(workload)
            for node_id, slot in session.execute(select(GpuAllocationRow.node_id, GpuAllocationRow.slot)):
                self.slot_used[node_id, slot] = True
            self._restore_shares(session)

    def _restore_shares(self, session: Session) -> None:
        """Put the small workloads back so that the scheduler's shared GPUs are the stored physical ones.

        The scheduler's `restore` puts a share on the first shared GPU of its node with room, which could
        merge two physical GPUs' shares into one. So the shares of each physical GPU are restored
        together, while every other shared GPU of that node is topped up to 1000 milli-GPU by a
        temporary filler allocation (released right after): the group must open a GPU of its own.
        """
        rows = session.execute(
            select(GpuShareRow, WorkloadRow, TenantRow.name)
            .join(WorkloadRow, GpuShareRow.workload_id == WorkloadRow.id)
            .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
            .order_by(GpuShareRow.node_id, GpuShareRow.slot, GpuShareRow.placement_id)
        ).all()
        groups: dict[tuple[int, int], list] = {}
        for share, workload, tenant_name in rows:
            groups.setdefault((share.node_id, share.slot), []).append((share, workload, tenant_name))
        for (node, physical), members in groups.items():
            fillers = []
            used = self.scheduler.share_used_milli[node]
            for sched_slot in np.flatnonzero((used > 0) & (used < MILLI_PER_GPU)).tolist():
                room = MILLI_PER_GPU - int(used[sched_slot])
                filler = Request(id=f"filler-{node}-{sched_slot}", gpus=0, tenant="", gpu_fraction=room / 1000)
                self.scheduler.restore(
                    filler, Placement(filler.id, np.asarray([node]), np.zeros(1, dtype=np.int64), room / 1000)
                )
                fillers.append(filler.id)
            for share, workload, tenant_name in members:
                request = self._request(workload, tenant_name, session)
                self.scheduler.restore(
                    request,
                    Placement(workload.id, np.asarray([node]), np.zeros(1, dtype=np.int64), share.milli / 1000),
                )
                sched_slot = _share_slot(self.scheduler, workload.id)
                self.share_physical[(node, sched_slot)] = physical
                self.workload_share[workload.id] = (node, sched_slot, physical, share.milli)
                self.slot_share_milli[node, physical] += share.milli
                self.workload_tenant[workload.id] = tenant_name
                self.workload_tokens_per_s[workload.id] = _tokens_per_s(workload)
            for filler_id in fillers:
                self.scheduler.release(filler_id)

    def _set_quota(self, tenant: str, quota_gpus: int | None) -> None:
        """Keep the scheduler's quota table in step with the store."""
        quotas = self.scheduler.quotas.quotas_gpus
        if quota_gpus is None:
            quotas.pop(tenant, None)
        else:
            quotas[tenant] = quota_gpus

    # ------------------------------------------------------------------ transactions

    def _mutate(self, op: Callable[[Session], T]) -> T:
        """Run ``op(session)`` in the writer's transaction and return its result once that transaction
        is committed (group commit: the writer runs every pending mutation in one transaction, one fsync).

        A `ServiceError` from ``op`` is raised before it changed anything and goes back to its caller
        alone; any other failure rolls the batch back, rebuilds memory from the store and fails the batch.
        """
        future: Future = Future()
        with self._pending_ready:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="tokenfab-writer", daemon=True)
                self._writer.start()
            self._pending.append((op, future))
            self._pending_ready.notify()
        return future.result()

    def close(self) -> None:
        """Stop the writer thread (pending mutations finish first) and close the engine's connections."""
        with self._pending_ready:
            writer, self._writer = self._writer, None
            if writer is not None:
                self._pending.append((None, None))
                self._pending_ready.notify()
        if writer is not None:
            writer.join(timeout=30)
        self.engine.dispose()

    def _write_loop(self) -> None:
        while True:
            with self._pending_ready:
                while not self._pending:
                    self._pending_ready.wait()
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            stop = any(op is None for op, _ in batch)
            self._run_batch([(op, future) for op, future in batch if op is not None])
            if stop:
                return

    def _run_batch(self, batch: list[tuple[Callable[[Session], Any], Future]]) -> None:
        """Run a batch in one transaction and settle every future; never raises (the writer must live)."""
        if not batch:
            return
        outcomes: list[tuple[Future, Any, BaseException | None]] = []
        try:
            with self.lock:
                if self._memory_stale:  # a failed batch could not rebuild memory last time: try again first
                    self.rebuild()
                    self._memory_stale = False
                with self.sessions() as session, session.begin():
                    for op, future in batch:
                        try:
                            outcomes.append((future, op(session), None))
                        except ServiceError as exc:
                            outcomes.append((future, None, exc))
        except Exception as exc:  # the batch is not committed: nothing of it happened
            self._memory_stale = True
            try:
                self.rebuild()
                self._memory_stale = False
            except Exception:  # the store is unreachable; the next batch rebuilds first
                pass
            for _, future in batch:
                future.set_exception(exc)
            return
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    # ------------------------------------------------------------------ authentication

    def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer token stands for, or None (unknown, malformed, expired, revoked)."""
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        with self.sessions() as session:
            found = session.execute(
                select(ApiTokenRow, TenantRow.name)
                .outerjoin(TenantRow, ApiTokenRow.tenant_id == TenantRow.id)
                .where(ApiTokenRow.id == token_id)
            ).first()
        row, tenant_name = found if found is not None else (None, None)
        # compare even for an unknown id, so the answer takes the same time either way
        matches = secret_matches(secret, row.secret_sha256 if row is not None else _NO_TOKEN_SHA256)
        if row is None or not matches or not token_is_live(row):
            return None
        return Principal(
            token_id=row.id,
            name=row.name,
            role=Role(row.role),
            tenant_id=row.tenant_id,
            tenant_name=tenant_name,
        )

    # ------------------------------------------------------------------ tenants and tokens

    def create_tenant(self, principal: Principal, body: s.TenantCreate) -> s.TenantPublic:
        _require_operator(principal)
        self._check_residency(body.allowed_sites, body.allowed_halls)

        def _op(session: Session):
            if session.scalar(select(TenantRow).where(TenantRow.name == body.name)) is not None:
                raise Conflict(f"tenant {body.name} exists", "name")
            row = TenantRow(
                name=body.name,
                quota_gpus=body.quota_gpus,
                allowed_sites=body.allowed_sites,
                allowed_halls=body.allowed_halls,
            )
            session.add(row)
            session.flush()
            self._remember_tenant(row)
            self._audit(
                session,
                principal,
                "tenant.create",
                f"tenant/{body.name}",
                None,
                _tenant_facts(row),
                tenant_id=row.id,
            )
            return self._tenant_public(session, row)

        return self._mutate(_op)

    def update_tenant(self, principal: Principal, name: str, body: s.TenantUpdate) -> s.TenantPublic:
        _require_operator(principal)
        self._check_residency(body.allowed_sites, body.allowed_halls)

        def _op(session: Session):
            row = self._tenant(session, name)
            before = _tenant_facts(row)
            for field in body.model_fields_set:
                setattr(row, field, getattr(body, field))
            self._remember_tenant(row)
            self._audit(
                session,
                principal,
                "tenant.update",
                f"tenant/{name}",
                before,
                _tenant_facts(row),
                tenant_id=row.id,
            )
            self._process_queue(session, principal)
            return self._tenant_public(session, row)

        return self._mutate(_op)

    def list_tenants(self, principal: Principal) -> s.TenantsPublic:
        with self.sessions() as session:
            query = select(TenantRow).order_by(TenantRow.name)
            if not principal.is_operator:
                query = query.where(TenantRow.id == principal.tenant_id)
            data = [self._tenant_public(session, row) for row in session.scalars(query)]
        return s.TenantsPublic(data=data, count=len(data))

    def get_tenant(self, principal: Principal, name: str) -> s.TenantPublic:
        with self.sessions() as session:
            row = self._tenant(session, name)
            if not principal.is_operator and row.id != principal.tenant_id:
                raise NotFound(f"tenant {name} not found", "name")
            return self._tenant_public(session, row)

    def create_token(self, principal: Principal, body: s.TokenCreate) -> s.TokenCreated:
        _require_operator(principal)
        if body.role == "tenant" and body.tenant is None:
            raise Invalid("a tenant token names its tenant", "tenant")
        if body.role == "operator" and body.tenant is not None:
            raise Invalid("an operator token has no tenant", "tenant")

        def _op(session: Session):
            tenant = self._tenant(session, body.tenant, field="tenant") if body.tenant else None
            token_id, secret = new_token_id(), new_secret()
            expires_at = utc_now() + timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
            row = ApiTokenRow(
                id=token_id,
                name=body.name,
                role=body.role,
                tenant_id=tenant.id if tenant else None,
                secret_sha256=hash_secret(secret),
                expires_at=expires_at,
                created_at=utc_now(),
            )
            session.add(row)
            session.flush()
            self._audit(
                session,
                principal,
                "token.create",
                f"token/{token_id}",
                None,
                {"name": body.name, "role": body.role, "tenant": body.tenant},
                tenant_id=tenant.id if tenant else None,
            )
            public = _token_public(row, body.tenant)
            return s.TokenCreated(**public.model_dump(), token=format_token(token_id, secret))

        return self._mutate(_op)

    def list_tokens(self, principal: Principal) -> s.TokensPublic:
        with self.sessions() as session:
            query = select(ApiTokenRow, TenantRow.name).outerjoin(
                TenantRow, ApiTokenRow.tenant_id == TenantRow.id
            )
            if not principal.is_operator:
                query = query.where(ApiTokenRow.tenant_id == principal.tenant_id)
            data = [
                _token_public(row, tenant)
                for row, tenant in session.execute(query.order_by(ApiTokenRow.created_at))
            ]
        return s.TokensPublic(data=data, count=len(data))

    def revoke_token(self, principal: Principal, token_id: str) -> s.TokenPublic:
        _require_operator(principal)

        def _op(session: Session):
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise NotFound(f"token {token_id} not found", "token_id")
            if row.revoked_at is None:
                row.revoked_at = utc_now()
                self._audit(
                    session,
                    principal,
                    "token.revoke",
                    f"token/{token_id}",
                    {"revoked": False},
                    {"revoked": True},
                    tenant_id=row.tenant_id,
                )
            tenant = session.get(TenantRow, row.tenant_id).name if row.tenant_id is not None else None
            return _token_public(row, tenant)

        return self._mutate(_op)

    # ------------------------------------------------------------------ workloads

    def submit(self, principal: Principal, body: s.WorkloadCreate) -> s.WorkloadPublic:
        """Record the workload, place it now if it fits (else queue it with the reason); commit, then answer."""
        self._check_workload_shape(body)

        def _op(session: Session):
            tenant = self._owner_for(session, principal, body.tenant)
            spec = body.model_dump(exclude={"tenant", "name", "kind", "priority", "on_failure"})
            total = body.gpus * body.replicas if body.kind == "inference" else body.gpus
            now = utc_now()
            row = WorkloadRow(
                id=f"w-{secrets.token_hex(6)}",
                tenant_id=tenant.id,
                name=body.name,
                kind=body.kind,
                spec=spec,
                gpus=total,
                priority=body.priority,
                on_failure=body.on_failure,
                state=WorkloadState.queued,
                queue_reason="",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            placement = self._try_place(session, row, tenant.name, principal)
            self._audit(
                session,
                principal,
                "workload.submit",
                f"workload/{row.id}",
                None,
                _workload_facts(row),
                tenant_id=tenant.id,
            )
            eviction = self.scheduler.last_eviction
            if placement is not None and eviction is not None and eviction.request_id == row.id:
                self._process_queue(session, principal)  # what the evictor left free may fit a victim
            self._sample(session)
            return self._workload_public(session, row, tenant.name, placement)

        return self._mutate(_op)

    def cancel(self, principal: Principal, workload_id: str) -> s.WorkloadPublic:
        def _op(session: Session):
            row, tenant = self._visible_workload(session, principal, workload_id)
            before = _workload_facts(row)
            if row.state in ACTIVE_STATES:
                freed = self._release(session, row, "cancelled")
                row.state = WorkloadState.cancelled
                row.queue_reason = ""
                row.updated_at = utc_now()
                self._audit(
                    session,
                    principal,
                    "workload.cancel",
                    f"workload/{row.id}",
                    before,
                    _workload_facts(row),
                    tenant_id=row.tenant_id,
                )
                if freed:
                    self._process_queue(session, principal)
                self._sample(session)
            active = row.state in ACTIVE_STATES  # a cancelled or failed workload holds no placement
            return self._workload_public(session, row, tenant, False if active else None)

        return self._mutate(_op)

    def scale(self, principal: Principal, workload_id: str, body: s.WorkloadScale) -> s.WorkloadPublic:
        """Change an inference service's replicas: re-place it at the new size, or keep it queued with why."""

        def _op(session: Session):
            row, tenant = self._visible_workload(session, principal, workload_id)
            if row.kind != "inference":
                raise Invalid("only inference services scale; training gangs are resubmitted", "replicas")
            if row.state not in ACTIVE_STATES:
                raise Conflict(f"workload {row.id} is {row.state}")
            spec = dict(row.spec)
            total = spec["gpus"] * body.replicas
            if total > self.fleet.n_gpus:
                raise Invalid(
                    f"{body.replicas} replicas need {total} GPUs; the factory has {self.fleet.n_gpus}",
                    "replicas",
                )
            before = _workload_facts(row)
            self._release(session, row, "rescaled")
            spec["replicas"] = body.replicas
            row.spec = spec
            row.gpus = total
            row.state = WorkloadState.queued
            self._try_place(session, row, tenant)
            self._audit(
                session,
                principal,
                "workload.scale",
                f"workload/{row.id}",
                before,
                _workload_facts(row),
                tenant_id=row.tenant_id,
            )
            self._process_queue(session, principal)
            self._sample(session)
            return self._workload_public(session, row, tenant)

        return self._mutate(_op)

    def get_workload(self, principal: Principal, workload_id: str) -> s.WorkloadPublic:
        with self.sessions() as session:
            row, tenant = self._visible_workload(session, principal, workload_id)
            return self._workload_public(session, row, tenant)

    def list_workloads(
        self, principal: Principal, state: str | None = None, limit: int = 500
    ) -> s.WorkloadsPublic:
        with self.sessions() as session:
            query = select(WorkloadRow, TenantRow.name).join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
            if not principal.is_operator:
                query = query.where(WorkloadRow.tenant_id == principal.tenant_id)
            if state is not None:
                query = query.where(WorkloadRow.state == state)
            query = query.order_by(WorkloadRow.created_at.desc()).limit(limit)
            rows = list(session.execute(query))
            placements = self._active_placements(session, [row.id for row, _ in rows])
            data = [
                self._workload_public(session, row, tenant, placements.get(row.id, False))
                for row, tenant in rows
            ]
        return s.WorkloadsPublic(data=data, count=len(data))

    def queue(self, principal: Principal) -> s.WorkloadsPublic:
        """Queued workloads in the order the queue tries them (priority, then age)."""
        with self.sessions() as session:
            query = (
                select(WorkloadRow, TenantRow.name)
                .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
                .where(WorkloadRow.state == WorkloadState.queued)
                .order_by(WorkloadRow.priority.desc(), WorkloadRow.created_at)
            )
            if not principal.is_operator:
                query = query.where(WorkloadRow.tenant_id == principal.tenant_id)
            data = [
                self._workload_public(session, row, tenant, None)
                for row, tenant in session.execute(query.limit(1000))
            ]
        return s.WorkloadsPublic(data=data, count=len(data))

    # ------------------------------------------------------------------ health

    def change_health(
        self, principal: Principal, level: str, element_id: int, action: str, body: s.HealthChange
    ) -> s.HealthResult:
        """Cordon, drain, fail or return a node or a rack. Draining requeues the workloads on it; a failure
        requeues or fails them per their `on_failure` policy; returning to service lets the queue run."""
        _require_operator(principal)
        fleet = self.fleet
        if level == "node":
            if not 0 <= element_id < fleet.n_nodes:
                raise NotFound(f"node {element_id} not found", "node_id")
            nodes = np.asarray([element_id])
        else:
            if not 0 <= element_id < fleet.n_racks:
                raise NotFound(f"rack {element_id} not found", "rack_id")
            nodes = np.flatnonzero(self.node_rack == element_id)
        health = HEALTH_OF_ACTION[action]

        def _op(session: Session):
            node_rows = list(session.scalars(select(NodeRow).where(NodeRow.id.in_(nodes.tolist()))))
            before = Counter(row.health for row in node_rows)
            now = utc_now()
            for row in node_rows:
                row.health = health
                row.health_reason = body.reason
                row.updated_at = now
            affected = self.scheduler.set_health(nodes, HEALTH_CODE[health])
            requeued, failed = [], []
            for workload_id in affected:
                workload = session.get(WorkloadRow, workload_id)
                if workload is None or workload.state not in ACTIVE_STATES:
                    continue
                self._release(session, workload, f"{level} {element_id} {health}")
                workload.updated_at = now
                if health == Health.failed and workload.on_failure == "fail":
                    workload.state = WorkloadState.failed
                    workload.queue_reason = f"{level} {element_id} failed"
                    failed.append(workload_id)
                else:
                    workload.state = WorkloadState.queued
                    workload.queue_reason = f"requeued: {level} {element_id} {health}"
                    requeued.append(workload_id)
            self._audit(
                session,
                principal,
                f"{level}.{action}",
                f"{level}/{element_id}",
                {"health": dict(before)},
                {"health": health.value, "reason": body.reason, "requeued": requeued, "failed": failed},
            )
            self._process_queue(session, principal)
            self._sample(session)
            return s.HealthResult(nodes=nodes.tolist(), health=health.value, requeued=requeued, failed=failed)

        return self._mutate(_op)

    # ------------------------------------------------------------------ power

    def power(self, principal: Principal, evicted: list[str] | None = None) -> s.PowerStatus:
        _require_operator(principal)  # the facility's figures are not a tenant's share
        with self.sessions() as session:
            events = list(session.scalars(select(PowerEventRow).order_by(PowerEventRow.id.desc()).limit(50)))
        it_kw = self.it_draw_kw()
        return s.PowerStatus(
            cap_kw=self.power_cap_kw,
            it_draw_kw=round(it_kw, 3),
            facility_draw_kw=round(it_kw * self.pue, 3),
            facility_design_kw=round(self.design.metrics.facility_mw * 1000.0, 3),
            pue=self.pue,
            evicted=evicted or [],
            events=[
                s.PowerEventPublic(
                    at=as_utc(e.at), kind=e.kind, cap_kw=e.cap_kw, draw_kw=e.draw_kw, message=e.message
                )
                for e in events
            ],
        )

    def set_power_cap(self, principal: Principal, body: s.PowerCap) -> s.PowerStatus:
        _require_operator(principal)
        return self._apply_cap(principal, "cap", body.cap_kw, "")

    def grid_event(self, principal: Principal, body: s.GridEvent) -> s.PowerStatus:
        _require_operator(principal)
        if body.kind == "curtailment" and body.cap_kw is None:
            raise Invalid("a curtailment states the cap it imposes", "cap_kw")
        return self._apply_cap(
            principal, body.kind, body.cap_kw if body.kind == "curtailment" else None, body.message
        )

    def _apply_cap(
        self, principal: Principal, kind: str, cap_kw: float | None, message: str
    ) -> s.PowerStatus:
        def _op(session: Session):
            before = self.power_cap_kw
            self.power_cap_kw = cap_kw
            session.merge(Meta(key="power_cap_kw", value="" if cap_kw is None else repr(cap_kw)))
            evicted = self._shed_load(session) if cap_kw is not None else []
            text = message or (f"cap {cap_kw:.1f} kW" if cap_kw is not None else "cap lifted")
            if evicted:
                text += f"; evicted {len(evicted)} workload(s) to the queue"
            session.add(
                PowerEventRow(kind=kind, cap_kw=cap_kw, draw_kw=self.facility_draw_kw(), message=text)
            )
            self._audit(
                session,
                principal,
                f"power.{kind}",
                "power",
                {"cap_kw": before},
                {"cap_kw": cap_kw, "evicted": evicted},
            )
            self._process_queue(session, principal)
            self._sample(session)
            return evicted

        evicted = self._mutate(_op)
        return self.power(principal, evicted)

    def _shed_load(self, session: Session) -> list[str]:
        """Evict preemptible workloads, lowest priority and newest first, until the draw fits the cap."""
        evicted: list[str] = []
        if self.power_cap_kw is None or self.facility_draw_kw() <= self.power_cap_kw:
            return evicted
        victims = session.scalars(
            select(WorkloadRow)
            .where(WorkloadRow.state.in_([WorkloadState.placed, WorkloadState.running]))
            .order_by(WorkloadRow.priority, WorkloadRow.created_at.desc())
        )
        for workload in victims:
            if self.facility_draw_kw() <= self.power_cap_kw:
                break
            if not workload.spec.get("preemptible", True):
                continue
            self._release(session, workload, "power cap")
            workload.state = WorkloadState.queued
            workload.queue_reason = f"evicted: facility power cap {self.power_cap_kw:.1f} kW"
            workload.updated_at = utc_now()
            evicted.append(workload.id)
        return evicted

    @property
    def pue(self) -> float:
        return float(self.design.metrics.pue_design)

    def it_draw_kw(self, extra_gpus_by_site: np.ndarray | None = None) -> float:
        """IT draw from the allocation state (the equation in the module docstring) [kW]."""
        fleet = self.fleet
        used = (fleet.node_gpus - fleet.node_free_gpus).astype(np.float64)
        used_by_site = np.bincount(self.node_site, weights=used, minlength=fleet.n_sites)
        if extra_gpus_by_site is not None:
            used_by_site = used_by_site + extra_gpus_by_site
        installed = np.bincount(self.node_site, weights=fleet.node_gpus, minlength=fleet.n_sites)
        rack_kw = np.asarray([site.rack.power_nominal_kw for site in self.design.sites])
        share = np.divide(used_by_site, installed, out=np.zeros_like(used_by_site), where=installed > 0)
        return float(
            np.sum(self.site_racks * rack_kw * (IDLE_POWER_FRACTION + (1 - IDLE_POWER_FRACTION) * share))
        )

    def facility_draw_kw(self) -> float:
        return self.it_draw_kw() * self.pue

    # ------------------------------------------------------------------ views

    def factory_map(self, principal: Principal) -> s.FactoryMap:
        with self.lock:
            fleet = self.fleet
            free_by_rack = np.bincount(
                self.node_rack, weights=fleet.node_free_gpus, minlength=fleet.n_racks
            ).astype(int)
            health_by_rack = [Counter() for _ in range(fleet.n_racks)]
            for node in np.flatnonzero(fleet.node_health != HEALTH_OK):
                health_by_rack[self.node_rack[node]][_HEALTH_NAME[int(fleet.node_health[node])]] += 1
            tenants_by_rack: list[Counter] = [Counter() for _ in range(fleet.n_racks)]
            for request_id, placement in self.scheduler.allocations().items():
                tenant = self.workload_tenant.get(request_id, "?")
                if not principal.is_operator and tenant != principal.tenant_name:
                    continue
                for node, gpus in zip(
                    placement.nodes.tolist(), placement.gpus_per_node.tolist(), strict=True
                ):
                    tenants_by_rack[self.node_rack[node]][tenant] += gpus
        racks = []
        for rack in range(fleet.n_racks):
            health = {"ok": int((self.node_rack == rack).sum()) - sum(health_by_rack[rack].values())}
            health.update(health_by_rack[rack])
            racks.append(
                s.RackSummary(
                    id=rack,
                    su=int(fleet.rack_su[rack]),
                    hall=int(self.rack_hall[rack]),
                    site=int(self.rack_site[rack]),
                    gpus=int(self.rack_gpus[rack]),
                    gpus_free=int(free_by_rack[rack]),
                    gpus_own=None if principal.is_operator else int(sum(tenants_by_rack[rack].values())),
                    tenants=dict(tenants_by_rack[rack]),
                    health=health,
                )
            )
        sites = []
        for site in range(fleet.n_sites):
            halls = []
            for hall in np.flatnonzero(fleet.hall_site == site):
                hall_racks = [r for r in racks if r.hall == hall]
                halls.append(
                    s.HallSummary(
                        id=int(hall),
                        site=site,
                        gpus=sum(r.gpus for r in hall_racks),
                        gpus_free=sum(r.gpus_free for r in hall_racks),
                        racks=hall_racks,
                    )
                )
            sites.append(
                s.SiteSummary(
                    id=site,
                    name=fleet.site_names[site],
                    gpus=sum(h.gpus for h in halls),
                    gpus_free=sum(h.gpus_free for h in halls),
                    halls=halls,
                )
            )
        return s.FactoryMap(
            design=self.design.name,
            system=[site.system for site in self.design.sites],
            gpus=fleet.n_gpus,
            gpus_free=int(fleet.node_free_gpus.sum()),
            sites=sites,
        )

    def rack_detail(self, principal: Principal, rack_id: int) -> s.RackDetail:
        if not 0 <= rack_id < self.fleet.n_racks:
            raise NotFound(f"rack {rack_id} not found", "rack_id")
        rack = next(
            r
            for site in self.factory_map(principal).sites
            for hall in site.halls
            for r in hall.racks
            if r.id == rack_id
        )
        nodes = self.list_nodes(principal, rack_id=rack_id).data
        workload_ids = sorted({w for node in nodes for w in node.workloads})
        with self.sessions() as session:
            rows = session.execute(
                select(WorkloadRow, TenantRow.name)
                .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
                .where(WorkloadRow.id.in_(workload_ids))
            )
            workloads = [self._workload_public(session, row, tenant) for row, tenant in rows]
        return s.RackDetail(rack=rack, nodes=nodes, workloads=workloads)

    def list_nodes(
        self, principal: Principal, rack_id: int | None = None, health: str | None = None, limit: int = 5000
    ) -> s.NodesPublic:
        fleet = self.fleet
        with self.lock:
            on_node: dict[int, list[str]] = {}
            for request_id, placement in self.scheduler.allocations().items():
                if (
                    not principal.is_operator
                    and self.workload_tenant.get(request_id) != principal.tenant_name
                ):
                    continue
                for node in placement.nodes.tolist():
                    on_node.setdefault(node, []).append(request_id)
            free = fleet.node_free_gpus.copy()
            shared: dict[int, dict[int, int]] = {}
            for node, slot in zip(*np.nonzero(self.slot_share_milli), strict=True):
                shared.setdefault(int(node), {})[int(slot)] = int(self.slot_share_milli[node, slot])
        with self.sessions() as session:
            query = select(NodeRow).order_by(NodeRow.id)
            if rack_id is not None:
                query = query.where(NodeRow.rack_id == rack_id)
            if health is not None:
                query = query.where(NodeRow.health == health)
            if not principal.is_operator and rack_id is None:
                query = query.where(NodeRow.id.in_(list(on_node)))
            rows = list(session.scalars(query.limit(limit)))
        data = [
            s.NodePublic(
                id=row.id,
                rack=row.rack_id,
                domain=row.domain,
                gpus=row.gpus,
                gpus_free=int(free[row.id]),
                gpus_shared=shared.get(row.id, {}),
                health=row.health,
                health_reason=row.health_reason,
                workloads=on_node.get(row.id, []),
            )
            for row in rows
        ]
        return s.NodesPublic(data=data, count=len(data))

    def usage(self, principal: Principal) -> s.UsagePublic:
        now = utc_now()
        with self.sessions() as session:
            tenants = session.scalars(select(TenantRow).order_by(TenantRow.name))
            data = []
            for tenant in tenants:
                if not principal.is_operator and tenant.id != principal.tenant_id:
                    continue
                hours = 0.0
                for gpus, kind, spec, placed_at, released_at in session.execute(
                    select(
                        PlacementRow.gpus,
                        WorkloadRow.kind,
                        WorkloadRow.spec,
                        PlacementRow.placed_at,
                        PlacementRow.released_at,
                    )
                    .join(WorkloadRow, PlacementRow.workload_id == WorkloadRow.id)
                    .where(WorkloadRow.tenant_id == tenant.id)
                ):
                    held = float(spec.get("gpu_fraction") or 0.0) if kind == WorkloadKind.small else gpus
                    hours += (
                        held * ((as_utc(released_at) or now) - as_utc(placed_at)).total_seconds() / 3600.0
                    )
                states = dict(
                    session.execute(
                        select(WorkloadRow.state, func.count())
                        .where(WorkloadRow.tenant_id == tenant.id)
                        .group_by(WorkloadRow.state)
                    ).all()
                )
                running = session.scalars(
                    select(WorkloadRow).where(
                        WorkloadRow.tenant_id == tenant.id, WorkloadRow.state == WorkloadState.running
                    )
                )
                data.append(
                    s.TenantUsage(
                        tenant=tenant.name,
                        gpus_allocated=self.scheduler.used_gpus_by_tenant().get(tenant.name, 0),
                        gpu_equivalents_allocated=self._gpu_equivalents(tenant.name),
                        gpu_hours=round(hours, 4),
                        workloads={k: int(v) for k, v in states.items()},
                        tokens_per_s=sum(_tokens_per_s(w) for w in running),
                    )
                )
        return s.UsagePublic(data=data, count=len(data))

    def telemetry(self, principal: Principal, limit: int = 500) -> s.TelemetryPublic:
        _require_operator(principal)
        with self.sessions() as session:
            rows = list(session.scalars(select(TelemetryRow).order_by(TelemetryRow.id.desc()).limit(limit)))
        rows.reverse()
        data = [
            s.TelemetryPoint(
                at=as_utc(r.at),
                draw_kw=r.draw_kw,
                cap_kw=r.cap_kw,
                gpus_allocated=r.gpus_allocated,
                tokens_per_s=r.tokens_per_s,
            )
            for r in rows
        ]
        return s.TelemetryPublic(data=data, count=len(data))

    def audit(self, principal: Principal, limit: int = 200) -> s.AuditsPublic:
        with self.sessions() as session:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if not principal.is_operator:
                query = query.where(AuditRow.tenant_id == principal.tenant_id)
            data = [
                s.AuditPublic(
                    id=r.id,
                    at=as_utc(r.at),
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    before=r.before,
                    after=r.after,
                )
                for r in session.scalars(query)
            ]
        return s.AuditsPublic(data=data, count=len(data))

    def metrics_text(self, principal: Principal) -> str:
        """Prometheus text exposition of the factory's gauges."""
        _require_operator(principal)
        with self.sessions() as session:
            states = dict(
                session.execute(select(WorkloadRow.state, func.count()).group_by(WorkloadRow.state)).all()
            )
        with self.lock:
            tokens = sum(self.workload_tokens_per_s.values())
            fleet = self.fleet
            by_tenant = self.scheduler.used_gpus_by_tenant()
            health = Counter(_HEALTH_NAME[int(h)] for h in fleet.node_health)
            lines = [
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
                    [({"health": h.value}, health.get(h.value, 0)) for h in Health],
                ),
                (
                    "tokenfab_facility_power_draw_kw",
                    "facility power draw [kW]",
                    [({}, round(self.facility_draw_kw(), 3))],
                ),
                (
                    "tokenfab_facility_power_cap_kw",
                    "facility power cap [kW] (absent when none)",
                    [] if self.power_cap_kw is None else [({}, self.power_cap_kw)],
                ),
                ("tokenfab_tokens_per_second", "tokens served per second (estimate)", [({}, tokens)]),
            ]
        out = []
        for name, help_text, samples in lines:
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            for labels, value in samples:
                label = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
                out.append(f"{name}{{{label}}} {value}" if label else f"{name} {value}")
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------------ internals

    def _owner_for(self, session: Session, principal: Principal, tenant_name: str | None) -> TenantRow:
        if principal.is_operator:
            if tenant_name is None:
                raise Invalid("operators submit on behalf of a tenant: name it", "tenant")
            return self._tenant(session, tenant_name, field="tenant")
        if tenant_name is not None and tenant_name != principal.tenant_name:
            raise NotFound(f"tenant {tenant_name} not found", "tenant")
        return session.get(TenantRow, principal.tenant_id)

    def _tenant(self, session: Session, name: str, field: str = "name") -> TenantRow:
        row = session.scalar(select(TenantRow).where(TenantRow.name == name))
        if row is None:
            raise NotFound(f"tenant {name} not found", field)
        return row

    def _visible_workload(
        self, session: Session, principal: Principal, workload_id: str
    ) -> tuple[WorkloadRow, str]:
        """The workload if the caller may see it; another tenant's workload is 'not found', like a missing one."""
        row = session.get(WorkloadRow, workload_id)
        if row is None or (not principal.is_operator and row.tenant_id != principal.tenant_id):
            raise NotFound(f"workload {workload_id} not found", "workload_id")
        return row, session.get(TenantRow, row.tenant_id).name

    def _check_residency(self, sites: list[int] | None, halls: list[int] | None) -> None:
        for index, site in enumerate(sites or []):
            if not 0 <= site < self.fleet.n_sites:
                raise Invalid(
                    f"no site {site} (sites 0..{self.fleet.n_sites - 1})", f"allowed_sites[{index}]"
                )
        for index, hall in enumerate(halls or []):
            if not 0 <= hall < self.fleet.n_halls:
                raise Invalid(
                    f"no hall {hall} (halls 0..{self.fleet.n_halls - 1})", f"allowed_halls[{index}]"
                )

    def _check_workload_shape(self, body: s.WorkloadCreate) -> None:
        if body.kind == "small":
            self._check_small_shape(body)
            return
        if body.gpu_fraction is not None:
            raise Invalid("only small workloads ask for a fraction of a GPU (kind: small)", "gpu_fraction")
        if body.gpus < 1:
            raise Invalid(f"a {body.kind} workload needs at least 1 GPU", "gpus")
        total = body.gpus * body.replicas if body.kind == "inference" else body.gpus
        if body.kind == "training" and body.replicas != 1:
            raise Invalid("training gangs have one replica; ask for more GPUs", "replicas")
        if total > self.fleet.n_gpus:
            raise Invalid(f"{total} GPUs asked; the factory has {self.fleet.n_gpus}", "gpus")
        if body.kind == "inference" and body.gpus > self.max_domain_gpus:
            raise Invalid(f"a replica must fit one NVLink domain of {self.max_domain_gpus} GPUs", "gpus")
        if body.slice_gpus > self.max_domain_gpus:
            raise Invalid(f"a slice must fit one NVLink domain of {self.max_domain_gpus} GPUs", "slice_gpus")
        if body.slice_gpus and total % body.slice_gpus:
            raise Invalid(f"{total} GPUs do not split into slices of {body.slice_gpus}", "slice_gpus")

    def _check_small_shape(self, body: s.WorkloadCreate) -> None:
        """A small workload: a share of one GPU (0 < f < 1, whole milli-GPU) with CPU and memory on one node."""
        if body.gpu_fraction is None:
            raise Invalid("a small workload states its share of one GPU, 0 < gpu_fraction < 1", "gpu_fraction")
        milli = round(body.gpu_fraction * MILLI_PER_GPU)
        if not 0 < milli < MILLI_PER_GPU:
            raise Invalid(
                f"gpu_fraction {body.gpu_fraction} rounds to {milli} milli-GPU; it must be 1..999", "gpu_fraction"
            )
        if body.gpus != 0:
            raise Invalid("a small workload asks for gpu_fraction, not whole GPUs (leave gpus 0)", "gpus")
        for field, value, most in (
            ("replicas", body.replicas - 1, 0),
            ("slice_gpus", body.slice_gpus, 0),
            ("whole_domains", int(body.whole_domains), 0),
        ):
            if value > most:
                raise Invalid(f"a small workload has no {field}", field)
        most_cpu = float(self.fleet.node_cpu_cores.max()) if self.fleet.n_nodes else 0.0
        if body.cpu_cores > most_cpu:
            raise Invalid(f"{body.cpu_cores:g} CPU cores asked; the largest node has {most_cpu:g}", "cpu_cores")
        most_memory = float(self.fleet.node_memory_gb.max()) if self.fleet.n_nodes else 0.0
        if body.memory_gb > most_memory:
            raise Invalid(f"{body.memory_gb:g} GB asked; the largest node has {most_memory:g} GB", "memory_gb")

    def _request(self, row: WorkloadRow, tenant_name: str, session: Session) -> Request:
        if tenant_name not in self.residency:
            self._remember_tenant(session.scalar(select(TenantRow).where(TenantRow.name == tenant_name)))
        allowed_sites, allowed_halls = self.residency[tenant_name]
        spec = row.spec
        slice_gpus = spec.get("gpus", 0) if row.kind == "inference" else spec.get("slice_gpus", 0)
        return Request(
            id=row.id,
            gpus=row.gpus,
            tenant=tenant_name,
            kind=WorkloadKind(row.kind),
            slice_gpus=slice_gpus,
            whole_domains=bool(spec.get("whole_domains", False)),
            priority=row.priority,
            preemptible=bool(spec.get("preemptible", True)),
            exclusive_domains=True,
            allowed_sites=allowed_sites,
            allowed_halls=allowed_halls,
            gpu_fraction=float(spec.get("gpu_fraction") or 0.0) if row.kind == "small" else 0.0,
            cpu_cores=float(spec.get("cpu_cores") or 0.0) if row.kind == "small" else 0.0,
            memory_gb=float(spec.get("memory_gb") or 0.0) if row.kind == "small" else 0.0,
        )

    def _remember_tenant(self, tenant: TenantRow) -> None:
        """Keep the scheduler's quota and the residency its requests carry in step with the store."""
        self._set_quota(tenant.name, tenant.quota_gpus)
        self.residency[tenant.name] = (
            tuple(tenant.allowed_sites) if tenant.allowed_sites is not None else None,
            tuple(tenant.allowed_halls) if tenant.allowed_halls is not None else None,
        )

    def _try_place(
        self,
        session: Session,
        row: WorkloadRow,
        tenant_name: str,
        principal: Principal | None = None,
    ) -> PlacementRow | None:
        """Place a queued workload if it fits now (its new placement row); else leave it queued with why.

        With a ``principal`` (a submission) and no facility power cap, a workload that does not fit may
        evict strictly lower-priority preemptible workloads of its own tenant (never another tenant's:
        the scheduler's ``preempt_within_tenant``); they go back to the queue, or fail when their
        ``on_failure`` is ``fail``, with an audit entry naming the evictor.
        """
        preempt = principal is not None and self.power_cap_kw is None
        result = self.scheduler.place(self._request(row, tenant_name, session), allow_preemption=preempt)
        if isinstance(result, Unplaceable):
            row.queue_reason = result.reason
            return None
        if result.evicted:
            self._record_evictions(session, principal, row, result.evicted)
        if self.power_cap_kw is not None and self.facility_draw_kw() > self.power_cap_kw:
            self.scheduler.release(row.id)
            row.queue_reason = (
                f"facility power cap {self.power_cap_kw:.1f} kW: placing it would draw more than the cap"
            )
            return None
        placement_row = PlacementRow(
            workload_id=row.id,
            node_ids=result.nodes.tolist(),
            gpus_per_node=result.gpus_per_node.tolist(),
            gpus=result.gpus,
            placed_at=utc_now(),
        )
        session.add(placement_row)
        session.flush()
        if row.kind == WorkloadKind.small:
            self._record_share(session, row, int(result.nodes[0]), placement_row.id)
        for node, take in zip(result.nodes.tolist(), result.gpus_per_node.tolist(), strict=True):
            if take == 0:
                continue
            whole_free = ~self.slot_used[node] & (self.slot_share_milli[node] == 0)
            slots = np.flatnonzero(whole_free[: self.fleet.node_gpus[node]])[:take]
            if len(slots) < take:
                raise RuntimeError(f"node {node}: scheduler and slot map disagree")
            self.slot_used[node, slots] = True
            session.add_all(
                GpuAllocationRow(
                    node_id=node, slot=int(slot), workload_id=row.id, placement_id=placement_row.id
                )
                for slot in slots
            )
        session.flush()  # the (node, slot) primary key refuses a double allocation here
        self.workload_tenant[row.id] = tenant_name
        self.workload_tokens_per_s[row.id] = _tokens_per_s(row)
        row.state = WorkloadState.running
        row.queue_reason = ""
        row.updated_at = utc_now()
        return placement_row

    def _record_share(self, session: Session, row: WorkloadRow, node: int, placement_id: int) -> None:
        """Map the scheduler's share slot to a physical GPU slot and write the share's row."""
        sched_slot = _share_slot(self.scheduler, row.id)
        milli = int(round(float(row.spec["gpu_fraction"]) * MILLI_PER_GPU))
        physical = self.share_physical.get((node, sched_slot))
        if physical is None:  # the scheduler opened a new shared GPU: take a physical GPU that is wholly free
            free = ~self.slot_used[node] & (self.slot_share_milli[node] == 0)
            candidates = np.flatnonzero(free[: self.fleet.node_gpus[node]])
            if not len(candidates):
                raise RuntimeError(f"node {node}: scheduler and slot map disagree on a shared GPU")
            physical = int(candidates[0])
            self.share_physical[(node, sched_slot)] = physical
        self.slot_share_milli[node, physical] += milli
        self.workload_share[row.id] = (node, sched_slot, physical, milli)
        session.add(
            GpuShareRow(node_id=node, slot=physical, workload_id=row.id, milli=milli, placement_id=placement_id)
        )

    def _record_evictions(
        self, session: Session, principal: Principal, evictor: WorkloadRow, victims: list[str]
    ) -> None:
        """Store what a preempting placement did: each victim's rows released, requeued (or failed), audited."""
        now = utc_now()
        for victim_id in victims:
            victim = session.get(WorkloadRow, victim_id)
            before = _workload_facts(victim)
            self._release_rows(session, victim, f"preempted by {evictor.id}")
            if victim.on_failure == "fail":
                victim.state = WorkloadState.failed
                victim.queue_reason = f"preempted by {evictor.id} (priority {evictor.priority})"
            else:
                victim.state = WorkloadState.queued
                victim.queue_reason = f"evicted: preempted by {evictor.id} (priority {evictor.priority})"
            victim.updated_at = now
            self._audit(
                session,
                principal,
                "workload.preempt",
                f"workload/{victim.id}",
                before,
                {**_workload_facts(victim), "evicted_by": evictor.id, "evictor_priority": evictor.priority},
                tenant_id=victim.tenant_id,
            )

    def _release(self, session: Session, row: WorkloadRow, reason: str) -> bool:
        """Free a workload's GPUs (scheduler, slot map, allocation rows); True when it held any."""
        if self.scheduler.allocation(row.id) is None:
            return False
        self.scheduler.release(row.id)
        self._release_rows(session, row, reason)
        return True

    def _release_rows(self, session: Session, row: WorkloadRow, reason: str) -> None:
        """Free what the store and the slot maps hold for a workload the scheduler has already released."""
        share = self.workload_share.pop(row.id, None)
        if share is not None:
            node, sched_slot, physical, milli = share
            self.slot_share_milli[node, physical] -= milli
            if self.scheduler.share_used_milli[node, sched_slot] == 0:
                self.share_physical.pop((node, sched_slot), None)
            for share_row in session.scalars(select(GpuShareRow).where(GpuShareRow.workload_id == row.id)):
                session.delete(share_row)
        self.workload_tenant.pop(row.id, None)
        self.workload_tokens_per_s.pop(row.id, None)
        allocations = list(
            session.scalars(select(GpuAllocationRow).where(GpuAllocationRow.workload_id == row.id))
        )
        for allocation in allocations:
            self.slot_used[allocation.node_id, allocation.slot] = False
            session.delete(allocation)
        now = utc_now()
        for placement in session.scalars(
            select(PlacementRow).where(PlacementRow.workload_id == row.id, PlacementRow.released_at.is_(None))
        ):
            placement.released_at = now
            placement.release_reason = reason
        session.flush()

    def _process_queue(self, session: Session, principal: Principal) -> list[str]:
        """Try the queue in order (priority, then age) and place what fits now."""
        placed = []
        queued = session.execute(
            select(WorkloadRow, TenantRow.name)
            .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
            .where(WorkloadRow.state == WorkloadState.queued)
            .order_by(WorkloadRow.priority.desc(), WorkloadRow.created_at)
            .limit(QUEUE_ATTEMPTS_PER_PASS)
        ).all()
        free_gpus = int(self.scheduler.free_gpus(Level.site).sum())
        for row, tenant in queued:
            if row.gpus > free_gpus:  # cannot fit anywhere now
                if row.queue_reason.startswith(("requeued", "evicted")) and "waiting" not in row.queue_reason:
                    row.queue_reason += f"; waiting: needs {row.gpus} GPUs, {free_gpus} free"
                continue
            if self._try_place(session, row, tenant):
                free_gpus -= row.gpus
                placed.append(row.id)
                self._audit(
                    session,
                    principal,
                    "workload.place",
                    f"workload/{row.id}",
                    {"state": "queued"},
                    _workload_facts(row),
                    tenant_id=row.tenant_id,
                )
        return placed

    def _active_placements(self, session: Session, workload_ids: list[str]) -> dict[str, PlacementRow]:
        if not workload_ids:
            return {}
        rows = session.scalars(
            select(PlacementRow).where(
                PlacementRow.workload_id.in_(workload_ids), PlacementRow.released_at.is_(None)
            )
        )
        return {row.workload_id: row for row in rows}

    def _workload_public(
        self, session: Session, row: WorkloadRow, tenant: str, placement: PlacementRow | None | bool = False
    ) -> s.WorkloadPublic:
        if placement is False:
            placement = self._active_placements(session, [row.id]).get(row.id)
        placement_public = None
        if placement is not None:
            racks = sorted({int(self.node_rack[n]) for n in placement.node_ids})
            share = self.workload_share.get(row.id) if row.kind == WorkloadKind.small else None
            placement_public = s.PlacementPublic(
                node_ids=placement.node_ids,
                gpus_per_node=placement.gpus_per_node,
                gpus=placement.gpus,
                gpu_fraction=float(row.spec.get("gpu_fraction") or 0.0) if row.kind == WorkloadKind.small else 0.0,
                gpu_slot=share[2] if share is not None else None,
                racks=racks,
                placed_at=as_utc(placement.placed_at),
            )
        return s.WorkloadPublic(
            id=row.id,
            name=row.name,
            tenant=tenant,
            kind=row.kind,
            gpus=row.gpus,
            replicas=int(row.spec.get("replicas", 1)),
            priority=row.priority,
            on_failure=row.on_failure,
            state=row.state,
            queue_reason=row.queue_reason,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
            placement=placement_public,
            spec=row.spec,
        )

    def _gpu_equivalents(self, tenant: str) -> float:
        """GPUs a tenant holds, a share counting its fraction (what its quota is checked against)."""
        return self.scheduler.quotas.used_milli.get(tenant, 0) / MILLI_PER_GPU

    def _tenant_public(self, session: Session, row: TenantRow) -> s.TenantPublic:
        active = session.scalar(
            select(func.count())
            .select_from(WorkloadRow)
            .where(WorkloadRow.tenant_id == row.id, WorkloadRow.state.in_(list(ACTIVE_STATES)))
        )
        return s.TenantPublic(
            name=row.name,
            quota_gpus=row.quota_gpus,
            allowed_sites=row.allowed_sites,
            allowed_halls=row.allowed_halls,
            gpus_allocated=self.scheduler.used_gpus_by_tenant().get(row.name, 0),
            gpu_equivalents_allocated=self._gpu_equivalents(row.name),
            workloads_active=int(active or 0),
            created_at=as_utc(row.created_at),
        )

    def _audit(
        self,
        session: Session,
        principal: Principal,
        action: str,
        target: str,
        before: dict | None,
        after: dict | None,
        tenant_id: int | None = None,
    ) -> None:
        session.add(
            AuditRow(
                actor=principal.actor,
                action=action,
                target=target,
                before=before,
                after=after,
                tenant_id=tenant_id if tenant_id is not None else principal.tenant_id,
                at=utc_now(),
            )
        )

    def _sample(self, session: Session) -> None:
        tokens = sum(self.workload_tokens_per_s.values())
        session.add(
            TelemetryRow(
                at=utc_now(),
                draw_kw=round(self.facility_draw_kw(), 3),
                cap_kw=self.power_cap_kw,
                gpus_allocated=int(self.fleet.n_gpus - self.fleet.node_free_gpus.sum()),
                tokens_per_s=tokens,
            )
        )


_NO_TOKEN_SHA256 = "0" * 64
_HEALTH_NAME = {
    HEALTH_OK: "ok",
    HEALTH_CORDONED: "cordoned",
    HEALTH_DRAINING: "draining",
    HEALTH_FAILED: "failed",
}


def _require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("this needs an operator token")


def _tokens_per_s(row: WorkloadRow) -> float:
    if row.kind != "inference":
        return 0.0
    per_gpu = row.spec.get("tokens_per_s_per_gpu")
    return float(row.gpus) * float(DEFAULT_TOKENS_PER_S_PER_GPU if per_gpu is None else per_gpu)


def _workload_facts(row: WorkloadRow) -> dict[str, Any]:
    return {"state": row.state, "gpus": row.gpus, "queue_reason": row.queue_reason}


def _tenant_facts(row: TenantRow) -> dict[str, Any]:
    return {
        "quota_gpus": row.quota_gpus,
        "allowed_sites": row.allowed_sites,
        "allowed_halls": row.allowed_halls,
    }


def _token_public(row: ApiTokenRow, tenant: str | None) -> s.TokenPublic:
    return s.TokenPublic(
        id=row.id,
        name=row.name,
        role=row.role,
        tenant=tenant,
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at),
        revoked_at=as_utc(row.revoked_at),
    )


def _escape_label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _share_slot(scheduler: Scheduler, request_id: str) -> int:
    """The scheduler's shared-GPU slot of a placed fractional request."""
    return int(scheduler._allocations[request_id].share_slot)
