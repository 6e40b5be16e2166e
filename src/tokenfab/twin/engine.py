"""The discrete-event loop: a heap of (time, rank, sequence, event), popped in that order.

Events are small objects with a ``handle(state)`` method that *returns* the events it causes; they never
push themselves (the shape of Vidur's simulator). The loop is the only code that touches the heap.

Ordering of events at the same time is explicit and tested: first by the event class's ``rank`` (lower
first; see `tokenfab.twin.events.EVENT_RANKS`), then by the order in which events were scheduled
(``sequence``, a counter the queue assigns). So the result never depends on heap internals or on object
ids, and the same seed gives the same run.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(slots=True, eq=False)
class Event:
    """Base of every event: a time [s] and a rank that orders events sharing that time.

    An event kind is a small dataclass (``@dataclass(slots=True, eq=False)``) with its fields after
    ``time_s`` and its ``rank`` as a class variable.
    """

    time_s: float
    rank: ClassVar[int] = 50

    def __post_init__(self) -> None:
        self.time_s = float(self.time_s)

    def handle(self, state: Any) -> Iterable[Event]:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict:
        out: dict = {"event": type(self).__name__}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
        return out


class EventQueue:
    """A priority queue of events ordered by (time_s, rank, sequence)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Event]] = []
        self._sequence = 0

    def push(self, event: Event) -> None:
        heapq.heappush(self._heap, (event.time_s, event.rank, self._sequence, event))
        self._sequence += 1

    def pop(self) -> Event:
        return heapq.heappop(self._heap)[3]

    def peek_time_s(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def __len__(self) -> int:
        return len(self._heap)


def run_events(
    queue: EventQueue,
    state: Any,
    until_s: float,
    before_event: Callable[[float], None] | None = None,
    after_event: Callable[[Event], None] | None = None,
) -> int:
    """Pop and handle events up to and including `until_s`; returns how many were handled.

    `before_event(time_s)` runs before each event is handled (the state integrates its rates up to that
    time); `after_event(event)` runs after. An event may only schedule events at or after its own time.
    """
    handled = 0
    while queue and queue.peek_time_s() <= until_s:
        event = queue.pop()
        if before_event is not None:
            before_event(event.time_s)
        for new in event.handle(state) or ():
            if new.time_s < event.time_s:
                raise ValueError(
                    f"{type(event).__name__} at {event.time_s} s scheduled {type(new).__name__} in the past"
                )
            queue.push(new)
        if after_event is not None:
            after_event(event)
        handled += 1
    return handled
