"""The catalog's schema: every kind of part the standard knows, validated by pydantic.

Each entry carries `sources`, a mapping from field name to where the figure comes from. Every numeric
field that holds a value must have a source; a figure that is an estimate says so by starting its source
with ``estimate:``. Field names follow NetBox's device-type library where they overlap (``maximum_draw_w``,
``weight_kg``, ``u_height``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Precision(StrEnum):
    bf16 = "bf16"
    fp8 = "fp8"
    fp4 = "fp4"


class FabricKind(StrEnum):
    infiniband_ndr = "infiniband_ndr"
    infiniband_xdr = "infiniband_xdr"
    spectrum_x = "spectrum_x"
    ethernet_oob = "ethernet_oob"
    """out-of-band management (BMC) Ethernet (never a compute fabric)"""


class HeatRejectionKind(StrEnum):
    dry_cooler = "dry_cooler"
    hybrid_dry_cooler = "hybrid_dry_cooler"
    cooling_tower = "cooling_tower"
    chiller = "chiller"


class SourcedEntry(BaseModel):
    """Base of every catalog entry: a unique name, a description and per-figure sources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_figure_has_a_source(self) -> SourcedEntry:
        missing = [
            field
            for field, value in self
            if field not in ("name", "description", "sources")
            and _holds_figure(value)
            and field not in self.sources
            and "*" not in self.sources
        ]
        if missing:
            raise ValueError(f"figures without a source: {', '.join(sorted(missing))}")
        unknown = [key for key in self.sources if key != "*" and key not in type(self).model_fields]
        if unknown:
            raise ValueError(f"sources given for unknown fields: {', '.join(sorted(unknown))}")
        return self

    def source_of(self, field: str) -> str:
        return self.sources.get(field) or self.sources.get("*", "")

    def is_estimate(self, field: str) -> bool:
        return self.source_of(field).lower().startswith("estimate")


def _holds_figure(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, dict):
        return any(_holds_figure(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_figure(v) for v in value)
    return False


class Gpu(SourcedEntry):
    """One GPU package as software sees it."""

    hbm_gb: float = Field(gt=0)
    hbm_bandwidth_tb_s: float = Field(gt=0)
    dense_tflops: dict[Precision, float] = Field(description="dense (non-sparse) peak per precision")
    tdp_w: float = Field(gt=0)
    idle_power_w: float = Field(gt=0)
    nvlink_bandwidth_gb_s: float = Field(gt=0, description="per GPU, one direction")
    architecture: str
    aliases: list[str] = Field(
        default_factory=list, description="other names data uses (e.g. the perf corpus)"
    )
    vendor: Literal["nvidia", "amd"] = "nvidia"
    memory_type: str = Field(default="", description="HBM3, HBM3e, GDDR6, ...")
    scaleup_link: Literal["nvlink", "nvlink_bridge", "nvlink_c2c", "pcie", "infinity_fabric"] = Field(
        default="nvlink", description="what carries tensor-parallel traffic between GPUs of a node"
    )
    nvlink_peers: int | None = Field(
        default=None,
        gt=0,
        description="GPUs one scale-up link group joins (bridged pairs: 2); None = the node",
    )
    pcie_bandwidth_gb_s: float | None = Field(default=None, gt=0, description="host interface, one direction")
    serving_floor_w: float | None = Field(
        default=None, gt=0, description="lowest board power measured while a model is loaded and serving"
    )

    def scaleup_bandwidth_gb_s(self, group_gpus: int) -> float:
        """Per-GPU, one-direction bandwidth a group of `group_gpus` GPUs exchanges tensor-parallel data at.

        Within one link group (``nvlink_peers``; the whole node when None) the scale-up link's figure; a
        larger group goes through the host's PCIe switches at ``pcie_bandwidth_gb_s``.
        """
        if self.nvlink_peers is None or group_gpus <= self.nvlink_peers or self.pcie_bandwidth_gb_s is None:
            return self.nvlink_bandwidth_gb_s
        return self.pcie_bandwidth_gb_s


class System(SourcedEntry):
    """A rack-scale (NVL72) or node-scale (HGX) product as it is installed in a rack."""

    kind: Literal["rack_scale", "node_scale"]
    gpu: str
    gpus_per_node: int = Field(gt=0)
    gpus_per_nvlink_domain: int = Field(gt=0)
    nodes_per_rack: int = Field(gt=0)
    rack_power_nominal_kw: float = Field(gt=0, description="expected draw at full load")
    rack_power_max_kw: float = Field(gt=0, description="the figure power is provisioned for")
    power_shelf_capacity_kw: float = Field(gt=0, description="installed PSU capacity per rack")
    busbar_limit_kw: float = Field(gt=0, description="in-rack DC busbar or PDU rating")
    liquid_heat_fraction: float = Field(ge=0, le=1)
    rack_weight_kg: float = Field(gt=0)
    rack_footprint_m2: float = Field(gt=0)
    rack_units: int = Field(gt=0)
    scaleout_nics_per_gpu: int = Field(gt=0)
    scaleout_nic_gbps: int = Field(gt=0)
    supply_temp_max_c: float = Field(description="highest facility coolant supply the system accepts")
    coolant_class: str = Field(description="ASHRAE liquid-cooling class, e.g. W32, W45")
    manifold_flow_lpm_min: float = Field(ge=0)
    manifold_flow_lpm_max: float = Field(gt=0)
    nodes_per_scalable_unit: int = Field(gt=0)
    default_fabric: FabricKind
    rack_cost_usd: float = Field(gt=0, description="installed price of one rack of systems")
    cpu_cores_per_node: int = Field(gt=0)
    memory_gb_per_node: float = Field(gt=0)

    @property
    def gpus_per_rack(self) -> int:
        return self.gpus_per_node * self.nodes_per_rack

    @property
    def domains_per_rack(self) -> int:
        return self.gpus_per_rack // self.gpus_per_nvlink_domain

    @model_validator(mode="after")
    def _domains_are_whole(self) -> System:
        if (
            self.gpus_per_nvlink_domain % self.gpus_per_node
            and self.gpus_per_node % self.gpus_per_nvlink_domain
        ):
            raise ValueError("an NVLink domain must hold whole nodes")
        if self.gpus_per_rack % self.gpus_per_nvlink_domain:
            raise ValueError("a rack must hold whole NVLink domains")
        if self.rack_power_nominal_kw > self.rack_power_max_kw:
            raise ValueError("rack_power_nominal_kw exceeds rack_power_max_kw")
        return self


class Switch(SourcedEntry):
    fabric: FabricKind
    ports: int = Field(gt=0, description="logical ports at port_gbps")
    port_gbps: int = Field(gt=0)
    maximum_draw_w: float = Field(gt=0)
    u_height: int = Field(gt=0)
    weight_kg: float = Field(gt=0)
    cost_usd: float = Field(gt=0)
    manufacturer: str = "NVIDIA"
    part_number: str = ""
    ports_per_cage: int = Field(
        default=1, ge=1, description="logical ports one pluggable module serves (2: twin-port OSFP)"
    )
    co_packaged_optics: bool = Field(
        default=False, description="optics on the package: no switch-side modules; draw includes optics"
    )
    optics_reach_m: float | None = Field(default=None, gt=0, description="reach of co-packaged optics")


class Transceiver(SourcedEntry):
    gbps: int = Field(gt=0, description="per logical port")
    maximum_draw_w: float = Field(ge=0)
    cost_usd: float = Field(ge=0)
    form_factor: str
    ports: int = Field(default=1, ge=1, description="logical ports of one module (2: twin-port)")
    reach_m: float | None = Field(default=None, gt=0, description="rated reach on its fibre")


class Cable(SourcedEntry):
    kind: Literal["fiber", "dac", "acc", "copper"]
    cost_usd_per_link: float = Field(ge=0)
    reach_m: float | None = Field(default=None, gt=0, description="longest link the medium carries")


class Standards(SourcedEntry):
    """Limits and counts from standards and reference architectures that are not one part's figures."""

    compute_fabric_gpus_max: int = Field(gt=0, description="GPUs one compute fabric (a building) holds")
    converged_switch: str = Field(description="switch of the storage + in-band Ethernet fabric")
    oob_switch: str = Field(description="switch of the out-of-band management network")
    dci_oversubscription: float = Field(ge=1, description="fabric bandwidth : DCI bandwidth between fabrics")
    inband_storage_ports_per_node: int = Field(ge=0)
    inband_storage_port_gbps: int = Field(gt=0)
    storage_ports_per_scalable_unit: int = Field(ge=0)
    oob_ports_per_node: int = Field(ge=0)
    oob_ports_per_rack: int = Field(ge=0)
    row_power_max_kw: float = Field(
        gt=0, description="most IT power one row of racks is fed and contained for"
    )
    row_pitch_m: float = Field(gt=0, description="rack row to rack row, aisles included")
    cable_drop_m: float = Field(ge=0, description="vertical run plus slack at each end of a link")
    row_length_max_m: float = Field(gt=0)
    slab_point_load_kg_per_m2: float = Field(
        gt=0, description="rack weight on its own footprint a slab carries"
    )
    raised_floor_concentrated_load_n: float = Field(
        gt=0, description="one caster or foot on a raised-floor panel"
    )
    rack_feet: int = Field(gt=0)
    fire_detection: str
    fire_suppression: str
    leak_detection: str


class Cdu(SourcedEntry):
    """Coolant distribution unit: liquid-to-liquid heat exchanger and pumps."""

    capacity_kw: float = Field(gt=0)
    flow_lpm_max: float = Field(gt=0)
    approach_k: float = Field(gt=0, description="facility supply to rack supply temperature rise")
    pump_power_kw: float = Field(ge=0, description="at rated flow")
    cost_usd: float = Field(gt=0)
    footprint_m2: float = Field(gt=0)


class HeatRejection(SourcedEntry):
    """Heat rejection plant per MW of heat: dry coolers, cooling towers or chillers."""

    kind: HeatRejectionKind
    approach_k: float = Field(
        ge=0, description="leaving water minus dry-bulb (dry) or wet-bulb (tower) at design"
    )
    fan_power_kw_per_mw: float = Field(ge=0, description="fans at design day, per MW of heat rejected")
    pump_power_kw_per_mw: float = Field(ge=0)
    carnot_fraction: float = Field(ge=0, le=1, description="chiller COP as a fraction of the Carnot COP")
    water_l_per_kwh_heat: float = Field(ge=0, description="water consumed per kWh of heat rejected")
    cost_usd_per_mw: float = Field(gt=0)
    footprint_m2_per_mw: float = Field(ge=0)
    wet_approach_k: float | None = Field(
        default=None, ge=0, description="hybrid dry cooler: approach to wet-bulb when sprayed"
    )
    spray_water_l_per_kwh_heat: float | None = Field(
        default=None, ge=0, description="hybrid dry cooler: water per kWh while sprayed"
    )


class Transformer(SourcedEntry):
    """A transformer (substation HV/MV, unit substation MV/LV) or a solid-state transformer (MV AC to 800 V DC)."""

    stage: Literal["substation", "mv_lv", "sst"]
    rating_mva: float = Field(gt=0)
    efficiency: float = Field(gt=0, le=1)
    max_loading_fraction: float = Field(gt=0, le=1)
    cost_usd: float = Field(gt=0)
    impedance_pct: float = Field(
        default=6.0, gt=0, le=25, description="short-circuit impedance, % on own base"
    )
    secondary_voltage_v: float = Field(default=415.0, gt=0)


class Ups(SourcedEntry):
    module_kw: float = Field(gt=0)
    efficiency: float = Field(gt=0, le=1)
    max_loading_fraction: float = Field(gt=0, le=1)
    cost_usd: float = Field(gt=0)
    battery_usd_per_kwh: float = Field(default=0.0, ge=0, description="installed battery energy")
    current_thd_pct: float = Field(default=5.0, ge=0, description="input current distortion at full load")


class Busway(SourcedEntry):
    rating_kw: float = Field(gt=0, description="one busway run")
    efficiency: float = Field(gt=0, le=1)
    cost_usd: float = Field(gt=0)
    kind: Literal["ac", "dc"] = "ac"
    voltage_v: float = Field(default=415.0, gt=0)
    ampacity_a: float = Field(default=1600.0, gt=0)
    tap_off_a: float = Field(default=250.0, gt=0, description="largest tap-off unit feeding one rack")
    resistance_mohm_per_m: float = Field(default=0.03, gt=0, description="per phase (AC) or per pole (DC)")
    reactance_mohm_per_m: float = Field(default=0.01, ge=0)


class Generator(SourcedEntry):
    """A standby generator set, with its fuel use and the transfer equipment of the block it backs."""

    rating_kw: float = Field(gt=0)
    max_loading_fraction: float = Field(gt=0, le=1)
    fuel_l_per_kwh: float = Field(gt=0, description="at rated load")
    start_time_s: float = Field(gt=0, description="start to accepting load")
    cost_usd: float = Field(gt=0)
    transfer_switch_cost_usd: float = Field(ge=0, description="ATS / paralleling section per block")
    fuel_storage_usd_per_l: float = Field(ge=0)


class FacilityLimits(SourcedEntry):
    """Limits of the standards and grid codes a facility is certified against (all sourced)."""

    mv_service_max_mw: float = Field(gt=0, description="largest load a utility serves at medium voltage")
    mv_service_voltage_kv: float = Field(gt=0)
    hv_service_voltage_kv: float = Field(gt=0)
    mv_grid_short_circuit_mva: float = Field(gt=0)
    hv_grid_short_circuit_mva: float = Field(gt=0)
    transformer_loading_min_fraction: float = Field(ge=0, le=1)
    busway_voltage_drop_max_pct: float = Field(gt=0)
    busway_feed_length_m: float = Field(ge=0, description="switchboard to the start of the row")
    rack_pitch_m: float = Field(gt=0)
    lv_interrupting_ratings_ka: list[float] = Field(min_length=1)
    mv_interrupting_ratings_ka: list[float] = Field(min_length=1)
    dc_800v_rack_kw_min: float = Field(gt=0, description="rack power above which AC busway no longer serves")
    voltage_thd_max_pct_by_kv: list[tuple[float, float]] = Field(
        min_length=1, description="(bus kV up to, THDv %)"
    )
    current_tdd_max_pct_by_ratio: list[tuple[float, float]] = Field(
        min_length=1, description="(Isc/IL up to, TDD %)"
    )
    power_factor_min: float = Field(gt=0, le=1)
    load_swing_fraction: float = Field(ge=0, le=1, description="synchronous training swing as a share of IT")
    ramp_max_fraction_per_min: float = Field(gt=0, description="load ramp at the point of interconnection")
    load_loss_max_mw: float = Field(gt=0, description="largest single load loss the grid absorbs")
    fuel_autonomy_min_h: float = Field(gt=0)
    ups_ride_through_min_min: float = Field(gt=0, description="with generators: bridge to generator start")
    ups_ride_through_no_generator_min_min: float = Field(gt=0)
    air_supply_min_c: float
    air_supply_max_c: float
    crah_approach_k: float = Field(ge=0, description="air supply above chilled-water supply")


class Market(SourcedEntry):
    """A construction market (metro): cost per MW of critical load, land, and build time."""

    construction_usd_per_mw_low: float = Field(gt=0)
    construction_usd_per_mw_mid: float = Field(gt=0)
    construction_usd_per_mw_high: float = Field(gt=0)
    land_usd_per_acre: float = Field(ge=0)
    country: str


class Region(SourcedEntry):
    grid_carbon_g_per_kwh: float = Field(ge=0)
    price_usd_per_kwh_low: float = Field(ge=0)
    price_usd_per_kwh_high: float = Field(ge=0)
    country: str

    @property
    def price_usd_per_kwh_mid(self) -> float:
        return 0.5 * (self.price_usd_per_kwh_low + self.price_usd_per_kwh_high)


class Climate(SourcedEntry):
    """Design-day and monthly mean outdoor conditions of a place."""

    design_dry_bulb_c: float = Field(description="0.4 % annual cooling design dry-bulb")
    design_wet_bulb_c: float = Field(description="0.4 % annual evaporation design wet-bulb")
    monthly_dry_bulb_c: list[float] = Field(min_length=12, max_length=12)
    monthly_wet_bulb_c: list[float] = Field(min_length=12, max_length=12)
    daily_range_k: float = Field(ge=0, description="mean daily dry-bulb swing")
    region: str
    market: str | None = Field(default=None, description="construction market (catalog markets)")


class Economics(SourcedEntry):
    """Cost figures that are not one part: building, substation, labour, finance."""

    building_usd_per_mw: float = Field(gt=0)
    substation_usd_per_mw: float = Field(gt=0)
    generator_usd_per_mw: float = Field(ge=0)
    electrical_fitout_usd_per_mw: float = Field(ge=0)
    mechanical_fitout_usd_per_mw: float = Field(ge=0)
    maintenance_fraction_of_capex_per_year: float = Field(ge=0, le=1)
    staff_usd_per_mw_year: float = Field(ge=0)
    it_lifetime_years: float = Field(gt=0)
    facility_lifetime_years: float = Field(gt=0)
    discount_rate: float = Field(ge=0, lt=1)
    hall_white_space_m2_per_rack: float = Field(gt=0, description="rack plus its share of aisles")
    floor_load_limit_kg_per_m2: float = Field(gt=0)
    power_factor: float = Field(gt=0, le=1)
    misc_load_fraction: float = Field(ge=0, le=0.2, description="lighting, offices, controls per IT kW")
    air_cooling_kw_per_kw_heat: float = Field(ge=0, description="CRAH fan power per kW of air-side heat")
    air_system_capacity_kw_per_m2: float = Field(gt=0, description="air heat a hall's air system removes")
    us_mean_construction_usd_per_mw: float = Field(default=11.7e6, gt=0, description="the market index base")
    soft_cost_fraction: float = Field(default=0.0, ge=0, le=1, description="design, permits, commissioning")
    construction_months: float = Field(default=0.0, ge=0)
    construction_interest_rate: float = Field(default=0.0, ge=0, lt=1)
    spares_fraction_of_it: float = Field(default=0.0, ge=0, le=1)
    acres_per_mw: float = Field(default=0.0, ge=0)
    storage_tb_per_gpu: float = Field(default=0.0, ge=0)
    storage_usd_per_tb: float = Field(default=0.0, ge=0)
    storage_kw_per_pb: float = Field(default=0.0, ge=0)
    inference_it_load_fraction: float = Field(
        default=1.0, gt=0, le=1, description="mean IT draw / provisioned"
    )
    mv_service_usd_per_mw: float = Field(default=0.0, ge=0, description="utility MV connection, per MW")


class LlmModel(SourcedEntry):
    """A language model's architecture as inference sees it (from its public ``config.json``).

    Dense models leave the expert fields at 0. Mixture-of-experts models give ``num_experts`` routed
    experts of ``expert_ffn_size``, ``active_experts`` of them per token, ``shared_experts`` always on,
    and ``dense_layers`` leading layers with an ordinary FFN of ``ffn_size``. Multi-head latent attention
    (``attention: mla``) caches ``kv_lora_rank + qk_rope_head_dim`` values per token and layer.
    GELU-MLP models (GPT-J, Falcon) have ``ffn_matrices: 2`` instead of the gated FFN's 3.
    """

    hf_repo: str = Field(description="Hugging Face repository the figures come from")
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_heads: int = Field(gt=0, description="query heads")
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    ffn_size: int = Field(gt=0, description="dense FFN intermediate size (SwiGLU: 3 matrices)")
    vocab_size: int = Field(gt=0)
    tied_embeddings: bool = False
    attention: Literal["gqa", "mla"] = "gqa"
    num_experts: int = Field(default=0, ge=0, description="routed experts per MoE layer")
    active_experts: int = Field(default=0, ge=0, description="routed experts per token")
    shared_experts: int = Field(default=0, ge=0)
    expert_ffn_size: int = Field(default=0, ge=0)
    dense_layers: int = Field(
        default=0,
        ge=0,
        description="layers with a dense FFN in an MoE model (leading, or interleaved as in Llama 4)",
    )
    q_lora_rank: int = Field(default=0, ge=0)
    kv_lora_rank: int = Field(default=0, ge=0)
    qk_rope_head_dim: int = Field(default=0, ge=0)
    qk_nope_head_dim: int = Field(default=0, ge=0)
    v_head_dim: int = Field(default=0, ge=0)
    sliding_window: int = Field(default=0, ge=0, description="tokens; 0 = none")
    sliding_window_layers: int = Field(default=0, ge=0, description="layers that use the sliding window")
    total_params_b: float = Field(gt=0, description="published total parameter count, billions")
    native_precision: Precision = Precision.bf16
    aliases: list[str] = Field(
        default_factory=list, description="other Hugging Face repos of the same weights shape"
    )
    ffn_matrices: int = Field(
        default=3,
        ge=2,
        le=3,
        description="weight matrices per FFN/expert: 3 gated (SwiGLU), 2 plain (GELU MLP)",
    )
    active_params_b: float | None = Field(
        default=None, gt=0, description="published active parameters, billions"
    )

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @model_validator(mode="after")
    def _consistent(self) -> LlmModel:
        if self.is_moe and not (0 < self.active_experts <= self.num_experts and self.expert_ffn_size > 0):
            raise ValueError("an MoE model needs 0 < active_experts <= num_experts and expert_ffn_size")
        if self.attention == "mla" and not (self.kv_lora_rank and self.qk_rope_head_dim and self.v_head_dim):
            raise ValueError("MLA needs kv_lora_rank, qk_rope_head_dim and v_head_dim")
        if self.sliding_window_layers > self.num_layers or self.dense_layers > self.num_layers:
            raise ValueError("sliding_window_layers and dense_layers cannot exceed num_layers")
        return self
