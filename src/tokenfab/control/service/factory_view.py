"""The factory map as an aggregated, cached view: site → hall → SU → rack, and a search over it.

The map is computed from a copy of the allocation state (free GPUs and health per node, the tenant that
owns each NVLink domain — every control-plane workload holds its domains exclusively) with array sums,
never by walking the workloads, and its JSON is cached per state version (bumped by every committed
write batch and every rebuild) and per caller scope (operator, or one tenant). A dashboard polling every
2 s costs one aggregation per change, not one per poll, and a tenant's view names only itself: other
tenants' GPUs are counted as ``gpus_occupied``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import or_, select

from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service.placement import active_placements
from tokenfab.control.service.state import ServiceState
from tokenfab.control.store import TenantRow, WorkloadRow
from tokenfab.fleet import NO_TENANT, Health

DEPTHS = ("site", "hall", "su", "rack")
CACHED_VIEWS = 64
"""Cached map answers kept for the current version at most (scopes × depths × halls)."""
_NUMBER = re.compile(r"^(?:(rack|r|node|n)\s*[-#]?\s*)?(\d+)$")


@dataclass(frozen=True)
class Snapshot:
    """The allocation state the map is drawn from, copied under the state lock."""

    node_free: np.ndarray
    node_health: np.ndarray
    domain_tenant: np.ndarray
    tenant_names: list[str]


@dataclass(frozen=True)
class Level:
    """One level of the map: per element, its GPUs, free GPUs, nodes per health and GPUs per tenant code."""

    gpus: np.ndarray
    free: np.ndarray
    health: dict[str, np.ndarray]
    tenant_gpus: list[dict[int, int]]


def snapshot(state: ServiceState) -> Snapshot:
    memory = state.memory
    with state.lock:
        fleet = memory.fleet
        return Snapshot(
            fleet.node_free_gpus.copy(),
            fleet.node_health.copy(),
            fleet.domain_tenant.copy(),
            memory.scheduler.tenant_names(),
        )


def _tenant_gpus(parent: np.ndarray, owner: np.ndarray, used: np.ndarray, size: int) -> list[dict[int, int]]:
    """Per element of a level: GPUs held per owner code (from per-node parent, owner code, used GPUs)."""
    out: list[dict[int, int]] = [{} for _ in range(size)]
    held = used > 0
    if not held.any():
        return out
    codes = owner[held].astype(np.int64) + 1  # NO_TENANT (-1) → 0
    width = int(codes.max()) + 1
    keys, inverse = np.unique(parent[held].astype(np.int64) * width + codes, return_inverse=True)
    sums = np.bincount(inverse, weights=used[held]).astype(np.int64)
    for key, gpus in zip(keys.tolist(), sums.tolist(), strict=True):
        out[key // width][key % width - 1] = gpus
    return out


def aggregate(state: ServiceState, snap: Snapshot, only: str | None = None) -> dict[str, Level]:
    """Every level's occupancy from one snapshot: bincounts over the nodes, no walk over workloads."""
    memory = state.memory
    fleet = memory.fleet
    used = fleet.node_gpus.astype(np.int64) - snap.node_free
    owner = snap.domain_tenant[fleet.node_domain]
    node_su = fleet.rack_su[memory.node_rack]
    parents = {
        "rack": (memory.node_rack, fleet.n_racks),
        "su": (node_su, fleet.n_sus),
        "hall": (memory.node_hall, fleet.n_halls),
        "site": (memory.node_site, fleet.n_sites),
    }
    levels = {}
    for name, (parent, size) in parents.items():
        if only is not None and name != only:
            continue
        health = {
            h.name: np.bincount(parent, weights=snap.node_health == h.value, minlength=size).astype(np.int64)
            for h in Health
        }
        levels[name] = Level(
            gpus=np.bincount(parent, weights=fleet.node_gpus, minlength=size).astype(np.int64),
            free=np.bincount(parent, weights=snap.node_free, minlength=size).astype(np.int64),
            health=health,
            tenant_gpus=_tenant_gpus(parent, owner, used, size),
        )
    return levels


def _occupancy(level: Level, i: int, names: list[str], own_code: int | None) -> dict[str, Any]:
    """One element's figures as the caller may see them (``own_code`` None: an operator)."""
    held = level.tenant_gpus[i]
    health = {name: int(counts[i]) for name, counts in level.health.items() if counts[i] or name == "ok"}
    if own_code is None:
        tenants = {names[code] if code != NO_TENANT else "?": gpus for code, gpus in held.items()}
        own, occupied = None, 0
    else:
        own = held.get(own_code, 0)
        tenants = {names[own_code]: own} if own else {}
        occupied = sum(held.values()) - own
    return {
        "id": i,
        "gpus": int(level.gpus[i]),
        "gpus_free": int(level.free[i]),
        "gpus_own": own,
        "gpus_occupied": occupied,
        "tenants": tenants,
        "health": health,
    }


def _own_code(principal: Principal, names: list[str]) -> int | None:
    """The caller's tenant code (None: an operator; -2: a tenant that never held GPUs)."""
    if principal.is_operator:
        return None
    return names.index(principal.tenant_name) if principal.tenant_name in names else -2


def rack_summary(state: ServiceState, principal: Principal, rack: int) -> s.RackSummary:
    """One rack's figures as the caller may see them."""
    memory = state.memory
    snap = snapshot(state)
    level = aggregate(state, snap, only="rack")["rack"]
    return s.RackSummary(
        **_occupancy(level, rack, snap.tenant_names, _own_code(principal, snap.tenant_names)),
        su=int(memory.fleet.rack_su[rack]),
        hall=int(memory.rack_hall[rack]),
        site=int(memory.rack_site[rack]),
    )


def map_document(state: ServiceState, principal: Principal, depth: str, hall: int | None) -> dict[str, Any]:
    """The map as a JSON-ready dict (the shape of `schemas.FactoryMap`), down to ``depth``; with ``hall``,
    only that hall (and its site)."""
    memory, fleet = state.memory, state.memory.fleet
    snap = snapshot(state)
    levels = aggregate(state, snap)
    names = snap.tenant_names
    own_code = _own_code(principal, names)
    deep = DEPTHS.index(depth)
    rack_hall, rack_site, su_hall = memory.rack_hall, memory.rack_site, fleet.su_hall
    racks_per_su = np.bincount(fleet.rack_su, minlength=fleet.n_sus)
    sites = []
    for site in range(fleet.n_sites):
        halls_of_site = np.flatnonzero(fleet.hall_site == site).tolist()
        if hall is not None:
            if hall not in halls_of_site:
                continue
            halls_of_site = [hall]
        site_doc = _occupancy(levels["site"], site, names, own_code) | {
            "name": fleet.site_names[site],
            "halls": [],
        }
        for h in halls_of_site if deep >= 1 else ():
            hall_doc = _occupancy(levels["hall"], h, names, own_code) | {"site": site, "sus": [], "racks": []}
            sus = np.flatnonzero(su_hall == h).tolist()
            for su in sus if deep >= 2 else ():
                hall_doc["sus"].append(
                    _occupancy(levels["su"], su, names, own_code)
                    | {"hall": h, "site": site, "racks": int(racks_per_su[su])}
                )
            if deep >= 3:
                for rack in np.flatnonzero(rack_hall == h).tolist():
                    hall_doc["racks"].append(
                        _occupancy(levels["rack"], rack, names, own_code)
                        | {"su": int(fleet.rack_su[rack]), "hall": h, "site": int(rack_site[rack])}
                    )
            site_doc["halls"].append(hall_doc)
        sites.append(site_doc)
    total_free = int(snap.node_free.sum())
    own = None if own_code is None else sum(int(d.get(own_code, 0)) for d in levels["site"].tenant_gpus)
    used = memory.n_gpus - total_free
    return {
        "design": state.design.name,
        "system": [site.system for site in state.design.sites],
        "gpus": memory.n_gpus,
        "gpus_free": total_free,
        "gpus_own": own,
        "gpus_occupied": 0 if own is None else used - own,
        "depth": depth,
        "sites": sites,
    }


class FactoryViews:
    """The map's JSON per (scope, depth, hall), kept until the state's version changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = -1
        self._answers: dict[tuple, bytes] = {}

    def map_json(
        self, state: ServiceState, principal: Principal, depth: str = "rack", hall: int | None = None
    ) -> bytes:
        scope = "operator" if principal.is_operator else f"tenant:{principal.tenant_name}"
        key = (scope, depth, hall)
        version = state.version
        with self._lock:
            if self._version == version and key in self._answers:
                return self._answers[key]
        answer = orjson.dumps(map_document(state, principal, depth, hall))
        with self._lock:
            if self._version != version:
                self._answers.clear()
                self._version = version
            if len(self._answers) < CACHED_VIEWS:
                self._answers[key] = answer
        return answer


def search(state: ServiceState, principal: Principal, query: str, limit: int = 20) -> s.SearchHits:
    """Racks and nodes by number (``12``, ``rack 12``, ``r12``, ``node 40``, ``n40``), workloads by id or
    name (the caller's own, for a tenant), each with where it is on the map."""
    memory, fleet = state.memory, state.memory.fleet
    text = query.strip()
    hits: list[s.SearchHit] = []
    number = _NUMBER.match(text.lower())
    if number:
        kind, value = number.group(1), int(number.group(2))
        if kind in (None, "rack", "r") and value < fleet.n_racks:
            hits.append(_rack_hit(state, value))
        if kind in (None, "node", "n") and value < fleet.n_nodes:
            rack = int(memory.node_rack[value])
            hits.append(
                _rack_hit(state, rack).model_copy(
                    update={
                        "kind": "node",
                        "id": str(value),
                        "label": f"node {value} (rack {rack})",
                        "node": value,
                    }
                )
            )
    if text:
        hits += _workload_hits(state, principal, text, limit)
    hits = hits[:limit]
    return s.SearchHits(data=hits, count=len(hits))


def _rack_hit(state: ServiceState, rack: int) -> s.SearchHit:
    memory = state.memory
    return s.SearchHit(
        kind="rack",
        id=str(rack),
        label=f"rack {rack}",
        site=int(memory.rack_site[rack]),
        hall=int(memory.rack_hall[rack]),
        su=int(memory.fleet.rack_su[rack]),
        rack=rack,
    )


def _workload_hits(state: ServiceState, principal: Principal, text: str, limit: int) -> list[s.SearchHit]:
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with state.sessions() as session:
        query = (
            select(WorkloadRow, TenantRow.name)
            .join(TenantRow, WorkloadRow.tenant_id == TenantRow.id)
            .where(or_(WorkloadRow.id == text, WorkloadRow.name.ilike(pattern, escape="\\")))
            .order_by(WorkloadRow.created_at.desc())
            .limit(limit)
        )
        if not principal.is_operator:
            query = query.where(WorkloadRow.tenant_id == principal.tenant_id)
        rows = session.execute(query).all()
        placements = active_placements(session, [row.id for row, _ in rows])
    hits = []
    for row, tenant in rows:
        placement = placements.get(row.id)
        label = f"workload {row.name} ({row.id}, {tenant}, {row.state})"
        if placement is None:
            hits.append(s.SearchHit(kind="workload", id=row.id, label=label))
            continue
        node = int(placement.node_ids[0])
        rack_hit = _rack_hit(state, int(state.memory.node_rack[node]))
        hits.append(
            rack_hit.model_copy(update={"kind": "workload", "id": row.id, "label": label, "node": node})
        )
    return hits
