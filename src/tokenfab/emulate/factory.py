"""The emulated factory's state and physics, as arrays over GPUs, nodes, racks, halls and CDUs.

Every GPU is a row (no Python object per GPU). A step of simulated length Δt (the one facility power
model, `tokenfab.twin.power`, applied GPU by GPU):

* GPU board power by state: training at
  :math:`\\min(c, P_{train})` with c the per-GPU limit in force, inference at
  :math:`P_{idle} + u (P_{s}(c) - P_{idle})` for the service's load share u at the token model's row for
  the limit, idle at :math:`P_{idle}`, nothing on a node that is down; a training gang with a GPU that
  fell off the bus (XID 79) or a node down stalls (all its GPUs idle);
* facility power :math:`P_{fac} = PUE (\\sum P_{GPU} + n_{powered} P_{host} + P_{fabric})`
  (`it_power_w`, `it_power_kw`, `facility_power_kw`);
* coolant: a hall's CDUs each carry :math:`Q_{CDU} = Q_{hall} / N_{required}`; when the heat exceeds what
  the running CDUs carry, the supply temperature rises by
  :math:`\\Delta T = (Q - n_{run} Q_{CDU}) / (\\dot m c_p)`, and return is supply plus
  :math:`Q / (\\dot m c_p)`; GPU temperature is supply plus :math:`R_{th} P_{GPU}`;
* inference latency and its histograms (`tokenfab.emulate.latency`).

Placement comes from outside (the control plane, or the standalone scheduler): `apply_placements`.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tokenfab.control.ops.policy import cdu_of_rack
from tokenfab.emulate import latency
from tokenfab.emulate.workload import EmulatedWorkload
from tokenfab.fleet import from_design
from tokenfab.twin import power as twin_power

KIND_IDLE, KIND_TRAINING, KIND_INFERENCE = 0, 1, 2
GPU_THERMAL_RESISTANCE_K_PER_W = 0.035
"""estimate: GPU die temperature rise over coolant supply per watt of board power (cold plate) [K/W]."""
WATER_DENSITY_KG_PER_L = 0.997
WATER_CP_J_PER_KG_K = 4180.0
MAX_SUPPLY_RISE_K = 45.0
"""The emulated supply temperature rise is bounded here (the loop would trip before) [K]."""
HISTORY_POINTS = 4000
FB_TOTAL_MIB_DEFAULT = 196608
"""estimate: framebuffer of one GPU when the catalog gives none (192 GiB, B200-class) [MiB]."""


@dataclass
class ServiceState:
    """One inference service's counters and gauges (what its vLLM /metrics shows)."""

    index: int
    gpus: int = 0
    backlog: float = 0.0
    running: float = 0.0
    kv_usage: float = 0.0
    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    requests: float = 0.0
    ttft_bounds_s: np.ndarray = field(default_factory=lambda: np.asarray(latency.TTFT_BUCKETS_S))
    itl_bounds_s: np.ndarray = field(default_factory=lambda: np.asarray(latency.ITL_BUCKETS_S))
    ttft_buckets: np.ndarray = field(default_factory=lambda: np.zeros(len(latency.TTFT_BUCKETS_S)))
    ttft_count: float = 0.0
    ttft_sum: float = 0.0
    itl_buckets: np.ndarray = field(default_factory=lambda: np.zeros(len(latency.ITL_BUCKETS_S)))
    itl_count: float = 0.0
    itl_sum: float = 0.0
    good: float = 0.0
    """Requests whose TTFT met the target (the emulator's ground truth) [-]."""
    cap_row: int = -1
    ttft_mean_s: float = 0.0
    itl_mean_s: float = 0.0
    offered_per_s: float = 0.0
    served_tokens_per_s: float = 0.0


class EmulatedFactory:
    """State of a running factory; `step` advances it, the servers read it under `lock`."""

    def __init__(self, design, figures, workload: EmulatedWorkload, start_s: float = 12 * 3600.0):
        self.design = design
        self.fig = figures
        self.workload = workload
        self.lock = threading.RLock()
        fleet = from_design(design, {s.gpu: figures.gpu_tdp_w for s in design.sites})
        self.fleet = fleet
        node_gpus = fleet.node_gpus.astype(np.int64)
        self.n_gpus = int(node_gpus.sum())
        self.node_first_gpu = np.concatenate([[0], np.cumsum(node_gpus)])
        self.gpu_node = np.repeat(np.arange(fleet.n_nodes), node_gpus)
        self.gpu_slot = np.arange(self.n_gpus) - self.node_first_gpu[self.gpu_node]
        self.node_rack = fleet.node_rack
        self.rack_hall = fleet.su_hall[fleet.rack_su]
        self.gpu_rack = self.node_rack[self.gpu_node]
        self.gpu_hall = self.rack_hall[self.gpu_rack]
        self.rack_first_gpu = np.searchsorted(self.gpu_rack, np.arange(fleet.n_racks + 1))
        self.tdp_w = figures.gpu_tdp_w
        self.idle_w = figures.gpu_idle_w
        self.train_full_w = workload.training_power_fraction * self.tdp_w
        self.train_floor_w = workload.training_cap_floor_fraction * self.tdp_w
        # GPU state
        n = self.n_gpus
        self.gpu_kind = np.zeros(n, dtype=np.int8)
        self.gpu_workload = np.full(n, -1, dtype=np.int32)
        self.gpu_broken = np.zeros(n, dtype=bool)
        self.gpu_xid = np.zeros(n, dtype=np.int32)
        self.gpu_power_w = np.full(n, self.idle_w)
        self.gpu_temp_c = np.zeros(n)
        self.gpu_util = np.zeros(n)
        self.gpu_energy_mj = np.zeros(n)
        self.gpu_nvlink_rate_per_s = np.zeros(n)
        self.counters = {
            name: np.zeros(n)
            for name in (
                "ecc_sbe",
                "ecc_dbe",
                "nvlink_crc_flit",
                "nvlink_crc_data",
                "nvlink_replay",
                "nvlink_recovery",
                "nvlink_bytes",
                "pcie_replay",
            )
        }
        self.node_down = np.zeros(fleet.n_nodes, dtype=bool)
        self.rack_down = np.zeros(fleet.n_racks, dtype=bool)
        self.park_idle_nodes = False
        """Idle nodes powered down (the twin does so during a grid event)."""
        self.service_cap_w: dict[str, float] = {}
        """Per-GPU power cap of an inference service set from outside (the twin's SLO-safe caps) [W]."""
        self.node_unhealthy_outside = np.zeros(fleet.n_nodes, dtype=bool)
        """Nodes the driver (the twin) has taken out of service: their free GPUs are off (as the twin counts)."""
        # limits set by the control plane (DCGM power limits) and racks derated for cooling
        self.training_limit_w = self.tdp_w
        self.rack_limit_fraction = np.ones(fleet.n_racks)
        # cooling: one row per CDU, in hall order
        halls = [h for s in design.sites for h in s.halls]
        supply = [s.cooling.rack_supply_temp_c for s in design.sites for _ in s.halls]
        self.hall_supply_base_c = np.asarray(supply, dtype=float)
        self.hall_cdus_required = np.asarray([max(1, h.cdus_required) for h in halls])
        installed = np.asarray([max(1, h.cdus_installed) for h in halls])
        self.cdu_hall = np.repeat(np.arange(len(halls)), installed)
        self.cdu_in_hall = np.arange(len(self.cdu_hall)) - np.repeat(
            np.cumsum(installed) - installed, installed
        )
        self.cdu_capacity_kw = (
            np.asarray([h.liquid_heat_kw for h in halls])[self.cdu_hall]
            / self.hall_cdus_required[self.cdu_hall]
        )
        self.cdu_flow_lpm = (
            np.asarray([h.coolant_flow_lpm for h in halls])[self.cdu_hall]
            / self.hall_cdus_required[self.cdu_hall]
        )
        self.cdu_pump_ok = np.ones(len(self.cdu_hall), dtype=bool)
        rack_in_hall = np.arange(fleet.n_racks) - np.searchsorted(self.rack_hall, self.rack_hall)
        hall_racks = np.bincount(self.rack_hall, minlength=len(halls))
        self.rack_cdu = np.searchsorted(self.cdu_hall, self.rack_hall) + np.asarray(
            [
                cdu_of_rack(int(r), int(hall_racks[h]), int(installed[h]))
                for r, h in zip(rack_in_hall, self.rack_hall, strict=True)
            ],
            dtype=np.int64,
        )
        self.hall_supply_c = self.hall_supply_base_c.copy()
        self.hall_return_c = self.hall_supply_base_c.copy()
        self.cdu_heat_kw = np.zeros(len(self.cdu_hall))
        # workloads
        self.workloads: list[dict] = []
        self.workload_index: dict[str, int] = {}
        self.service_of_name = {s.name: i for i, s in enumerate(workload.services)}
        self.services = []
        for i, svc in enumerate(workload.services):
            ttft = np.unique(np.append(latency.TTFT_BUCKETS_S, svc.ttft_target_s))
            itl = np.unique(np.append(latency.ITL_BUCKETS_S, svc.itl_target_s))
            self.services.append(
                ServiceState(
                    i,
                    ttft_bounds_s=ttft,
                    itl_bounds_s=itl,
                    ttft_buckets=np.zeros(len(ttft)),
                    itl_buckets=np.zeros(len(itl)),
                )
            )
        # grid and clock
        self.grid_connection_kw = figures.grid_kw
        self.grid_events: list[dict] = []
        self.surges: list[dict] = []
        self.t_s = start_s
        self.start_s = start_s
        self.it_kw = 0.0
        self.facility_kw = 0.0
        self.faults: list[dict] = []
        self.moves: list[dict] = []
        self.history: deque = deque(maxlen=HISTORY_POINTS)
        self.version = 0
        self._stalled = np.zeros(0, dtype=bool)

    # ------------------------------------------------------------------ grid
    @property
    def grid_limit_kw(self) -> float:
        """The draw the grid allows now: the connection, or the lowest cap of the events in force [kW]."""
        caps = [e["cap_kw"] for e in self.grid_events if e["end_s"] > self.t_s >= e["start_s"]]
        return min([self.grid_connection_kw, *caps])

    def grid_event_active(self) -> bool:
        return any(e["end_s"] > self.t_s >= e["start_s"] for e in self.grid_events)

    # ------------------------------------------------------------------ placement
    def apply_placements(self, items: list[dict]) -> None:
        """Run exactly the given workloads: ``{id, name, kind, tenant, node_ids, gpus_per_node}`` each.

        GPUs of a node are given out in slot order; a workload whose node set changed is logged in
        `moves` with the simulated time (how a re-placement is seen from the factory)."""
        with self.lock:
            before = {w["id"]: w["nodes"] for w in self.workloads}
            workloads: list[dict[str, Any]] = []
            nodes_all, counts_all, owner_all = [], [], []
            for item in items:
                nodes = np.asarray(item["node_ids"], dtype=np.int64)
                counts = np.asarray(item["gpus_per_node"], dtype=np.int64)
                if not len(nodes):
                    continue
                index = len(workloads)
                kind = KIND_INFERENCE if item["kind"] == "inference" else KIND_TRAINING
                service = self.service_of_name.get(item["name"], -1) if kind == KIND_INFERENCE else -1
                workloads.append(
                    {
                        **item,
                        "index": index,
                        "kind_code": kind,
                        "service": service,
                        "nodes": tuple(sorted(set(nodes.tolist()))),
                    }
                )
                nodes_all.append(nodes)
                counts_all.append(counts)
                owner_all.append(np.full(len(nodes), index))
            self.gpu_kind[:] = KIND_IDLE
            self.gpu_workload[:] = -1
            if workloads:
                nodes = np.concatenate(nodes_all)
                counts = np.concatenate(counts_all)
                owners = np.concatenate(owner_all)
                order = np.argsort(nodes, kind="stable")
                nodes, counts, owners = nodes[order], counts[order], owners[order]
                excl = np.cumsum(counts) - counts
                offset = excl - excl[np.searchsorted(nodes, nodes)]
                first = self.node_first_gpu[nodes] + offset
                gpus = np.repeat(first, counts) + np.arange(int(counts.sum())) - np.repeat(excl, counts)
                gpus = np.minimum(gpus, self.node_first_gpu[np.repeat(nodes, counts) + 1] - 1)
                self.gpu_workload[gpus] = np.repeat(owners, counts)
                kinds = np.asarray([w["kind_code"] for w in workloads], dtype=np.int8)
                self.gpu_kind[gpus] = kinds[np.repeat(owners, counts)]
            self.workloads = workloads
            self.workload_index = {w["id"]: w["index"] for w in workloads}
            for w in workloads:
                old = before.get(w["id"])
                if old != w["nodes"]:
                    self.moves.append(
                        {
                            "t_s": self.t_s,
                            "workload": w["id"],
                            "name": w["name"],
                            "from_nodes": list(old or ()),
                            "to_nodes": list(w["nodes"]),
                        }
                    )
            for wid in set(before) - {w["id"] for w in workloads}:
                self.moves.append(
                    {
                        "t_s": self.t_s,
                        "workload": wid,
                        "name": wid,
                        "from_nodes": list(before[wid]),
                        "to_nodes": [],
                    }
                )
            self.version += 1

    # ------------------------------------------------------------------ step
    def step(self, dt_s: float) -> None:
        """Advance the factory by `dt_s` simulated seconds (the equations in the module docstring)."""
        with self.lock:
            self.t_s += dt_s
            gpu_off = self.nodes_off()[self.gpu_node]
            bad = gpu_off | self.gpu_broken
            n_w = len(self.workloads)
            owned = self.gpu_workload >= 0
            gpu_off = gpu_off | (self.node_unhealthy_outside[self.gpu_node] & ~owned)
            stalled = (
                np.bincount(self.gpu_workload[owned & bad], minlength=n_w) > 0 if n_w else np.zeros(0, bool)
            )
            self._stalled = stalled
            limit_w = np.minimum(self.tdp_w, self.tdp_w * self.rack_limit_fraction[self.gpu_rack])
            power = np.full(self.n_gpus, self.idle_w)
            util = np.zeros(self.n_gpus)
            train = (self.gpu_kind == KIND_TRAINING) & owned
            if n_w:
                train &= ~stalled[np.maximum(self.gpu_workload, 0)]
            train_w = np.minimum(np.minimum(limit_w, self.training_limit_w), self.train_full_w)
            power[train] = train_w[train]
            util[train] = 97.0
            self._step_services(dt_s, limit_w, bad, power, util)
            if self.park_idle_nodes:
                busy_nodes = np.bincount(self.gpu_node[owned], minlength=self.fleet.n_nodes) > 0
                gpu_off = gpu_off | ~busy_nodes[self.gpu_node]
            power[gpu_off] = 0.0
            util[gpu_off | self.gpu_broken] = 0.0
            self.gpu_power_w = power
            self.gpu_util = util
            self.gpu_energy_mj += power * dt_s * 1000.0
            self._step_counters(dt_s, gpu_off)
            powered = self.n_gpus - int(gpu_off.sum())
            idle = (power == self.idle_w) & ~gpu_off
            busy_w = float(power[~idle].sum())
            it_w = twin_power.it_power_w(
                busy_w, int(idle.sum()), powered, self.idle_w, self.fig.host_w_per_gpu
            )
            self.it_kw = twin_power.it_power_kw(it_w, self.fig.fabric_kw)
            self.facility_kw = twin_power.facility_power_kw(self.it_kw, self.fig.pue)
            self._step_cooling(power, gpu_off)
            self._track_grid()
            self.history.append(self.sample())
            self.version += 1

    def _step_services(self, dt_s, limit_w, bad, power, util) -> None:
        inference = (self.gpu_kind == KIND_INFERENCE) & ~bad
        svc_of_gpu = np.full(self.n_gpus, -1)
        if self.workloads:
            svc_codes = np.asarray([w["service"] for w in self.workloads])
            svc_of_gpu[inference] = svc_codes[self.gpu_workload[inference]]
        for i, svc in enumerate(self.workload.services):
            state = self.services[i]
            mine = svc_of_gpu == i
            gpus = int(mine.sum())
            rates = svc.rates
            mean_limit = min(
                float(limit_w[mine].mean()) if gpus else self.tdp_w,
                self.service_cap_w.get(svc.name, self.tdp_w),
            )
            row = int(np.searchsorted(rates.power_cap_w, mean_limit + 1e-6, side="right") - 1)
            row = min(max(row, 0), len(rates.power_cap_w) - 1)
            offered = svc.demand_requests_per_s(self.t_s)
            capacity = latency.capacity_requests_per_s(
                gpus, float(rates.output_tokens_per_s_per_gpu[row]), svc.osl
            )
            served = min(capacity, offered + state.backlog / dt_s) if capacity > 0 else 0.0
            state.backlog = latency.backlog_after(state.backlog, offered, capacity, dt_s)
            share = served / capacity if capacity > 0 else 0.0
            ttft = latency.mean_ttft_s(float(rates.ttft_ms[row]) / 1000.0, share, state.backlog, capacity)
            itl = float(rates.itl_ms[row]) / 1000.0 * (0.9 + 0.1 * min(share, 1.0))
            done = served * dt_s
            tokens = done * svc.osl
            state.ttft_buckets += done * latency.lognormal_share_below(
                state.ttft_bounds_s, ttft, latency.TTFT_SIGMA
            )
            state.ttft_count += done
            state.ttft_sum += done * (ttft if math.isfinite(ttft) else latency.TTFT_BUCKETS_S[-1])
            state.itl_buckets += tokens * latency.lognormal_share_below(
                state.itl_bounds_s, itl, latency.ITL_SIGMA
            )
            state.itl_count += tokens
            state.itl_sum += tokens * itl
            state.good += done * float(
                latency.lognormal_share_below([svc.ttft_target_s], ttft, latency.TTFT_SIGMA)[0]
            )
            state.requests += done
            state.prompt_tokens += done * svc.isl
            state.generation_tokens += tokens
            state.gpus, state.cap_row, state.offered_per_s = gpus, row, offered
            state.ttft_mean_s, state.itl_mean_s = ttft, itl
            state.served_tokens_per_s = served * svc.osl
            slots = gpus / max(svc.gpus_per_replica, 1) * rates.concurrency
            state.running = min(slots, served * (ttft + svc.osl * itl)) if math.isfinite(ttft) else slots
            state.kv_usage = min(1.0, state.running / slots) if slots else 0.0
            board = self.idle_w + min(share, 1.0) * (float(rates.gpu_power_w[row]) - self.idle_w)
            power[mine] = np.minimum(board, limit_w[mine])
            util[mine] = 100.0 * min(share, 1.0)

    def _step_counters(self, dt_s: float, gpu_off: np.ndarray) -> None:
        c = self.counters
        live = ~gpu_off
        c["nvlink_bytes"][live] += self.gpu_util[live] / 100.0 * 1.8e12 * dt_s
        errors = self.gpu_nvlink_rate_per_s * dt_s
        c["nvlink_crc_flit"] += errors
        c["nvlink_crc_data"] += errors * 0.5
        c["nvlink_replay"] += errors * 0.2
        c["nvlink_recovery"] += errors * 0.01

    def _step_cooling(self, power: np.ndarray, gpu_off: np.ndarray) -> None:
        host = np.where(gpu_off, 0.0, self.fig.host_w_per_gpu)
        hall_heat_kw = (
            np.bincount(self.gpu_hall, weights=power + host, minlength=len(self.hall_supply_base_c)) / 1000.0
        )
        running = self.cdu_pump_ok.astype(float)
        carry_kw = np.bincount(
            self.cdu_hall, weights=running * self.cdu_capacity_kw, minlength=len(hall_heat_kw)
        )
        flow_lpm = np.bincount(
            self.cdu_hall, weights=running * self.cdu_flow_lpm, minlength=len(hall_heat_kw)
        )
        m_dot = np.maximum(flow_lpm, 1e-6) / 60.0 * WATER_DENSITY_KG_PER_L
        rise = np.minimum(
            np.maximum(hall_heat_kw - carry_kw, 0.0) * 1000.0 / (m_dot * WATER_CP_J_PER_KG_K),
            MAX_SUPPLY_RISE_K,
        )
        self.hall_supply_c = self.hall_supply_base_c + rise
        self.hall_return_c = self.hall_supply_c + np.minimum(
            hall_heat_kw * 1000.0 / (m_dot * WATER_CP_J_PER_KG_K), MAX_SUPPLY_RISE_K
        )
        n_running = np.maximum(np.bincount(self.cdu_hall, weights=running, minlength=len(hall_heat_kw)), 1.0)
        self.cdu_heat_kw = running * (hall_heat_kw / n_running)[self.cdu_hall]
        self.gpu_temp_c = np.where(
            gpu_off, 0.0, self.hall_supply_c[self.gpu_hall] + GPU_THERMAL_RESISTANCE_K_PER_W * power
        )

    def _track_grid(self) -> None:
        for event in self.grid_events:
            if event["complied_at_s"] is None and event["start_s"] <= self.t_s < event["end_s"]:
                if self.facility_kw <= event["cap_kw"] + 1e-6:
                    event["complied_at_s"] = self.t_s
                    event["response_s"] = self.t_s - event["start_s"]

    # ------------------------------------------------------------------ views
    def nodes_off(self) -> np.ndarray:
        """Nodes that are down: injected, or in a rack that is down [bool per node]."""
        return self.node_down | self.rack_down[self.node_rack]

    def attainment(self, i: int) -> float:
        s = self.services[i]
        return s.good / s.requests if s.requests > 0 else 1.0

    def sample(self) -> dict:
        """One point of history: facility power and cap, and per service instantaneous latency and GPUs."""
        services = {}
        for i, svc in enumerate(self.workload.services):
            st = self.services[i]
            instant = float(
                latency.lognormal_share_below([svc.ttft_target_s], st.ttft_mean_s, latency.TTFT_SIGMA)[0]
            )
            services[svc.name] = {
                "gpus": st.gpus,
                "ttft_mean_s": st.ttft_mean_s,
                "attainment_now": instant,
                "good": st.good,
                "requests": st.requests,
                "backlog": st.backlog,
            }
        return {
            "t_s": self.t_s,
            "facility_kw": self.facility_kw,
            "grid_limit_kw": self.grid_limit_kw,
            "it_kw": self.it_kw,
            "training_limit_w": self.training_limit_w,
            "services": services,
        }

    def workload_running(self, workload_id: str) -> bool:
        """Placed and not stalled (no GPU of it broken, no node of it down)."""
        index = self.workload_index.get(workload_id)
        if index is None:
            return False
        return not (index < len(self._stalled) and self._stalled[index])
