"""Sweeps: many (spec, scenario) points, each run through design → certify → tokens (→ simulate), one row each.

A sweep file names a base spec, the token workload to price, an optional scenario for a short simulation,
and the parameters to vary as dotted paths (``sites[0].system``, ``tokens.model``, ``scenario.days``).
Sampling is ``grid`` (every combination), ``list`` (the i-th value of every parameter together) or
``random`` (``n`` points from choices or uniform ranges, with a seed). `plan_sweep` expands the file into
`SweepPoint` s; `evaluate_point` is the pure per-point function the workers run; `run_sweep` fans the
points out over a local process pool or a Ray cluster and appends each row durably to ``points.jsonl``,
so an interrupted sweep resumes where it stopped. `results_frame` turns the rows into a table.
See docs/sweep.md.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenfab.io.yamlfile import InputError, LocatedYaml, load_located_yaml
from tokenfab.spec import FactorySpec, load_spec

SWEEP_VERSION = 1
POINTS_FILE = "points.jsonl"
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
        default="topology_packing", description="placement policy of the fleet scheduler")
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
                raise ValueError(f"list sampling zips the parameters, so their lists need one length (got {sorted(lengths)})")
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


def _target_of(path: str) -> tuple[str, tuple[str | int, ...]]:
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


# --- planning ----------------------------------------------------------------------------------


def load_sweep(path: str | Path) -> tuple[SweepFile, LocatedYaml]:
    """Read and validate a sweep file; bad input raises InputError naming the file, line and field."""
    doc = load_located_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error([], "a sweep is a mapping with `name`, `base` and `parameters`")
    try:
        return SweepFile.model_validate(doc.data), doc
    except ValidationError as exc:
        raise doc.validation_error(exc) from None


def available_stages(stages: Iterable[str] = STAGES) -> dict[str, str | None]:
    """Each of `stages` and why it cannot run here (None when it can): later layers may be absent."""
    modules = {"certify": "tokenfab.certify.check", "tokens": "tokenfab.perf", "simulate": "tokenfab.twin.run"}
    return {stage: _import_note(modules[stage], stage) if stage in modules else None for stage in stages}


def _import_note(module: str, stage: str) -> str | None:
    import importlib

    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        return f"{stage} skipped: {module} is not available ({exc})"
    needed = {"certify": "check", "tokens": "estimate", "simulate": "simulate"}[stage]
    if not hasattr(loaded, needed):
        return f"{stage} skipped: {module} has no `{needed}`"
    return None


def plan_sweep(path: str | Path, stage_notes: dict[str, str | None] | None = None) -> SweepPlan:
    """Expand a sweep file into its points; every value is checked against the spec before anything runs."""
    sweep, doc = load_sweep(path)
    sweep_dir = Path(path).resolve().parent
    base_path = sweep_dir / sweep.base
    try:
        base_spec, _ = load_spec(base_path)
    except InputError as exc:
        raise doc.error(["base"], f"base spec {sweep.base!r}: {exc}") from None
    base = {
        "spec": base_spec.model_dump(mode="json"),
        "tokens": sweep.tokens.model_dump(mode="json") if sweep.tokens else None,
        "scenario": sweep.scenario.model_dump(mode="json") if sweep.scenario else None,
    }
    if base["scenario"] is not None:
        base["scenario"]["workload"] = _workload_path(sweep_dir, sweep.scenario.workload)
        _check_workload(doc, base["scenario"]["workload"], ["scenario", "workload"])

    targets = {}
    for name, values in sweep.parameters.items():
        try:
            target, inner = _target_of(name)
        except ValueError as exc:
            raise doc.error(["parameters", name], str(exc)) from None
        if base[target] is None:
            raise doc.error(["parameters", name], f"varies `{target}` but the sweep has no `{target}` section")
        targets[name] = (target, inner)
        examples = [values.low, values.high] if isinstance(values, UniformRange) else values
        for i, value in enumerate(examples):
            where = ("low", "high")[i] if isinstance(values, UniformRange) else i
            message = _check_value(base, target, inner, value)
            if message:
                raise doc.error(["parameters", name, where], message)
            if (target, inner) == ("scenario", ("workload",)):
                _check_workload(doc, _workload_path(sweep_dir, value), ["parameters", name, where])

    wanted = ["design", "certify"]
    if sweep.tokens is not None:
        wanted.append("tokens")
    if sweep.scenario is not None:
        wanted.append("simulate")
    stage_notes = available_stages(wanted) if stage_notes is None else stage_notes
    stages = tuple(s for s in wanted if stage_notes.get(s) is None)
    notes = [stage_notes[s] for s in wanted if stage_notes.get(s)]

    points: list[SweepPoint] = []
    seen: set[str] = set()
    duplicates = 0
    for values in _samples(sweep):
        inputs = json.loads(json.dumps(base))
        for name, value in values.items():
            target, inner = targets[name]
            if (target, inner) == ("scenario", ("workload",)):
                value = _workload_path(sweep_dir, value)
            set_path(inputs[target], inner, value)
        key = point_key(inputs, stages)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        points.append(SweepPoint(index=len(points), key=key, parameters=values, spec=inputs["spec"],
                                 tokens=inputs["tokens"], scenario=inputs["scenario"], stages=stages))
    if duplicates:
        notes.append(f"{duplicates} duplicate point(s) dropped")
    return SweepPlan(name=sweep.name, path=str(path), base_path=str(base_path),
                     parameter_names=tuple(sweep.parameters), points=points, stages=stages, notes=notes)


def _workload_path(sweep_dir: Path, path: str) -> str:
    """A workload path as the sweep file gives it, made absolute against the sweep file's folder."""
    return str((sweep_dir / path).resolve())


def _check_workload(doc: LocatedYaml, path: str, loc: list) -> None:
    """A scenario's workload and the traces it names must read cleanly (when the twin is installed)."""
    try:
        import tokenfab.twin.run  # noqa: F401
    except ImportError:
        return
    try:
        scenario_inputs(path)
    except InputError as exc:
        raise doc.error(loc, f"workload: {exc}") from None


def _check_value(base: dict, target: str, inner: tuple, value: Any) -> str | None:
    """Why `value` at `inner` of the base input is invalid, or None."""
    trial = json.loads(json.dumps(base[target]))
    try:
        set_path(trial, inner, value)
    except KeyError as exc:
        return f"path not in the {target}: {exc.args[0]}"
    model = {"spec": FactorySpec, "tokens": TokensSettings, "scenario": ScenarioSettings}[target]
    try:
        model.model_validate(trial)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"value {value!r}: {first['msg']}"
    return None


def _samples(sweep: SweepFile) -> Iterator[dict[str, Any]]:
    names = list(sweep.parameters)
    domains = [sweep.parameters[n] for n in names]
    if sweep.sampling == Sampling.grid:
        for combo in itertools.product(*domains):
            yield dict(zip(names, combo, strict=True))
    elif sweep.sampling == Sampling.list:
        for combo in zip(*domains, strict=True):
            yield dict(zip(names, combo, strict=True))
    else:
        rng = np.random.default_rng(sweep.seed)
        for _ in range(sweep.n or 0):
            yield {name: _draw(rng, domain) for name, domain in zip(names, domains, strict=True)}


def _draw(rng: np.random.Generator, domain: list[Any] | UniformRange) -> Any:
    if isinstance(domain, UniformRange):
        if domain.integer:
            return int(rng.integers(math.ceil(domain.low), math.floor(domain.high) + 1))
        return float(rng.uniform(domain.low, domain.high))
    return domain[int(rng.integers(len(domain)))]


def point_key(inputs: dict, stages: Iterable[str]) -> str:
    """Stable key of a point: SHA-256 of its canonical JSON inputs and stages (16 hex digits)."""
    canonical = json.dumps({"inputs": inputs, "stages": list(stages)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- one point (pure; what the workers run) ------------------------------------------------------


def evaluate_point(point: SweepPoint, catalog) -> dict[str, Any]:
    """Run one point through its stages and return its row.

    Columns: ``point_key``, ``point_index``, the varied parameters by their paths, then the design's
    headline metrics, certification counts, the token operating point and, when simulated, the run's
    metrics (see docs/sweep.md for every column). A design that fails to compile ends the point; a later
    stage that fails leaves its own columns out and the others still run. ``error`` holds
    ``"<stage>: <message>"`` for each failure (``; ``-joined, None when all ran) and ``error_stage`` the first.
    """
    row: dict[str, Any] = {"point_key": point.key, "point_index": point.index, **point.parameters}
    errors: list[tuple[str, str]] = []
    design = None
    try:
        design = _compile_point(point, catalog)
        row.update(design_columns(design))
    except Exception as exc:  # noqa: BLE001 - a failing point is recorded and the sweep goes on
        errors.append(("design", _error_text(exc)))
    if design is not None:
        for stage in point.stages[1:]:
            try:
                row.update(_STAGE_COLUMNS[stage](design, point, catalog))
            except Exception as exc:  # noqa: BLE001 - one failing stage does not hide the others
                errors.append((stage, _error_text(exc)))
    row["error"] = "; ".join(f"{stage}: {text}" for stage, text in errors) or None
    row["error_stage"] = errors[0][0] if errors else None
    return row


def _compile_point(point: SweepPoint, catalog):
    from tokenfab.blueprint.compile import compile as compile_design
    from tokenfab.spec import parse_spec

    try:
        spec = parse_spec(point.spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    return compile_design(spec, catalog)


def _error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    loc = getattr(exc, "loc", None)
    if loc:
        message = f"{'.'.join(str(p) for p in loc)}: {message}"
    return message


def design_columns(design) -> dict[str, Any]:
    """Headline figures of a design, one column each (units in the names)."""
    m = design.metrics
    return {
        "systems": ",".join(sorted({s.system for s in design.sites})),
        "heat_rejection": ",".join(sorted({s.cooling.heat_rejection_kind for s in design.sites})),
        "gpus": m.gpus,
        "racks": m.racks,
        "halls": m.halls,
        "it_mw": m.it_mw,
        "facility_mw": m.facility_mw,
        "grid_mw": m.grid_mw,
        "pue_design": m.pue_design,
        "pue_annual": m.pue_annual,
        "wue_l_per_kwh": m.wue_l_per_kwh,
        "capex_usd": m.capex_usd,
        "capex_usd_per_gpu": m.capex_usd / m.gpus if m.gpus else math.nan,
        "opex_usd_per_year": m.opex_usd_per_year,
        "energy_mwh_per_year": m.energy_mwh_per_year,
        "carbon_t_per_year": m.carbon_t_per_year,
        "usd_per_gpu_hour": m.usd_per_gpu_hour,
    }


def certify_columns(design, point: SweepPoint, catalog) -> dict[str, Any]:
    """Counts of certification findings by severity, and the rules that failed."""
    from tokenfab.certify.check import check

    findings = list(check(design))
    severities = [str(getattr(f.severity, "value", f.severity)) for f in findings]
    failed = sorted({str(getattr(f, "rule", getattr(f, "rule_id", "?"))) for f, s in zip(findings, severities, strict=True)
                     if s == "error"})
    return {
        "certify_errors": severities.count("error"),
        "certify_warnings": severities.count("warning"),
        "certify_infos": severities.count("info"),
        "certify_failed_rules": ",".join(failed),
    }


def tokens_columns(design, point: SweepPoint, catalog) -> dict[str, Any]:
    """The token operating point of every site's system, combined over the design (output tokens).

    With :math:`g_i` GPUs and :math:`r_i` output tok/s/GPU on site *i*:

    .. math::
        r = \\frac{\\sum g_i r_i}{\\sum g_i}, \\quad
        \\frac{tok/s}{MW} = \\frac{\\sum g_i r_i}{P_{facility}}, \\quad
        \\$/M = \\frac{\\$/GPUh \\times 10^6}{3600\\, r}, \\quad
        J/tok = \\frac{\\sum g_i P_{GPU,i}}{\\sum g_i r_i}

    where $/GPU-h is the design's (capex annualised + opex) and :math:`P_{GPU}` the GPU board power at the
    operating point.
    """
    from tokenfab.blueprint.cost import usd_per_million_tokens
    from tokenfab.perf import estimate

    settings = point.tokens or {}
    tokens_per_s = 0.0
    gpu_power_w = 0.0
    first = None
    for site in design.sites:
        curve = estimate(catalog, settings["model"], site.system, precision=settings.get("precision"),
                         isl=settings["isl"], osl=settings["osl"], ttft_ms=settings.get("ttft_ms"),
                         itl_ms=settings.get("itl_ms"), power_cap_w=settings.get("power_cap_w"),
                         mode=settings["mode"], region=site.region, pue=site.metrics.pue_annual)
        operating = curve.operating_point
        if operating is None:
            raise ValueError(f"{settings['model']} on {site.system}: no layout meets the TTFT/ITL targets")
        first = first or operating
        tokens_per_s += site.metrics.gpus * operating.tokens_per_s_per_gpu_output
        gpu_power_w += site.metrics.gpus * operating.gpu_power_w
    gpus = design.metrics.gpus
    per_gpu = tokens_per_s / gpus if gpus else 0.0
    return {
        "model": settings["model"],
        "precision": first.precision,
        "serving_layout": f"{first.mode} tp{first.tp} ep{first.ep} pp{first.pp} x{first.concurrency}",
        "itl_ms": first.itl_ms,
        "ttft_ms": first.ttft_ms,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_gpu": per_gpu,
        "tokens_per_s_per_mw": tokens_per_s / design.metrics.facility_mw,
        "usd_per_million_tokens": usd_per_million_tokens(design.metrics.usd_per_gpu_hour, per_gpu),
        "joules_per_token": gpu_power_w / tokens_per_s if tokens_per_s else math.inf,
    }


def simulate_columns(design, point: SweepPoint, catalog) -> dict[str, Any]:
    """Headline figures of a short digital-twin run of the design (only when the sweep has a scenario).

    Every scalar of the run's summary becomes a column prefixed ``sim_`` (see docs/twin.md for their
    meaning), plus ``sim_energy_mwh``.
    """
    from tokenfab.twin.run import simulate

    scenario = point.scenario or {}
    workload, traces, acme_rows = scenario_inputs(scenario["workload"])
    run = simulate(design, workload, scenario["days"], policy=scenario["policy"], seed=scenario["seed"],
                   traces=traces, acme_rows=acme_rows, catalog=catalog)
    columns = {f"sim_{k}": v for k, v in run.summary.items() if isinstance(v, int | float | str | bool) or v is None}
    columns["sim_energy_mwh"] = run.energy_kwh / 1000.0
    return columns


@lru_cache(maxsize=4)
def scenario_inputs(workload_path: str):
    """The workload, the request traces it names and the Acme cluster rows, read once per process.

    Read in the parent when the sweep is planned (bad input is an InputError there), so forked pool
    workers start with them; Ray workers read them on their first simulated point.
    """
    import csv

    from tokenfab.traces.llm import read_trace, shared_data_dir
    from tokenfab.twin.workload import load_workload

    path = Path(workload_path)
    workload = load_workload(path)
    traces = {s.trace: read_trace(s.trace, path.parent) for s in workload.inference.services}
    acme = shared_data_dir() / "acme" / "cluster_summary.csv"
    rows = list(csv.DictReader(acme.open(encoding="utf-8"))) if acme.is_file() else None
    return workload, traces, rows


_STAGE_COLUMNS: dict[str, Callable[..., dict[str, Any]]] = {
    "certify": certify_columns,
    "tokens": tokens_columns,
    "simulate": simulate_columns,
}


# --- workers -------------------------------------------------------------------------------------


def warm_up(catalog_dirs: tuple[str, ...] = ()) -> None:
    """Load the catalog and the coolant property library once per process (CoolProp costs ~4 s to import)."""
    import CoolProp.CoolProp  # noqa: F401

    from tokenfab.catalog.load import load_catalog

    load_catalog(catalog_dirs)


def _init_pool_worker(catalog_dirs: tuple[str, ...]) -> None:
    """Pool worker start: leave Ctrl-C to the parent (which stops the sweep), then warm up."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up(catalog_dirs)


def run_point(point: SweepPoint, catalog_dirs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Worker entry: evaluate one point against the catalog (bundled + `catalog_dirs`, cached per process)."""
    from tokenfab.catalog.load import load_catalog

    started = time.perf_counter()
    row = evaluate_point(point, load_catalog(catalog_dirs))
    row["elapsed_s"] = time.perf_counter() - started
    return row


# --- the store of finished rows ------------------------------------------------------------------


class PointStore:
    """Finished rows as JSON lines in ``OUT/points.jsonl``, one per point, appended as they come.

    Each row is flushed to the operating system as soon as it is written, so it survives the sweep being
    stopped or killed; the file is fsynced at most every `FSYNC_INTERVAL_S` and when the writer closes, so a
    machine crash loses at most the last second of rows (an fsync per row costs ~4 ms, more than a point's
    own work on a fast machine). A rerun reads the rows and computes only the points whose key is missing.
    A torn last line is ignored.
    """

    FSYNC_INTERVAL_S = 1.0

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / POINTS_FILE
        self._synced_at = 0.0

    def rows(self) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        if not self.path.exists():
            return rows
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "point_key" in row:
                    rows[row["point_key"]] = row
        return rows

    @contextmanager
    def writer(self) -> Iterator[Callable[[dict], None]]:
        """Append rows with the yielded function; the file is fsynced on the way out, however it is left."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
            if torn:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write("\n")
        with self.path.open("a", encoding="utf-8") as handle:
            try:
                yield lambda row: self._append(handle, row)
            finally:
                handle.flush()
                os.fsync(handle.fileno())

    def _append(self, handle, row: dict) -> None:
        handle.write(json.dumps(row, default=_json_default, allow_nan=True) + "\n")
        handle.flush()
        now = time.monotonic()
        if now - self._synced_at >= self.FSYNC_INTERVAL_S:
            os.fsync(handle.fileno())
            self._synced_at = now


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


# --- running -------------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    """What a run did: rows in plan order, and how many were computed now or found from before."""

    plan: SweepPlan
    rows: list[dict]
    computed: int
    resumed: int
    executor: str
    wall_s: float

    @property
    def failed(self) -> int:
        return sum(1 for r in self.rows if r.get("error"))


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    use_ray: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict], None] | None = None,
    max_points: int | None = None,
    catalog_dirs: Iterable[str | Path] = (),
) -> SweepOutcome:
    """Compute the plan's missing points and return every row.

    Parameters
    ----------
    plan : SweepPlan
    out_dir : path
        Where ``points.jsonl`` lives; rows already there (same key) are not recomputed.
    workers : int, optional
        Processes of the local pool, or CPUs of a local Ray instance; default the machine's cores.
    ray_address, use_ray
        Run on Ray: ``ray.init(address=ray_address)``, or a local instance bound to 127.0.0.1 when None.
    on_start, on_row
        Called with (points to compute, points already done), and with each new row (progress bars).
    max_points : int, optional
        Stop after this many new points (a deliberate partial run; the rest resumes later).
    catalog_dirs : paths
        User catalog directories laid over the bundled catalog (must be readable by every worker).
    """
    from tokenfab.catalog.load import load_catalog

    started = time.perf_counter()
    store = PointStore(out_dir)
    done = store.rows()
    todo = [p for p in plan.points if p.key not in done]
    if max_points is not None:
        todo = todo[:max_points]
    resumed = len(plan.points) - len([p for p in plan.points if p.key not in done])
    workers = max(1, workers or os.cpu_count() or 1)
    if on_start:
        on_start(len(todo), resumed)
    computed = 0
    with store.writer() as append:
        if todo:
            execute = _execute_on_ray if use_ray else _execute_locally
            dirs = tuple(str(Path(d).resolve()) for d in catalog_dirs)
            load_catalog(dirs)  # a bad catalog is the user's input error, raised here once, not per point
            for row in execute(todo, workers, ray_address, dirs):
                append(row)
                done[row["point_key"]] = row
                computed += 1
                if on_row:
                    on_row(row)
    rows = [done[p.key] for p in plan.points if p.key in done]
    return SweepOutcome(plan=plan, rows=rows, computed=computed, resumed=resumed,
                        executor="ray" if use_ray else "local", wall_s=time.perf_counter() - started)


def _execute_locally(points: list[SweepPoint], workers: int, _address: str | None,
                     catalog_dirs: tuple[str, ...]) -> Iterator[dict]:
    """Rows as they finish on a local process pool; workers are forked after the parent warmed up."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    warm_up(catalog_dirs)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    context = multiprocessing.get_context(method)
    workers = min(workers, len(points))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_pool_worker,
                             initargs=(catalog_dirs,)) as pool:
        pending = set()
        queue = iter(points)
        try:
            for point in itertools.islice(queue, 4 * workers):
                pending.add(pool.submit(run_point, point, catalog_dirs))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    point = next(queue, None)
                    if point is not None:
                        pending.add(pool.submit(run_point, point, catalog_dirs))
                    yield future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


RAY_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray reads this (into ``ray_constants.ENABLE_RAY_CLUSTER``) to decide whether 127.0.0.1 is resolved to the
machine's reachable address; off, a local instance listens on loopback only."""


def _execute_on_ray(points: list[SweepPoint], workers: int, address: str | None,
                    catalog_dirs: tuple[str, ...]) -> Iterator[dict]:
    """Rows as they finish on Ray: a local instance (127.0.0.1, no dashboard) or the cluster at `address`."""
    local = address is None
    saved_env = os.environ.get(RAY_CLUSTER_ENV)
    if local:
        os.environ[RAY_CLUSTER_ENV] = "0"
    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'tokenfab[ray]'") from None
    saved_constant = ray_constants.ENABLE_RAY_CLUSTER
    started_here = not ray.is_initialized()
    try:
        if started_here and local:
            # Ray 2.60 turns _node_ip_address="127.0.0.1" into the machine's address while clusters are enabled.
            ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(address=None, include_dashboard=False, _node_ip_address="127.0.0.1", num_cpus=workers,
                     log_to_driver=False, configure_logging=False)
        elif started_here:
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise RuntimeError(f"cannot connect to Ray at {address!r}: {' '.join(str(exc).split())}") from None
        remote_point = ray.remote(num_cpus=1)(run_point)
        in_flight_max = 4 * max(1, int(ray.cluster_resources().get("CPU", workers)))
        queue = iter(points)
        pending = [remote_point.remote(p, catalog_dirs) for p in itertools.islice(queue, in_flight_max)]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            point = next(queue, None)
            if point is not None:
                pending.append(remote_point.remote(point, catalog_dirs))
            yield ray.get(finished[0])
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved_constant
        if local:
            if saved_env is None:
                os.environ.pop(RAY_CLUSTER_ENV, None)
            else:
                os.environ[RAY_CLUSTER_ENV] = saved_env


# --- results -------------------------------------------------------------------------------------


def results_frame(outcome: SweepOutcome):
    """The rows as a pandas DataFrame, parameters first; non-scalar values become JSON text."""
    import pandas as pd

    frame = pd.DataFrame(outcome.rows)
    if "error" not in frame:
        frame["error"] = None
    first = ["point_index", "point_key", *outcome.plan.parameter_names]
    ordered = [c for c in first if c in frame] + [c for c in frame.columns if c not in first]
    frame = frame[ordered]
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column]
            if values.map(lambda v: isinstance(v, dict | list)).any() or len({type(v) for v in values if v is not None}) > 1:
                frame[column] = values.map(lambda v: None if v is None else (v if isinstance(v, str) else json.dumps(v)))
    return frame.sort_values("point_index").reset_index(drop=True)


def write_results(outcome: SweepOutcome, out_dir: str | Path) -> dict[str, str]:
    """``results.parquet`` and ``results.csv`` in `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = results_frame(outcome)
    parquet, csv = out / "results.parquet", out / "results.csv"
    frame.to_parquet(parquet, index=False)
    frame.to_csv(csv, index=False)
    return {"parquet": str(parquet), "csv": str(csv)}


__all__ = [
    "POINTS_FILE",
    "STAGES",
    "PointStore",
    "Sampling",
    "ScenarioSettings",
    "SweepFile",
    "SweepOutcome",
    "SweepPlan",
    "SweepPoint",
    "TokensSettings",
    "UniformRange",
    "available_stages",
    "certify_columns",
    "design_columns",
    "evaluate_point",
    "load_sweep",
    "parse_path",
    "plan_sweep",
    "point_key",
    "results_frame",
    "run_point",
    "run_sweep",
    "set_path",
    "simulate_columns",
    "tokens_columns",
    "warm_up",
    "write_results",
]
