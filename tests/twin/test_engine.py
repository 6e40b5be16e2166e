"""The event loop: explicit same-time order, no scheduling into the past, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab.twin.engine import Event, EventQueue, run_events
from tokenfab.twin.events import EVENT_RANKS


class Note(Event):
    __slots__ = ("rank", "label", "children")

    def __init__(self, time_s, rank, label, children=()):
        super().__init__(time_s)
        self.rank = rank
        self.label = label
        self.children = children

    def handle(self, state):
        state.append((self.time_s, self.rank, self.label))
        return [Note(self.time_s + dt, r, f"{self.label}.{i}") for i, (dt, r) in enumerate(self.children)]


events_strategy = st.lists(
    st.tuples(
        st.integers(0, 20),
        st.integers(0, 3),
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=3),
    ),
    min_size=1,
    max_size=40,
)


def _run(spec, until=1_000.0):
    queue = EventQueue()
    for i, (t, rank, children) in enumerate(spec):
        queue.push(Note(float(t), rank, str(i), tuple((float(dt), r) for dt, r in children)))
    seen: list = []
    run_events(queue, seen, until)
    return seen


def _reference_order(spec):
    """An independent oracle: keep a plain list and always take the (time, rank, sequence) minimum."""
    pending, seq, seen = [], 0, []
    for i, (t, rank, children) in enumerate(spec):
        pending.append((float(t), rank, seq, str(i), tuple((float(dt), r) for dt, r in children)))
        seq += 1
    while pending:
        item = min(pending)
        pending.remove(item)
        t, rank, _, label, children = item
        seen.append((t, rank, label))
        for j, (dt, r) in enumerate(children):
            pending.append((t + dt, r, seq, f"{label}.{j}", ()))
            seq += 1
    return seen


@settings(max_examples=150, deadline=None)
@given(events_strategy)
def test_events_pop_in_time_rank_sequence_order(spec):
    seen = _run(spec)
    assert seen == _reference_order(spec)
    times = [t for t, _, _ in seen]
    assert times == sorted(times)


@settings(max_examples=100, deadline=None)
@given(events_strategy)
def test_same_input_gives_same_order(spec):
    assert _run(spec) == _run(spec)


def test_ties_break_by_rank_then_by_scheduling_order():
    queue = EventQueue()
    for label, rank in (("a", 5), ("b", 1), ("c", 5), ("d", 1)):
        queue.push(Note(10.0, rank, label))
    seen: list = []
    run_events(queue, seen, 100.0)
    assert [label for _, _, label in seen] == ["b", "d", "a", "c"]


def test_events_after_until_stay_queued():
    queue = EventQueue()
    queue.push(Note(5.0, 0, "early"))
    queue.push(Note(50.0, 0, "late"))
    seen: list = []
    assert run_events(queue, seen, 10.0) == 1
    assert len(queue) == 1 and queue.peek_time_s() == 50.0


def test_an_event_cannot_schedule_into_the_past():
    class Bad(Event):
        def handle(self, state):
            return [Note(self.time_s - 1.0, 0, "past")]

    queue = EventQueue()
    queue.push(Bad(3.0))
    with pytest.raises(ValueError, match="in the past"):
        run_events(queue, [], 10.0)


def test_event_ranks_free_capacity_before_taking_it():
    r = EVENT_RANKS
    assert (
        r["Repair"]
        < r["JobFinish"]
        < r["Failure"]
        < r["Tick"]
        < r["JobArrival"]
        < r["Schedule"]
        < r["JobStart"]
    )
    assert r["Checkpoint"] < r["Failure"], "a checkpoint at the instant of a failure saves the work"
    assert r["GridEventStart"] < r["PowerResponse"]
    assert len(set(r.values())) == len(r), "every event kind has its own rank"
