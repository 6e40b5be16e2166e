"""A whole factory's token output for a mix of models and traffic shapes.

Each workload of the mix takes a share of every site's GPUs and runs at the operating point
`estimate` finds for it on that site's system (its targets, the site's region and annual PUE). Tokens per
day follow from the per-GPU rate, the GPUs given to the workload and the mix's mean utilisation; the cost
per million tokens from the design's own $/GPU-hour (capex amortised + opex):

.. math::
    N_{day} = \\sum_{site} \\sum_{w} r_{w,site}\\,G_{site}\\,s_w\\,u \\times 86\\,400, \\qquad
    \\$/M = \\frac{\\sum_{site} \\$/GPUh_{site}\\,G_{site}\\,\\sum_w s_w \\times 24}{N_{day} / 10^6}

GPUs not given to any workload (shares summing below 1) still cost money and count in the price.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tokenfab.catalog.models import Precision
from tokenfab.perf.curve import TokenPoint, estimate

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design, SiteDesign
    from tokenfab.catalog.load import Catalog

SECONDS_PER_DAY = 86400.0


class Workload(BaseModel):
    """One model and traffic shape of the mix."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    model: str
    precision: Precision | None = None
    isl: int = Field(default=1024, ge=1, description="mean input tokens per request")
    osl: int = Field(default=1024, ge=1, description="mean output tokens per request")
    share: float = Field(gt=0, le=1, description="share of each site's GPUs")
    ttft_ms: float | None = Field(default=None, gt=0)
    itl_ms: float | None = Field(default=None, gt=0)
    mode: str = Field(default="aggregated", pattern="^(aggregated|disaggregated|both)$")


class TrafficMix(BaseModel):
    """What the factory serves: workloads sharing its GPUs, and how busy they are on average."""

    model_config = ConfigDict(extra="forbid")

    name: str = "mix"
    utilisation: float = Field(default=0.7, gt=0, le=1, description="mean load over a day [-]")
    workloads: list[Workload] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares_fit(self) -> TrafficMix:
        total = sum(w.share for w in self.workloads)
        if total > 1.0 + 1e-9:
            raise ValueError(f"workload shares add up to {total:.3g}, more than 1")
        return self


@dataclass(frozen=True)
class WorkloadTokens:
    """One workload on one site."""

    site: str
    workload: str
    model: str
    system: str
    gpus: float
    tokens_per_day_total: float
    tokens_per_day_output: float
    usd_per_million_tokens: float
    """Per output token at the site's $/GPU-hour [$]."""
    joules_per_token: dict[str, float]
    """Energy per output token on the ``board``, ``node`` and ``facility`` bases (site's annual PUE) [J]."""
    point: TokenPoint


@dataclass(frozen=True)
class FactoryTokens:
    """The factory's token output for one mix."""

    design: str
    mix: str
    gpus: int
    utilisation: float
    tokens_per_day_total: float
    tokens_per_day_output: float
    usd_per_day: float
    """All GPU-hours of the factory at the design's $/GPU-hour [$]."""
    usd_per_million_tokens: float
    """Per million output tokens [$]."""
    usd_per_million_tokens_total: float
    """Per million input + output tokens [$]."""
    workloads: list[WorkloadTokens]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for w, src in zip(out["workloads"], self.workloads, strict=True):
            w["point"] = src.point.to_dict()
        out["joules_per_token_basis"] = (
            "board (point.joules_per_token); workloads[].joules_per_token: all three"
        )
        return out


def factory_tokens(
    catalog: Catalog, design: Design, mix: TrafficMix, region_override: str | None = None
) -> FactoryTokens:
    """Tokens per day and cost per million tokens of `design` serving `mix` (a pure function)."""
    total_out = total_all = usd_day = 0.0
    rows = []
    for site in design.sites:
        gpus = site.metrics.gpus
        usd_day += site.metrics.usd_per_gpu_hour * gpus * 24.0
        for index, w in enumerate(mix.workloads):
            curve = estimate(
                catalog,
                w.model,
                site.system,
                precision=w.precision,
                isl=w.isl,
                osl=w.osl,
                ttft_ms=w.ttft_ms,
                itl_ms=w.itl_ms,
                mode=w.mode,
                region=region_override or site.region,
                pue=max(site.metrics.pue_annual, 1.0),
                usd_per_gpu_hour=site.metrics.usd_per_gpu_hour,
            )
            point = curve.operating_point
            assert (
                point is not None
            )  # `estimate` always picks one (the nearest miss when none meets the targets)
            share_gpus = gpus * w.share
            out_day = point.tokens_per_s_per_gpu_output * share_gpus * mix.utilisation * SECONDS_PER_DAY
            all_day = point.tokens_per_s_per_gpu_total * share_gpus * mix.utilisation * SECONDS_PER_DAY
            total_out += out_day
            total_all += all_day
            usd_w = site.metrics.usd_per_gpu_hour * share_gpus * 24.0
            rows.append(
                WorkloadTokens(
                    site=site.name,
                    workload=w.name or f"{index}:{w.model}",
                    model=w.model,
                    system=site.system,
                    gpus=share_gpus,
                    tokens_per_day_total=all_day,
                    tokens_per_day_output=out_day,
                    usd_per_million_tokens=usd_w / (out_day / 1e6) if out_day > 0 else float("inf"),
                    joules_per_token=_energy_bases(catalog, site, point),
                    point=point,
                )
            )
    return FactoryTokens(
        design=design.name,
        mix=mix.name,
        gpus=design.metrics.gpus,
        utilisation=mix.utilisation,
        tokens_per_day_total=total_all,
        tokens_per_day_output=total_out,
        usd_per_day=usd_day,
        usd_per_million_tokens=usd_day / (total_out / 1e6) if total_out > 0 else float("inf"),
        usd_per_million_tokens_total=usd_day / (total_all / 1e6) if total_all > 0 else float("inf"),
        workloads=rows,
    )


def _energy_bases(catalog: Catalog, site: SiteDesign, point: TokenPoint) -> dict[str, float]:
    """`point`'s J per output token on the board, node and facility bases at the site's annual PUE."""
    from tokenfab.perf.power import system_energy_bases

    pue = max(site.metrics.pue_annual, 1.0)
    e = system_energy_bases(catalog, site.system, point.gpu_power_w, point.tokens_per_s_per_gpu_output, pue)
    return {"board": e.board_j_per_token, "node": e.node_j_per_token, "facility": e.facility_j_per_token}
