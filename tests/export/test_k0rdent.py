"""An environment's manifests: every k0rdent object validates against its CRD's openAPIV3Schema and the
template's values.schema.json (from ../shared/data/schemas/k0rdent); node labels and Kueue objects are
the environment's; the OpenSM partition holds exactly its ports; the Redfish plan is in DMTF's shape; and
`tokenfab env manifests` writes them all from a running control plane."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from tests.conftest import SHARED_DATA_DIR
from tokenfab.export import k0rdent, opensm
from tokenfab.export.kueue import CLIQUE_LABEL, RACK_LABEL

SCHEMAS = SHARED_DATA_DIR / "schemas" / "k0rdent"
TEMPLATES = [
    ("kubernetes", "remote-cluster"),
    ("kubernetes", "openstack-standalone-cp"),
    ("vm", "kubevirt-standalone-cp"),
    ("vm", "kubevirt-hosted-cp"),
]


@pytest.fixture(scope="module")
def schemas():
    if not (SCHEMAS / "crds").is_dir():
        pytest.skip(
            f"{SCHEMAS} absent: the k0rdent CRDs and templates live in ../shared/data/schemas/k0rdent"
        )
    return SCHEMAS


@pytest.fixture
def row(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control"))
    from control_helpers import open_api

    from tests.conftest import compiled_example

    design = compiled_example("row-1mw")
    api = open_api(design, f"sqlite:///{tmp_path / 'c.db'}")
    yield design, api
    api.client.close()
    api.service.close()


def _env(api, headers, name: str, kind: str, template: str | None, domains: int = 1) -> dict:
    body = {"name": name, "kind": kind, "domains": domains, **({"template": template} if template else {})}
    answer = api.client.post("/api/v1/environments", headers=headers, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.mark.parametrize(("kind", "template"), TEMPLATES)
def test_k0rdent_objects_validate_against_crds_and_template(schemas, row, kind, template):
    design, api = row
    headers = api.tenant(f"t-{template}")
    env = _env(api, headers, "c", kind, template, domains=2)
    objects = k0rdent.environment_objects(design, env)
    assert k0rdent.validate(objects, schemas) == []
    deployment = objects["cluster_deployment"]
    assert deployment["spec"]["template"].startswith(template + "-")
    assert deployment["spec"]["credential"] == objects["credential"]["metadata"]["name"]
    assert deployment["spec"]["ipamClaim"]["ref"] == objects["ipam_claim"]["metadata"]["name"]
    addresses = objects["ipam_claim"]["spec"]["nodeNetwork"]["ipAddresses"]
    assert len(addresses) == len(set(addresses)) == len(env["nodes"])
    # the tenant cluster's node labels: exactly its nodes, with their NVLink domain and rack
    labels = dict(objects["node_labels"])
    assert set(labels) == set(env["nodes"])
    assert len({lab[CLIQUE_LABEL] for lab in labels.values()}) == 2
    assert all(lab[RACK_LABEL] in name for name, lab in labels.items())
    topology, flavor, queue = objects["kueue"]
    assert (topology["kind"], flavor["kind"], queue["kind"]) == ("Topology", "ResourceFlavor", "ClusterQueue")
    quota = queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"][0]["nominalQuota"]
    assert quota == env["gpus"] and flavor["spec"]["topologyName"] == topology["metadata"]["name"]


def test_validation_catches_what_the_schemas_forbid(schemas, row):
    design, api = row
    env = _env(api, api.tenant("broken"), "c", "vm", "kubevirt-standalone-cp")
    objects = k0rdent.environment_objects(design, env)
    bad = copy.deepcopy(objects)
    del bad["cluster_deployment"]["spec"]["template"]
    del bad["cluster_deployment"]["spec"]["config"]["workersNumber"]
    bad["ipam_claim"]["spec"]["provider"] = "dhcp"
    bad["credential"]["spec"]["identityRef"] = "a-string"
    problems = k0rdent.validate(bad, schemas)
    assert "ClusterDeployment: spec: 'template' is a required property" in problems
    assert any("is none of" in p for p in problems)  # no template: its values schema cannot be chosen
    bad["cluster_deployment"]["spec"]["template"] = k0rdent.template_object_name("kubevirt-standalone-cp")
    problems = k0rdent.validate(bad, schemas)
    assert any("workersNumber" in p for p in problems)
    assert any(p.startswith("ClusterIPAMClaim: spec/provider") for p in problems)
    assert any(p.startswith("Credential: spec/identityRef") for p in problems)


def test_partitions_conf_holds_exactly_each_environments_ports(row):
    design, api = row
    a = _env(api, api.tenant("ib-a"), "x", "baremetal", None)
    b = _env(api, api.tenant("ib-b"), "x", "slurm", None)
    text = opensm.partitions_conf([a, b], rails_per_node=4)
    parsed = opensm.parse_partitions_conf(text)
    assert parsed["Default"] == (0x7FFF, [])  # only the SM's own port: no host shares the default partition
    for env in (a, b):
        pkey, guids = parsed[opensm.partition_name(env["tenant"], env["name"])]
        assert pkey == env["pkey"]
        assert guids == [opensm.port_guid(n, r) for n in env["node_ids"] for r in range(4)]
    ports_a = set(parsed[opensm.partition_name(a["tenant"], "x")][1])
    assert not ports_a & set(parsed[opensm.partition_name(b["tenant"], "x")][1])


def test_env_manifests_cli_writes_every_file(row, tmp_path, monkeypatch):
    from control_helpers import ThreadServer
    from typer.testing import CliRunner

    from tests.conftest import compiled_example
    from tokenfab.cli import app

    design = compiled_example("row-1mw")
    runner = CliRunner()
    with ThreadServer(design, f"sqlite:///{tmp_path / 'm.db'}") as server:
        monkeypatch.setenv("TOKENFAB_SERVER", server.url)
        monkeypatch.setenv("TOKENFAB_TOKEN", server.operator_token)
        assert runner.invoke(app, ["tenants", "add", "acme"]).exit_code == 0
        made = runner.invoke(app, ["env", "create", "k", "--domains", "1", "--tenant", "acme", "--json"])
        assert made.exit_code == 0, made.output
        env = json.loads(made.stdout)
        out = tmp_path / "out"
        written = runner.invoke(app, ["env", "manifests", env["id"], "--out", str(out), "--json"])
        assert written.exit_code == 0, written.output
        names = {p.rsplit("/", 1)[-1] for p in json.loads(written.stdout)["files"]}
        assert names == {
            "k0rdent.yaml",
            "nodes.yaml",
            "label-nodes.sh",
            "gpu-operator-values.yaml",
            "kueue.yaml",
            "partitions.conf",
            "network.json",
            "storage.json",
            "redfish.json",
        }
        kinds = [doc["kind"] for doc in yaml.safe_load_all((out / "k0rdent.yaml").read_text())]
        assert kinds == ["Credential", "ClusterIPAMClaim", "ClusterDeployment"]
        redfish = json.loads((out / "redfish.json").read_text())
        first = redfish[env["nodes"][0]]
        assert [r["method"] for r in first] == ["PATCH", "POST"]
        assert first[0]["body"]["Boot"]["BootSourceOverrideTarget"] == "Pxe"
        assert first[1]["url"].endswith("/Actions/ComputerSystem.Reset")
        assert first[1]["body"] == {"ResetType": "PowerCycle"}
        listed = runner.invoke(app, ["env", "list", "--json"])
        assert listed.exit_code == 0 and [e["id"] for e in json.loads(listed.stdout)["data"]] == [env["id"]]
        assert runner.invoke(app, ["env", "list"]).exit_code == 0
        checked = runner.invoke(app, ["env", "check", "--json"])
        assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"]
        bad = runner.invoke(app, ["env", "create", "k", "--domains", "1", "--tenant", "acme"])
        assert bad.exit_code == 2 and "already has an environment" in bad.output
        shown = runner.invoke(app, ["env", "show", env["id"]])
        assert shown.exit_code == 0 and "provision" in shown.stdout
        assert runner.invoke(app, ["env", "delete", env["id"], "--json"]).exit_code == 0
