"""The state every service module works on: the design, the store, the lock, the memory and the writer.

Reads take ``state.lock`` when they look at memory and open their own session; mutations go through
`ServiceState.mutate` (the group-commit writer), which runs them under the lock in the writer's
transaction and returns once that transaction is committed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tokenfab.blueprint.design import Design
from tokenfab.catalog.load import Catalog, load_catalog
from tokenfab.control.auth import Principal
from tokenfab.control.db import session_factory
from tokenfab.control.service import pending
from tokenfab.control.service.memory import FactoryMemory
from tokenfab.control.service.principals import PrincipalCache
from tokenfab.control.service.writer import GroupCommitWriter
from tokenfab.control.store import AuditRow, utc_now
from tokenfab.fleet import Fleet
from tokenfab.sched.scheduler import Scheduler

T = TypeVar("T")


class ServiceState:
    """One factory's control-plane state (store + in-memory scheduler over its fleet)."""

    def __init__(self, design: Design, engine: Engine, catalog: Catalog | None = None):
        self.design = design
        self.engine = engine
        self.sessions = session_factory(engine)
        pending.install(self.sessions)
        self.lock = threading.RLock()
        self.memory = FactoryMemory(design, catalog if catalog is not None else load_catalog())
        self.principals = PrincipalCache()
        """Recently authenticated tokens (`principals`)."""
        self.version = 0
        """Bumped after every committed batch and every rebuild: cached views older than it are stale."""
        self.writer = GroupCommitWriter(self.sessions, self.lock, self.rebuild, on_commit=self._changed)

    def _changed(self) -> None:
        self.version += 1

    @property
    def fleet(self) -> Fleet:
        return self.memory.fleet

    @cached_property
    def node_names(self) -> list[str]:
        """Every node's hostname (`tokenfab.names`), computed once per service."""
        from tokenfab.names import inventory

        return inventory(self.design).node_names

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler over the fleet (replaced when memory is rebuilt: do not keep it)."""
        return self.memory.scheduler

    def rebuild(self) -> None:
        """Rebuild the in-memory fleet and scheduler from the store (on start, and after a failed write)."""
        with self.lock, self.sessions() as session:
            self.memory.rebuild(session)
            self.version += 1

    def mutate(self, op: Callable[[Session], T]) -> T:
        """Run ``op(session)`` in the writer's transaction; its result once that transaction is committed.

        A `ServiceError` from ``op`` must be raised before it changed anything: it goes back to its caller
        alone. Any other failure rolls the batch back, rebuilds memory from the store and fails the batch.
        """
        return self.writer.run(op)

    async def mutate_async(self, op: Callable[[Session], T]) -> T:
        """`mutate` for a caller on the event loop: it waits for the commit without holding a thread."""
        return await asyncio.wrap_future(self.writer.submit(op))

    def close(self) -> None:
        """Stop the writer thread (pending mutations finish first) and close the engine's connections."""
        self.writer.close()
        self.engine.dispose()


def audit(
    session: Session,
    principal: Principal,
    action: str,
    target: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    tenant_id: int | None = None,
) -> None:
    """Append an entry to the audit log (about ``tenant_id``, else the caller's tenant), written with the
    writer's batch."""
    pending.add_row(
        session,
        AuditRow.__table__,
        {
            "actor": principal.actor,
            "action": action,
            "target": target,
            "before": before,
            "after": after,
            "tenant_id": tenant_id if tenant_id is not None else principal.tenant_id,
            "at": utc_now(),
        },
    )
