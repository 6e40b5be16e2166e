"""Latency of an emulated inference service: TTFT and ITL from load, backlog and the token model's rates.

A service's replicas deliver :math:`C = n_{GPU} \\, r_{out}(c) / \\overline{OSL}` requests per second at
the per-GPU power cap :math:`c` (the token model's SLO-meeting operating point, `ServiceRates`). With
offered load :math:`\\lambda`, the load share is :math:`\\rho = \\lambda / C`. Below saturation the
engine runs a smaller batch and first tokens come sooner; above it requests queue:

.. math:: B(t + \\Delta t) = \\max(0, B(t) + (\\lambda - C) \\Delta t), \\qquad
          \\overline{TTFT} = TTFT_0 \\,(0.5 + 0.5 \\min(\\rho, 1)) + B / C

(Little's law for the wait of the backlog B). TTFT and ITL per request are lognormal around their means
with spreads `TTFT_SIGMA` and `ITL_SIGMA` (estimates); the share of requests under a bound b is

.. math:: F(b) = \\Phi\\left(\\frac{\\ln b - \\ln m}{\\sigma}\\right)

with m the median (mean / exp(σ²/2)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr

TTFT_SIGMA = 0.35
"""estimate: log-spread of time to first token across requests at one load [-]."""
ITL_SIGMA = 0.08
"""estimate: log-spread of inter-token latency across tokens at one load [-]."""
TTFT_BUCKETS_S = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
"""vLLM's bucket bounds for ``vllm:time_to_first_token_seconds`` [s]."""
ITL_BUCKETS_S = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
"""vLLM's bucket bounds for ``vllm:inter_token_latency_seconds`` [s]."""


def capacity_requests_per_s(
    gpus: int, output_tokens_per_s_per_gpu: float, mean_output_tokens: float
) -> float:
    """Requests per second the replicas complete at full batch [1/s]: :math:`n r_{out} / \\overline{OSL}`."""
    return gpus * output_tokens_per_s_per_gpu / max(mean_output_tokens, 1e-9)


def backlog_after(backlog: float, offered_per_s: float, capacity_per_s: float, dt_s: float) -> float:
    """Queued requests after `dt_s` [-]: :math:`\\max(0, B + (\\lambda - C)\\Delta t)`."""
    return max(0.0, backlog + (offered_per_s - capacity_per_s) * dt_s)


def mean_ttft_s(base_ttft_s: float, load_share: float, backlog: float, capacity_per_s: float) -> float:
    """Mean time to first token [s] (equation in the module docstring)."""
    wait = backlog / capacity_per_s if capacity_per_s > 0 else math.inf
    return base_ttft_s * (0.5 + 0.5 * min(max(load_share, 0.0), 1.0)) + wait


def lognormal_share_below(bounds: Sequence[float] | np.ndarray, mean: float, sigma: float) -> np.ndarray:
    """Share of a lognormal with `mean` and log-spread `sigma` below each bound [-]: F(b) above."""
    if not math.isfinite(mean):
        return np.zeros(len(bounds))
    median = mean / math.exp(0.5 * sigma * sigma)
    return ndtr((np.log(np.asarray(bounds, dtype=float)) - math.log(max(median, 1e-12))) / sigma)
