"""Who may evict whom, and which victims to choose.

Rule: a request may evict an allocation only if that allocation is ``preemptible`` and its priority is
strictly lower. Among the sets of such victims whose release makes the request placeable, we want the
cheapest, in GPU-hours of work lost:

    lost(v) = g_v · (t_now − t_v) / 3600      [GPU·h]

with g_v the victim's GPU-equivalents and t_v its placement time; without a clock (``now_s`` or the
victim's stamp missing) the cost is g_v, i.e. GPUs held (the work lost per hour since the last
checkpoint). Choosing the cheapest set exactly is a covering problem (NP-hard in general), so the search
is a heuristic that is exact for one victim:

1. every single victim, cheapest first (up to ``SINGLE_TRIES``): the first whose release alone frees a
   placement is the cheapest single victim;
2. greedy: release victims cheapest first (lowest priority first on equal cost) until the request fits,
   then drop again every victim (most expensive first) whose release turns out not to be needed, which
   leaves a minimal set.

The cheaper of (1) and (2) wins. Every trial releases victims and puts them back exactly, so the state
after planning equals the state before it.

Tenant scope: a scheduler built with ``preempt_within_tenant=True`` (the control plane's) lets a request
evict only allocations of its own tenant; other tenants' work is never a candidate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokenfab.sched.types import Eviction, Request
from tokenfab.units import MILLI_PER_GPU

if TYPE_CHECKING:
    from tokenfab.sched.scheduler import Allocation, Scheduler

SINGLE_TRIES = 64
"""How many single victims, cheapest first, are tried on their own."""


def may_evict(attacker: Request, victim: Request, within_tenant: bool = False) -> bool:
    """Whether ``attacker`` may evict ``victim``: strictly lower priority and preemptible (and, with
    ``within_tenant``, of the same tenant)."""
    if within_tenant and victim.tenant != attacker.tenant:
        return False
    return victim.preemptible and victim.priority < attacker.priority


def lost_gpu_hours(held: Allocation, now_s: float | None) -> float:
    """Work lost by evicting ``held`` [GPU·h]: GPUs × hours since placement (GPUs alone without a clock)."""
    gpus = held.milli / MILLI_PER_GPU
    if now_s is None or held.placed_at_s is None:
        return gpus
    return gpus * max(0.0, now_s - held.placed_at_s) / 3600.0


def plan(scheduler: Scheduler, request: Request, now_s: float | None = None) -> Eviction | None:
    """The victims to evict so that ``request`` fits, or None if no allowed set of victims frees a
    placement. Leaves the scheduler's state as it found it (every test runs in a `Scheduler.trial`)."""
    within_tenant = scheduler.preempt_within_tenant
    candidates = [h for h in scheduler.held() if may_evict(request, h.request, within_tenant)]
    if not candidates:
        return None
    cost = {h.request.id: lost_gpu_hours(h, now_s) for h in candidates}
    candidates.sort(key=lambda h: (cost[h.request.id], h.request.priority, -h.sequence))

    best: list[Allocation] | None = None
    for held in candidates[:SINGLE_TRIES]:
        if _fits_without(scheduler, request, [held]):
            best = [held]
            break

    greedy = _greedy(scheduler, request, candidates)
    if greedy is not None and (
        best is None or sum(cost[h.request.id] for h in greedy) < sum(cost[h.request.id] for h in best)
    ):
        best = greedy
    if best is None:
        return None
    return Eviction(
        request_id=request.id,
        victims=tuple(h.request.id for h in best),
        gpus_freed=sum(h.placement.gpus for h in best),
        lost_gpu_hours=sum(cost[h.request.id] for h in best),
    )


def _fits_without(scheduler: Scheduler, request: Request, victims: list[Allocation]) -> bool:
    with scheduler.trial() as trial:
        for held in victims:
            trial.release(held)
        return trial.fits(request)


def _greedy(scheduler: Scheduler, request: Request, candidates: list[Allocation]) -> list[Allocation] | None:
    """Release victims cheapest first, in doubling batches, until the request fits; then put back every
    one that is not needed, most expensive first. The minimal set left, or None."""
    with scheduler.trial() as trial:
        batch = 1
        position = 0
        fits = False
        while position < len(candidates):
            for held in candidates[position : position + batch]:
                trial.release(held)
            position += batch
            batch *= 2
            if trial.fits(request):
                fits = True
                break
        if not fits:
            return None
        for held in reversed(list(trial.released)):
            trial.put_back(held)
            if not trial.fits(request):
                trial.release(held)
        return list(reversed(trial.released))
