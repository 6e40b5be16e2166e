"""One large submission at 1 GW: its answer time and the longest wait of a reader for the state lock.

Run by `bench_control.py --large-gpus N` once per code tree (``PYTHONPATH`` chooses the tree): opens a
fresh SQLite store for `examples/site-1gw.yaml`, submits one training gang of N GPUs, then cancels it,
while a reader thread takes the service's lock every 5 ms (as the map and node views do) and records
how long it waited. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from tokenfab.blueprint.compile import compile as compile_design
from tokenfab.catalog.load import load_catalog
from tokenfab.control import schemas as s
from tokenfab.control.auth import Principal
from tokenfab.control.service import ControlService
from tokenfab.control.store import Role
from tokenfab.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    gpus = int(sys.argv[1])
    spec, _ = load_spec(REPO / "examples" / "site-1gw.yaml")
    design = compile_design(spec, load_catalog())
    with tempfile.TemporaryDirectory(prefix="tokenfab-large-") as tmp:
        service = ControlService.open(design, f"sqlite:///{tmp}/large.db").service
        operator = Principal(
            token_id="bench", name="bench", role=Role.operator, tenant_id=None, tenant_name=None
        )
        service.create_tenant(operator, s.TenantCreate(name="acme"))
        waits: list[float] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                began = time.perf_counter()
                with service.lock:
                    pass
                waits.append(time.perf_counter() - began)
                time.sleep(0.005)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        began = time.perf_counter()
        workload = service.submit(operator, s.WorkloadCreate(name="large", gpus=gpus, tenant="acme"))
        submit_s = time.perf_counter() - began
        time.sleep(0.1)  # the reader records the wait it was in
        submit_wait_s = max(waits)
        waits.clear()
        began = time.perf_counter()
        service.cancel(operator, workload.id)
        cancel_s = time.perf_counter() - began
        time.sleep(0.1)
        stop.set()
        thread.join()
        print(
            json.dumps(
                {
                    "gpus": gpus,
                    "state": workload.state,
                    "submit_s": submit_s,
                    "submit_lock_wait_s": submit_wait_s,
                    "cancel_s": cancel_s,
                    "cancel_lock_wait_s": max(waits),
                }
            )
        )
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
