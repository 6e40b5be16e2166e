"""The Design: everything `compile` decides about a factory, as plain validated data.

It is counts, not objects: a rack is described once per site (`RackDesign`) and halls list how many racks
each scalable unit holds. `design.json` is this model dumped with `schema_version`; `tokenfab schema`
publishes its JSON Schema. Every quantity carries its unit in its name.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tokenfab.spec import SAFE_NAME_PATTERN, FactorySpec

DESIGN_SCHEMA_VERSION = "1.0"
MAX_DESIGN_GPUS = 5_000_000
"""GPUs one design may hold (a 10 GW GB200 NVL72 site has 4.3 million): the twin, the exporters and the
control plane hold per-GPU and per-node arrays, so a larger factory is split into several designs."""
MAX_DESIGN_RACKS = MAX_DESIGN_GPUS // 4
"""Racks one design may hold (a rack holds at least one 4-GPU node)."""
MAX_DESIGN_JSON_BYTES = 64 << 20
"""Largest design.json read [bytes] (a 1 GW design is 0.45 MB: counts, not objects)."""


def design_size_problem(gpus: int, racks: int) -> str | None:
    """Why a design of ``gpus`` GPUs in ``racks`` racks is too large to hold, else None."""
    split = "split the factory into several designs"
    if gpus > MAX_DESIGN_GPUS:
        return f"{gpus:,} GPUs; a design holds at most {MAX_DESIGN_GPUS:,} ({split})"
    if racks > MAX_DESIGN_RACKS:
        return f"{racks:,} racks; a design holds at most {MAX_DESIGN_RACKS:,} ({split})"
    return None


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClimateDesign(_Data):
    name: str
    design_dry_bulb_c: float
    design_wet_bulb_c: float
    monthly_dry_bulb_c: list[float]
    monthly_wet_bulb_c: list[float]
    daily_range_k: float


class RackDesign(_Data):
    """One rack of the site's system; every rack of a site is this rack."""

    system: str
    gpus: int
    nodes: int
    nvlink_domains: int
    gpus_per_nvlink_domain: int
    cpu_cores_per_node: int
    memory_gb_per_node: float
    power_nominal_kw: float
    power_max_kw: float
    power_shelf_capacity_kw: float
    busbar_limit_kw: float
    liquid_heat_kw: float
    air_heat_kw: float
    coolant_flow_lpm: float
    manifold_flow_lpm_min: float
    manifold_flow_lpm_max: float
    supply_temp_c: float
    supply_temp_max_c: float
    weight_kg: float
    footprint_m2: float


class HallDesign(_Data):
    index: int
    su_racks: list[int] = Field(description="racks in each scalable unit of this hall")
    racks: int
    gpus: int
    rows: int
    racks_per_row: int
    it_power_max_kw: float
    liquid_heat_kw: float
    air_heat_kw: float
    cdu_model: str | None
    cdus_required: int = Field(description="CDUs needed to carry the heat (N)")
    cdus_installed: int = Field(description="CDUs including redundancy")
    coolant_flow_lpm: float
    white_space_m2: float
    area_m2: float
    floor_load_kg_per_m2: float
    air_system_capacity_kw: float
    floor: str = Field(default="slab-on-grade", description="slab-on-grade or raised (access floor)")
    fire_detection: str = ""
    fire_suppression: str = ""
    leak_detection: str = Field(default="", description="required where the hall carries liquid heat")


class PowerStage(_Data):
    """One stage of the power chain: equipment, count, rating, loading and loss."""

    stage: str
    equipment: str
    units_required: int
    units_installed: int
    unit_rating_kw: float
    load_kw: float
    loading_fraction: float = Field(description="load / (installed units that may carry it × rating)")
    max_loading_fraction: float
    efficiency: float
    loss_kw: float
    redundancy: str
    units_carrying: int | None = Field(
        default=None, description="units that carry the load after the worst single failure"
    )


class PowerBlocks(_Data):
    """One hall's power blocks: a block is a transformer with its UPS system (or SST) and generators."""

    hall: int
    block_kw: float = Field(description="usable capacity of one block (rating × loading limit)")
    load_kw: float
    blocks_required: int
    blocks_installed: int
    blocks_carrying: int = Field(
        description="blocks that carry the hall after its worst single block failure"
    )


class FailureCase(_Data):
    """The worst single failure of one kind of unit, per block: what survives and how loaded it is."""

    unit: str
    element: str
    load_kw: float
    capacity_after_kw: float
    loading_after: float
    carried: bool


class StandbyDesign(_Data):
    """Standby generation (per block or per hall) with its fuel, or UPS ride-through alone."""

    generators: bool
    generator: str | None
    generator_rating_kw: float
    generators_installed: int
    generators_carrying: int
    generator_load_kw: float
    fuel_l: float
    fuel_autonomy_h: float
    transfer_switches: int
    ups_ride_through_min: float
    battery_kwh: float


class DistributionDesign(_Data):
    """Row distribution (AC busway or 800 V DC busway) and the fault levels the switchgear must interrupt."""

    kind: str = Field(description="ac or dc_800v")
    busway: str
    voltage_v: float
    run_current_a: float = Field(description="current of the most loaded busway run")
    ampacity_a: float
    run_length_m: float
    voltage_drop_pct: float
    rack_current_a: float
    tap_offs_per_rack: int
    tap_off_current_a: float
    tap_off_rating_a: float
    lv_fault_ka: float
    lv_interrupting_ka: float
    mv_fault_ka: float
    mv_interrupting_ka: float


class GridDesign(_Data):
    """The point of interconnection: service, short-circuit strength, power quality and load swings."""

    service: str = Field(description="mv (utility MV service) or hv (owned HV/MV substation)")
    voltage_kv: float
    short_circuit_mva: float
    power_factor: float
    current_thd_pct: float
    isc_to_load_ratio: float
    voltage_thd_pct: float
    load_swing_kw: float
    storage_kwh: float
    smoothing_window_s: float
    ramp_fraction_per_min: float
    load_loss_mw: float


class PowerChainDesign(_Data):
    grid_mw: float
    facility_power_peak_kw: float
    it_power_max_kw: float
    it_power_nominal_kw: float
    network_power_kw: float
    mechanical_power_peak_kw: float
    misc_power_kw: float
    redundancy: str
    stages: list[PowerStage]
    topology: str | None = None
    blocks: list[PowerBlocks] = Field(default_factory=list)
    failures: list[FailureCase] = Field(default_factory=list)
    standby: StandbyDesign | None = None
    distribution: DistributionDesign | None = None
    grid: GridDesign | None = None


class CoolingDesign(_Data):
    heat_rejection: str
    heat_rejection_kind: str
    coolant: str
    facility_supply_temp_c: float
    rack_supply_temp_c: float
    rack_return_temp_c: float
    coolant_delta_t_k: float
    coolant_density_kg_m3: float
    coolant_cp_j_per_kg_k: float
    liquid_heat_kw: float
    air_heat_kw: float
    coolant_flow_lpm: float
    cdu_model: str | None
    cdus_installed: int
    cdu_pump_power_kw: float
    heat_rejection_capacity_kw: float
    heat_rejection_power_design_kw: float
    air_cooling_power_design_kw: float
    chiller_power_design_kw: float
    mechanical_power_design_kw: float
    pue_design: float
    pue_annual: float
    wue_l_per_kwh: float
    redundancy: str
    pue_by_outdoor_temp_c: list[tuple[float, float]] = Field(description="(dry-bulb °C, PUE) pairs")
    trim_chiller_kw: float = Field(
        default=0.0, description="trim chiller capacity beside dry / hybrid coolers"
    )
    spray_hours_per_year: float = Field(default=0.0, description="hours a hybrid dry cooler sprays")
    air_supply_temp_c: float | None = Field(
        default=None, description="air supplied to the racks' air-cooled parts"
    )
    heat_rejection_module_kw: float = Field(default=2000.0, description="size of one heat-rejection module")
    supply_temp_source: str = Field(default="", description="where the rack supply temperature comes from")


class FabricTier(_Data):
    tier: int
    name: str
    switches: int
    downlinks_per_switch: int
    uplinks_per_switch: int


class ComputeFabric(_Data):
    """One building's (or hall group's) compute fabric: one fat tree per plane, the planes alike."""

    index: int
    halls: list[int] = Field(description="indices of the halls this fabric serves")
    scalable_units: int
    gpus: int
    endpoints_per_plane: int
    tiers: list[FabricTier] = Field(description="tiers of one plane")
    links_by_tier: list[int] = Field(
        description="links of one plane from tier i to i+1; index 0 is node-to-leaf"
    )


class NetworkItem(_Data):
    """A counted network part: switches, modules or cables of one network, priced and with its draw."""

    network: str = Field(description="compute, dci, storage+in-band or oob")
    kind: str = Field(description="switch, transceiver or cable")
    item: str
    count: int
    unit_cost_usd: float
    draw_w: float = 0.0


class AuxNetwork(_Data):
    """A network beside the compute fabric (storage + in-band, out-of-band), counted per the SuperPOD RA."""

    name: str
    switch: str
    endpoints: int
    link_gbps: int
    tiers: list[FabricTier]
    links: int


class FabricDesign(_Data):
    kind: str
    switch: str
    switch_ports: int
    link_gbps: int
    endpoints: int
    endpoints_per_scalable_unit: int
    rails: int
    scalable_units: int
    tiers: list[FabricTier]
    links_by_tier: list[int] = Field(description="links from tier i to i+1; index 0 is node-to-leaf")
    oversubscription: float
    transceivers: int
    transceiver: str
    cables: int
    switch_power_kw: float
    transceiver_power_kw: float
    nvlink_domains: int
    gpus_per_nvlink_domain: int
    bisection_tbps: float
    planes: int = Field(default=1, description="independent fat trees every GPU has a link into")
    optics: str = Field(default="pluggable", description="pluggable or co-packaged (cpo) switch optics")
    nic_transceiver: str | None = None
    compute_fabric_gpus_max: int = 0
    compute_fabrics: list[ComputeFabric] = Field(default_factory=list)
    dci_switches: int = 0
    dci_links: int = 0
    dci_oversubscription: float = 1.0
    aux_networks: list[AuxNetwork] = Field(default_factory=list)
    link_length_m_by_tier: list[float] = Field(
        default_factory=list, description="longest link per tier; the last is the DCI when there is one"
    )
    transceiver_by_tier: list[str] = Field(
        default_factory=list, description="switch-side module per tier ('' for co-packaged)"
    )
    items: list[NetworkItem] = Field(default_factory=list, description="every counted network part, priced")

    @property
    def tiers_per_plane(self) -> int:
        """Most tiers of any compute fabric's plane."""
        return max((len(f.tiers) for f in self.compute_fabrics), default=len(self.tiers))


class BomLine(_Data):
    category: str
    item: str
    count: float
    unit: str
    unit_cost_usd: float
    total_usd: float


class SiteMetrics(_Data):
    gpus: int
    racks: int
    nodes: int
    nvlink_domains: int
    scalable_units: int
    halls: int
    it_mw: float
    it_mw_nominal: float
    facility_mw: float
    grid_mw: float
    pue_design: float
    pue_annual: float
    wue_l_per_kwh: float
    peak_pflops: dict[str, float]
    hbm_tb: float
    capex_usd: float
    capex_usd_by_category: dict[str, float]
    opex_usd_per_year: float
    opex_usd_per_year_by_category: dict[str, float]
    energy_mwh_per_year: float
    carbon_t_per_year: float
    water_m3_per_year: float
    usd_per_gpu_hour: float
    white_space_m2: float
    market: str | None = None
    facility_capex_usd_per_mw: float | None = Field(
        default=None, description="power + cooling + building per MW of IT"
    )
    it_load_fraction: float | None = Field(default=None, description="mean IT draw / provisioned, for energy")


class SiteDesign(_Data):
    name: str
    system: str
    gpu: str
    region: str
    price_usd_per_kwh: float
    carbon_g_per_kwh: float
    climate: ClimateDesign
    rack: RackDesign
    halls: list[HallDesign]
    power: PowerChainDesign
    cooling: CoolingDesign
    fabric: FabricDesign
    bom: list[BomLine]
    metrics: SiteMetrics


class DesignMetrics(_Data):
    """Headline figures of the whole factory (all sites)."""

    sites: int
    gpus: int
    racks: int
    nvlink_domains: int
    scalable_units: int
    halls: int
    it_mw: float
    facility_mw: float
    grid_mw: float
    pue_design: float
    pue_annual: float
    wue_l_per_kwh: float
    peak_pflops: dict[str, float]
    hbm_tb: float
    capex_usd: float
    capex_usd_by_category: dict[str, float]
    opex_usd_per_year: float
    energy_mwh_per_year: float
    carbon_t_per_year: float
    usd_per_gpu_hour: float


class Design(_Data):
    schema_version: str = DESIGN_SCHEMA_VERSION
    name: str = Field(min_length=1, max_length=64, pattern=SAFE_NAME_PATTERN)
    spec: FactorySpec
    sites: list[SiteDesign]
    metrics: DesignMetrics


def load_design(path: str | Path) -> Design:
    """Read a design.json; malformed or inconsistent JSON raises InputError naming the file and field."""
    import json

    from pydantic import ValidationError

    from tokenfab.io.yamlfile import InputError, format_loc, read_input_text

    text_path = str(path)
    try:
        raw = json.loads(read_input_text(path, MAX_DESIGN_JSON_BYTES))
    except json.JSONDecodeError as exc:
        raise InputError(f"{text_path}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    try:
        design = Design.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"{text_path}: {format_loc(first['loc'])}: {first['msg']}") from None
    check_design_size(design, text_path)
    return design


def check_design_size(design: Design, where: str) -> None:
    """`InputError` naming the field when a design is too large to hold (`design_size_problem`): the GPUs
    and racks its halls list, and the GPUs its metrics claim."""
    from tokenfab.io.yamlfile import InputError

    racks = sum(sum(hall.su_racks) for site in design.sites for hall in site.halls)
    gpus = sum(hall.gpus for site in design.sites for hall in site.halls)
    for field, problem in (
        ("sites[*].halls", design_size_problem(gpus, racks)),
        ("metrics.gpus", design_size_problem(design.metrics.gpus, 0)),
    ):
        if problem:
            raise InputError(f"{where}: {field}: {problem}")
