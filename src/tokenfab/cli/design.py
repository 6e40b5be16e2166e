"""`tokenfab design SPEC`: compile a spec into a design, print its summary, write design.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from tokenfab.cli.app import app, console, print_json
from tokenfab.cli.inputs import design_from_path
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION
from tokenfab.io.atomic import write_text_atomic

if TYPE_CHECKING:
    from tokenfab.blueprint.design import Design


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
    row("PUE design / annual", lambda s: f"{s.metrics.pue_design:.3f} / {s.metrics.pue_annual:.3f}", f"{m.pue_design:.3f} / {m.pue_annual:.3f}")
    row("WUE L/kWh", lambda s: f"{s.metrics.wue_l_per_kwh:.2f}", f"{m.wue_l_per_kwh:.2f}")
    row("GPUs", lambda s: f"{s.metrics.gpus:,}", f"{m.gpus:,}")
    row("racks / NVLink domains", lambda s: f"{s.metrics.racks:,} / {s.metrics.nvlink_domains:,}", f"{m.racks:,} / {m.nvlink_domains:,}")
    row("scalable units / halls", lambda s: f"{s.metrics.scalable_units:,} / {s.metrics.halls}", f"{m.scalable_units:,} / {m.halls}")
    row("heat rejection", lambda s: f"{s.cooling.heat_rejection} @ {s.cooling.facility_supply_temp_c:.0f} °C")
    row("CDUs installed", lambda s: f"{s.cooling.cdus_installed:,} × {s.cooling.cdu_model or '-'}")
    row("fabric", lambda s: f"{s.fabric.kind} {len(s.fabric.tiers)}-tier, " + "/".join(str(t.switches) for t in s.fabric.tiers) + f" {s.fabric.switch}")
    row("power redundancy", lambda s: s.power.redundancy)
    for precision in ("fp4", "fp8", "bf16"):
        if precision in m.peak_pflops:
            row(f"peak dense {precision.upper()} EFLOPS", lambda s, p=precision: f"{s.metrics.peak_pflops.get(p, 0) / 1000:,.1f}", f"{m.peak_pflops[precision] / 1000:,.1f}")
    row("HBM TB", lambda s: f"{s.metrics.hbm_tb:,.0f}", f"{m.hbm_tb:,.0f}")
    row("capex $M", lambda s: f"{s.metrics.capex_usd / 1e6:,.0f}", f"{m.capex_usd / 1e6:,.0f}")
    row("opex $M/yr", lambda s: f"{s.metrics.opex_usd_per_year / 1e6:,.0f}", f"{m.opex_usd_per_year / 1e6:,.0f}")
    row("energy GWh/yr", lambda s: f"{s.metrics.energy_mwh_per_year / 1000:,.0f}", f"{m.energy_mwh_per_year / 1000:,.0f}")
    row("carbon kt CO2/yr", lambda s: f"{s.metrics.carbon_t_per_year / 1000:,.0f}", f"{m.carbon_t_per_year / 1000:,.0f}")
    row("$/GPU-hour", lambda s: f"{s.metrics.usd_per_gpu_hour:.2f}", f"{m.usd_per_gpu_hour:.2f}")
    return table


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
) -> None:
    """Compile a factory spec into a complete design: layout, power, cooling, fabric, BOM and costs."""
    design = design_from_path(spec, catalog_dir)
    out_dir = out or Path("out") / design.name
    design_path = write_design(design, out_dir)
    report_path = None
    if report:
        from tokenfab.report import write_report

        report_path = write_report(design, out_dir)
    if as_json:
        print_json(
            {
                "design_path": str(design_path),
                "report_path": str(report_path) if report_path else None,
                "schema_version": design.schema_version,
                "metrics": design.metrics.model_dump(mode="json"),
                "sites": [{"name": s.name, "metrics": s.metrics.model_dump(mode="json")} for s in design.sites],
            }
        )
        return
    console.print(summary_table(design))
    console.print(f"design written to [bold]{design_path}[/]")
    if report_path:
        console.print(f"report written to [bold]{report_path}[/]")
