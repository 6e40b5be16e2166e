"""`tokenfab design SPEC`: compile a spec into a design, certify it, print its summary, write design.json.

The design is certified before it is offered for use: when any finding is an error, a banner with the failing
findings comes first and the command exits 1 (design.json is still written, to inspect). `--no-certify` skips
the check. Every equipment figure of the summary is read from the bill of materials, the one source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tokenfab.cli.app import EXIT_FAILED, app, console, print_json
from tokenfab.cli.inputs import design_from_path, named_output_dir, user_catalog
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION
from tokenfab.io.atomic import write_text_atomic

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design, SiteDesign


def summary_table(design: Design) -> Table:
    table = Table(title=f"design {design.name}", show_lines=False)
    table.add_column("")
    for site in design.sites:
        table.add_column(site.name, justify="right")
    if len(design.sites) > 1:
        table.add_column("total", justify="right", style="bold")

    def row(label: str, site_value, total=None):
        cells = [site_value(s) for s in design.sites]
        if len(design.sites) > 1:
            cells.append(total if total is not None else "")
        table.add_row(label, *cells)

    m = design.metrics
    row("system", lambda s: s.system)
    row("climate / region", lambda s: f"{s.climate.name} / {s.region}")
    row("grid MW", lambda s: f"{s.metrics.grid_mw:,.1f}", f"{m.grid_mw:,.1f}")
    row("IT MW (provisioned)", lambda s: f"{s.metrics.it_mw:,.2f}", f"{m.it_mw:,.2f}")
    row("facility MW (design day)", lambda s: f"{s.metrics.facility_mw:,.2f}", f"{m.facility_mw:,.2f}")
    row(
        "PUE design / annual",
        lambda s: f"{s.metrics.pue_design:.3f} / {s.metrics.pue_annual:.3f}",
        f"{m.pue_design:.3f} / {m.pue_annual:.3f}",
    )
    row("WUE L/kWh", lambda s: f"{s.metrics.wue_l_per_kwh:.2f}", f"{m.wue_l_per_kwh:.2f}")
    row("GPUs", lambda s: f"{s.metrics.gpus:,}", f"{m.gpus:,}")
    row(
        "racks / NVLink domains",
        lambda s: f"{s.metrics.racks:,} / {s.metrics.nvlink_domains:,}",
        f"{m.racks:,} / {m.nvlink_domains:,}",
    )
    row(
        "scalable units / halls",
        lambda s: f"{s.metrics.scalable_units:,} / {s.metrics.halls}",
        f"{m.scalable_units:,} / {m.halls}",
    )
    row("heat rejection", lambda s: f"{s.cooling.heat_rejection} @ {s.cooling.facility_supply_temp_c:.0f} °C")
    row("CDUs installed", lambda s: bom_counts_text(s, category="cooling", unit="CDU"))
    row(
        "fabric",
        lambda s: (
            f"{s.fabric.kind} {s.fabric.planes} plane(s) × {s.fabric.tiers_per_plane} tiers in "
            f"{max(len(s.fabric.compute_fabrics), 1)} fabric(s), "
            + "/".join(str(t.switches) for t in s.fabric.tiers)
            + f" {s.fabric.switch}"
        ),
    )
    row("network switches", lambda s: bom_counts_text(s, category="network", unit="switch"))
    row("network modules", lambda s: f"{bom_count(s, category='network', unit='transceiver'):,}")
    row("power units", lambda s: bom_counts_text(s, category="power", unit="unit"))
    row("power redundancy", lambda s: s.power.redundancy)
    row(
        "grid service / distribution",
        lambda s: (
            f"{s.power.grid.service.upper()} {s.power.grid.voltage_kv:g} kV / {s.power.distribution.kind}"
            if s.power.grid and s.power.distribution
            else ""
        ),
    )
    row(
        "facility capex $M/MW IT",
        lambda s: (
            f"{s.metrics.facility_capex_usd_per_mw / 1e6:.2f} ({s.metrics.market})"
            if s.metrics.facility_capex_usd_per_mw
            else ""
        ),
    )
    for precision in ("fp4", "fp8", "bf16"):
        if precision in m.peak_pflops:
            row(
                f"peak dense {precision.upper()} EFLOPS",
                lambda s, p=precision: f"{s.metrics.peak_pflops.get(p, 0) / 1000:,.1f}",
                f"{m.peak_pflops[precision] / 1000:,.1f}",
            )
    row("HBM TB", lambda s: f"{s.metrics.hbm_tb:,.0f}", f"{m.hbm_tb:,.0f}")
    row("capex $M", lambda s: f"{s.metrics.capex_usd / 1e6:,.0f}", f"{m.capex_usd / 1e6:,.0f}")
    row(
        "opex $M/yr",
        lambda s: f"{s.metrics.opex_usd_per_year / 1e6:,.0f}",
        f"{m.opex_usd_per_year / 1e6:,.0f}",
    )
    row(
        "energy GWh/yr",
        lambda s: f"{s.metrics.energy_mwh_per_year / 1000:,.0f}",
        f"{m.energy_mwh_per_year / 1000:,.0f}",
    )
    row(
        "carbon kt CO2/yr",
        lambda s: f"{s.metrics.carbon_t_per_year / 1000:,.0f}",
        f"{m.carbon_t_per_year / 1000:,.0f}",
    )
    row("$/GPU-hour", lambda s: f"{s.metrics.usd_per_gpu_hour:.2f}", f"{m.usd_per_gpu_hour:.2f}")
    return table


def bom_lines_by_item(site: SiteDesign, category: str, unit: str) -> dict[str, float]:
    """Counts per item of the site's bill-of-materials lines of one category and unit."""
    counts: dict[str, float] = {}
    for line in site.bom:
        if line.category == category and line.unit == unit:
            counts[line.item] = counts.get(line.item, 0.0) + line.count
    return counts


def bom_count(site: SiteDesign, category: str, unit: str) -> int:
    return int(sum(bom_lines_by_item(site, category, unit).values()))


def bom_counts_text(site: SiteDesign, category: str, unit: str) -> str:
    """``34 × cdu-2300kw + 2 × cdu-1350kw``: what the bill of materials buys, most first."""
    counts = bom_lines_by_item(site, category, unit)
    if not counts:
        return "-"
    return " + ".join(
        f"{count:,.0f} × {item}" for item, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def write_design(design: Design, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "design.json"
    write_text_atomic(path, design.model_dump_json(indent=2))
    return path


@app.command("design")
def design_command(
    spec: Path = typer.Argument(..., help="factory spec (YAML)"),
    out: Path = typer.Option(None, "--out", "-o", help="output folder (default: out/<design name>)"),
    as_json: bool = JSON_OPTION,
    report: bool = typer.Option(False, "--report", "-r", help="also write report.html with figures"),
    catalog_dir: list[Path] = CATALOG_OPTION,
    no_certify: bool = typer.Option(
        False, "--no-certify", help="skip certification (exit 0 even if the design fails it)"
    ),
) -> None:
    """Compile a factory spec into a complete design, certify it; exit 1 when it fails certification."""
    design = design_from_path(spec, catalog_dir)
    findings = None if no_certify else _certify(design, catalog_dir)
    errors = [f for f in findings or [] if f.severity == "error"]
    out_dir = out or named_output_dir(design.name)
    design_path = write_design(design, out_dir)
    report_path = None
    if report:
        from tokenfab.report import write_report

        report_path = write_report(design, out_dir, findings=findings)
    if as_json:
        print_json(
            {
                "design_path": str(design_path),
                "report_path": str(report_path) if report_path else None,
                "schema_version": design.schema_version,
                "certified": None if findings is None else not errors,
                "certify_errors": [f.model_dump(mode="json") for f in errors],
                "certify_warnings": sum(1 for f in findings or [] if f.severity == "warning"),
                "metrics": design.metrics.model_dump(mode="json"),
                "sites": [
                    {"name": s.name, "metrics": s.metrics.model_dump(mode="json")} for s in design.sites
                ],
            }
        )
    else:
        if errors:
            _failure_banner(design, errors)
        console.print(summary_table(design))
        console.print(f"design written to [bold]{design_path}[/]")
        if report_path:
            console.print(f"report written to [bold]{report_path}[/]")
        if findings is not None:
            verdict = (
                f"[bold red]NOT CERTIFIED[/]: {len(errors)} error(s) — run `tokenfab certify {design_path}` for all findings"
                if errors
                else "[bold green]certified[/]: no error findings"
            )
            console.print(verdict)
    if errors:
        raise typer.Exit(EXIT_FAILED)


def _certify(design: Design, catalog_dir):
    from tokenfab.certify import check

    return check(design, user_catalog(catalog_dir))


def _failure_banner(design: Design, errors) -> None:
    from rich.panel import Panel

    from tokenfab.cli.certify import findings_table

    console.print(
        Panel(
            f"[bold]{design.name} FAILS CERTIFICATION[/]: {len(errors)} error finding(s). Do not build "
            "or price it as is; the figures below describe a design that breaks the rules listed.",
            style="bold red",
            expand=False,
        )
    )
    console.print(findings_table(errors, "failing findings"))
