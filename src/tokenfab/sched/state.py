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

GROUP_LEVELS = (Level.domain, Level.rack, Level.su, Level.hall, Level.site)
"""Levels at which a gang can be kept together, narrowest first (node level is handled apart)."""


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
            node_order=node_order,
            nodes_contiguous=bool(np.array_equal(node_order, np.arange(fleet.n_nodes))),
            max_domain_gpus=int(fleet.domain_gpus.max(initial=0)),
            max_node_gpus=int(fleet.node_gpus.max(initial=0)),
        )

    def nodes_of_domain(self, domain: int) -> np.ndarray:
        start, end = int(self.domain_node_start[domain]), int(self.domain_node_end[domain])
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
    """Free GPUs per element of every level (int64 arrays), on healthy nodes only."""

    node: np.ndarray
    domain: np.ndarray
    rack: np.ndarray
    su: np.ndarray
    hall: np.ndarray
    site: np.ndarray

    def of(self, level: Level) -> np.ndarray:
        return getattr(self, level.value)

    def shift(self, topology: Topology, node_domain: np.ndarray, nodes: np.ndarray, gpus: np.ndarray) -> None:
        """Add ``gpus[i]`` (negative to take) to node ``nodes[i]`` and to each of its parents."""
        parent = topology.domain_parent
        if len(nodes) == 1:
            node, delta = int(nodes[0]), int(gpus[0])
            domain = int(node_domain[node])
            self.node[node] += delta
            self.domain[domain] += delta
            self.rack[parent[Level.rack][domain]] += delta
            self.su[parent[Level.su][domain]] += delta
            self.hall[parent[Level.hall][domain]] += delta
            self.site[parent[Level.site][domain]] += delta
            return
        np.add.at(self.node, nodes, gpus)
        domains, inverse = np.unique(node_domain[nodes], return_inverse=True)
        per_domain = np.bincount(inverse.reshape(-1), weights=gpus, minlength=len(domains)).astype(np.int64)
        self.domain[domains] += per_domain
        np.add.at(self.rack, parent[Level.rack][domains], per_domain)
        np.add.at(self.su, parent[Level.su][domains], per_domain)
        np.add.at(self.hall, parent[Level.hall][domains], per_domain)
        np.add.at(self.site, parent[Level.site][domains], per_domain)


def recount(fleet: Fleet, topology: Topology) -> FreeCounts:
    """Free GPUs per level recomputed from node state: ``free_node = node_free_gpus · [health = OK]``,
    and each level the sum over its nodes."""
    node = np.where(fleet.node_health == HEALTH_OK, fleet.node_free_gpus.astype(np.int64), 0)
    domain = np.bincount(fleet.node_domain, weights=node, minlength=fleet.n_domains).astype(np.int64)
    parent = topology.domain_parent

    def up(level: Level) -> np.ndarray:
        return np.bincount(parent[level], weights=domain, minlength=topology.level_size[level]).astype(np.int64)

    return FreeCounts(node=node, domain=domain, rack=up(Level.rack), su=up(Level.su), hall=up(Level.hall),
                      site=up(Level.site))
