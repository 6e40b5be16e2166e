"""Running an emulated factory in (accelerated) real time, and where its placements come from.

`Runner` steps the factory every `step_wall_s` wall seconds by the elapsed wall time times `speed`.
Placements and limits come from one of three sources:

* the control plane (`ControlLink`): at start the emulator registers its workload there (tenants, quota,
  one submission per service and job), then, every `sync_wall_s`, reads the desired state
  (``GET /api/v1/ops/desired``: workloads with their nodes, the training GPU power limit, derated racks)
  and runs exactly that, as node agents do;
* the twin (`TwinSource`): the twin's own run (`tokenfab.twin.run.Simulation`), stepped to the
  emulator's clock, places, fails, autoscales and caps as it does offline; its placements and training
  power cap are applied like the control plane's (the twin in accelerated real time);
* static (`place_standalone`): the fleet scheduler (`tokenfab.sched`, the twin's and control plane's
  code) places the workload once at start; nothing moves it afterwards.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from tokenfab.emulate import faults
from tokenfab.emulate.factory import EmulatedFactory
from tokenfab.emulate.workload import EmulatedWorkload
from tokenfab.fleet import HEALTH_OK
from tokenfab.sched.scheduler import Scheduler
from tokenfab.sched.types import Request, Unplaceable, WorkloadKind


def place_standalone(factory: EmulatedFactory, workload: EmulatedWorkload) -> list[dict]:
    """Place every submission with the fleet scheduler; what does not fit is left out."""
    sched = Scheduler(factory.fleet.copy(), "topology_packing")
    items = []
    for body in workload.submissions():
        replicas = body.get("replicas", 1)
        kind = WorkloadKind.inference if body["kind"] == "inference" else WorkloadKind.training
        nodes, counts = [], []
        for r in range(replicas):
            request = Request(
                id=f"{body['name']}/{r}",
                gpus=body["gpus"],
                tenant=body["tenant"],
                kind=kind,
                slice_gpus=body.get("slice_gpus", 0),
                whole_domains=body.get("whole_domains", False),
                priority=body.get("priority", 0),
                preemptible=body.get("preemptible", True),
            )
            result = sched.place(request)
            if isinstance(result, Unplaceable):
                break
            nodes.append(result.nodes)
            counts.append(result.gpus_per_node)
        if nodes:
            n, c = np.concatenate(nodes), np.concatenate(counts)
            order = np.argsort(n, kind="stable")
            items.append(
                {
                    "id": body["name"],
                    "name": body["name"],
                    "kind": body["kind"],
                    "tenant": body["tenant"],
                    "node_ids": n[order].tolist(),
                    "gpus_per_node": c[order].tolist(),
                }
            )
    return items


class ControlLink:
    """The emulator's side of the control plane: register the workload, pull the desired state."""

    def __init__(self, server: str, token: str):
        from tokenfab.control.client import ControlClient

        self.client = ControlClient(server, token, timeout_s=10.0)

    def register(self, workload: EmulatedWorkload) -> None:
        from tokenfab.control.client import ClientError

        bodies = workload.submissions()
        tenants = {b["tenant"] for b in bodies}
        known = {t["name"] for t in self.client.tenants()["data"]}
        for name in sorted(tenants - known):
            self.client.create_tenant(name=name, quota_gpus=workload.quotas.get(name))
        have = {w["name"] for w in self.client.workloads()["data"]}
        for body in bodies:
            if body["name"] in have:
                continue
            try:
                self.client.submit(**body)
            except ClientError as exc:
                if exc.status >= 500 or exc.status in (401, 403):
                    raise

    def desired(self) -> dict:
        return self.client.call("GET", "/api/v1/ops/desired")

    def close(self) -> None:
        self.client.close()


class TwinSource:
    """The desired state from the twin itself, stepped to the emulator's clock (twin time = factory time)."""

    def __init__(self, simulation, factory: EmulatedFactory):
        self.sim = simulation
        self.factory = factory

    def desired(self) -> dict:
        sim = self.sim
        sim.step_until(self.factory.t_s)
        state = sim.state
        owner = state.inference.replica_owner
        grouped: dict[str, dict] = {}
        for request_id, placement in state.sched.allocations().items():
            svc = owner.get(request_id)
            key = svc.name if svc is not None else request_id
            item = grouped.setdefault(
                key,
                {
                    "id": key,
                    "name": key,
                    "kind": "inference" if svc else "training",
                    "tenant": svc.tenant if svc else "default",
                    "node_ids": [],
                    "gpus_per_node": [],
                },
            )
            item["node_ids"] += placement.nodes.tolist()
            item["gpus_per_node"] += placement.gpus_per_node.tolist()
        demand = {
            svc.name: float(state.demand_rate[i]) / max(svc.osl, 1) for i, svc in enumerate(state.services)
        }
        unhealthy = np.flatnonzero(state.fleet.node_health != HEALTH_OK).tolist()
        caps = {svc.name: float(svc.rates.power_cap_w[svc.cap_index]) for svc in state.services}
        return {
            "workloads": list(grouped.values()),
            "training_limit_w": float(state.training.cap_w),
            "unhealthy_nodes": unhealthy,
            "demand_requests_per_s": demand,
            "service_power_cap_w": caps,
            "park_idle_nodes": bool(state.grid.parking),
        }

    def close(self) -> None:
        pass


def apply_desired(factory: EmulatedFactory, desired: dict) -> None:
    """Run what the control plane (or the twin) wants: its placements, the training power limit, derated
    racks; from the twin also the nodes it has taken out of service (their free GPUs are off), each service's offered load and power cap, and
    whether idle nodes are parked (powered down during a grid event)."""
    items = [w for w in desired.get("workloads", []) if w.get("node_ids")]
    factory.apply_placements(items)
    with factory.lock:
        limit = desired.get("training_limit_w")
        factory.training_limit_w = factory.tdp_w if limit is None else float(limit)
        fractions = np.ones(factory.fleet.n_racks)
        for rack, fraction in (desired.get("rack_limit_fraction") or {}).items():
            if 0 <= int(rack) < len(fractions):
                fractions[int(rack)] = float(fraction)
        factory.rack_limit_fraction = fractions
        unhealthy = np.zeros(factory.fleet.n_nodes, dtype=bool)
        unhealthy[np.asarray(desired.get("unhealthy_nodes", []), dtype=np.int64)] = True
        factory.node_unhealthy_outside = unhealthy
        factory.park_idle_nodes = bool(desired.get("park_idle_nodes", False))
        factory.service_cap_w = dict(desired.get("service_power_cap_w") or {})
        for name, rate in (desired.get("demand_requests_per_s") or {}).items():
            if name in factory.service_of_name:
                factory.workload.services[factory.service_of_name[name]].demand_override = rate


class Runner:
    """Steps the factory in accelerated real time and keeps it in line with the control plane."""

    def __init__(
        self,
        factory: EmulatedFactory,
        speed: float = 1.0,
        step_wall_s: float = 0.2,
        link: ControlLink | TwinSource | None = None,
        sync_wall_s: float = 0.25,
    ):
        self.factory = factory
        self.speed = speed
        self.step_wall_s = step_wall_s
        self.link = link
        self.sync_wall_s = sync_wall_s
        self.steps = 0
        self.syncs = 0
        self.sync_errors = 0
        self.last_sync_error = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_desired: dict | None = None

    def start(self) -> None:
        self.factory.step(1e-3)
        targets = [self._step_loop] + ([self._sync_loop] if self.link else [])
        for target in targets:
            thread = threading.Thread(target=target, daemon=True, name=f"emulate-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.link:
            self.link.close()

    def _step_loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.step_wall_s):
            now = time.monotonic()
            faults.expire(self.factory)
            self.factory.step((now - last) * self.speed)
            last = now
            self.steps += 1

    def sync_once(self) -> None:
        if self.link is None:  # no control plane to follow
            return
        desired = self.link.desired()
        if desired != self._last_desired:
            apply_desired(self.factory, desired)
            self._last_desired = desired
        self.syncs += 1

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.sync_wall_s):
            try:
                self.sync_once()
            except Exception as exc:  # the control plane may restart; the factory runs on
                self.sync_errors += 1
                self.last_sync_error = str(exc)[:200]
