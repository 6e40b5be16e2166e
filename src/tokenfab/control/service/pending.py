"""Rows a writer batch inserts, collected and written together (one ``executemany`` per table).

The hot mutations (a submission: its workload, placement, GPU slots, audit entry and telemetry sample)
insert new rows only. Instead of the ORM's unit of work per operation, `add_row` keeps each row as a
plain dict on the batch's session and `write_pending` inserts them table by table, parents first, with
one Core ``INSERT`` per table. They are written before any ORM query of the same session runs (the
``do_orm_execute`` hook installed by `install`) — so an operation later in the batch sees them, as it
would with autoflush — and before the writer commits. A refused write (a GPU slot allocated twice: the
primary key of ``gpu_allocations``) fails at that point and rolls the whole batch back, as before.

Placement ids are handed out by the writer (`FactoryMemory.next_placement_id`, from the store's largest
id on rebuild): the writer is the only one inserting placements, so the allocation rows can name their
placement before it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import FromClause, TableClause, event, insert
from sqlalchemy.orm import Session, sessionmaker

from tokenfab.control.store import (
    AuditRow,
    GpuAllocationRow,
    GpuShareRow,
    PlacementRow,
    TelemetryRow,
    WorkloadRow,
)

TABLE_ORDER: tuple[FromClause, ...] = tuple(
    model.__table__
    for model in (WorkloadRow, PlacementRow, GpuAllocationRow, GpuShareRow, AuditRow, TelemetryRow)
)
"""FromClauses in the order their rows are written (a row's foreign keys point at earlier tables)."""
_PENDING = "tokenfab_pending_rows"
_AFTER_COMMIT = "tokenfab_after_commit"
_DEFERRED = "tokenfab_deferred_rows"


def add_row(session: Session, table: FromClause, row: dict[str, Any]) -> None:
    """Insert ``row`` into ``table`` with the batch (before the next ORM query of ``session``)."""
    session.info.setdefault(_PENDING, {}).setdefault(table, []).append(row)


def add_rows(session: Session, table: FromClause, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.info.setdefault(_PENDING, {}).setdefault(table, []).extend(rows)


def add_row_once(session: Session, table: FromClause, make_row: Callable[[], dict[str, Any]]) -> None:
    """Insert one row into ``table`` made by ``make_row()`` when the pending rows are written (however
    often this is called before that): a sample of the state once the changes before it are done."""
    session.info.setdefault(_DEFERRED, {})[table] = make_row


def write_pending(session: Session) -> None:
    """Flush the ORM's own changes, then insert the collected rows, parents first."""
    for table, make_row in session.info.pop(_DEFERRED, {}).items():
        add_row(session, table, make_row())
    pending: dict[FromClause, list[dict[str, Any]]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # ORM deletes (a released GPU slot) must land before a new row takes that slot
    connection = session.connection()
    for table in TABLE_ORDER:
        rows = pending.get(table)
        if rows:
            connection.execute(insert(cast(TableClause, table)), rows)  # every entry is a mapped Table


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Call ``callback`` once the writer has committed this session's batch (not on a rollback)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()


def _before_orm_query(orm_execute_state) -> None:
    write_pending(orm_execute_state.session)


def install(sessions: sessionmaker[Session]) -> None:
    """Have every session of ``sessions`` write its pending rows before each ORM query it runs."""
    event.listen(sessions, "do_orm_execute", _before_orm_query)
