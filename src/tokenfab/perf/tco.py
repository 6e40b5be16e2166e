"""One cost basis: the $/GPU-hour a token figure is priced at is a design's total cost of ownership.

`tokens` for a system and region prices GPU-hours at what `design` computes for a reference design of that
system in that region (one site of `REFERENCE_IT_MW` of IT load in the region's climate): the same compiler,
bill of materials, energy bill and annuity, so the two commands agree by construction. `tokens --design D`
uses D's own sites instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenfab.catalog.models import Climate

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design
    from tokenfab.catalog.load import Catalog

REFERENCE_IT_MW = 20.0
"""IT load of the reference design `tokens` prices a system at [MW] (a mid-size single-hall site)."""

_CACHE: dict[tuple[int, str, str], tuple[object, CostBasis]] = {}
_CACHE_SIZE = 256


@dataclass(frozen=True)
class CostBasis:
    """Where a $/GPU-hour comes from."""

    usd_per_gpu_hour: float
    source: str
    """``reference design`` or ``design <name>, site <name>``."""
    system: str
    region: str
    pue_annual: float
    spec: dict[str, Any] = field(default_factory=dict)
    """The spec compiled (reference designs): `tokenfab design` on it reproduces the figure."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "usd_per_gpu_hour": self.usd_per_gpu_hour,
            "source": self.source,
            "system": self.system,
            "region": self.region,
            "pue_annual": self.pue_annual,
            "spec": self.spec,
            "function": "tokenfab.blueprint.compile -> SiteMetrics.usd_per_gpu_hour (the design's TCO)",
        }


def reference_spec(catalog: Catalog, system: str, region: str) -> dict[str, Any]:
    """The spec of the reference design: one site of `REFERENCE_IT_MW` in `region`'s first climate."""
    climates = sorted(c.name for c in catalog.all("climates", Climate) if c.region == region)
    if not climates:
        raise KeyError(f"no climate in the catalog lies in region {region!r}")
    site = {
        "name": "reference",
        "system": system,
        "it_mw": REFERENCE_IT_MW,
        "climate": climates[0],
        "region": region,
    }
    return {"name": f"reference-{system}-{region}", "sites": [site]}


def reference_cost_basis(catalog: Catalog, system: str, region: str) -> CostBasis:
    """The $/GPU-hour of `system` in `region`: the reference design's TCO (compiled once per catalog).

    Raises KeyError for an unknown system or region (or a region without a climate) and
    `tokenfab.blueprint.compile.CompileError` (a ValueError) when the reference site cannot be built.
    """
    key = (id(catalog), system, region)
    if key not in _CACHE:
        catalog.get("systems", system)  # unknown names fail here with the known ones listed
        catalog.get("regions", region)
        from tokenfab.blueprint.compile import compile as compile_design
        from tokenfab.spec import parse_spec

        spec = reference_spec(catalog, system, region)
        site = compile_design(parse_spec(spec), catalog).sites[0]
        basis = CostBasis(
            usd_per_gpu_hour=site.metrics.usd_per_gpu_hour,
            source="reference design",
            system=system,
            region=region,
            pue_annual=site.metrics.pue_annual,
            spec=spec,
        )
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))  # oldest first
        _CACHE[key] = (catalog, basis)  # the catalog is held so its id is not reused while cached
    return _CACHE[key][1]


def design_cost_basis(design: Design, system: str | None = None) -> CostBasis:
    """The $/GPU-hour of the first site of `design` built from `system` (any site when None)."""
    for site in design.sites:
        if system is None or site.system == system:
            return CostBasis(
                usd_per_gpu_hour=site.metrics.usd_per_gpu_hour,
                source=f"design {design.name}, site {site.name}",
                system=site.system,
                region=site.region,
                pue_annual=site.metrics.pue_annual,
            )
    raise KeyError(f"design {design.name!r} has no site built from system {system!r}")
