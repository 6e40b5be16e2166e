"""Slurm export: round trip through our parser, a golden file, and a real slurmctld reading the tree."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import compiled_example
from tests.export.slurmctld import SCONTROL, SLURMCTLD, controller_settings
from tokenfab.export.fabric import inventory_links
from tokenfab.export.slurm import (
    block_sizes,
    export_slurm,
    parse_conf,
    slurm_conf,
    topology_tree_conf,
)
from tokenfab.names import expand_hostlist, hostlist, inventory

GOLDEN_DIR = Path(__file__).parent / "golden"


def test_hostlist_round_trip():
    names = ["a-n00", "a-n01", "a-n02", "a-n05", "b", "a-n07", "c1", "c2", "c10"]
    expression = hostlist(names)
    assert expression == "a-n[00-02,05],b,a-n07,c[1-2],c10"
    assert expand_hostlist(expression) == names


def _nodes(records):
    nodes = {}
    for record in records:
        if "nodename" in record and record["nodename"] != "DEFAULT":
            gpus = int(record["gres"].split(":")[-1])
            for name in expand_hostlist(record["nodename"]):
                nodes[name] = gpus
    return nodes


def _switches(records):
    return {r["switchname"]: r for r in records if "switchname" in r}


def test_round_trip_counts(full_su_design):
    files = export_slurm(full_su_design)
    site = full_su_design.sites[0]
    nodes = _nodes(parse_conf(files["slurm.conf"]))
    assert len(nodes) == site.metrics.nodes
    assert sum(nodes.values()) == full_su_design.metrics.gpus
    switches = _switches(parse_conf(files["topology.conf"]))
    for tier in site.fabric.tiers:
        assert sum(1 for name in switches if f"-{tier.name}-" in name) == tier.switches
    leaf_links = sum(len(expand_hostlist(r["nodes"])) for r in switches.values() if "nodes" in r)
    assert leaf_links == site.fabric.links_by_tier[0]
    # two tiers: every spine reaches every leaf
    spines = [r for name, r in switches.items() if "-spine-" in name]
    assert all(len(expand_hostlist(r["switches"])) == site.fabric.tiers[0].switches for r in spines)
    blocks = [r for r in parse_conf(files["topology-block.conf"]) if "blockname" in r]
    assert len(blocks) == full_su_design.metrics.nvlink_domains
    assert sorted(n for b in blocks for n in expand_hostlist(b["nodes"])) == sorted(nodes)


def test_scalable_unit_leaves(full_su_design):
    text = export_slurm(full_su_design, leaves="scalable-units")["topology.conf"]
    switches = _switches(parse_conf(text))
    groups = [r for name, r in switches.items() if name.endswith("-leaves")]
    assert len(groups) == 2
    all_nodes = [n for r in groups for n in expand_hostlist(r["nodes"])]
    assert len(all_nodes) == len(set(all_nodes)) == full_su_design.sites[0].metrics.nodes


def test_block_form_follows_slurm_syntax(hgx_design):
    """topology/block as documented in topology.conf(5): BlockName=… Nodes=…; BlockSizes powers of two."""
    assert block_sizes(18, 144) == [18, 144]
    assert block_sizes(1, 32) == [1, 32]
    assert block_sizes(18, 90) == [18, 72]
    assert block_sizes(18, 18) == [18]
    text = export_slurm(hgx_design)["topology-block.conf"]
    records = parse_conf(text)
    assert set(records[-1]) == {"blocksizes"}
    sizes = [int(s) for s in records[-1]["blocksizes"].split(",")]
    assert all(b % a == 0 and (b // a) & (b // a - 1) == 0 for a, b in zip(sizes, sizes[1:], strict=False))
    blocks = records[:-1]
    assert all(set(r) == {"blockname", "nodes"} for r in blocks)
    assert all(len(expand_hostlist(r["nodes"])) >= sizes[0] for r in blocks)
    assert len(blocks) == hgx_design.metrics.nvlink_domains


def test_golden_files():
    """slurm.conf and topology.conf of examples/row-1mw; regenerate with TOKENFAB_REGENERATE_GOLDEN=1."""
    files = export_slurm(compiled_example("row-1mw"))
    for name in ("slurm.conf", "topology.conf"):
        golden = GOLDEN_DIR / f"row-1mw.{name}"
        if os.environ.get("TOKENFAB_REGENERATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(files[name])
        assert files[name] == golden.read_text(), (
            f"{golden} differs; regenerate with TOKENFAB_REGENERATE_GOLDEN=1"
        )


@pytest.mark.xdist_group("slurmctld")
@pytest.mark.parametrize("leaves", ["switches", "scalable-units"])
def test_real_slurmctld_reads_tree_topology(tmp_path, leaves):
    if not Path(SLURMCTLD).exists():
        pytest.skip(f"{SLURMCTLD} not installed (scripts/setup-system.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("slurmctld with SlurmUser=root needs root")
    design = compiled_example("site-10mw")
    inv = inventory(design)
    (tmp_path / "state").mkdir()
    (tmp_path / "spool").mkdir()
    conf = tmp_path / "slurm.conf"
    conf.write_text(controller_settings(tmp_path) + slurm_conf(inv, node_addr="127.0.0.1"))
    topology = topology_tree_conf(inv, leaves=leaves)
    (tmp_path / "topology.conf").write_text(topology)
    (tmp_path / "gres.conf").write_text(export_slurm(design)["gres.conf"])
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemon = subprocess.Popen(
        [SLURMCTLD, "-D", "-i", "-f", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        shown = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.poll() is None:
            result = subprocess.run([SCONTROL, "show", "topology"], capture_output=True, text=True, env=env)
            if result.returncode == 0 and "SwitchName" in result.stdout:
                shown = result.stdout
                break
            time.sleep(0.5)
        log = (tmp_path / "slurmctld.log").read_text() if (tmp_path / "slurmctld.log").exists() else ""
        assert shown, f"slurmctld did not answer; log tail:\n{log[-2000:]}"
        nodes_shown = subprocess.run(
            [SCONTROL, "show", "nodes", "-o"], capture_output=True, text=True, env=env, check=True
        ).stdout
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    read = _switches(parse_conf(shown))
    written = _switches(parse_conf(topology))
    assert set(read) == set(written)
    spines_and_cores = {
        f"s0-{tier}-{i:04d}"
        for tier, links in (("spine", 1), ("core", 2))
        for i in set(inventory_links(inv)[0][links].upper.tolist())
    }
    assert spines_and_cores <= set(read)
    if leaves == "scalable-units":
        assert sum(1 for name in read if name.endswith("-leaves")) == design.metrics.scalable_units
    leaf_nodes = {n for r in read.values() if r.get("level") == "0" for n in expand_hostlist(r["nodes"])}
    assert leaf_nodes == set(inv.node_names)
    assert len(nodes_shown.splitlines()) == len(inv.node_names)
    assert all("Gres=gpu:4" in line for line in nodes_shown.splitlines())


def test_topology_yaml_matches_conf_files(full_su_design):
    """topology.yaml as in topology.yaml(5): a tree topology and a block topology with the same content."""
    import yaml

    files = export_slurm(full_su_design)
    topologies = yaml.safe_load(files["topology.yaml"])
    assert [t["topology"] for t in topologies] == ["fabric", "nvlink"]
    tree, block = topologies
    assert tree["cluster_default"] is True and set(tree) == {"topology", "cluster_default", "tree"}
    switches = tree["tree"]["switches"]
    assert {s["switch"] for s in switches} == set(_switches(parse_conf(files["topology.conf"])))
    assert all(set(s) <= {"switch", "children", "nodes"} for s in switches)
    assert len(block["block"]["blocks"]) == full_su_design.metrics.nvlink_domains
    assert block["block"]["block_sizes"] == [18, 144]
