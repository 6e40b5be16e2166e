"""Kubernetes/Kueue objects for a design: a `Topology`, its `ResourceFlavor`s and every node's labels.

Kueue's topology-aware scheduling reads a `Topology` (``kueue.x-k8s.io/v1beta1``) whose levels are node
labels, from the widest domain down to the host. tokenfab's levels:

=============================  =========================  ======================================
level                          label                      value (see `tokenfab.names`)
=============================  =========================  ======================================
site                           ``tokenfab.io/site``       ``s0``
hall                           ``tokenfab.io/hall``       ``s0-h1``
scalable unit                  ``tokenfab.io/su``         ``s0-h1-su3``
rack                           ``tokenfab.io/rack``       ``s0-h1-su3-r12``
NVLink domain                  ``nvidia.com/gpu.clique``  ``s0-h1-su3-r12-d0``
node                           ``kubernetes.io/hostname`` ``s0-h1-su3-r12-n05``
=============================  =========================  ======================================

On a real cluster NVIDIA's GPU feature discovery sets ``nvidia.com/gpu.clique`` to
``<cluster UUID>.<clique id>``; the value written here names the same set of nodes before the cluster
exists. One `ResourceFlavor` per site selects that site's nodes and refers to the topology.
Pure functions return Python objects or text; the CLI writes files.
"""

from __future__ import annotations

import re
import shlex

import yaml

from tokenfab.blueprint.design import Design
from tokenfab.names import Inventory, inventory

KUEUE_API_VERSION = "kueue.x-k8s.io/v1beta1"
SITE_LABEL = "tokenfab.io/site"
HALL_LABEL = "tokenfab.io/hall"
SU_LABEL = "tokenfab.io/su"
RACK_LABEL = "tokenfab.io/rack"
CLIQUE_LABEL = "nvidia.com/gpu.clique"
HOSTNAME_LABEL = "kubernetes.io/hostname"
LEVELS = (SITE_LABEL, HALL_LABEL, SU_LABEL, RACK_LABEL, CLIQUE_LABEL, HOSTNAME_LABEL)
GPU_RESOURCE = "nvidia.com/gpu"


def object_name(text: str) -> str:
    """A DNS-1123 subdomain-safe name (lower case, '-', at most 63 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].rstrip("-") or "tokenfab"


def topology_name(design: Design) -> str:
    return object_name(f"tokenfab-{design.name}")


def topology(design: Design) -> dict:
    """The Kueue `Topology` object: levels from site down to hostname."""
    return {
        "apiVersion": KUEUE_API_VERSION,
        "kind": "Topology",
        "metadata": {"name": topology_name(design)},
        "spec": {"levels": [{"nodeLabel": label} for label in LEVELS]},
    }


def resource_flavors(design: Design) -> list[dict]:
    """One `ResourceFlavor` per site: it selects the site's nodes and names the topology."""
    flavors = []
    for index, site in enumerate(design.sites):
        flavors.append(
            {
                "apiVersion": KUEUE_API_VERSION,
                "kind": "ResourceFlavor",
                "metadata": {"name": object_name(f"{design.name}-{site.name}-{site.system}")},
                "spec": {
                    "nodeLabels": {SITE_LABEL: f"s{index}"},
                    "topologyName": topology_name(design),
                },
            }
        )
    return flavors


def cluster_queue(name: str, flavor: str, gpus: int) -> dict:
    """A `ClusterQueue` admitting up to ``gpus`` GPUs of one flavor (a tenant environment's nodes)."""
    return {
        "apiVersion": KUEUE_API_VERSION,
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": [GPU_RESOURCE],
                    "flavors": [
                        {"name": flavor, "resources": [{"name": GPU_RESOURCE, "nominalQuota": gpus}]}
                    ],
                }
            ],
        },
    }


def node_labels(inv: Inventory) -> list[tuple[str, dict[str, str]]]:
    """(hostname, labels) for every node, in fleet id order."""
    fleet = inv.fleet
    node_rack = fleet.node_rack.tolist()
    rack_su = fleet.rack_su.tolist()
    su_hall = fleet.su_hall.tolist()
    hall_site = fleet.hall_site.tolist()
    result = []
    for node, (name, domain) in enumerate(zip(inv.node_names, fleet.node_domain.tolist(), strict=True)):
        rack = node_rack[node]
        su = rack_su[rack]
        hall = su_hall[su]
        site = hall_site[hall]
        result.append(
            (
                name,
                {
                    SITE_LABEL: inv.site_codes[site],
                    HALL_LABEL: inv.hall_codes[hall],
                    SU_LABEL: inv.su_codes[su],
                    RACK_LABEL: inv.rack_names[rack],
                    CLIQUE_LABEL: inv.domain_names[domain],
                    HOSTNAME_LABEL: name,
                },
            )
        )
    return result


def nodes_manifest(labels: list[tuple[str, dict[str, str]]]) -> str:
    """A multi-document YAML of `Node` objects carrying the labels (for ``kubectl apply``).

    Built line by line (not through a YAML dumper) so 100k nodes take about a second. Every value is a name
    of `tokenfab.names` (letters, digits, '-'), double-quoted so YAML reads it as a string.
    """
    chunks = []
    for name, node_label_map in labels:
        body = "".join(f'    {key}: "{value}"\n' for key, value in node_label_map.items())
        chunks.append(f"---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n{body}")
    return "".join(chunks)


def label_script(labels: list[tuple[str, dict[str, str]]]) -> str:
    """A shell script of ``kubectl label nodes`` commands, one per NVLink domain.

    ``kubernetes.io/hostname`` is left out: the kubelet sets it (to the node name, as here).
    """
    lines = [
        "#!/bin/sh",
        "# Node labels for Kueue topology-aware scheduling, generated by tokenfab.",
        "set -e",
    ]
    groups: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name, node_label_map in labels:
        shared = {key: value for key, value in node_label_map.items() if key != HOSTNAME_LABEL}
        groups.setdefault(shared[CLIQUE_LABEL], ([], shared))[0].append(name)
    for names, shared in groups.values():
        pairs = " ".join(shlex.quote(f"{key}={value}") for key, value in shared.items())
        lines.append(f"kubectl label nodes --overwrite {' '.join(shlex.quote(n) for n in names)} {pairs}")
    return "\n".join(lines) + "\n"


def export_kueue(design: Design) -> dict[str, str]:
    """Every Kueue file for `design`: file name → text."""
    inv = inventory(design)
    labels = node_labels(inv)
    objects = [topology(design), *resource_flavors(design)]
    return {
        "topology.yaml": yaml.safe_dump_all(objects, sort_keys=False),
        "nodes.yaml": nodes_manifest(labels),
        "label-nodes.sh": label_script(labels),
    }
