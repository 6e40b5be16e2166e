"""Slurm configuration for a design: `slurm.conf` nodes and partitions, `gres.conf`, `topology.conf`.

Pure functions from a design (through its `Inventory`) to file texts; the CLI writes the files.

* ``slurm.conf``: one ``NodeName`` line per rack (GPUs as ``Gres=gpu:N``, CPUs and ``RealMemory`` from the
  catalog system), ``Features`` naming the node's site, hall and SU, one ``NodeSet`` and ``PartitionName``
  per site. Controller settings (SlurmctldHost, authentication, paths) are left to the operator.
* ``topology.conf`` for ``topology/tree``: leaf switches list their nodes, spines their leaves, cores their
  spines (the wiring of `tokenfab.export.fabric`). A rail-optimised leaf serves one rail of a run of nodes,
  so a node hangs under several leaves (one per rail); Slurm accepts that and logs
  ``WARNING: Multiple leaf switches contain nodes``. ``leaves="scalable-units"`` instead gives Slurm one
  level-0 switch per SU (the SU's leaves taken together), which avoids the warning and loses nothing for
  placement because every node of an SU reaches every rail leaf of that SU. Switches that serve no
  installed node (the leaves of a partly filled SU, and above them any switch left without children)
  are left out: Slurm rejects a switch whose child is not defined.
* ``topology-block.conf`` for ``topology/block`` (Slurm ≥ 23.02): one ``BlockName`` per NVLink domain and
  ``BlockSizes=<nodes per domain>,<nodes per SU>``; Slurm requires each size to be a power-of-two multiple
  of the one before, so the SU size is rounded down to one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from tokenfab.blueprint.design import Design
from tokenfab.export.fabric import inventory_links
from tokenfab.export.names import Inventory, inventory, switch_name

OS_RESERVED_MEMORY_FRACTION = 0.05
"""Share of a node's memory kept from Slurm for the OS (RealMemory must not exceed what slurmd sees)."""

_NUMBERED = re.compile(r"^(.*?)(\d+)$")


# --- hostlists -------------------------------------------------------------------------------------


def hostlist(names: Iterable[str]) -> str:
    """Compress names into a Slurm hostlist expression, keeping their order: ``a-n[00-03,05],b``."""
    runs: list[tuple[str, int, int, int]] = []  # (prefix, width, first, last)
    for name in names:
        match = _NUMBERED.match(name)
        if match is None:
            runs.append((name, -1, 0, 0))
            continue
        prefix, digits = match.groups()
        number, width = int(digits), len(digits)
        if runs:
            last_prefix, last_width, first, last = runs[-1]
            if last_prefix == prefix and last_width == width and number == last + 1:
                runs[-1] = (prefix, width, first, number)
                continue
        runs.append((prefix, width, number, number))
    parts: list[str] = []
    ranges: list[str] = []
    current: tuple[str, int] | None = None

    def flush() -> None:
        if current is None:
            return
        if len(ranges) == 1 and "-" not in ranges[0]:
            parts.append(f"{current[0]}{ranges[0]}")
        else:
            parts.append(f"{current[0]}[{','.join(ranges)}]")

    for prefix, width, first, last in runs:
        if width < 0:
            flush()
            current, ranges = None, []
            parts.append(prefix)
            continue
        text = f"{first:0{width}d}" if first == last else f"{first:0{width}d}-{last:0{width}d}"
        if current == (prefix, width):
            ranges.append(text)
        else:
            flush()
            current, ranges = (prefix, width), [text]
    flush()
    return ",".join(parts)


def expand_hostlist(expression: str) -> list[str]:
    """Every name of a hostlist expression (one bracket group per name, as this module writes them)."""
    names: list[str] = []
    for token in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)?", expression):
        match = re.fullmatch(r"([^\[]*)\[([^\]]*)\](.*)", token)
        if match is None:
            names.append(token)
            continue
        prefix, ranges, suffix = match.groups()
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            width = len(first)
            for number in range(int(first), int(last or first) + 1):
                names.append(f"{prefix}{number:0{width}d}{suffix}")
    return names


def parse_conf(text: str) -> list[dict[str, str]]:
    """Parse slurm.conf-style lines into one dict per line (keys lower-cased, comments dropped)."""
    records = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        record = {}
        for pair in line.split():
            key, _, value = pair.partition("=")
            record[key.lower()] = value
        records.append(record)
    return records


# --- files -----------------------------------------------------------------------------------------


def cluster_name(design: Design) -> str:
    """The design's name as a Slurm ClusterName: lower case letters, digits, '-' and '_'."""
    name = re.sub(r"[^a-z0-9_-]+", "-", design.name.lower()).strip("-")
    return (name or "tokenfab")[:40]


def real_memory_mib(memory_gb: float) -> int:
    """Slurm ``RealMemory`` [MiB] for `memory_gb` [GB] installed, less the OS share.

    .. math:: M = \\lfloor m \\cdot 10^9 / 2^{20} \\cdot (1 - f_{os}) \\rfloor
    """
    return int(memory_gb * 1e9 / 2**20 * (1.0 - OS_RESERVED_MEMORY_FRACTION))


def _header(design: Design, what: str) -> list[str]:
    return [
        f"# {what} generated by tokenfab from design {design.name!r} (design schema {design.schema_version})."
    ]


def slurm_conf(
    inv: Inventory, *, topology_plugin: str = "topology/tree", node_addr: str | None = None
) -> str:
    """The hardware part of slurm.conf: cluster, GRES, topology plugin, nodes, node sets, partitions.

    `node_addr` gives every node that address (``NodeAddr=``), for a controller that cannot resolve the
    hostnames yet (a dry run of the configuration on one machine).
    """
    addr = f" NodeAddr={node_addr}" if node_addr else ""
    design, fleet = inv.design, inv.fleet
    lines = _header(design, "slurm.conf fragment")
    lines += [
        "# Add SlurmctldHost, authentication and state/spool paths for your site (or Include this file).",
        f"ClusterName={cluster_name(design)}",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "GresTypes=gpu",
        f"TopologyPlugin={topology_plugin}",
        "",
    ]
    starts = inv.nodes_of_rack()
    rack_site = inv.rack_site
    su_of_rack = fleet.rack_su
    for rack in range(fleet.n_racks):
        first, end = int(starts[rack]), int(starts[rack + 1])
        if first == end:
            continue
        site = int(rack_site[rack])
        gpus = int(fleet.node_gpus[first])
        cpus = int(fleet.node_cpu_cores[first])
        memory = real_memory_mib(float(fleet.node_memory_gb[first]))
        su = int(su_of_rack[rack])
        hall = int(fleet.su_hall[su])
        features = f"{inv.site_codes[site]},{inv.hall_codes[hall]},{inv.su_codes[su]}"
        lines.append(
            f"NodeName={hostlist(inv.node_names[first:end])} CPUs={cpus} RealMemory={memory} "
            f"Gres=gpu:{gpus} Features={features}{addr} State=UNKNOWN"
        )
    lines.append("")
    for code in inv.site_codes:
        lines.append(f"NodeSet={code} Feature={code}")
    for site_index, site in enumerate(design.sites):
        default = "YES" if site_index == 0 else "NO"
        lines.append(
            f"PartitionName={site.name} Nodes={inv.site_codes[site_index]} Default={default} "
            "MaxTime=INFINITE State=UP"
        )
    return "\n".join(lines) + "\n"


def gres_conf(inv: Inventory) -> str:
    """gres.conf: the GPUs of every node, one line per rack."""
    fleet = inv.fleet
    lines = _header(inv.design, "gres.conf")
    lines.append("# With NVML on the nodes, `AutoDetect=nvml` can replace the File= lists.")
    starts = inv.nodes_of_rack()
    for rack in range(fleet.n_racks):
        first, end = int(starts[rack]), int(starts[rack + 1])
        if first == end:
            continue
        gpus = int(fleet.node_gpus[first])
        devices = "/dev/nvidia0" if gpus == 1 else f"/dev/nvidia[0-{gpus - 1}]"
        lines.append(f"NodeName={hostlist(inv.node_names[first:end])} Name=gpu Count={gpus} File={devices}")
    return "\n".join(lines) + "\n"


def _group_names(keys: np.ndarray, names: Sequence[str], members: np.ndarray) -> dict[int, list[str]]:
    """Names of `members` grouped by `keys` (both sorted by key, then member), without repeats."""
    order = np.lexsort((members, keys))
    keys, members = keys[order], members[order]
    pairs = np.unique(np.stack([keys, members]), axis=1) if keys.size else np.empty((2, 0), dtype=int)
    grouped: dict[int, list[str]] = {}
    for key, member in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        grouped.setdefault(key, []).append(names[member])
    return grouped


def topology_tree_conf(inv: Inventory, *, leaves: str = "switches") -> str:
    """topology.conf for topology/tree: every switch of every site's fabric and what hangs under it.

    `leaves` is ``"switches"`` (each leaf lists the nodes cabled to it) or ``"scalable-units"`` (one
    level-0 switch per SU, named ``{su}-leaves``, listing the SU's nodes; spines list those groups).
    """
    if leaves not in ("switches", "scalable-units"):
        raise ValueError(f"leaves must be 'switches' or 'scalable-units', not {leaves!r}")
    lines = _header(inv.design, "topology.conf (topology/tree)")
    fleet = inv.fleet
    node_su = fleet.node_su
    site_su_first = np.searchsorted(fleet.hall_site[fleet.su_hall], np.arange(fleet.n_sites))
    for site_index, (site, tiers) in enumerate(zip(inv.design.sites, inventory_links(inv), strict=True)):
        fabric = site.fabric
        names_by_tier = [
            [switch_name(site_index, tier.name, i) for i in range(tier.switches)] for tier in fabric.tiers
        ]
        lines.append(
            f"# site {site.name}: {fabric.kind} fat tree, {len(fabric.tiers)} tier(s), "
            f"{sum(t.switches for t in fabric.tiers)} switches"
        )
        if leaves == "switches":
            grouped = _group_names(tiers[0].upper, inv.node_names, tiers[0].lower)
            for leaf, leaf_name in enumerate(names_by_tier[0]):
                if leaf in grouped:
                    lines.append(f"SwitchName={leaf_name} Nodes={hostlist(grouped[leaf])}")
            lower_names = names_by_tier[0]
            lower_key = np.arange(fabric.tiers[0].switches)
        else:
            site_nodes = np.flatnonzero(fleet.node_site == site_index)
            su_names = [f"{code}-leaves" for code in inv.su_codes]
            grouped = _group_names(node_su[site_nodes], inv.node_names, site_nodes)
            for su in sorted(grouped):
                lines.append(f"SwitchName={su_names[su]} Nodes={hostlist(grouped[su])}")
            per_su = fabric.tiers[0].switches // fabric.scalable_units
            lower_key = site_su_first[site_index] + np.arange(fabric.tiers[0].switches) // per_su
            lower_names = su_names
        defined = {key for key in grouped}  # level-0 switches with at least one node
        for level in range(1, len(fabric.tiers)):
            links = tiers[level]
            child = lower_key[links.lower] if level == 1 else links.lower
            live = np.isin(child, np.fromiter(defined, dtype=np.int64, count=len(defined)))
            grouped = _group_names(
                links.upper[live], lower_names if level == 1 else names_by_tier[level - 1], child[live]
            )
            for switch, switch_label in enumerate(names_by_tier[level]):
                if switch in grouped:
                    lines.append(f"SwitchName={switch_label} Switches={hostlist(grouped[switch])}")
            defined = set(grouped)
    return "\n".join(lines) + "\n"


def block_sizes(nodes_per_domain: int, domains_per_su: int) -> list[int]:
    """``BlockSizes``: the NVLink domain, then the largest power-of-two multiple of it within an SU.

    .. math:: B = [n_d,\\; n_d \\, 2^{\\lfloor \\log_2 D_{SU} \\rfloor}]
    """
    sizes = [nodes_per_domain]
    if domains_per_su >= 2:
        sizes.append(nodes_per_domain * 2 ** int(math.floor(math.log2(domains_per_su))))
    return sizes


def topology_block_conf(inv: Inventory) -> str:
    """topology.conf for topology/block: one block per NVLink domain, BlockSizes up to the SU."""
    fleet = inv.fleet
    lines = _header(inv.design, "topology.conf (topology/block, Slurm >= 23.02)")
    starts = np.searchsorted(fleet.node_domain, np.arange(fleet.n_domains + 1))
    for domain in range(fleet.n_domains):
        first, end = int(starts[domain]), int(starts[domain + 1])
        lines.append(f"BlockName={inv.domain_names[domain]} Nodes={hostlist(inv.node_names[first:end])}")
    per_domain = []
    per_su = []
    for site in inv.design.sites:
        rack = site.rack
        gpus_per_node = rack.gpus // rack.nodes
        nodes_per_domain = max(1, rack.gpus_per_nvlink_domain // gpus_per_node)
        per_domain.append(nodes_per_domain)
        su_nodes = site.fabric.endpoints_per_scalable_unit // site.fabric.rails
        per_su.append(su_nodes // nodes_per_domain)
    lines.append(f"BlockSizes={','.join(str(s) for s in block_sizes(min(per_domain), min(per_su)))}")
    return "\n".join(lines) + "\n"


def export_slurm(design: Design, *, leaves: str = "switches") -> dict[str, str]:
    """Every Slurm file for `design`: file name → text."""
    inv = inventory(design)
    return {
        "slurm.conf": slurm_conf(inv),
        "gres.conf": gres_conf(inv),
        "topology.conf": topology_tree_conf(inv, leaves=leaves),
        "topology-block.conf": topology_block_conf(inv),
    }
