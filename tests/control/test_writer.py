"""The group-commit writer on its own: batching, durability on return, and failure isolation."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Integer, String, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from tokenfab.control.service.errors import Invalid
from tokenfab.control.service.writer import GroupCommitWriter


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)


class Harness:
    def __init__(self, tmp_path):
        self.engine = create_engine(f"sqlite:///{tmp_path / 'writer.db'}")
        Base.metadata.create_all(self.engine)
        self.sessions = sessionmaker(self.engine)
        self.lock = threading.RLock()
        self.commits = 0
        self.rollbacks = 0
        self.fail_rollback = False
        event.listen(self.engine, "commit", self._count_commit)
        self.writer = GroupCommitWriter(self.sessions, self.lock, self._on_rollback)
        self.results: dict[str, object] = {}

    def _count_commit(self, _connection) -> None:
        self.commits += 1

    def _on_rollback(self) -> None:
        self.rollbacks += 1
        if self.fail_rollback:
            raise RuntimeError("store unreachable")

    def add(self, name: str, fail: type[BaseException] | None = None):
        def op(session):
            session.add(Item(name=name))
            session.flush()
            if fail is not None:
                raise fail(f"{name} refused")
            return name

        return op

    def submit_in_thread(self, name: str, fail: type[BaseException] | None = None) -> threading.Thread:
        def run():
            try:
                self.results[name] = self.writer.run(self.add(name, fail))
            except BaseException as exc:  # noqa: BLE001 - the test inspects what each caller got
                self.results[name] = exc

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def names(self) -> set[str]:
        with self.sessions() as session:
            return set(session.scalars(select(Item.name)))

    def batch_behind_lock(self, ops: list[tuple[str, type[BaseException] | None]]) -> list[threading.Thread]:
        """Hold the lock so that one first operation blocks the writer, queue ``ops`` behind it, and
        release: ``ops`` then run as one batch."""
        threads = []
        with self.lock:
            threads.append(self.submit_in_thread("first"))
            wait_until(lambda: self.writer.waiting() == 0 and "first" not in self.results)
            threads += [self.submit_in_thread(name, fail) for name, fail in ops]
            wait_until(lambda: self.writer.waiting() == len(ops))
        for thread in threads:
            thread.join(timeout=10)
        return threads


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def harness(tmp_path):
    handle = Harness(tmp_path)
    yield handle
    handle.writer.close()
    handle.engine.dispose()


def test_a_result_is_returned_after_its_commit(harness):
    assert harness.writer.run(harness.add("alpha")) == "alpha"
    assert harness.names() == {"alpha"}  # another session sees it: committed before run() returned
    assert harness.commits == 1


def test_waiting_operations_are_committed_together(harness):
    harness.batch_behind_lock([(f"op{i}", None) for i in range(20)])
    assert harness.commits == 2  # the first alone, then the twenty waiting behind it in one transaction
    assert harness.names() == {"first"} | {f"op{i}" for i in range(20)}
    assert all(harness.results[f"op{i}"] == f"op{i}" for i in range(20))


def test_a_refusal_fails_only_its_caller(harness):
    harness.batch_behind_lock([("a", None), ("refused", Invalid), ("b", None)])
    assert isinstance(harness.results["refused"], Invalid)
    assert harness.results["a"] == "a" and harness.results["b"] == "b"
    # the refused op's flushed row is in the committed transaction: refusals must come before changes
    assert {"a", "b"} <= harness.names()
    assert harness.rollbacks == 0


def test_any_other_failure_rolls_the_whole_batch_back(harness):
    harness.batch_behind_lock([("a", None), ("broken", RuntimeError), ("b", None)])
    assert all(isinstance(harness.results[name], RuntimeError) for name in ("a", "broken", "b"))
    assert harness.names() == {"first"}
    assert harness.rollbacks == 1
    assert harness.writer.run(harness.add("after")) == "after"  # the writer lives on


def test_a_failed_rollback_is_retried_before_the_next_batch(harness):
    harness.fail_rollback = True
    with pytest.raises(RuntimeError):
        harness.writer.run(harness.add("broken", RuntimeError))
    assert harness.rollbacks == 1
    harness.fail_rollback = False
    assert harness.writer.run(harness.add("next")) == "next"
    assert harness.rollbacks == 2  # memory restored first, then the batch ran


def test_close_finishes_what_was_handed_over(harness):
    with harness.lock:  # the writer is blocked on its first batch while ten more wait and close is called
        threads = [harness.submit_in_thread("first")]
        wait_until(lambda: harness.writer.waiting() == 0)
        threads += [harness.submit_in_thread(f"op{i}") for i in range(10)]
        wait_until(lambda: harness.writer.waiting() == 10)
        closing = threading.Thread(target=harness.writer.close)
        closing.start()
        wait_until(lambda: harness.writer.waiting() == 11)  # the stop mark queued behind the ten
    closing.join(timeout=10)
    assert not closing.is_alive()
    for thread in threads:
        thread.join(timeout=10)
    assert harness.names() == {"first"} | {f"op{i}" for i in range(10)}
