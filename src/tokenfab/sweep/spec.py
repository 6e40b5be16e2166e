"""The sweep file's schema, its points and plan, and the dotted parameter paths (``sites[0].system``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenfab.io.yamlfile import LocatedYaml, load_located_yaml

SWEEP_VERSION: Literal[1] = 1
STAGES = ("design", "certify", "tokens", "simulate")


class Sampling(StrEnum):
    grid = "grid"
    list = "list"
    random = "random"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UniformRange(_Strict):
    """A continuous (or integer) range sampled uniformly by ``random`` sampling."""

    low: float
    high: float
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> UniformRange:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


class TokensSettings(_Strict):
    """The token workload every point is priced on (see `tokenfab.perf.estimate`)."""

    model: str = "llama-3.1-70b"
    precision: str | None = Field(default=None, description="bf16, fp8 or fp4; default the model's native")
    isl: int = Field(default=1024, ge=1, le=1_000_000)
    osl: int = Field(default=1024, ge=1, le=1_000_000)
    ttft_ms: float | None = Field(default=None, gt=0)
    itl_ms: float | None = Field(default=None, gt=0)
    power_cap_w: float | None = Field(default=None, gt=0)
    mode: Literal["aggregated", "disaggregated", "both"] = "aggregated"


class ScenarioSettings(_Strict):
    """A short simulation of each point's design running a workload."""

    workload: str = Field(min_length=1, description="workload file, relative to the sweep file")
    days: float = Field(default=1.0, gt=0, le=30)
    policy: Literal["first_fit", "best_fit", "topology_packing", "fragmentation_aware"] = Field(
        default="topology_packing", description="placement policy of the fleet scheduler"
    )
    seed: int = 0


class SweepFile(_Strict):
    """The sweep file: a base spec, what to price and simulate, and the parameters to vary."""

    version: Literal[1] = SWEEP_VERSION
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    base: str = Field(min_length=1, description="base spec, relative to the sweep file")
    tokens: TokensSettings | None = Field(default_factory=TokensSettings)
    scenario: ScenarioSettings | None = None
    sampling: Sampling = Sampling.grid
    n: int | None = Field(default=None, ge=1, le=1_000_000, description="points drawn by random sampling")
    seed: int = 0
    parameters: dict[str, list[Any] | UniformRange] = Field(min_length=1)

    @model_validator(mode="after")
    def _sampling_fits_parameters(self) -> SweepFile:
        for path, values in self.parameters.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"parameter {path!r} has no values")
            if isinstance(values, UniformRange) and self.sampling != Sampling.random:
                raise ValueError(f"parameter {path!r}: a low/high range needs `sampling: random`")
        if self.sampling == Sampling.random and self.n is None:
            raise ValueError("random sampling needs `n`, the number of points")
        if self.sampling == Sampling.list:
            lengths = {len(v) for v in self.parameters.values() if isinstance(v, list)}
            if len(lengths) > 1:
                raise ValueError(
                    f"list sampling zips the parameters, so their lists need one length (got {sorted(lengths)})"
                )
        return self


@dataclass(frozen=True)
class SweepPoint:
    """One point: the values varied and the complete inputs they produce."""

    index: int
    key: str
    """Stable hash of everything the point's row depends on (inputs and stages) [-]."""
    parameters: dict[str, Any]
    spec: dict
    tokens: dict | None
    scenario: dict | None
    stages: tuple[str, ...]


@dataclass(frozen=True)
class SweepPlan:
    """A sweep file expanded into points, with the stages that run and notes for the reader."""

    name: str
    path: str
    base_path: str
    parameter_names: tuple[str, ...]
    points: list[SweepPoint]
    stages: tuple[str, ...]
    notes: list[str] = field(default_factory=list)


# --- dotted paths ------------------------------------------------------------------------------

_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def parse_path(path: str) -> tuple[str | int, ...]:
    """``sites[0].redundancy.power`` → ``("sites", 0, "redundancy", "power")``; ValueError if malformed."""
    parts: list[str | int] = []
    for text in path.split("."):
        if not text:
            raise ValueError(f"malformed path {path!r}")
        matched = 0
        for match in _PATH_PART.finditer(text):
            if match.start() != matched or (match.group(1) and matched):
                raise ValueError(f"malformed path {path!r}")
            parts.append(match.group(1) if match.group(1) else int(match.group(2)))
            matched = match.end()
        if matched != len(text):
            raise ValueError(f"malformed path {path!r}")
    return tuple(parts)


def target_of(path: str) -> tuple[str, tuple[str | int, ...]]:
    """Which input a parameter path changes (``spec``, ``tokens`` or ``scenario``) and the path inside it."""
    parts = parse_path(path)
    if parts[0] in ("tokens", "scenario"):
        if len(parts) < 2:
            raise ValueError(f"{path!r} names a whole section; vary one of its fields")
        return str(parts[0]), parts[1:]
    if parts[0] == "spec":
        return "spec", parts[1:]
    return "spec", parts


def set_path(document: Any, parts: tuple[str | int, ...], value: Any) -> None:
    """Set ``document[parts[0]][parts[1]]... = value`` in place; KeyError/IndexError say what is missing."""
    node = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise KeyError(f"no item [{part}] here")
        elif not isinstance(node, dict) or part not in node:
            raise KeyError(f"no field {part!r} here")
        if last:
            node[part] = value
        else:
            if node[part] is None:
                node[part] = {}
            node = node[part]


def load_sweep(path: str | Path) -> tuple[SweepFile, LocatedYaml]:
    """Read and validate a sweep file; bad input raises InputError naming the file, line and field."""
    doc = load_located_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error([], "a sweep is a mapping with `name`, `base` and `parameters`")
    try:
        return SweepFile.model_validate(doc.data), doc
    except ValidationError as exc:
        raise doc.validation_error(exc) from None
