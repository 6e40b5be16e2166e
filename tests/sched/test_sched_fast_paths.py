"""The fast paths of the search give what the generic (masked numpy) search gives, on hand-picked states."""

from __future__ import annotations

import pytest
from sched_fleets import make_fleet

from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Level, Placement, Policy, Request, WorkloadKind

ALLOW_ALL = {"t": ((0,), None)}  # a residency that allows everything forces the generic search


def placements(policy: Policy, residency: dict | None) -> list:
    # one hall of 3 SUs (4, 3, 4 domains of 2 nodes × 4 GPUs): part-fill SUs so their whole-domain
    # counts differ, then ask for whole domains at hall level, several domains over few, and small gangs
    sched = Scheduler(
        make_fleet(domains_per_su=(4, 3, 4), sus_per_hall=(3,)), policy, tenant_residency=residency
    )
    requests = [
        Request("a", 8, tenant="t", kind=WorkloadKind.inference),
        Request("b", 3, tenant="t"),
        Request("c", 8, tenant="t", kind=WorkloadKind.inference),
        Request("d", 2, tenant="t"),
        Request("e", 24, slice_gpus=8, level=Level.hall, tenant="t"),
        Request("f", 16, whole_domains=True, level=Level.hall, tenant="t"),
        Request("g", 12, whole_domains=True, level=Level.su, level_required=False, tenant="t"),
        Request("h", 7, tenant="t"),
        Request("i", 8, slice_gpus=4, tenant="t"),
    ]
    out = []
    for request in requests:
        result = sched.place(request)
        placed = isinstance(result, Placement)
        out.append((result.nodes.tolist(), result.gpus_per_node.tolist()) if placed else result.reason)
        if request.id == "c":
            sched.release("a")
    return out


@pytest.mark.parametrize("policy", list(Policy))
def test_fast_paths_equal_the_generic_search(policy):
    fast = placements(policy, None)
    assert sum(isinstance(p, tuple) for p in fast) >= 8
    assert fast == placements(policy, ALLOW_ALL)
