"""k0rdent objects for a tenant environment: `Credential`, `ClusterIPAMClaim`, `ClusterDeployment`, plus
the tenant cluster's node labels, the NVIDIA GPU operator's Helm values and Kueue's queue objects.

The `ClusterDeployment` names a k0rdent cluster template by the environment's kind: ``remote-cluster``
(k0s on the bare-metal GPU nodes, reached over SSH), ``kubevirt-standalone-cp`` / ``kubevirt-hosted-cp``
(VMs), ``openstack-standalone-cp`` (an OpenStack site). Its ``spec.config`` is the template's Helm values;
`validate` checks every object against the CRD's ``openAPIV3Schema`` and the config against the
template's ``values.schema.json`` (jsonschema, loaded only then). The node labels are Kueue's
(`tokenfab.export.kueue.node_labels`), so Kueue's topology-aware scheduling sees the NVLink domains
(``nvidia.com/gpu.clique``) and racks of the environment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tokenfab.blueprint.design import Design
from tokenfab.control.service.env_plan import frontend_subnet
from tokenfab.export import kueue
from tokenfab.names import inventory

API_VERSION = "k0rdent.mirantis.com/v1beta1"
NAMESPACE = "kcm-system"
TEMPLATE_VERSIONS = {
    "remote-cluster": "1.0.38",
    "kubevirt-standalone-cp": "1.0.23",
    "kubevirt-hosted-cp": "1.0.21",
    "openstack-standalone-cp": "1.0.46",
}
"""Chart versions of the cluster templates (their Chart.yaml in k0rdent's release)."""
CRD_FILES = {
    "ClusterDeployment": "clusterdeployments.yaml",
    "Credential": "credentials.yaml",
    "ClusterIPAMClaim": "clusteripamclaims.yaml",
}
GPU_OPERATOR_CHART = {
    "name": "gpu-operator",
    "chartname": "nvidia/gpu-operator",
    "version": "v25.3.0",
    "namespace": "gpu-operator",
}
ENVIRONMENT_LABEL = "tokenfab.io/environment"
TENANT_LABEL = "tokenfab.io/tenant"
CONTROL_PLANES = 3


def template_object_name(template: str) -> str:
    """The ClusterTemplate object of a template: ``remote-cluster-1-0-38``."""
    return f"{template}-{TEMPLATE_VERSIONS[template].replace('.', '-')}"


def _base(env: dict) -> str:
    return kueue.object_name(f"{env['tenant']}-{env['name']}")


def credential(env: dict) -> dict:
    """The Credential: an identity (a Secret the operator provides) for the template's provider."""
    secret = {"kubernetes": "ssh-key", "vm": "kubevirt-kubeconfig"}.get(env["kind"], "identity")
    if env["template"] == "openstack-standalone-cp":
        secret = "openstack-cloud-config"
    return {
        "apiVersion": API_VERSION,
        "kind": "Credential",
        "metadata": {"name": f"{_base(env)}-cred", "namespace": NAMESPACE},
        "spec": {
            "description": f"identity for tenant {env['tenant']}'s environment {env['name']}",
            "identityRef": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": f"{_base(env)}-{secret}",
                "namespace": NAMESPACE,
            },
        },
    }


def ipam_claim(env: dict, subnet: str) -> dict:
    """The ClusterIPAMClaim: the nodes' addresses on the environment's own front-end VLAN /24."""
    network, _, prefix = subnet.partition("/")
    octets = network.split(".")
    gateway = ".".join([*octets[:3], "1"])
    addresses = [".".join([*octets[:3], str(10 + i)]) for i in range(len(env["nodes"]))]
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterIPAMClaim",
        "metadata": {"name": f"{_base(env)}-ipam", "namespace": NAMESPACE},
        "spec": {
            "provider": "in-cluster",
            "cluster": _base(env),
            "nodeNetwork": {
                "cidr": subnet,
                "gateway": gateway,
                "prefix": int(prefix),
                "ipAddresses": addresses,
            },
        },
    }


def template_values(env: dict, addresses: list[str], gpus_per_node: int) -> dict:
    """The template's Helm values (``spec.config``) for the environment's nodes."""
    labels = {ENVIRONMENT_LABEL: env["name"], TENANT_LABEL: env["tenant"]}
    identity = {"name": f"{_base(env)}-identity"}
    workers = len(env["nodes"])
    if env["template"] == "remote-cluster":
        return {
            "clusterIdentity": identity,
            "clusterLabels": labels,
            "controlPlaneNumber": CONTROL_PLANES,
            "k0s": {
                "version": env["version"],
                "arch": "arm64" if gpus_per_node == 4 else "amd64",
                "extensions": {
                    "helm": {
                        "charts": [GPU_OPERATOR_CHART],
                        "repositories": [{"name": "nvidia", "url": "https://helm.ngc.nvidia.com/nvidia"}],
                    }
                },
            },
            "machines": [
                {"name": name, "address": address, "port": 22, "user": "root"}
                for name, address in zip(env["nodes"], addresses, strict=True)
            ],
        }
    common = {
        "clusterIdentity": identity,
        "clusterLabels": labels,
        "controlPlaneNumber": CONTROL_PLANES,
        "workersNumber": workers,
        "k0s": {"version": env["version"]},
    }
    if env["template"] == "openstack-standalone-cp":
        return {
            **common,
            "identityRef": {"cloudName": "openstack", "region": "RegionOne"},
            "controlPlane": {"flavor": "m1.large"},
            "worker": {"flavor": f"gpu.{gpus_per_node}x"},
        }
    return {**common, "worker": {"cpus": 32, "memory": "256Gi"}}


def cluster_deployment(env: dict, values: dict) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterDeployment",
        "metadata": {"name": _base(env), "namespace": NAMESPACE, "labels": {TENANT_LABEL: env["tenant"]}},
        "spec": {
            "template": template_object_name(env["template"]),
            "credential": f"{_base(env)}-cred",
            "ipamClaim": {"ref": f"{_base(env)}-ipam"},
            "config": values,
            "propagateCredentials": True,
        },
    }


def gpu_operator_values(env: dict) -> dict:
    """Helm values of NVIDIA's GPU operator for the tenant cluster (drivers on the host, CDI, no MIG)."""
    return {
        "driver": {"enabled": True},
        "toolkit": {"enabled": True},
        "cdi": {"enabled": True, "default": True},
        "devicePlugin": {"enabled": True},
        "dcgmExporter": {"enabled": True},
        "gfd": {"enabled": True},
        "mig": {"strategy": "none"},
        "daemonsets": {"nodeSelector": {ENVIRONMENT_LABEL: env["name"]}},
    }


def environment_objects(design: Design, env: dict) -> dict[str, Any]:
    """Every object of a Kubernetes or VM environment (``env``: the API's environment JSON)."""
    inv = inventory(design)
    wanted = set(env["node_ids"])
    labels = [
        (name, {**node_label_map, ENVIRONMENT_LABEL: env["name"], TENANT_LABEL: env["tenant"]})
        for node, (name, node_label_map) in enumerate(kueue.node_labels(inv))
        if node in wanted
    ]
    claim = ipam_claim(env, _subnet(env))
    gpus_per_node = int(inv.fleet.node_gpus[env["node_ids"][0]]) if env["node_ids"] else 0
    values = template_values(env, claim["spec"]["nodeNetwork"]["ipAddresses"], gpus_per_node)
    flavor: dict[str, Any] = {
        "apiVersion": kueue.KUEUE_API_VERSION,
        "kind": "ResourceFlavor",
        "metadata": {"name": f"{_base(env)}-gpu"},
        "spec": {"nodeLabels": {ENVIRONMENT_LABEL: env["name"]}, "topologyName": kueue.topology_name(design)},
    }
    queue = kueue.cluster_queue(f"{_base(env)}-queue", flavor["metadata"]["name"], env["gpus"])
    return {
        "credential": credential(env),
        "ipam_claim": claim,
        "cluster_deployment": cluster_deployment(env, values),
        "node_labels": labels,
        "gpu_operator_values": gpu_operator_values(env),
        "kueue": [kueue.topology(design), flavor, queue],
    }


def _subnet(env: dict) -> str:
    return frontend_subnet(env["vlan"] or 0)


def write_environment(design: Design, env: dict, out: Path) -> list[Path]:
    """Write the environment's manifests into ``out``; the files written."""
    objects = environment_objects(design, env)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "k0rdent.yaml": yaml.safe_dump_all(
            [objects["credential"], objects["ipam_claim"], objects["cluster_deployment"]], sort_keys=False
        ),
        "nodes.yaml": kueue.nodes_manifest(objects["node_labels"]),
        "label-nodes.sh": kueue.label_script(objects["node_labels"]),
        "gpu-operator-values.yaml": yaml.safe_dump(objects["gpu_operator_values"], sort_keys=False),
        "kueue.yaml": yaml.safe_dump_all(objects["kueue"], sort_keys=False),
    }
    written = []
    for name, text in files.items():
        (out / name).write_text(text)
        written.append(out / name)
    return written


# ------------------------------------------------------------------ validation (needs jsonschema)


def crd_schema(schema_dir: Path, kind: str) -> dict:
    crd = yaml.safe_load((schema_dir / "crds" / CRD_FILES[kind]).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return version["schema"]["openAPIV3Schema"]


def validate(objects: dict[str, Any], schema_dir: Path) -> list[str]:
    """Problems of the k0rdent objects against the CRDs and the template's values.schema.json (none: [])."""
    import jsonschema

    problems = []
    for key in ("credential", "ipam_claim", "cluster_deployment"):
        obj = objects[key]
        validator = jsonschema.Draft7Validator(crd_schema(schema_dir, obj["kind"]))
        problems += [
            f"{obj['kind']}: {'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(obj)
        ]
    deployment = objects["cluster_deployment"]
    named = deployment.get("spec", {}).get("template", "")
    template = next((t for t in TEMPLATE_VERSIONS if named == template_object_name(t)), None)
    if template is None:
        return [
            *problems,
            f"ClusterDeployment: spec/template {named!r} is none of {sorted(TEMPLATE_VERSIONS)}",
        ]
    values_schema = json.loads(
        (schema_dir / "cluster-templates" / template / "values.schema.json").read_text()
    )
    values_validator = jsonschema.Draft202012Validator(values_schema)
    problems += [
        f"{template} values: {'/'.join(map(str, e.path))}: {e.message}"
        for e in values_validator.iter_errors(deployment["spec"]["config"])
    ]
    return problems
