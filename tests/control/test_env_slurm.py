"""A tenant Slurm environment on a real slurmctld (Debian's, on loopback): create, scale and delete the
partition and its reservation through the control plane, reading slurmctld's answers back each time; where
Debian's slurmd is installed, one slurmd plays the environment's first node and a batch job submitted to
the tenant's partition and reservation runs there."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from control_helpers import open_api

from tests.export.slurmctld import (
    SCONTROL,
    SLURMD,
    SLURMD_SETTINGS,
    controller_settings,
    placeholder_gres_conf,
    running_slurmctld,
    running_slurmd,
    skip_without_slurmctld,
)
from tokenfab.control.service.slurmctl import parse_one_line
from tokenfab.export.slurm import export_slurm, slurm_conf
from tokenfab.names import expand_hostlist, inventory

ENVS = "/api/v1/environments"


def _show(env: dict[str, str], what: str, name: str) -> dict[str, str] | None:
    result = subprocess.run([SCONTROL, "show", what, name, "-o"], capture_output=True, text=True, env=env)
    if result.returncode != 0 or "=" not in result.stdout:
        return None
    return parse_one_line(result.stdout.strip().splitlines()[0])


@pytest.mark.xdist_group("slurmctld")
@pytest.mark.alone
def test_tenant_partition_on_a_real_slurmctld(row_design, tmp_path, monkeypatch):
    skip_without_slurmctld()
    inv = inventory(row_design)
    conf = tmp_path / "slurm.conf"
    conf.write_text(controller_settings(tmp_path) + SLURMD_SETTINGS + slurm_conf(inv, node_addr="127.0.0.1"))
    (tmp_path / "topology.conf").write_text(export_slurm(row_design)["topology.conf"])
    (tmp_path / "gres.conf").write_text(placeholder_gres_conf(tmp_path, inv.node_names, 4))
    monkeypatch.setenv("TOKENFAB_SLURM_CONF", str(conf))
    with running_slurmctld(tmp_path, conf) as env:
        topology_before = subprocess.run(
            [SCONTROL, "show", "topology"], capture_output=True, text=True, env=env
        ).stdout
        assert "SwitchName" in topology_before
        api = open_api(row_design, f"sqlite:///{tmp_path / 'c.db'}")
        acme = api.tenant("acme")
        created = api.client.post(
            ENVS, headers=acme, json={"name": "hpc", "kind": "slurm", "domains": 1}
        ).json()
        assert created["state"] == "ready", created["reason"]
        partition = _show(env, "partition", "acme-hpc")
        assert partition is not None and set(expand_hostlist(partition["Nodes"])) == set(created["nodes"])
        assert partition["State"] == "UP"
        reservation = _show(env, "reservation", "acme-hpc-res")
        assert reservation is not None and set(expand_hostlist(reservation["Nodes"])) == set(created["nodes"])

        job_not_started = None
        if Path(SLURMD).exists():
            job_not_started = _job_lands_in_the_partition(tmp_path, conf, env, created["nodes"][0])

        scaled = api.client.post(f"{ENVS}/hpc/scale", headers=acme, json={"domains": 3}).json()
        assert scaled["state"] == "ready" and len(scaled["nodes"]) == 3 * len(created["nodes"])
        partition = _show(env, "partition", "acme-hpc")
        assert set(expand_hostlist(partition["Nodes"])) == set(scaled["nodes"])
        assert set(expand_hostlist(_show(env, "reservation", "acme-hpc-res")["Nodes"])) == set(
            scaled["nodes"]
        )

        shrunk = api.client.post(f"{ENVS}/hpc/scale", headers=acme, json={"domains": 2}).json()
        assert set(expand_hostlist(_show(env, "partition", "acme-hpc")["Nodes"])) == set(shrunk["nodes"])
        # another tenant's partition holds other nodes
        globex = api.tenant("globex")
        other = api.client.post(
            ENVS, headers=globex, json={"name": "hpc", "kind": "slurm", "domains": 2}
        ).json()
        theirs = set(expand_hostlist(_show(env, "partition", "globex-hpc")["Nodes"]))
        assert theirs == set(other["nodes"]) and not theirs & set(shrunk["nodes"])

        deleted = api.client.delete(f"{ENVS}/hpc", headers=acme).json()
        assert deleted["state"] == "deleted"
        assert (
            _show(env, "partition", "acme-hpc") is None and _show(env, "reservation", "acme-hpc-res") is None
        )
        assert _show(env, "partition", "globex-hpc") is not None
        # the design's topology is untouched by tenant partitions
        topology_after = subprocess.run(
            [SCONTROL, "show", "topology"], capture_output=True, text=True, env=env
        ).stdout
        assert topology_after == topology_before
        assert api.client.get(f"{ENVS}/check", headers=api.op).json()["ok"]
        api.client.close()
        api.service.close()
    if job_not_started:  # every partition check above ran; only the job's landing is left unshown
        pytest.skip(job_not_started)


def _job_lands_in_the_partition(folder: Path, conf: Path, env: dict[str, str], node: str) -> str | None:
    """A batch job submitted to the tenant's partition and reservation runs on the environment's node.

    None when it ran there; a message when the job was accepted but slurmd never started it within the
    deadline (seen on a heavily loaded 2-core machine): the caller skips with that message at its end."""
    output = folder / "job.out"
    with running_slurmd(folder, conf, node, env):
        submitted = subprocess.run(
            [
                "sbatch",
                "--parsable",
                "-p",
                "acme-hpc",
                "--reservation=acme-hpc-res",
                "-N1",
                "-w",
                node,
                "-o",
                str(output),
                "--wrap",
                "echo partition=$SLURM_JOB_PARTITION node=$SLURMD_NODENAME",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert submitted.returncode == 0, submitted.stderr
        job = submitted.stdout.strip().split(";")[0]
        deadline = time.monotonic() + 120  # slurmd starts the job within seconds, later on a loaded machine
        shown = {}
        while time.monotonic() < deadline:
            shown = _show(env, "job", job) or {}
            if shown.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            time.sleep(0.5)
        if shown.get("JobState") == "PENDING":
            return f"slurmd did not start job {job} within 120 s (reason: {shown.get('Reason')})"
        assert shown.get("JobState") == "COMPLETED", shown
        assert shown["Partition"] == "acme-hpc" and shown["NodeList"] == node
        assert output.read_text().split() == ["partition=acme-hpc", f"node={node}"]
    return None
