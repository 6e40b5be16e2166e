"""The scheduler's search: a placement for a request on the current free counts, or why there is none.

Pure: it reads the scheduler's state (free counts per level, CPU/memory per node, shared GPUs) and
changes nothing; `tokenfab.sched.scheduler.Scheduler` applies what it finds. Every choice that differs
between policies is asked of the policy object (`tokenfab.sched.policies.PlacementPolicy`); the
equations are in that module's docstring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tokenfab.fleet import HEALTH_OK
from tokenfab.sched.policies import NARROWEST_FIRST, DomainView
from tokenfab.sched.types import Level, Request, WorkloadKind
from tokenfab.units import MILLI_PER_GPU

if TYPE_CHECKING:
    from tokenfab.sched.scheduler import Scheduler

_BROADER = (Level.domain, Level.rack, Level.su, Level.hall, Level.site)
_LEVEL_WORDS = {
    Level.node: "node",
    Level.domain: "NVLink domain",
    Level.rack: "rack",
    Level.su: "SU",
    Level.hall: "hall",
    Level.site: "site",
}


@dataclass
class Found:
    """A placement the search found (not yet applied)."""

    nodes: np.ndarray
    gpus: np.ndarray
    domains: np.ndarray
    """Distinct domains of ``nodes``, ascending."""
    share_slot: int = -1
    share_milli: int = 0
    per_domain: np.ndarray | None = None
    """GPUs taken from each of ``domains`` (None: not worked out by the search)."""


@dataclass
class _Ask:
    """A whole-GPU request as the search sees it."""

    request: Request
    need: int
    slice_gpus: int
    whole: bool
    mask: np.ndarray | None
    su_cap: np.ndarray | None = None


_NEVER = np.iinfo(np.int64).max
_SHORT = 256
"""Up to this many candidate domains, a lowest-ids-first policy walks them in Python rather than with numpy."""


class PlacementSearch:
    """Finds placements on a scheduler's state (arrays shared with it, changed in place by it)."""

    def __init__(self, scheduler: Scheduler):
        fleet = scheduler.fleet
        self.fleet = fleet
        self.policy = scheduler.policy
        self.topology = scheduler.topology
        self.free = scheduler.free
        self.node_cpu_free = scheduler.node_cpu_free
        self.node_memory_free_gb = scheduler.node_memory_free_gb
        self.share_used_milli = scheduler.share_used_milli
        self.node_shared_gpus = scheduler.node_shared_gpus
        self.domain_mask = scheduler.domain_mask
        self._domain_gpus = fleet.domain_gpus.astype(np.int64)
        self._domain_su = self.topology.domain_parent[Level.su]
        self._uniform_ranges = self.topology.uniform_domains and self.topology.level_domain_range is not None
        su_hall = fleet.su_hall.astype(np.int64)
        self._su_parent = {
            Level.su: np.arange(fleet.n_sus),
            Level.hall: su_hall,
            Level.site: fleet.hall_site.astype(np.int64)[su_hall],
        }
        self._slice_weights: dict[int, np.ndarray] = {}
        self._nodes_of_domain: dict[int, np.ndarray] = {}

    def find(self, request: Request) -> Found | str:
        """A placement for ``request`` on the current state, or the reason there is none. Pure search."""
        if request.gpu_fraction > 0 or request.gpus == 0:
            return self._find_small(request)
        return self._find_gang(request)

    def _find_gang(self, request: Request) -> Found | str:
        need = request.gpus
        slice_gpus = request.slice_gpus
        if (
            not slice_gpus
            and request.kind == WorkloadKind.inference
            and need <= self.topology.max_domain_gpus
        ):
            slice_gpus = need  # an inference replica is one TP×EP group inside one domain
        ask = _Ask(request, need, slice_gpus, request.whole_domains, self.domain_mask(request))
        if request.level is not None:
            start = Level.domain if request.level == Level.node and ask.whole else request.level
            if request.level_required:
                levels: tuple[Level | None, ...] = (start,)
            elif start == Level.node:
                levels = (Level.node, *NARROWEST_FIRST)
            else:
                levels = (*_BROADER[_BROADER.index(start) :], None)
        elif slice_gpus == need:
            levels = (Level.domain,)
        else:
            levels = self.policy.gang_levels(need, self.topology.max_domain_gpus)
        first_reason: Callable[[], str] | None = None  # failures are formatted only if every level fails
        last_reason: Callable[[], str] | None = None
        for level in levels:
            if level == Level.node:
                found = self._gang_on_one_node(ask)
            elif level == Level.domain:
                found = self._gang_in_one_domain(ask)
            else:
                found = self._gang_in_group(ask, level)
            if isinstance(found, Found):
                return found
            last_reason = found
            first_reason = first_reason or found
        reason = first_reason if request.level is not None else last_reason
        assert reason is not None  # there is always at least one level to try
        return reason()

    # -- capacities

    def _cap(self, ask: _Ask, lo: int | None = None, hi: int | None = None) -> np.ndarray:
        """GPUs ``ask`` can take from each domain in ``[lo, hi)`` (all domains by default)."""
        free = self.free.domain[lo:hi]
        if ask.whole:  # whole-free domains that can hold a slice
            size = self._domain_gpus[lo:hi]
            cap = np.where((free == size) & (size >= ask.slice_gpus), size, 0)
        elif ask.slice_gpus > 1:
            cap = free - free % ask.slice_gpus
        else:
            cap = free
        if ask.mask is not None:
            cap = np.where(ask.mask[lo:hi], cap, 0)
        capacity: np.ndarray = cap
        return capacity

    def _indexed(self, ask: _Ask) -> bool:
        """Whether the domain index (histograms, contiguous ranges) can answer for ``ask``."""
        return ask.mask is None and self._uniform_ranges

    def _su_cap(self, ask: _Ask) -> np.ndarray:
        """GPUs ``ask`` can take per SU, from the per-SU histogram of domain free counts (kept on ``ask``)."""
        if ask.su_cap is None:
            ask.su_cap = self._su_cap_now(ask)
        return ask.su_cap

    def _su_cap_now(self, ask: _Ask) -> np.ndarray:
        hist = self.free.su_hist
        size = self.topology.max_domain_gpus
        per_su: np.ndarray
        if ask.whole:
            per_su = hist[size] * size
            return per_su
        if ask.slice_gpus > 1:
            weights = self._slice_weights.get(ask.slice_gpus)
            if weights is None:
                values = np.arange(size + 1, dtype=np.int64)
                weights = self._slice_weights.setdefault(ask.slice_gpus, values - values % ask.slice_gpus)
            start = ask.slice_gpus
            per_su = weights[start:] @ hist[start:]
            return per_su
        return self.free.su

    def _what(self, ask: _Ask) -> str:
        if ask.whole:
            size = self.topology.max_domain_gpus
            count = math.ceil(ask.need / size)
            return f"{count} whole NVLink domain{'s' if count > 1 else ''} of {size} GPUs"
        if ask.slice_gpus and ask.slice_gpus != ask.need:
            return f"{ask.need} GPUs in slices of {ask.slice_gpus}"
        return f"{ask.need} GPUs"

    def _largest(self, ask: _Ask, cap: np.ndarray) -> str:
        most = int(cap.max(initial=0))
        if ask.whole:
            count = most // max(1, self.topology.max_domain_gpus)
            return f"{count} whole domain{'' if count == 1 else 's'} free"
        return f"{most} free GPUs"

    # -- one node, one domain

    def _gang_on_one_node(self, ask: _Ask) -> Found | Callable[[], str]:
        free = self.free.node
        cap = free if ask.mask is None else np.where(ask.mask[self.fleet.node_domain], free, 0)
        if ask.whole:
            cap = np.where(cap == self.fleet.node_gpus, cap, 0)
        fits = np.flatnonzero(cap >= ask.need)
        if not len(fits):
            return lambda: (
                f"needs {ask.need} GPUs in one node; largest node has {int(cap.max(initial=0))} free"
            )
        node = int(fits[cap[fits].argmin()]) if self.policy.pack_nodes else int(fits[0])
        domain = int(self.fleet.node_domain[node])
        return Found(
            np.asarray([node], dtype=np.int64),
            np.asarray([ask.need], dtype=np.int64),
            np.asarray([domain], dtype=np.int64),
        )

    def _view(self, ids: np.ndarray, cap: np.ndarray) -> DomainView:
        su = self._domain_su[ids]
        return DomainView(
            ids, cap, self.free.domain[ids], self._domain_gpus[ids], self.free.su[su], self._su_whole()[su]
        )

    def _su_whole(self) -> np.ndarray:
        """Whole-free domains per SU."""
        if self.topology.uniform_domains:
            whole_per_su: np.ndarray = self.free.su_hist[self.topology.max_domain_gpus]
            return whole_per_su
        whole = (self.free.domain == self._domain_gpus).astype(np.int64)
        return np.bincount(
            self._domain_su, weights=whole, minlength=self.topology.level_size[Level.su]
        ).astype(np.int64)

    def _gang_in_one_domain(self, ask: _Ask) -> Found | Callable[[], str]:
        need = ask.need
        size = self.topology.max_domain_gpus
        if need > size:
            return lambda: f"needs {self._what(ask)} in one NVLink domain; domains have at most {size} GPUs"
        if self._indexed(ask):
            least = size if ask.whole else need
            counts = self.free
            if self.policy.tightest_domain:
                present = counts.domain_hist[least:] > 0
                first = int(present.argmax())
                if not present[first]:
                    return self._no_domain(ask)
                value = least + first
                row = counts.su_hist[value]
                tie = self.policy.su_tie_break
                if tie == "id":
                    su = int((row > 0).argmax())
                else:
                    key = counts.su if tie == "free" else counts.su_hist[size]
                    su = int(np.where(row > 0, key, _NEVER).argmin())
                lo, hi = self._su_range(su)
                domain = lo + int((counts.domain[lo:hi] == value).argmax())
            else:
                fits = counts.su_max >= least
                su = int(fits.argmax())
                if not fits[su]:
                    return self._no_domain(ask)
                lo, hi = self._su_range(su)
                domain = lo + int((counts.domain[lo:hi] >= least).argmax())
        else:
            cap = self._cap(ask)
            fitting = np.flatnonzero(cap >= need)
            if not len(fitting):
                return self._no_domain(ask, cap)
            domain = int(fitting[self.policy.pick_domain(self._view(fitting, cap[fitting]), need)])
        take = int(self._domain_gpus[domain]) if ask.whole else need
        return self._nodes_in_domain(domain, take)

    def _no_domain(self, ask: _Ask, cap: np.ndarray | None = None) -> Callable[[], str]:
        def reason() -> str:
            if ask.whole:
                most = self._cap(ask) if cap is None else cap
            else:  # report free GPUs, not whole slices: "largest domain has 6 free GPUs"
                free = self.free.domain
                most = free if ask.mask is None else np.where(ask.mask, free, 0)
            return (
                f"needs {self._what(ask)} in one NVLink domain; largest domain has {self._largest(ask, most)}"
            )

        return reason

    def _su_range(self, su: int) -> tuple[int, int]:
        ranges = self.topology.level_domain_range
        assert ranges is not None  # asked only when `_indexed`: uniform, contiguous domains
        start, end = ranges[Level.su]
        return int(start[su]), int(end[su])

    # -- a group of domains

    def _gang_in_group(self, ask: _Ask, level: Level | None) -> Found | Callable[[], str]:
        """``ask`` inside one group of ``level`` (the policy picks it), or the whole fleet (None)."""
        candidates = self._candidates(ask, level)
        if not isinstance(candidates, tuple):
            return candidates
        ids, cap = candidates
        policy = self.policy
        need = ask.need
        if policy.lowest_ids_first and ids is not None and len(cap) <= _SHORT:
            # lowest ids first: the shortest prefix of the group whose capacity covers the request
            chosen_list, takes_list, left = [], [], need
            for i, c in enumerate(cap.tolist()):
                if c:
                    chosen_list.append(i)
                    takes_list.append(c)
                    left -= c
                    if left <= 0:
                        break
            domains = ids[chosen_list]
            takes = np.array(takes_list, dtype=np.int64)
        elif policy.lowest_ids_first:
            reach = np.cumsum(cap)
            count = int(np.searchsorted(reach, need)) + 1
            chosen = np.flatnonzero(cap[:count])
            domains = chosen if ids is None else ids[chosen]
            takes = cap[chosen].astype(np.int64)
        else:
            positive = np.flatnonzero(cap)
            view = self._view(positive if ids is None else ids[positive], cap[positive])
            if not ask.whole:
                fits = np.flatnonzero(view.cap >= need)
                if len(fits):
                    one = view.take(fits)
                    return self._nodes_in_domain(int(one.ids[policy.pick_domain(one, need)]), need)
            order = policy.order_domains(view, need)
            reach = np.cumsum(view.cap[order])
            order = order[: int(np.searchsorted(reach, need)) + 1]
            domains, takes = view.ids[order], view.cap[order].astype(np.int64)
        if not ask.whole:
            takes[-1] -= sum(takes.tolist()) - need
        if len(domains) == 1:
            return self._nodes_in_domain(int(domains[0]), int(takes[0]))
        return self._nodes_in_domains(domains, takes)

    def _candidates(
        self, ask: _Ask, level: Level | None
    ) -> tuple[np.ndarray | None, np.ndarray] | Found | Callable[[], str]:
        """The candidate domains (ids, None: all) and what ``ask`` can take from each, or a placement
        already found (whole domains of a group), or the reason there is none."""
        need = ask.need
        if level is not None:
            return self._group_candidates(ask, level)
        if self.policy.lowest_ids_first and self._indexed(ask):
            # lowest ids first: only the SUs up to the one where the running capacity reaches N matter
            reach = np.cumsum(self._su_cap(ask))
            if reach[-1] < need:
                return lambda: f"needs {self._what(ask)}; {self._largest(ask, reach[-1:])} where it may run"
            last = int(np.searchsorted(reach, need))
            first = int(np.searchsorted(reach, 0, side="right"))
            ranges = self.topology.level_domain_range
            assert ranges is not None  # `_indexed` holds: uniform, contiguous domains
            su_start, su_end = ranges[Level.su]
            lo, hi = int(su_start[first]), int(su_end[last])
            return np.arange(lo, hi), self._cap(ask, lo, hi)
        cap = self._cap(ask)
        total = int(cap.sum())
        if total < need:
            return lambda: (
                f"needs {self._what(ask)}; {self._largest(ask, np.asarray([total]))} where it may run"
            )
        return None, cap

    def _group_candidates(
        self, ask: _Ask, level: Level
    ) -> tuple[np.ndarray | None, np.ndarray] | Found | Callable[[], str]:
        """`_candidates` inside the one group of ``level`` the policy picks."""
        policy = self.policy
        need = ask.need
        ranges = self.topology.level_domain_range
        if self._indexed(ask) and level in self._su_parent:
            su_cap = self._su_cap(ask)
            group_cap = (
                su_cap
                if level == Level.su
                else np.bincount(
                    self._su_parent[level], weights=su_cap, minlength=self.topology.level_size[level]
                )
            )
        else:
            group_cap = np.bincount(
                self.topology.domain_parent[level],
                weights=self._cap(ask),
                minlength=self.topology.level_size[level],
            )
        group = policy.pick_group(group_cap, self.free.of(level), need)
        if group < 0:
            word = _LEVEL_WORDS[level]
            return lambda: (
                f"needs {self._what(ask)} in one {word}; largest {word} has {self._largest(ask, group_cap)}"
            )
        if ranges is None:
            ids = np.flatnonzero(self.topology.domain_parent[level] == group)
            return ids, self._cap(ask)[ids]
        lo, hi = int(ranges[level][0][group]), int(ranges[level][1][group])
        size = self.topology.max_domain_gpus
        if self._indexed(ask) and (ask.whole or ask.slice_gpus == size):
            # whole domains only: every policy takes the group's whole-free domains in id order (their
            # keys tie on every other term), except that a `last_whole_domain_from_fewest_whole_su`
            # policy takes the last from the SU with the fewest whole domains (lowest id on ties)
            count = -(-need // size)
            whole_ids = lo + np.flatnonzero(self.free.domain[lo:hi] == size)
            domains = whole_ids[:count]
            if policy.last_whole_domain_from_fewest_whole_su and level != Level.su and len(whole_ids) > count:
                rest = whole_ids[count - 1 :]
                last = rest[int(self.free.su_hist[size][self._domain_su[rest]].argmin())]
                domains = np.append(whole_ids[: count - 1], last)
            return self._nodes_in_domains(domains, np.full(count, size, dtype=np.int64))
        return np.arange(lo, hi), self._cap(ask, lo, hi)

    # -- nodes inside the chosen domains

    def _nodes_in_domain(self, domain: int, take: int) -> Found:
        """The nodes that give ``take`` GPUs from one domain.

        One node if some node has ``take`` free (the fullest such node when packing, else the lowest
        id); all free GPUs of the domain if ``take`` is all of them; else fullest nodes first when
        packing, lowest ids first otherwise. A domain has a few nodes: this works on Python ints.
        """
        top = self.topology
        start, end = top.node_start_of[domain], top.node_end_of[domain]
        contiguous = top.nodes_contiguous
        avail = (
            self.free.node[start:end] if contiguous else self.free.node[top.node_order[start:end]]
        ).tolist()
        domains = np.array([domain], dtype=np.int64)
        if take <= top.max_node_gpus:
            pick = -1
            if self.policy.pack_nodes:  # the fullest node that fits, lowest id on ties
                least = _NEVER
                for i, a in enumerate(avail):
                    if take <= a < least:
                        pick, least = i, a
            else:
                for i, a in enumerate(avail):
                    if a >= take:
                        pick = i
                        break
            if pick >= 0:
                node = start + pick if contiguous else int(top.node_order[start + pick])
                return Found(np.array([node], dtype=np.int64), np.array([take], dtype=np.int64), domains)
        if take == sum(avail):
            picked = [i for i, a in enumerate(avail) if a]
            gpus = [avail[i] for i in picked]
        else:
            candidates = [(a, i) for i, a in enumerate(avail) if a]
            if self.policy.pack_nodes:
                candidates.sort()
            picked, gpus = [], []
            for a, i in candidates:
                got = a if a < take else take
                picked.append(i)
                gpus.append(got)
                take -= got
                if not take:
                    break
        positions = np.array(picked, dtype=np.int64)
        nodes = start + positions if contiguous else top.node_order[start + positions]
        return Found(nodes, np.array(gpus, dtype=np.int64), domains)

    def _nodes_in_domains(self, domains: np.ndarray, takes: np.ndarray) -> Found:
        """Nodes and GPUs per node that give ``takes[i]`` GPUs from ``domains[i]``.

        Domains taken whole (all their free GPUs) give every node with free GPUs; the others are
        filled as `_nodes_in_domain` fills one domain."""
        free_domain = self.free.domain
        full = takes == free_domain[domains]
        parts = []
        whole_count = int(np.count_nonzero(full))  # (small arrays: count_nonzero, not a ufunc reduction)
        if whole_count == len(full):
            whole = domains
        elif whole_count:
            whole = domains[full]
        else:
            whole = None
        if whole is not None:
            nodes = self._domain_nodes(whole)
            avail = self.free.node[nodes]
            if np.count_nonzero(avail) == len(avail):
                parts.append((nodes, avail))
            else:
                used = avail > 0
                parts.append((nodes[used], avail[used]))
        if whole is not domains:
            for domain, take in zip(domains[~full].tolist(), takes[~full].tolist(), strict=True):
                found = self._nodes_in_domain(domain, take)
                parts.append((found.nodes, found.gpus))
        if len(parts) == 1:
            nodes, gpus = parts[0]
        else:
            nodes, gpus = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        nodes, gpus = nodes.astype(np.int64, copy=False), gpus.astype(np.int64, copy=False)
        domain_list = domains.tolist()
        if domain_list == sorted(domain_list):
            return Found(nodes, gpus, domains.astype(np.int64), per_domain=takes.astype(np.int64))
        order = np.argsort(domains, kind="stable")
        return Found(nodes, gpus, domains[order].astype(np.int64), per_domain=takes[order].astype(np.int64))

    def _domain_nodes(self, domains: np.ndarray) -> np.ndarray:
        """Nodes of ``domains`` concatenated in the given order (per-domain node arrays are cached)."""
        top = self.topology
        domain_list = domains.tolist()
        first, last = domain_list[0], domain_list[-1]
        if top.nodes_contiguous and len(domain_list) > 1 and domain_list == list(range(first, last + 1)):
            # consecutive domains (e.g. the whole-free domains of an SU) hold one node range
            return np.arange(top.node_start_of[first], top.node_end_of[last], dtype=np.int64)
        cache = self._nodes_of_domain
        arrays = []
        for domain in domain_list:
            nodes = cache.get(domain)
            if nodes is None:
                nodes = cache[domain] = self.topology.nodes_of_domain(domain).astype(np.int64)
            arrays.append(nodes)
        return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)

    def _find_small(self, request: Request) -> Found | str:
        """One node for a fractional-GPU (or CPU-only) request: CPU, memory and a GPU share on one node."""
        milli = int(round(request.gpu_fraction * MILLI_PER_GPU))
        mask = self.domain_mask(request)
        ok = (
            (self.fleet.node_health == HEALTH_OK)
            & (self.node_cpu_free >= request.cpu_cores - 1e-9)
            & (self.node_memory_free_gb >= request.memory_gb - 1e-9)
        )
        if mask is not None:
            ok &= mask[self.fleet.node_domain]
        what = (f"{request.gpu_fraction:g} of a GPU with " if milli else "") + (
            f"{request.cpu_cores:g} CPU cores and {request.memory_gb:g} GB memory on one node"
        )
        if not milli:
            nodes = np.flatnonzero(ok)
            if not len(nodes):
                return f"needs {what}; no node has room"
            node = (
                int(nodes[0])
                if not self.policy.pack_nodes
                else int(nodes[self.node_cpu_free[nodes].argmin()])
            )
            return Found(
                np.asarray([node], dtype=np.int64),
                np.zeros(1, dtype=np.int64),
                self.fleet.node_domain[[node]].astype(np.int64),
            )
        # a GPU already shared with room left, else a whole free GPU that becomes shared
        shared_nodes = np.flatnonzero(ok & (self.node_shared_gpus > 0))
        used = self.share_used_milli[shared_nodes]
        room = (used > 0) & (used + milli <= MILLI_PER_GPU)
        shared_fit = room.any(axis=1)
        whole_nodes = np.flatnonzero(ok & (self.free.node > 0))
        if not shared_fit.any() and not len(whole_nodes):
            return f"needs {what}; no node has room"
        if self.policy.pack_nodes and shared_fit.any():
            # the fullest shared GPU that still fits (GPU packing), lowest node on ties
            fullness = np.where(room, used, -1)
            best = fullness.max(axis=1)
            row = int(np.flatnonzero(shared_fit)[best[shared_fit].argmax()])
            node, slot = int(shared_nodes[row]), int(fullness[row].argmax())
        elif self.policy.pack_nodes:
            # a node of the fullest domain, fullest node first, so whole domains stay free
            domain_free = self.free.domain[self.fleet.node_domain[whole_nodes]]
            pick = np.lexsort((self.free.node[whole_nodes], domain_free))[0]
            node = int(whole_nodes[pick])
            slot = int(np.flatnonzero(self.share_used_milli[node] == 0)[0])
        else:
            first_shared = int(shared_nodes[shared_fit][0]) if shared_fit.any() else self.fleet.n_nodes
            first_whole = int(whole_nodes[0]) if len(whole_nodes) else self.fleet.n_nodes
            node = min(first_shared, first_whole)
            used_row = self.share_used_milli[node]
            fit_slots = np.flatnonzero((used_row > 0) & (used_row + milli <= MILLI_PER_GPU))
            slot = int(fit_slots[0]) if len(fit_slots) else int(np.flatnonzero(used_row == 0)[0])
        return Found(
            np.asarray([node], dtype=np.int64),
            np.zeros(1, dtype=np.int64),
            self.fleet.node_domain[[node]].astype(np.int64),
            slot,
            milli,
        )
