"""Fault injection into an emulated factory; each fault is recorded with its simulated and wall time.

Kinds (``params`` of each):

* ``xid`` ``{node, gpu, code}``: an XID on one GPU. 79 (fallen off the bus) takes the GPU away; 48
  (double-bit ECC) and 94 (contained ECC) add a double-bit ECC error; the DCGM gauge holds the code.
* ``nvlink`` ``{node, gpu, errors_per_s}``: NVLink CRC/replay/recovery counters start to climb.
* ``node_down`` ``{node}`` and ``rack_down`` ``{rack}``: the node (rack) stops; its exporter goes silent.
* ``cdu_pump`` ``{hall, cdu}``: one CDU's pump stops (no flow, no heat carried).
* ``grid`` ``{cut_fraction, duration_s}``: the grid asks the site to draw ``cut_fraction`` less than it
  draws now, for ``duration_s`` simulated seconds (the twin's grid event).
* ``demand`` ``{service, multiplier, duration_s}``: a traffic surge on one inference service.

``clear`` undoes a fault (repair, pump restart, grid event end, surge end).
"""

from __future__ import annotations

import time

from tokenfab.emulate.factory import EmulatedFactory

XID_FALLEN_OFF_BUS = 79
XID_DBE = 48
XID_CONTAINED_ECC = 94
KNOWN_XIDS = (XID_FALLEN_OFF_BUS, XID_DBE, XID_CONTAINED_ECC)
KINDS = ("xid", "nvlink", "node_down", "rack_down", "cdu_pump", "grid", "demand")


class FaultError(ValueError):
    """A fault that names nothing in the factory, or a parameter out of range (HTTP 422/404)."""

    def __init__(self, message: str, field: str, status: int = 422):
        super().__init__(message)
        self.field = field
        self.status = status


def _int(params: dict, key: str, upper: int, what: str) -> int:
    value = params.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise FaultError(f"{key}: an integer is required", key)
    if not 0 <= value < upper:
        raise FaultError(f"{key}: {what} {value} not found (0..{upper - 1})", key, 404)
    return value


def _float(params: dict, key: str, lo: float, hi: float) -> float:
    value = params.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not lo <= value <= hi:
        raise FaultError(f"{key}: a number in [{lo}, {hi}] is required", key)
    return float(value)


def _gpu(f: EmulatedFactory, params: dict) -> int:
    node = _int(params, "node", f.fleet.n_nodes, "node")
    gpus = int(f.fleet.node_gpus[node])
    return int(f.node_first_gpu[node]) + _int(params, "gpu", gpus, "GPU slot")


def inject(f: EmulatedFactory, kind: str, params: dict) -> dict:
    """Apply a fault now and return its record (``id``, ``kind``, ``params``, ``at_s``, ``at_unix``)."""
    with f.lock:
        effect: dict = {}
        if kind == "xid":
            gpu = _gpu(f, params)
            code = params.get("code")
            if code not in KNOWN_XIDS:
                raise FaultError(f"code: one of {', '.join(map(str, KNOWN_XIDS))} is required", "code")
            f.gpu_xid[gpu] = code
            if code == XID_FALLEN_OFF_BUS:
                f.gpu_broken[gpu] = True
            else:
                f.counters["ecc_dbe"][gpu] += 1
            effect = {"gpu_index": gpu}
        elif kind == "nvlink":
            gpu = _gpu(f, params)
            f.gpu_nvlink_rate_per_s[gpu] = _float(params, "errors_per_s", 0.0, 1e6)
            effect = {"gpu_index": gpu}
        elif kind == "node_down":
            f.node_down[_int(params, "node", f.fleet.n_nodes, "node")] = True
        elif kind == "rack_down":
            f.rack_down[_int(params, "rack", f.fleet.n_racks, "rack")] = True
        elif kind == "cdu_pump":
            hall = _int(params, "hall", len(f.hall_cdus_required), "hall")
            rows = [i for i, h in enumerate(f.cdu_hall.tolist()) if h == hall]
            cdu = _int(params, "cdu", len(rows), "CDU")
            f.cdu_pump_ok[rows[cdu]] = False
            effect = {"cdu_index": rows[cdu]}
        elif kind == "grid":
            cut = _float(params, "cut_fraction", 0.0, 0.99)
            duration = _float(params, "duration_s", 1.0, 7 * 86400.0)
            cap = (1.0 - cut) * min(f.facility_kw, f.grid_limit_kw)
            event = {
                "start_s": f.t_s,
                "end_s": f.t_s + duration,
                "cut_fraction": cut,
                "cap_kw": cap,
                "facility_kw_before": f.facility_kw,
                "complied_at_s": None,
                "response_s": None,
            }
            f.grid_events.append(event)
            effect = {"cap_kw": cap, "event": len(f.grid_events) - 1}
        elif kind == "demand":
            name = params.get("service")
            if name not in f.service_of_name:
                raise FaultError(
                    f"service: {name!r} not found (known: {', '.join(f.service_of_name)})", "service", 404
                )
            multiplier = _float(params, "multiplier", 0.0, 100.0)
            duration = _float(params, "duration_s", 1.0, 7 * 86400.0)
            svc = f.workload.services[f.service_of_name[name]]
            svc.demand_multiplier = multiplier
            f.surges.append({"service": name, "end_s": f.t_s + duration})
        else:
            raise FaultError(f"kind: one of {', '.join(KINDS)} is required", "kind")
        record = {
            "id": len(f.faults),
            "kind": kind,
            "params": params,
            "effect": effect,
            "at_s": f.t_s,
            "at_unix": time.time(),
            "cleared_at_s": None,
        }
        f.faults.append(record)
        f.version += 1
        return record


def clear(f: EmulatedFactory, fault_id: int) -> dict:
    """Undo fault `fault_id` (repair, restart, end) and stamp the record."""
    with f.lock:
        if not 0 <= fault_id < len(f.faults):
            raise FaultError(f"fault {fault_id} not found", "fault_id", 404)
        record = f.faults[fault_id]
        if record["cleared_at_s"] is not None:
            return record
        kind, params, effect = record["kind"], record["params"], record["effect"]
        if kind == "xid":
            f.gpu_broken[effect["gpu_index"]] = False
            f.gpu_xid[effect["gpu_index"]] = 0
        elif kind == "nvlink":
            f.gpu_nvlink_rate_per_s[effect["gpu_index"]] = 0.0
        elif kind == "node_down":
            f.node_down[params["node"]] = False
        elif kind == "rack_down":
            f.rack_down[params["rack"]] = False
        elif kind == "cdu_pump":
            f.cdu_pump_ok[effect["cdu_index"]] = True
        elif kind == "grid":
            f.grid_events[effect["event"]]["end_s"] = f.t_s
        elif kind == "demand":
            f.workload.services[f.service_of_name[params["service"]]].demand_multiplier = 1.0
        record["cleared_at_s"] = f.t_s
        f.version += 1
        return record


def expire(f: EmulatedFactory) -> None:
    """End the surges whose time is up (grid events end by their own ``end_s``)."""
    with f.lock:
        for surge in [s for s in f.surges if s["end_s"] <= f.t_s]:
            f.workload.services[f.service_of_name[surge["service"]]].demand_multiplier = 1.0
            f.surges.remove(surge)
