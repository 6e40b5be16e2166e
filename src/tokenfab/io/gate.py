"""The validation gate every input file passes once, at load, before any command uses it.

Spec, design.json, workload, traffic mix and sweep files: each is parsed (with the line of every value),
validated against its model, then checked against the catalog and, where one is given, the design it runs
on. A failure raises `InputError` with one line, ``FILE:LINE: field.path: problem``, the same for every
kind of file. This module is an edge (it reads files); the checks themselves are pure functions of the
layers that own the data (`tokenfab.blueprint.validate`, the pydantic models). Heavy layers are imported
inside the functions that need them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenfab.io.errors import InputError
from tokenfab.io.yamlfile import (
    LocatedYaml,
    format_loc,
    load_located_yaml,
    parse_located_yaml,
    read_input_text,
)

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design
    from tokenfab.catalog.load import Catalog


def compile_spec_checked(path: str | Path, catalog: Catalog) -> Design:
    """Load, validate and compile a spec; a spec that cannot be built names its field and line."""
    from tokenfab.blueprint.compile import CompileError, compile
    from tokenfab.spec import load_spec

    spec, doc = load_spec(path)
    try:
        return compile(spec, catalog)
    except CompileError as exc:
        raise doc.error(exc.loc, exc.message) from None


class LocatedJson:
    """A JSON document whose node tree (for lines) is built only when an error needs it: libyaml reads JSON,
    so errors come from the same `LocatedYaml` machinery as a spec's; without a tree they name no line."""

    def __init__(self, path: str, text: str, data: Any):
        self.path, self.text, self.data = path, text, data

    @cached_property
    def located(self) -> LocatedYaml:
        try:
            return parse_located_yaml(self.text, self.path, "JSON")
        except InputError:
            return LocatedYaml(self.path, self.data, None)

    def error(self, loc: Sequence[str | int], message: str) -> InputError:
        return self.located.error(loc, message)

    def validation_error(self, exc, prefix: Sequence[str | int] = ()) -> InputError:
        return self.located.validation_error(exc, prefix)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json_located(path: str | Path) -> LocatedJson:
    """Parse a JSON file strictly (no NaN or Infinity); a syntax error names the file and line."""
    path_text = str(path)
    text = read_input_text(path)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path_text}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path_text}: malformed JSON: {exc}") from None
    return LocatedJson(path_text, text, data)


def load_design_checked(path: str | Path, catalog: Catalog) -> Design:
    """A design.json through the whole gate: JSON, schema version, model, then `design_problems`."""
    from pydantic import ValidationError

    from tokenfab.blueprint.design import Design
    from tokenfab.blueprint.validate import design_problems, schema_version_problem

    doc = load_json_located(path)
    if not isinstance(doc.data, dict):
        raise doc.error([], "a design.json is an object with `schema_version`, `name`, `spec` and `sites`")
    if "schema_version" not in doc.data:
        raise doc.error(["schema_version"], "required field is missing")
    problem = schema_version_problem(doc.data["schema_version"])
    if problem:
        raise doc.error(["schema_version"], problem)
    try:
        design = Design.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.validation_error(exc) from None
    first = next(iter(design_problems(design, catalog)), None)
    if first is not None:
        raise doc.error(first.loc, first.message)
    return design


def _validated(doc, model, what: str):
    from pydantic import ValidationError

    if not isinstance(doc.data, dict):
        raise doc.error([], f"a {what} file is a mapping of fields")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.validation_error(exc) from None


def _names(catalog: Catalog, doc, kind: str, items: Iterable[tuple[Sequence[str | int], str | None]], what: str):
    known = catalog.kind(kind)
    for loc, name in items:
        if name is not None and name not in known:
            raise doc.error(loc, f"unknown {what} {name!r} (known: {', '.join(sorted(known)) or 'none'})")


def load_workload_checked(path: str | Path, catalog: Catalog, design: Design | None = None):
    """A workload file: its model, the catalog's models, its request traces, and halls of the design."""
    from tokenfab.traces.llm import TRACE_FILES, resolve_trace
    from tokenfab.twin.workload import WorkloadSpec

    doc = load_located_yaml(path)
    workload = _validated(doc, WorkloadSpec, "workload")
    services = workload.inference.services
    _names(catalog, doc, "models",
           ((["inference", "services", i, "model"], s.model) for i, s in enumerate(services)), "model")
    for i, service in enumerate(services):
        trace = resolve_trace(service.trace, Path(path).parent)
        if not trace.is_file():
            raise doc.error(["inference", "services", i, "trace"],
                            f"trace {service.trace!r} not found (known names: {', '.join(TRACE_FILES)}, or a file path)")
    if design is not None:
        check_workload_fits(doc, workload, design)
    return workload


def check_workload_fits(doc, workload, design: Design) -> None:
    """Scripted events must name parts the design has (a CDU failure in hall 7 of a 2-hall site...)."""
    halls = max((len(site.halls) for site in design.sites), default=0)
    for i, failure in enumerate(workload.failures.cdu_failures):
        if failure.hall >= halls:
            raise doc.error(["failures", "cdu_failures", i, "hall"],
                            f"hall {failure.hall} does not exist (the design has halls 0–{halls - 1})")
        cdus = min(site.halls[failure.hall].cdus_installed for site in design.sites if failure.hall < len(site.halls))
        if failure.units > cdus:
            raise doc.error(["failures", "cdu_failures", i, "units"],
                            f"{failure.units} CDUs cannot fail in hall {failure.hall}, which has {cdus}")


def load_mix_checked(path: str | Path, catalog: Catalog):
    """A traffic mix: its model and the catalog's models."""
    from tokenfab.perf.factory import TrafficMix

    doc = load_located_yaml(path)
    mix = _validated(doc, TrafficMix, "mix")
    _names(catalog, doc, "models", ((["workloads", i, "model"], w.model) for i, w in enumerate(mix.workloads)),
           "model")
    return mix


def plan_sweep_checked(path: str | Path, catalog: Catalog):
    """A sweep file: `plan_sweep`'s own checks, then every catalog name its points would use."""
    from tokenfab.sweep import plan_sweep

    plan = plan_sweep(path)
    doc = load_located_yaml(path)
    for point in plan.points:
        for i, site in enumerate(point.spec.get("sites", [])):
            for field, kind in (("system", "systems"), ("region", "regions")):
                _sweep_name(doc, catalog, point, kind, site.get(field), ["sites", i, field])
            if isinstance(site.get("climate"), str):
                _sweep_name(doc, catalog, point, "climates", site["climate"], ["sites", i, "climate"])
        tokens = point.tokens or {}
        _sweep_name(doc, catalog, point, "models", tokens.get("model"), ["model"])
    workloads = {point.scenario["workload"] for point in plan.points if point.scenario}
    for workload in sorted(workloads):
        try:
            load_workload_checked(workload, catalog)
        except InputError as exc:
            raise doc.error(["scenario", "workload"], f"workload {workload}: {exc}") from None
    return plan


def _sweep_name(doc, catalog: Catalog, point, kind: str, name: str | None, spec_loc: list) -> None:
    if name is None or name in catalog.kind(kind):
        return
    varied = next((p for p, v in point.parameters.items() if v == name), None)
    loc = ["parameters", varied] if varied else ["base"]
    raise doc.error(loc, f"unknown {kind.rstrip('s')} {name!r} at {format_loc(spec_loc)} "
                         f"(known: {', '.join(sorted(catalog.kind(kind)))})")
