"""Is a Design (e.g. a hand-edited design.json) one that `compile` could have produced? The design.json gate.

`design_problems(design, catalog)` yields every `Problem` (field path, what is wrong) it finds, in document
order, so a loader can report the first as one line. The checks are generic so that fields other layers add
keep passing: every number finite; counts, powers, flows, areas and money never negative; the few
quantities the rest of the code divides by strictly positive; catalog names known; and the counts that
`compile` derives from each other (halls, racks, GPUs, nodes, domains, SUs, sites) adding up.
`load_design_checked` (a design.json) and `compile_spec_checked` (a spec) are the gate every command
loads a factory through: a problem raises `InputError` with one line, ``FILE:LINE: field.path: problem``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenfab.blueprint.design import DESIGN_SCHEMA_VERSION, Design, HallDesign, RackDesign, SiteDesign
from tokenfab.catalog.load import Catalog
from tokenfab.io.jsonfile import load_json_located

if TYPE_CHECKING:
    from tokenfab.blueprint.parts import Loc

NON_NEGATIVE_SUFFIXES = (
    "_kw",
    "_mw",
    "_w",
    "_lpm",
    "_m2",
    "_usd",
    "_kg",
    "_tb",
    "_gbps",
    "_tbps",
    "_mwh",
    "_m3",
    "_per_year",
    "_fraction",
    "_per_kwh",
    "_per_m2",
    "_per_m3",
    "_per_hour",
    "_gb",
    "_k",
)
"""Field-name endings of quantities that cannot be negative (temperatures in °C can)."""

POSITIVE_FIELDS = {
    "rack": ("gpus", "nodes", "nvlink_domains", "gpus_per_nvlink_domain", "power_max_kw", "power_nominal_kw"),
    "hall": ("racks", "gpus", "rows", "racks_per_row"),
    "stage": ("units_required", "units_installed", "unit_rating_kw", "efficiency", "max_loading_fraction"),
    "cooling": (
        "coolant_delta_t_k",
        "coolant_density_kg_m3",
        "coolant_cp_j_per_kg_k",
        "pue_design",
        "pue_annual",
    ),
    "fabric": ("switch_ports", "link_gbps", "gpus_per_nvlink_domain"),
}
"""Quantities the certify rules, the fleet, the twin and the exporters divide by or count with."""


@dataclass(frozen=True)
class Problem:
    loc: tuple[str | int, ...]
    message: str


def schema_version_problem(version: object) -> str | None:
    """None when this tokenfab reads design schema `version` (same major version), else why not."""
    major = DESIGN_SCHEMA_VERSION.split(".")[0]
    if not isinstance(version, str) or version.split(".")[0] != major:
        return (
            f"unsupported design schema {version!r} (this tokenfab reads {major}.x, "
            f"written {DESIGN_SCHEMA_VERSION}); compile the spec again"
        )
    return None


def design_problems(design: Design, catalog: Catalog) -> Iterator[Problem]:
    """Every problem of `design`, numbers first, then names, then the counts that must add up."""
    yield from number_problems(design.model_dump(mode="python"), ())
    if not design.sites:
        yield Problem(("sites",), "a design needs at least one site")
    for i, site in enumerate(design.sites):
        yield from _site_problems(site, ("sites", i), catalog)
    yield from _design_totals(design)


def number_problems(value: Any, loc: tuple[str | int, ...]) -> Iterator[Problem]:
    """Non-finite numbers anywhere, and negative ones in fields whose unit cannot be negative."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from number_problems(child, (*loc, key))
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from number_problems(child, (*loc, index))
    elif isinstance(value, float) and not math.isfinite(value):
        yield Problem(loc, f"must be a finite number, got {value}")
    elif isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        name = next((part for part in reversed(loc) if isinstance(part, str)), "")
        if isinstance(value, int) or name.endswith(NON_NEGATIVE_SUFFIXES):
            yield Problem(loc, f"must not be negative, got {value}")


def _positive(obj: Any, kind: str, loc: tuple[str | int, ...]) -> Iterator[Problem]:
    for name in POSITIVE_FIELDS[kind]:
        value = getattr(obj, name, None)
        if value is not None and value <= 0:
            yield Problem((*loc, name), f"must be greater than 0, got {value}")


def _known(catalog: Catalog, kind: str | None, name: str | None, loc: Loc, what: str) -> Iterator[Problem]:
    """`name` must be a catalog entry (of `kind`, or of any kind when None)."""
    if name is None:
        return
    entries = catalog.kind(kind) if kind else {n for k in catalog.entries.values() for n in k}
    if name not in entries:
        yield Problem(loc, f"unknown {what} {name!r} (not in the catalog; see `tokenfab catalog list`)")


def _site_problems(site: SiteDesign, loc: Loc, catalog: Catalog) -> Iterator[Problem]:
    rack, fabric = site.rack, site.fabric
    yield from _known(catalog, "systems", site.system, (*loc, "system"), "system")
    yield from _known(catalog, "gpus", site.gpu, (*loc, "gpu"), "GPU")
    yield from _known(catalog, "regions", site.region, (*loc, "region"), "region")
    yield from _known(catalog, "systems", rack.system, (*loc, "rack", "system"), "system")
    if rack.system != site.system:
        yield Problem(
            (*loc, "rack", "system"), f"{rack.system!r} differs from the site's system {site.system!r}"
        )
    yield from _known(catalog, "switches", fabric.switch, (*loc, "fabric", "switch"), "switch")
    yield from _known(catalog, "cdus", site.cooling.cdu_model, (*loc, "cooling", "cdu_model"), "CDU")
    for s, stage in enumerate(site.power.stages):
        yield from _known(
            catalog, None, stage.equipment, (*loc, "power", "stages", s, "equipment"), "equipment"
        )
        yield from _positive(stage, "stage", (*loc, "power", "stages", s))
        if stage.units_installed < stage.units_required:
            yield Problem(
                (*loc, "power", "stages", s, "units_installed"),
                f"{stage.units_installed} installed is fewer than the {stage.units_required} required",
            )
    yield from _positive(rack, "rack", (*loc, "rack"))
    yield from _positive(site.cooling, "cooling", (*loc, "cooling"))
    yield from _positive(fabric, "fabric", (*loc, "fabric"))
    if rack.gpus > 0 and rack.nvlink_domains * rack.gpus_per_nvlink_domain != rack.gpus:
        yield Problem(
            (*loc, "rack", "gpus"),
            f"{rack.gpus} GPUs is not {rack.nvlink_domains} NVLink domains "
            f"× {rack.gpus_per_nvlink_domain} GPUs",
        )
    if not site.halls:
        yield Problem((*loc, "halls"), "a site needs at least one hall")
    for h, hall in enumerate(site.halls):
        yield from _hall_problems(hall, rack, (*loc, "halls", h), catalog)
    yield from _site_totals(site, loc)


def _hall_problems(hall: HallDesign, rack: RackDesign, loc: Loc, catalog: Catalog) -> Iterator[Problem]:
    yield from _positive(hall, "hall", loc)
    yield from _known(catalog, "cdus", hall.cdu_model, (*loc, "cdu_model"), "CDU")
    if not hall.su_racks:
        yield Problem((*loc, "su_racks"), "a hall needs at least one scalable unit")
    for s, racks in enumerate(hall.su_racks):
        if racks <= 0:
            yield Problem((*loc, "su_racks", s), f"a scalable unit needs at least one rack, got {racks}")
    if hall.racks != sum(hall.su_racks):
        yield Problem(
            (*loc, "racks"), f"{hall.racks} racks, but its scalable units hold {sum(hall.su_racks)}"
        )
    full_gpus = hall.racks * rack.gpus
    if not full_gpus - rack.gpus < hall.gpus <= full_gpus:  # the last rack of a hall may be part-filled
        yield Problem(
            (*loc, "gpus"),
            f"{hall.gpus} GPUs do not fit {hall.racks} racks of {rack.gpus} GPUs "
            f"(more than {full_gpus - rack.gpus}, at most {full_gpus})",
        )
    if hall.cdus_installed < hall.cdus_required:
        yield Problem(
            (*loc, "cdus_installed"),
            f"{hall.cdus_installed} installed is fewer than the {hall.cdus_required} required",
        )


def _site_totals(site: SiteDesign, loc: Loc) -> Iterator[Problem]:
    halls, rack = site.halls, site.rack
    racks = sum(h.racks for h in halls)
    gpus = sum(h.gpus for h in halls)
    expected = {
        "halls": len(halls),
        "racks": racks,
        "gpus": gpus,
        # a hall's last rack may be part-filled: nodes and domains follow its GPUs
        "nodes": sum(-(-h.gpus * rack.nodes // rack.gpus) for h in halls),
        "nvlink_domains": sum(-(-h.gpus * rack.nvlink_domains // rack.gpus) for h in halls),
        "scalable_units": sum(len(h.su_racks) for h in halls),
    }
    for name, value in expected.items():
        given = getattr(site.metrics, name)
        if given != value:
            yield Problem((*loc, "metrics", name), f"{given:,} does not match the halls' {value:,}")


def _design_totals(design: Design) -> Iterator[Problem]:
    sites = design.sites
    expected = {
        "sites": len(sites),
        "gpus": sum(s.metrics.gpus for s in sites),
        "racks": sum(s.metrics.racks for s in sites),
        "nvlink_domains": sum(s.metrics.nvlink_domains for s in sites),
        "scalable_units": sum(s.metrics.scalable_units for s in sites),
        "halls": sum(s.metrics.halls for s in sites),
    }
    for name, value in expected.items():
        given = getattr(design.metrics, name)
        if given != value:
            yield Problem(("metrics", name), f"{given:,} does not match the sites' {value:,}")
    if len(design.spec.sites) != len(sites):
        yield Problem(("sites",), f"{len(sites)} site(s), but the spec names {len(design.spec.sites)}")
    for i, (given, site) in enumerate(zip(design.spec.sites, sites, strict=False)):
        if given.name != site.name:
            yield Problem(("sites", i, "name"), f"{site.name!r} differs from the spec's site {given.name!r}")
        if given.system != site.system:
            yield Problem(("sites", i, "system"), f"{site.system!r} differs from the spec's {given.system!r}")


# --- the gate: a design.json or a spec file, loaded and checked (one line on any problem) ---------------


def compile_spec_checked(path: str | Path, catalog: Catalog) -> Design:
    """Load, validate and compile a spec; a spec that cannot be built names its field and line."""
    from tokenfab.blueprint.compile import CompileError, compile
    from tokenfab.spec import load_spec

    spec, doc = load_spec(path)
    try:
        return compile(spec, catalog)
    except CompileError as exc:
        raise doc.error(exc.loc, exc.message) from None


def load_design_checked(path: str | Path, catalog: Catalog) -> Design:
    """A design.json through the whole gate: JSON, schema version, model, then `design_problems`."""
    from pydantic import ValidationError

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
