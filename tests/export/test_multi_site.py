"""Exports of a two-site campus: per-site switches, partitions, flavors; counts add up across sites."""

from __future__ import annotations

from collections import Counter

import yaml

from tokenfab.export.kueue import SITE_LABEL, export_kueue
from tokenfab.export.netbox import export_netbox
from tokenfab.export.slurm import export_slurm, parse_conf
from tokenfab.names import expand_hostlist


def test_slurm_two_sites(two_site_design):
    files = export_slurm(two_site_design)
    records = parse_conf(files["slurm.conf"])
    nodes = [n for r in records if "nodename" in r for n in expand_hostlist(r["nodename"])]
    assert len(nodes) == len(set(nodes)) == sum(s.metrics.nodes for s in two_site_design.sites)
    gpus = sum(
        int(r["gres"].split(":")[-1]) * len(expand_hostlist(r["nodename"]))
        for r in records
        if "nodename" in r
    )
    assert gpus == two_site_design.metrics.gpus
    partitions = [r for r in records if "partitionname" in r]
    assert [p["partitionname"] for p in partitions] == ["north", "south"]
    assert [p["default"] for p in partitions] == ["YES", "NO"]
    switches = [r["switchname"] for r in parse_conf(files["topology.conf"]) if "switchname" in r]
    assert {name.split("-")[0] for name in switches} == {"s0", "s1"}
    blocks = [r for r in parse_conf(files["topology-block.conf"]) if "blockname" in r]
    assert len(blocks) == two_site_design.metrics.nvlink_domains
    assert parse_conf(files["topology-block.conf"])[-1]["blocksizes"] == "1,32"  # the smaller domain: HGX


def test_kueue_two_sites(two_site_design):
    files = export_kueue(two_site_design)
    flavors = [o for o in yaml.safe_load_all(files["topology.yaml"]) if o["kind"] == "ResourceFlavor"]
    assert [f["spec"]["nodeLabels"][SITE_LABEL] for f in flavors] == ["s0", "s1"]
    nodes = list(yaml.safe_load_all(files["nodes.yaml"]))
    per_site = Counter(n["metadata"]["labels"][SITE_LABEL] for n in nodes)
    assert [per_site["s0"], per_site["s1"]] == [s.metrics.nodes for s in two_site_design.sites]


def test_netbox_two_sites(two_site_design):
    import csv
    import io

    files = export_netbox(two_site_design)
    devices = list(csv.DictReader(io.StringIO(files["devices.csv"])))
    roles = Counter(d["role"] for d in devices)
    assert roles["compute-node"] == sum(s.metrics.nodes for s in two_site_design.sites)
    assert roles["leaf-switch"] == sum(s.fabric.tiers[0].switches for s in two_site_design.sites)
    assert len(list(csv.DictReader(io.StringIO(files["sites.csv"])))) == 2
    installed_links = sum(
        s.metrics.nodes * s.fabric.rails + sum(s.fabric.links_by_tier[1:]) for s in two_site_design.sites
    )
    assert files["cables.csv"].count("\n") - 1 == installed_links
    assert any(name.endswith("hgx-h100-node.yaml") for name in files)
