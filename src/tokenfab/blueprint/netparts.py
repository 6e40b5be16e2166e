"""Network parts: which modules, cables and switches the networks take, counted and priced as bought.

* Modules are chosen per tier: the cheapest module of the link speed whose reach covers the tier's longest
  run (`network.link_lengths_m`), with as many ports as the switch's cage takes (a twin-port OSFP serves two
  ports of a QM9700 or Q3400). A co-packaged-optics switch takes no switch-side modules. The NIC side takes one
  module per NIC, carrying all of that NIC's plane links.
* The DCI between compute fabrics runs on the fabric kind's pluggable switch with long-reach modules on the
  trunks between buildings.
* The storage + in-band (converged Ethernet) and out-of-band networks are counted per the DGX SuperPOD RAs'
  port counts per node (`catalog standards`): a fat tree of the converged switch at the storage port speed, and
  48-port 1 GbE switches for every BMC, whose two uplinks each land on the converged fabric.

Everything a network buys is a `NetworkItem`; the bill of materials prices them, and network power is the sum
of their draws (`network.network_items_power_kw`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tokenfab.blueprint.design import AuxNetwork, FabricTier, NetworkItem

if TYPE_CHECKING:
    from tokenfab.blueprint.layout import SiteCounts
    from tokenfab.blueprint.parts import Parts
    from tokenfab.catalog.models import Switch, Transceiver

OOB_UPLINKS_PER_SWITCH = 2
"""Each OOB switch has two uplinks to the aggregation pair (SuperPOD RAs: redundant OOB uplinks)."""


@dataclass
class ComputeParts:
    items: list[NetworkItem] = field(default_factory=list)
    modules: int = 0
    main_module: str = ""
    nic_module: str | None = None
    module_by_tier: list[str] = field(default_factory=list)


def choose_module(modules: list[Transceiver], gbps: int, ports: int, length_m: float) -> Transceiver | None:
    """Cheapest module of `gbps` per port and `ports` ports whose reach covers `length_m`; else the longest-reach
    one of that speed and port count (certify NET-011 then reports the shortfall); None when there is none."""
    fitting = [m for m in modules if m.gbps == gbps and m.ports == ports]
    if not fitting:
        return None
    reaching = [m for m in fitting if (m.reach_m or 0.0) >= length_m]
    if reaching:
        return min(reaching, key=lambda m: (m.cost_usd, m.name))
    return max(fitting, key=lambda m: (m.reach_m or 0.0, -m.cost_usd))


def _modules(parts: Parts) -> list[Transceiver]:
    from tokenfab.catalog.models import Transceiver

    return parts.catalog.all("transceivers", Transceiver)


def _switch(parts: Parts, name: str) -> Switch:
    from tokenfab.catalog.models import Switch

    return parts.catalog.typed("switches", name, Switch)


def _pluggable_sibling(parts: Parts) -> Switch:
    """The compute switch itself, or for a co-packaged one the pluggable switch of the same fabric kind."""
    from tokenfab.catalog.models import Switch

    if not parts.switch.co_packaged_optics:
        return parts.switch
    same = sorted(
        (
            s
            for s in parts.catalog.all("switches", Switch)
            if s.fabric == parts.switch.fabric and not s.co_packaged_optics
        ),
        key=lambda s: s.name,
    )
    return same[0] if same else parts.switch


def _item(network: str, kind: str, name: str, count: int, cost: float, draw: float) -> NetworkItem:
    # built from checked catalog figures: construct without re-validation (compile is on the sizing loop's path)
    return NetworkItem.model_construct(
        network=network, kind=kind, item=name, count=int(count), unit_cost_usd=float(cost), draw_w=float(draw)
    )


def logical_ports_per_module(switch: Switch, link_gbps: int) -> int:
    """Links one switch-side module carries: its cage's ports, each broken out into `port / link` links.

    .. math:: p = p_{cage} \\max(1, \\lfloor g_{port} / g_{link} \\rfloor)
    """
    return switch.ports_per_cage * max(1, switch.port_gbps // link_gbps)


def _nic_module(parts: Parts, links_per_nic: int, length_m: float) -> Transceiver | None:
    """One module per NIC at the NIC's speed: with one logical port per plane link where the catalog has it."""
    modules, nic_gbps = _modules(parts), parts.system.scaleout_nic_gbps
    whole = [m for m in modules if m.gbps * m.ports == nic_gbps]
    exact = [m for m in whole if m.ports == links_per_nic]
    for pool in (exact, whole):
        reaching = [m for m in pool if (m.reach_m or 0.0) >= length_m]
        if reaching:
            return min(reaching, key=lambda m: (m.cost_usd, m.name))
        if pool:
            return max(pool, key=lambda m: (m.reach_m or 0.0, -m.cost_usd))
    return None


def compute_items(
    parts: Parts,
    switches: int,
    planes: int,
    link_gbps: int,
    links_by_tier: list[int],
    lengths_m: list[float],
    nics: int,
    dci: tuple[int, int, int],
) -> ComputeParts:
    """Switches, modules and cables of the compute fabrics (all planes) and of the DCI between them.

    `nics` are the installed GPUs' scale-out NICs (one module each); leaves, their ports and the cable plant are
    built for whole SUs (DGX SuperPOD RAs: "design the fabric to support the full SU"). Switch-side modules run
    at the switch's port speed and serve `logical_ports_per_module` links."""
    switch, modules = parts.switch, _modules(parts)
    out = ComputeParts()
    out.items.append(
        _item("compute", "switch", switch.name, switches, switch.cost_usd, switch.maximum_draw_w)
    )
    nic = _nic_module(parts, max(1, planes // max(parts.system.scaleout_nics_per_gpu, 1)), lengths_m[0])
    if nic is not None:
        out.items.append(_item("compute", "transceiver", nic.name, nics, nic.cost_usd, nic.maximum_draw_w))
        out.nic_module, out.modules = nic.name, nics
    per_module = logical_ports_per_module(switch, link_gbps)
    ends = [links if i == 0 else 2 * links for i, links in enumerate(links_by_tier)]
    for i, n_ends in enumerate(ends):
        module = None
        if not switch.co_packaged_optics:
            length = lengths_m[min(i, len(lengths_m) - 1)]
            module = choose_module(modules, switch.port_gbps, switch.ports_per_cage, length)
        if module is None:
            out.module_by_tier.append("")
            continue
        count = math.ceil(n_ends / per_module)
        out.items.append(
            _item("compute", "transceiver", module.name, count, module.cost_usd, module.maximum_draw_w)
        )
        out.module_by_tier.append(module.name)
        out.modules += count
    out.main_module = next(
        (m for m in out.module_by_tier[1:] + out.module_by_tier[:1] if m), out.nic_module or ""
    )
    out.items.append(
        _item("compute", "cable", parts.cable.name, sum(links_by_tier), parts.cable.cost_usd_per_link, 0.0)
    )
    out.modules += _dci_items(parts, link_gbps, lengths_m[-1], dci, out.items)
    return out


def _dci_items(
    parts: Parts, link_gbps: int, trunk_m: float, dci: tuple[int, int, int], items: list[NetworkItem]
) -> int:
    border, spine, trunks = dci
    if not trunks:
        return 0
    switch, modules = _pluggable_sibling(parts), _modules(parts)
    per_module = logical_ports_per_module(switch, link_gbps)
    items.append(_item("dci", "switch", switch.name, border + spine, switch.cost_usd, switch.maximum_draw_w))
    count = 0
    long_reach = choose_module(modules, switch.port_gbps, switch.ports_per_cage, trunk_m)
    if long_reach is not None:
        n = math.ceil(2 * trunks / per_module)
        items.append(
            _item("dci", "transceiver", long_reach.name, n, long_reach.cost_usd, long_reach.maximum_draw_w)
        )
        count += n
    short = choose_module(modules, switch.port_gbps, switch.ports_per_cage, 500.0)
    if short is not None:  # border switch to fabric: the border end (a co-packaged fabric end needs none)
        ends = trunks if parts.switch.co_packaged_optics else 2 * trunks
        n = math.ceil(ends / per_module)
        items.append(_item("dci", "transceiver", short.name, n, short.cost_usd, short.maximum_draw_w))
        count += n
    cables = sorted(parts.catalog.all("cables", type(parts.cable)), key=lambda c: c.name)
    campus = next((c for c in cables if c.kind == "fiber" and (c.reach_m or 0.0) >= trunk_m), parts.cable)
    items.append(_item("dci", "cable", campus.name, trunks, campus.cost_usd_per_link, 0.0))
    items.append(_item("dci", "cable", parts.cable.name, trunks, parts.cable.cost_usd_per_link, 0.0))
    return count


def management_networks(parts: Parts, counts: SiteCounts) -> tuple[list[AuxNetwork], list[NetworkItem]]:
    """The storage + in-band and out-of-band networks of the site, with their parts."""
    from tokenfab.blueprint import network

    std = parts.standards
    items: list[NetworkItem] = []
    sus = len(counts.su_racks)
    # out-of-band: 1 GbE for every BMC and managed tray; each access switch has two uplinks into the converged
    # fabric, which carries them as endpoints
    oob_switch = _switch(parts, std.oob_switch)
    ports = counts.nodes * std.oob_ports_per_node + counts.racks * std.oob_ports_per_rack
    access = math.ceil(ports / oob_switch.ports)
    # storage + in-band: a non-blocking fat tree of the converged switch at the storage port speed, built for the
    # nodes installed (the full-SU rule of the RAs is the compute fabric's), storage ports per SU and OOB uplinks
    conv = _switch(parts, std.converged_switch)
    endpoints = (
        counts.nodes * std.inband_storage_ports_per_node
        + std.storage_ports_per_scalable_unit * sus
        + OOB_UPLINKS_PER_SWITCH * access
    )
    radix = network.effective_radix(conv.ports, conv.port_gbps, std.inband_storage_port_gbps)
    e_su = math.ceil(endpoints / max(sus, 1))
    tree = network.fat_tree(e_su, sus, radix, 1.0)
    tiers = [
        FabricTier.model_construct(
            tier=i + 1,
            name=network.TIER_NAMES[i] if i < len(network.TIER_NAMES) else f"tier-{i + 1}",
            switches=tree.switches_by_tier[i],
            downlinks_per_switch=tree.downlinks_by_tier[i],
            uplinks_per_switch=tree.uplinks_by_tier[i],
        )
        for i in range(tree.tiers)
    ]
    converged = AuxNetwork.model_construct(
        name="storage+in-band",
        switch=conv.name,
        endpoints=e_su * sus,
        link_gbps=std.inband_storage_port_gbps,
        tiers=tiers,
        links=tree.links,
    )
    items.append(
        _item(converged.name, "switch", conv.name, tree.switches, conv.cost_usd, conv.maximum_draw_w)
    )
    modules = _modules(parts)
    node_module = choose_module(modules, std.inband_storage_port_gbps, 1, 500.0)
    switch_module = max(
        (m for m in modules if m.gbps == std.inband_storage_port_gbps and m.ports > 1),
        key=lambda m: m.ports,
        default=None,
    )
    if node_module is not None:
        node_ports = (
            counts.nodes * std.inband_storage_ports_per_node + std.storage_ports_per_scalable_unit * sus
        )
        items.append(
            _item(
                converged.name,
                "transceiver",
                node_module.name,
                node_ports + 2 * OOB_UPLINKS_PER_SWITCH * access,
                node_module.cost_usd,
                node_module.maximum_draw_w,
            )
        )
    if switch_module is not None:
        ends = tree.links_by_tier[0] + 2 * sum(tree.links_by_tier[1:])
        items.append(
            _item(
                converged.name,
                "transceiver",
                switch_module.name,
                math.ceil(ends / switch_module.ports),
                switch_module.cost_usd,
                switch_module.maximum_draw_w,
            )
        )
    items.append(
        _item(converged.name, "cable", parts.cable.name, tree.links, parts.cable.cost_usd_per_link, 0.0)
    )
    oob = AuxNetwork.model_construct(
        name="oob",
        switch=oob_switch.name,
        endpoints=ports,
        link_gbps=oob_switch.port_gbps,
        tiers=[
            FabricTier.model_construct(
                tier=1,
                name="leaf",
                switches=access,
                downlinks_per_switch=oob_switch.ports,
                uplinks_per_switch=OOB_UPLINKS_PER_SWITCH,
            )
        ],
        links=ports + OOB_UPLINKS_PER_SWITCH * access,
    )
    items.append(
        _item("oob", "switch", oob_switch.name, access, oob_switch.cost_usd, oob_switch.maximum_draw_w)
    )
    copper = next((c for c in parts.catalog.all("cables", type(parts.cable)) if c.kind == "copper"), None)
    if copper is not None:
        items.append(_item("oob", "cable", copper.name, ports, copper.cost_usd_per_link, 0.0))
    return [converged, oob], items


def merge(items: list[NetworkItem]) -> list[NetworkItem]:
    """One item per (network, kind, part), counts added, zero counts dropped, in first-seen order."""
    merged: dict[tuple[str, str, str], NetworkItem] = {}
    for item in items:
        key = (item.network, item.kind, item.item)
        if key in merged:
            merged[key] = _item(
                item.network,
                item.kind,
                item.item,
                merged[key].count + item.count,
                item.unit_cost_usd,
                item.draw_w,
            )
        else:
            merged[key] = item
    return [i for i in merged.values() if i.count > 0]
