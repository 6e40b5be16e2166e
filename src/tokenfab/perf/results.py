"""What the token model returns: points of the curve, the curve with its Pareto front and operating point,
and the input error it raises."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenfab.units import Floats


@dataclass(frozen=True)
class TokenPoint:
    """One serving layout and load, with what it produces and costs (units in the names)."""

    model: str
    system: str
    precision: str
    mode: str
    tp: int
    ep: int
    pp: int
    gpus_per_replica: int
    concurrency: int
    """Sequences in flight per replica (decode replica in disaggregated mode) [-]."""
    isl: int
    osl: int
    ttft_ms: float
    itl_ms: float
    tokens_per_s_per_user: float
    """Output tokens per second one sequence sees, 1000 / itl_ms [tok/s]."""
    prefill_tokens_per_s_per_gpu: float
    """Input tokens processed per second per GPU that does prefill [tok/s]."""
    decode_tokens_per_s_per_gpu: float
    """Output tokens generated per second per GPU that does decode [tok/s]."""
    tokens_per_s_per_gpu_total: float
    """Input + output tokens per second per GPU of the whole deployment [tok/s]."""
    tokens_per_s_per_gpu_output: float
    """Output tokens per second per GPU of the whole deployment [tok/s]."""
    tokens_per_s_per_rack_total: float
    tokens_per_s_per_rack_output: float
    tokens_per_s_per_mw_total: float
    """Input + output tokens per second per MW of provisioned power (rack max × PUE) [tok/s/MW]."""
    tokens_per_s_per_mw_output: float
    gpu_power_w: float
    """Mean board power drawn per GPU at this point [W]."""
    clock_fraction: float
    """SM clock relative to nominal after the power cap [-]."""
    joules_per_token: float
    """GPU board energy per output token (all phases charged to output tokens) [J/tok]."""
    joules_per_token_total: float
    """GPU board energy per input + output token [J/tok]."""
    usd_per_million_tokens: float
    """Capex amortised + opex per million output tokens [$]."""
    usd_per_million_tokens_total: float
    """Capex amortised + opex per million input + output tokens [$]."""
    gco2_per_million_tokens: float
    """Grid carbon of the drawn energy (board + host share) × PUE per million output tokens [g]."""
    kv_max_concurrency: int
    """Sequences of ISL+OSL tokens the replica's KV cache holds [-]."""
    prefill_gpu_fraction: float
    """Share of GPUs in the prefill pool (0 in aggregated mode) [-]."""
    meets_targets: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TokenCurve:
    """All evaluated points, the Pareto front and the chosen operating point.

    ``points`` (every feasible layout and load) is built on first access from ``columns``, the same
    figures as arrays; the front and the operating point are built eagerly.
    """

    model: str
    system: str
    precision: str
    isl: int
    osl: int
    mode: str
    ttft_target_ms: float | None
    itl_target_ms: float | None
    power_cap_w: float | None
    usd_per_gpu_hour: float
    provisioned_kw_per_gpu: float
    """Rack maximum power / GPUs per rack × PUE [kW]."""
    calibration: str
    columns: dict[str, np.ndarray] = field(repr=False)
    """TokenPoint fields as arrays over every evaluated point."""
    front: list[TokenPoint] = field(repr=False)
    """Pareto front: no other point has both more tokens/s/user and more tokens/s/GPU (total)."""
    operating_point: TokenPoint | None = None
    """Highest tokens/s/GPU (total) meeting the targets; when nothing meets them, the point that misses
    them by the smallest factor (its ``meets_targets`` is False)."""
    mode_reason: str = ""
    """Which serving mode the operating point uses and why (mode ``auto`` compares both)."""
    engine: str = ""
    """Engine profile whose limits (max batch, KV fraction, CUDA graphs) the curve respects."""
    spec_decoding: str = "none"

    @cached_property
    def points(self) -> list[TokenPoint]:
        return [point_at(self.columns, i) for i in range(len(self.columns["tp"]))]

    def to_dict(self) -> dict[str, Any]:
        out = self.operating_point.to_dict() if self.operating_point else {}
        out.update(
            {
                "model": self.model,
                "system": self.system,
                "precision": self.precision,
                "mode_requested": self.mode,
                "ttft_target_ms": self.ttft_target_ms,
                "itl_target_ms": self.itl_target_ms,
                "power_cap_w": self.power_cap_w,
                "usd_per_gpu_hour": self.usd_per_gpu_hour,
                "provisioned_kw_per_gpu": self.provisioned_kw_per_gpu,
                "calibration": self.calibration,
                "mode_chosen": self.operating_point.mode if self.operating_point else None,
                "mode_reason": self.mode_reason,
                "engine": self.engine,
                "spec_decoding": self.spec_decoding,
                "meets_targets": self.operating_point is not None and self.operating_point.meets_targets,
                "curve": [p.to_dict() for p in self.front],
            }
        )
        return out


_POINT_FIELDS = tuple(f.name for f in fields(TokenPoint))


def point_at(columns: dict[str, np.ndarray], i: int) -> TokenPoint:
    """Row `i` of the column arrays as a TokenPoint of plain Python numbers."""
    return TokenPoint(**{name: columns[name][i].item() for name in _POINT_FIELDS})


class PerfInputError(ValueError):
    """A model, system or serving setting the token model cannot use (one line, for the CLI)."""


def pareto_front_mask(x: Floats, y: Floats) -> np.ndarray:
    """Points not dominated in (x, y), both to be maximised.

    A point is dominated when another has ``x' >= x`` and ``y' >= y`` with one strictly greater. Sort by x
    descending (y descending on ties) and keep points whose y beats every y seen so far.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    order = np.lexsort((-y, -x))
    keep = np.zeros(len(x), dtype=bool)
    best = -np.inf
    for i in order:
        if y[i] > best:
            keep[i] = True
            best = y[i]
    return keep
