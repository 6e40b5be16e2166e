"""What every rule module shares: tolerances, standard limits, catalog look-ups and element walks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

from tokenfab.blueprint import cooling as cool
from tokenfab.blueprint.design import Design, SiteDesign
from tokenfab.catalog.load import Catalog
from tokenfab.catalog.models import Cdu, Economics, SourcedEntry

T = TypeVar("T", bound=SourcedEntry)

RELATIVE_TOLERANCE = 1e-3
"""Sums and balances that a design states must agree with their parts within 0.1 %."""

MAX_RETURN_TEMP_C = 60.0
"""Highest rack return temperature before wetted materials and touch safety suffer (estimate; ASHRAE
TC 9.9 liquid-cooling guidelines keep W45 returns near 55 °C)."""

INDOOR_DEW_POINT_MAX_C = 15.0
"""ASHRAE TC 9.9 recommended envelope: white-space dew point at most 15 °C."""

CONDENSATION_MARGIN_K = 2.0
"""Margin of coolant supply above the white-space dew point."""

GLYCOL_FREEZE_POINT_C = {"PG25": -10.0, "PG30": -13.0, "EG25": -13.0}
"""Freeze points of common technology-cooling fluids (ASHRAE Handbook—Fundamentals, ch. 31)."""

REDUNDANCY_STRENGTH = {"N": 0, "N+1": 1, "DR": 1, "BR": 1, "2N": 2}
"""How many failures a redundancy rides through (DR n/(n−1) and BR c+1 blocks: one per group)."""

STAGE_NAMES = ("substation_transformer", "mv_lv_transformer", "ups", "busway")


def _entry(catalog: Catalog, kind: str, name: str | None, model: type[T]) -> T | None:
    """A catalog entry by name, or None when the catalog does not have it."""
    if name is None:
        return None
    entry = catalog.kind(kind).get(name)
    return entry if isinstance(entry, model) else None


def _standards(catalog: Catalog):
    """The catalog's standards entry (building fabrics, geometry, floor, life safety), or None."""
    from tokenfab.catalog.models import Standards

    return _entry(catalog, "standards", "default", Standards)


def _facility_limits(catalog: Catalog):
    from tokenfab.catalog.models import FacilityLimits

    return _entry(catalog, "facility_limits", "default", FacilityLimits)


def _economics(design: Design, catalog: Catalog) -> Economics | None:
    return _entry(catalog, "economics", design.spec.economics, Economics)


def _carrying_units(installed: int, redundancy: str) -> int:
    """Units that must carry the load after the redundancy is spent: n (N), n−1 (N+1), n/2 (2N)."""
    carrying = {"2N": installed // 2, "N+1": installed - 1}.get(redundancy, installed)
    return max(carrying, 0)


def _stage_carrying(stage) -> int:
    """Units of a power stage that carry its load after the worst single failure (stated by block designs)."""
    if stage.units_carrying is not None:
        return stage.units_carrying
    return _carrying_units(stage.units_installed, stage.redundancy)


def _strength(redundancy: str) -> int:
    return REDUNDANCY_STRENGTH.get(redundancy.split(" ")[0], -1)


def _exceeds(value: float, limit: float) -> bool:
    """`value` above `limit`, ignoring float noise."""
    return value > limit + 1e-9 * max(1.0, abs(limit))


def _differs(stated: float, derived: float, tolerance: float = RELATIVE_TOLERANCE) -> bool:
    return abs(stated - derived) > tolerance * max(abs(derived), abs(stated), 1e-6)


def _sites(design: Design) -> Iterator[tuple[int, SiteDesign, str]]:
    for index, site in enumerate(design.sites):
        yield index, site, f"site[{index}]"


def _requested(design: Design, index: int):
    """The redundancy the spec asks for at site `index` (None when the spec has no such site)."""
    return design.spec.sites[index].redundancy if index < len(design.spec.sites) else None


def _rack_fill(site: SiteDesign) -> float:
    """Share of rack NVLink domains populated (1 for rack-scale systems; < 1 for a partly filled last rack)."""
    slots = site.metrics.racks * site.rack.nvlink_domains
    return site.metrics.nvlink_domains / slots if slots else 1.0


def _rack_flow_needed_lpm(site: SiteDesign, heat_kw: float) -> float:
    c = site.cooling
    return cool.coolant_flow_lpm(
        heat_kw, c.coolant_delta_t_k, c.coolant_density_kg_m3, c.coolant_cp_j_per_kg_k
    )


def _stage(site: SiteDesign, name: str):
    return next((s for s in site.power.stages if s.stage == name), None)


def _cdu(site: SiteDesign, hall_cdu: str | None, catalog: Catalog) -> Cdu | None:
    return _entry(catalog, "cdus", hall_cdu, Cdu)


def _tier_path(path: str, tier) -> str:
    return f"{path}.fabric.tier[{tier.name}]"
