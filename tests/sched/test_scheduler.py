"""Scheduler: exact placements on hand-made fleets for each policy, constraints, health, quotas."""

from __future__ import annotations

import numpy as np
import pytest

from tokenfab.fleet import Fleet
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.state import recount
from tokenfab.sched.types import Level, Placement, Policy, Request


def make_fleet(domains_per_su: tuple[int, ...] = (2, 2), su_per_hall: tuple[int, ...] = (2,),
               nodes_per_domain: int = 2, gpus_per_node: int = 4, halls_per_site: tuple[int, ...] = (1,)) -> Fleet:
    """A small NVL-style fleet: each rack is one NVLink domain of ``nodes_per_domain`` nodes."""
    n_domains = sum(domains_per_su)
    rack_su = np.repeat(np.arange(len(domains_per_su)), domains_per_su).astype(np.int32)
    su_hall = np.repeat(np.arange(len(su_per_hall)), su_per_hall).astype(np.int32)
    hall_site = np.repeat(np.arange(len(halls_per_site)), halls_per_site).astype(np.int32)
    n_nodes = n_domains * nodes_per_domain
    return Fleet(
        site_names=[f"s{i}" for i in range(len(halls_per_site))],
        node_gpus=np.full(n_nodes, gpus_per_node, dtype=np.int16),
        node_cpu_cores=np.full(n_nodes, 64.0, dtype=np.float32),
        node_memory_gb=np.full(n_nodes, 512.0, dtype=np.float32),
        node_domain=np.repeat(np.arange(n_domains), nodes_per_domain).astype(np.int32),
        domain_rack=np.arange(n_domains, dtype=np.int32),
        rack_su=rack_su,
        su_hall=su_hall,
        hall_site=hall_site,
        domain_gpus=np.full(n_domains, nodes_per_domain * gpus_per_node, dtype=np.int32),
        gpu_power_w=np.full(len(halls_per_site), 1000.0, dtype=np.float32),
    )


def check_counts(sched: Scheduler) -> None:
    fresh = recount(sched.fleet, sched.topology)
    for level in (Level.node, Level.domain, Level.rack, Level.su, Level.hall, Level.site):
        np.testing.assert_array_equal(sched.free_gpus(level), fresh.of(level), err_msg=level.value)


def placed(result) -> Placement:
    assert isinstance(result, Placement), result
    return result


def domains_of(sched: Scheduler, result) -> list[int]:
    return sorted(set(sched.fleet.node_domain[placed(result).nodes].tolist()))


@pytest.mark.parametrize("policy", list(Policy))
def test_api_surface_place_release(policy):
    sched = Scheduler(make_fleet(), policy)
    p = placed(sched.place(Request("a", 4)))
    assert p.gpus == 4
    assert sched.allocation("a") is p
    assert set(sched.allocations()) == {"a"}
    assert sched.used_gpus_by_tenant() == {"default": 4}
    assert sched.free_gpus(Level.site).tolist() == [28]
    check_counts(sched)
    sched.release("a")
    assert sched.allocation("a") is None
    assert sched.free_gpus(Level.site).tolist() == [32]
    assert sched.fragmentation() == 0.0
    check_counts(sched)
