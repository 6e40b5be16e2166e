"""Network rules (``NET``): NVLink domains, the scale-out fat tree, ports and links."""

from __future__ import annotations

import math

from tokenfab.blueprint import netparts, network
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import Switch, System
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    _differs,
    _entry,
    _exceeds,
    _facility_limits,
    _sites,
    _standards,
    _tier_path,
)


@rule(
    "NET-001",
    "network",
    "NVLink domains whole",
    "error",
    "A rack whose GPUs are not whole NVLink domains strands GPUs outside any domain and breaks tensor parallelism.",
    "G_rack = d_rack · G_domain",
    kind="consistency",
    basis="the design's own numbers: GPUs as whole NVLink domains",
)
def nvlink_domains_whole(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        whole = r.nvlink_domains * r.gpus_per_nvlink_domain
        if r.gpus != whole:
            yield finding(
                "NET-001",
                f"{path}.rack",
                r.gpus,
                whole,
                "GPUs",
                f"rack has {r.gpus} GPUs but {r.nvlink_domains} NVLink domain(s) of {r.gpus_per_nvlink_domain} hold {whole}",
            )
        if site.metrics.gpus != site.metrics.nvlink_domains * r.gpus_per_nvlink_domain:
            whole_site = site.metrics.nvlink_domains * r.gpus_per_nvlink_domain
            yield finding(
                "NET-001",
                f"{path}.metrics",
                site.metrics.gpus,
                whole_site,
                "GPUs",
                f"site has {site.metrics.gpus:,} GPUs but {site.metrics.nvlink_domains:,} whole domains hold {whole_site:,}",
            )


@rule(
    "NET-002",
    "network",
    "every NVLink domain in one rack",
    "error",
    "NVLink copper spans one rack; a domain larger than a rack, or sized unlike the system's, cannot be cabled.",
    "G_domain ≤ G_rack; G_domain = G_domain,system",
    kind="engineering",
    basis="vendor limit: an NVLink domain is cabled in copper within one rack (catalog systems)",
)
def nvlink_domain_in_one_rack(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        system = _entry(catalog, "systems", r.system, System)
        if r.gpus_per_nvlink_domain > r.gpus:
            yield finding(
                "NET-002",
                f"{path}.rack",
                r.gpus_per_nvlink_domain,
                r.gpus,
                "GPUs",
                f"an NVLink domain of {r.gpus_per_nvlink_domain} GPUs does not fit in a rack of {r.gpus}",
            )
        expected = system.gpus_per_nvlink_domain if system else r.gpus_per_nvlink_domain
        for label, size in (
            ("rack", r.gpus_per_nvlink_domain),
            ("fabric", site.fabric.gpus_per_nvlink_domain),
        ):
            if size != expected:
                yield finding(
                    "NET-002",
                    f"{path}.{label}",
                    size,
                    expected,
                    "GPUs",
                    f"{label} states NVLink domains of {size} GPUs; a {r.system} domain is {expected}",
                )


@rule(
    "NET-003",
    "network",
    "halls hold whole NVLink domains",
    "error",
    "A hall that splits an NVLink domain, or claims more GPUs than its racks hold, misstates what can be scheduled there.",
    "G_hall ≤ R_hall · G_rack; G_hall mod G_domain = 0; Σ G_hall = G_site",
    kind="consistency",
    basis="the design's own numbers: halls hold whole domains",
)
def halls_hold_whole_domains(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        for h, hall in enumerate(site.halls):
            capacity = hall.racks * r.gpus
            if hall.gpus > capacity:
                yield finding(
                    "NET-003",
                    f"{path}.hall[{h}]",
                    hall.gpus,
                    capacity,
                    "GPUs",
                    f"hall claims {hall.gpus:,} GPUs but its {hall.racks} racks hold {capacity:,}",
                )
            elif r.gpus_per_nvlink_domain and hall.gpus % r.gpus_per_nvlink_domain:
                yield finding(
                    "NET-003",
                    f"{path}.hall[{h}]",
                    hall.gpus,
                    hall.gpus - hall.gpus % r.gpus_per_nvlink_domain,
                    "GPUs",
                    f"hall's {hall.gpus:,} GPUs are not whole NVLink domains of {r.gpus_per_nvlink_domain}",
                )
        total = sum(h.gpus for h in site.halls)
        if total != site.metrics.gpus or site.fabric.nvlink_domains != site.metrics.nvlink_domains:
            yield finding(
                "NET-003",
                f"{path}.metrics",
                site.metrics.gpus,
                total,
                "GPUs",
                f"site states {site.metrics.gpus:,} GPUs / {site.metrics.nvlink_domains:,} domains; halls hold {total:,}, "
                f"fabric counts {site.fabric.nvlink_domains:,} domains",
            )


@rule(
    "NET-004",
    "network",
    "switch ports not exceeded",
    "error",
    "A switch cannot be cabled with more links than it has ports.",
    "d + u ≤ k (k = ports at link speed)",
    kind="engineering",
    basis="vendor limit: switch radix at the link speed (catalog switches)",
)
def switch_ports_not_exceeded(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        switch = _entry(catalog, "switches", f.switch, Switch)
        radix = (
            network.effective_radix(switch.ports, switch.port_gbps, f.link_gbps) if switch else f.switch_ports
        )
        if f.switch_ports > radix:
            yield finding(
                "NET-004",
                f"{path}.fabric",
                f.switch_ports,
                radix,
                "ports",
                f"fabric counts {f.switch_ports} ports per {f.switch} but it has {radix} at {f.link_gbps} Gb/s",
            )
        for tier in f.tiers:
            used = tier.downlinks_per_switch + tier.uplinks_per_switch
            if used > min(radix, f.switch_ports):
                yield finding(
                    "NET-004",
                    _tier_path(path, tier),
                    used,
                    min(radix, f.switch_ports),
                    "ports",
                    f"{tier.name} switches use {tier.downlinks_per_switch} down + {tier.uplinks_per_switch} up = {used} ports of {min(radix, f.switch_ports)}",
                )


@rule(
    "NET-005",
    "network",
    "fabric non-blocking or as oversubscribed as declared",
    "error",
    "A fabric more oversubscribed than declared slows every collective that crosses it.",
    "d / u ≤ r_declared at the leaf; d / u ≤ 1 above; r_declared = r_spec",
    kind="consistency",
    basis="the spec's own declared oversubscription",
)
def fabric_oversubscription(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        f = site.fabric
        if i < len(design.spec.sites) and _differs(
            f.oversubscription, design.spec.sites[i].fabric_oversubscription, 1e-6
        ):
            yield finding(
                "NET-005",
                f"{path}.fabric",
                f.oversubscription,
                design.spec.sites[i].fabric_oversubscription,
                ":1",
                f"fabric declares {f.oversubscription:g}:1 but the spec asks for {design.spec.sites[i].fabric_oversubscription:g}:1",
            )
        for tier in f.tiers:
            if tier.uplinks_per_switch <= 0:
                continue
            ratio = tier.downlinks_per_switch / tier.uplinks_per_switch
            allowed = f.oversubscription if tier.tier == 1 else 1.0
            if _exceeds(ratio, allowed):
                yield finding(
                    "NET-005",
                    _tier_path(path, tier),
                    ratio,
                    allowed,
                    ":1",
                    f"{tier.name} switches have {tier.downlinks_per_switch} down / {tier.uplinks_per_switch} up = {ratio:.2f}:1, "
                    f"above the {allowed:g}:1 allowed",
                )
        if len(f.tiers) == 1 and f.tiers[0].switches > f.planes * max(len(f.compute_fabrics), 1):
            yield finding(
                "NET-005",
                _tier_path(path, f.tiers[0]),
                f.tiers[0].switches,
                1,
                "switches",
                "several leaf switches with no spine above them are not one fabric",
            )


@rule(
    "NET-006",
    "network",
    "leaves hold every endpoint",
    "error",
    "Endpoints without a leaf port are GPUs with no scale-out network.",
    "⌈n_leaf / n_SU⌉ · d_leaf ≥ E_SU",
    kind="consistency",
    basis="the compiler's own rule: leaf counts of blueprint.network.fat_tree",
)
def leaves_hold_endpoints(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        if not f.tiers or f.scalable_units <= 0:
            continue
        leaf = f.tiers[0]
        per_su = leaf.switches / f.scalable_units
        ports = per_su * leaf.downlinks_per_switch
        if _exceeds(f.endpoints_per_scalable_unit, ports):
            yield finding(
                "NET-006",
                _tier_path(path, leaf),
                ports,
                f.endpoints_per_scalable_unit,
                "ports",
                f"{per_su:g} leaves per SU offer {ports:,.0f} downlinks for {f.endpoints_per_scalable_unit:,} endpoints",
            )


@rule(
    "NET-007",
    "network",
    "every uplink lands on a port above",
    "error",
    "Uplinks that the tier above cannot terminate are links that cannot be built.",
    "n_i · u_i ≤ n_i+1 · d_i+1 (site totals when every compute fabric has the same depth, else per fabric)",
    kind="consistency",
    basis="the design's own numbers: uplinks against downlinks above",
)
def uplinks_land(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        if len({len(c.tiers) for c in f.compute_fabrics}) > 1:
            groups = [(f"{path}.fabric.compute[{c.index}]", c.tiers) for c in f.compute_fabrics]
        else:
            groups = [(f"{path}.fabric", f.tiers)]
        for where, tiers in groups:
            yield from _uplinks_land(where, tiers)


def _uplinks_land(where: str, tiers):
    for below, above in zip(tiers, tiers[1:], strict=False):
        up = below.switches * below.uplinks_per_switch
        down = above.switches * above.downlinks_per_switch
        if up > down:
            yield finding(
                "NET-007",
                f"{where}.tier[{above.name}]",
                down,
                up,
                "ports",
                f"{below.switches:,} {below.name} switches send {up:,} uplinks; {above.switches:,} {above.name} switches take {down:,}",
            )
    if tiers and tiers[-1].uplinks_per_switch > 0:
        top = tiers[-1]
        yield finding(
            "NET-007",
            f"{where}.tier[{top.name}]",
            top.uplinks_per_switch,
            0,
            "ports",
            f"the top tier ({top.name}) has {top.uplinks_per_switch} uplinks per switch with nothing above",
        )


@rule(
    "NET-008",
    "network",
    "tier and switch counts match the fat-tree formulas",
    "error",
    "A fabric with fewer tiers or switches than the fat tree needs for its endpoints is blocking or unbuildable.",
    "n_tier = P · Σ_fabrics blueprint.network.fat_tree(E_SU / P, n_SU,f, k, r)",
    kind="consistency",
    basis="the compiler's own rule: blueprint.network.fat_tree per compute fabric and plane",
)
def fat_tree_counts(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        if f.scalable_units <= 0 or f.endpoints_per_scalable_unit <= 0:
            continue
        per_plane = f.endpoints_per_scalable_unit // max(f.planes, 1)
        sus = [c.scalable_units for c in f.compute_fabrics] or [f.scalable_units]
        trees = [network.fat_tree(per_plane, n, f.switch_ports, f.oversubscription) for n in sus]
        depth = max(t.tiers for t in trees)
        if len(f.tiers) < depth:
            yield finding(
                "NET-008",
                f"{path}.fabric",
                len(f.tiers),
                depth,
                "tiers",
                f"{f.endpoints:,} endpoints on radix-{f.switch_ports} switches need {depth} tiers; the fabric has {len(f.tiers)}",
            )
            continue
        needed_by_tier = [
            f.planes * sum(t.switches_by_tier[i] for t in trees if i < t.tiers) for i in range(depth)
        ]
        for tier, needed in zip(f.tiers, needed_by_tier, strict=False):
            if tier.switches < needed:
                yield finding(
                    "NET-008",
                    _tier_path(path, tier),
                    tier.switches,
                    needed,
                    "switches",
                    f"{tier.name} has {tier.switches:,} switches; the fat trees need {needed:,}",
                )
            elif tier.switches > needed:
                yield finding(
                    "NET-008",
                    _tier_path(path, tier),
                    tier.switches,
                    needed,
                    "switches",
                    f"{tier.name} has {tier.switches:,} switches, more than the {needed:,} the fat trees need",
                    severity="warning",
                )


@rule(
    "NET-009",
    "network",
    "fabric covers every GPU",
    "error",
    "GPUs without scale-out links can only run jobs that fit one NVLink domain.",
    "E = E_SU · n_SU ≥ G · rails / G_node; n_SU = scalable units laid out",
    kind="consistency",
    basis="the design's own numbers: endpoints against GPUs and rails",
)
def fabric_covers_gpus(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        laid_out = sum(len(h.su_racks) for h in site.halls)
        if f.scalable_units < laid_out:
            yield finding(
                "NET-009",
                f"{path}.fabric",
                f.scalable_units,
                laid_out,
                "SUs",
                f"fabric serves {f.scalable_units} scalable units; the halls lay out {laid_out}",
            )
        gpus_per_node = site.rack.gpus / site.rack.nodes if site.rack.nodes else 1
        needed = math.ceil(site.metrics.gpus * f.rails / gpus_per_node)
        endpoints = min(f.endpoints, f.endpoints_per_scalable_unit * f.scalable_units)
        if endpoints < needed:
            yield finding(
                "NET-009",
                f"{path}.fabric",
                endpoints,
                needed,
                "endpoints",
                f"fabric has {endpoints:,} endpoint links; {site.metrics.gpus:,} GPUs on {f.rails} rails need {needed:,}",
            )


@rule(
    "NET-010",
    "network",
    "links, cables and transceivers match the tiers",
    "error",
    "Cables and optics are bought from these counts; a short count is a fabric that cannot be finished.",
    "L_i = P Σ_f L_i,f; cables ≥ Σ L + 2 L_DCI; modules ≥ Σ_i ⌈ends_i / (p_cage ⌊g_port / g_link⌋)⌉ (none for co-packaged optics)",
    kind="consistency",
    basis="the compiler's own rule: links per tier and modules per twin-port cage (blueprint.network)",
)
def links_match_tiers(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        if f.compute_fabrics:
            depth = max(len(c.links_by_tier) for c in f.compute_fabrics)
            derived = [
                f.planes * sum(c.links_by_tier[i] for c in f.compute_fabrics if i < len(c.links_by_tier))
                for i in range(depth)
            ]
        else:
            derived = [f.endpoints] + [t.switches * t.uplinks_per_switch for t in f.tiers[:-1]]
        if list(f.links_by_tier) != derived:
            yield finding(
                "NET-010",
                f"{path}.fabric.links_by_tier",
                sum(f.links_by_tier),
                sum(derived),
                "links",
                f"links by tier {f.links_by_tier} but the trees give {derived}",
            )
        cables = sum(derived) + 2 * f.dci_links
        if f.cables < cables:
            yield finding(
                "NET-010",
                f"{path}.fabric.cables",
                f.cables,
                cables,
                "links",
                f"{f.cables:,} cables for {cables:,} links",
            )
        switch = _entry(catalog, "switches", f.switch, Switch)
        if f.items and switch is not None:
            cage = 0 if switch.co_packaged_optics else netparts.logical_ports_per_module(switch, f.link_gbps)
            modules = (
                sum(math.ceil(e / cage) for e in network.compute_link_ends_by_tier(derived)) if cage else 0
            )
            what = (
                f"{modules:,} switch-side modules ({cage} links per module)"
                if cage
                else "no switch-side modules (co-packaged optics)"
            )
        else:
            modules, what = 2 * sum(derived), "two module ends per link"
        if f.transceivers < modules:
            yield finding(
                "NET-010",
                f"{path}.fabric.transceivers",
                f.transceivers,
                modules,
                "transceivers",
                f"{f.transceivers:,} transceivers; {sum(derived):,} links need at least {what}",
            )


def _site_tier_lengths_m(site, std, limits) -> list[float]:
    """Longest run per tier re-derived from the halls the design states (blueprint.network.tier_lengths_m)."""
    f = site.fabric
    su_max = max((r for h in site.halls for r in h.su_racks), default=0)
    racks_per_row = max((h.racks_per_row for h in site.halls), default=1) or 1
    hall_m2 = max((h.white_space_m2 for h in site.halls), default=0.0)
    fabric_halls = max((len(c.halls) for c in f.compute_fabrics), default=len(site.halls))
    return network.tier_lengths_m(
        min(racks_per_row, su_max),
        math.ceil(su_max / racks_per_row),
        hall_m2,
        fabric_halls,
        max(len(f.compute_fabrics), 1),
        len(f.tiers),
        limits.rack_pitch_m,
        std.row_pitch_m,
        std.cable_drop_m,
    )


@rule(
    "NET-011",
    "network",
    "optics and cables reach across the hall geometry",
    "error",
    "A module or cable shorter than the run it must span cannot carry the link: in-row multimode stops at ~50 m, DR "
    "single-mode at 500 m, copper DAC at ~3 m.",
    "ℓ_tier (from rows, hall area and buildings) ≤ reach(module, cable, co-packaged optics)",
    kind="engineering",
    basis="module reach ratings (IEEE 802.3: SR 50 m on OM4, DR 500 m, FR 2 km; DAC ~3 m) against runs from the design's hall geometry",
)
def optics_reach(design: Design, catalog: Catalog):
    from tokenfab.catalog.models import Cable, Transceiver

    std, limits = _standards(catalog), _facility_limits(catalog)
    if std is None or limits is None:
        return
    for _, site, path in _sites(design):
        f = site.fabric
        if not f.items:
            continue
        lengths = _site_tier_lengths_m(site, std, limits)
        switch = _entry(catalog, "switches", f.switch, Switch)
        for i, tier in enumerate(f.tiers):
            length = lengths[min(i, len(lengths) - 1)]
            reaches = []
            name = f.transceiver_by_tier[i] if i < len(f.transceiver_by_tier) else ""
            module = _entry(catalog, "transceivers", name, Transceiver) if name else None
            if module is not None and module.reach_m:
                reaches.append((module.reach_m, module.name))
            if switch is not None and switch.co_packaged_optics and switch.optics_reach_m:
                reaches.append((switch.optics_reach_m, f"{switch.name} co-packaged optics"))
            if i == 0 and f.nic_transceiver:
                nic = _entry(catalog, "transceivers", f.nic_transceiver, Transceiver)
                if nic is not None and nic.reach_m:
                    reaches.append((nic.reach_m, nic.name))
            for reach, what in reaches:
                if _exceeds(length, reach):
                    yield finding(
                        "NET-011",
                        _tier_path(path, tier),
                        length,
                        reach,
                        "m",
                        f"{tier.name} links run up to {length:,.0f} m but {what} reaches {reach:,.0f} m",
                    )
        inside = max(lengths[: len(f.tiers)], default=0.0)
        dci_m = lengths[-1] if f.dci_links and len(lengths) > len(f.tiers) else 0.0
        for item in f.items:
            if item.kind != "cable" or item.network not in ("compute", "dci"):
                continue
            cable = _entry(catalog, "cables", item.item, Cable)
            need = dci_m if item.network == "dci" else inside
            if cable is not None and cable.reach_m and _exceeds(need, cable.reach_m) and need > 0:
                yield finding(
                    "NET-011",
                    f"{path}.fabric.items[{item.network}:{item.item}]",
                    need,
                    cable.reach_m,
                    "m",
                    f"{item.item} ({cable.kind}) carries {cable.reach_m:g} m; the {item.network} links run up to {need:,.0f} m",
                )
        if dci_m:
            dci_reach = max(
                (
                    m.reach_m or 0.0
                    for it in f.items
                    if it.network == "dci" and it.kind == "transceiver"
                    for m in [_entry(catalog, "transceivers", it.item, Transceiver)]
                    if m is not None
                ),
                default=0.0,
            )
            if dci_reach and _exceeds(dci_m, dci_reach):
                yield finding(
                    "NET-011",
                    f"{path}.fabric.dci",
                    dci_m,
                    dci_reach,
                    "m",
                    f"DCI trunks between buildings run up to {dci_m:,.0f} m; its longest-reach module reaches {dci_reach:,.0f} m",
                )


@rule(
    "NET-012",
    "network",
    "compute fabrics within operators' size and depth",
    "error",
    "Beyond about 100k GPUs or three tiers per plane a single fabric has no operating precedent: hop count, optics "
    "per GPU and failure domain grow; operators add planes or buildings joined by a DCI instead.",
    "G_fabric ≤ G_max (catalog standards); tiers per plane ≤ 3",
    kind="engineering",
    basis="operators' largest single fabrics (xAI Colossus 100k GPUs on one Spectrum-X fabric; Lambda 128k) and the three-tier practice of multi-plane designs",
)
def fabric_size_and_depth(design: Design, catalog: Catalog):
    std = _standards(catalog)
    limit = std.compute_fabric_gpus_max if std else None
    for _, site, path in _sites(design):
        f = site.fabric
        fabrics = f.compute_fabrics or []
        for c in fabrics:
            where = f"{path}.fabric.compute[{c.index}]"
            if limit is not None and c.gpus > limit:
                yield finding(
                    "NET-012",
                    where,
                    c.gpus,
                    limit,
                    "GPUs",
                    f"compute fabric {c.index} joins {c.gpus:,} GPUs in one fabric; operators stop near {limit:,}",
                )
            if len(c.tiers) > network.MAX_TIERS_PER_PLANE:
                yield finding(
                    "NET-012",
                    where,
                    len(c.tiers),
                    network.MAX_TIERS_PER_PLANE,
                    "tiers",
                    f"compute fabric {c.index} has {len(c.tiers)} tiers per plane; add a plane or a building instead",
                )
        if not fabrics and len(f.tiers) > network.MAX_TIERS_PER_PLANE:
            yield finding(
                "NET-012",
                f"{path}.fabric",
                len(f.tiers),
                network.MAX_TIERS_PER_PLANE,
                "tiers",
                f"the fabric has {len(f.tiers)} tiers in one plane",
            )
