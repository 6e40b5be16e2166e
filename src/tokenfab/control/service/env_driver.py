"""The provisioning steps of tenant environment operations, run one by one outside the store's transaction.

Each step does its work (on slurmctld, or by writing the plan a site's tooling carries out) and returns
what it did; `tokenfab.control.service.environments` records that in the store before the next step, so
a restart knows where an operation stood. Every step is idempotent: run again, it does the same thing.

=========  =====================================================================================
step       what it does
=========  =====================================================================================
network    the InfiniBand partition key and the front-end VLAN/VRF plan of the environment
storage    the storage quota (a project directory with a hard quota)
provision  the ordered Redfish requests per new node (one-time PXE boot override, power cycle)
slurm      Slurm environments: the partition and its reservation on slurmctld, read back and checked
rollout    an upgrade: the new version rolled out node by node (the plan of it)
power_off  a deletion: the Redfish request that powers each node off
=========  =====================================================================================

This machine has no BMCs or switches: the Redfish, network and storage steps record the exact requests
and plan (``tokenfab env manifests`` writes them as files); the Slurm step drives a real slurmctld when
``TOKENFAB_SLURM_CONF`` names one, else it records that it was skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tokenfab.control.service import env_plan, slurmctl
from tokenfab.settings import load_settings

STEPS: dict[str, tuple[str, ...]] = {
    "create": ("network", "storage", "provision", "slurm"),
    "scale": ("network", "provision", "slurm"),
    "upgrade": ("rollout",),
    "delete": ("slurm", "power_off"),
}
FAULT_EXIT_CODE = 137
"""Exit status of an injected crash (as if SIGKILLed)."""


@dataclass(frozen=True)
class Snapshot:
    """An environment as its steps see it (read from the store before each step)."""

    env_id: str
    tenant: str
    name: str
    kind: str
    op: str
    nodes: list[str]
    """Hostnames of the nodes the environment holds (for a scale: at its target size)."""
    new_nodes: list[str]
    """Nodes this operation adds (all of them on create)."""
    pkey: int | None
    vlan: int | None
    storage_tb: float
    target: dict[str, Any]


def steps_of(kind: str, op: str) -> tuple[str, ...]:
    """The steps of ``op`` on an environment of ``kind`` (only Slurm environments have a Slurm step)."""
    return tuple(step for step in STEPS[op] if step != "slurm" or kind == "slurm")


def run_step(snap: Snapshot, step: str) -> dict[str, Any]:
    """Carry out one step; what it did (raises when it failed)."""
    if step == "network":
        return env_plan.network_plan(snap.env_id, snap.tenant, snap.pkey or 0, snap.vlan or 0, snap.nodes)
    if step == "storage":
        return env_plan.storage_plan(snap.tenant, snap.name, snap.storage_tb)
    if step == "provision":
        return {"requests": [r for node in snap.new_nodes for r in env_plan.redfish_provision(node)]}
    if step == "power_off":
        return {"requests": [r for node in snap.nodes for r in env_plan.redfish_release(node)]}
    if step == "rollout":
        return {"version": snap.target.get("version"), "order": snap.nodes}
    if step == "slurm":
        return slurm_step(snap, delete=snap.op == "delete")
    raise ValueError(f"unknown step {step}")


def slurm_step(snap: Snapshot, *, delete: bool, nodes: list[str] | None = None) -> dict[str, Any]:
    """Apply (or delete) the environment's partition and reservation on the configured slurmctld."""
    conf = load_settings().slurm_conf
    partition = env_plan.slurm_partition_name(snap.tenant, snap.name)
    reservation = env_plan.slurm_reservation_name(snap.tenant, snap.name)
    if conf is None:
        return {"partition": partition, "skipped": "no slurmctld configured (TOKENFAB_SLURM_CONF)"}
    if delete:
        slurmctl.delete_partition(conf, partition, reservation)
        return {"partition": partition, "deleted": True}
    shown = slurmctl.apply_partition(conf, partition, reservation, snap.nodes if nodes is None else nodes)
    return {"partition": partition, "reservation": reservation, "nodes": shown.get("Nodes", "")}


def undo_slurm(snap: Snapshot, previous_nodes: list[str]) -> None:
    """Put slurmctld back as it was before the operation: the previous nodes, or no partition."""
    if snap.kind != "slurm" or load_settings().slurm_conf is None:
        return
    if previous_nodes:
        slurm_step(snap, delete=False, nodes=previous_nodes)
    else:
        slurm_step(snap, delete=True)


def maybe_crash(op: str, step: str) -> None:
    """Fault injection (``TOKENFAB_ENV_FAULT_AFTER=op:step``): exit at once, as a crash would."""
    if load_settings().env_fault_after == f"{op}:{step}":
        os._exit(FAULT_EXIT_CODE)
