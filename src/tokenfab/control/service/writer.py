"""The group-commit writer: every mutation runs in one writer thread, batched into one transaction.

A caller hands an operation ``op(session) -> result`` to `GroupCommitWriter.run` and blocks. The writer
thread takes every operation waiting at that moment (at most ``max_batch``), runs them one after another
in one transaction under the shared lock, commits once (one fsync for the batch) and only then settles
each caller's future: an acknowledged mutation is durable.

An operation that raises one of ``caller_errors`` (a refusal raised before it changed anything) fails
alone; the rest of its batch commits. Any other failure rolls the whole batch back, fails every caller
in it with that exception and calls ``on_rollback`` (the service rebuilds its memory from the store).
If ``on_rollback`` itself fails (the store unreachable), it is tried again before the next batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from tokenfab.control.service.errors import ServiceError

T = TypeVar("T")
MAX_BATCH = 64
"""Mutations committed together at most."""

Operation = Callable[[Session], Any]


class GroupCommitWriter:
    """One writer thread (started on first use) running batched operations in single transactions."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lock: threading.RLock,
        on_rollback: Callable[[], None],
        *,
        max_batch: int = MAX_BATCH,
        caller_errors: tuple[type[BaseException], ...] = (ServiceError,),
    ):
        self.sessions = sessions
        self.lock = lock
        self.on_rollback = on_rollback
        self.max_batch = max_batch
        self.caller_errors = caller_errors
        self._pending: list[tuple[Operation | None, Future | None]] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._rollback_owed = False

    def run(self, op: Callable[[Session], T]) -> T:
        """Run ``op(session)`` in the writer's next transaction; its result once that is committed."""
        future: Future = Future()
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="tokenfab-writer", daemon=True)
                self._thread.start()
            self._pending.append((op, future))
            self._ready.notify()
        return future.result()

    def waiting(self) -> int:
        """Operations handed over and not yet taken into a batch."""
        with self._ready:
            return len(self._pending)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the writer thread; operations already handed over finish first."""
        with self._ready:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._pending.append((None, None))
                self._ready.notify()
        if thread is not None:
            thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        while True:
            with self._ready:
                while not self._pending:
                    self._ready.wait()
                batch = self._pending[: self.max_batch]
                self._pending = self._pending[self.max_batch :]
            stop = any(op is None for op, _ in batch)
            self._run_batch([(op, future) for op, future in batch if op is not None and future is not None])
            if stop:
                return

    def _run_batch(self, batch: list[tuple[Operation, Future]]) -> None:
        """Run a batch in one transaction and settle every future; never raises (the writer must live)."""
        if not batch:
            return
        outcomes: list[tuple[Future, Any, BaseException | None]] = []
        try:
            with self.lock:
                if self._rollback_owed:  # the last rollback could not restore memory: try again first
                    self.on_rollback()
                    self._rollback_owed = False
                with self.sessions() as session, session.begin():
                    for op, future in batch:
                        try:
                            outcomes.append((future, op(session), None))
                        except self.caller_errors as exc:
                            outcomes.append((future, None, exc))
        except Exception as exc:  # the batch is not committed: nothing of it happened
            self._rollback_owed = True
            try:
                self.on_rollback()
                self._rollback_owed = False
            except Exception:  # the store is unreachable; the next batch tries first
                pass
            for _, future in batch:
                future.set_exception(exc)
            return
        for future, result, error in outcomes:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
