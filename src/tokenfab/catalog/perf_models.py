"""The catalog's token-model kinds: efficiency factors, measurements, power models, engine profiles and
the fitted step-model parameters (`tokenfab.perf`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tokenfab.catalog.models import Precision, SourcedEntry


class PerfCalibration(SourcedEntry):
    """Efficiency factors that turn roofline time into measured time, for one GPU architecture.

    ``calibrated_on`` names the ``perf_measurements`` entries the factors were fitted to.
    """

    architecture: str = Field(description="matches Gpu.architecture; 'default' for any other")
    compute_efficiency: dict[Precision, float] = Field(
        description="sustained / peak dense GEMM rate, per precision"
    )
    attention_efficiency: float = Field(gt=0, le=1, description="attention kernels, sustained / peak")
    memory_efficiency: float = Field(gt=0, le=1, description="sustained / peak HBM bandwidth")
    moe_compute_efficiency: float = Field(gt=0, le=1, description="grouped expert GEMMs, of peak FLOP/s")
    moe_memory_efficiency: float = Field(gt=0, le=1, description="grouped expert GEMMs, of HBM peak")
    collective_efficiency: float = Field(gt=0, le=1, description="achieved / peak link bandwidth")
    collective_latency_us: float = Field(ge=0, description="fixed cost of one collective")
    step_overhead_ms: float = Field(ge=0, description="per iteration: scheduling, sampling, launch")
    layer_overhead_us: float = Field(ge=0, description="per layer per iteration: kernel latencies")
    per_sequence_overhead_us: float = Field(ge=0, description="per running sequence per iteration (CPU side)")
    moe_token_overhead_us: float = Field(
        ge=0, description="per token per GPU per iteration in MoE layers: routing, permutation, imbalance"
    )
    clock_power_exponent: float = Field(gt=1, description="compute power ~ clock^exponent under DVFS")
    calibrated_on: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _efficiencies_are_fractions(self) -> PerfCalibration:
        if not all(0 < v <= 1 for v in self.compute_efficiency.values()):
            raise ValueError("compute_efficiency values must be in (0, 1]")
        return self


class PerfMeasurement(SourcedEntry):
    """One public measurement the token model is checked against."""

    model: str
    system: str
    precision: Precision
    isl: int = Field(gt=0, description="mean input tokens per request")
    osl: int = Field(gt=0, description="mean output tokens per request")
    metric: Literal["tokens_per_s_per_gpu_total", "tokens_per_s_per_gpu_output", "joules_per_token"]
    value: float = Field(gt=0)
    min_tokens_per_s_per_user: float | None = Field(default=None, gt=0, description="interactivity read at")
    concurrency: int | None = Field(default=None, gt=0, description="pinned concurrency per replica")
    max_concurrency: int | None = Field(
        default=None, gt=0, description="highest concurrency the benchmark swept"
    )
    tp: int | None = Field(default=None, gt=0, description="pinned tensor parallelism")


class PowerModel(SourcedEntry):
    """How board power follows the work on one GPU architecture (see `tokenfab.perf.power`).

    While a model is served the board never drops below its serving floor
    :math:`P_f = P_{idle} + s\\,(P_{TDP} - P_{idle})` (clocks up, HBM refreshed, kernels launched even in the
    gaps between them); tensor-core and HBM activity add ``compute_weight`` and ``memory_weight`` shares of
    :math:`P_{TDP} - P_f`. A GPU whose ``serving_floor_w`` is measured uses that floor instead of ``s``.
    ``fitted_on`` names the ``power_measurements`` entries the figures were fitted to. The DVFS exponent
    stays with the architecture's ``perf_calibrations`` entry.
    """

    architecture: str = Field(description="matches Gpu.architecture; 'default' for any other")
    floor_fraction: float = Field(ge=0, lt=1, description="s: serving floor as a share of TDP - idle")
    compute_weight: float = Field(ge=0, description="dynamic power with tensor cores busy all the time [-]")
    memory_weight: float = Field(ge=0, description="dynamic power with HBM busy all the time [-]")
    fitted_on: list[str] = Field(default_factory=list)


class PowerMeasurement(SourcedEntry):
    """One public measurement of board power while serving, at a known batch."""

    gpu: str
    model: str = Field(description="catalog model the load ran")
    system: str = Field(description="catalog system the GPU sits in")
    precision: Precision
    engine: str = ""
    batch: int = Field(gt=0, description="sequences decoded together (concurrency per replica)")
    tp: int = Field(default=1, gt=0)
    isl: int = Field(gt=0, description="mean input tokens per request")
    osl: int = Field(gt=0, description="mean output tokens per request")
    board_power_w: float = Field(gt=0, description="mean board power per GPU while serving [W]")
    derived: bool = Field(default=False, description="read off a published fit rather than a printed value")


class PerfAlias(SourcedEntry):
    """Names that measured-performance files (the perf corpus) use for a catalog model or GPU.

    ``kind: model`` maps onto a ``models`` entry; ``kind: gpu`` onto the ``systems`` entry a measurement on
    that GPU is predicted on (the system fixes the GPU, its NVLink domain and scale-out NICs).
    ``blank_precision`` is the precision assumed for a row on that GPU that does not state one.
    """

    kind: Literal["model", "gpu"]
    match: list[str] = Field(min_length=1, description="names as written in points files (case-insensitive)")
    target: str = Field(description="catalog model name (kind model) or system name (kind gpu)")
    blank_precision: Precision | None = None


class EngineProfile(SourcedEntry):
    """The limits one serving engine (at some versions) really runs with, as benchmarks configure it.

    Selected for a measurement by ``engines`` (engine column, case-insensitive), ``source_kinds`` (empty:
    any) and the version range ``[version_from, version_to)`` parsed from the engine-version text.
    """

    engines: list[str] = Field(min_length=1)
    source_kinds: list[str] = Field(default_factory=list)
    version_from: str = ""
    version_to: str = ""
    backend: str = Field(description="step-time class whose fitted engine factor applies")
    batching: Literal["inflight", "static"] = "inflight"
    max_batch: int = Field(gt=0, description="most sequences scheduled together per replica")
    max_num_tokens: int = Field(gt=0, description="most tokens (prefill + decode) in one step")
    kv_cache_fraction: float = Field(
        gt=0, le=1, description="share of HBM left after weights given to KV cache"
    )
    cuda_graph_max_batch: int = Field(ge=0, description="largest batch run as a CUDA graph; 0 = graphs off")
    chunked_prefill: bool = True


class PerfGenerationParams(SourcedEntry):
    """Fitted efficiency factors of the token model for one GPU generation (``default``: any other).

    Shared by every model, engine and point on that generation; fitted by `scripts/fit_perf.py`.
    """

    generation: str
    gemm_efficiency: dict[Precision, float] = Field(
        description="dense linear GEMMs, sustained / peak, per precision"
    )
    moe_gemm_efficiency: dict[Precision, float] = Field(
        description="routed-expert GEMMs, per weight precision"
    )
    attention_efficiency: float = Field(gt=0, le=1)
    memory_efficiency: float = Field(gt=0, le=1)
    moe_memory_efficiency: float = Field(gt=0, le=1)
    step_overhead_ms: float = Field(ge=0)
    layer_overhead_us: float = Field(ge=0)
    sequence_overhead_us: float = Field(ge=0)


class PerfFit(SourcedEntry):
    """Parameters of the token model shared across generations, and what they were fitted on."""

    corpus: str = Field(description="points file the fit used")
    corpus_sha256_16: str = Field(description="first 16 hex digits of the file's SHA-256")
    corpus_rows: int = Field(ge=0)
    link_efficiency: dict[str, float] = Field(description="collective bandwidth / peak: nvlink, scaleout")
    collective_latency_us: float = Field(ge=0)
    moe_token_overhead_us: float = Field(
        ge=0, description="routing, permutation and load imbalance per token"
    )
    eager_layer_factor: float = Field(ge=1, description="layer overhead multiplier outside CUDA graphs")
    engine_time_factor: dict[str, float] = Field(description="step-time multiplier per engine backend")
    server_itl_headroom: float = Field(
        gt=0, le=1, description="mean ITL / p99 TPOT limit a server load reaches"
    )
    server_load_factor: float = Field(gt=0, le=1, description="sustained Poisson load / saturated capacity")
    mtp_draft_tokens: int = Field(ge=1)
    mtp_tokens_per_step: float = Field(ge=1, description="accepted tokens per decode step with MTP")
    roofline_overlap_exponent: float = Field(
        default=40.0, gt=1, description="p of the p-norm that replaces max(compute, memory) per operator"
    )
    cv_summary: dict[str, dict[str, float]] = Field(default_factory=dict)
