"""The scale-out fabric: a rail-optimised fat tree per site, sized from switch radix and endpoints.

The rules, which reproduce NVIDIA's DGX SuperPOD tables without special cases:

* A switch of radix k splits its ports into downlinks d and uplinks u = k − d; non-blocking means d = u = k/2
  (with oversubscription r, :math:`d = \\lfloor k r / (1 + r) \\rfloor`).
* The fabric is built for whole scalable units (SUs): every SU gets :math:`\\lceil E_{SU} / d \\rceil` leaves,
  even when its racks are not all installed.
* The number of tiers is the smallest n for which the tree holds the leaves: two tiers hold at most k
  leaves (every spine reaches every leaf); each further tier multiplies that by k/2.
* Two tiers: every leaf has the same number of links to every spine, so the spine count S divides u and
  :math:`S\\,k \\ge L\\,u`: S is the smallest divisor of u with that property.
* Three or more tiers: middle tiers have as many switches as the tier below (k/2 down, k/2 up) and the top
  tier :math:`\\lceil N_{below}\\,u / k \\rceil`.

Sources: DGX SuperPOD B200 RA and B300-XDR RA component tables (shared/reference/facility-figures.md §2).

A site is built as operators build it (`site_fabric`):

* **Planes.** Every GPU has a link into each of `planes` independent fat trees; a 1.6 T NIC on 800 G switch
  ports is two 800 G planes (the SuperPOD B300 RA's twin-plane design). Each plane is a fat tree of the
  endpoints per plane, so planes keep trees shallow.
* **Compute fabrics per building.** Halls are grouped into compute fabrics of at most
  `standards.compute_fabric_gpus_max` GPUs (operators' largest single fabrics, order 100k GPUs) and at most what
  three tiers of the switch hold per plane; fabrics are joined by a DCI super-spine (`dci_links`).
* **Modules counted as modules.** A twin-port OSFP serves two switch ports (`Switch.ports_per_cage`); a
  co-packaged-optics switch needs no switch-side modules at all; the NIC side takes one module per NIC.
* The storage + in-band and out-of-band networks are counted beside it (`blueprint.netparts`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenfab.blueprint import layout, netparts
from tokenfab.blueprint.design import ComputeFabric, FabricDesign, FabricTier, NetworkItem

if TYPE_CHECKING:
    from tokenfab.blueprint.design import AuxNetwork
    from tokenfab.blueprint.parts import Parts
    from tokenfab.catalog.models import Switch, System
    from tokenfab.spec import SiteSpec

CPO_NIC_GBPS = 1600
"""NICs this fast ship with co-packaged-optics switches when the spec leaves the optics to `auto`: the Vera
Rubin platform pairs ConnectX-9 (1.6 T) with Quantum-X / Spectrum-X Photonics (shared/reference/facility-figures.md
§1c; NVIDIA GTC 2025)."""

MAX_TIERS_PER_PLANE = 3
"""Operators keep each plane at three tiers or fewer (hop count and optics per GPU); larger sites add planes or
buildings joined by a DCI."""

TIER_NAMES = ("leaf", "spine", "core", "super-core")


@dataclass(frozen=True)
class FatTree:
    tiers: int
    switches_by_tier: tuple[int, ...]
    downlinks_by_tier: tuple[int, ...]
    uplinks_by_tier: tuple[int, ...]
    links_by_tier: tuple[int, ...]
    """links_by_tier[0] are endpoint-to-leaf links; links_by_tier[i] join tier i to tier i+1."""

    @property
    def switches(self) -> int:
        return sum(self.switches_by_tier)

    @property
    def links(self) -> int:
        return sum(self.links_by_tier)


def effective_radix(switch_ports: int, switch_port_gbps: int, link_gbps: int) -> int:
    """Ports of `link_gbps` a switch offers: a faster port breaks out into several slower links.

    .. math:: k = P \\times \\max(1, \\lfloor g_{port} / g_{link} \\rfloor)
    """
    return switch_ports * max(1, switch_port_gbps // link_gbps)


def links_per_nic(nic_gbps: int, switch_port_gbps: int) -> int:
    """Switch-facing links one NIC needs when it is faster than a switch port: :math:`\\lceil g_{nic}/g_{port} \\rceil`."""
    return max(1, math.ceil(nic_gbps / switch_port_gbps))


def split_radix(radix: int, oversubscription: float) -> tuple[int, int]:
    """(downlinks, uplinks) of a leaf for a downlink:uplink ratio `oversubscription` (1 = non-blocking)."""
    down = math.floor(radix * oversubscription / (1.0 + oversubscription))
    return down, radix - down


def leaves_per_scalable_unit(endpoints_per_su: int, leaf_downlinks: int) -> int:
    """:math:`\\lceil E_{SU} / d \\rceil` leaves per scalable unit."""
    return math.ceil(endpoints_per_su / leaf_downlinks)


def tiers_needed(leaves: int, radix: int) -> int:
    """Smallest number of tiers whose tree holds `leaves` leaves of radix `radix`.

    .. math:: L \\le 1 \\;(n=1), \\quad L \\le k\\,(k/2)^{n-2} \\;(n \\ge 2)
    """
    if leaves <= 1:
        return 1
    tiers, capacity = 2, radix
    while leaves > capacity:
        tiers += 1
        capacity *= radix // 2
    return tiers


def smallest_even_spread(leaves: int, uplinks_per_leaf: int, radix: int) -> int:
    """Spine count of a two-tier tree: the smallest divisor S of u with :math:`S\\,k \\ge L\\,u`."""
    needed = math.ceil(leaves * uplinks_per_leaf / radix)
    for spines in range(max(needed, 1), uplinks_per_leaf + 1):
        if uplinks_per_leaf % spines == 0:
            return spines
    return needed


def fat_tree(
    endpoints_per_su: int, scalable_units: int, radix: int, oversubscription: float = 1.0
) -> FatTree:
    """Switch and link counts of a rail-optimised fat tree over `scalable_units` whole SUs."""
    down, up = split_radix(radix, oversubscription)
    leaves = leaves_per_scalable_unit(endpoints_per_su, down) * scalable_units
    endpoint_links = endpoints_per_su * scalable_units
    tiers = tiers_needed(leaves, radix)
    if tiers == 1:
        return FatTree(1, (leaves,), (radix,), (0,), (endpoint_links,))
    switches = [leaves]
    downs, ups = [down], [up]
    links = [endpoint_links]
    if tiers == 2:
        spines = smallest_even_spread(leaves, up, radix)
        switches.append(spines)
        downs.append(radix)
        ups.append(0)
        links.append(leaves * up)
    else:
        half = radix // 2
        for _ in range(tiers - 2):
            below = switches[-1]
            links.append(below * ups[-1])
            switches.append(math.ceil(below * ups[-1] / half))
            downs.append(half)
            ups.append(half)
        links.append(switches[-1] * ups[-1])
        switches.append(math.ceil(switches[-1] * ups[-1] / radix))
        downs.append(radix)
        ups.append(0)
    return FatTree(tiers, tuple(switches), tuple(downs), tuple(ups), tuple(links))


def bisection_bandwidth_tbps(endpoints: int, link_gbps: int, oversubscription: float) -> float:
    """Bisection bandwidth of a fat tree: half the endpoints at full rate, divided by oversubscription."""
    return endpoints * link_gbps / 2.0 / oversubscription / 1000.0


def choose_compute_switch(switches: list[Switch], system: System, optics: str) -> Switch | None:
    """The compute switch among `switches` (one fabric kind, sorted by name): with co-packaged optics when
    `optics` is ``cpo``, or ``auto`` with a NIC of at least `CPO_NIC_GBPS`; without them when ``pluggable``.
    None when ``cpo`` is asked for and the catalog has none of this fabric kind."""
    want_cpo = optics == "cpo" or (optics == "auto" and system.scaleout_nic_gbps >= CPO_NIC_GBPS)
    matching = [s for s in switches if s.co_packaged_optics == want_cpo]
    if matching:
        return matching[0]
    return None if optics == "cpo" else switches[0]


def planes_and_link_gbps(system: System, switch: Switch, planes: int | None) -> tuple[int, int, int]:
    """(planes, links per GPU, link Gb/s): each plane takes an equal share of a GPU's scale-out bandwidth.

    .. math:: L = P \\lceil n_{NIC} \\lceil g_{NIC}/g_{port} \\rceil / P \\rceil, \\quad g_{link} = n_{NIC} g_{NIC} / L

    With `planes` None, one plane per switch-port share of a NIC (a 1.6 T NIC on 800 G ports: 2).
    """
    per_nic = links_per_nic(system.scaleout_nic_gbps, switch.port_gbps)
    planes = planes or per_nic
    links = planes * math.ceil(system.scaleout_nics_per_gpu * per_nic / planes)
    return planes, links, system.scaleout_nics_per_gpu * system.scaleout_nic_gbps // links


def scalable_units_per_fabric(gpus_per_su: int, leaves_per_su: int, radix: int, gpus_max: int) -> int:
    """Most SUs one compute fabric holds: within `gpus_max` GPUs and within three tiers per plane.

    .. math:: n = \\min(\\lfloor G_{max} / G_{SU} \\rfloor, \\lfloor k (k/2) / L_{SU} \\rfloor), \\ge 1
    """
    three_tier_leaves = radix * (radix // 2)
    return max(1, min(gpus_max // gpus_per_su, three_tier_leaves // max(leaves_per_su, 1)))


def group_halls_into_fabrics(hall_sus: list[int], sus_per_fabric: int) -> list[list[int]]:
    """Consecutive whole halls per compute fabric: as few fabrics as hold them, balanced in hall count."""
    if not hall_sus:
        return []
    halls_per_fabric = max(1, sus_per_fabric // max(hall_sus))
    fabrics = math.ceil(len(hall_sus) / halls_per_fabric)
    sizes = layout.balanced_sizes(len(hall_sus), fabrics)
    groups, start = [], 0
    for size in sizes:
        groups.append(list(range(start, start + size)))
        start += size
    return groups


def fabric_groups(hall_sus: list[int], sus_per_fabric: int) -> list[tuple[list[int], int]]:
    """(halls served, SUs) per compute fabric: whole halls grouped (`group_halls_into_fabrics`), or, when one hall
    holds more SUs than a fabric may, the site's SUs split into balanced fabrics that each name the halls their
    SUs stand in."""
    if not hall_sus or max(hall_sus) <= sus_per_fabric:
        return [
            (halls, sum(hall_sus[h] for h in halls))
            for halls in group_halls_into_fabrics(hall_sus, sus_per_fabric)
        ]
    total = sum(hall_sus)
    starts = [sum(hall_sus[:h]) for h in range(len(hall_sus))]
    groups, first = [], 0
    for size in layout.balanced_sizes(total, math.ceil(total / sus_per_fabric)):
        last = first + size - 1
        halls = [h for h, s0 in enumerate(starts) if s0 <= last and s0 + hall_sus[h] - 1 >= first]
        groups.append((halls, size))
        first += size
    return groups


def dci_counts(endpoints_per_plane: list[int], radix: int, oversubscription: float) -> tuple[int, int, int]:
    """(border switches, super-spine switches, trunk links) of one plane's DCI between compute fabrics.

    Each fabric sends :math:`\\lceil E_f / r \\rceil` trunk links up; border switches use half their ports
    towards the fabric and half up; super-spine switches face the fabrics with every port. One fabric: none.
    The fabric's own top tier is not resized for the border links (they are 1/r of its endpoint links;
    an approximation that undercounts the top tier by at most that share).
    """
    if len(endpoints_per_plane) <= 1:
        return 0, 0, 0
    trunks = [math.ceil(e / oversubscription) for e in endpoints_per_plane]
    border = sum(math.ceil(t / (radix // 2)) for t in trunks)
    return border, math.ceil(sum(trunks) / radix), sum(trunks)


def link_lengths_m(
    parts: Parts, site: SiteSpec, hall_racks: list[int], fabric_halls: int, fabrics: int, tiers: int
) -> list[float]:
    """Longest cable run per tier of a site about to be built (see `tier_lengths_m`)."""
    std, system = parts.standards, parts.system
    racks_per_su = layout.racks_per_scalable_unit(system.nodes_per_scalable_unit, system.nodes_per_rack)
    rack_air_kw = system.rack_power_max_kw * (1.0 - system.liquid_heat_fraction)
    racks = max(hall_racks, default=0)
    hall_m2 = max(
        layout.white_space_m2(racks, parts.economics.hall_white_space_m2_per_rack),
        layout.air_limited_white_space_m2(racks * rack_air_kw, parts.economics.air_system_capacity_kw_per_m2),
    )
    return tier_lengths_m(
        min(site.limits.racks_per_row, racks_per_su),
        math.ceil(racks_per_su / site.limits.racks_per_row),
        hall_m2,
        fabric_halls,
        fabrics,
        tiers,
        parts.limits.rack_pitch_m,
        std.row_pitch_m,
        std.cable_drop_m,
    )


def tier_lengths_m(
    row_racks: int,
    rows_per_su: int,
    hall_m2: float,
    fabric_halls: int,
    fabrics: int,
    tiers: int,
    rack_pitch_m: float,
    row_pitch_m: float,
    drop_m: float,
) -> list[float]:
    """Longest cable run per tier from the hall geometry, and the DCI run last when there are fabrics to join.

    Leaves sit with their SU's rows: :math:`\\ell_0 = R_{row} w + n_{rows,SU} p + 2 d`. Spines serve a hall:
    :math:`\\ell_1 = 2\\sqrt{A_{hall}} + 2d`. Higher tiers serve a building of `fabric_halls` halls:
    :math:`\\ell_i = 2\\sqrt{n_h A_{hall}} + 2d`. The DCI joins buildings set one building apart:
    :math:`\\ell_{DCI} = 2\\sqrt{2 n_f n_h A_{hall}} + 2d` (Manhattan routing along trays; estimate).
    """
    drops = 2 * drop_m
    lengths = [row_racks * rack_pitch_m + rows_per_su * row_pitch_m + drops]
    if tiers >= 2:
        lengths.append(2 * math.sqrt(hall_m2) + drops)
    lengths += [2 * math.sqrt(fabric_halls * hall_m2) + drops] * max(tiers - 2, 0)
    if fabrics > 1:
        lengths.append(2 * math.sqrt(2 * fabrics * fabric_halls * hall_m2) + drops)
    return [round(x, 1) for x in lengths]


def switch_modules(link_ends: int, ports_per_module: int) -> int:
    """Pluggable modules for `link_ends` switch ports: :math:`\\lceil n / p \\rceil` (2 ports per twin-port OSFP)."""
    return math.ceil(link_ends / ports_per_module)


def compute_link_ends_by_tier(links_by_tier: list[int]) -> list[int]:
    """Switch-side link ends per tier: endpoint links end once at a leaf; switch-to-switch links twice."""
    return [links if i == 0 else 2 * links for i, links in enumerate(links_by_tier)]


@dataclass(frozen=True)
class _Plan:
    planes: int
    link_gbps: int
    radix: int
    endpoints_per_su: int
    """endpoints per SU in one plane"""
    fabrics: list[tuple[list[int], int, FatTree]]
    """(halls, scalable units, one plane's tree) per compute fabric"""


def _plan(parts: Parts, site: SiteSpec, counts: layout.SiteCounts) -> _Plan:
    system, switch = parts.system, parts.switch
    planes, links_per_gpu, link_gbps = planes_and_link_gbps(system, switch, site.fabric_planes)
    gpus_per_su = system.nodes_per_scalable_unit * system.gpus_per_node
    e_su = gpus_per_su * links_per_gpu // planes
    radix = effective_radix(switch.ports, switch.port_gbps, link_gbps)
    down, _ = split_radix(radix, site.fabric_oversubscription)
    sus_max = scalable_units_per_fabric(
        gpus_per_su, leaves_per_scalable_unit(e_su, down), radix, parts.standards.compute_fabric_gpus_max
    )
    hall_sus = [len(group) for group in counts.hall_groups]
    fabrics = []
    for halls, sus in fabric_groups(hall_sus, sus_max):
        fabrics.append((halls, sus, fat_tree(e_su, sus, radix, site.fabric_oversubscription)))
    return _Plan(planes, link_gbps, radix, e_su, fabrics)


def _tier_name(i: int) -> str:
    return TIER_NAMES[i] if i < len(TIER_NAMES) else f"tier-{i + 1}"


def _tiers(tree: FatTree, multiple: int = 1) -> list[FabricTier]:
    return [
        FabricTier.model_construct(
            tier=i + 1,
            name=_tier_name(i),
            switches=tree.switches_by_tier[i] * multiple,
            downlinks_per_switch=tree.downlinks_by_tier[i],
            uplinks_per_switch=tree.uplinks_by_tier[i],
        )
        for i in range(tree.tiers)
    ]


@dataclass(frozen=True)
class _NetworkCounts:
    """Counts and parts of a site's networks, before they become design models."""

    totals_switches: list[int]
    totals_links: list[int]
    lengths: list[float]
    dci: tuple[int, int, int]
    """(border, super-spine, trunks) per plane"""
    compute: netparts.ComputeParts
    aux: list[AuxNetwork]
    items: list[NetworkItem]


def _site_parts(parts: Parts, site: SiteSpec, counts: layout.SiteCounts, plan: _Plan) -> _NetworkCounts:
    depth = max(tree.tiers for _, _, tree in plan.fabrics)
    totals_switches, totals_links = [0] * depth, [0] * depth
    for _, _, tree in plan.fabrics:
        for i in range(tree.tiers):
            totals_switches[i] += tree.switches_by_tier[i] * plan.planes
            totals_links[i] += tree.links_by_tier[i] * plan.planes
    fabric_halls = max(len(h) for h, _, _ in plan.fabrics)
    lengths = link_lengths_m(
        parts, site, [sum(g) for g in counts.hall_groups], fabric_halls, len(plan.fabrics), depth
    )
    dci = dci_counts(
        [plan.endpoints_per_su * sus for _, sus, _ in plan.fabrics],
        plan.radix,
        parts.standards.dci_oversubscription,
    )
    border, spine, trunks = dci
    compute = netparts.compute_items(
        parts,
        sum(totals_switches),
        plan.planes,
        plan.link_gbps,
        totals_links,
        lengths,
        nics=counts.gpus * parts.system.scaleout_nics_per_gpu,
        dci=(border * plan.planes, spine * plan.planes, trunks * plan.planes),
    )
    aux, aux_items = netparts.management_networks(parts, counts)
    return _NetworkCounts(
        totals_switches, totals_links, lengths, dci, compute, aux, netparts.merge(compute.items + aux_items)
    )


def site_fabric(
    parts: Parts, site: SiteSpec, scalable_units: int, domains: int
) -> tuple[FabricDesign, FatTree]:
    """The site's networks: compute fabrics per building with planes and a DCI, storage + in-band and OOB.

    Returns the design and one plane's tree of the largest compute fabric.
    """
    system, switch, std = parts.system, parts.switch, parts.standards
    counts = layout.site_counts(system, domains, site.limits.hall_it_mw_max)
    plan = _plan(parts, site, counts)
    built = _site_parts(parts, site, counts, plan)
    largest = max(plan.fabrics, key=lambda f: (f[2].tiers, f[1]))[2]
    compute_fabrics = []
    gpus_per_su = system.nodes_per_scalable_unit * system.gpus_per_node
    gpus_left = counts.gpus
    for index, (halls, sus, tree) in enumerate(plan.fabrics):
        gpus = min(sus * gpus_per_su, gpus_left)
        gpus_left -= gpus
        compute_fabrics.append(
            ComputeFabric.model_construct(
                index=index,
                halls=halls,
                scalable_units=sus,
                gpus=gpus,
                endpoints_per_plane=plan.endpoints_per_su * sus,
                tiers=_tiers(tree),
                links_by_tier=list(tree.links_by_tier),
            )
        )
    tiers = [
        FabricTier.model_construct(
            tier=i + 1,
            name=_tier_name(i),
            switches=n,
            downlinks_per_switch=largest.downlinks_by_tier[i] if i < largest.tiers else 0,
            uplinks_per_switch=largest.uplinks_by_tier[i] if i < largest.tiers else 0,
        )
        for i, n in enumerate(built.totals_switches)
    ]
    border, spine, trunks = built.dci
    endpoints = plan.endpoints_per_su * scalable_units * plan.planes
    design = FabricDesign(
        kind=switch.fabric.value,
        switch=switch.name,
        switch_ports=plan.radix,
        link_gbps=plan.link_gbps,
        endpoints=endpoints,
        endpoints_per_scalable_unit=plan.endpoints_per_su * plan.planes,
        rails=system.gpus_per_node * plan.planes * (plan.endpoints_per_su // gpus_per_su),
        scalable_units=scalable_units,
        tiers=tiers,
        links_by_tier=built.totals_links,
        oversubscription=site.fabric_oversubscription,
        transceivers=built.compute.modules,
        transceiver=built.compute.main_module,
        cables=sum(built.totals_links) + 2 * trunks * plan.planes,
        switch_power_kw=network_items_power_kw(built.items, "switch"),
        transceiver_power_kw=network_items_power_kw(built.items, "transceiver"),
        nvlink_domains=domains,
        gpus_per_nvlink_domain=system.gpus_per_nvlink_domain,
        bisection_tbps=bisection_bandwidth_tbps(endpoints, plan.link_gbps, site.fabric_oversubscription),
        planes=plan.planes,
        optics="cpo" if switch.co_packaged_optics else "pluggable",
        nic_transceiver=built.compute.nic_module,
        compute_fabric_gpus_max=std.compute_fabric_gpus_max,
        compute_fabrics=compute_fabrics,
        dci_switches=(border + spine) * plan.planes,
        dci_links=trunks * plan.planes,
        dci_oversubscription=std.dci_oversubscription,
        aux_networks=built.aux,
        link_length_m_by_tier=built.lengths,
        transceiver_by_tier=built.compute.module_by_tier,
        items=built.items,
    )
    return design, largest


def network_power_kw(parts: Parts, site: SiteSpec, domains: int) -> float:
    """Switch and transceiver power of every network that serves `domains` NVLink domains (no design models)."""
    counts = layout.site_counts(parts.system, domains, site.limits.hall_it_mw_max)
    items = _site_parts(parts, site, counts, _plan(parts, site, counts)).items
    return network_items_power_kw(items, "switch") + network_items_power_kw(items, "transceiver")


def network_items_power_kw(items: list[NetworkItem], kind: str) -> float:
    """Draw of the items of one kind (switch or transceiver), kW."""
    return sum(i.count * i.draw_w for i in items if i.kind == kind) / 1000.0
