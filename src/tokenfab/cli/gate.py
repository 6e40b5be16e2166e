"""The validation gate for the files a command runs a factory with: workload, traffic mix and sweep files.

Each is parsed (with the line of every value), validated against its model, then checked against the catalog
and, where one is given, the design it runs on. A failure raises `InputError` with one line,
``FILE:LINE: field.path: problem``, as a spec or a design.json gives (`tokenfab.blueprint.validate`). These
checks read files from several layers (twin, perf, sweep), so they live at the CLI edge; heavy layers are
imported inside the functions that need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tokenfab.io.errors import InputError
from tokenfab.io.yamlfile import format_loc, load_located_yaml

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design
    from tokenfab.catalog.load import Catalog


def _validated(doc, model, what: str):
    from pydantic import ValidationError

    if not isinstance(doc.data, dict):
        raise doc.error([], f"a {what} file is a mapping of fields")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.validation_error(exc) from None


def _names(
    catalog: Catalog, doc, kind: str, items: Iterable[tuple[Sequence[str | int], str | None]], what: str
):
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
    _names(
        catalog,
        doc,
        "models",
        ((["inference", "services", i, "model"], s.model) for i, s in enumerate(services)),
        "model",
    )
    for i, service in enumerate(services):
        trace = resolve_trace(service.trace, Path(path).parent)
        if not trace.is_file():
            raise doc.error(
                ["inference", "services", i, "trace"],
                f"trace {service.trace!r} not found (known names: {', '.join(TRACE_FILES)}, or a file path)",
            )
    if design is not None:
        check_workload_fits(doc, workload, design)
    return workload


def check_workload_fits(doc, workload, design: Design) -> None:
    """Scripted events must name parts the design has (a CDU failure in hall 7 of a 2-hall site...)."""
    halls = max((len(site.halls) for site in design.sites), default=0)
    for i, failure in enumerate(workload.failures.cdu_failures):
        if failure.hall >= halls:
            raise doc.error(
                ["failures", "cdu_failures", i, "hall"],
                f"hall {failure.hall} does not exist (the design has halls 0–{halls - 1})",
            )
        cdus = min(
            site.halls[failure.hall].cdus_installed for site in design.sites if failure.hall < len(site.halls)
        )
        if failure.units > cdus:
            raise doc.error(
                ["failures", "cdu_failures", i, "units"],
                f"{failure.units} CDUs cannot fail in hall {failure.hall}, which has {cdus}",
            )


def load_mix_checked(path: str | Path, catalog: Catalog):
    """A traffic mix: its model and the catalog's models."""
    from tokenfab.perf.factory import TrafficMix

    doc = load_located_yaml(path)
    mix = _validated(doc, TrafficMix, "mix")
    _names(
        catalog,
        doc,
        "models",
        ((["workloads", i, "model"], w.model) for i, w in enumerate(mix.workloads)),
        "model",
    )
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
    raise doc.error(
        loc,
        f"unknown {kind.rstrip('s')} {name!r} at {format_loc(spec_loc)} "
        f"(known: {', '.join(sorted(catalog.kind(kind)))})",
    )
