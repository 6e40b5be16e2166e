"""The topology-aware scheduler: places requests on a `Fleet` and keeps its allocation state.

The twin and the control plane share this code. State lives in arrays (see `tokenfab.sched.state`):
free GPUs per node / NVLink domain / rack / SU / hall / site on healthy nodes, CPU and memory free per
node, the milli-GPU used on each shared GPU, and per domain the number of allocations on it and the
exclusive tenant that owns it. A placement is found from these counts with numpy (see
`tokenfab.sched.policies` for the policies' equations), never by walking Python objects per GPU, and
state is updated in O(nodes touched).

Kinds of request:

- whole-GPU gang (``gpus`` ≥ 1): all or nothing; ``slice_gpus`` s splits it into N/s slices each inside
  one NVLink domain (an inference replica is one slice of its TP×EP size); ``whole_domains`` takes
  NVLink domains whole (the gang is rounded up to whole domains and holds all their GPUs);
  ``level`` keeps the gang inside one domain / rack / SU / hall / site, required or only preferred.
- small request (0 < ``gpu_fraction`` < 1, with ``cpu_cores`` and ``memory_gb``): a share of one GPU on
  one node; a GPU in fractional use is never given whole. ``gpus = 0`` with no fraction asks for CPU and
  memory only.

CPU and memory are tracked for small requests; whole-GPU requests are assumed to take their GPUs'
share of the host and do not draw on the per-node CPU/memory pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tokenfab.fleet import HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, NO_TENANT, Fleet
from tokenfab.sched import preemption
from tokenfab.sched.policies import PlacementPolicy, get_policy
from tokenfab.sched.quota import Quotas, Residency, exclusivity_mask
from tokenfab.sched.search import Found, PlacementSearch
from tokenfab.sched.state import FreeCounts, Topology, recount
from tokenfab.sched.types import Eviction, Level, Placement, Policy, Request, Unplaceable
from tokenfab.units import MILLI_PER_GPU

__all__ = ["Allocation", "Eviction", "Scheduler", "Trial"]

_SHORT = 256
"""Up to this many nodes, a placement's GPUs are summed in Python rather than with numpy."""


@dataclass
class Allocation:
    """What the scheduler holds for one placed request (enough to undo it exactly)."""

    request: Request
    tenant_code: int
    placement: Placement
    domains: np.ndarray
    milli: int
    """GPU-equivalents charged to the tenant [milli-GPU]."""
    share_slot: int = -1
    """Shared-GPU slot on ``placement.nodes[0]`` for a fractional request (-1: none)."""
    share_milli: int = 0
    sequence: int = 0
    placed_at_s: float | None = None
    per_domain: np.ndarray | None = None
    """Whole GPUs taken from each of ``domains``."""
    gpus_as_stored: np.ndarray | None = None
    """``placement.gpus_per_node`` in the dtype of ``fleet.node_free_gpus``."""
    one_node: int = -1
    """The node, when whole GPUs are taken on exactly one node (the common small case)."""
    total_gpus: int = 0
    domain_list: list[int] = field(default_factory=list)
    """``domains`` as Python ints."""
    minus_gpus: np.ndarray | None = None
    minus_per_domain: np.ndarray | None = None
    """``−gpus_per_node`` and ``−per_domain`` (what taking the placement adds to the free counts)."""


@dataclass
class Trial:
    """Allocations released on trial (`release`), put back (`put_back`), and every one still released
    put back, last released first, when the trial ends: the state after equals the state before.
    Used by `tokenfab.sched.preemption` to test victim sets with `fits`."""

    _apply: Callable[[Allocation, int], None]
    _find: Callable[[Request], Found | str]
    released: list[Allocation] = field(default_factory=list)

    def release(self, held: Allocation) -> None:
        self._apply(held, -1)
        self.released.append(held)

    def put_back(self, held: Allocation) -> None:
        self._apply(held, +1)
        index = next(i for i, other in enumerate(self.released) if other is held)
        del self.released[index]

    def fits(self, request: Request) -> bool:
        """Whether ``request`` has a placement on the state as it is now."""
        return not isinstance(self._find(request), str)

    def __enter__(self) -> Trial:
        return self

    def __exit__(self, *exc: object) -> None:
        for held in reversed(self.released):
            self._apply(held, +1)
        self.released.clear()


class Scheduler:
    """Places requests on ``fleet`` with one policy, mutating the fleet's state arrays.

    Parameters
    ----------
    fleet : Fleet
        The fleet whose ``node_free_gpus``, ``node_health`` and ``domain_tenant`` this scheduler owns.
    policy : Policy or str
        One of `tokenfab.sched.policies.POLICIES`.
    quotas_gpus : dict, optional
        Maximum GPUs per tenant (GPU-equivalents: a fractional request counts its share).
    tenant_residency : dict, optional
        Per tenant, ``(allowed_sites, allowed_halls)`` (None: unrestricted), intersected with each
        request's own ``allowed_sites`` / ``allowed_halls``.
    preempt_within_tenant : bool
        A preempting request may evict only its own tenant's work (the control plane's rule); else any
        tenant's lower-priority preemptible work (the twin's).
    """

    def __init__(
        self,
        fleet: Fleet,
        policy: Policy | str = Policy.topology_packing,
        quotas_gpus: dict[str, int] | None = None,
        tenant_residency: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] | None = None,
        preempt_within_tenant: bool = False,
    ):
        self.fleet = fleet
        self.policy: PlacementPolicy = get_policy(policy)
        self.topology = Topology.of(fleet)
        self.free: FreeCounts = recount(fleet, self.topology)
        self.node_cpu_free = fleet.node_cpu_cores.astype(np.float64).copy()
        self.node_memory_free_gb = fleet.node_memory_gb.astype(np.float64).copy()
        self.share_used_milli = np.zeros((fleet.n_nodes, max(1, self.topology.max_node_gpus)), dtype=np.int32)
        self.node_shared_gpus = np.zeros(fleet.n_nodes, dtype=np.int32)
        self.domain_pieces = np.zeros(fleet.n_domains, dtype=np.int32)
        self._domain_gpus = fleet.domain_gpus.astype(np.int64)
        self._owned_domains = int((fleet.domain_tenant != NO_TENANT).sum())
        self._n_gpus = fleet.n_gpus
        self._unhealthy_nodes = int((fleet.node_health != HEALTH_OK).sum())
        self.quotas = Quotas(quotas_gpus)
        self.residency = Residency(
            self.topology.domain_parent[Level.site], self.topology.domain_parent[Level.hall], tenant_residency
        )
        self._tenant_codes: dict[str, int] = {}
        self._allocations: dict[str, Allocation] = {}
        self._domain_requests: list[set[str]] = [set() for _ in range(fleet.n_domains)]
        """Ids of the requests with GPUs (or a share, or CPU) in each domain."""
        self._sequence = 0
        self._preemptible: dict[tuple[str, int], int] = {}
        """Placed preemptible requests per (tenant, priority): whether any could be evicted, at a glance."""
        self.preempt_within_tenant = preempt_within_tenant
        self.search = PlacementSearch(self)

    # ------------------------------------------------------------------ queries

    def allocation(self, request_id: str) -> Placement | None:
        held = self._allocations.get(request_id)
        return None if held is None else held.placement

    def allocations(self) -> dict[str, Placement]:
        return {rid: a.placement for rid, a in self._allocations.items()}

    def request_of(self, request_id: str) -> Request | None:
        held = self._allocations.get(request_id)
        return None if held is None else held.request

    def domain_of_request(self, request_id: str) -> np.ndarray:
        """The NVLink domains (ascending ids) a placed request uses; empty if it is not placed."""
        held = self._allocations.get(request_id)
        return np.zeros(0, dtype=np.int64) if held is None else held.domains.copy()

    def free_gpus(self, level: Level | str) -> np.ndarray:
        """Free GPUs (healthy nodes, not allocated, not shared) per element of ``level``; a read-only view."""
        view = self.free.of(Level(level)).view()
        view.flags.writeable = False
        return view

    def fragmentation(self) -> float:
        """Share of free GPUs that a whole-domain request cannot use.

        ``F = Σ_d free_d·[free_d < size_d] / Σ_d free_d`` — the free GPUs that sit in NVLink domains that
        are partly used (or partly unhealthy), over all free GPUs; 0 when nothing is free.
        """
        free = self.free.domain
        total = int(free.sum())
        if total == 0:
            return 0.0
        partial = int(free[free < self._domain_gpus].sum())
        return partial / total

    def whole_free_domains(self, level: Level | str = Level.domain) -> np.ndarray:
        """Whole-free NVLink domains per element of ``level`` (per domain: 1 or 0)."""
        whole: np.ndarray = (self.free.domain == self._domain_gpus).astype(np.int64)
        level = Level(level)
        if level == Level.domain:
            return whole
        per_element: np.ndarray = np.bincount(
            self.topology.domain_parent[level], weights=whole, minlength=self.topology.level_size[level]
        ).astype(np.int64)
        return per_element

    def used_gpus_by_tenant(self) -> dict[str, int]:
        return self.quotas.used_gpus()

    def gpu_equivalents(self, tenant: str) -> float:
        """GPUs ``tenant`` holds, a share counting its fraction (what its quota is checked against)."""
        return self.quotas.used_milli.get(tenant, 0) / MILLI_PER_GPU

    def tenant_names(self) -> list[str]:
        """Tenant names by the code ``fleet.domain_tenant`` holds (index = code)."""
        return list(self._tenant_codes)

    def has_victims_for(self, request: Request) -> bool:
        """Whether any placed request is preemptible at a lower priority than ``request`` (of its tenant,
        when preemption stays within a tenant): without one, no eviction plan needs to be searched."""
        return any(
            priority < request.priority and (not self.preempt_within_tenant or tenant == request.tenant)
            for tenant, priority in self._preemptible
        )

    def held(self) -> list[Allocation]:
        """Every allocation, in placement order of the dictionary (for `tokenfab.sched.preemption`)."""
        return list(self._allocations.values())

    def trial(self) -> Trial:
        """A trial on this state: allocations released in it are all put back when it ends."""
        return Trial(self._apply, self.search.find)

    # ------------------------------------------------------------------ tenant rules

    def set_quota(self, tenant: str, quota_gpus: int | None) -> None:
        """Set (or lift, with None) ``tenant``'s quota [GPU-equivalents]; placed work is not touched."""
        if quota_gpus is None:
            self.quotas.quotas_gpus.pop(tenant, None)
        else:
            self.quotas.quotas_gpus[tenant] = quota_gpus

    def quotas_gpus(self) -> dict[str, int]:
        """Every tenant's quota [GPU-equivalents] (a copy)."""
        return dict(self.quotas.quotas_gpus)

    # ------------------------------------------------------------------ place / release

    def place(
        self, request: Request, allow_preemption: bool = False, now_s: float | None = None
    ) -> Placement | Unplaceable:
        """Place ``request`` all-or-nothing, or say why not.

        With ``allow_preemption``, lower-priority preemptible allocations may be evicted (the cheapest set
        found, see `tokenfab.sched.preemption`); the placement carries that ``eviction`` (its victims are
        ``Placement.evicted``). ``now_s`` stamps the allocation (used to count the work an eviction loses).
        """
        if request.id in self._allocations:
            return Unplaceable(request.id, f"request {request.id} is already placed")
        problem = self._invalid(request)
        if problem:
            return Unplaceable(request.id, problem)
        milli = self._charge_milli(request, self.topology.max_domain_gpus)
        refusal = self.quotas.refusal(request.tenant, milli)
        if refusal:
            return Unplaceable(request.id, refusal)
        found = self.search.find(request)
        eviction = None
        if isinstance(found, str) and allow_preemption and self.has_victims_for(request):
            eviction = preemption.plan(self, request, now_s)
            if eviction is not None:
                for victim in eviction.victims:
                    self.release(victim)
                retry = self.search.find(request)
                if isinstance(retry, str):  # cannot happen: the plan was checked on this very state
                    raise RuntimeError(f"preemption plan for {request.id} did not free a placement: {retry}")
                found = retry
        if isinstance(found, str):
            return Unplaceable(request.id, found)
        placement = Placement(
            request.id,
            found.nodes,
            found.gpus,
            gpu_fraction=found.share_milli / MILLI_PER_GPU,
            eviction=eviction,
            share_slot=found.share_slot,
        )
        self._sequence += 1
        if request.whole_domains:
            milli = sum(found.gpus.tolist()) * MILLI_PER_GPU
        held = Allocation(
            request,
            self._tenant_code(request.tenant),
            placement,
            found.domains,
            milli,
            found.share_slot,
            found.share_milli,
            self._sequence,
            now_s,
            per_domain=found.per_domain,
        )
        self._prepare(held)
        self._apply(held, +1)
        return placement

    def restore(self, request: Request, placement: Placement, now_s: float | None = None) -> None:
        """Re-apply a placement made earlier (e.g. read back from a store) without searching.

        Fractional placements are re-applied onto the first shared slot of their node that has room.
        """
        nodes = np.asarray(placement.nodes, dtype=np.int64)
        gpus = np.asarray(placement.gpus_per_node, dtype=np.int64)
        share_milli = int(round((placement.gpu_fraction or request.gpu_fraction) * MILLI_PER_GPU))
        slot = -1
        if share_milli:
            node = int(nodes[0])
            used = self.share_used_milli[node]
            fits = np.flatnonzero((used > 0) & (used + share_milli <= MILLI_PER_GPU))
            slot = int(fits[0]) if len(fits) else int(np.flatnonzero(used == 0)[0])
        self._sequence += 1
        fixed = Placement(
            placement.request_id, nodes, gpus, share_milli / MILLI_PER_GPU, placement.eviction, slot
        )
        milli = int(gpus.sum()) * MILLI_PER_GPU if not share_milli else share_milli
        held = Allocation(
            request,
            self._tenant_code(request.tenant),
            fixed,
            np.unique(self.fleet.node_domain[nodes]).astype(np.int64),
            milli,
            slot,
            share_milli,
            self._sequence,
            now_s,
        )
        self._prepare(held)
        self._apply(held, +1)

    def release(self, request_id: str) -> None:
        """Give back everything ``request_id`` holds; releasing an unknown id does nothing."""
        held = self._allocations.get(request_id)
        if held is not None:
            self._apply(held, -1)

    def set_health(self, nodes: np.ndarray | list[int], health: int) -> list[str]:
        """Set the health of ``nodes``; return the ids of requests running on nodes that became FAILED or
        DRAINING (in placement order). Free counts drop the GPUs of nodes that stop being OK."""
        nodes = np.unique(np.asarray(nodes, dtype=np.int64))
        if not len(nodes):
            return []
        if nodes[0] < 0 or nodes[-1] >= self.fleet.n_nodes:
            raise ValueError(f"node ids must be in [0, {self.fleet.n_nodes}), got {nodes[0]}..{nodes[-1]}")
        old = self.fleet.node_health[nodes].copy()
        was_ok = old == HEALTH_OK
        now_ok = health == HEALTH_OK
        changed = nodes[was_ok != now_ok]
        self.fleet.node_health[nodes] = health
        self._unhealthy_nodes = int((self.fleet.node_health != HEALTH_OK).sum())
        if len(changed):
            raw_free = self.fleet.node_free_gpus[changed].astype(np.int64)
            sign = 1 if now_ok else -1
            moving = raw_free > 0
            if moving.any():
                self.free.shift(
                    self.topology, self.fleet.node_domain, changed[moving], sign * raw_free[moving]
                )
        if health not in (HEALTH_FAILED, HEALTH_DRAINING):
            return []
        became_nodes = nodes[old != health]
        became = np.zeros(self.fleet.n_nodes, dtype=bool)
        became[became_nodes] = True
        candidates: set[str] = set()
        for domain in np.unique(self.fleet.node_domain[became_nodes]).tolist():
            candidates |= self._domain_requests[domain]
        hit = [
            self._allocations[rid]
            for rid in candidates
            if became[self._allocations[rid].placement.nodes].any()
        ]
        return [held.request.id for held in sorted(hit, key=lambda h: h.sequence)]

    # ------------------------------------------------------------------ bookkeeping

    def _tenant_code(self, tenant: str) -> int:
        return self._tenant_codes.setdefault(tenant, len(self._tenant_codes))

    @staticmethod
    def _charge_milli(request: Request, domain_gpus: int = 0) -> int:
        """GPU-equivalents a request holds [milli-GPU]; whole-domain gangs round up to whole domains."""
        if request.gpu_fraction > 0:
            return int(round(request.gpu_fraction * MILLI_PER_GPU))
        if request.whole_domains and domain_gpus:
            return math.ceil(request.gpus / domain_gpus) * domain_gpus * MILLI_PER_GPU
        return request.gpus * MILLI_PER_GPU

    def _prepare(self, held: Allocation) -> None:
        """Precompute what `_apply` needs: GPUs per domain, and GPUs per node in the fleet's dtype."""
        gpus = held.placement.gpus_per_node
        held.domain_list = held.domains.tolist()
        if len(gpus) == 1:
            held.total_gpus = int(gpus[0])
            if held.total_gpus > 0 and held.share_slot < 0:
                held.one_node = int(held.placement.nodes[0])
                return  # `_apply` needs nothing more
        else:
            held.total_gpus = int(np.add.reduce(gpus)) if len(gpus) > _SHORT else sum(gpus.tolist())
        held.gpus_as_stored = gpus.astype(self.fleet.node_free_gpus.dtype)
        held.minus_gpus = -gpus
        if held.per_domain is None and len(held.domain_list) == 1:
            held.per_domain = np.array([held.total_gpus], dtype=np.int64)
        elif held.per_domain is None:
            inverse = np.searchsorted(held.domains, self.fleet.node_domain[held.placement.nodes])
            held.per_domain = np.bincount(inverse, weights=gpus, minlength=len(held.domains)).astype(np.int64)
        held.minus_per_domain = -held.per_domain

    def _apply(self, held: Allocation, sign: int) -> None:
        """Take (sign = +1) or give back (sign = −1) everything ``held`` describes."""
        fleet = self.fleet
        request = held.request
        domains: np.ndarray | None = held.domains
        if held.one_node >= 0:  # whole GPUs on one node: scalar updates
            node, delta = held.one_node, -sign * held.total_gpus
            fleet.node_free_gpus[node] += delta
            if not self._unhealthy_nodes or fleet.node_health[node] == HEALTH_OK:
                self.free.node[node] += delta
                self.free._shift_domain(self.topology, held.domain_list[0], delta)
        elif held.share_slot < 0 and request.gpus > 0:  # whole GPUs on every node of the placement
            nodes, gpus = held.placement.nodes, held.placement.gpus_per_node
            if sign > 0:
                fleet.node_free_gpus[nodes] -= held.gpus_as_stored
            else:
                fleet.node_free_gpus[nodes] += held.gpus_as_stored
            per_domain = held.per_domain
            if sign > 0:
                assert held.minus_gpus is not None  # set by `_prepare` for every multi-node placement
                gpus, per_domain = held.minus_gpus, held.minus_per_domain
            if self._unhealthy_nodes:
                healthy = fleet.node_health[nodes] == HEALTH_OK
                if not healthy.all():
                    nodes, gpus, per_domain = nodes[healthy], gpus[healthy], None
                    domains = None
            if len(nodes):
                self.free.shift(self.topology, fleet.node_domain, nodes, gpus, domains, per_domain)
        else:
            node = int(held.placement.nodes[0])
            self.node_cpu_free[node] -= sign * request.cpu_cores
            self.node_memory_free_gb[node] -= sign * request.memory_gb
            if held.share_slot >= 0:
                self._share(node, held.share_slot, sign * held.share_milli)
        domains = held.domains
        domain_list = held.domain_list
        if len(domain_list) == 1:
            self.domain_pieces[domain_list[0]] += sign
        else:
            self.domain_pieces[domains] += sign
        domain_requests = self._domain_requests
        if sign > 0:
            for domain in domain_list:
                domain_requests[domain].add(request.id)
        else:
            for domain in domain_list:
                domain_requests[domain].discard(request.id)
        if sign > 0:
            if request.exclusive_domains:
                newly = domains[fleet.domain_tenant[domains] == NO_TENANT]
                fleet.domain_tenant[newly] = held.tenant_code
                self._owned_domains += len(newly)
            self._allocations[request.id] = held
        else:
            if self._owned_domains:
                emptied = domains[
                    (self.domain_pieces[domains] == 0) & (fleet.domain_tenant[domains] != NO_TENANT)
                ]
                fleet.domain_tenant[emptied] = NO_TENANT
                self._owned_domains -= len(emptied)
            del self._allocations[request.id]
        self.quotas.add(request.tenant, sign * held.milli)
        if request.preemptible:
            key = (request.tenant, request.priority)
            left = self._preemptible.get(key, 0) + sign
            if left:
                self._preemptible[key] = left
            else:
                self._preemptible.pop(key, None)

    def _share(self, node: int, slot: int, delta_milli: int) -> None:
        """Change the milli-GPU used on shared GPU ``slot`` of ``node``; a GPU enters or leaves the shared
        pool (and the whole-GPU free counts) when its use leaves or returns to 0."""
        before = int(self.share_used_milli[node, slot])
        after = before + delta_milli
        self.share_used_milli[node, slot] = after
        one = np.ones(1, dtype=np.int64)
        node_array = np.asarray([node], dtype=np.int64)
        if before == 0 and after > 0:
            self.node_shared_gpus[node] += 1
            self.fleet.node_free_gpus[node] -= 1
            if self.fleet.node_health[node] == HEALTH_OK:
                self.free.shift(self.topology, self.fleet.node_domain, node_array, -one)
        elif before > 0 and after == 0:
            self.node_shared_gpus[node] -= 1
            self.fleet.node_free_gpus[node] += 1
            if self.fleet.node_health[node] == HEALTH_OK:
                self.free.shift(self.topology, self.fleet.node_domain, node_array, one)

    # ------------------------------------------------------------------ validation

    def _invalid(self, request: Request) -> str | None:
        top = self.topology
        if request.gpus < 0:
            return f"gpus must be ≥ 0, got {request.gpus}"
        if not 0.0 <= request.gpu_fraction < 1.0:
            return f"gpu_fraction must be in [0, 1), got {request.gpu_fraction}"
        if request.cpu_cores < 0 or request.memory_gb < 0:
            return "cpu_cores and memory_gb must be ≥ 0"
        if request.gpu_fraction > 0:
            if request.gpus > 1:
                return f"a fractional request asks for a share of one GPU, not {request.gpus} GPUs"
            if int(round(request.gpu_fraction * MILLI_PER_GPU)) == 0:
                return f"gpu_fraction {request.gpu_fraction} is below 1/{MILLI_PER_GPU} GPU"
            return None
        if request.gpus == 0:
            if request.cpu_cores == 0 and request.memory_gb == 0:
                return "the request asks for no GPU, CPU or memory"
            return None
        if request.slice_gpus < 0:
            return f"slice_gpus must be ≥ 0, got {request.slice_gpus}"
        if request.slice_gpus:
            if request.slice_gpus > top.max_domain_gpus:
                return (
                    f"a slice of {request.slice_gpus} GPUs does not fit one NVLink domain "
                    f"(largest has {top.max_domain_gpus} GPUs)"
                )
            if request.gpus % request.slice_gpus:
                return f"gpus ({request.gpus}) must be a multiple of slice_gpus ({request.slice_gpus})"
        if request.gpus > self._n_gpus:
            return f"needs {request.gpus} GPUs; the fleet has {self._n_gpus}"
        return None

    # ------------------------------------------------------------------ search

    def domain_mask(self, request: Request) -> np.ndarray | None:
        """Domains the request may use (tenant residency, request residency, isolation); None: all."""
        if (
            not request.exclusive_domains
            and not self._owned_domains
            and request.allowed_sites is None
            and request.allowed_halls is None
            and request.allowed_domains is None
            and request.tenant not in self.residency.tenant_residency
        ):
            return None
        sites, halls = self.residency.allowed(request.tenant, request.allowed_sites, request.allowed_halls)
        mask = self.residency.domain_mask(sites, halls)
        if request.exclusive_domains or self._owned_domains:
            isolation = exclusivity_mask(
                self.fleet.domain_tenant,
                self.domain_pieces,
                self._tenant_code(request.tenant),
                request.exclusive_domains,
            )
            if isolation is not None:
                mask = isolation if mask is None else mask & isolation
        if request.allowed_domains is not None:
            inside = np.zeros(self.fleet.n_domains, dtype=bool)
            inside[list(request.allowed_domains)] = True
            mask = inside if mask is None else mask & inside
        return mask
