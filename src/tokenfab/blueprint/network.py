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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenfab.blueprint import layout
from tokenfab.blueprint.design import FabricDesign, FabricTier

if TYPE_CHECKING:
    from tokenfab.blueprint.parts import Parts
    from tokenfab.spec import SiteSpec

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


def fat_tree(endpoints_per_su: int, scalable_units: int, radix: int, oversubscription: float = 1.0) -> FatTree:
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


def site_fabric(parts: Parts, site: SiteSpec, scalable_units: int, domains: int) -> tuple[FabricDesign, FatTree]:
    """The scale-out fabric of a site: a fat tree over its scalable units, with its transceivers and power."""
    system, switch = parts.system, parts.switch
    link_gbps = min(system.scaleout_nic_gbps, switch.port_gbps)
    links_per_gpu = system.scaleout_nics_per_gpu * links_per_nic(system.scaleout_nic_gbps, switch.port_gbps)
    endpoints_per_su = system.nodes_per_scalable_unit * system.gpus_per_node * links_per_gpu
    radix = effective_radix(switch.ports, switch.port_gbps, link_gbps)
    tree = fat_tree(endpoints_per_su, scalable_units, radix, site.fabric_oversubscription)
    endpoints = endpoints_per_su * scalable_units
    transceivers = 2 * tree.links
    tiers = [
        FabricTier(
            tier=i + 1,
            name=TIER_NAMES[i] if i < len(TIER_NAMES) else f"tier-{i + 1}",
            switches=tree.switches_by_tier[i],
            downlinks_per_switch=tree.downlinks_by_tier[i],
            uplinks_per_switch=tree.uplinks_by_tier[i],
        )
        for i in range(tree.tiers)
    ]
    design = FabricDesign(
        kind=switch.fabric.value,
        switch=switch.name,
        switch_ports=radix,
        link_gbps=link_gbps,
        endpoints=endpoints,
        endpoints_per_scalable_unit=endpoints_per_su,
        rails=system.gpus_per_node * links_per_gpu,
        scalable_units=scalable_units,
        tiers=tiers,
        links_by_tier=list(tree.links_by_tier),
        oversubscription=site.fabric_oversubscription,
        transceivers=transceivers,
        transceiver=parts.transceiver.name,
        cables=tree.links,
        switch_power_kw=tree.switches * switch.maximum_draw_w / 1000.0,
        transceiver_power_kw=transceivers * parts.transceiver.maximum_draw_w / 1000.0,
        nvlink_domains=domains,
        gpus_per_nvlink_domain=system.gpus_per_nvlink_domain,
        bisection_tbps=bisection_bandwidth_tbps(endpoints, link_gbps, site.fabric_oversubscription),
    )
    return design, tree


def network_power_kw(parts: Parts, site: SiteSpec, domains: int) -> float:
    """Switch and transceiver power of the fabric that serves `domains` NVLink domains."""
    system = parts.system
    racks = layout.racks_for_domains(domains, system.domains_per_rack)
    racks_per_su = layout.racks_per_scalable_unit(system.nodes_per_scalable_unit, system.nodes_per_rack)
    fabric, _ = site_fabric(parts, site, len(layout.split_into_scalable_units(racks, racks_per_su)), domains)
    return fabric.switch_power_kw + fabric.transceiver_power_kw
