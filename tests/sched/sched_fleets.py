"""Small hand-made fleets for the scheduler tests."""

from __future__ import annotations

import numpy as np

from tokenfab.fleet import Fleet


def make_fleet(domains_per_su: tuple[int, ...] = (3, 3), sus_per_hall: tuple[int, ...] = (2,),
               halls_per_site: tuple[int, ...] = (1,), nodes_per_domain: int = 2, gpus_per_node: int = 4,
               cpu_cores: float = 64.0, memory_gb: float = 512.0) -> Fleet:
    """A fleet where each rack is one NVLink domain of ``nodes_per_domain`` nodes; ids ascend
    site → hall → SU → domain → node (domain d holds nodes ``d·n … d·n + n − 1``)."""
    n_domains = sum(domains_per_su)
    n_nodes = n_domains * nodes_per_domain
    return Fleet(
        site_names=[f"site{i}" for i in range(len(halls_per_site))],
        node_gpus=np.full(n_nodes, gpus_per_node, dtype=np.int16),
        node_cpu_cores=np.full(n_nodes, cpu_cores, dtype=np.float32),
        node_memory_gb=np.full(n_nodes, memory_gb, dtype=np.float32),
        node_domain=np.repeat(np.arange(n_domains), nodes_per_domain).astype(np.int32),
        domain_rack=np.arange(n_domains, dtype=np.int32),
        rack_su=np.repeat(np.arange(len(domains_per_su)), domains_per_su).astype(np.int32),
        su_hall=np.repeat(np.arange(len(sus_per_hall)), sus_per_hall).astype(np.int32),
        hall_site=np.repeat(np.arange(len(halls_per_site)), halls_per_site).astype(np.int32),
        domain_gpus=np.full(n_domains, nodes_per_domain * gpus_per_node, dtype=np.int32),
        gpu_power_w=np.full(len(halls_per_site), 1000.0, dtype=np.float32),
    )
