"""Placement policies: how to choose a group (SU/hall/…), the domains inside it and the nodes inside those.

Every choice is an ``argmin`` (or a sort) of a key over the candidates' free counts; ties go to the
lowest id, so every policy is deterministic. Notation, for candidate NVLink domain d:

- ``cap_d``: GPUs the request can take from d (free GPUs rounded down to whole slices, or the whole
  domain for whole-domain requests; 0 where tenant or residency rules forbid d);
- ``free_d``: free GPUs in d; ``size_d``: GPUs installed; d is *whole-free* when ``free_d = size_d``;
- ``free_S(d)``: free GPUs in d's scalable unit, ``whole_S(d)``: whole-free domains in it;
- ``N``: GPUs asked; ``k``: GPUs taken from one domain.

Keys (smallest first):

first_fit
    group: lowest id with ``cap_G ≥ N``; one domain: lowest id with ``cap_d ≥ N``; several: ascending
    id; nodes: the lowest node that holds the domain's share, else ascending id. Gangs without a level
    are not kept together.
best_fit
    group: ``(cap_G, free_G)`` (tightest); one domain: ``(free_d, id)`` (tightest); several:
    ``cap_d`` descending (fewest domains), the last replaced by the tightest domain that covers the
    remainder; nodes: the fullest node that holds the domain's share, else fullest first (all
    policies but first_fit).
topology_packing
    group: ``(free_G, cap_G)`` (fullest group that fits); one domain: ``(free_d, free_S(d), id)``
    (fullest domain that fits, in the fullest SU); several: partly used domains first, fullest first,
    then whole-free domains by id; nodes fullest first. Gangs without a level go to the narrowest level
    that holds them (domain → SU → hall → site → fleet), which keeps whole domains and units free for
    large gangs.
fragmentation_aware
    minimises the increase of the fragmentation measure F = P / T (P: free GPUs in domains that are not
    whole-free, T: all free GPUs). Taking k GPUs from d changes T by −k and P by
    ``ΔP_d = (free_d − k) − free_d·[free_d < size_d]``, so one domain minimises
    ``(ΔP_d, free_d − k, whole_S(d), id)``: fill a partly used domain, the tightest one, and when a
    whole domain must be broken, break it in the SU with the fewest whole domains left (SU-level
    gangs need whole domains). Several domains: as topology_packing, the last one chosen by the same
    rule for the remainder. Group ``(cap_G, free_G)``; levels as topology_packing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tokenfab.sched.types import Level, Policy

NARROWEST_FIRST: tuple[Level | None, ...] = (Level.domain, Level.su, Level.hall, Level.site, None)
"""Levels a gang without a level is tried at by a `narrowest_level` policy (None: the whole fleet)."""


@dataclass(frozen=True)
class DomainView:
    """Candidate domains (ascending ids) and their figures for one request."""

    ids: np.ndarray
    cap: np.ndarray
    free: np.ndarray
    size: np.ndarray
    su_free: np.ndarray
    su_whole: np.ndarray

    @property
    def whole_free(self) -> np.ndarray:
        whole: np.ndarray = self.free == self.size
        return whole

    def take(self, positions: np.ndarray) -> DomainView:
        return DomainView(
            self.ids[positions],
            self.cap[positions],
            self.free[positions],
            self.size[positions],
            self.su_free[positions],
            self.su_whole[positions],
        )


@dataclass(frozen=True)
class PlacementPolicy:
    name: Policy
    description: str
    pick_group: Callable[[np.ndarray, np.ndarray, int], int]
    """(cap_G, free_G, need) → group index, or -1 if none has cap_G ≥ need."""
    pick_domain: Callable[[DomainView, int], int]
    """(candidates with cap ≥ need, need) → position in the view."""
    order_domains: Callable[[DomainView, int], np.ndarray]
    """(candidates with cap > 0, need) → positions in the order to take them."""
    tightest_domain: bool
    """One domain: the one with the fewest free GPUs that fits (else the lowest id)."""
    su_tie_break: str
    """Among equally tight domains: "id", "free" (fullest SU) or "whole" (fewest whole domains)."""
    pack_nodes: bool
    """Fill the fullest nodes of a domain first (else lowest node id first)."""
    narrowest_level: bool
    """Keep a gang without a level inside the narrowest level that holds it."""
    one_domain_first: bool = False
    """Without `narrowest_level`: try one NVLink domain before the whole fleet when the gang fits one."""
    lowest_ids_first: bool = False
    """Several domains are taken in ascending id order (a fleet-wide search then needs only the SUs up
    to the one where the running capacity reaches the request)."""
    last_whole_domain_from_fewest_whole_su: bool = False
    """Whole domains in a group: the last one comes from the SU with the fewest whole-free domains (lowest
    id on ties), not the next by id."""

    def gang_levels(self, need: int, max_domain_gpus: int) -> tuple[Level | None, ...]:
        """The levels a gang of ``need`` GPUs without a level of its own is tried at, in order."""
        if self.narrowest_level:
            return NARROWEST_FIRST
        if self.one_domain_first and need <= max_domain_gpus:
            return (Level.domain, None)  # the fleet-wide search would pick the same domain
        return (None,)


# ---- groups -------------------------------------------------------------------------------------


def _first_group(cap: np.ndarray, free: np.ndarray, need: int) -> int:
    fits = cap >= need
    index = int(fits.argmax())
    return index if fits[index] else -1


def _tightest_group(cap: np.ndarray, free: np.ndarray, need: int) -> int:
    fits = np.flatnonzero(cap >= need)
    if not len(fits):
        return -1
    return int(fits[np.lexsort((free[fits], cap[fits]))[0]])


def _fullest_group(cap: np.ndarray, free: np.ndarray, need: int) -> int:
    fits = np.flatnonzero(cap >= need)
    if not len(fits):
        return -1
    return int(fits[np.lexsort((cap[fits], free[fits]))[0]])


# ---- one domain ---------------------------------------------------------------------------------


def _first_domain(view: DomainView, need: int) -> int:
    return 0


def _tightest_domain(view: DomainView, need: int) -> int:
    return int(view.free.argmin())


def _fullest_domain(view: DomainView, need: int) -> int:
    return int(np.lexsort((view.su_free, view.free))[0])


def _least_fragmenting_domain(view: DomainView, need: int) -> int:
    delta_partial = (view.free - need) - np.where(view.whole_free, 0, view.free)
    return int(np.lexsort((view.su_whole, view.free, delta_partial))[0])


# ---- several domains ----------------------------------------------------------------------------


def _ascending(view: DomainView, need: int) -> np.ndarray:
    return np.arange(len(view.ids))


def _tighten_last(
    view: DomainView, order: np.ndarray, need: int, choose: Callable[[DomainView, int], int]
) -> np.ndarray:
    """Keep the prefix of ``order`` that leaves a remainder, then pick the last domain among the rest
    with ``choose``."""
    reach = np.cumsum(view.cap[order])
    count = min(int(np.searchsorted(reach, need)) + 1, len(order))
    before = order[: count - 1]
    remainder = need - (int(reach[count - 2]) if count > 1 else 0)
    rest = order[count - 1 :]
    fits = rest[view.cap[rest] >= remainder]
    if remainder <= 0 or not len(fits):
        return order[:count]
    last = fits[choose(view.take(fits), remainder)]
    return np.concatenate([before, [last]])


def _largest_first(view: DomainView, need: int) -> np.ndarray:
    return _tighten_last(view, np.lexsort((view.ids, -view.cap)), need, _tightest_domain)


def _partial_first(view: DomainView, need: int) -> np.ndarray:
    return np.lexsort((view.ids, view.free, view.whole_free))


def _partial_first_least_fragmenting(view: DomainView, need: int) -> np.ndarray:
    return _tighten_last(view, _partial_first(view, need), need, _least_fragmenting_domain)


POLICIES: dict[Policy, PlacementPolicy] = {
    p.name: p
    for p in (
        PlacementPolicy(
            Policy.first_fit,
            "lowest ids first (baseline)",
            _first_group,
            _first_domain,
            _ascending,
            tightest_domain=False,
            su_tie_break="id",
            pack_nodes=False,
            narrowest_level=False,
            lowest_ids_first=True,
        ),
        PlacementPolicy(
            Policy.best_fit,
            "tightest group and domain that fit",
            _tightest_group,
            _tightest_domain,
            _largest_first,
            tightest_domain=True,
            su_tie_break="id",
            pack_nodes=True,
            narrowest_level=False,
            one_domain_first=True,
        ),
        PlacementPolicy(
            Policy.topology_packing,
            "fill the fullest domain that fits; keep whole domains and units free for large gangs",
            _fullest_group,
            _fullest_domain,
            _partial_first,
            tightest_domain=True,
            su_tie_break="free",
            pack_nodes=True,
            narrowest_level=True,
        ),
        PlacementPolicy(
            Policy.fragmentation_aware,
            "minimise the increase of the fragmentation measure",
            _tightest_group,
            _least_fragmenting_domain,
            _partial_first_least_fragmenting,
            tightest_domain=True,
            su_tie_break="whole",
            pack_nodes=True,
            narrowest_level=True,
            last_whole_domain_from_fewest_whole_su=True,
        ),
    )
}
"""The four placement policies by name."""


def get_policy(policy: Policy | str) -> PlacementPolicy:
    """The registered policy for a `Policy` or its name; KeyError naming the choices otherwise."""
    try:
        return POLICIES[Policy(policy)]
    except ValueError:
        raise KeyError(
            f"unknown policy {policy!r}; choose from {', '.join(p.value for p in POLICIES)}"
        ) from None
