"""The design report's figures, drawn with matplotlib (Agg): each function takes design data and returns a Figure.

Floor plans are to scale in metres: racks as a `PatchCollection` (a 1 GW hall has hundreds of racks), rows
grouped by scalable unit, facing rows sharing a contained hot aisle, CDUs along the hall's service wall.
The power one-line diagram, the fabric and the cost and PUE charts are schematic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from tokenfab.blueprint.design import Design, HallDesign, PowerStage, SiteDesign  # noqa: E402

RACK_WIDTH_M = 0.6
"""Width of one rack along its row (600 mm MGX / EIA rack)."""

AISLE_MIN_M = 1.2
"""Narrowest cold or hot aisle (ASHRAE / EN 50600 practice for 1.2 m tiles)."""

END_AISLE_M = 1.5
CROSS_AISLE_M = 2.4
CDU_GALLERY_M = 3.0
MAX_AISLE_M = 4.0

PALETTE = {
    "rack": "#2f6fb5",
    "rack_edge": "#1c4676",
    "cold": "#dcecfb",
    "hot": "#fbe3d6",
    "cdu": "#2a9d8f",
    "wall": "#3a3f47",
    "floor": "#f7f7f5",
    "accent": "#e76f51",
    "grid": "#9aa5b1",
    "text": "#1f2933",
    "muted": "#52606d",
}
CATEGORY_COLOURS = ["#2f6fb5", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8d99ae", "#6d597a"]

plt.rcParams.update(
    {
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.titlesize": 11,
        "axes.titleweight": "bold",
        "axes.edgecolor": PALETTE["grid"],
        "axes.labelcolor": PALETTE["text"],
        "xtick.color": PALETTE["muted"],
        "ytick.color": PALETTE["muted"],
        "svg.fonttype": "none",
    }
)


# --- floor plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HallPlan:
    """Geometry of one hall's floor plan, in metres."""

    rows: list[tuple[int, int]]
    """(scalable unit index, racks) per row, in order."""
    row_columns: int
    rows_per_column: int
    rack_depth_m: float
    aisle_m: float
    row_length_m: float
    width_m: float
    depth_m: float


def rows_of_hall(hall: HallDesign) -> list[tuple[int, int]]:
    """Rows as (SU index, racks): each scalable unit starts a row; rows hold at most `racks_per_row`."""
    per_row = max(hall.racks_per_row, 1)
    rows = []
    for su, racks in enumerate(hall.su_racks):
        for start in range(0, racks, per_row):
            rows.append((su, min(per_row, racks - start)))
    return rows


def hall_plan(hall: HallDesign, rack_footprint_m2: float) -> HallPlan:
    """Lay a hall out in columns of row pairs so that it is roughly 3:2, with aisles widened to the white space.

    Each pair of facing rows shares a hot aisle; cold aisles lie between pairs. The aisle width is the
    minimum (1.2 m) or wider, so that the drawn white space equals the design's `white_space_m2`.
    """
    rows = rows_of_hall(hall)
    rack_depth = rack_footprint_m2 / RACK_WIDTH_M
    row_length = max((r for _, r in rows), default=1) * RACK_WIDTH_M
    pairs = math.ceil(len(rows) / 2)
    pair_depth = 2 * rack_depth + 2 * AISLE_MIN_M

    def misfit(columns: int) -> float:
        width = columns * (row_length + CROSS_AISLE_M) + 2 * END_AISLE_M
        depth = math.ceil(pairs / columns) * pair_depth + AISLE_MIN_M
        return abs(math.log(width / depth / 1.6))

    columns = min(range(1, max(pairs, 1) + 1), key=misfit)
    pairs_per_column = math.ceil(pairs / columns)
    aisle = AISLE_MIN_M
    for _ in range(40):  # widen aisles until the drawn floor matches the design's white space
        width = columns * (row_length + CROSS_AISLE_M) + 2 * END_AISLE_M - CROSS_AISLE_M
        depth = pairs_per_column * (2 * rack_depth + 2 * aisle) + aisle
        if width * depth >= hall.white_space_m2 or aisle >= MAX_AISLE_M:
            break
        aisle += 0.1
    return HallPlan(rows, columns, 2 * pairs_per_column, rack_depth, aisle, row_length, width, depth)


def floor_plan_figure(site: SiteDesign, hall: HallDesign, title: str) -> Figure:
    """A hall to scale: racks by row and SU, cold and hot aisles, CDUs along the service wall, labelled."""
    plan = hall_plan(hall, site.rack.footprint_m2)
    cdu_depth = CDU_GALLERY_M if hall.cdus_installed else 0.0
    total_depth = plan.depth_m + cdu_depth
    aspect = plan.width_m / max(total_depth, 1.0)
    fig_w = 11.0
    fig_h = min(max((fig_w - 1.0) / aspect + 1.8, 4.5), 13.0)
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.add_patch(
        Rectangle(
            (0, 0), plan.width_m, total_depth, facecolor=PALETTE["floor"], edgecolor=PALETTE["wall"], lw=2.0
        )
    )

    racks, cold, hot = [], [], []
    column_width = plan.row_length_m + CROSS_AISLE_M
    label_rows = len(plan.rows) <= 80
    for index, (su, count) in enumerate(plan.rows):
        column, slot = divmod(index, plan.rows_per_column)
        pair, side = divmod(slot, 2)
        x0 = END_AISLE_M + column * column_width
        pair_y = cdu_depth + plan.aisle_m + pair * (2 * plan.rack_depth_m + 2 * plan.aisle_m)
        y = pair_y if side == 0 else pair_y + plan.rack_depth_m + plan.aisle_m
        if side == 0:
            cold.append(Rectangle((x0, pair_y - plan.aisle_m), plan.row_length_m, plan.aisle_m))
            hot.append(Rectangle((x0, pair_y + plan.rack_depth_m), plan.row_length_m, plan.aisle_m))
        last_in_column = slot == plan.rows_per_column - 1 or index == len(plan.rows) - 1
        if last_in_column:
            top = pair_y + 2 * plan.rack_depth_m + plan.aisle_m
            cold.append(Rectangle((x0, top), plan.row_length_m, plan.aisle_m))
        for k in range(count):
            racks.append(Rectangle((x0 + k * RACK_WIDTH_M, y), RACK_WIDTH_M * 0.94, plan.rack_depth_m))
        if label_rows:
            ax.text(
                x0 - 0.15,
                y + plan.rack_depth_m / 2,
                f"SU{su}",
                ha="right",
                va="center",
                fontsize=6,
                color=PALETTE["muted"],
            )
    ax.add_collection(PatchCollection(cold, facecolor=PALETTE["cold"], edgecolor="none"))
    ax.add_collection(PatchCollection(hot, facecolor=PALETTE["hot"], edgecolor="none"))
    ax.add_collection(
        PatchCollection(racks, facecolor=PALETTE["rack"], edgecolor=PALETTE["rack_edge"], lw=0.3)
    )

    if hall.cdus_installed:
        _draw_cdu_gallery(ax, hall, plan.width_m)

    ax.set_xlim(-1, plan.width_m + 1)
    ax.set_ylim(-1, total_depth + 1)
    ax.set_aspect("equal")
    ax.set_xlabel("metres")
    ax.set_ylabel("metres")
    ax.grid(color=PALETTE["grid"], alpha=0.15, lw=0.5)
    caption = (
        f"{hall.racks} racks in {len(hall.su_racks)} SUs, {len(plan.rows)} rows · {hall.gpus:,} GPUs · "
        f"{hall.it_power_max_kw / 1000:,.1f} MW IT · white space {hall.white_space_m2:,.0f} m² "
        f"(drawn {plan.width_m:.0f} × {plan.depth_m:.0f} m, aisles {plan.aisle_m:.1f} m) · "
        f"floor load {hall.floor_load_kg_per_m2:,.0f} kg/m²"
    )
    fig.suptitle(title, x=0.02, ha="left", fontsize=12, fontweight="bold", color=PALETTE["text"])
    ax.set_title(caption, loc="left", fontsize=8, fontweight="normal", color=PALETTE["muted"])
    ax.legend(
        handles=_floor_plan_legend(site, hall),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncol=4,
        frameon=False,
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def _draw_cdu_gallery(ax: Axes, hall: HallDesign, width_m: float) -> None:
    """The hall's CDUs, evenly spaced in the gallery along the service wall, with their count and model."""
    spacing = width_m / hall.cdus_installed
    cdu_w = min(1.2, spacing * 0.8)
    cdus = [
        Rectangle((spacing * (i + 0.5) - cdu_w / 2, 0.6), cdu_w, CDU_GALLERY_M - 1.2)
        for i in range(hall.cdus_installed)
    ]
    ax.add_collection(PatchCollection(cdus, facecolor=PALETTE["cdu"], edgecolor="#1d6d63", lw=0.5))
    ax.plot([0, width_m], [CDU_GALLERY_M, CDU_GALLERY_M], color=PALETTE["wall"], lw=1.0, ls="--")
    ax.text(
        width_m / 2,
        CDU_GALLERY_M - 0.3,
        f"CDU gallery: {hall.cdus_installed} × {hall.cdu_model} ({hall.cdus_required} needed)",
        ha="center",
        va="top",
        fontsize=8,
        color="#1d6d63",
    )


def _floor_plan_legend(site: SiteDesign, hall: HallDesign) -> list[Patch]:
    """Legend entries of a floor plan: racks, cold and hot aisles, and CDUs where the hall has them."""
    return [
        Patch(facecolor=PALETTE["rack"], edgecolor=PALETTE["rack_edge"], label=f"rack ({site.rack.system})"),
        Patch(facecolor=PALETTE["cold"], label="cold aisle"),
        Patch(facecolor=PALETTE["hot"], label="hot aisle (contained)"),
    ] + ([Patch(facecolor=PALETTE["cdu"], label="CDU")] if hall.cdus_installed else [])


# --- power one-line ---------------------------------------------------------------------------------


def _box(ax, x, y, w, h, title, lines, colour):
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor="white",
            edgecolor=colour,
            lw=1.6,
        )
    )
    ax.add_patch(Rectangle((x - w / 2, y + h / 2 - 0.28), w, 0.28, facecolor=colour, edgecolor="none"))
    ax.text(
        x, y + h / 2 - 0.14, title, ha="center", va="center", fontsize=8.5, color="white", fontweight="bold"
    )
    ax.text(
        x,
        y - 0.12,
        "\n".join(lines),
        ha="center",
        va="center",
        fontsize=7,
        color=PALETTE["text"],
        linespacing=1.35,
    )


def _arrow(ax, start, end, label=""):
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=PALETTE["wall"], lw=1.2)
    )
    if label:
        ax.text(
            (start[0] + end[0]) / 2 + 0.08,
            (start[1] + end[1]) / 2,
            label,
            fontsize=7,
            color=PALETTE["muted"],
            va="center",
        )


STAGE_TITLES = {
    "substation_transformer": "HV/MV substation",
    "mv_lv_transformer": "MV/LV transformers",
    "ups": "UPS",
    "busway": "busway",
}


def _stage_lines(stage: PowerStage) -> list[str]:
    """A power stage's box on the one-line: units and rating, redundancy, load, loading and losses."""
    unit = "kVA" if stage.stage.endswith("transformer") else "kW"
    rating = (
        f"{stage.unit_rating_kw / 1000:,.1f} M{unit[1:]}"
        if stage.unit_rating_kw >= 10_000
        else f"{stage.unit_rating_kw:,.0f} {unit}"
    )
    lines = [f"{stage.units_installed} × {rating}", f"{stage.units_required} needed · {stage.redundancy}"]
    if stage.redundancy == "2N":
        lines.append(f"sides A + B of {stage.units_installed // 2} each")
    return lines + [
        f"load {stage.load_kw / 1000:,.2f} M{unit[1:]}",
        f"loading {stage.loading_fraction:.0%} (max {stage.max_loading_fraction:.0%})",
        f"η {stage.efficiency:.3f} · loss {stage.loss_kw:,.0f} kW",
    ]


def power_one_line_figure(site: SiteDesign) -> Figure:
    """Grid → substation → MV/LV transformers → UPS → busway → racks, with counts, ratings and loading."""
    p = site.power
    fig, ax = plt.subplots(figsize=(11, 4.6))
    x_positions = [0.95, 2.85, 4.75, 6.65, 8.55, 10.45]
    y = 2.2
    w, h = 1.7, 1.6
    _box(
        ax,
        x_positions[0],
        y,
        w,
        h,
        "grid",
        [f"{p.grid_mw:,.1f} MW", "connection", f"peak draw {p.facility_power_peak_kw / 1000:,.1f} MW"],
        PALETTE["wall"],
    )
    for x, stage in zip(x_positions[1:5], p.stages, strict=False):
        _box(
            ax,
            x,
            y,
            w,
            h,
            STAGE_TITLES.get(stage.stage, stage.stage),
            _stage_lines(stage),
            PALETTE["rack"] if stage.stage in ("ups", "busway") else "#6d597a",
        )
    racks = site.metrics.racks
    _box(
        ax,
        x_positions[5],
        y,
        w,
        h,
        "racks",
        [
            f"{racks:,} × {site.rack.system}",
            f"{site.rack.power_max_kw:,.0f} kW max each",
            f"{site.metrics.gpus:,} GPUs",
            f"+ network {p.network_power_kw / 1000:,.2f} MW",
        ],
        PALETTE["accent"],
    )
    for a, b in zip(x_positions, x_positions[1:], strict=False):
        _arrow(ax, (a + w / 2, y), (b - w / 2, y))
    # mechanical and misc loads hang off the LV side of the MV/LV transformers
    _box(
        ax,
        x_positions[2],
        0.45,
        w,
        0.75,
        "mechanical + misc",
        [f"{p.mechanical_power_peak_kw / 1000:,.2f} + {p.misc_power_kw / 1000:,.2f} MW"],
        PALETTE["cdu"],
    )
    _arrow(ax, (x_positions[2], y - h / 2), (x_positions[2], 0.45 + 0.375))
    ax.text(
        0.1,
        3.55,
        f"Power one-line · {site.name} · {p.redundancy} power path · "
        f"IT {p.it_power_max_kw / 1000:,.2f} MW, facility {p.facility_power_peak_kw / 1000:,.2f} MW on the design day",
        fontsize=11,
        fontweight="bold",
        color=PALETTE["text"],
    )
    ax.set_xlim(0, 11.4)
    ax.set_ylim(0, 3.8)
    ax.axis("off")
    fig.tight_layout()
    return fig


# --- fabric -------------------------------------------------------------------------------------------


def fabric_figure(site: SiteDesign) -> Figure:
    """Tiers of the scale-out fat tree with switch counts and links per tier, above the NVLink domains."""
    f = site.fabric
    fig, ax = plt.subplots(figsize=(11, 1.6 + 1.25 * (len(f.tiers) + 1)))
    levels = len(f.tiers) + 1
    max_icons = 28
    width = 10.0

    def icons(count: int, level: int, colour: str, label: str):
        shown = min(count, max_icons)
        step = width / max(shown, 1)
        y = level * 1.25
        xs = [0.5 + step * (i + 0.5) for i in range(shown)]
        ax.add_collection(
            PatchCollection(
                [Rectangle((x - step * 0.35, y - 0.18), step * 0.7, 0.36) for x in xs],
                facecolor=colour,
                edgecolor="white",
                lw=0.5,
            )
        )
        more = f" (showing {shown})" if count > shown else ""
        ax.text(
            10.7, y, f"{label}\n{count:,}{more}", ha="left", va="center", fontsize=8, color=PALETTE["text"]
        )
        return xs, y

    domain_xs, domain_y = icons(
        f.nvlink_domains, 0, PALETTE["accent"], f"NVLink domains of {f.gpus_per_nvlink_domain} GPUs"
    )
    below_xs, below_y = domain_xs, domain_y
    for i, tier in enumerate(f.tiers):
        xs, y = icons(
            tier.switches,
            i + 1,
            PALETTE["rack"] if i == 0 else "#6d597a",
            f"{tier.name}: {tier.downlinks_per_switch} down / {tier.uplinks_per_switch} up",
        )
        for k, x in enumerate(xs):
            n = len(below_xs)
            for j in sorted({(k + m * n // 4) % n for m in range(4)}):
                ax.plot(
                    [below_xs[j], x], [below_y + 0.18, y - 0.18], color=PALETTE["grid"], lw=0.4, alpha=0.6
                )
        links = f.links_by_tier[i] if i < len(f.links_by_tier) else 0
        ax.text(
            0.05, (below_y + y) / 2, f"{links:,} links", fontsize=7.5, color=PALETTE["muted"], va="center"
        )
        below_xs, below_y = xs, y
    ax.set_title(
        f"Scale-out fabric · {site.name} · {f.kind} ({f.switch}, {f.switch_ports} ports × {f.link_gbps} Gb/s) · "
        f"{len(f.tiers)} tiers, {f.oversubscription:g}:1",
        loc="left",
    )
    ax.text(
        0,
        -0.75,
        f"{f.scalable_units} scalable units × {f.endpoints_per_scalable_unit:,} endpoints · {f.rails} rails · "
        f"{f.cables:,} cables, {f.transceivers:,} × {f.transceiver} · bisection {f.bisection_tbps:,.0f} Tb/s · "
        f"{f.switch_power_kw + f.transceiver_power_kw:,.0f} kW",
        fontsize=8,
        color=PALETTE["muted"],
    )
    ax.set_xlim(0, 13.2)
    ax.set_ylim(-1.0, levels * 1.25 - 0.5)
    ax.axis("off")
    fig.tight_layout()
    return fig


# --- costs and PUE -------------------------------------------------------------------------------------


def cost_figure(design: Design) -> Figure:
    """Capex by category (stacked by site) and opex per year by category."""
    fig, (capex_ax, opex_ax) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    categories = sorted(
        {c for s in design.sites for c in s.metrics.capex_usd_by_category},
        key=lambda c: -sum(s.metrics.capex_usd_by_category.get(c, 0) for s in design.sites),
    )
    left = [0.0] * len(categories)
    for k, site in enumerate(design.sites):
        values = [site.metrics.capex_usd_by_category.get(c, 0.0) / 1e6 for c in categories]
        capex_ax.barh(
            categories,
            values,
            left=left,
            color=CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)],
            label=site.name,
            edgecolor="white",
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    for y, total in enumerate(left):
        capex_ax.text(total, y, f"  ${total:,.0f} M", va="center", fontsize=8, color=PALETTE["text"])
    capex_ax.invert_yaxis()
    capex_ax.set_xlim(0, max(left, default=1) * 1.25)
    capex_ax.set_xlabel("capex, $ M")
    capex_ax.set_title(f"Capex ${design.metrics.capex_usd / 1e9:,.2f} B", loc="left")
    capex_ax.legend(frameon=False, fontsize=8, loc="lower right", title="site", title_fontsize=8)
    opex: dict[str, float] = {}
    for site in design.sites:
        for c, v in site.metrics.opex_usd_per_year_by_category.items():
            opex[c] = opex.get(c, 0.0) + v / 1e6
    names = sorted(opex, key=lambda c: -opex[c])
    opex_ax.barh(
        names,
        [opex[n] for n in names],
        color=[CATEGORY_COLOURS[(i + 2) % len(CATEGORY_COLOURS)] for i in range(len(names))],
        label="all sites",
    )
    opex_ax.legend(frameon=False, fontsize=8, loc="lower right")
    for y, n in enumerate(names):
        opex_ax.text(opex[n], y, f"  ${opex[n]:,.1f} M", va="center", fontsize=8)
    opex_ax.invert_yaxis()
    opex_ax.set_xlim(0, max(opex.values(), default=1) * 1.35)
    opex_ax.set_xlabel("opex, $ M per year")
    opex_ax.set_title(f"Opex ${design.metrics.opex_usd_per_year / 1e6:,.0f} M/yr", loc="left")
    for ax in (capex_ax, opex_ax):
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", alpha=0.25)
    fig.tight_layout()
    return fig


def pue_figure(design: Design) -> Figure:
    """PUE against outdoor dry-bulb for each site's heat rejection, with its design day and annual PUE."""
    fig, ax = plt.subplots(figsize=(11, 3.8))
    design_days: set[float] = set()
    for k, site in enumerate(design.sites):
        colour = CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)]
        temps = [t for t, _ in site.cooling.pue_by_outdoor_temp_c]
        pues = [p for _, p in site.cooling.pue_by_outdoor_temp_c]
        ax.plot(
            temps,
            pues,
            marker="o",
            ms=4,
            color=colour,
            lw=1.8,
            label=f"{site.name}: {site.cooling.heat_rejection} @ {site.cooling.facility_supply_temp_c:.0f} °C supply, "
            f"annual PUE {site.cooling.pue_annual:.3f}",
        )
        ax.axhline(site.cooling.pue_annual, color=colour, ls="--", lw=0.8, alpha=0.7)
        design_day = site.climate.design_dry_bulb_c
        if design_day not in design_days:
            design_days.add(design_day)
            ax.axvline(design_day, color=PALETTE["muted"], ls=":", lw=1)
            ax.text(
                design_day,
                1.0,
                f" design day {design_day:g} °C ({site.climate.name})",
                transform=ax.get_xaxis_transform(),
                color=PALETTE["muted"],
                fontsize=7,
                va="top",
            )
    ax.set_xlabel("outdoor dry-bulb, °C")
    ax.set_ylabel("PUE at nominal IT load")
    ax.set_title("PUE against outdoor temperature", loc="left")
    ax.grid(alpha=0.25)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
