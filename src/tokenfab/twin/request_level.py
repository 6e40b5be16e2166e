"""Request-level mode for one service: every request through a batching queue, so SLO attainment is
measured rather than assumed.

Requests: arrivals are an inhomogeneous Poisson process at the service's per-tick request rate (the
trace's per-minute profile × daily pattern × scale, as in the tick-level run); each request's prompt and
output lengths are drawn from the trace's own (ISL, OSL) pairs.

Serving: each replica runs continuous batching with at most :math:`C` sequences in flight (the token
model's operating concurrency), so the service is :math:`R(t) \\cdot C` slots, where :math:`R(t)` is the
replica count the autoscaler kept at each tick. Requests take the earliest free slot in arrival order
(a least-loaded router). A request that starts at :math:`s` after arriving at :math:`a` sees

.. math:: TTFT = (s - a) + TTFT_{op}(c)\\,\\frac{ISL}{\\overline{ISL}}, \\qquad ITL = ITL_{op}(c),
          \\qquad \\text{done} = s + TTFT_{op}\\frac{ISL}{\\overline{ISL}} + OSL \\cdot ITL

with the operating point's TTFT and ITL at the power cap :math:`c` in force (the ITL at full batch is an
upper bound for smaller batches). SLO attainment = share of requests with TTFT ≤ target and ITL ≤ target.

When the service would see more than `max_requests` requests, a slice is simulated: a share
:math:`f` of its sequence slots (:math:`\\mathrm{round}(f R(t) C)`) with the same share of its requests,
keeping at least `MIN_SLICE_SLOTS` slots so the slice still pools like the whole service; if that is
still too many requests, only a window of ticks that fits is simulated: from `start_s` (the first grid
event, to measure the SLO while power is cut) or around the busiest tick (``window_start_h`` /
``window_end_h`` in the result).
"""

from __future__ import annotations

import heapq

import numpy as np

MIN_SLICE_SLOTS = 1024
"""A slice keeps at least this many sequence slots so its queueing still pools like the whole service [-]."""


def busiest_window(
    expected_per_tick: np.ndarray, max_requests: int, start_tick: int | None = None
) -> tuple[int, int]:
    """Ticks ``[first, last)`` whose expected requests fit `max_requests`: grown from `start_tick` (forward
    first) when given, else around the busiest tick."""
    n = len(expected_per_tick)
    if n == 0 or expected_per_tick.sum() <= max_requests:
        return 0, n
    if start_tick is not None and 0 <= start_tick < n:
        first, last, total = start_tick, start_tick, 0.0
        while last < n and total + expected_per_tick[last] <= max_requests:
            total += expected_per_tick[last]
            last += 1
        return first, max(last, first + 1)
    first = last = int(np.argmax(expected_per_tick))
    last += 1
    total = float(expected_per_tick[first])
    while True:
        left = expected_per_tick[first - 1] if first > 0 else np.inf
        right = expected_per_tick[last] if last < n else np.inf
        step = min(left, right)
        if not np.isfinite(step) or total + step > max_requests:
            return first, last
        total += step
        if left <= right:
            first -= 1
        else:
            last += 1


def simulate_service_requests(
    service,
    trace,
    replicas_per_tick: np.ndarray,
    power_cap_w_per_tick: np.ndarray,
    tick_s: float,
    horizon_s: float,
    rng: np.random.Generator,
    max_requests: int = 300_000,
    start_s: float | None = None,
) -> dict:
    """Measured TTFT/ITL and SLO attainment of `service` over the run (see the module docstring)."""
    rates = service.rates
    demand = np.asarray(service.demand_requests_per_s, dtype=float)[: len(replicas_per_tick)]
    slots_per_replica = max(int(rates.concurrency), 1)
    replicas_all = np.asarray(replicas_per_tick, dtype=float)
    expected = float(demand.sum() * tick_s)
    mean_slots = float(np.mean(replicas_all)) * slots_per_replica
    fraction = 1.0
    if expected > max_requests:
        fraction = max(
            max_requests / expected, min(1.0, MIN_SLICE_SLOTS / mean_slots) if mean_slots > 0 else 1.0
        )
    start_tick = int(start_s // tick_s) if start_s is not None else None
    first, last = busiest_window(demand * tick_s * fraction, max_requests, start_tick)
    replicas = replicas_all * fraction
    arrival, isl, osl = _draw_requests(trace, demand * tick_s * fraction, first, last, tick_s, horizon_s, rng)
    cap_rows = np.searchsorted(rates.power_cap_w, np.asarray(power_cap_w_per_tick) - 1e-6)
    cap_rows = np.minimum(cap_rows, len(rates.power_cap_w) - 1)
    capacity = np.round(replicas * slots_per_replica).astype(np.int64)
    ttft, itl = _serve_in_slots(
        arrival,
        isl,
        float(service.isl),
        osl,
        capacity,
        first,
        tick_s,
        rates.ttft_ms[cap_rows] / 1000.0,
        rates.itl_ms[cap_rows] / 1000.0,
    )
    ok = (ttft * 1000.0 <= service.ttft_target_ms) & (itl * 1000.0 <= service.itl_target_ms)
    finite = ttft[np.isfinite(ttft)]
    return {
        "service": service.name,
        "requests": int(len(arrival)),
        "slice_fraction": fraction,
        "window_start_h": first * tick_s / 3600.0,
        "window_end_h": min(last * tick_s, horizon_s) / 3600.0,
        "slo_attainment": float(ok.mean()) if len(ok) else 1.0,
        "ttft_p50_ms": float(np.percentile(finite, 50) * 1000.0) if len(finite) else None,
        "ttft_p90_ms": float(np.percentile(finite, 90) * 1000.0) if len(finite) else None,
        "ttft_p99_ms": float(np.percentile(finite, 99) * 1000.0) if len(finite) else None,
        "itl_p50_ms": float(np.percentile(itl, 50) * 1000.0) if len(itl) else None,
        "ttft_target_ms": service.ttft_target_ms,
        "itl_target_ms": service.itl_target_ms,
        "unserved": int(np.sum(~np.isfinite(ttft))),
    }


def _draw_requests(
    trace,
    expected_per_tick: np.ndarray,
    first: int,
    last: int,
    tick_s: float,
    horizon_s: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson arrivals in ticks ``[first, last)``, sorted, with input and output lengths drawn from the trace."""
    counts = np.zeros(len(expected_per_tick), dtype=np.int64)
    counts[first:last] = rng.poisson(expected_per_tick[first:last])
    starts = np.arange(len(expected_per_tick)) * tick_s
    arrival = (
        np.concatenate(
            [rng.uniform(s, min(s + tick_s, horizon_s), c) for s, c in zip(starts, counts, strict=True)]
        )
        if counts.sum()
        else np.zeros(0)
    )
    arrival.sort()
    pick = rng.integers(0, len(trace.input_tokens), len(arrival))
    return arrival, trace.input_tokens[pick].astype(float), trace.output_tokens[pick].astype(float)


def _serve_in_slots(
    arrival: np.ndarray,
    isl: np.ndarray,
    mean_isl: float,
    osl: np.ndarray,
    capacity: np.ndarray,
    first: int,
    tick_s: float,
    ttft_op_s: np.ndarray,
    itl_op_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """TTFT and ITL of every request served first-come first-served by the slots alive at its tick [s].

    A slot serves one request at a time: prefill takes the operating TTFT scaled by the request's input
    length over the mean (`mean_isl`), then one ITL per output token. Slots above the tick's capacity
    retire once free; a request finding none alive is unserved (TTFT = inf).
    """
    ttft = np.empty(len(arrival))
    itl = np.empty(len(arrival))
    heap: list[tuple[float, int]] = []
    busy_until = np.zeros(int(capacity.max()) if len(capacity) else 0)
    alive = np.zeros(len(busy_until), dtype=bool)
    current = 0
    tick_of = np.minimum((arrival // tick_s).astype(np.int64), len(capacity) - 1)
    applied = first - 1
    if first > 0:
        current = int(capacity[first - 1])
        for slot in range(current):
            alive[slot] = True
            heapq.heappush(heap, (first * tick_s, slot))
    for i in range(len(arrival)):
        k = tick_of[i]
        while applied < k:
            applied += 1
            new = int(capacity[applied])
            if new > current:
                for slot in range(current, new):
                    if not alive[slot]:
                        alive[slot] = True
                        heapq.heappush(heap, (max(applied * tick_s, busy_until[slot]), slot))
            current = new
        a = arrival[i]
        while heap and heap[0][1] >= current:
            _, slot = heapq.heappop(heap)
            alive[slot] = False
        itl[i] = itl_op_s[k]
        if not heap:
            ttft[i] = np.inf
            continue
        free_at, slot = heapq.heappop(heap)
        start = max(a, free_at)
        prefill = ttft_op_s[k] * isl[i] / mean_isl
        ttft[i] = start - a + prefill
        done = start + prefill + osl[i] * itl_op_s[k]
        busy_until[slot] = done
        heapq.heappush(heap, (done, slot))
    return ttft, itl
