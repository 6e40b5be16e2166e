"""`write_report(design, out_dir) -> Path`: a self-contained report.html plus every figure as PNG and SVG.

The HTML embeds its figures as base64 PNG (it opens offline, from anywhere, with no CDN or script) and
links the SVG/PNG files in ``out_dir/figures/``. Halls with the same layout share one floor plan, captioned
with the halls it stands for, so a 1 GW site of 16 halls draws two floor plans, not sixteen.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from tokenfab.blueprint.design import Design, HallDesign, SiteDesign
from tokenfab.catalog.load import Catalog
from tokenfab.certify import KINDS, RULES, Finding, check
from tokenfab.io.atomic import write_text_atomic
from tokenfab.report import figures
from tokenfab.report.render import render_page

PNG_DPI = 130
MAX_FINDINGS_SHOWN = 200


@dataclass
class RenderedFigure:
    slug: str
    title: str
    caption: str
    png_base64: str = field(repr=False)
    css_class: str = "wide"

    @property
    def src(self) -> str:
        return f"data:image/png;base64,{self.png_base64}"

    @property
    def links(self) -> list[tuple[str, str]]:
        return [("SVG", f"figures/{self.slug}.svg"), ("PNG", f"figures/{self.slug}.png")]


def _save(
    fig: Figure, slug: str, title: str, caption: str, figures_dir: Path, css_class: str = "wide"
) -> RenderedFigure:
    """Write the figure as PNG and SVG under `figures_dir` and return it with its PNG inlined."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, facecolor="white", bbox_inches="tight", pad_inches=0.15)
    png = buffer.getvalue()
    (figures_dir / f"{slug}.png").write_bytes(png)
    fig.savefig(
        figures_dir / f"{slug}.svg", format="svg", facecolor="white", bbox_inches="tight", pad_inches=0.15
    )
    plt.close(fig)
    return RenderedFigure(slug, title, caption, base64.b64encode(png).decode("ascii"), css_class)


def _hall_key(hall: HallDesign) -> tuple:
    return (
        tuple(hall.su_racks),
        hall.racks_per_row,
        hall.cdus_installed,
        hall.cdu_model,
        round(hall.white_space_m2, 1),
        hall.gpus,
    )


def identical_hall_groups(site: SiteDesign) -> list[list[int]]:
    """Indices of halls grouped by identical layout (same SUs, rows, CDUs, white space), in first-seen order."""
    groups: dict[tuple, list[int]] = {}
    for index, hall in enumerate(site.halls):
        groups.setdefault(_hall_key(hall), []).append(index)
    return list(groups.values())


def _hall_label(indices: list[int]) -> str:
    if len(indices) == 1:
        return f"hall {indices[0]}"
    if indices == list(range(indices[0], indices[-1] + 1)):
        return f"halls {indices[0]}–{indices[-1]} ({len(indices)} identical)"
    return f"halls {', '.join(map(str, indices))} ({len(indices)} identical)"


def _number_text(value: float | str | None, unit: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"
    return f"{text} {unit}".strip()


def _site_summary(site: SiteDesign) -> list[tuple[str, str]]:
    m, c, f = site.metrics, site.cooling, site.fabric
    return [
        ("system", f"{site.system} ({site.rack.gpus} GPUs, {site.rack.power_max_kw:,.0f} kW per rack)"),
        (
            "climate / region",
            f"{site.climate.name} (design day {site.climate.design_dry_bulb_c:g} °C dry-bulb, "
            f"{site.climate.design_wet_bulb_c:g} °C wet-bulb) / {site.region}",
        ),
        ("grid / IT / facility", f"{m.grid_mw:,.1f} MW / {m.it_mw:,.2f} MW / {m.facility_mw:,.2f} MW"),
        (
            "GPUs, racks, NVLink domains",
            f"{m.gpus:,} GPUs · {m.racks:,} racks · {m.nvlink_domains:,} domains",
        ),
        (
            "scalable units, halls",
            f"{m.scalable_units:,} SUs in {m.halls} hall(s) · white space {m.white_space_m2:,.0f} m²",
        ),
        (
            "cooling",
            f"{c.heat_rejection} ({c.heat_rejection_kind}) at {c.facility_supply_temp_c:.0f} °C facility supply · "
            f"{c.cdus_installed} × {c.cdu_model or '-'} CDUs · {c.redundancy}",
        ),
        (
            "PUE design / annual · WUE",
            f"{m.pue_design:.3f} / {m.pue_annual:.3f} · {m.wue_l_per_kwh:.2f} L/kWh",
        ),
        (
            "fabric",
            f"{f.kind}, {len(f.tiers)} tiers of {f.switch} ({'/'.join(str(t.switches) for t in f.tiers)} switches), "
            f"{f.oversubscription:g}:1",
        ),
        (
            "power",
            f"{site.power.redundancy} · "
            + ", ".join(f"{s.units_installed} × {s.equipment}" for s in site.power.stages),
        ),
        (
            "capex / opex",
            f"${m.capex_usd / 1e6:,.0f} M · ${m.opex_usd_per_year / 1e6:,.0f} M per year · ${m.usd_per_gpu_hour:.2f} per GPU-hour",
        ),
        (
            "energy / carbon / water",
            f"{m.energy_mwh_per_year / 1000:,.0f} GWh · {m.carbon_t_per_year / 1000:,.1f} kt CO₂ · "
            f"{m.water_m3_per_year:,.0f} m³ per year",
        ),
    ]


def _cards(design: Design) -> list[tuple[str, str]]:
    m = design.metrics
    fp4 = m.peak_pflops.get("fp4") or max(m.peak_pflops.values(), default=0.0)
    return [
        ("GPUs", f"{m.gpus:,}"),
        ("IT power", f"{m.it_mw:,.1f} MW"),
        ("facility power", f"{m.facility_mw:,.1f} MW"),
        ("PUE annual", f"{m.pue_annual:.3f}"),
        ("racks / halls", f"{m.racks:,} / {m.halls}"),
        ("FP4 peak", f"{fp4 / 1000:,.1f} EF"),
        ("capex", f"${m.capex_usd / 1e9:,.2f} B" if m.capex_usd >= 1e9 else f"${m.capex_usd / 1e6:,.0f} M"),
        ("$ per GPU-hour", f"${m.usd_per_gpu_hour:.2f}"),
    ]


def _site_figures(i: int, site: SiteDesign, figures_dir: Path) -> dict[str, Any]:
    """One site's part of the report: its summary, a floor plan per group of identical halls, the power
    one-line and the fabric, the figures saved under `figures_dir`."""
    floor_plans = []
    for group in identical_hall_groups(site):
        hall = site.halls[group[0]]
        label = _hall_label(group)
        fig = figures.floor_plan_figure(site, hall, f"Floor plan · {site.name} · {label}")
        floor_plans.append(
            _save(
                fig,
                f"site{i}-hall{group[0]}-floor-plan",
                f"{site.name} {label}",
                f"{site.name} {label}: to scale in metres",
                figures_dir,
                css_class="plan",
            )
        )
    power = _save(
        figures.power_one_line_figure(site),
        f"site{i}-power-one-line",
        f"{site.name} power one-line",
        f"{site.name}: grid to racks with installed (needed) units, ratings and loading",
        figures_dir,
    )
    fabric = _save(
        figures.fabric_figure(site),
        f"site{i}-fabric",
        f"{site.name} fabric",
        f"{site.name}: fat-tree tiers with switch counts and links per tier, over the NVLink domains",
        figures_dir,
    )
    return {
        "site": site,
        "summary": _site_summary(site),
        "floor_plans": floor_plans,
        "power": power,
        "fabric": fabric,
    }


def write_report(
    design: Design, out_dir: Path, findings: list[Finding] | None = None, catalog: Catalog | None = None
) -> Path:
    """Write ``out_dir/report.html`` and ``out_dir/figures/*.png|svg``; return the HTML's path.

    `findings` default to ``certify.check(design, catalog)``.
    """
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    if findings is None:
        findings = check(design, catalog)

    sites = [_site_figures(i, site, figures_dir) for i, site in enumerate(design.sites)]
    cost = _save(
        figures.cost_figure(design),
        "costs",
        "costs",
        "capex by category and site; opex per year by category",
        figures_dir,
    )
    pue = _save(
        figures.pue_figure(design),
        "pue-vs-outdoor-temperature",
        "PUE against outdoor temperature",
        "PUE at nominal IT load against outdoor dry-bulb for each site's heat rejection; dotted: design day, dashed: annual PUE",
        figures_dir,
    )

    shown = [
        {
            **f.model_dump(),
            "value_text": _number_text(f.value, f.unit),
            "limit_text": _number_text(f.limit, f.unit),
        }
        for f in findings[:MAX_FINDINGS_SHOWN]
    ]
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")}
    html = render_page(
        "report.html.j2",
        design=design,
        cards=_cards(design),
        passed=counts["error"] == 0,
        counts=counts,
        kind_counts={k: sum(1 for f in findings if f.kind == k) for k in KINDS},
        findings=shown,
        findings_left_out=max(0, len(findings) - MAX_FINDINGS_SHOWN),
        rules_checked=len(RULES),
        rules=sorted(RULES.values(), key=lambda r: r.rule_id),
        sites=sites,
        cost=cost,
        pue=pue,
    )
    path = out_dir / "report.html"
    write_text_atomic(path, html)
    return path
