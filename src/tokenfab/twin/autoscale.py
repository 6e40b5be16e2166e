"""Replica autoscaling for inference services, in the manner of Dynamo's SLA planner.

Dynamo's planner (NVIDIA Dynamo, ``components/planner``, SLA-based planner) profiles the throughput per
GPU that a deployment sustains within its TTFT/ITL targets, predicts the next interval's load from the
recent past, and sets the replica count to cover the prediction. Here the per-GPU rate comes from the
token model (`tokenfab.twin.rates.service_rates`) at the power cap in force, the predictor is the
"constant" one (next interval = the last observed interval), and a headroom share is added:

.. math:: R = \\max\\left(R_{min}, \\left\\lceil \\frac{(1 + h)\\,\\hat\\lambda\\,\\overline{OSL}}
          {r_{out}(c)\\, g} \\right\\rceil\\right)

with :math:`\\hat\\lambda` the predicted request rate, :math:`r_{out}(c)` output tokens/s per GPU at cap
:math:`c` and :math:`g` GPUs per replica. Scale-down waits until the count exceeds the need by more than
``scale_down_margin`` to avoid churn.
"""

from __future__ import annotations

import math


def replicas_needed(
    predicted_requests_per_s: float,
    mean_output_tokens: float,
    output_tokens_per_s_per_gpu: float,
    gpus_per_replica: int,
    headroom: float,
    min_replicas: int,
) -> int:
    """Replicas that carry the predicted load with headroom (equation in the module docstring) [-]."""
    per_replica = output_tokens_per_s_per_gpu * gpus_per_replica
    if per_replica <= 0:
        return min_replicas
    need = (1.0 + headroom) * predicted_requests_per_s * mean_output_tokens / per_replica
    return max(min_replicas, int(math.ceil(need - 1e-9)))


def scale_target(current: int, needed: int, scale_down_margin: float = 0.15) -> int:
    """The replica count to move to: up at once, down only past the margin [-]."""
    if needed > current:
        return needed
    if current > needed * (1.0 + scale_down_margin) + 1:
        return needed
    return current
