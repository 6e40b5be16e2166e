"""Tenant environments in the scheduler: each holds whole NVLink domains, one scheduler allocation per domain.

An environment reserves whole domains through the same scheduler as workloads: one placement of
``n × domain GPUs`` with ``whole_domains`` (so the tenant's quota and residency and the domain isolation
between tenants apply), which is then split into one non-preemptible *hold* per domain
(``{env}:d{domain}``). The tenant's workloads that name the environment run inside it: for their
placement the holds are lifted and the request is confined to the environment's domains
(``Request.allowed_domains``); afterwards each hold takes back what is left of its domain. So the
environment's domains are never used by anyone else, and the tenant's GPUs count once against its quota.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from tokenfab.fleet import Fleet
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Level, Placement, Request, Unplaceable

HOLD_PRIORITY = 1 << 30
"""Priority of a hold: above any workload's, so nothing preempts an environment."""


def hold_id(env_id: str, domain: int) -> str:
    return f"{env_id}:d{domain}"


def nodes_by_domain(fleet: Fleet) -> list[np.ndarray]:
    """The nodes of every NVLink domain (one sort, O(nodes log nodes))."""
    order = np.argsort(fleet.node_domain, kind="stable")
    bounds = np.searchsorted(fleet.node_domain[order], np.arange(fleet.n_domains + 1))
    return [order[bounds[d] : bounds[d + 1]] for d in range(fleet.n_domains)]


@dataclass
class Hold:
    tenant: str
    domains: list[int] = field(default_factory=list)


class EnvironmentHolds:
    """The environments' domain holds on one scheduler (replaced with it when memory is rebuilt)."""

    def __init__(self, fleet: Fleet, scheduler: Scheduler):
        self.fleet = fleet
        self.scheduler = scheduler
        self.holds: dict[str, Hold] = {}
        self.domain_nodes = nodes_by_domain(fleet)

    def domains_of(self, env_id: str) -> list[int]:
        hold = self.holds.get(env_id)
        return [] if hold is None else list(hold.domains)

    def reserve(
        self,
        env_id: str,
        tenant: str,
        n: int,
        allowed_sites: tuple[int, ...] | None,
        allowed_halls: tuple[int, ...] | None,
        whole_racks: bool = False,
    ) -> list[int] | str:
        """Reserve ``n`` more whole free domains for ``env_id`` (quota, residency and isolation checked by
        the scheduler), or with ``whole_racks`` every domain of ``n`` whole free racks (one placement per
        rack, kept inside it: ``level=rack``, required); the domains taken, or why not."""
        probes: list[tuple[str, int, Level | None]]
        if whole_racks:
            size = int(np.bincount(self.fleet.domain_rack, weights=self.fleet.domain_gpus).max())
            probes = [(f"{env_id}:reserve-r{i}", size, Level.rack) for i in range(n)]
        else:
            probes = [(f"{env_id}:reserve", n * int(self.fleet.domain_gpus.max()), None)]
        placed: list[str] = []
        refusal = None
        for probe_id, gpus, level in probes:
            probe = Request(
                id=probe_id,
                gpus=gpus,
                tenant=tenant,
                whole_domains=True,
                level=level,
                level_required=level is not None,
                exclusive_domains=True,
                preemptible=False,
                priority=HOLD_PRIORITY,
                allowed_sites=allowed_sites,
                allowed_halls=allowed_halls,
            )
            result = self.scheduler.place(probe)
            if isinstance(result, Unplaceable):
                refusal = result.reason
                break
            placed.append(probe_id)
        domains = [d for probe_id in placed for d in self.scheduler.domain_of_request(probe_id).tolist()]
        for probe_id in placed:
            self.scheduler.release(probe_id)
        if refusal is not None:
            return refusal
        self.hold(env_id, tenant, domains)
        return domains

    def hold(self, env_id: str, tenant: str, domains: list[int]) -> None:
        """Hold ``domains`` (what of them is free) for ``env_id``, adding to what it holds."""
        hold = self.holds.setdefault(env_id, Hold(tenant))
        for domain in domains:
            if domain not in hold.domains:
                hold.domains.append(domain)
            self._hold_domain(env_id, tenant, domain)

    def _hold_domain(self, env_id: str, tenant: str, domain: int) -> None:
        part = hold_id(env_id, domain)
        if self.scheduler.allocation(part) is not None:
            return
        nodes = self.domain_nodes[domain]
        free = self.fleet.node_free_gpus[nodes].astype(np.int64)
        if int(free.sum()) == 0:
            return
        request = Request(
            id=part,
            gpus=int(free.sum()),
            tenant=tenant,
            exclusive_domains=True,
            preemptible=False,
            priority=HOLD_PRIORITY,
        )
        self.scheduler.restore(request, Placement(part, nodes[free > 0], free[free > 0]))

    def unhold(self, env_id: str, domains: list[int] | None = None) -> None:
        """Give back ``domains`` of ``env_id`` (default: all of them, forgetting the environment)."""
        hold = self.holds.get(env_id)
        if hold is None:
            return
        for domain in list(hold.domains if domains is None else domains):
            self.scheduler.release(hold_id(env_id, domain))
            if domain in hold.domains:
                hold.domains.remove(domain)
        if domains is None or not hold.domains:
            self.holds.pop(env_id, None)

    def free_domains(self, env_id: str) -> list[int]:
        """Domains of ``env_id`` that none of its workloads uses (its hold covers the whole domain)."""
        free = []
        for domain in self.domains_of(env_id):
            placement = self.scheduler.allocation(hold_id(env_id, domain))
            if placement is not None and placement.gpus == int(self.fleet.domain_gpus[domain]):
                free.append(domain)
        return free

    @contextmanager
    def lifted(self, env_id: str) -> Iterator[tuple[int, ...]]:
        """Lift ``env_id``'s holds for a placement inside it (yields its domains); take back the rest after."""
        hold = self.holds.get(env_id)
        if hold is None:
            yield ()
            return
        for domain in hold.domains:
            self.scheduler.release(hold_id(env_id, domain))
        try:
            yield tuple(hold.domains)
        finally:
            self.hold(env_id, hold.tenant, list(hold.domains))

    def refill(self, env_id: str) -> None:
        """After a workload inside ``env_id`` released its GPUs: the holds take them back."""
        hold = self.holds.get(env_id)
        if hold is not None:
            for domain in hold.domains:
                self.scheduler.release(hold_id(env_id, domain))
            self.hold(env_id, hold.tenant, list(hold.domains))
