"""Start the whole operations loop on loopback: `tokenfab serve`, the emulated factory, Prometheus and
Alertmanager (Debian's binaries), wired by `tokenfab export prometheus`, on free ports.

Used by the end-to-end test, the benchmark and ``make ops-stack``
(``python -m tokenfab.emulate.stack DESIGN WORKLOAD``). Every process is a child of the caller and is
stopped by `Stack.stop`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PROMETHEUS = "prometheus"
ALERTMANAGER = ("prometheus-alertmanager", "alertmanager")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alertmanager_binary() -> str | None:
    for name in ALERTMANAGER:
        if shutil.which(name):
            return shutil.which(name)
    return None


def binaries_missing() -> list[str]:
    missing = [] if shutil.which(PROMETHEUS) else [PROMETHEUS]
    return missing + ([] if alertmanager_binary() else [ALERTMANAGER[0]])


@dataclass
class Stack:
    workdir: Path
    design: Path
    workload: Path
    speed: float = 5.0
    time_scale: float = 60.0
    scrape_interval_s: float = 1.0
    dcgm_scrape_interval_s: float | None = None
    evaluation_interval_s: float = 1.0
    group_wait_s: float = 0.2
    repeat_interval_s: float = 3.0
    ops_poll_s: float = 1.0
    scale_cooldown_s: float = 8.0
    power_settle_s: float = 3.0
    rate_window: str = "5s"
    control_args: list[str] = field(default_factory=list)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    operator_token: str = ""
    alert_token: str = ""

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _wait_http(self, name: str, path: str, timeout_s: float = 60.0, headers: dict | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(self.url(name) + path, headers=headers, timeout=2.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout_s} s:\n{self.log(name)[-3000:]}")

    def start(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("control", "emulator", "prometheus", "alertmanager"):
            self.ports[name] = free_port()
        py = [sys.executable, "-m", "tokenfab.cli"]
        # serve prints a bootstrap secret only to a terminal: the stack chooses it and hands it over
        self.operator_token = f"tf_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
        self._spawn(
            "control",
            [
                *py,
                "serve",
                "--design",
                str(self.design),
                "--db",
                f"sqlite:///{self.workdir}/control.db",
                "--port",
                str(self.ports["control"]),
                "--prometheus",
                self.url("prometheus"),
                "--ops-poll-s",
                str(self.ops_poll_s),
                "--ops-scale-cooldown-s",
                str(self.scale_cooldown_s),
                "--ops-power-settle-s",
                str(self.power_settle_s),
                "--ops-rate-window",
                self.rate_window,
                "--ops-time-scale",
                str(self.speed),
                *self.control_args,
            ],
            extra_env={"TOKENFAB_BOOTSTRAP_TOKEN": self.operator_token},
        )
        self._wait_http("control", "/healthz")
        created = httpx.post(
            self.url("control") + "/api/v1/tokens",
            json={"name": "alertmanager", "role": "operator"},
            headers=self.auth(),
            timeout=10,
        ).json()
        self.alert_token = created["token"]
        (self.workdir / "control-token").write_text(self.alert_token)
        (self.workdir / "control-token").chmod(0o600)
        self._spawn(
            "emulator",
            [
                *py,
                "emulate",
                str(self.design),
                "--workload",
                str(self.workload),
                "--speed",
                str(self.speed),
                "--port",
                str(self.ports["emulator"]),
                "--control",
                self.url("control"),
                "--control-token",
                self.operator_token,
            ],
        )
        export = subprocess.run(
            [
                *py,
                "export",
                "prometheus",
                str(self.design),
                "--workload",
                str(self.workload),
                "--out",
                str(self.workdir / "prom"),
                "--emulator",
                f"127.0.0.1:{self.ports['emulator']}",
                "--control",
                f"127.0.0.1:{self.ports['control']}",
                "--alertmanager",
                f"127.0.0.1:{self.ports['alertmanager']}",
                "--token-file",
                str(self.workdir / "control-token"),
                "--scrape-interval-s",
                str(self.scrape_interval_s),
                "--evaluation-interval-s",
                str(self.evaluation_interval_s),
                "--group-wait-s",
                str(self.group_wait_s),
                "--time-scale",
                str(self.time_scale),
                "--json",
                "--repeat-interval-s",
                str(self.repeat_interval_s),
                *(
                    ["--dcgm-scrape-interval-s", str(self.dcgm_scrape_interval_s)]
                    if self.dcgm_scrape_interval_s
                    else []
                ),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.workdir,
        )
        if export.returncode != 0:
            raise RuntimeError(f"export prometheus failed:\n{export.stdout}\n{export.stderr}")
        prom = self.workdir / "prom"
        alertmanager = alertmanager_binary()
        if alertmanager is None:
            raise RuntimeError(f"none of {', '.join(ALERTMANAGER)} is on PATH")
        self._spawn(
            "alertmanager",
            [
                alertmanager,
                f"--config.file={prom / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
        )
        self._spawn(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={prom / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
                "--log.level=warn",
            ],
        )
        self._wait_http("emulator", "/healthz", timeout_s=120)
        self._wait_http("alertmanager", "/-/ready")
        self._wait_http("prometheus", "/-/ready")
        return self

    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.operator_token}"}

    def get(self, name: str, path: str, **kwargs) -> dict:
        headers = self.auth() if name == "control" else None
        return httpx.get(self.url(name) + path, headers=headers, timeout=20, **kwargs).json()

    def post(self, name: str, path: str, body: dict) -> httpx.Response:
        headers = self.auth() if name == "control" else None
        return httpx.post(self.url(name) + path, json=body, headers=headers, timeout=20)

    def query(self, expr: str) -> list[dict]:
        body = self.get("prometheus", "/api/v1/query", params={"query": expr})
        return body.get("data", {}).get("result", [])

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def stop(self) -> None:
        for name in ("emulator", "prometheus", "alertmanager", "control"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout:
                proc.stdout.close()


def main() -> None:  # pragma: no cover - `make ops-stack`
    import tempfile

    design, workload = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    speed = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    workdir = Path(tempfile.mkdtemp(prefix="tokenfab-ops-"))
    stack = Stack(
        workdir,
        design,
        workload,
        speed=speed,
        time_scale=speed,
        scrape_interval_s=5.0,
        evaluation_interval_s=5.0,
        group_wait_s=5.0,
        repeat_interval_s=300.0,
        ops_poll_s=5.0,
        rate_window="1m",
    ).start()
    print(f"control plane {stack.url('control')}  (operator token {stack.operator_token})")
    print(f"emulator      {stack.url('emulator')}/state")
    print(f"prometheus    {stack.url('prometheus')}")
    print(f"alertmanager  {stack.url('alertmanager')}")
    print(f"logs and data {workdir}; Ctrl-C stops everything")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
