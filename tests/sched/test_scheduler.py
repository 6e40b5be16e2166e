"""Scheduler: exact placements on hand-made fleets for each policy, slices, whole domains, levels,
isolation, residency, quotas, health, small requests."""

from __future__ import annotations

import numpy as np
import pytest
from sched_fleets import make_fleet

from tokenfab.fleet import HEALTH_CORDONED, HEALTH_DRAINING, HEALTH_FAILED, HEALTH_OK, NO_TENANT
from tokenfab.sched.policies import POLICIES, get_policy
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.state import recount
from tokenfab.sched.types import Level, Placement, Policy, Request, Unplaceable, WorkloadKind

ALL_LEVELS = (Level.node, Level.domain, Level.rack, Level.su, Level.hall, Level.site)


def check_counts(sched: Scheduler) -> None:
    """The incremental free counts and domain index equal a recount from node state."""
    fresh = recount(sched.fleet, sched.topology)
    for level in ALL_LEVELS:
        np.testing.assert_array_equal(sched.free_gpus(level), fresh.of(level), err_msg=level.value)
    np.testing.assert_array_equal(sched.free.domain_hist, fresh.domain_hist)
    np.testing.assert_array_equal(sched.free.su_hist, fresh.su_hist)
    np.testing.assert_array_equal(sched.free.su_max, fresh.su_max)


def placed(result) -> Placement:
    assert isinstance(result, Placement), result
    return result


def refused(result) -> str:
    assert isinstance(result, Unplaceable), result
    return result.reason


def as_lists(result) -> tuple[list[int], list[int]]:
    p = placed(result)
    return p.nodes.tolist(), p.gpus_per_node.tolist()


def gpus_per_domain(sched: Scheduler, result) -> dict[int, int]:
    p = placed(result)
    out: dict[int, int] = {}
    for node, gpus in zip(p.nodes.tolist(), p.gpus_per_node.tolist(), strict=True):
        domain = int(sched.fleet.node_domain[node])
        out[domain] = out.get(domain, 0) + gpus
    return out


def scheduler(policy, generic: bool = False, **kwargs) -> Scheduler:
    """A scheduler on the 2-SU × 3-domain fleet (domain d = nodes 2d, 2d+1, 8 GPUs) in the state

    d0, d1, d3 whole-free; d2 full; d4, d5 with 7 free (node 8 and node 10 hold one GPU each).
    SU0 = d0–d2: 16 free, 2 whole domains; SU1 = d3–d5: 22 free, 1 whole domain.
    ``generic`` forces the search through the mask path (a residency pin that allows everything), so
    both search paths are checked against the same expectations.
    """
    residency = {"default": ((0,), None)} if generic else None
    sched = Scheduler(make_fleet(), policy, tenant_residency=residency, **kwargs)
    sched.restore(Request("full", 8), Placement("full", np.array([4, 5]), np.array([4, 4])))
    sched.restore(Request("one-a", 1), Placement("one-a", np.array([8]), np.array([1])))
    sched.restore(Request("one-b", 1), Placement("one-b", np.array([10]), np.array([1])))
    check_counts(sched)
    return sched


PATHS = pytest.mark.parametrize("generic", [False, True], ids=["indexed", "generic"])


@PATHS
@pytest.mark.parametrize(
    ("policy", "nodes", "gpus"),
    [
        (Policy.first_fit, [0, 1], [4, 4]),  # lowest ids
        (Policy.best_fit, [0, 1], [4, 4]),  # tightest (all 8), lowest id
        (Policy.topology_packing, [0, 1], [4, 4]),  # whole domain in the fullest SU (SU0: 16 < 22 free)
        (Policy.fragmentation_aware, [6, 7], [4, 4]),  # break a whole domain where fewest are left (SU1)
    ],
)
def test_one_domain_gang_per_policy(policy, nodes, gpus, generic):
    sched = scheduler(policy, generic)
    assert as_lists(sched.place(Request("r", 8))) == (nodes, gpus)
    check_counts(sched)


@PATHS
@pytest.mark.parametrize(
    ("policy", "nodes", "gpus"),
    [
        (Policy.first_fit, [0], [4]),
        (Policy.best_fit, [9], [4]),  # tightest domain d4 (7 free), on one node that fits
        (Policy.topology_packing, [9], [4]),
        (Policy.fragmentation_aware, [9], [4]),
    ],
)
def test_small_gang_fills_the_fullest_domain(policy, nodes, gpus, generic):
    sched = scheduler(policy, generic)
    assert as_lists(sched.place(Request("r", 4))) == (nodes, gpus)
    check_counts(sched)


@PATHS
@pytest.mark.parametrize(
    ("policy", "nodes", "gpus"),
    [
        (Policy.first_fit, [0, 1], [4, 2]),  # lowest ids
        (Policy.best_fit, [8, 9], [3, 3]),  # d4 (7 free): no node has 6, so fullest node first
        (Policy.topology_packing, [8, 9], [3, 3]),
        (Policy.fragmentation_aware, [8, 9], [3, 3]),
    ],
)
def test_gang_larger_than_a_node_fills_the_fullest_nodes(policy, nodes, gpus, generic):
    sched = scheduler(policy, generic)
    assert as_lists(sched.place(Request("r", 6))) == (nodes, gpus)
    check_counts(sched)


@PATHS
@pytest.mark.parametrize(
    ("policy", "domains"),
    [
        (Policy.first_fit, {0: 8, 1: 8, 3: 4}),  # lowest ids, not kept together
        (Policy.best_fit, {0: 8, 1: 8, 4: 4}),  # largest first, tightest remainder (d4: 4 of 7 slices)
        (Policy.topology_packing, {4: 4, 5: 4, 0: 8, 1: 4}),  # no SU holds 20; in the hall: partly used
        (Policy.fragmentation_aware, {4: 4, 5: 4, 0: 8, 3: 4}),  # domains first, then whole ones; the last
    ],
)  # one where fewest whole domains are left
def test_gang_across_domains_with_slices(policy, domains, generic):
    sched = scheduler(policy, generic)
    result = sched.place(Request("r", 20, slice_gpus=4))
    assert gpus_per_domain(sched, result) == domains
    assert all(g % 4 == 0 for g in gpus_per_domain(sched, result).values())
    check_counts(sched)


@PATHS
@pytest.mark.parametrize("policy", list(Policy))
def test_whole_domains_in_one_su(policy, generic):
    sched = scheduler(policy, generic)
    result = sched.place(Request("r", 16, whole_domains=True, level=Level.su, level_required=True))
    assert gpus_per_domain(sched, result) == {0: 8, 1: 8}  # only SU0 has two whole domains
    reason = refused(sched.place(Request("big", 24, whole_domains=True, level=Level.su, level_required=True)))
    assert reason == "needs 3 whole NVLink domains of 8 GPUs in one SU; largest SU has 1 whole domain free"
    check_counts(sched)


@pytest.mark.parametrize("policy", list(Policy))
def test_whole_domain_request_holds_the_whole_domain(policy):
    sched = Scheduler(make_fleet(), policy)
    p = placed(sched.place(Request("r", 5, whole_domains=True)))
    assert p.gpus == 8 and len(gpus_per_domain(sched, p)) == 1
    assert sched.used_gpus_by_tenant() == {"default": 8}
    # the rest of that domain is not given to anyone else
    assert sched.free_gpus(Level.domain)[sched.domain_of_request("r")].tolist() == [0]


@PATHS
@pytest.mark.parametrize("policy", list(Policy))
def test_inference_replica_stays_in_one_domain(policy, generic):
    sched = scheduler(policy, generic)
    result = sched.place(Request("inf", 7, kind=WorkloadKind.inference))
    assert len(gpus_per_domain(sched, result)) == 1
    sched.release("inf")
    sched.restore(Request("x", 9), Placement("x", np.array([0, 2, 6]), np.array([3, 3, 3])))
    sched.restore(Request("y", 2), Placement("y", np.array([8, 10]), np.array([1, 1])))
    # now every domain has at most 6 free: a 7-GPU replica cannot be split over domains
    reason = refused(sched.place(Request("inf2", 7, kind=WorkloadKind.inference)))
    assert reason == "needs 7 GPUs in one NVLink domain; largest domain has 6 free GPUs"
    check_counts(sched)


@pytest.mark.parametrize("policy", list(Policy))
def test_level_required_against_preferred(policy):
    sched = Scheduler(make_fleet(), policy)
    reason = refused(sched.place(Request("r", 12, level=Level.domain, level_required=True)))
    assert reason == "needs 12 GPUs in one NVLink domain; domains have at most 8 GPUs"
    p = placed(sched.place(Request("r", 12, level=Level.domain)))
    assert p.gpus == 12
    # a required SU: every GPU of the gang in the same SU
    p = placed(sched.place(Request("s", 20, level=Level.su, level_required=True)))
    assert len(set(sched.fleet.node_su[p.nodes].tolist())) == 1
    reason = refused(sched.place(Request("t", 20, level=Level.su, level_required=True)))
    assert reason.startswith("needs 20 GPUs in one SU; largest SU has")
    check_counts(sched)


def test_node_level():
    sched = Scheduler(make_fleet(), Policy.first_fit)
    assert as_lists(sched.place(Request("a", 3, level=Level.node, level_required=True))) == ([0], [3])
    assert as_lists(sched.place(Request("b", 2, level=Level.node, level_required=True))) == ([1], [2])
    assert refused(sched.place(Request("c", 5, level=Level.node, level_required=True))).startswith(
        "needs 5 GPUs in one node"
    )


@pytest.mark.parametrize("policy", list(Policy))
def test_exclusive_tenant_never_shares_a_domain(policy):
    sched = Scheduler(make_fleet(), policy)
    a = placed(sched.place(Request("a1", 4, tenant="sov", exclusive_domains=True)))
    (domain,) = sched.domain_of_request("a1").tolist()
    assert sched.fleet.domain_tenant[domain] != NO_TENANT
    # another tenant's work never lands in that domain, even when it would fit best there
    for i in range(5):
        b = placed(sched.place(Request(f"b{i}", 4, tenant="other")))
        assert domain not in gpus_per_domain(sched, b)
    # the same tenant may use the rest of its domain
    a2 = placed(sched.place(Request("a2", 4, tenant="sov", exclusive_domains=True, level=Level.domain)))
    assert gpus_per_domain(sched, a2) == {domain: 4}
    # an exclusive tenant does not enter a domain another tenant uses
    c = placed(sched.place(Request("c", 4, tenant="sov2", exclusive_domains=True)))
    for d in gpus_per_domain(sched, c):
        others = [rid for rid in sched.allocations() if d in sched.domain_of_request(rid) and rid != "c"]
        assert not others
    sched.release("a1")
    sched.release("a2")
    assert sched.fleet.domain_tenant[domain] == NO_TENANT
    assert a.gpus == 4
    check_counts(sched)


def test_residency_pins_tenant_and_request():
    fleet = make_fleet(domains_per_su=(2, 2, 2, 2), sus_per_hall=(2, 2), halls_per_site=(1, 1))
    sched = Scheduler(fleet, Policy.first_fit, tenant_residency={"sov": (None, (1,))})
    p = placed(sched.place(Request("s", 16, tenant="sov")))
    assert set(fleet.node_hall[p.nodes].tolist()) == {1}
    p = placed(sched.place(Request("t", 4, allowed_sites=(1,))))
    assert set(fleet.node_site[p.nodes].tolist()) == {1}
    reason = refused(sched.place(Request("u", 20, tenant="sov")))
    assert reason == "needs 20 GPUs; 12 free GPUs where it may run"
    # the tenant's pin and the request's own intersect: hall 0 is not allowed for "sov"
    assert isinstance(sched.place(Request("v", 1, tenant="sov", allowed_halls=(0,))), Unplaceable)


def test_quota():
    sched = Scheduler(make_fleet(), Policy.first_fit, quotas_gpus={"acme": 10})
    placed(sched.place(Request("a", 8, tenant="acme")))
    assert refused(sched.place(Request("b", 4, tenant="acme"))) == "tenant acme over quota: 8 + 4 > 10 GPUs"
    placed(sched.place(Request("c", 4, tenant="other")))
    placed(sched.place(Request("d", 0, tenant="acme", gpu_fraction=0.5, cpu_cores=1)))
    assert sched.used_gpus_by_tenant() == {"acme": 9, "other": 4}
    sched.release("a")
    placed(sched.place(Request("b", 4, tenant="acme")))
    assert sched.used_gpus_by_tenant() == {"acme": 5, "other": 4}


@pytest.mark.parametrize("policy", list(Policy))
def test_health(policy):
    sched = Scheduler(make_fleet(), policy)
    a = placed(sched.place(Request("a", 8, level=Level.domain)))
    b = placed(sched.place(Request("b", 2)))
    nodes_a = a.nodes.tolist()
    assert sched.set_health(nodes_a[:1], HEALTH_FAILED) == ["a"] + (["b"] if nodes_a[0] in b.nodes else [])
    check_counts(sched)
    # cordon a whole free domain: nothing is returned and nothing is placed there
    free_domain = int(np.flatnonzero(sched.free_gpus(Level.domain) == 8)[0])
    cordoned = sched.topology.nodes_of_domain(free_domain)
    assert sched.set_health(cordoned, HEALTH_CORDONED) == []
    assert sched.free_gpus(Level.domain)[free_domain] == 0
    for i in range(10):
        r = sched.place(Request(f"x{i}", 4))
        if isinstance(r, Placement):
            assert not set(r.nodes.tolist()) & set(cordoned.tolist())
    check_counts(sched)
    # releasing work on a failed node keeps the failed node out of the free counts
    sched.release("a")
    check_counts(sched)
    assert sched.free_gpus(Level.node)[nodes_a[0]] == 0
    sched.set_health(nodes_a[:1], HEALTH_OK)
    sched.set_health(cordoned, HEALTH_OK)
    check_counts(sched)
    assert sched.set_health([], HEALTH_DRAINING) == []


@pytest.mark.parametrize("policy", list(Policy))
def test_fractional_gpus_share_and_never_go_whole(policy):
    fleet = make_fleet(
        domains_per_su=(1,), sus_per_hall=(1,), nodes_per_domain=1, gpus_per_node=2, cpu_cores=8, memory_gb=64
    )
    sched = Scheduler(fleet, policy)
    p1 = placed(sched.place(Request("s1", 0, gpu_fraction=0.5, cpu_cores=2, memory_gb=8)))
    assert p1.gpus == 0 and p1.gpu_fraction == 0.5
    assert sched.free_gpus(Level.node).tolist() == [1]  # a shared GPU is not free whole
    placed(sched.place(Request("s2", 0, gpu_fraction=0.5, cpu_cores=2, memory_gb=8)))
    assert sched.free_gpus(Level.node).tolist() == [1]  # packed onto the same GPU
    placed(sched.place(Request("s3", 0, gpu_fraction=0.3, cpu_cores=2, memory_gb=8)))
    assert sched.free_gpus(Level.node).tolist() == [0]
    assert refused(sched.place(Request("w", 1))).startswith("needs 1 GPUs")
    reason = refused(sched.place(Request("s4", 0, gpu_fraction=0.2, cpu_cores=4)))
    assert reason == "needs 0.2 of a GPU with 4 CPU cores and 0 GB memory on one node; no node has room"
    placed(sched.place(Request("s5", 0, gpu_fraction=0.7, cpu_cores=2)))
    assert refused(sched.place(Request("cpu", 0, cpu_cores=1))).endswith("no node has room")
    for rid in ("s1", "s2", "s3", "s5"):
        sched.release(rid)
    assert sched.free_gpus(Level.node).tolist() == [2]
    assert sched.node_cpu_free.tolist() == [8.0] and sched.node_memory_free_gb.tolist() == [64.0]
    check_counts(sched)


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (Request("x", -1), "gpus must be ≥ 0, got -1"),
        (Request("x", 0), "the request asks for no GPU, CPU or memory"),
        (Request("x", 1, gpu_fraction=1.5), "gpu_fraction must be in [0, 1), got 1.5"),
        (Request("x", 2, gpu_fraction=0.5), "a fractional request asks for a share of one GPU, not 2 GPUs"),
        (
            Request("x", 12, slice_gpus=16),
            "a slice of 16 GPUs does not fit one NVLink domain (largest has 8 GPUs)",
        ),
        (Request("x", 10, slice_gpus=4), "gpus (10) must be a multiple of slice_gpus (4)"),
        (Request("x", 100), "needs 100 GPUs; the fleet has 48"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(request_, reason):
    assert refused(Scheduler(make_fleet()).place(request_)) == reason


def test_api_surface():
    sched = Scheduler(make_fleet())
    assert sched.policy.name == Policy.topology_packing
    p = placed(sched.place(Request("a", 4)))
    assert sched.allocation("a") is p and set(sched.allocations()) == {"a"}
    assert refused(sched.place(Request("a", 4))) == "request a is already placed"
    assert sched.free_gpus("site").tolist() == [44]
    with pytest.raises(ValueError):
        sched.free_gpus(Level.site)[0] = 1
    assert 0 < sched.fragmentation() <= 1
    assert sched.whole_free_domains(Level.su).tolist() == [2, 3]
    sched.release("a")
    sched.release("a")  # unknown ids are ignored
    assert sched.fragmentation() == 0.0 and sched.allocation("a") is None
    assert sched.used_gpus_by_tenant() == {}
    assert set(POLICIES) == set(Policy)
    with pytest.raises(KeyError, match="unknown policy"):
        get_policy("round_robin")


def test_fragmentation_measure():
    sched = Scheduler(make_fleet(), Policy.first_fit)
    placed(sched.place(Request("a", 2)))  # d0 now has 6 free in a partly used domain
    assert sched.fragmentation() == pytest.approx(6 / 46)
    sched.set_health([2], HEALTH_CORDONED)  # d1 loses a node: its 4 other free GPUs are fragmented too
    assert sched.fragmentation() == pytest.approx(10 / 42)


def test_nvl72_row():
    """A row like the 1 MW example: one SU of 6 NVL72 racks (18 trays of 4 GPUs each)."""
    fleet = make_fleet(domains_per_su=(6,), sus_per_hall=(1,), nodes_per_domain=18)
    sched = Scheduler(fleet, Policy.topology_packing)
    p = placed(sched.place(Request("g", 144, slice_gpus=72, level=Level.su, level_required=True)))
    assert gpus_per_domain(sched, p) == {0: 72, 1: 72}
    r = placed(sched.place(Request("r", 8, kind=WorkloadKind.inference)))
    assert as_lists(r) == ([36, 37], [4, 4])
    s = placed(sched.place(Request("s", 6, kind=WorkloadKind.inference)))
    assert as_lists(s) == ([38, 39], [4, 2])  # the fullest domain that fits (d2, 64 free)
    check_counts(sched)


def test_restore_puts_back_what_a_store_kept():
    """The control plane rebuilds from its store: health first, then every placement, fractional
    ones stored without their share (it comes from the request)."""
    original = Scheduler(make_fleet(), Policy.topology_packing)
    requests = [
        Request("a", 6),
        Request("b", 0, gpu_fraction=0.25, cpu_cores=2, memory_gb=8),
        Request("c", 8, tenant="sov", exclusive_domains=True),
        Request("d", 4, whole_domains=True),
    ]
    for request in requests:
        placed(original.place(request))
    original.set_health([0], HEALTH_FAILED)
    rebuilt = Scheduler(make_fleet(), Policy.topology_packing)
    rebuilt.set_health([0], HEALTH_FAILED)
    for request in requests:
        stored = original.allocation(request.id)
        rebuilt.restore(request, Placement(request.id, stored.nodes.copy(), stored.gpus_per_node.copy()))
    for level in ALL_LEVELS:
        np.testing.assert_array_equal(rebuilt.free_gpus(level), original.free_gpus(level))
    np.testing.assert_array_equal(rebuilt.share_used_milli, original.share_used_milli)
    np.testing.assert_array_equal(rebuilt.fleet.domain_tenant, original.fleet.domain_tenant)
    assert rebuilt.used_gpus_by_tenant() == original.used_gpus_by_tenant()
    assert rebuilt.allocation("b").gpu_fraction == 0.25
    check_counts(rebuilt)
