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
from dataclasses import dataclass

import numpy as np

from tokenfab.fleet import HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, NO_TENANT, Fleet
from tokenfab.sched import preemption
from tokenfab.sched.policies import DomainView, PlacementPolicy, get_policy
from tokenfab.sched.quota import MILLI_PER_GPU, Quotas, Residency, exclusivity_mask
from tokenfab.sched.state import FreeCounts, Topology, recount
from tokenfab.sched.types import Level, Placement, Policy, Request, Unplaceable, WorkloadKind

_BROADER = (Level.domain, Level.rack, Level.su, Level.hall, Level.site)
_IMPLICIT_LEVELS = (Level.domain, Level.su, Level.hall, Level.site, None)
_LEVEL_WORDS = {Level.node: "node", Level.domain: "NVLink domain", Level.rack: "rack", Level.su: "SU",
                Level.hall: "hall", Level.site: "site"}


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
    domain_list: list[int] | None = None
    """``domains`` as Python ints."""
    minus_gpus: np.ndarray | None = None
    minus_per_domain: np.ndarray | None = None
    """``−gpus_per_node`` and ``−per_domain`` (what taking the placement adds to the free counts)."""


@dataclass(frozen=True)
class Eviction:
    """What a preempting placement cost: the evicted requests and the work they lose."""

    request_id: str
    victims: tuple[str, ...]
    gpus_freed: int
    lost_gpu_hours: float
    """Σ over victims of GPUs × hours since placement (GPUs held, i.e. one hour each, without a clock)."""


@dataclass
class _Found:
    nodes: np.ndarray
    gpus: np.ndarray
    domains: np.ndarray
    """Distinct domains of ``nodes``, ascending."""
    share_slot: int = -1
    share_milli: int = 0
    per_domain: np.ndarray | None = None
    """GPUs taken from each of ``domains`` (None: not worked out by the search)."""


@dataclass
class _Ask:
    """A whole-GPU request as the search sees it."""

    request: Request
    need: int
    slice_gpus: int
    whole: bool
    mask: np.ndarray | None
    su_cap: np.ndarray | None = None


_NEVER = np.iinfo(np.int64).max
_SHORT = 256
"""Up to this many candidate domains, first_fit walks them in Python rather than with numpy."""


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
    """

    def __init__(self, fleet: Fleet, policy: Policy | str = Policy.topology_packing,
                 quotas_gpus: dict[str, int] | None = None,
                 tenant_residency: dict[str, tuple[tuple[int, ...] | None, tuple[int, ...] | None]] | None = None):
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
        self._domain_su = self.topology.domain_parent[Level.su]
        self._owned_domains = int((fleet.domain_tenant != NO_TENANT).sum())
        self._n_gpus = fleet.n_gpus
        self._unhealthy_nodes = int((fleet.node_health != HEALTH_OK).sum())
        self._uniform_ranges = self.topology.uniform_domains and self.topology.level_domain_range is not None
        su_hall = fleet.su_hall.astype(np.int64)
        self._su_parent = {Level.su: np.arange(fleet.n_sus), Level.hall: su_hall,
                           Level.site: fleet.hall_site.astype(np.int64)[su_hall]}
        self._slice_weights: dict[int, np.ndarray] = {}
        self._nodes_of_domain: dict[int, np.ndarray] = {}
        self.quotas = Quotas(quotas_gpus)
        self.residency = Residency(self.topology.domain_parent[Level.site], self.topology.domain_parent[Level.hall],
                                   tenant_residency)
        self._tenant_codes: dict[str, int] = {}
        self._allocations: dict[str, Allocation] = {}
        self._domain_requests: list[set[str]] = [set() for _ in range(fleet.n_domains)]
        """Ids of the requests with GPUs (or a share, or CPU) in each domain."""
        self._sequence = 0
        self.last_eviction: Eviction | None = None

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
        whole = (self.free.domain == self._domain_gpus).astype(np.int64)
        level = Level(level)
        if level == Level.domain:
            return whole
        return np.bincount(self.topology.domain_parent[level], weights=whole,
                           minlength=self.topology.level_size[level]).astype(np.int64)

    def used_gpus_by_tenant(self) -> dict[str, int]:
        return self.quotas.used_gpus()

    # ------------------------------------------------------------------ place / release

    def place(self, request: Request, allow_preemption: bool = False,
              now_s: float | None = None) -> Placement | Unplaceable:
        """Place ``request`` all-or-nothing, or say why not.

        With ``allow_preemption``, lower-priority preemptible allocations may be evicted (the cheapest set
        found, see `tokenfab.sched.preemption`); they are listed in ``Placement.evicted`` and described in
        ``self.last_eviction``. ``now_s`` stamps the allocation (used to count the work an eviction loses).
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
        found = self._find(request)
        evicted: list[str] = []
        self.last_eviction = None
        if isinstance(found, str) and allow_preemption:
            plan = preemption.plan(self, request, now_s)
            if plan is not None:
                for victim in plan.victims:
                    self.release(victim)
                retry = self._find(request)
                if isinstance(retry, str):  # cannot happen: the plan was checked on this very state
                    raise RuntimeError(f"preemption plan for {request.id} did not free a placement: {retry}")
                found, evicted, self.last_eviction = retry, list(plan.victims), plan
        if isinstance(found, str):
            return Unplaceable(request.id, found)
        placement = Placement(request.id, found.nodes, found.gpus, gpu_fraction=found.share_milli / MILLI_PER_GPU,
                              evicted=evicted)
        self._sequence += 1
        if request.whole_domains:
            milli = sum(found.gpus.tolist()) * MILLI_PER_GPU
        held = Allocation(request, self._tenant_code(request.tenant), placement, found.domains, milli,
                          found.share_slot, found.share_milli, self._sequence, now_s, per_domain=found.per_domain)
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
        fixed = Placement(placement.request_id, nodes, gpus, share_milli / MILLI_PER_GPU, list(placement.evicted))
        milli = int(gpus.sum()) * MILLI_PER_GPU if not share_milli else share_milli
        held = Allocation(request, self._tenant_code(request.tenant), fixed,
                          np.unique(self.fleet.node_domain[nodes]).astype(np.int64), milli,
                          slot, share_milli, self._sequence, now_s)
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
                self.free.shift(self.topology, self.fleet.node_domain, changed[moving], sign * raw_free[moving])
        if health not in (HEALTH_FAILED, HEALTH_DRAINING):
            return []
        became_nodes = nodes[old != health]
        became = np.zeros(self.fleet.n_nodes, dtype=bool)
        became[became_nodes] = True
        candidates: set[str] = set()
        for domain in np.unique(self.fleet.node_domain[became_nodes]).tolist():
            candidates |= self._domain_requests[domain]
        hit = [self._allocations[rid] for rid in candidates if became[self._allocations[rid].placement.nodes].any()]
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
        domains = held.domains
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
                emptied = domains[(self.domain_pieces[domains] == 0) & (fleet.domain_tenant[domains] != NO_TENANT)]
                fleet.domain_tenant[emptied] = NO_TENANT
                self._owned_domains -= len(emptied)
            del self._allocations[request.id]
        self.quotas.add(request.tenant, sign * held.milli)

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
                return (f"a slice of {request.slice_gpus} GPUs does not fit one NVLink domain "
                        f"(largest has {top.max_domain_gpus} GPUs)")
            if request.gpus % request.slice_gpus:
                return f"gpus ({request.gpus}) must be a multiple of slice_gpus ({request.slice_gpus})"
        if request.gpus > self._n_gpus:
            return f"needs {request.gpus} GPUs; the fleet has {self._n_gpus}"
        return None

    # ------------------------------------------------------------------ search

    def _domain_mask(self, request: Request) -> np.ndarray | None:
        """Domains the request may use (tenant residency, request residency, isolation); None: all."""
        if (not request.exclusive_domains and not self._owned_domains and request.allowed_sites is None
                and request.allowed_halls is None and request.tenant not in self.residency.tenant_residency):
            return None
        sites, halls = self.residency.allowed(request.tenant, request.allowed_sites, request.allowed_halls)
        mask = self.residency.domain_mask(sites, halls)
        if request.exclusive_domains or self._owned_domains:
            isolation = exclusivity_mask(self.fleet.domain_tenant, self.domain_pieces,
                                         self._tenant_code(request.tenant), request.exclusive_domains)
            if isolation is not None:
                mask = isolation if mask is None else mask & isolation
        return mask

    def _find(self, request: Request) -> _Found | str:
        """A placement for ``request`` on the current state, or the reason there is none. Pure search."""
        if request.gpu_fraction > 0 or request.gpus == 0:
            return self._find_small(request)
        return self._find_gang(request)

    def _find_gang(self, request: Request) -> _Found | str:
        need = request.gpus
        slice_gpus = request.slice_gpus
        if not slice_gpus and request.kind == WorkloadKind.inference and need <= self.topology.max_domain_gpus:
            slice_gpus = need  # an inference replica is one TP×EP group inside one domain
        ask = _Ask(request, need, slice_gpus, request.whole_domains, self._domain_mask(request))
        if request.level is not None:
            start = Level.domain if request.level == Level.node and ask.whole else request.level
            if request.level_required:
                levels: tuple = (start,)
            elif start == Level.node:
                levels = (Level.node, *_IMPLICIT_LEVELS)
            else:
                levels = (*_BROADER[_BROADER.index(start):], None)
        elif slice_gpus == need:
            levels = (Level.domain,)
        elif self.policy.narrowest_level:
            levels = _IMPLICIT_LEVELS
        elif self.policy.name == Policy.first_fit or need > self.topology.max_domain_gpus:
            levels = (None,)
        else:  # best_fit: one domain when one fits (the fleet-wide search would pick the same one)
            levels = (Level.domain, None)
        first_reason = None  # failures are formatted only if every level fails
        for level in levels:
            if level == Level.node:
                found = self._gang_on_one_node(ask)
            elif level == Level.domain:
                found = self._gang_in_one_domain(ask)
            else:
                found = self._gang_in_group(ask, level)
            if isinstance(found, _Found):
                return found
            first_reason = first_reason or found
        return (first_reason if request.level is not None else found)()

    # -- capacities

    def _cap(self, ask: _Ask, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        """GPUs ``ask`` can take from each domain in ``[lo, hi)`` (all domains by default)."""
        free = self.free.domain[lo:hi]
        if ask.whole:  # whole-free domains that can hold a slice
            size = self._domain_gpus[lo:hi]
            cap = np.where((free == size) & (size >= ask.slice_gpus), size, 0)
        elif ask.slice_gpus > 1:
            cap = free - free % ask.slice_gpus
        else:
            cap = free
        if ask.mask is not None:
            cap = np.where(ask.mask[lo:hi], cap, 0)
        return cap

    def _indexed(self, ask: _Ask) -> bool:
        """Whether the domain index (histograms, contiguous ranges) can answer for ``ask``."""
        return ask.mask is None and self._uniform_ranges

    def _su_cap(self, ask: _Ask) -> np.ndarray:
        """GPUs ``ask`` can take per SU, from the per-SU histogram of domain free counts (kept on ``ask``)."""
        if ask.su_cap is None:
            ask.su_cap = self._su_cap_now(ask)
        return ask.su_cap

    def _su_cap_now(self, ask: _Ask) -> np.ndarray:
        hist = self.free.su_hist
        size = self.topology.max_domain_gpus
        if ask.whole:
            return hist[size] * size
        if ask.slice_gpus > 1:
            weights = self._slice_weights.get(ask.slice_gpus)
            if weights is None:
                values = np.arange(size + 1, dtype=np.int64)
                weights = self._slice_weights.setdefault(ask.slice_gpus, values - values % ask.slice_gpus)
            start = ask.slice_gpus
            return weights[start:] @ hist[start:]
        return self.free.su

    def _what(self, ask: _Ask) -> str:
        if ask.whole:
            size = self.topology.max_domain_gpus
            count = math.ceil(ask.need / size)
            return f"{count} whole NVLink domain{'s' if count > 1 else ''} of {size} GPUs"
        if ask.slice_gpus and ask.slice_gpus != ask.need:
            return f"{ask.need} GPUs in slices of {ask.slice_gpus}"
        return f"{ask.need} GPUs"

    def _largest(self, ask: _Ask, cap: np.ndarray) -> str:
        most = int(cap.max(initial=0))
        if ask.whole:
            count = most // max(1, self.topology.max_domain_gpus)
            return f"{count} whole domain{'' if count == 1 else 's'} free"
        return f"{most} free GPUs"

    # -- one node, one domain

    def _gang_on_one_node(self, ask: _Ask) -> _Found | Callable[[], str]:
        free = self.free.node
        cap = free if ask.mask is None else np.where(ask.mask[self.fleet.node_domain], free, 0)
        if ask.whole:
            cap = np.where(cap == self.fleet.node_gpus, cap, 0)
        fits = np.flatnonzero(cap >= ask.need)
        if not len(fits):
            return lambda: f"needs {ask.need} GPUs in one node; largest node has {int(cap.max(initial=0))} free"
        node = int(fits[cap[fits].argmin()]) if self.policy.pack_nodes else int(fits[0])
        domain = int(self.fleet.node_domain[node])
        return _Found(np.asarray([node], dtype=np.int64), np.asarray([ask.need], dtype=np.int64),
                      np.asarray([domain], dtype=np.int64))

    def _view(self, ids: np.ndarray, cap: np.ndarray) -> DomainView:
        su = self._domain_su[ids]
        return DomainView(ids, cap, self.free.domain[ids], self._domain_gpus[ids], self.free.su[su],
                          self._su_whole()[su])

    def _su_whole(self) -> np.ndarray:
        if self.topology.uniform_domains:
            return self.free.su_hist[self.topology.max_domain_gpus]
        return self.whole_free_domains(Level.su)

    def _gang_in_one_domain(self, ask: _Ask) -> _Found | Callable[[], str]:
        need = ask.need
        size = self.topology.max_domain_gpus
        if need > size:
            return lambda: f"needs {self._what(ask)} in one NVLink domain; domains have at most {size} GPUs"
        if self._indexed(ask):
            least = size if ask.whole else need
            counts = self.free
            if self.policy.tightest_domain:
                present = counts.domain_hist[least:] > 0
                first = int(present.argmax())
                if not present[first]:
                    return self._no_domain(ask)
                value = least + first
                row = counts.su_hist[value]
                tie = self.policy.su_tie_break
                if tie == "id":
                    su = int((row > 0).argmax())
                else:
                    key = counts.su if tie == "free" else counts.su_hist[size]
                    su = int(np.where(row > 0, key, _NEVER).argmin())
                lo, hi = self._su_range(su)
                domain = lo + int((counts.domain[lo:hi] == value).argmax())
            else:
                fits = counts.su_max >= least
                su = int(fits.argmax())
                if not fits[su]:
                    return self._no_domain(ask)
                lo, hi = self._su_range(su)
                domain = lo + int((counts.domain[lo:hi] >= least).argmax())
        else:
            cap = self._cap(ask)
            fits = np.flatnonzero(cap >= need)
            if not len(fits):
                return self._no_domain(ask, cap)
            domain = int(fits[self.policy.pick_domain(self._view(fits, cap[fits]), need)])
        take = int(self._domain_gpus[domain]) if ask.whole else need
        return self._nodes_in_domain(domain, take)

    def _no_domain(self, ask: _Ask, cap: np.ndarray | None = None) -> Callable[[], str]:
        def reason() -> str:
            if ask.whole:
                most = self._cap(ask) if cap is None else cap
            else:  # report free GPUs, not whole slices: "largest domain has 6 free GPUs"
                free = self.free.domain
                most = free if ask.mask is None else np.where(ask.mask, free, 0)
            return f"needs {self._what(ask)} in one NVLink domain; largest domain has {self._largest(ask, most)}"

        return reason

    def _su_range(self, su: int) -> tuple[int, int]:
        start, end = self.topology.level_domain_range[Level.su]
        return int(start[su]), int(end[su])

    # -- a group of domains

    def _gang_in_group(self, ask: _Ask, level: Level | None) -> _Found | Callable[[], str]:
        policy = self.policy
        need = ask.need
        ranges = self.topology.level_domain_range
        if level is None and policy.name == Policy.first_fit and self._indexed(ask):
            # lowest ids first: only the SUs up to the one where the running capacity reaches N matter
            reach = np.cumsum(self._su_cap(ask))
            if reach[-1] < need:
                return lambda: f"needs {self._what(ask)}; {self._largest(ask, reach[-1:])} where it may run"
            last = int(np.searchsorted(reach, need))
            first = int(np.searchsorted(reach, 0, side="right"))
            su_start, su_end = self.topology.level_domain_range[Level.su]
            lo, hi = int(su_start[first]), int(su_end[last])
            cap = self._cap(ask, lo, hi)
            ids = np.arange(lo, hi)
        elif level is None:
            cap = self._cap(ask)
            total = int(cap.sum())
            if total < need:
                return lambda: f"needs {self._what(ask)}; {self._largest(ask, np.asarray([total]))} where it may run"
            ids = None
        else:
            if self._indexed(ask) and level in self._su_parent:
                su_cap = self._su_cap(ask)
                group_cap = su_cap if level == Level.su else np.bincount(
                    self._su_parent[level], weights=su_cap, minlength=self.topology.level_size[level])
            else:
                group_cap = np.bincount(self.topology.domain_parent[level], weights=self._cap(ask),
                                        minlength=self.topology.level_size[level])
            group = policy.pick_group(group_cap, self.free.of(level), need)
            if group < 0:
                word = _LEVEL_WORDS[level]
                return lambda: (f"needs {self._what(ask)} in one {word}; "
                                f"largest {word} has {self._largest(ask, group_cap)}")
            if ranges is not None:
                lo, hi = int(ranges[level][0][group]), int(ranges[level][1][group])
                size = self.topology.max_domain_gpus
                if self._indexed(ask) and (ask.whole or ask.slice_gpus == size):
                    # whole domains only: first_fit, best_fit and topology_packing all take the group's
                    # whole-free domains in id order (their keys tie on every other term);
                    # fragmentation_aware takes the same first count − 1 and, for the last, the
                    # whole-free domain left in the SU with the fewest whole domains (lowest id on ties)
                    count = -(-need // size)
                    whole_ids = lo + np.flatnonzero(self.free.domain[lo:hi] == size)
                    domains = whole_ids[:count]
                    if policy.name == Policy.fragmentation_aware and level != Level.su and len(whole_ids) > count:
                        rest = whole_ids[count - 1:]
                        last = rest[int(self.free.su_hist[size][self._domain_su[rest]].argmin())]
                        domains = np.append(whole_ids[:count - 1], last)
                    return self._nodes_in_domains(domains, np.full(count, size, dtype=np.int64))
                cap = self._cap(ask, lo, hi)
                ids = np.arange(lo, hi)
            else:
                ids = np.flatnonzero(self.topology.domain_parent[level] == group)
                cap = self._cap(ask)[ids]
        if policy.name == Policy.first_fit and ids is not None and len(cap) <= _SHORT:
            # lowest ids first: the shortest prefix of the group whose capacity covers the request
            chosen_list, takes_list, left = [], [], need
            for i, c in enumerate(cap.tolist()):
                if c:
                    chosen_list.append(i)
                    takes_list.append(c)
                    left -= c
                    if left <= 0:
                        break
            domains = ids[chosen_list]
            takes = np.array(takes_list, dtype=np.int64)
        elif policy.name == Policy.first_fit:
            reach = np.cumsum(cap)
            count = int(np.searchsorted(reach, need)) + 1
            chosen = np.flatnonzero(cap[:count])
            domains = chosen if ids is None else ids[chosen]
            takes = cap[chosen].astype(np.int64)
        else:
            positive = np.flatnonzero(cap)
            view = self._view(positive if ids is None else ids[positive], cap[positive])
            if not ask.whole:
                fits = np.flatnonzero(view.cap >= need)
                if len(fits):
                    one = view.take(fits)
                    return self._nodes_in_domain(int(one.ids[policy.pick_domain(one, need)]), need)
            order = policy.order_domains(view, need)
            reach = np.cumsum(view.cap[order])
            order = order[: int(np.searchsorted(reach, need)) + 1]
            domains, takes = view.ids[order], view.cap[order].astype(np.int64)
        if not ask.whole:
            takes[-1] -= sum(takes.tolist()) - need
        if len(domains) == 1:
            return self._nodes_in_domain(int(domains[0]), int(takes[0]))
        return self._nodes_in_domains(domains, takes)

    # -- nodes inside the chosen domains

    def _nodes_in_domain(self, domain: int, take: int) -> _Found:
        """The nodes that give ``take`` GPUs from one domain.

        One node if some node has ``take`` free (the fullest such node when packing, else the lowest
        id); all free GPUs of the domain if ``take`` is all of them; else fullest nodes first when
        packing, lowest ids first otherwise. A domain has a few nodes: this works on Python ints.
        """
        top = self.topology
        start, end = top.node_start_of[domain], top.node_end_of[domain]
        contiguous = top.nodes_contiguous
        avail = (self.free.node[start:end] if contiguous else self.free.node[top.node_order[start:end]]).tolist()
        domains = np.array([domain], dtype=np.int64)
        if take <= top.max_node_gpus:
            pick = -1
            if self.policy.pack_nodes:  # the fullest node that fits, lowest id on ties
                least = _NEVER
                for i, a in enumerate(avail):
                    if take <= a < least:
                        pick, least = i, a
            else:
                for i, a in enumerate(avail):
                    if a >= take:
                        pick = i
                        break
            if pick >= 0:
                node = start + pick if contiguous else int(top.node_order[start + pick])
                return _Found(np.array([node], dtype=np.int64), np.array([take], dtype=np.int64), domains)
        if take == sum(avail):
            picked = [i for i, a in enumerate(avail) if a]
            gpus = [avail[i] for i in picked]
        else:
            candidates = [(a, i) for i, a in enumerate(avail) if a]
            if self.policy.pack_nodes:
                candidates.sort()
            picked, gpus = [], []
            for a, i in candidates:
                got = a if a < take else take
                picked.append(i)
                gpus.append(got)
                take -= got
                if not take:
                    break
        positions = np.array(picked, dtype=np.int64)
        nodes = start + positions if contiguous else top.node_order[start + positions]
        return _Found(nodes, np.array(gpus, dtype=np.int64), domains)

    def _nodes_in_domains(self, domains: np.ndarray, takes: np.ndarray) -> _Found:
        """Nodes and GPUs per node that give ``takes[i]`` GPUs from ``domains[i]``.

        Domains taken whole (all their free GPUs) give every node with free GPUs; the others are
        filled as `_nodes_in_domain` fills one domain."""
        free_domain = self.free.domain
        full = takes == free_domain[domains]
        parts = []
        whole_count = int(np.count_nonzero(full))  # (small arrays: count_nonzero, not a ufunc reduction)
        if whole_count == len(full):
            whole = domains
        elif whole_count:
            whole = domains[full]
        else:
            whole = None
        if whole is not None:
            nodes = self._domain_nodes(whole)
            avail = self.free.node[nodes]
            if np.count_nonzero(avail) == len(avail):
                parts.append((nodes, avail))
            else:
                used = avail > 0
                parts.append((nodes[used], avail[used]))
        if whole is not domains:
            for domain, take in zip(domains[~full].tolist(), takes[~full].tolist(), strict=True):
                found = self._nodes_in_domain(domain, take)
                parts.append((found.nodes, found.gpus))
        if len(parts) == 1:
            nodes, gpus = parts[0]
        else:
            nodes, gpus = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        nodes, gpus = nodes.astype(np.int64, copy=False), gpus.astype(np.int64, copy=False)
        domain_list = domains.tolist()
        if domain_list == sorted(domain_list):
            return _Found(nodes, gpus, domains.astype(np.int64), per_domain=takes.astype(np.int64))
        order = np.argsort(domains, kind="stable")
        return _Found(nodes, gpus, domains[order].astype(np.int64), per_domain=takes[order].astype(np.int64))

    def _domain_nodes(self, domains: np.ndarray) -> np.ndarray:
        """Nodes of ``domains`` concatenated in the given order (per-domain node arrays are cached)."""
        top = self.topology
        domain_list = domains.tolist()
        first, last = domain_list[0], domain_list[-1]
        if top.nodes_contiguous and len(domain_list) > 1 and domain_list == list(range(first, last + 1)):
            # consecutive domains (e.g. the whole-free domains of an SU) hold one node range
            return np.arange(top.node_start_of[first], top.node_end_of[last], dtype=np.int64)
        cache = self._nodes_of_domain
        arrays = []
        for domain in domain_list:
            nodes = cache.get(domain)
            if nodes is None:
                nodes = cache[domain] = self.topology.nodes_of_domain(domain).astype(np.int64)
            arrays.append(nodes)
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    def _find_small(self, request: Request) -> _Found | str:
        """One node for a fractional-GPU (or CPU-only) request: CPU, memory and a GPU share on one node."""
        milli = int(round(request.gpu_fraction * MILLI_PER_GPU))
        mask = self._domain_mask(request)
        ok = ((self.fleet.node_health == HEALTH_OK) & (self.node_cpu_free >= request.cpu_cores - 1e-9)
              & (self.node_memory_free_gb >= request.memory_gb - 1e-9))
        if mask is not None:
            ok &= mask[self.fleet.node_domain]
        what = (f"{request.gpu_fraction:g} of a GPU with " if milli else "") + (
            f"{request.cpu_cores:g} CPU cores and {request.memory_gb:g} GB memory on one node")
        if not milli:
            nodes = np.flatnonzero(ok)
            if not len(nodes):
                return f"needs {what}; no node has room"
            node = int(nodes[0]) if not self.policy.pack_nodes else int(nodes[self.node_cpu_free[nodes].argmin()])
            return _Found(np.asarray([node], dtype=np.int64), np.zeros(1, dtype=np.int64),
                          self.fleet.node_domain[[node]].astype(np.int64))
        # a GPU already shared with room left, else a whole free GPU that becomes shared
        shared_nodes = np.flatnonzero(ok & (self.node_shared_gpus > 0))
        used = self.share_used_milli[shared_nodes]
        room = (used > 0) & (used + milli <= MILLI_PER_GPU)
        shared_fit = room.any(axis=1)
        whole_nodes = np.flatnonzero(ok & (self.free.node > 0))
        if not shared_fit.any() and not len(whole_nodes):
            return f"needs {what}; no node has room"
        if self.policy.pack_nodes and shared_fit.any():
            # the fullest shared GPU that still fits (GPU packing), lowest node on ties
            fullness = np.where(room, used, -1)
            best = fullness.max(axis=1)
            row = int(np.flatnonzero(shared_fit)[best[shared_fit].argmax()])
            node, slot = int(shared_nodes[row]), int(fullness[row].argmax())
        elif self.policy.pack_nodes:
            # a node of the fullest domain, fullest node first, so whole domains stay free
            domain_free = self.free.domain[self.fleet.node_domain[whole_nodes]]
            pick = np.lexsort((self.free.node[whole_nodes], domain_free))[0]
            node = int(whole_nodes[pick])
            slot = int(np.flatnonzero(self.share_used_milli[node] == 0)[0])
        else:
            first_shared = int(shared_nodes[shared_fit][0]) if shared_fit.any() else self.fleet.n_nodes
            first_whole = int(whole_nodes[0]) if len(whole_nodes) else self.fleet.n_nodes
            node = min(first_shared, first_whole)
            used_row = self.share_used_milli[node]
            fit_slots = np.flatnonzero((used_row > 0) & (used_row + milli <= MILLI_PER_GPU))
            slot = int(fit_slots[0]) if len(fit_slots) else int(np.flatnonzero(used_row == 0)[0])
        return _Found(np.asarray([node], dtype=np.int64), np.zeros(1, dtype=np.int64),
                      self.fleet.node_domain[[node]].astype(np.int64), slot, milli)
