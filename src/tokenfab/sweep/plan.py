"""Planning: a sweep file expanded into `SweepPoint` s (grid, list or random sampling), each checked first."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from tokenfab.io.yamlfile import InputError, LocatedYaml
from tokenfab.spec import FactorySpec, load_spec
from tokenfab.sweep.evaluate import scenario_inputs
from tokenfab.sweep.spec import (
    STAGES,
    Sampling,
    ScenarioSettings,
    SweepFile,
    SweepPlan,
    SweepPoint,
    TokensSettings,
    UniformRange,
    load_sweep,
    set_path,
    target_of,
)


def available_stages(stages: Iterable[str] = STAGES) -> dict[str, str | None]:
    """Each of `stages` and why it cannot run here (None when it can): later layers may be absent."""
    modules = {
        "certify": "tokenfab.certify.check",
        "tokens": "tokenfab.perf",
        "simulate": "tokenfab.twin.run",
    }
    return {stage: _import_note(modules[stage], stage) if stage in modules else None for stage in stages}


def _import_note(module: str, stage: str) -> str | None:
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
    scenario = sweep.scenario.model_dump(mode="json") if sweep.scenario else None
    if scenario is not None:
        scenario["workload"] = _workload_path(sweep_dir, scenario["workload"])
        _check_workload(doc, scenario["workload"], ["scenario", "workload"])
    base = {
        "spec": base_spec.model_dump(mode="json"),
        "tokens": sweep.tokens.model_dump(mode="json") if sweep.tokens else None,
        "scenario": scenario,
    }

    targets = _checked_targets(doc, sweep, base, sweep_dir)

    wanted = ["design", "certify"]
    if sweep.tokens is not None:
        wanted.append("tokens")
    if sweep.scenario is not None:
        wanted.append("simulate")
    stage_notes = available_stages(wanted) if stage_notes is None else stage_notes
    stages = tuple(s for s in wanted if stage_notes.get(s) is None)
    notes = [note for s in wanted if (note := stage_notes.get(s))]

    points, duplicates = _points(sweep, base, targets, sweep_dir, stages)
    if duplicates:
        notes.append(f"{duplicates} duplicate point(s) dropped")
    return SweepPlan(
        name=sweep.name,
        path=str(path),
        base_path=str(base_path),
        parameter_names=tuple(sweep.parameters),
        points=points,
        stages=stages,
        notes=notes,
    )


def _checked_targets(doc: LocatedYaml, sweep: SweepFile, base: dict, sweep_dir: Path) -> dict[str, tuple]:
    """Each parameter's (input, path inside it), every value checked against the base inputs first."""
    targets = {}
    for name, values in sweep.parameters.items():
        try:
            target, inner = target_of(name)
        except ValueError as exc:
            raise doc.error(["parameters", name], str(exc)) from None
        if base[target] is None:
            raise doc.error(
                ["parameters", name], f"varies `{target}` but the sweep has no `{target}` section"
            )
        targets[name] = (target, inner)
        examples = [values.low, values.high] if isinstance(values, UniformRange) else values
        for i, value in enumerate(examples):
            where = ("low", "high")[i] if isinstance(values, UniformRange) else i
            message = _check_value(base, target, inner, value)
            if message:
                raise doc.error(["parameters", name, where], message)
            if (target, inner) == ("scenario", ("workload",)):
                _check_workload(doc, _workload_path(sweep_dir, value), ["parameters", name, where])
    return targets


def _points(
    sweep: SweepFile, base: dict, targets: dict[str, tuple], sweep_dir: Path, stages: tuple[str, ...]
) -> tuple[list[SweepPoint], int]:
    """The sampled points with their complete inputs, and how many duplicates (same key) were dropped."""
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
        points.append(
            SweepPoint(
                index=len(points),
                key=key,
                parameters=values,
                spec=inputs["spec"],
                tokens=inputs["tokens"],
                scenario=inputs["scenario"],
                stages=stages,
            )
        )
    return points, duplicates


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
    models: dict[str, type[BaseModel]] = {
        "spec": FactorySpec,
        "tokens": TokensSettings,
        "scenario": ScenarioSettings,
    }
    model = models[target]
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
