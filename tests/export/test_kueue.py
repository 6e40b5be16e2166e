"""Kueue export: objects validate against Kueue's CRD schemas; labels round-trip to the design's counts."""

from __future__ import annotations

import re

import jsonschema
import pytest
import yaml

from tokenfab.export.kueue import CLIQUE_LABEL, HOSTNAME_LABEL, LEVELS, RACK_LABEL, SITE_LABEL, export_kueue

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _crd_schema(shared_data_dir, file_name):
    crd = yaml.safe_load((shared_data_dir / "schemas" / "kueue" / file_name).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["storage"] and v["served"])
    return (
        crd["spec"]["group"],
        version["name"],
        crd["spec"]["names"]["kind"],
        version["schema"]["openAPIV3Schema"],
    )


@pytest.fixture(scope="module")
def kueue_files(full_su_design):
    return export_kueue(full_su_design)


@pytest.mark.parametrize(
    ("file_name", "kind"),
    [("topologies.crd.yaml", "Topology"), ("resourceflavors.crd.yaml", "ResourceFlavor")],
)
def test_objects_validate_against_crds(shared_data_dir, kueue_files, file_name, kind):
    group, version, crd_kind, schema = _crd_schema(shared_data_dir, file_name)
    assert crd_kind == kind
    objects = [o for o in yaml.safe_load_all(kueue_files["topology.yaml"]) if o["kind"] == kind]
    assert objects
    for obj in objects:
        assert obj["apiVersion"] == f"{group}/{version}"
        jsonschema.Draft202012Validator(schema).validate(obj)
    if kind == "Topology":
        levels = [level["nodeLabel"] for level in objects[0]["spec"]["levels"]]
        assert levels == list(LEVELS) and levels[-1] == HOSTNAME_LABEL and len(set(levels)) == len(levels)
    else:
        topology = next(
            o for o in yaml.safe_load_all(kueue_files["topology.yaml"]) if o["kind"] == "Topology"
        )
        assert all(o["spec"]["topologyName"] == topology["metadata"]["name"] for o in objects)


def test_crd_rejects_a_broken_topology(shared_data_dir):
    _, _, _, schema = _crd_schema(shared_data_dir, "topologies.crd.yaml")
    broken = {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "Topology",
        "metadata": {"name": "x"},
        "spec": {"levels": []},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_labels_round_trip(full_su_design, kueue_files):
    nodes = list(yaml.safe_load_all(kueue_files["nodes.yaml"]))
    assert len(nodes) == full_su_design.sites[0].metrics.nodes
    assert all(
        n["kind"] == "Node" and n["metadata"]["labels"][HOSTNAME_LABEL] == n["metadata"]["name"]
        for n in nodes
    )
    labels = [n["metadata"]["labels"] for n in nodes]
    assert all(set(lab) == set(LEVELS) for lab in labels)
    assert all(LABEL_VALUE.match(v) and len(v) <= 63 for lab in labels for v in lab.values())
    assert len({lab[CLIQUE_LABEL] for lab in labels}) == full_su_design.metrics.nvlink_domains
    assert len({lab[RACK_LABEL] for lab in labels}) == full_su_design.metrics.racks
    assert {lab[SITE_LABEL] for lab in labels} == {"s0"}
    gpus_per_node = full_su_design.sites[0].rack.gpus // full_su_design.sites[0].rack.nodes
    assert len(nodes) * gpus_per_node == full_su_design.metrics.gpus


def test_label_script_covers_every_node(full_su_design, kueue_files):
    commands = [
        line for line in kueue_files["label-nodes.sh"].splitlines() if line.startswith("kubectl label nodes")
    ]
    assert len(commands) == full_su_design.metrics.nvlink_domains
    named = [word for line in commands for word in line.split()[4:] if "=" not in word]
    assert len(named) == len(set(named)) == full_su_design.sites[0].metrics.nodes
