"""Network rules (``NET``): NVLink domains, the scale-out fat tree, ports and links."""

from __future__ import annotations

import math

from tokenfab.blueprint import network
from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import Switch, System
from tokenfab.certify.check import finding, rule
from tokenfab.certify.rules._common import (
    _differs,
    _entry,
    _exceeds,
    _sites,
    _tier_path,
)


@rule("NET-001", "network", "NVLink domains whole", "error",
      "A rack whose GPUs are not whole NVLink domains strands GPUs outside any domain and breaks tensor parallelism.",
      "G_rack = d_rack · G_domain",
      kind="consistency", basis="the design's own numbers: GPUs as whole NVLink domains")
def nvlink_domains_whole(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        whole = r.nvlink_domains * r.gpus_per_nvlink_domain
        if r.gpus != whole:
            yield finding("NET-001", f"{path}.rack", r.gpus, whole, "GPUs",
                          f"rack has {r.gpus} GPUs but {r.nvlink_domains} NVLink domain(s) of {r.gpus_per_nvlink_domain} hold {whole}")
        if site.metrics.gpus != site.metrics.nvlink_domains * r.gpus_per_nvlink_domain:
            whole_site = site.metrics.nvlink_domains * r.gpus_per_nvlink_domain
            yield finding("NET-001", f"{path}.metrics", site.metrics.gpus, whole_site, "GPUs",
                          f"site has {site.metrics.gpus:,} GPUs but {site.metrics.nvlink_domains:,} whole domains hold {whole_site:,}")


@rule("NET-002", "network", "every NVLink domain in one rack", "error",
      "NVLink copper spans one rack; a domain larger than a rack, or sized unlike the system's, cannot be cabled.",
      "G_domain ≤ G_rack; G_domain = G_domain,system",
      kind="engineering", basis="vendor limit: an NVLink domain is cabled in copper within one rack (catalog systems)")
def nvlink_domain_in_one_rack(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        system = _entry(catalog, "systems", r.system, System)
        if r.gpus_per_nvlink_domain > r.gpus:
            yield finding("NET-002", f"{path}.rack", r.gpus_per_nvlink_domain, r.gpus, "GPUs",
                          f"an NVLink domain of {r.gpus_per_nvlink_domain} GPUs does not fit in a rack of {r.gpus}")
        expected = system.gpus_per_nvlink_domain if system else r.gpus_per_nvlink_domain
        for label, size in (("rack", r.gpus_per_nvlink_domain), ("fabric", site.fabric.gpus_per_nvlink_domain)):
            if size != expected:
                yield finding("NET-002", f"{path}.{label}", size, expected, "GPUs",
                              f"{label} states NVLink domains of {size} GPUs; a {r.system} domain is {expected}")


@rule("NET-003", "network", "halls hold whole NVLink domains", "error",
      "A hall that splits an NVLink domain, or claims more GPUs than its racks hold, misstates what can be scheduled there.",
      "G_hall ≤ R_hall · G_rack; G_hall mod G_domain = 0; Σ G_hall = G_site",
      kind="consistency", basis="the design's own numbers: halls hold whole domains")
def halls_hold_whole_domains(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        r = site.rack
        for h, hall in enumerate(site.halls):
            capacity = hall.racks * r.gpus
            if hall.gpus > capacity:
                yield finding("NET-003", f"{path}.hall[{h}]", hall.gpus, capacity, "GPUs",
                              f"hall claims {hall.gpus:,} GPUs but its {hall.racks} racks hold {capacity:,}")
            elif r.gpus_per_nvlink_domain and hall.gpus % r.gpus_per_nvlink_domain:
                yield finding("NET-003", f"{path}.hall[{h}]", hall.gpus, hall.gpus - hall.gpus % r.gpus_per_nvlink_domain, "GPUs",
                              f"hall's {hall.gpus:,} GPUs are not whole NVLink domains of {r.gpus_per_nvlink_domain}")
        total = sum(h.gpus for h in site.halls)
        if total != site.metrics.gpus or site.fabric.nvlink_domains != site.metrics.nvlink_domains:
            yield finding("NET-003", f"{path}.metrics", site.metrics.gpus, total, "GPUs",
                          f"site states {site.metrics.gpus:,} GPUs / {site.metrics.nvlink_domains:,} domains; halls hold {total:,}, "
                          f"fabric counts {site.fabric.nvlink_domains:,} domains")


@rule("NET-004", "network", "switch ports not exceeded", "error",
      "A switch cannot be cabled with more links than it has ports.",
      "d + u ≤ k (k = ports at link speed)",
      kind="engineering", basis="vendor limit: switch radix at the link speed (catalog switches)")
def switch_ports_not_exceeded(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        switch = _entry(catalog, "switches", f.switch, Switch)
        radix = network.effective_radix(switch.ports, switch.port_gbps, f.link_gbps) if switch else f.switch_ports
        if f.switch_ports > radix:
            yield finding("NET-004", f"{path}.fabric", f.switch_ports, radix, "ports",
                          f"fabric counts {f.switch_ports} ports per {f.switch} but it has {radix} at {f.link_gbps} Gb/s")
        for tier in f.tiers:
            used = tier.downlinks_per_switch + tier.uplinks_per_switch
            if used > min(radix, f.switch_ports):
                yield finding("NET-004", _tier_path(path, tier), used, min(radix, f.switch_ports), "ports",
                              f"{tier.name} switches use {tier.downlinks_per_switch} down + {tier.uplinks_per_switch} up = {used} ports of {min(radix, f.switch_ports)}")


@rule("NET-005", "network", "fabric non-blocking or as oversubscribed as declared", "error",
      "A fabric more oversubscribed than declared slows every collective that crosses it.",
      "d / u ≤ r_declared at the leaf; d / u ≤ 1 above; r_declared = r_spec",
      kind="consistency", basis="the spec's own declared oversubscription")
def fabric_oversubscription(design: Design, catalog: Catalog):
    for i, site, path in _sites(design):
        f = site.fabric
        if i < len(design.spec.sites) and _differs(f.oversubscription, design.spec.sites[i].fabric_oversubscription, 1e-6):
            yield finding("NET-005", f"{path}.fabric", f.oversubscription, design.spec.sites[i].fabric_oversubscription, ":1",
                          f"fabric declares {f.oversubscription:g}:1 but the spec asks for {design.spec.sites[i].fabric_oversubscription:g}:1")
        for tier in f.tiers:
            if tier.uplinks_per_switch <= 0:
                continue
            ratio = tier.downlinks_per_switch / tier.uplinks_per_switch
            allowed = f.oversubscription if tier.tier == 1 else 1.0
            if _exceeds(ratio, allowed):
                yield finding("NET-005", _tier_path(path, tier), ratio, allowed, ":1",
                              f"{tier.name} switches have {tier.downlinks_per_switch} down / {tier.uplinks_per_switch} up = {ratio:.2f}:1, "
                              f"above the {allowed:g}:1 allowed")
        if len(f.tiers) == 1 and f.tiers[0].switches > 1:
            yield finding("NET-005", _tier_path(path, f.tiers[0]), f.tiers[0].switches, 1, "switches",
                          "several leaf switches with no spine above them are not one fabric")


@rule("NET-006", "network", "leaves hold every endpoint", "error",
      "Endpoints without a leaf port are GPUs with no scale-out network.",
      "⌈n_leaf / n_SU⌉ · d_leaf ≥ E_SU",
      kind="consistency", basis="the compiler's own rule: leaf counts of blueprint.network.fat_tree")
def leaves_hold_endpoints(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        if not f.tiers or f.scalable_units <= 0:
            continue
        leaf = f.tiers[0]
        per_su = leaf.switches / f.scalable_units
        ports = per_su * leaf.downlinks_per_switch
        if _exceeds(f.endpoints_per_scalable_unit, ports):
            yield finding("NET-006", _tier_path(path, leaf), ports, f.endpoints_per_scalable_unit, "ports",
                          f"{per_su:g} leaves per SU offer {ports:,.0f} downlinks for {f.endpoints_per_scalable_unit:,} endpoints")


@rule("NET-007", "network", "every uplink lands on a port above", "error",
      "Uplinks that the tier above cannot terminate are links that cannot be built.",
      "n_i · u_i ≤ n_i+1 · d_i+1",
      kind="consistency", basis="the design's own numbers: uplinks against downlinks above")
def uplinks_land(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        tiers = site.fabric.tiers
        for below, above in zip(tiers, tiers[1:], strict=False):
            up = below.switches * below.uplinks_per_switch
            down = above.switches * above.downlinks_per_switch
            if up > down:
                yield finding("NET-007", _tier_path(path, above), down, up, "ports",
                              f"{below.switches:,} {below.name} switches send {up:,} uplinks; {above.switches:,} {above.name} switches take {down:,}")
        if tiers and tiers[-1].uplinks_per_switch > 0:
            top = tiers[-1]
            yield finding("NET-007", _tier_path(path, top), top.uplinks_per_switch, 0, "ports",
                          f"the top tier ({top.name}) has {top.uplinks_per_switch} uplinks per switch with nothing above")


@rule("NET-008", "network", "tier and switch counts match the fat-tree formulas", "error",
      "A fabric with fewer tiers or switches than the fat tree needs for its endpoints is blocking or unbuildable.",
      "blueprint.network.fat_tree(E_SU, n_SU, k, r)",
      kind="consistency", basis="the compiler's own rule: blueprint.network.fat_tree")
def fat_tree_counts(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        if f.scalable_units <= 0 or f.endpoints_per_scalable_unit <= 0:
            continue
        tree = network.fat_tree(f.endpoints_per_scalable_unit, f.scalable_units, f.switch_ports, f.oversubscription)
        if len(f.tiers) < tree.tiers:
            yield finding("NET-008", f"{path}.fabric", len(f.tiers), tree.tiers, "tiers",
                          f"{f.endpoints:,} endpoints on radix-{f.switch_ports} switches need {tree.tiers} tiers; the fabric has {len(f.tiers)}")
            continue
        for tier, needed in zip(f.tiers, tree.switches_by_tier, strict=False):
            if tier.switches < needed:
                yield finding("NET-008", _tier_path(path, tier), tier.switches, needed, "switches",
                              f"{tier.name} has {tier.switches:,} switches; the fat tree needs {needed:,}")
            elif tier.switches > needed:
                yield finding("NET-008", _tier_path(path, tier), tier.switches, needed, "switches",
                              f"{tier.name} has {tier.switches:,} switches, more than the {needed:,} the fat tree needs", severity="warning")


@rule("NET-009", "network", "fabric covers every GPU", "error",
      "GPUs without scale-out links can only run jobs that fit one NVLink domain.",
      "E = E_SU · n_SU ≥ G · rails / G_node; n_SU = scalable units laid out",
      kind="consistency", basis="the design's own numbers: endpoints against GPUs and rails")
def fabric_covers_gpus(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        laid_out = sum(len(h.su_racks) for h in site.halls)
        if f.scalable_units < laid_out:
            yield finding("NET-009", f"{path}.fabric", f.scalable_units, laid_out, "SUs",
                          f"fabric serves {f.scalable_units} scalable units; the halls lay out {laid_out}")
        gpus_per_node = site.rack.gpus / site.rack.nodes if site.rack.nodes else 1
        needed = math.ceil(site.metrics.gpus * f.rails / gpus_per_node)
        endpoints = min(f.endpoints, f.endpoints_per_scalable_unit * f.scalable_units)
        if endpoints < needed:
            yield finding("NET-009", f"{path}.fabric", endpoints, needed, "endpoints",
                          f"fabric has {endpoints:,} endpoint links; {site.metrics.gpus:,} GPUs on {f.rails} rails need {needed:,}")


@rule("NET-010", "network", "links, cables and transceivers match the tiers", "error",
      "Cables and optics are bought from these counts; a short count is a fabric that cannot be finished.",
      "L_0 = E; L_i = n_i · u_i; cables = Σ L; transceivers = 2 · cables",
      kind="consistency", basis="the compiler's own rule: links, cables and transceivers per tier")
def links_match_tiers(design: Design, catalog: Catalog):
    for _, site, path in _sites(design):
        f = site.fabric
        derived = [f.endpoints] + [t.switches * t.uplinks_per_switch for t in f.tiers[:-1]]
        if list(f.links_by_tier) != derived:
            yield finding("NET-010", f"{path}.fabric.links_by_tier", sum(f.links_by_tier), sum(derived), "links",
                          f"links by tier {f.links_by_tier} but endpoints and uplinks give {derived}")
        if f.cables < sum(derived):
            yield finding("NET-010", f"{path}.fabric.cables", f.cables, sum(derived), "links",
                          f"{f.cables:,} cables for {sum(derived):,} links")
        if f.transceivers < 2 * sum(derived):
            yield finding("NET-010", f"{path}.fabric.transceivers", f.transceivers, 2 * sum(derived), "transceivers",
                          f"{f.transceivers:,} transceivers for {sum(derived):,} links (two ends each)")
