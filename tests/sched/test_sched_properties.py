"""Property tests: random sequences of place / release / health changes on a small fleet."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_fleets import make_fleet, make_mixed_fleet

from tokenfab.fleet import HEALTH_CORDONED, HEALTH_FAILED, HEALTH_OK, NO_TENANT
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.state import recount
from tokenfab.sched.types import Level, Placement, Policy, Request, WorkloadKind
from tokenfab.units import MILLI_PER_GPU

TENANTS = ("a", "b", "c")
LEVELS = (None, Level.domain, Level.rack, Level.su, Level.hall, Level.site, Level.node)


def small_fleet():
    # SU0, SU1 in hall 0 (site 0), SU2 in hall 1 (site 1); domains of 2 nodes × 4 GPUs
    return make_fleet(
        domains_per_su=(3, 3, 2), sus_per_hall=(2, 1), halls_per_site=(1, 1), cpu_cores=16, memory_gb=128
    )


gang = st.builds(
    lambda gpus, slice_gpus, whole, level, required, inference, tenant, exclusive, priority: dict(
        gpus=gpus * max(1, slice_gpus),
        slice_gpus=slice_gpus,
        whole_domains=whole,
        level=level,
        level_required=required,
        kind=WorkloadKind.inference if inference else WorkloadKind.training,
        tenant=tenant,
        exclusive_domains=exclusive,
        priority=priority,
    ),
    st.integers(1, 12),
    st.sampled_from([0, 0, 2, 4, 8]),
    st.booleans(),
    st.sampled_from(LEVELS),
    st.booleans(),
    st.booleans(),
    st.sampled_from(TENANTS),
    st.booleans(),
    st.integers(0, 2),
)
small = st.builds(
    lambda milli, cpu, tenant: dict(
        gpus=0,
        gpu_fraction=milli / MILLI_PER_GPU,
        cpu_cores=cpu,
        memory_gb=4.0 * cpu,
        tenant=tenant,
        kind=WorkloadKind.small,
    ),
    st.sampled_from([0, 100, 250, 500, 700]),
    st.integers(1, 6),
    st.sampled_from(TENANTS),
)
operation = st.one_of(
    st.tuples(st.just("place"), st.one_of(gang, gang, small)),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(
        st.just("health"), st.integers(0, 19), st.sampled_from([HEALTH_OK, HEALTH_CORDONED, HEALTH_FAILED])
    ),
    st.tuples(st.just("preempt"), gang),
)


def run(ops, policy, residency=None, fleet=None):
    """Apply ``ops``; return the scheduler and the log of outcomes (placements as lists, or None)."""
    sched = Scheduler(fleet if fleet is not None else small_fleet(), policy, tenant_residency=residency)
    log = []
    for i, op in enumerate(ops):
        if op[0] in ("place", "preempt"):
            request = Request(f"r{i}", **op[1])
            healthy_before = sched.fleet.node_health.copy()
            result = sched.place(request, allow_preemption=op[0] == "preempt")
            if isinstance(result, Placement):
                assert (healthy_before[result.nodes] == HEALTH_OK).all()
                check_request_honoured(sched, request, result)
                log.append((result.nodes.tolist(), result.gpus_per_node.tolist(), result.evicted))
            else:
                log.append(None)
        elif op[0] == "release":
            live = sorted(sched.allocations())
            if live:
                sched.release(live[op[1] % len(live)])
        else:
            log.append(sched.set_health([op[1] % sched.fleet.n_nodes], op[2]))
        check_state(sched)
    return sched, log


def check_request_honoured(sched: Scheduler, request: Request, p: Placement) -> None:
    fleet = sched.fleet
    per_domain: dict[int, int] = {}
    for node, gpus in zip(p.nodes.tolist(), p.gpus_per_node.tolist(), strict=True):
        per_domain[int(fleet.node_domain[node])] = per_domain.get(int(fleet.node_domain[node]), 0) + gpus
    if request.gpu_fraction > 0:
        assert len(p.nodes) == 1 and p.gpus == 0
        return
    if request.whole_domains:
        assert all(g == fleet.domain_gpus[d] for d, g in per_domain.items()) and p.gpus >= request.gpus
    else:
        assert p.gpus == request.gpus
    if request.slice_gpus:
        assert all(g % request.slice_gpus == 0 for g in per_domain.values())
    if (
        request.kind == WorkloadKind.inference
        and request.gpus <= fleet.domain_gpus.max()
        and not request.slice_gpus
    ):
        assert len(per_domain) == 1
    if request.level is not None and request.level_required:
        level = Level.domain if request.level == Level.node and request.whole_domains else request.level
        parents = {
            Level.node: p.nodes,
            Level.domain: fleet.node_domain[p.nodes],
            Level.rack: fleet.node_rack[p.nodes],
            Level.su: fleet.node_su[p.nodes],
            Level.hall: fleet.node_hall[p.nodes],
            Level.site: fleet.node_site[p.nodes],
        }[level]
        assert len(set(np.asarray(parents).tolist())) == 1


def check_state(sched: Scheduler) -> None:
    fleet = sched.fleet
    # no GPU in two allocations: whole + shared + free = installed, on every node
    whole = np.zeros(fleet.n_nodes, dtype=np.int64)
    shares = np.zeros_like(sched.share_used_milli)
    tenants_in_domain: dict[int, set[str]] = {}
    exclusive_in_domain: dict[int, set[str]] = {}
    for held in sched.held():
        np.add.at(whole, held.placement.nodes, held.placement.gpus_per_node)
        if held.share_slot >= 0:
            shares[held.placement.nodes[0], held.share_slot] += held.share_milli
        for d in held.domains.tolist():
            tenants_in_domain.setdefault(d, set()).add(held.request.tenant)
            if held.request.exclusive_domains:
                exclusive_in_domain.setdefault(d, set()).add(held.request.tenant)
    shared = (sched.share_used_milli > 0).sum(axis=1)
    assert (fleet.node_free_gpus >= 0).all()
    np.testing.assert_array_equal(whole + shared + fleet.node_free_gpus, fleet.node_gpus)
    np.testing.assert_array_equal(shares, sched.share_used_milli)
    assert (sched.share_used_milli <= MILLI_PER_GPU).all()
    # an exclusive tenant's domain holds no other tenant
    for d, owners in exclusive_in_domain.items():
        assert tenants_in_domain[d] == owners and len(owners) == 1
        assert fleet.domain_tenant[d] != NO_TENANT
    # incremental counts equal the recount at every level, and the domain index too
    fresh = recount(fleet, sched.topology)
    for level in (Level.node, Level.domain, Level.rack, Level.su, Level.hall, Level.site):
        np.testing.assert_array_equal(sched.free_gpus(level), fresh.of(level))
    np.testing.assert_array_equal(sched.free.domain_hist, fresh.domain_hist)
    np.testing.assert_array_equal(sched.free.su_hist, fresh.su_hist)
    np.testing.assert_array_equal(sched.free.su_max, fresh.su_max)
    # quotas book equals the allocations
    used: dict[str, int] = {}
    for held in sched.held():
        used[held.request.tenant] = used.get(held.request.tenant, 0) + held.milli
    assert {t: m for t, m in sched.quotas.used_milli.items() if m} == {t: m for t, m in used.items() if m}


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(ops=st.lists(operation, max_size=30), policy=st.sampled_from(list(Policy)), mixed=st.booleans())
def test_random_sequences_keep_state_exact_and_release_restores_it(ops, policy, mixed):
    make = make_mixed_fleet if mixed else small_fleet
    sched, _ = run(ops, policy, fleet=make())
    sched.set_health(np.arange(sched.fleet.n_nodes), HEALTH_OK)
    for rid in list(sched.allocations()):
        sched.release(rid)
    fresh = make()
    np.testing.assert_array_equal(sched.fleet.node_free_gpus, fresh.node_free_gpus)
    np.testing.assert_array_equal(sched.fleet.domain_tenant, fresh.domain_tenant)
    np.testing.assert_allclose(sched.node_cpu_free, fresh.node_cpu_cores)
    np.testing.assert_allclose(sched.node_memory_free_gb, fresh.node_memory_gb)
    assert not sched.share_used_milli.any() and sched.used_gpus_by_tenant() == {}
    assert sched.fragmentation() == 0.0
    check_state(sched)


@SETTINGS
@given(ops=st.lists(operation, max_size=25), policy=st.sampled_from(list(Policy)))
def test_same_inputs_same_placements(ops, policy):
    assert run(ops, policy)[1] == run(ops, policy)[1]


@SETTINGS
@given(ops=st.lists(operation, max_size=25), policy=st.sampled_from(list(Policy)))
def test_indexed_search_equals_the_generic_search(ops, policy):
    """The histogram fast path and the masked numpy path choose the same placements."""
    allow_all = {t: ((0, 1), None) for t in TENANTS}
    assert run(ops, policy)[1] == run(ops, policy, residency=allow_all)[1]
