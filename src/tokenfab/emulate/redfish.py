"""DMTF Redfish-style JSON resources of the emulated factory.

Resources follow the Redfish schemas' names and shapes (ServiceRoot, ChassisCollection, Chassis v1.25,
Power v1.7 ``PowerControl``, EnvironmentMetrics v1.3, CoolingUnit v1.1 under ``ThermalEquipment/CDUs``):
one Chassis per rack (``Rack<n>``) and one for the site's electrical plant (``Facility``).
"""

from __future__ import annotations

import numpy as np

from tokenfab.emulate.factory import EmulatedFactory

ROOT = "/redfish/v1"


def _status(ok: bool) -> dict:
    return {"State": "Enabled" if ok else "UnavailableOffline", "Health": "OK" if ok else "Critical"}


def service_root() -> dict:
    return {
        "@odata.id": f"{ROOT}/",
        "@odata.type": "#ServiceRoot.v1_16_0.ServiceRoot",
        "Id": "RootService",
        "Name": "tokenfab emulated factory",
        "RedfishVersion": "1.19.0",
        "Chassis": {"@odata.id": f"{ROOT}/Chassis"},
        "ThermalEquipment": {"@odata.id": f"{ROOT}/ThermalEquipment"},
    }


def chassis_ids(f: EmulatedFactory) -> list[str]:
    return ["Facility", *(f"Rack{r}" for r in range(f.fleet.n_racks))]


def chassis_collection(f: EmulatedFactory) -> dict:
    ids = chassis_ids(f)
    return {
        "@odata.id": f"{ROOT}/Chassis",
        "@odata.type": "#ChassisCollection.ChassisCollection",
        "Name": "Chassis Collection",
        "Members@odata.count": len(ids),
        "Members": [{"@odata.id": f"{ROOT}/Chassis/{i}"} for i in ids],
    }


def _rack(chassis_id: str, f: EmulatedFactory) -> int | None:
    if chassis_id.startswith("Rack") and chassis_id[4:].isdigit():
        r = int(chassis_id[4:])
        if 0 <= r < f.fleet.n_racks:
            return r
    return None


def known(f: EmulatedFactory, chassis_id: str) -> bool:
    return chassis_id == "Facility" or _rack(chassis_id, f) is not None


def _rack_watts(f: EmulatedFactory, r: int) -> float:
    lo, hi = int(f.rack_first_gpu[r]), int(f.rack_first_gpu[r + 1])
    board = f.gpu_power_w[lo:hi]
    return float(board.sum() + np.count_nonzero(board > 0) * f.fig.host_w_per_gpu)


def chassis(f: EmulatedFactory, chassis_id: str) -> dict:
    base = f"{ROOT}/Chassis/{chassis_id}"
    r = _rack(chassis_id, f)
    with f.lock:
        ok = True if r is None else not bool(f.rack_down[r])
    return {
        "@odata.id": base,
        "@odata.type": "#Chassis.v1_25_0.Chassis",
        "Id": chassis_id,
        "Name": "Site electrical plant" if r is None else f"Rack {r}",
        "ChassisType": "Rack" if r is not None else "Other",
        "Status": _status(ok),
        "Power": {"@odata.id": f"{base}/Power"},
        "EnvironmentMetrics": {"@odata.id": f"{base}/EnvironmentMetrics"},
    }


def power(f: EmulatedFactory, chassis_id: str) -> dict:
    r = _rack(chassis_id, f)
    with f.lock:
        if r is None:
            watts, limit = f.facility_kw * 1000.0, f.grid_limit_kw * 1000.0
        else:
            watts = _rack_watts(f, r)
            nominal = f.design.sites[0].rack.power_nominal_kw * 1000.0
            limit = nominal * float(f.rack_limit_fraction[r])
    return {
        "@odata.id": f"{ROOT}/Chassis/{chassis_id}/Power",
        "@odata.type": "#Power.v1_7_1.Power",
        "Id": "Power",
        "Name": "Power",
        "PowerControl": [
            {
                "@odata.id": f"{ROOT}/Chassis/{chassis_id}/Power#/PowerControl/0",
                "MemberId": "0",
                "Name": "Chassis power control",
                "PowerConsumedWatts": round(watts, 1),
                "PowerLimit": {"LimitInWatts": round(limit, 1), "LimitException": "LogEventOnly"},
            }
        ],
    }


def environment_metrics(f: EmulatedFactory, chassis_id: str) -> dict:
    r = _rack(chassis_id, f)
    with f.lock:
        if r is None:
            watts = f.facility_kw * 1000.0
            temp = float(np.mean(f.hall_supply_c))
            energy_kwh = float(f.gpu_energy_mj.sum()) / 3.6e9 * f.fig.pue
        else:
            watts = _rack_watts(f, r)
            temp = float(f.hall_supply_c[int(f.rack_hall[r])])
            lo, hi = int(f.rack_first_gpu[r]), int(f.rack_first_gpu[r + 1])
            energy_kwh = float(f.gpu_energy_mj[lo:hi].sum()) / 3.6e9
    return {
        "@odata.id": f"{ROOT}/Chassis/{chassis_id}/EnvironmentMetrics",
        "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
        "Id": "EnvironmentMetrics",
        "Name": "Environment metrics",
        "PowerWatts": {"Reading": round(watts, 1)},
        "EnergykWh": {"Reading": round(energy_kwh, 3)},
        "TemperatureCelsius": {"Reading": round(temp, 2)},
    }


def cdu_collection(f: EmulatedFactory) -> dict:
    n = len(f.cdu_hall)
    return {
        "@odata.id": f"{ROOT}/ThermalEquipment/CDUs",
        "@odata.type": "#CoolingUnitCollection.CoolingUnitCollection",
        "Name": "Coolant distribution units",
        "Members@odata.count": n,
        "Members": [{"@odata.id": f"{ROOT}/ThermalEquipment/CDUs/{i}"} for i in range(n)],
    }


def cdu(f: EmulatedFactory, index: int) -> dict:
    with f.lock:
        hall = int(f.cdu_hall[index])
        ok = bool(f.cdu_pump_ok[index])
        return {
            "@odata.id": f"{ROOT}/ThermalEquipment/CDUs/{index}",
            "@odata.type": "#CoolingUnit.v1_1_0.CoolingUnit",
            "Id": str(index),
            "Name": f"h{hall}-cdu{int(f.cdu_in_hall[index])}",
            "EquipmentType": "CDU",
            "Status": _status(ok),
            "CoolingCapacityWatts": round(float(f.cdu_capacity_kw[index]) * 1000.0, 1),
            "PumpInfo": {
                "Running": ok,
                "FlowLitersPerMinute": round(float(f.cdu_flow_lpm[index]) if ok else 0.0, 1),
            },
            "SupplyTemperatureCelsius": round(float(f.hall_supply_c[hall]), 2),
            "ReturnTemperatureCelsius": round(float(f.hall_return_c[hall]), 2),
            "HeatLoadWatts": round(float(f.cdu_heat_kw[index]) * 1000.0, 1),
        }
