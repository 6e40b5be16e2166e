"""The control plane's service layer, one module per concern.

- `errors`: what a call can refuse, by kind (the API maps kind → HTTP status)
- `writer`: the group-commit writer (one thread, one transaction per batch, acknowledged ⇒ durable)
- `memory`: fleet + scheduler + GPU slot map + tenants' residency + power cap, rebuilt from the store
- `state`: the shared state every module works on (design, store, lock, memory, writer); the audit log
- `bootstrap`: a new store's inventory and bootstrap token
- `placement`: placing, releasing and requeuing workloads; the queue
- `tenants`, `tokens`, `workloads`, `health`, `power`: the operations
- `views`: the factory map, nodes, usage, telemetry, audit; `metrics`: telemetry samples, Prometheus text
- `facade`: `ControlService`, the state with one thin method per operation

Every mutation runs in the writer thread under one process-wide lock: the scheduler changes its
in-memory fleet and the rows recording the change are written in the writer's transaction; if that
fails, memory is rebuilt from the store, which stays the truth.
"""

from tokenfab.control.service.bootstrap import BOOTSTRAP_TOKEN_ENV, design_fingerprint
from tokenfab.control.service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    Unauthenticated,
)
from tokenfab.control.service.facade import ControlService, Opened

__all__ = [
    "BOOTSTRAP_TOKEN_ENV",
    "Conflict",
    "ControlService",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Opened",
    "ServiceError",
    "Unauthenticated",
    "design_fingerprint",
]
