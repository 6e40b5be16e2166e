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
* ``topology.yaml`` (Slurm ≥ 25.05) holds both: the tree as the cluster default, the blocks as a second
  topology a partition can name. Slurm reads it instead of topology.conf when both are present.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tokenfab.blueprint.design import Design
from tokenfab.export.fabric import inventory_links
from tokenfab.export.names import Inventory, inventory, switch_name

OS_RESERVED_MEMORY_FRACTION = 0.05
"""Share of a node's memory kept from Slurm for the OS (RealMemory must not exceed what slurmd sees)."""

_DIGITS = "0123456789"


# --- hostlists -------------------------------------------------------------------------------------


def hostlist(names: Iterable[str]) -> str:
    """Compress names into a Slurm hostlist expression, keeping their order: ``a-n[00-03,05],b``."""
    runs: list[list[Any]] = []  # [prefix, width, first, last]; width -1 for a name without a number
    last_run: list[Any] | None = None
    for name in names:
        prefix = name.rstrip(_DIGITS)
        if len(prefix) == len(name):
            last_run = None
            runs.append([name, -1, 0, 0])
            continue
        digits = name[len(prefix) :]
        number, width = int(digits), len(digits)
        if (
            last_run is not None
            and last_run[0] == prefix
            and last_run[1] == width
            and number == last_run[3] + 1
        ):
            last_run[3] = number
            continue
        last_run = [prefix, width, number, number]
        runs.append(last_run)
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
            f"NodeName={_rack_hostlist(inv, rack, end - first)} CPUs={cpus} RealMemory={memory} "
            f"Gres=gpu:{gpus} Features={features}{addr} State=UNKNOWN"
        )
    lines.append("")
    for code in inv.site_codes:
        lines.append(f"NodeSet={code} Feature={code}")
    for site_index, site_design in enumerate(design.sites):
        default = "YES" if site_index == 0 else "NO"
        lines.append(
            f"PartitionName={site_design.name} Nodes={inv.site_codes[site_index]} Default={default} "
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
        lines.append(
            f"NodeName={_rack_hostlist(inv, rack, end - first)} Name=gpu Count={gpus} File={devices}"
        )
    return "\n".join(lines) + "\n"


def _grouped_hostlists(
    keys: np.ndarray,
    members: np.ndarray,
    member_segment: np.ndarray,
    member_number: np.ndarray,
    segment_prefix: Sequence[str],
    width: int,
) -> dict[int, str]:
    """A hostlist per key of its distinct members, built from integer runs rather than from names.

    Member ``m`` is named ``segment_prefix[member_segment[m]] + f"{member_number[m]:0{width}d}"``; runs of
    consecutive numbers within one segment become ``[a-b]`` ranges. O(links) numpy work plus one Python
    step per run, which keeps a 1 GW fabric to seconds.
    """
    if not keys.size:
        return {}
    span = int(members.max()) + 1
    combined = np.sort(keys.astype(np.int64) * span + members)  # by key, then member
    combined = combined[np.r_[True, combined[1:] != combined[:-1]]]  # no repeats
    keys, members = combined // span, combined % span
    segment, number = member_segment[members], member_number[members]
    new_run = np.ones(keys.shape[0], dtype=bool)
    new_run[1:] = (keys[1:] != keys[:-1]) | (segment[1:] != segment[:-1]) | (number[1:] != number[:-1] + 1)
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], keys.shape[0]] - 1
    pieces: dict[int, list[tuple[int, list[str]]]] = {}
    for key, seg, first, last in zip(
        keys[starts].tolist(),
        segment[starts].tolist(),
        number[starts].tolist(),
        number[ends].tolist(),
        strict=True,
    ):
        text = f"{first:0{width}d}" if first == last else f"{first:0{width}d}-{last:0{width}d}"
        groups = pieces.setdefault(key, [])
        if groups and groups[-1][0] == seg:
            groups[-1][1].append(text)
        else:
            groups.append((seg, [text]))
    return {
        key: ",".join(
            f"{segment_prefix[seg]}{ranges[0]}"
            if len(ranges) == 1 and "-" not in ranges[0]
            else f"{segment_prefix[seg]}[{','.join(ranges)}]"
            for seg, ranges in groups
        )
        for key, groups in pieces.items()
    }


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
    node_rack = fleet.node_rack
    rack_prefix = [f"{name}-n" for name in inv.rack_names]
    site_su_first = np.searchsorted(fleet.hall_site[fleet.su_hall], np.arange(fleet.n_sites))
    su_names = [f"{code}-leaves" for code in inv.su_codes]
    for site_index, (site, tiers) in enumerate(zip(inv.design.sites, inventory_links(inv), strict=True)):
        fabric = site.fabric
        prefixes = [switch_name(site_index, tier.name, 0)[:-4] for tier in fabric.tiers]  # "s0-leaf-"
        lines.append(
            f"# site {site.name}: {fabric.kind} fat tree, {len(fabric.tiers)} tier(s), "
            f"{sum(t.switches for t in fabric.tiers)} switches"
        )

        def nodes_of(keys, members):
            return _grouped_hostlists(keys, members, node_rack, inv.node_in_rack, rack_prefix, 2)

        if leaves == "switches":
            level0 = nodes_of(tiers[0].upper, tiers[0].lower)
            lines += [f"SwitchName={prefixes[0]}{leaf:04d} Nodes={level0[leaf]}" for leaf in sorted(level0)]
            lower_key = np.arange(fabric.tiers[0].switches)
        else:
            site_nodes = np.flatnonzero(fleet.node_site == site_index)
            level0 = nodes_of(node_su[site_nodes], site_nodes)
            lines += [f"SwitchName={su_names[su]} Nodes={level0[su]}" for su in sorted(level0)]
            per_su = fabric.tiers[0].switches // fabric.scalable_units
            lower_key = site_su_first[site_index] + np.arange(fabric.tiers[0].switches) // per_su
        defined = np.fromiter(level0, dtype=np.int64, count=len(level0))  # level-0 switches with nodes
        for level in range(1, len(fabric.tiers)):
            links = tiers[level]
            child = lower_key[links.lower] if level == 1 else links.lower
            live = np.isin(child, defined)
            if level == 1 and leaves == "scalable-units":
                members: dict[int, dict[int, None]] = {}
                for upper, su in zip(links.upper[live].tolist(), child[live].tolist(), strict=True):
                    members.setdefault(upper, {})[su] = None
                grouped = {upper: hostlist(su_names[su] for su in sus) for upper, sus in members.items()}
            else:
                count = fabric.tiers[level - 1].switches
                zeros = np.zeros(count, dtype=np.int64)
                grouped = _grouped_hostlists(
                    links.upper[live], child[live], zeros, np.arange(count), [prefixes[level - 1]], 4
                )
            lines += [
                f"SwitchName={prefixes[level]}{switch:04d} Switches={grouped[switch]}"
                for switch in sorted(grouped)
            ]
            defined = np.fromiter(grouped, dtype=np.int64, count=len(grouped))
    return "\n".join(lines) + "\n"


def _rack_hostlist(inv: Inventory, rack: int, count: int) -> str:
    """The nodes of one rack (numbered 0 … count-1 within it) as a hostlist."""
    prefix = f"{inv.rack_names[rack]}-n"
    return f"{prefix}00" if count == 1 else f"{prefix}[00-{count - 1:02d}]"


def block_sizes(nodes_per_domain: int, nodes_per_su: int) -> list[int]:
    """``BlockSizes``: the NVLink domain, then the largest power-of-two multiple of it within an SU.

    .. math:: B = [n_d,\\; n_d \\, 2^{\\lfloor \\log_2 (n_{SU} / n_d) \\rfloor}]
    """
    sizes = [nodes_per_domain]
    if nodes_per_su >= 2 * nodes_per_domain:
        sizes.append(nodes_per_domain * 2 ** int(math.floor(math.log2(nodes_per_su / nodes_per_domain))))
    return sizes


def topology_block_conf(inv: Inventory) -> str:
    """topology.conf for topology/block: one block per NVLink domain, BlockSizes up to the SU."""
    fleet = inv.fleet
    lines = _header(inv.design, "topology.conf (topology/block, Slurm >= 23.02)")
    starts = np.searchsorted(fleet.node_domain, np.arange(fleet.n_domains + 1))
    for domain in range(fleet.n_domains):
        first, end = int(starts[domain]), int(starts[domain + 1])
        rack = int(fleet.domain_rack[domain])
        lo, hi = int(inv.node_in_rack[first]), int(inv.node_in_rack[end - 1])
        nodes = (
            f"{inv.rack_names[rack]}-n{lo:02d}"
            if lo == hi
            else f"{inv.rack_names[rack]}-n[{lo:02d}-{hi:02d}]"
        )
        lines.append(f"BlockName={inv.domain_names[domain]} Nodes={nodes}")
    per_domain, per_su = [], []
    for site in inv.design.sites:
        rack_design = site.rack
        per_domain.append(max(1, rack_design.gpus_per_nvlink_domain // (rack_design.gpus // rack_design.nodes)))
        per_su.append(site.fabric.endpoints_per_scalable_unit // site.fabric.rails)
    # one BlockSizes for the cluster: the smallest domain, and a size that fits in every site's SU
    lines.append(f"BlockSizes={','.join(str(s) for s in block_sizes(min(per_domain), min(per_su)))}")
    return "\n".join(lines) + "\n"


def topology_yaml(tree_conf: str, block_conf: str) -> str:
    """topology.yaml (Slurm ≥ 25.05): the tree as the cluster default topology and the blocks as a second.

    Built from the two topology.conf texts, so the three files always describe the same fabric; written
    line by line (values JSON-quoted, which YAML reads as strings) to stay fast for 100k nodes.
    """
    lines = [
        "# topology.yaml (Slurm >= 25.05; it replaces topology.conf when present) generated by tokenfab.",
        "- topology: fabric",
        "  cluster_default: true",
        "  tree:",
        "    switches:",
    ]
    for record in parse_conf(tree_conf):
        lines.append(f"    - switch: {json.dumps(record['switchname'])}")
        if "switches" in record:
            lines.append(f"      children: {json.dumps(record['switches'])}")
        if "nodes" in record:
            lines.append(f"      nodes: {json.dumps(record['nodes'])}")
    records = parse_conf(block_conf)
    sizes = [int(size) for r in records if "blocksizes" in r for size in r["blocksizes"].split(",")]
    lines += [
        "- topology: nvlink",
        "  cluster_default: false",
        "  block:",
        f"    block_sizes: {sizes}",
        "    blocks:",
    ]
    for record in records:
        if "blockname" in record:
            lines.append(f"    - block: {json.dumps(record['blockname'])}")
            lines.append(f"      nodes: {json.dumps(record['nodes'])}")
    return "\n".join(lines) + "\n"


def export_slurm(design: Design, *, leaves: str = "switches") -> dict[str, str]:
    """Every Slurm file for `design`: file name → text."""
    inv = inventory(design)
    tree = topology_tree_conf(inv, leaves=leaves)
    block = topology_block_conf(inv)
    return {
        "slurm.conf": slurm_conf(inv),
        "gres.conf": gres_conf(inv),
        "topology.conf": tree,
        "topology-block.conf": block,
        "topology.yaml": topology_yaml(tree, block),
    }
