"""Small hand-made fleets for the scheduler tests."""

from __future__ import annotations

import numpy as np

from tokenfab.fleet import Fleet


def make_fleet(
    domains_per_su: tuple[int, ...] = (3, 3),
    sus_per_hall: tuple[int, ...] = (2,),
    halls_per_site: tuple[int, ...] = (1,),
    nodes_per_domain: int = 2,
    gpus_per_node: int = 4,
    cpu_cores: float = 64.0,
    memory_gb: float = 512.0,
) -> Fleet:
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


def make_mixed_fleet() -> Fleet:
    """Two sites of different systems: site 0 has 2 SUs of 3 rack-scale domains (2 nodes × 4 GPUs);
    site 1 has 1 SU of 4 racks, each rack holding 2 single-node domains of 4 GPUs (HGX-like)."""
    domain_nodes = [2] * 6 + [1] * 8
    n_nodes = sum(domain_nodes)
    return Fleet(
        site_names=["nvl", "hgx"],
        node_gpus=np.full(n_nodes, 4, dtype=np.int16),
        node_cpu_cores=np.full(n_nodes, 16.0, dtype=np.float32),
        node_memory_gb=np.full(n_nodes, 128.0, dtype=np.float32),
        node_domain=np.repeat(np.arange(len(domain_nodes)), domain_nodes).astype(np.int32),
        domain_rack=np.array([0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 8, 8, 9, 9], dtype=np.int32),
        rack_su=np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], dtype=np.int32),
        su_hall=np.array([0, 0, 1], dtype=np.int32),
        hall_site=np.array([0, 1], dtype=np.int32),
        domain_gpus=np.array([4 * n for n in domain_nodes], dtype=np.int32),
        gpu_power_w=np.full(2, 1000.0, dtype=np.float32),
    )
