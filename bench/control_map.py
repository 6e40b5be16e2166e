"""Time the factory map (`GET /factory`'s work) at 1 GW and 10 GW, on the code ``PYTHONPATH`` points at.

The map reads the service's memory only, so the service is built on an empty in-memory store (no
inventory rows): a 10 GW store would take minutes to fill and changes nothing here. Half the GPUs are
allocated first (4-GPU jobs of three tenants, straight into the scheduler). Prints one JSON line per size:
the whole map's build + serialisation time as an operator (depth rack; the old code has only this), and
for this tree the dashboard's SU-level map, a cached repeat, and the size of each answer.
"""

from __future__ import annotations

import json
import sys
import time

from sqlalchemy import create_engine

from tokenfab.blueprint.compile import compile as compile_design
from tokenfab.catalog.load import load_catalog
from tokenfab.control.auth import Principal
from tokenfab.control.service import ControlService
from tokenfab.control.store import Role
from tokenfab.sched.types import Request
from tokenfab.spec import parse_spec

SIZES_MW = (1000, 10000)


def fill_half(service: ControlService) -> None:
    scheduler = service.memory.scheduler
    for i in range(service.fleet.n_gpus // 8):
        tenant = ("acme", "globex", "initech")[i % 3]
        scheduler.place(Request(id=f"w{i}", gpus=4, tenant=tenant, exclusive_domains=True))
        service.memory.workload_tenant[f"w{i}"] = tenant


def timed(call) -> tuple[float, bytes]:
    began = time.perf_counter()
    answer = call()
    return time.perf_counter() - began, answer


def measure(service: ControlService, operator: Principal) -> dict:
    row: dict = {}
    if hasattr(service, "factory_map_json"):
        row["rack_s"], full = timed(lambda: service.factory_map_json(operator, "rack"))
        service.version += 1  # a change: the next answer is computed, not cached
        row["su_s"], su = timed(lambda: service.factory_map_json(operator, "su"))
        row["su_cached_s"], _ = timed(lambda: service.factory_map_json(operator, "su"))
        row["rack_kb"], row["su_kb"] = len(full) / 1024, len(su) / 1024
    else:  # the code before the aggregated view
        row["rack_s"], full = timed(lambda: service.factory_map(operator).model_dump_json().encode())
        row["rack_kb"] = len(full) / 1024
    return row


def main() -> int:
    catalog = load_catalog()
    operator = Principal(token_id="bench", name="bench", role=Role.operator, tenant_id=None, tenant_name=None)
    for grid_mw in SIZES_MW:
        spec = parse_spec(
            {
                "name": f"map-{grid_mw}mw",
                "sites": [
                    {"name": "s", "grid_mw": grid_mw, "climate": "ashburn-va", "system": "gb200-nvl72"}
                ],
            }
        )
        design = compile_design(spec, catalog)
        service = ControlService(design, create_engine("sqlite://"), catalog)
        fill_half(service)
        row = {"grid_mw": grid_mw, "racks": service.fleet.n_racks, **measure(service, operator)}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
