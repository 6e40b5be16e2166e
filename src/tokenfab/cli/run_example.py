"""`tokenfab run-example`: the main job on the bundled defaults (what `make run` does)."""

from __future__ import annotations

from pathlib import Path

import typer

from tokenfab.cli.app import app, console, print_json
from tokenfab.cli.design import summary_table, write_design
from tokenfab.cli.inputs import design_from_path, named_output_dir
from tokenfab.cli.options import JSON_OPTION

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"


@app.command("run-example")
def run_example(
    spec: Path = typer.Option(EXAMPLES_DIR / "site-10mw.yaml", "--spec", help="spec to run"),
    out: Path = typer.Option(Path("out"), "--out", "-o", help="output folder"),
    simulate_days: float = typer.Option(
        1.0, "--days", "-d", min=0, max=366, help="simulated days of the bundled workload (0 to skip)"
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Design the bundled example, certify it, write its report, and simulate a day of work on it."""
    from tokenfab.report import write_report

    design = design_from_path(spec)
    out_dir = named_output_dir(design.name, base=out)
    design_path = write_design(design, out_dir)
    if not as_json:
        console.print(summary_table(design))
    report_path = write_report(design, out_dir)
    run_report = None
    if simulate_days > 0:
        from tokenfab.cli.simulate import simulate_example

        run_report = simulate_example(out_dir / "simulation", days=simulate_days, quiet=as_json)
    if as_json:
        print_json(
            {
                "design": design.name,
                "design_path": str(design_path),
                "report_path": str(report_path),
                "simulation_report_path": str(run_report) if run_report else None,
                "metrics": design.metrics.model_dump(mode="json"),
            }
        )
        return
    console.print(f"design:  [bold]{design_path}[/]")
    console.print(f"report:  [bold]{report_path.resolve()}[/]")
    if run_report:
        console.print(f"simulation report: [bold]{Path(run_report).resolve()}[/]")
