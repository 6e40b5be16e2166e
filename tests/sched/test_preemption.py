"""Preemption: who may evict whom, the cheapest victims, and what is lost."""

from __future__ import annotations

import numpy as np
import pytest
from sched_fleets import make_fleet

from tokenfab.sched.preemption import may_evict
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.state import recount
from tokenfab.sched.types import Level, Placement, Policy, Request, Unplaceable


def full_fleet(policy=Policy.topology_packing) -> Scheduler:
    """Two SUs of 3 domains (8 GPUs each), completely filled by one job per domain, with
    priority 0 (d0, d1, d3), 1 (d2, d4) and a non-preemptible priority-0 job on d5."""
    sched = Scheduler(make_fleet(), policy)
    for d, (priority, preemptible) in enumerate(
        [(0, True), (0, True), (1, True), (0, True), (1, True), (0, False)]
    ):
        request = Request(f"d{d}", 8, priority=priority, preemptible=preemptible)
        sched.restore(
            request, Placement(request.id, np.array([2 * d, 2 * d + 1]), np.array([4, 4])), now_s=100.0 * d
        )
    return sched


def test_may_evict_only_strictly_lower_priority_and_preemptible():
    high = Request("h", 1, priority=2)
    assert may_evict(high, Request("v", 1, priority=1))
    assert not may_evict(high, Request("v", 1, priority=2))
    assert not may_evict(high, Request("v", 1, priority=0, preemptible=False))


@pytest.mark.parametrize("policy", list(Policy))
def test_evicts_the_cheapest_victim(policy):
    sched = full_fleet(policy)
    assert isinstance(sched.place(Request("x", 8, priority=1)), Unplaceable)  # no preemption asked
    p = sched.place(Request("x", 8, priority=1), allow_preemption=True)
    assert isinstance(p, Placement)
    # without a clock every victim costs its GPUs (8); ties go to the most recently placed: d3
    assert p.evicted == ["d3"]
    assert p.eviction.victims == ("d3",) and p.eviction.gpus_freed == 8
    assert sched.allocation("d3") is None and sched.allocation("x") is not None
    assert set(sched.fleet.node_domain[p.nodes].tolist()) == {3}


def test_cost_is_gpu_hours_lost_with_a_clock():
    sched = full_fleet()
    p = sched.place(Request("x", 8, priority=1), allow_preemption=True, now_s=3600.0)
    # placed at 0, 100 and 300 s: d3 (300 s) has run the least, so it loses the fewest GPU-hours
    assert p.evicted == ["d3"]
    assert p.eviction.lost_gpu_hours == pytest.approx(8 * (3600 - 300) / 3600)


def test_never_evicts_equal_priority_or_non_preemptible():
    sched = full_fleet()
    result = sched.place(Request("x", 8, priority=0), allow_preemption=True)
    assert isinstance(result, Unplaceable)
    # priority 1 may take d0, d1, d3 (priority 0) but never d5 (not preemptible) nor d2, d4 (equal)
    big = sched.place(Request("y", 32, priority=1), allow_preemption=True)
    assert isinstance(big, Unplaceable)
    p = sched.place(Request("z", 24, priority=1), allow_preemption=True)
    assert sorted(p.evicted) == ["d0", "d1", "d3"]


def test_fewest_gpu_hours_over_fewest_victims():
    """Two small victims that together lose less than one big one are preferred."""
    sched = Scheduler(make_fleet(domains_per_su=(2,), sus_per_hall=(1,)), Policy.first_fit)
    sched.restore(Request("big", 8), Placement("big", np.array([0, 1]), np.array([4, 4])), now_s=0.0)
    sched.restore(Request("s1", 4), Placement("s1", np.array([2]), np.array([4])), now_s=3000.0)
    sched.restore(Request("s2", 4), Placement("s2", np.array([3]), np.array([4])), now_s=3000.0)
    p = sched.place(
        Request("x", 8, priority=1, level=Level.domain, level_required=True),
        allow_preemption=True,
        now_s=3600.0,
    )
    assert sorted(p.evicted) == ["s1", "s2"]  # 2 × 4 GPUs × 600 s < 8 GPUs × 3600 s
    assert p.eviction.lost_gpu_hours == pytest.approx(8 * 600 / 3600)


def test_failed_preemption_leaves_state_untouched():
    sched = full_fleet()
    before = {rid: (p.nodes.tolist(), p.gpus_per_node.tolist()) for rid, p in sched.allocations().items()}
    free_before = sched.fleet.node_free_gpus.copy()
    assert isinstance(sched.place(Request("y", 48, priority=5), allow_preemption=True), Unplaceable)
    after = {rid: (p.nodes.tolist(), p.gpus_per_node.tolist()) for rid, p in sched.allocations().items()}
    assert after == before
    np.testing.assert_array_equal(sched.fleet.node_free_gpus, free_before)
    np.testing.assert_array_equal(recount(sched.fleet, sched.topology).domain, sched.free.domain)
