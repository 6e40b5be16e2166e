"""A real slurmctld on loopback for the tests (Debian's; scripts/setup-system.sh installs it): its settings
and a context manager that starts it, waits until `scontrol` gets answers and stops it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SLURMCTLD = "/usr/sbin/slurmctld"
SCONTROL = shutil.which("scontrol") or "/usr/bin/scontrol"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def controller_settings(folder: Path) -> str:
    """slurm.conf lines for a controller on 127.0.0.1 with its state under ``folder``."""
    return "\n".join(
        [
            "SlurmctldHost=localhost",
            "SlurmctldAddr=127.0.0.1",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "AuthType=auth/none",
            "CredType=cred/none",
            "SlurmUser=root",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "ProctrackType=proctrack/linuxproc",
            "",
        ]
    )


SLURMD = "/usr/sbin/slurmd"
SLURMD_SETTINGS = (
    "SlurmdParameters=config_overrides\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
)
"""What one slurmd standing in for a design node needs here: the node's configured CPUs, memory and GPUs are
taken as they are (this machine has fewer), no cgroups."""


def placeholder_gres_conf(folder: Path, node_names: list[str], gpus: int) -> str:
    """gres.conf naming ``gpus`` placeholder device files under ``folder`` (this machine has no GPUs; slurmd
    only needs the files to exist to count them)."""
    for index in range(gpus):
        (folder / f"gpu{index}").touch()
    return "".join(
        f"NodeName={name} Name=gpu Count={gpus} File={folder}/gpu[0-{gpus - 1}]\n" for name in node_names
    )


@contextmanager
def running_slurmd(folder: Path, conf: Path, node: str, env: dict) -> Iterator[None]:
    """One slurmd on loopback playing design node ``node``, until it is idle; stopped at the end."""
    log = (folder / f"slurmd-{node}.out").open("w")
    daemon = subprocess.Popen(
        [SLURMD, "-D", "-N", node, "-f", str(conf)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.poll() is None:
            shown = subprocess.run(
                [SCONTROL, "show", "node", node, "-o"], capture_output=True, text=True, env=env
            )
            if "State=IDLE" in shown.stdout or "State=RESERVED" in shown.stdout:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"slurmd for {node} did not register: {shown.stdout[:400]}")
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


def skip_without_slurmctld() -> None:
    if not Path(SLURMCTLD).exists():
        pytest.skip(f"{SLURMCTLD} not installed (scripts/setup-system.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("slurmctld with SlurmUser=root needs root")


@contextmanager
def running_slurmctld(
    folder: Path, conf: Path, ready_args: tuple[str, ...] = ("show", "config")
) -> Iterator[dict]:
    """Start slurmctld on ``conf`` in the foreground; yield the environment for `scontrol` once it answers
    ``scontrol ready_args``; stop it at the end."""
    (folder / "state").mkdir(exist_ok=True)
    (folder / "spool").mkdir(exist_ok=True)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemon = subprocess.Popen(
        [SLURMCTLD, "-D", "-i", "-f", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        answered = False
        while time.monotonic() < deadline and daemon.poll() is None:
            result = subprocess.run([SCONTROL, *ready_args], capture_output=True, text=True, env=env)
            if result.returncode == 0:
                answered = True
                break
            time.sleep(0.5)
        log = folder / "slurmctld.log"
        assert answered, (
            f"slurmctld did not answer; log tail:\n{log.read_text()[-2000:] if log.exists() else ''}"
        )
        yield env
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
