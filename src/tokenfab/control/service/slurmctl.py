"""A tenant's Slurm partition and reservation on a real slurmctld, through ``scontrol``.

``scontrol create|update|delete partition`` and ``reservation`` change the controller's running state;
``scontrol show partition NAME -o`` reads it back, and `apply_partition` checks that the partition holds
exactly the environment's nodes. Every call is idempotent (create or update, delete what exists), so a
step re-run after a crash does the same thing. The controller is the one ``slurm_conf`` (``SLURM_CONF``)
points at; its node names are `tokenfab.names` hostnames (the ``slurm.conf`` tokenfab exports).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tokenfab.names import expand_hostlist

SCONTROL_TIMEOUT_S = 30.0


class SlurmError(RuntimeError):
    """slurmctld refused or did not answer."""


def scontrol(slurm_conf: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("scontrol") or "/usr/bin/scontrol"
    env = {**os.environ, "SLURM_CONF": str(slurm_conf)}
    result = subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, timeout=SCONTROL_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise SlurmError(f"scontrol {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result


def parse_one_line(text: str) -> dict[str, str]:
    """``Key=Value`` pairs of one ``scontrol show … -o`` line."""
    pairs = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            pairs[key] = value
    return pairs


def show_partition(slurm_conf: Path, name: str) -> dict[str, str] | None:
    """The partition as slurmctld holds it (None when it has none of that name)."""
    result = scontrol(slurm_conf, "show", "partition", name, "-o", check=False)
    if result.returncode != 0 or "PartitionName=" not in result.stdout:
        return None
    return parse_one_line(result.stdout.strip().splitlines()[0])


def partition_nodes(shown: dict[str, str]) -> set[str]:
    nodes = shown.get("Nodes", "")
    return set() if nodes in ("", "(null)") else set(expand_hostlist(nodes))


def apply_partition(slurm_conf: Path, partition: str, reservation: str, nodes: list[str]) -> dict[str, str]:
    """Create or update the partition (and a reservation of its nodes) to hold exactly ``nodes``; read it
    back and check. Returns what slurmctld shows."""
    listed = ",".join(nodes)
    verb = "update" if show_partition(slurm_conf, partition) is not None else "create"
    scontrol(
        slurm_conf, verb, f"PartitionName={partition}", f"Nodes={listed}", "State=UP", "MaxTime=INFINITE"
    )
    shown_res = scontrol(slurm_conf, "show", "reservation", reservation, "-o", check=False)
    if shown_res.returncode == 0 and "ReservationName=" in shown_res.stdout:
        scontrol(slurm_conf, "update", f"ReservationName={reservation}", f"Nodes={listed}")
    else:
        scontrol(
            slurm_conf,
            "create",
            "reservation",
            f"ReservationName={reservation}",
            f"Nodes={listed}",
            "StartTime=now",
            "Duration=infinite",
            "Users=root",
            "Flags=IGNORE_JOBS",
        )
    shown = show_partition(slurm_conf, partition)
    if shown is None or partition_nodes(shown) != set(nodes):
        got = sorted(partition_nodes(shown)) if shown else "no partition"
        raise SlurmError(
            f"partition {partition}: slurmctld holds {got}, not the environment's {len(nodes)} nodes"
        )
    return shown


def delete_partition(slurm_conf: Path, partition: str, reservation: str) -> None:
    """Delete the reservation and the partition (what exists of them); check they are gone."""
    shown_res = scontrol(slurm_conf, "show", "reservation", reservation, "-o", check=False)
    if shown_res.returncode == 0 and "ReservationName=" in shown_res.stdout:
        scontrol(slurm_conf, "delete", f"ReservationName={reservation}")
    if show_partition(slurm_conf, partition) is not None:
        scontrol(slurm_conf, "delete", f"PartitionName={partition}")
    if show_partition(slurm_conf, partition) is not None:
        raise SlurmError(f"partition {partition} is still there after deleting it")
