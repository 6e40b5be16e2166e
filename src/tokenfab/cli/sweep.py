"""`tokenfab sweep SWEEP.yaml`: run many design points locally or on Ray; results table, Pareto fronts, report."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tokenfab.cli.app import EXIT_FAILED, app, console, err_console, fail_bad_input, is_wide, print_json
from tokenfab.cli.inputs import gated, named_output_dir, user_catalog
from tokenfab.cli.options import CATALOG_OPTION, JSON_OPTION, out_option
from tokenfab.io.errors import InputError

TABLE_ROWS = 15
COLUMN_WIDTH = 12
"""Characters a table column needs; metric columns are dropped on narrow terminals [-]."""


class _RateColumn(ProgressColumn):
    """Points per minute over the points computed in this run."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("– pts/min" if not speed else f"{speed * 60:,.0f} pts/min", style="progress.data.speed")


def _split_address(sweep_file: Path, address: str | None, ray: bool) -> tuple[Path, str | None]:
    """`--ray` is a flag whose optional ADDRESS follows it; accept it on either side of the sweep file."""
    if address is not None and not ray:
        fail_bad_input(f"unexpected argument {address!r} (a Ray address goes after --ray)")
    if address is not None and not sweep_file.exists() and address.lower().endswith((".yaml", ".yml")):
        return Path(address), str(sweep_file)
    return sweep_file, address


@app.command("sweep")
def sweep_command(
    sweep_file: Path = typer.Argument(
        ..., metavar="SWEEP.yaml", help="sweep file (base spec, parameters, sampling)"
    ),
    ray_address: str | None = typer.Argument(
        None, metavar="[ADDRESS]", help="Ray cluster address, after --ray"
    ),
    ray: bool = typer.Option(
        False,
        "--ray",
        help="run on Ray: a local instance (127.0.0.1, no dashboard), "
        "or the cluster at ADDRESS (e.g. --ray auto, --ray ray://head:10001)",
    ),
    workers: int = typer.Option(None, "--workers", "-n", min=1, help="local processes (default: CPU cores)"),
    out: Path = out_option("out/<sweep name>; rerun to resume"),
    as_json: bool = JSON_OPTION,
    catalog_dir: list[Path] = CATALOG_OPTION,
) -> None:
    """Run a sweep: each point is designed, certified and priced in tokens; rows resume after interruption."""
    from tokenfab.cli.gate import plan_sweep_checked
    from tokenfab.sweep import results_frame, run_sweep, write_results
    from tokenfab.sweep.report import objective_of, write_report

    sweep_file, ray_address = _split_address(sweep_file, ray_address, ray)
    plan = gated(plan_sweep_checked, sweep_file, user_catalog(catalog_dir))
    out_dir = out or named_output_dir(plan.name)
    for note in plan.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)

    progress = Progress(
        TextColumn(f"[bold]{plan.name}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err_console,
        disable=as_json,
    )
    task_id = progress.add_task("points", total=len(plan.points))

    def started(todo: int, resumed: int) -> None:
        if resumed:
            err_console.print(
                f"resuming: {resumed} of {len(plan.points)} points already in {out_dir}", highlight=False
            )
        progress.reset(task_id, total=len(plan.points), completed=resumed)  # no rate sample for resumed rows

    try:
        with progress:
            outcome = run_sweep(
                plan,
                out_dir,
                workers=workers or os.cpu_count(),
                use_ray=ray,
                ray_address=None if ray_address in (None, "local") else ray_address,
                on_start=started,
                on_row=lambda _row: progress.advance(task_id),
                catalog_dirs=catalog_dir or (),
            )
    except KeyboardInterrupt:
        err_console.print(f"interrupted: finished rows are in {out_dir / 'points.jsonl'}; rerun to resume")
        raise typer.Exit(130) from None
    except (RuntimeError, InputError) as exc:
        fail_bad_input(str(exc))

    files = write_results(outcome, out_dir)
    frame = results_frame(outcome)
    files.update(
        write_report(frame, plan.parameter_names, out_dir, title=f"sweep {plan.name}", notes=plan.notes)
    )
    all_failed = len(outcome.rows) > 0 and outcome.failed == len(outcome.rows)
    if as_json:
        print_json(
            {
                "sweep": plan.name,
                "points": len(plan.points),
                "computed": outcome.computed,
                "resumed": outcome.resumed,
                "failed": outcome.failed,
                "executor": outcome.executor,
                "wall_s": outcome.wall_s,
                "stages": list(plan.stages),
                "notes": plan.notes,
                "files": files,
                "rows": [row for row in frame.to_dict(orient="records")],
            }
        )
    else:
        console.print(_best_table(frame, plan.parameter_names, objective_of(frame)))
        console.print(
            f"{len(plan.points)} points ({outcome.computed} computed, {outcome.resumed} resumed, "
            f"{outcome.failed} with an error) on {outcome.executor} in {outcome.wall_s:.1f} s",
            highlight=False,
        )
        console.print(
            f"results: [bold]{files['parquet']}[/], {files['csv']}; report: [bold]{files['report']}[/]"
        )
    if all_failed:
        raise typer.Exit(EXIT_FAILED)


_HEADERS = {
    "usd_per_million_tokens": "$/M tok",
    "usd_per_gpu_hour": "$/GPU-h",
    "tokens_per_s_per_gpu": "tok/s/GPU",
    "tokens_per_s_per_mw": "tok/s/MW",
    "capex_usd": "capex $B",
    "pue_annual": "PUE",
    "certify_errors": "cert. errors",
}


def _best_table(frame, parameters, cost: str) -> Table:
    """The best certified points; failing points are counted in the title, never ranked."""
    from tokenfab.sweep.report import ranked

    columns = [
        *parameters,
        cost,
        "tokens_per_s_per_gpu",
        "tokens_per_s_per_mw",
        "capex_usd",
        "pue_annual",
        "certify_errors",
    ]
    columns = [c for c in columns if c in frame]
    if "error" in frame and frame["error"].notna().any():
        columns.append("error")
    for optional in (
        () if is_wide() else ("pue_annual", "tokens_per_s_per_gpu", "certify_errors", "capex_usd")
    ):
        if len(columns) * COLUMN_WIDTH <= console.width:
            break
        if optional in columns:
            columns.remove(optional)
    best = ranked(frame, cost)
    failing = len(frame) - len(best)
    note = f"; {failing} failing certification or with an error, not ranked" if failing else ""
    table = Table(
        title=f"best {min(TABLE_ROWS, len(best))} of {len(best)} certified points by {_HEADERS.get(cost, cost)}{note}"
    )
    for column in columns:
        header = column.rsplit(".", 1)[-1] if column in parameters else _HEADERS.get(column, column)
        table.add_column(
            header, justify="left" if column in parameters or column == "error" else "right", overflow="fold"
        )
    for _, row in best.head(TABLE_ROWS).iterrows():
        table.add_row(*(_cell(row[c], c) for c in columns))
    return table


def _cell(value, column: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if column == "capex_usd":
        return f"{value / 1e9:,.2f}"
    if isinstance(value, float) and is_wide():
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1e6:
            return f"{value / 1e6:,.2f} M"
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
