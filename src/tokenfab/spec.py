"""The user's input: a factory spec (one site or a campus of several) and its YAML loading.

A spec says what to build, not how: grid or IT power, climate, region, system, cooling, redundancy and
fabric per site. `blueprint.compile` turns it into a `Design`. Loading errors name the file, line and
field path in one line (`tokenfab.io.yamlfile.InputError`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tokenfab.io.yamlfile import InputError, LocatedYaml, load_located_yaml

SPEC_VERSION: Final = 1
MAX_SITE_MW = 10_000.0
SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""A name that is also a file or folder name: no path separator, no leading dot (`out/<name>/`)."""


class Redundancy(StrEnum):
    n = "N"
    n_plus_1 = "N+1"
    two_n = "2N"


class CoolingChoice(StrEnum):
    auto = "auto"
    dry_cooler = "dry_cooler"
    hybrid_dry_cooler = "hybrid_dry_cooler"
    cooling_tower = "cooling_tower"
    chiller = "chiller"


class PowerTopology(StrEnum):
    """How power blocks back each other up (the failure analysis takes the worst single failure per block)."""

    auto = "auto"
    """From `redundancy.power`: N, N+1 (per block) or 2N (per hall)."""
    n = "N"
    n_plus_1 = "N+1"
    distributed_redundant = "distributed_redundant"
    """n-make-(n-1): blocks in groups of `distributed_make`; any n-1 of a group carry its load."""
    block_redundant = "block_redundant"
    """Active blocks plus a catcher block per `catcher_group_max`, reached by static transfer switches."""
    two_n = "2N"


class Distribution(StrEnum):
    auto = "auto"
    """800 V DC when the rack draws more than AC busway serves (catalog facility_limits), else AC."""
    ac = "ac"
    dc_800v = "dc_800v"


class FabricChoice(StrEnum):
    auto = "auto"
    infiniband_ndr = "infiniband_ndr"
    infiniband_xdr = "infiniband_xdr"
    spectrum_x = "spectrum_x"


FabricOptics = Literal["auto", "pluggable", "cpo"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClimateSpec(_Strict):
    """Outdoor design conditions given directly instead of by a named climate."""

    design_dry_bulb_c: float = Field(ge=-40, le=60)
    design_wet_bulb_c: float = Field(ge=-40, le=40)
    monthly_dry_bulb_c: list[float] | None = Field(default=None, min_length=12, max_length=12)
    monthly_wet_bulb_c: list[float] | None = Field(default=None, min_length=12, max_length=12)
    daily_range_k: float = Field(default=10.0, ge=0, le=30)

    @model_validator(mode="after")
    def _wet_not_above_dry(self) -> ClimateSpec:
        if self.design_wet_bulb_c > self.design_dry_bulb_c:
            raise ValueError("design_wet_bulb_c cannot exceed design_dry_bulb_c")
        return self


class RedundancySpec(_Strict):
    power: Redundancy = Redundancy.two_n
    cooling: Redundancy = Redundancy.n_plus_1


class PowerSpec(_Strict):
    """Power-chain choices: block topology, standby generation and ride-through, AC or 800 V DC."""

    topology: PowerTopology = PowerTopology.auto
    distributed_make: int = Field(default=4, ge=3, le=8, description="n of an n-make-(n-1) group")
    catcher_group_max: int = Field(default=6, ge=2, le=12, description="active blocks per catcher block")
    generators: bool = Field(
        default=True, description="standby generators per block; false: UPS ride-through only"
    )
    fuel_autonomy_h: float = Field(default=24.0, gt=0, le=720)
    ups_ride_through_min: float = Field(default=5.0, gt=0, le=240)
    distribution: Distribution = Distribution.auto


class LoadProfileSpec(_Strict):
    """The IT load the design will see, for energy and opex (default: the economics' inference-fleet figure)."""

    it_load_fraction: float | None = Field(default=None, gt=0, le=1, description="mean IT draw / provisioned")
    hourly_it_load_fraction: list[float] | None = Field(default=None, min_length=24, max_length=24)

    @model_validator(mode="after")
    def _one_profile(self) -> LoadProfileSpec:
        if self.it_load_fraction is not None and self.hourly_it_load_fraction is not None:
            raise ValueError("give it_load_fraction or hourly_it_load_fraction, not both")
        if self.hourly_it_load_fraction and not all(0 < f <= 1 for f in self.hourly_it_load_fraction):
            raise ValueError("hourly_it_load_fraction values must be in (0, 1]")
        return self


class LimitsSpec(_Strict):
    hall_it_mw_max: float = Field(default=40.0, gt=0, le=500, description="largest IT load one hall holds")
    racks_per_row: int = Field(default=16, ge=1, le=100)


class SiteSpec(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=SAFE_NAME_PATTERN)
    grid_mw: float | None = Field(
        default=None, gt=0, le=MAX_SITE_MW, description="grid connection at the point of interconnection"
    )
    it_mw: float | None = Field(
        default=None, gt=0, le=MAX_SITE_MW, description="provisioned IT power, instead of grid_mw"
    )
    climate: str | ClimateSpec
    region: str | None = Field(
        default=None, description="grid region; defaults to the climate's or the campus's"
    )
    price_usd_per_kwh: float | None = Field(default=None, ge=0, le=2)
    carbon_g_per_kwh: float | None = Field(default=None, ge=0, le=2000)
    system: str
    cooling: CoolingChoice = CoolingChoice.auto
    coolant_supply_temp_c: float | None = Field(
        default=None,
        ge=10,
        le=60,
        description="rack coolant supply (e.g. the vendor's figure); default: the system's maximum",
    )
    trim_chiller: bool | None = Field(
        default=None, description="trim chiller beside dry coolers; default: when the design day needs it"
    )
    redundancy: RedundancySpec = Field(default_factory=RedundancySpec)
    power: PowerSpec = Field(default_factory=PowerSpec)
    load: LoadProfileSpec = Field(default_factory=LoadProfileSpec)
    market: str | None = Field(default=None, description="construction market; defaults to the climate's")
    fabric: FabricChoice = FabricChoice.auto
    fabric_oversubscription: float = Field(
        default=1.0, ge=1.0, le=8.0, description="leaf downlinks : uplinks"
    )
    fabric_planes: int | None = Field(
        default=None,
        ge=1,
        le=8,
        description="scale-out planes; default: one per switch-port-speed share of the NIC (a 1.6 T NIC on 800 G switches: 2)",
    )
    fabric_optics: FabricOptics = Field(
        default="auto",
        description="switch optics: pluggable, cpo (co-packaged), or auto (cpo for 1.6 T NICs)",
    )
    limits: LimitsSpec = Field(default_factory=LimitsSpec)

    @model_validator(mode="after")
    def _one_power_figure(self) -> SiteSpec:
        if (self.grid_mw is None) == (self.it_mw is None):
            raise ValueError("give exactly one of grid_mw or it_mw")
        return self


class FactorySpec(_Strict):
    """One factory: a site, or a campus of several sites in one region."""

    version: Literal[1] = SPEC_VERSION
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=SAFE_NAME_PATTERN,
        description="the factory's name, also its output folder out/<name>/",
    )
    description: str = ""
    region: str | None = Field(default=None, description="default region of every site")
    economics: str = "default"
    sites: list[SiteSpec] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _site_names_unique(self) -> FactorySpec:
        names = [site.name for site in self.sites]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"site names must be unique: {', '.join(duplicates)}")
        return self


def load_spec(path: str | Path) -> tuple[FactorySpec, LocatedYaml]:
    """Read and validate a spec; bad input raises InputError with file, line and field path."""
    doc = load_located_yaml(path)
    if not isinstance(doc.data, dict):
        raise doc.error([], "a spec is a mapping with `name` and `sites`")
    try:
        return FactorySpec.model_validate(doc.data), doc
    except ValidationError as exc:
        raise doc.validation_error(exc) from None


def parse_spec(data: dict[str, Any]) -> FactorySpec:
    """Validate an in-memory spec (for the API and sweeps); errors raise pydantic's ValidationError."""
    return FactorySpec.model_validate(data)


__all__ = [
    "ClimateSpec",
    "CoolingChoice",
    "Distribution",
    "FabricChoice",
    "FactorySpec",
    "InputError",
    "LimitsSpec",
    "LoadProfileSpec",
    "PowerSpec",
    "PowerTopology",
    "Redundancy",
    "RedundancySpec",
    "SiteSpec",
    "load_spec",
    "parse_spec",
]
