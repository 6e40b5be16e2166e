"""The fleet: a design instantiated for running, as arrays over nodes, NVLink domains, racks, SUs, halls, sites.

No Python object per GPU: each level is a set of numpy arrays indexed by that level's integer id, with the
parent of each row (`node_domain`, `domain_rack`, `rack_su`, `su_hall`, `hall_site`). GPUs are addressed as
(node, slot). Mutable allocation state (free GPUs, health, owner) lives here too and is updated
incrementally by the scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from tokenfab.blueprint.design import Design


class Health(IntEnum):
    """A node's health: the fleet's ``node_health`` array holds the number, the store and the API the name."""

    ok = 0
    cordoned = 1
    """No new work is placed; running work stays."""
    draining = 2
    """No new work; running work is being moved off."""
    failed = 3


# plain ints for array code (comparing a numpy scalar with an IntEnum member is ~30× slower)
HEALTH_OK = Health.ok.value
HEALTH_CORDONED = Health.cordoned.value
HEALTH_DRAINING = Health.draining.value
HEALTH_FAILED = Health.failed.value
NO_TENANT = -1


def _unset() -> np.ndarray:
    """An empty array: a state field the caller left out."""
    return np.empty(0, dtype=np.int32)


@dataclass
class Fleet:
    """Every node of a design, with its place in the topology and its allocation state."""

    site_names: list[str]
    node_gpus: np.ndarray  # int16 [node] GPUs installed
    node_cpu_cores: np.ndarray  # float32 [node]
    node_memory_gb: np.ndarray  # float32 [node]
    node_domain: np.ndarray  # int32 [node]
    domain_rack: np.ndarray  # int32 [domain]
    rack_su: np.ndarray  # int32 [rack]
    su_hall: np.ndarray  # int32 [su]
    hall_site: np.ndarray  # int32 [hall]
    domain_gpus: np.ndarray  # int32 [domain] GPUs installed
    gpu_power_w: np.ndarray  # float32 [site] TDP of the site's GPU
    # --- state ---
    # Left out, each starts empty and __post_init__ fills it: every GPU free, every node healthy, no owner.
    node_free_gpus: np.ndarray = field(default_factory=_unset)  # int16 [node]
    node_health: np.ndarray = field(default_factory=_unset)  # int8 [node]
    domain_tenant: np.ndarray = field(default_factory=_unset)  # int32 [domain], NO_TENANT when unowned

    def __post_init__(self) -> None:
        if self.node_free_gpus.size == 0:
            self.node_free_gpus = self.node_gpus.copy()
        if self.node_health.size == 0:
            self.node_health = np.zeros(self.n_nodes, dtype=np.int8)
        if self.domain_tenant.size == 0:
            self.domain_tenant = np.full(self.n_domains, NO_TENANT, dtype=np.int32)

    # --- sizes ---
    @property
    def n_nodes(self) -> int:
        return int(self.node_gpus.shape[0])

    @property
    def n_domains(self) -> int:
        return int(self.domain_rack.shape[0])

    @property
    def n_racks(self) -> int:
        return int(self.rack_su.shape[0])

    @property
    def n_sus(self) -> int:
        return int(self.su_hall.shape[0])

    @property
    def n_halls(self) -> int:
        return int(self.hall_site.shape[0])

    @property
    def n_sites(self) -> int:
        return len(self.site_names)

    @property
    def n_gpus(self) -> int:
        return int(self.node_gpus.sum())

    # --- derived parents of a node ---
    @property
    def node_rack(self) -> np.ndarray:
        parent: np.ndarray = self.domain_rack[self.node_domain]
        return parent

    @property
    def node_su(self) -> np.ndarray:
        parent: np.ndarray = self.rack_su[self.node_rack]
        return parent

    @property
    def node_hall(self) -> np.ndarray:
        parent: np.ndarray = self.su_hall[self.node_su]
        return parent

    @property
    def node_site(self) -> np.ndarray:
        parent: np.ndarray = self.hall_site[self.node_hall]
        return parent

    def node_path(self, node: int) -> str:
        """The node's element path, in the form certify and the control plane use."""
        domain = int(self.node_domain[node])
        rack = int(self.domain_rack[domain])
        su = int(self.rack_su[rack])
        hall = int(self.su_hall[su])
        site = int(self.hall_site[hall])
        return f"site[{site}].hall[{hall}].su[{su}].rack[{rack}].node[{node}]"

    def copy(self) -> Fleet:
        return Fleet(
            site_names=list(self.site_names),
            node_gpus=self.node_gpus,
            node_cpu_cores=self.node_cpu_cores,
            node_memory_gb=self.node_memory_gb,
            node_domain=self.node_domain,
            domain_rack=self.domain_rack,
            rack_su=self.rack_su,
            su_hall=self.su_hall,
            hall_site=self.hall_site,
            domain_gpus=self.domain_gpus,
            gpu_power_w=self.gpu_power_w,
            node_free_gpus=self.node_free_gpus.copy(),
            node_health=self.node_health.copy(),
            domain_tenant=self.domain_tenant.copy(),
        )


def from_design(design: Design, gpu_tdp_w: dict[str, float] | None = None) -> Fleet:
    """Instantiate every node of `design`. Ids are global and ordered site → hall → SU → rack → domain → node.

    Node-scale racks that the design left partly filled hold fewer domains; the site's last SU may hold
    fewer racks. Costs O(nodes) numpy work and no Python loop over nodes.
    """
    node_gpus, node_cpu, node_mem, node_domain = [], [], [], []
    domain_rack, domain_gpus, rack_su, su_hall, hall_site = [], [], [], [], []
    power = []
    n_domain = n_rack = n_su = n_hall = 0
    for site_index, site in enumerate(design.sites):
        rack = site.rack
        gpus_per_node = rack.gpus // rack.nodes
        nodes_per_domain = max(1, rack.gpus_per_nvlink_domain // gpus_per_node)
        domains_left = site.metrics.nvlink_domains
        power.append((gpu_tdp_w or {}).get(site.gpu, 1000.0))
        site_domain_rack = []
        for hall in site.halls:
            hall_site.append(site_index)
            for racks_in_su in hall.su_racks:
                su_hall.append(n_hall)
                for _ in range(racks_in_su):
                    rack_su.append(n_su)
                    take = min(rack.nvlink_domains, domains_left)
                    domains_left -= take
                    site_domain_rack.extend([n_rack] * take)
                    n_rack += 1
                n_su += 1
            n_hall += 1
        site_domains = len(site_domain_rack)
        domain_rack.extend(site_domain_rack)
        domain_gpus.extend([rack.gpus_per_nvlink_domain] * site_domains)
        site_nodes = site_domains * nodes_per_domain
        node_domain.append(
            np.repeat(np.arange(n_domain, n_domain + site_domains, dtype=np.int32), nodes_per_domain)
        )
        node_gpus.append(np.full(site_nodes, gpus_per_node, dtype=np.int16))
        node_cpu.append(np.full(site_nodes, rack.cpu_cores_per_node, dtype=np.float32))
        node_mem.append(np.full(site_nodes, rack.memory_gb_per_node, dtype=np.float32))
        n_domain += site_domains
    return Fleet(
        site_names=[s.name for s in design.sites],
        node_gpus=np.concatenate(node_gpus),
        node_cpu_cores=np.concatenate(node_cpu),
        node_memory_gb=np.concatenate(node_mem),
        node_domain=np.concatenate(node_domain),
        domain_rack=np.asarray(domain_rack, dtype=np.int32),
        rack_su=np.asarray(rack_su, dtype=np.int32),
        su_hall=np.asarray(su_hall, dtype=np.int32),
        hall_site=np.asarray(hall_site, dtype=np.int32),
        domain_gpus=np.asarray(domain_gpus, dtype=np.int32),
        gpu_power_w=np.asarray(power, dtype=np.float32),
    )
