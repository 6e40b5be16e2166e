"""The control plane's in-memory picture of the factory, rebuilt from the store when in doubt.

It holds the fleet (from the design), the scheduler over it, a map of physical GPU slots mirroring the
scheduler's counts (which slot of which node each workload holds, whole or shared), the residency and
quota of every tenant, and the facility power cap. The store stays the truth: `FactoryMemory.rebuild`
replays every active placement from it, on start and after a failed write.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.control.service.holds import EnvironmentHolds
from tokenfab.control.store import (
    ENV_HOLDING_STATES,
    EnvironmentRow,
    GpuAllocationRow,
    GpuShareRow,
    Meta,
    NodeRow,
    PlacementRow,
    TenantRow,
    WorkloadRow,
)
from tokenfab.fleet import HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, Health, from_design
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Placement, Policy, Request, WorkloadKind
from tokenfab.twin import power
from tokenfab.twin.facility import facility_figures
from tokenfab.twin.workload import PowerSpec
from tokenfab.units import MILLI_PER_GPU

DEFAULT_TOKENS_PER_S_PER_GPU = 1000.0
"""estimate: served tokens per second per GPU of an inference workload that does not state its own."""


def tokens_per_s(row: WorkloadRow) -> float:
    """Tokens per second an inference workload serves (0 for other kinds): GPUs × per-GPU rate."""
    if row.kind != "inference":
        return 0.0
    per_gpu = row.spec.get("tokens_per_s_per_gpu")
    return float(row.gpus) * float(DEFAULT_TOKENS_PER_S_PER_GPU if per_gpu is None else per_gpu)


class FactoryMemory:
    """Fleet, scheduler, GPU slot map, tenants' residency and the power cap of one factory."""

    def __init__(self, design: Design, catalog: Catalog):
        self.design = design
        self.figures = facility_figures(design, catalog)
        """The design reduced to what the facility power model needs (the twin's figures)."""
        self.busy_gpu_power_w = PowerSpec().training_power_fraction * self.figures.gpu_tdp_w
        """Board power of an allocated GPU [W]: the twin's default uncapped training draw."""
        self.fleet = fleet = from_design(design)
        self.node_rack = fleet.node_rack
        self.node_hall = fleet.node_hall
        self.node_site = fleet.node_site
        self.rack_hall = fleet.su_hall[fleet.rack_su]
        self.rack_site = fleet.hall_site[self.rack_hall]
        self.rack_gpus = np.bincount(self.node_rack, weights=fleet.node_gpus, minlength=fleet.n_racks).astype(
            int
        )
        self.max_domain_gpus = int(fleet.domain_gpus.max()) if fleet.n_domains else 0
        self.n_gpus = fleet.n_gpus
        """GPUs installed (fixed; `Fleet.n_gpus` sums them on every call)."""
        self.reset()

    def reset(self) -> None:
        """An empty factory: every GPU free, every node healthy, no tenant known, no cap."""
        fleet = self.fleet
        fleet.node_free_gpus[:] = fleet.node_gpus
        fleet.node_health[:] = HEALTH_OK
        fleet.domain_tenant[:] = -1
        self.scheduler = Scheduler(fleet, Policy.topology_packing, preempt_within_tenant=True)
        self.environments = EnvironmentHolds(fleet, self.scheduler)
        """Tenant environments' NVLink domain holds (see `tokenfab.control.service.holds`)."""
        self.residency: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = {}
        self.slot_used = np.zeros((fleet.n_nodes, int(fleet.node_gpus.max())), dtype=bool)
        """Physical GPU slots held whole by a workload."""
        self.slot_share_milli = np.zeros(self.slot_used.shape, dtype=np.int32)
        """milli-GPU held on each physical GPU slot by small workloads (0: not shared)."""
        self.share_physical: dict[tuple[int, int], int] = {}
        """(node, the scheduler's share slot) → the physical GPU slot it stands for."""
        self.workload_share: dict[str, tuple[int, int, int, int]] = {}
        """small workload → (node, scheduler share slot, physical slot, milli-GPU)."""
        self.workload_tenant: dict[str, str] = {}
        self.workload_tokens_per_s: dict[str, float] = {}
        self._tokens_per_s_total = 0.0
        self.tenant_ids: dict[str, int] = {}
        """tenant name → its id in the store (names never change)."""
        self.next_placement_id = 1
        """The id the next placement row gets (the writer alone inserts placements; see `pending`)."""
        self.power_cap_kw: float | None = None

    # ------------------------------------------------------------------ rebuild from the store

    def rebuild(self, session: Session) -> None:
        """Reset, then replay the store: node health, tenants, the power cap and every active placement."""
        self.reset()
        unhealthy: dict[str, list[int]] = {}
        for node_id, health in session.execute(
            select(NodeRow.id, NodeRow.health).where(NodeRow.health != Health.ok.name)
        ):
            unhealthy.setdefault(health, []).append(node_id)
        for health, nodes in unhealthy.items():
            self.scheduler.set_health(nodes, Health[health].value)
        for tenant in session.scalars(select(TenantRow)):
            self.remember_tenant(tenant)
        self.next_placement_id = (session.scalar(select(func.max(PlacementRow.id))) or 0) + 1
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
            self.scheduler.restore(self.request(workload, tenant_name, session), placement)
            self.note_placed(workload, tenant_name)
        for node_id, slot in session.execute(select(GpuAllocationRow.node_id, GpuAllocationRow.slot)):
            self.slot_used[node_id, slot] = True
        self._restore_shares(session)
        self._restore_environments(session)

    def _restore_environments(self, session: Session) -> None:
        """Hold every environment's domains again (after its workloads: the holds take what is left)."""
        rows = session.execute(
            select(EnvironmentRow, TenantRow.name)
            .join(TenantRow, EnvironmentRow.tenant_id == TenantRow.id)
            .where(EnvironmentRow.state.in_([str(s) for s in ENV_HOLDING_STATES]))
            .order_by(EnvironmentRow.created_at)
        )
        for env, tenant_name in rows:
            adding = (
                (env.intent or {}).get("target", {}).get("domains", [])
            )  # a scale-up in flight holds those too
            self.environments.hold(
                env.id, tenant_name, list(env.domains) + [d for d in adding if d not in env.domains]
            )
            self.note_environment(env.id, tenant_name)

    def note_environment(self, env_id: str, tenant_name: str) -> None:
        """Let the views attribute an environment's holds to its tenant."""
        for domain in self.environments.domains_of(env_id):
            self.workload_tenant[f"{env_id}:d{domain}"] = tenant_name

    def _restore_shares(self, session: Session) -> None:
        """Put the small workloads back so that the scheduler's shared GPUs are the stored physical ones.

        The scheduler's `restore` puts a share on the first shared GPU of its node with room, which could
        merge two physical GPUs' shares into one. So the shares of each physical GPU are restored
        together, while every other shared GPU of that node is topped up to a whole GPU by a temporary
        filler allocation (released right after): the group must open a GPU of its own.
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
            fillers = self._fill_open_shares(node)
            for share, workload, tenant_name in members:
                request = self.request(workload, tenant_name, session)
                self.scheduler.restore(
                    request,
                    Placement(
                        workload.id,
                        np.asarray([node]),
                        np.zeros(1, dtype=np.int64),
                        share.milli / MILLI_PER_GPU,
                    ),
                )
                sched_slot = self.share_slot(workload.id)
                self.share_physical[(node, sched_slot)] = physical
                self.workload_share[workload.id] = (node, sched_slot, physical, share.milli)
                self.slot_share_milli[node, physical] += share.milli
                self.note_placed(workload, tenant_name)
            for filler_id in fillers:
                self.scheduler.release(filler_id)

    def _fill_open_shares(self, node: int) -> list[str]:
        """Top every partly shared GPU of ``node`` up to a whole GPU with a filler; the fillers' ids."""
        fillers = []
        used = self.scheduler.share_used_milli[node]
        for sched_slot in np.flatnonzero((used > 0) & (used < MILLI_PER_GPU)).tolist():
            room = MILLI_PER_GPU - int(used[sched_slot])
            filler = Request(
                id=f"filler-{node}-{sched_slot}", gpus=0, tenant="", gpu_fraction=room / MILLI_PER_GPU
            )
            self.scheduler.restore(
                filler,
                Placement(filler.id, np.asarray([node]), np.zeros(1, dtype=np.int64), room / MILLI_PER_GPU),
            )
            fillers.append(filler.id)
        return fillers

    # ------------------------------------------------------------------ tenants

    def remember_tenant(self, tenant: TenantRow) -> None:
        """Keep the scheduler's quota and the residency its requests carry in step with the store."""
        self.scheduler.set_quota(tenant.name, tenant.quota_gpus)
        self.tenant_ids[tenant.name] = tenant.id
        self.residency[tenant.name] = (
            tuple(tenant.allowed_sites) if tenant.allowed_sites is not None else None,
            tuple(tenant.allowed_halls) if tenant.allowed_halls is not None else None,
        )

    def gpu_equivalents(self, tenant: str) -> float:
        """GPUs a tenant holds, a share counting its fraction (what its quota is checked against)."""
        return self.scheduler.gpu_equivalents(tenant)

    def request(self, row: WorkloadRow, tenant_name: str, session: Session) -> Request:
        """The scheduler's request for a stored workload, with its tenant's residency."""
        if tenant_name not in self.residency:
            self.remember_tenant(
                session.scalars(select(TenantRow).where(TenantRow.name == tenant_name)).one()
            )
        allowed_sites, allowed_halls = self.residency[tenant_name]
        spec = row.spec
        small = row.kind == "small"
        return Request(
            id=row.id,
            gpus=row.gpus,
            tenant=tenant_name,
            kind=WorkloadKind(row.kind),
            slice_gpus=spec.get("gpus", 0) if row.kind == "inference" else spec.get("slice_gpus", 0),
            whole_domains=bool(spec.get("whole_domains", False)),
            priority=row.priority,
            preemptible=bool(spec.get("preemptible", True)),
            exclusive_domains=True,
            allowed_sites=allowed_sites,
            allowed_halls=allowed_halls,
            allowed_domains=tuple(self.environments.domains_of(spec["environment"]))
            if spec.get("environment")
            else None,
            gpu_fraction=float(spec.get("gpu_fraction") or 0.0) if small else 0.0,
            cpu_cores=float(spec.get("cpu_cores") or 0.0) if small else 0.0,
            memory_gb=float(spec.get("memory_gb") or 0.0) if small else 0.0,
        )

    # ------------------------------------------------------------------ the GPU slot map

    def note_placed(self, row: WorkloadRow, tenant_name: str) -> None:
        self.workload_tenant[row.id] = tenant_name
        rate = tokens_per_s(row)
        self._tokens_per_s_total += rate - self.workload_tokens_per_s.get(row.id, 0.0)
        self.workload_tokens_per_s[row.id] = rate

    def tokens_per_s_total(self) -> float:
        """Tokens per second of every placed workload (kept as a running sum, not recounted)."""
        return self._tokens_per_s_total if self.workload_tokens_per_s else 0.0

    def take_placement_id(self) -> int:
        placement_id = self.next_placement_id
        self.next_placement_id += 1
        return placement_id

    def take_whole_slots_of(self, nodes: np.ndarray, takes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Claim ``takes[i]`` wholly free physical GPU slots of each ``nodes[i]`` at once (the scheduler has
        counted them): the lowest free slots of each node. Returns (node, slot) of every claimed slot."""
        nodes = np.asarray(nodes, dtype=np.int64)
        takes = np.asarray(takes, dtype=np.int64)
        if len(nodes) == 1:  # the common case (a job on one node), without the 2-D work
            node, take = int(nodes[0]), int(takes[0])
            whole_free = ~self.slot_used[node] & (self.slot_share_milli[node] == 0)
            slots = np.flatnonzero(whole_free[: self.fleet.node_gpus[node]])[:take]
            if len(slots) < take:
                raise RuntimeError(f"node {node}: scheduler and slot map disagree on free GPUs")
            self.slot_used[node, slots] = True
            return np.full(take, node, dtype=np.int64), slots
        free = ~self.slot_used[nodes] & (self.slot_share_milli[nodes] == 0)
        free &= np.arange(self.slot_used.shape[1])[None, :] < self.fleet.node_gpus[nodes][:, None]
        chosen = free & (np.cumsum(free, axis=1) <= takes[:, None])
        if not np.array_equal(chosen.sum(axis=1), takes):
            raise RuntimeError("scheduler and slot map disagree on free GPUs")
        rows, slots = np.nonzero(chosen)
        taken_nodes = nodes[rows]
        self.slot_used[taken_nodes, slots] = True
        return taken_nodes, slots

    def share_slot(self, workload_id: str) -> int:
        """The scheduler's share slot of a placed small workload."""
        placement = self.scheduler.allocation(workload_id)
        if placement is None:
            raise RuntimeError(f"workload {workload_id}: placed in the store but not in the scheduler")
        return placement.share_slot

    def take_share(self, workload_id: str, node: int, milli: int) -> int:
        """Map the scheduler's share slot of a placed small workload to a physical GPU slot (returned)."""
        sched_slot = self.share_slot(workload_id)
        physical = self.share_physical.get((node, sched_slot))
        if physical is None:  # the scheduler opened a new shared GPU: take a physical GPU that is wholly free
            free = ~self.slot_used[node] & (self.slot_share_milli[node] == 0)
            candidates = np.flatnonzero(free[: self.fleet.node_gpus[node]])
            if not len(candidates):
                raise RuntimeError(f"node {node}: scheduler and slot map disagree on a shared GPU")
            physical = int(candidates[0])
            self.share_physical[(node, sched_slot)] = physical
        self.slot_share_milli[node, physical] += milli
        self.workload_share[workload_id] = (node, sched_slot, physical, milli)
        return physical

    def forget(self, workload_id: str) -> bool:
        """Drop a released workload's share and bookkeeping (its whole slots are freed with
        `free_slots`); True when it held a share."""
        share = self.workload_share.pop(workload_id, None)
        if share is not None:
            node, sched_slot, physical, milli = share
            self.slot_share_milli[node, physical] -= milli
            if self.scheduler.share_used_milli[node, sched_slot] == 0:
                self.share_physical.pop((node, sched_slot), None)
        self.workload_tenant.pop(workload_id, None)
        self._tokens_per_s_total -= self.workload_tokens_per_s.pop(workload_id, 0.0)
        return share is not None

    def free_slots(self, nodes: np.ndarray, slots: np.ndarray) -> None:
        """Mark whole GPU slots (``nodes[i]``, ``slots[i]``) free."""
        self.slot_used[nodes, slots] = False

    # ------------------------------------------------------------------ power draw

    def it_draw_kw(self, freed_gpus: int = 0) -> float:
        """IT draw from the allocation state [kW], by the one facility power model (`tokenfab.twin.power`):
        allocated GPUs at the uncapped training draw, free GPUs of healthy nodes idle, free GPUs of failed
        or draining nodes down (no idle or host draw), the fabric always on. ``freed_gpus``: the draw if
        that many allocated GPUs of healthy nodes were free."""
        fleet, figures = self.fleet, self.figures
        free = fleet.node_free_gpus
        down_nodes = (fleet.node_health == HEALTH_FAILED) | (fleet.node_health == HEALTH_DRAINING)
        down = int(free[down_nodes].sum()) if down_nodes.any() else 0
        allocated = int(self.n_gpus - free.sum()) - freed_gpus
        idle = self.n_gpus - allocated - down
        it_w = power.it_power_w(
            allocated * self.busy_gpu_power_w,
            idle,
            self.n_gpus - down,
            figures.gpu_idle_w,
            figures.host_w_per_gpu,
        )
        return power.it_power_kw(it_w, figures.fabric_kw)

    def facility_draw_kw(self, freed_gpus: int = 0) -> float:
        """Facility draw [kW]: IT draw × PUE (`tokenfab.twin.power.facility_power_kw`)."""
        return power.facility_power_kw(self.it_draw_kw(freed_gpus), self.figures.pue)

    def gpus_freed_by_release(self, workload_id: str) -> int:
        """Physical GPUs that releasing a placed workload would free: its whole GPUs, or for a small
        workload 1 if it is the only one on its shared GPU (else 0)."""
        share = self.workload_share.get(workload_id)
        if share is not None:
            node, _sched_slot, physical, milli = share
            return int(self.slot_share_milli[node, physical] == milli)
        placement = self.scheduler.allocation(workload_id)
        return 0 if placement is None else placement.gpus
