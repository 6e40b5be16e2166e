"""Scheduler state over a fleet: the static topology index and the per-level free-GPU counts.

A GPU is *free* when it is installed, not allocated whole, not shared by fractional requests, and its
node's health is OK. Free counts are kept per node, NVLink domain, rack, SU, hall and site and are
updated incrementally in O(nodes touched) by `FreeCounts.shift`; `recount` recomputes them from the
fleet's node state (used by tests to check the incremental arrays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tokenfab.fleet import HEALTH_OK, Fleet
from tokenfab.sched.types import Level

_LOOP_DOMAINS = 16
"""Up to this many domains, `FreeCounts.shift` updates them with Python ints; above, with vector operations."""
_ONE_BY_ONE_DOMAINS = 4
"""Up to this many domains, each is updated on its own (fewer temporaries than summing the changes first)."""


@dataclass(frozen=True)
class Topology:
    """Static index arrays derived once from a fleet.

    ``domain_parent[level]`` maps each NVLink domain to its element of that level; the nodes of domain
    ``d`` are ``node_order[domain_node_start[d]:domain_node_end[d]]`` (ascending node id).
    """

    domain_parent: dict[Level, np.ndarray]
    level_size: dict[Level, int]
    domain_node_start: np.ndarray
    domain_node_end: np.ndarray
    node_order: np.ndarray
    nodes_contiguous: bool
    """True when ``node_order`` is the identity (nodes of a domain are a contiguous id range)."""
    max_domain_gpus: int
    max_node_gpus: int
    node_start_of: list[int]
    node_end_of: list[int]
    """``domain_node_start`` / ``domain_node_end`` as Python lists (fast scalar lookups)."""
    rack_of: list[int]
    su_of: list[int]
    hall_of: list[int]
    site_of: list[int]
    """Parents of each domain as Python lists (fast scalar lookups)."""
    su_domains: list[slice | np.ndarray]
    """Domains of each SU (a slice when contiguous, else an index array)."""
    level_domain_range: dict[Level, tuple[np.ndarray, np.ndarray]] | None
    """Per level, the [start, end) domain ids of each element when every element's domains are a
    contiguous id range (true for fleets built by `from_design`); None otherwise."""
    uniform_domains: bool
    """Every domain has the same number of GPUs."""

    @classmethod
    def of(cls, fleet: Fleet) -> Topology:
        domain_rack = fleet.domain_rack.astype(np.int64)
        domain_su = fleet.rack_su.astype(np.int64)[domain_rack]
        domain_hall = fleet.su_hall.astype(np.int64)[domain_su]
        domain_site = fleet.hall_site.astype(np.int64)[domain_hall]
        node_domain = fleet.node_domain.astype(np.int64)
        node_order = np.argsort(node_domain, kind="stable")
        counts = np.bincount(node_domain, minlength=fleet.n_domains)
        end = np.cumsum(counts)
        parents = {
            Level.rack: domain_rack,
            Level.su: domain_su,
            Level.hall: domain_hall,
            Level.site: domain_site,
        }
        sizes = {
            Level.rack: fleet.n_racks,
            Level.su: fleet.n_sus,
            Level.hall: fleet.n_halls,
            Level.site: fleet.n_sites,
        }
        contiguous = all(bool(np.all(np.diff(p) >= 0)) for p in parents.values())
        ranges = None
        if contiguous:
            ranges = {}
            for level, p in parents.items():
                level_end = np.cumsum(np.bincount(p, minlength=sizes[level]))
                ranges[level] = (level_end - np.bincount(p, minlength=sizes[level]), level_end)
        su_order = np.argsort(domain_su, kind="stable")
        su_end = np.cumsum(np.bincount(domain_su, minlength=fleet.n_sus))
        su_domains = [
            (slice(a, b) if contiguous else su_order[a:b])
            for a, b in zip(
                (su_end - np.bincount(domain_su, minlength=fleet.n_sus)).tolist(),
                su_end.tolist(),
                strict=True,
            )
        ]
        return cls(
            domain_parent={
                Level.domain: np.arange(fleet.n_domains, dtype=np.int64),
                Level.rack: domain_rack,
                Level.su: domain_su,
                Level.hall: domain_hall,
                Level.site: domain_site,
            },
            level_size={
                Level.node: fleet.n_nodes,
                Level.domain: fleet.n_domains,
                Level.rack: fleet.n_racks,
                Level.su: fleet.n_sus,
                Level.hall: fleet.n_halls,
                Level.site: fleet.n_sites,
            },
            domain_node_start=end - counts,
            domain_node_end=end,
            node_start_of=(end - counts).tolist(),
            node_end_of=end.tolist(),
            node_order=node_order,
            nodes_contiguous=bool(np.array_equal(node_order, np.arange(fleet.n_nodes))),
            max_domain_gpus=int(fleet.domain_gpus.max(initial=0)),
            max_node_gpus=int(fleet.node_gpus.max(initial=0)),
            rack_of=domain_rack.tolist(),
            su_of=domain_su.tolist(),
            hall_of=domain_hall.tolist(),
            site_of=domain_site.tolist(),
            su_domains=su_domains,
            level_domain_range=ranges,
            uniform_domains=bool(fleet.n_domains) and bool(np.all(fleet.domain_gpus == fleet.domain_gpus[0])),
        )

    def nodes_of_domain(self, domain: int) -> np.ndarray:
        start, end = self.node_start_of[domain], self.node_end_of[domain]
        if self.nodes_contiguous:
            return np.arange(start, end)
        return self.node_order[start:end]

    def nodes_of_domains(self, domains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nodes of several domains, concatenated in the given domain order, and each node's position in
        ``domains`` (its segment)."""
        starts = self.domain_node_start[domains]
        lengths = self.domain_node_end[domains] - starts
        segment = np.repeat(np.arange(len(domains)), lengths)
        first_of_segment = np.cumsum(lengths) - lengths
        positions = np.arange(int(lengths.sum())) - first_of_segment[segment] + starts[segment]
        nodes = positions if self.nodes_contiguous else self.node_order[positions]
        return nodes, segment


@dataclass
class FreeCounts:
    """Free GPUs per element of every level (int64 arrays), on healthy nodes only, and an index of the
    NVLink domains by free count.

    ``domain_hist[v]`` is the number of domains with exactly v free GPUs, ``su_hist[v, s]`` the same
    inside SU s, and ``su_max[s]`` the largest free count of a domain in SU s. They answer "the fullest
    domain with at least k free" and "the first SU with a domain of at least k free" without a scan
    over every domain.
    """

    node: np.ndarray
    domain: np.ndarray
    rack: np.ndarray
    su: np.ndarray
    hall: np.ndarray
    site: np.ndarray
    domain_hist: np.ndarray
    su_hist: np.ndarray
    su_max: np.ndarray

    def of(self, level: Level) -> np.ndarray:
        counts: np.ndarray = getattr(self, level.value)
        return counts

    def shift(
        self,
        topology: Topology,
        node_domain: np.ndarray,
        nodes: np.ndarray,
        gpus: np.ndarray,
        domains: np.ndarray | None = None,
        per_domain: np.ndarray | None = None,
    ) -> None:
        """Add ``gpus[i]`` (negative to take) to node ``nodes[i]`` (distinct nodes) and to its parents.

        ``domains`` (the distinct domains of ``nodes``, ascending) and ``per_domain`` (the sum of
        ``gpus`` in each), when given, save recomputing them.
        """
        self.node[nodes] += gpus
        if domains is None:
            domains = np.unique(node_domain[nodes])
        if per_domain is None:
            if len(domains) == 1:
                per_domain = np.array([int(gpus.sum())], dtype=np.int64)
            else:
                inverse = np.searchsorted(domains, node_domain[nodes])
                per_domain = np.bincount(inverse, weights=gpus, minlength=len(domains)).astype(np.int64)
        if len(domains) <= _ONE_BY_ONE_DOMAINS:
            for domain, delta in zip(domains.tolist(), per_domain.tolist(), strict=True):
                if delta:
                    self._shift_domain(topology, domain, delta)
            return
        if len(domains) <= _LOOP_DOMAINS:
            self._shift_domains(topology, domains, per_domain)
            return
        parent = topology.domain_parent
        before = self.domain[domains]
        after = before + per_domain
        self.domain[domains] = after
        np.add.at(self.rack, parent[Level.rack][domains], per_domain)
        sus = parent[Level.su][domains]
        np.add.at(self.su, sus, per_domain)
        np.add.at(self.hall, parent[Level.hall][domains], per_domain)
        np.add.at(self.site, parent[Level.site][domains], per_domain)
        np.add.at(self.domain_hist, before, -1)
        np.add.at(self.domain_hist, after, 1)
        np.add.at(self.su_hist, (before, sus), -1)
        np.add.at(self.su_hist, (after, sus), 1)
        for su in set(sus.tolist()):
            self.su_max[su] = max(self.domain[topology.su_domains[su]].tolist())

    def _shift_domains(self, topology: Topology, domains: np.ndarray, per_domain: np.ndarray) -> None:
        """`_shift_domain` for a few distinct domains: the changes to every parent and histogram cell are
        summed first (Python ints) and each changed element is written once.

        An SU's largest domain count is kept as ``max(old max, raised counts)`` while some domain still
        holds the old max, else recomputed over the SU's domains."""
        rack_of, su_of, hall_of, site_of = (
            topology.rack_of,
            topology.su_of,
            topology.hall_of,
            topology.site_of,
        )
        before_counts = self.domain[domains]
        after_counts = before_counts + per_domain
        self.domain[domains] = after_counts
        moves: dict[tuple[int, int, int], int] = {}  # (before, after, SU) → number of domains
        racks: dict[int, int] = {}
        sus: dict[int, int] = {}
        su_domain: dict[int, int] = {}  # a domain of each SU touched (for its hall and site)
        for domain, before, after, delta in zip(
            domains.tolist(), before_counts.tolist(), after_counts.tolist(), per_domain.tolist(), strict=True
        ):
            if not delta:
                continue
            su = su_of[domain]
            move = (before, after, su)
            moves[move] = moves.get(move, 0) + 1
            rack = rack_of[domain]
            racks[rack] = racks.get(rack, 0) + delta
            if su in sus:
                sus[su] += delta
            else:
                sus[su] = delta
                su_domain[su] = domain
        domain_hist, su_hist = self.domain_hist, self.su_hist
        raised: dict[int, int] = {}
        for (before, after, su), count in moves.items():
            domain_hist[before] -= count
            domain_hist[after] += count
            su_hist[before, su] -= count
            su_hist[after, su] += count
            if after > raised.get(su, -1):
                raised[su] = after
        for rack, delta in racks.items():
            self.rack[rack] += delta
        halls: dict[int, int] = {}
        sites: dict[int, int] = {}
        for su, delta in sus.items():
            if delta:
                self.su[su] += delta
                domain = su_domain[su]
                halls[hall_of[domain]] = halls.get(hall_of[domain], 0) + delta
                sites[site_of[domain]] = sites.get(site_of[domain], 0) + delta
        for counts, changes in ((self.hall, halls), (self.site, sites)):
            for element, delta in changes.items():
                if delta:
                    counts[element] += delta
        su_max = self.su_max
        for su, high in raised.items():
            most = int(su_max[su])
            if su_hist[most, su]:
                if high > most:
                    su_max[su] = high
            else:
                su_max[su] = max(self.domain[topology.su_domains[su]].tolist())

    def _shift_domain(self, topology: Topology, domain: int, delta: int) -> None:
        """Add ``delta`` free GPUs to ``domain`` and its parents, and move it in the domain index."""
        before = int(self.domain[domain])
        after = before + delta
        self.domain[domain] = after
        self.rack[topology.rack_of[domain]] += delta
        su = topology.su_of[domain]
        self.su[su] += delta
        self.hall[topology.hall_of[domain]] += delta
        self.site[topology.site_of[domain]] += delta
        self.domain_hist[before] -= 1
        self.domain_hist[after] += 1
        su_hist = self.su_hist
        su_hist[before, su] -= 1
        su_hist[after, su] += 1
        most = int(self.su_max[su])
        if after > most:
            self.su_max[su] = after
        elif before == most and not su_hist[before, su]:
            self.su_max[su] = max(self.domain[topology.su_domains[su]].tolist())


def recount(fleet: Fleet, topology: Topology) -> FreeCounts:
    """Free GPUs per level recomputed from node state: ``free_node = node_free_gpus · [health = OK]``,
    and each level the sum over its nodes; the domain index from the domain counts."""
    node = np.where(fleet.node_health == HEALTH_OK, fleet.node_free_gpus.astype(np.int64), 0)
    domain = np.bincount(fleet.node_domain, weights=node, minlength=fleet.n_domains).astype(np.int64)
    parent = topology.domain_parent

    def up(level: Level) -> np.ndarray:
        return np.bincount(parent[level], weights=domain, minlength=topology.level_size[level]).astype(
            np.int64
        )

    n_values = topology.max_domain_gpus + 1
    n_sus = topology.level_size[Level.su]
    su_hist = np.zeros((n_values, n_sus), dtype=np.int64)
    np.add.at(su_hist, (domain, parent[Level.su]), 1)
    su_max = np.zeros(n_sus, dtype=np.int64)
    np.maximum.at(su_max, parent[Level.su], domain)
    return FreeCounts(
        node=node,
        domain=domain,
        rack=up(Level.rack),
        su=up(Level.su),
        hall=up(Level.hall),
        site=up(Level.site),
        domain_hist=np.bincount(domain, minlength=n_values).astype(np.int64),
        su_hist=su_hist,
        su_max=su_max,
    )
